/* The agent's configuration file (/etc/infrastream/agent.conf): every path the agent uses is
 * configurable, so several agents can run side by side on one machine. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AGENT_CONFIG_DEFAULT "/etc/infrastream/agent.conf"
/* Not under /run/infrastream: that is the agent's RuntimeDirectory, gone whenever the agent stops,
 * while the socket belongs to infrastream-luks.socket. */
#define AGENT_LUKS_HELPER_DEFAULT "/run/infrastream-luks.sock"

typedef enum service_backend {
        SERVICE_SYSTEMD,
        SERVICE_DIRECT,
} service_backend;

/* How databases' files are protected at rest (encryption.h). */
typedef enum encryption_mode {
        ENCRYPTION_AUTO,    /* LUKS2 when data-device is set, else fscrypt; refuse when neither works */
        ENCRYPTION_FSCRYPT,
        ENCRYPTION_LUKS,
        ENCRYPTION_NONE,    /* stated by the operator: no encryption at rest */
} encryption_mode;

typedef struct agent_config {
        char *path;               /* where it was read from */
        char *host;               /* this host's name, as the controller knows it */
        char *state_dir;          /* applied document, results, keys */
        char *data_root;          /* <data-root>/<database>/data */
        char *postgres_bin_dir;
        char *os_user;            /* runs initdb, pg_ctl, postgres */
        service_backend backend;
        char **addresses;         /* this host's addresses: PostgreSQL listens on them */
        size_t n_addresses;
        uint64_t memory_bytes;    /* 0: read /proc/meminfo */
        int cpus;                 /* CPUs reported at enrollment; 0: the online CPUs */
        char *backup_root;        /* local pgBackRest repositories: <backup-root>/<db> */
        char *backup_s3_endpoint; /* an S3-compatible repository instead, when set */
        char *backup_s3_bucket;
        char *backup_s3_region;
        char *backup_s3_key_file; /* "key-id:secret" file, root only */
        bool drill_after_full;    /* a restore drill after each full backup (drill-after-full, default yes) */
        char *trust_key;          /* controller's document-signing public key (PEM) */
        char *unit_dir;           /* where the systemd backend writes units */
        char *restart_command;    /* direct backend: run to restart an application's unit */
        char *apps_dir;           /* application hosts: <app>.env files (0600) and the CA (ca.crt, 0644) */
        char *listen;             /* "ADDR:PORT" of the HTTPS listener the controller pushes to; default
                                   * <first address>:7443, NULL without addresses */
        char *socket_path;        /* agentctl's Unix socket (default /run/infrastream/agent.sock) */
        char *socket_group;       /* group allowed on the socket besides root, or NULL */
        int report_interval;      /* seconds between status reports to the controller (5..86400, 60) */
        encryption_mode encryption; /* encryption = auto | fscrypt | luks | none */
        char *data_device;        /* block device for LUKS2, mounted at data-root; NULL: none */
        char *luks_helper;        /* the LUKS2 helper's socket (infrastream-luks.socket), which
                                   * opens and mounts data-device for us */
} agent_config;

/* Parse a config file. On error returns -EINVAL (or -errno) with "file:line: message" in
 * *ret_error. Unknown keys get a did-you-mean hint. */
int agent_config_load(const char *path, agent_config *ret, char **ret_error);
void agent_config_done(agent_config *c);
/* A deep copy (the daemon's worker thread keeps its own). */
void agent_config_copy(const agent_config *c, agent_config *ret);
/* "10.0.0.2:7443", "[fd00::2]:7443": -EINVAL unless an IP address and a port 1..65535. */
int agent_parse_listen(const char *s, char **ret_address, int *ret_port);
const char *service_backend_to_string(service_backend b);
const char *encryption_mode_to_string(encryption_mode m);
