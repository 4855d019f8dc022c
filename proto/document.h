/* The desired-state document, version 1: what the controller wants one host to be.
 * The wire form is JSON (json-c). Encoding is canonical: the same document always encodes to
 * the same bytes, and the signature and hash are computed over that canonical form. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DOC_API_VERSION "infrastream.io/v1"
#define DOC_KIND "DesiredState"
#define DOC_MAX_SIZE (64u * 1024u * 1024u) /* bytes accepted by the decoder */
#define DOC_NAME_MAX 63

typedef struct doc_identity {
        char *organization;
        char *organizational_unit;
        char *environment;
        char *project;
} doc_identity;

typedef enum doc_access {
        DOC_ACCESS_READ_ONLY,
        DOC_ACCESS_READ_WRITE,
} doc_access;

/* One LOGIN role per (application, database) grant. */
typedef struct doc_role {
        char *name;           /* PostgreSQL role name */
        char *application;    /* Application manifest name */
        doc_access access;
        char **clients;       /* client addresses in CIDR form, sorted */
        size_t n_clients;
        char *scram_verifier; /* "SCRAM-SHA-256$4096:..." or NULL until credentials exist */
} doc_role;

/* The length of a repository passphrase, in characters of [A-Za-z0-9_-]. */
#define DOC_PASSPHRASE_MIN 32
#define DOC_PASSPHRASE_MAX 256

typedef struct doc_backup {
        bool enabled;
        char *schedule;       /* systemd OnCalendar expression */
        int retention_days;
        char *passphrase;     /* the repository's encryption passphrase (database host only), or NULL */
} doc_backup;

/* clusterSize > 1: one primary and hot standbys, each member on its own host. Present in every
 * member's document (and absent with clusterSize 1, so those documents do not change). */
#define DOC_REPLICATION_USER "infrastream_replication"

typedef enum doc_replication_role {
        DOC_REPLICA_PRIMARY,
        DOC_REPLICA_STANDBY,
} doc_replication_role;

typedef struct doc_member {
        char *host;           /* inventory name, DNS label */
        char *address;        /* the host's first address: replication and client connections */
} doc_member;

typedef struct doc_replication {
        doc_replication_role role; /* this host's */
        char *primary;        /* the primary's host name (one of members) */
        doc_member *members;  /* every member, primary included, sorted by host */
        size_t n_members;
        char *verifier;       /* SCRAM verifier of DOC_REPLICATION_USER: primary's document only */
        char *password;       /* its password in the clear: standbys' documents only (they connect) */
} doc_replication;

typedef struct doc_database {
        char *name;
        doc_identity identity;
        char *hostname;       /* FQDN clients use; also the first TLS name */
        int postgres_version;
        int cpu_count;
        int cluster_size;
        int port;
        char **tls_names;     /* DNS names for the server certificate, sorted */
        size_t n_tls_names;
        char *tls_certificate; /* PEM the controller's CA issued for this host's request, or NULL */
        doc_backup backup;
        doc_role *roles;      /* sorted by name */
        size_t n_roles;
        char **allow;         /* firewall allow-list: union of the roles' clients and the other
                               * members' addresses (/32 or /128), sorted */
        size_t n_allow;
        doc_replication *replication; /* NULL with clusterSize 1 */
} doc_database;

/* One environment variable injected into an application's unit. */
typedef struct doc_env {
        char *name;           /* e.g. DATABASE_CONNECTION_STRING */
        char *database;
        char *db_hostname;
        char *db_address;     /* the database host's address, for hostaddr= (the primary's) */
        char **db_addresses;  /* clusterSize > 1: every member's address, primary first, then the
                               * standbys by host name; NULL/0 otherwise */
        size_t n_db_addresses;
        int port;
        char *role;
        doc_access access;
        char *password;       /* NULL until credentials are delivered (transport issue) */
} doc_env;

typedef struct doc_app {
        char *name;
        doc_identity identity;
        char *unit;           /* systemd unit to restart, e.g. auth-api.service */
        doc_env *env;         /* sorted by name */
        size_t n_env;
} doc_app;

typedef enum doc_host_role {
        DOC_HOST_DATABASE,
        DOC_HOST_APPLICATION,
} doc_host_role;

typedef struct doc_document {
        char *host;
        doc_host_role role;
        uint64_t revision;
        char *commit;         /* source commit of the manifests repo, "" when unknown */
        doc_database *databases; /* sorted by name */
        size_t n_databases;
        doc_app *apps;        /* sorted by name */
        size_t n_apps;
} doc_document;

/* A decoded, signed document: the content plus what was on the envelope. */
typedef struct doc_signature {
        char key_id[17];      /* first 16 hex digits of SHA-256 of the raw public key */
        unsigned char sig[64];
        char sha256[65];      /* hex SHA-256 of the canonical content */
} doc_signature;

void doc_document_free(doc_document *d);
void doc_document_freep(doc_document **d);
const char *doc_access_to_string(doc_access a);
const char *doc_host_role_to_string(doc_host_role r);

/* Canonical JSON of the content, without signature. Pretty (2-space indent), '\n' terminated. */
char *doc_encode(const doc_document *d, size_t *ret_size);

/* Content hash (hex SHA-256 of the canonical encoding with revision and commit zeroed),
 * used to tell whether a host's desired state really changed. */
void doc_content_hash(const doc_document *d, char ret_hex[65]);

/* Strict decode of a document (signed or not). Unknown fields, wrong types, out-of-range values,
 * duplicate names or oversized input are errors: returns -EBADMSG/-E2BIG/... and an error
 * message in *ret_error ("databases[0].port: must be between 1 and 65535"). When the envelope
 * carries a signature and ret_sig is given, it is returned there (and ret_has_sig set). */
int doc_decode(const char *json, size_t size, doc_document **ret, doc_signature *ret_sig,
               bool *ret_has_sig, char **ret_error);
