/* agent.conf: "key = value" lines, '#' comments, an optional [agent] section header. */
#include <arpa/inet.h>
#include <ctype.h>
#include <grp.h>
#include <stdio.h>

#include "config.h"
#include "fileio.h"
#include "hint.h"
#include "macro.h"
#include "size.h"

static const char *const KEYS[] = {
        "host",           "state-dir",  "data-root", "postgres-bin-dir", "os-user",
        "service-backend", "addresses", "memory",    "trust-key",        "unit-dir",
        "restart-command", "apps-dir",   "listen",    "socket",           "socket-group",
        "report-interval", "cpus",       "backup-root", "backup-s3-endpoint", "backup-s3-bucket",
        "backup-s3-region", "backup-s3-key-file", "drill-after-full", "encryption", "data-device",
        "luks-helper",
};

#define AGENT_SOCKET_DEFAULT "/run/infrastream/agent.sock"
#define AGENT_APPS_DIR_DEFAULT "/etc/infrastream/apps"
#define AGENT_LISTEN_PORT_DEFAULT 7443
#define AGENT_REPORT_INTERVAL_DEFAULT 60

const char *service_backend_to_string(service_backend b) {
        return b == SERVICE_SYSTEMD ? "systemd" : "direct";
}

static const char *const encryption_modes[] = {
        [ENCRYPTION_AUTO] = "auto",
        [ENCRYPTION_FSCRYPT] = "fscrypt",
        [ENCRYPTION_LUKS] = "luks",
        [ENCRYPTION_NONE] = "none",
};

const char *encryption_mode_to_string(encryption_mode m) {
        return encryption_modes[m];
}

void agent_config_done(agent_config *c) {
        free(c->path);
        free(c->host);
        free(c->state_dir);
        free(c->data_root);
        free(c->postgres_bin_dir);
        free(c->os_user);
        for (size_t i = 0; i < c->n_addresses; i++)
                free(c->addresses[i]);
        free(c->addresses);
        free(c->trust_key);
        free(c->unit_dir);
        free(c->restart_command);
        free(c->apps_dir);
        free(c->listen);
        free(c->socket_path);
        free(c->socket_group);
        free(c->backup_root);
        free(c->backup_s3_endpoint);
        free(c->backup_s3_bucket);
        free(c->backup_s3_region);
        free(c->backup_s3_key_file);
        free(c->data_device);
        free(c->luks_helper);
        *c = (agent_config) {};
}

static char *strdup_or_null(const char *s) {
        return s ? xstrdup(s) : NULL;
}

void agent_config_copy(const agent_config *c, agent_config *ret) {
        *ret = *c;
        ret->path = strdup_or_null(c->path);
        ret->host = strdup_or_null(c->host);
        ret->state_dir = strdup_or_null(c->state_dir);
        ret->data_root = strdup_or_null(c->data_root);
        ret->postgres_bin_dir = strdup_or_null(c->postgres_bin_dir);
        ret->os_user = strdup_or_null(c->os_user);
        ret->addresses = c->n_addresses ? xcalloc(c->n_addresses, sizeof(char *)) : NULL;
        for (size_t i = 0; i < c->n_addresses; i++)
                ret->addresses[i] = xstrdup(c->addresses[i]);
        ret->trust_key = strdup_or_null(c->trust_key);
        ret->unit_dir = strdup_or_null(c->unit_dir);
        ret->restart_command = strdup_or_null(c->restart_command);
        ret->apps_dir = strdup_or_null(c->apps_dir);
        ret->listen = strdup_or_null(c->listen);
        ret->socket_path = strdup_or_null(c->socket_path);
        ret->socket_group = strdup_or_null(c->socket_group);
        ret->backup_root = strdup_or_null(c->backup_root);
        ret->backup_s3_endpoint = strdup_or_null(c->backup_s3_endpoint);
        ret->backup_s3_bucket = strdup_or_null(c->backup_s3_bucket);
        ret->backup_s3_region = strdup_or_null(c->backup_s3_region);
        ret->backup_s3_key_file = strdup_or_null(c->backup_s3_key_file);
        ret->data_device = strdup_or_null(c->data_device);
        ret->luks_helper = strdup_or_null(c->luks_helper);
}

int agent_parse_listen(const char *s, char **ret_address, int *ret_port) {
        const char *colon, *addr_start, *addr_end;
        unsigned char buf[16];
        char addr[INET6_ADDRSTRLEN], *end;
        long port;

        if (s[0] == '[') {
                addr_end = strchr(s, ']');
                if (!addr_end || addr_end[1] != ':')
                        return -EINVAL;
                addr_start = s + 1;
                colon = addr_end + 1;
        } else {
                colon = strrchr(s, ':');
                if (!colon || memchr(s, ':', (size_t) (colon - s)))
                        return -EINVAL; /* an IPv6 address needs brackets */
                addr_start = s;
                addr_end = colon;
        }
        if (addr_end - addr_start <= 0 || (size_t) (addr_end - addr_start) >= sizeof(addr))
                return -EINVAL;
        memcpy(addr, addr_start, (size_t) (addr_end - addr_start));
        addr[addr_end - addr_start] = '\0';
        if (s[0] == '[' ? inet_pton(AF_INET6, addr, buf) != 1 : inet_pton(AF_INET, addr, buf) != 1)
                return -EINVAL;
        if (!isdigit((unsigned char) colon[1]))
                return -EINVAL;
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno || *end || port < 1 || port > 65535)
                return -EINVAL;
        if (ret_address)
                *ret_address = xstrdup(addr);
        if (ret_port)
                *ret_port = (int) port;
        return 0;
}

static char *strip(char *s) {
        char *e;
        while (isspace((unsigned char) *s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                *--e = '\0';
        return s;
}

static bool absolute_path(const char *v) {
        return v[0] == '/';
}

#define FAIL(...)                                                                \
        do {                                                                     \
                *ret_error = xasprintf(__VA_ARGS__);                             \
                r = -EINVAL;                                                     \
                goto fail;                                                       \
        } while (0)

int agent_config_load(const char *path, agent_config *ret, char **ret_error) {
        _cleanup_free_ char *data = NULL;
        agent_config c = {
                .backend = SERVICE_SYSTEMD,
        };
        char *line, *next;
        int r, lineno = 0;

        r = read_full_file(path, 1 << 20, &data, NULL);
        if (r < 0) {
                *ret_error = xasprintf("%s: cannot read: %s", path, strerror(-r));
                return r;
        }
        c.path = xstrdup(path);
        c.state_dir = xstrdup("/var/lib/infrastream/agent");
        c.data_root = xstrdup("/var/lib/infrastream/data");
        c.postgres_bin_dir = xstrdup("/usr/lib/postgresql/15/bin");
        c.os_user = xstrdup("postgres");
        c.unit_dir = xstrdup("/etc/systemd/system");
        c.apps_dir = xstrdup(AGENT_APPS_DIR_DEFAULT);
        c.socket_path = xstrdup(AGENT_SOCKET_DEFAULT);
        c.luks_helper = xstrdup(AGENT_LUKS_HELPER_DEFAULT);
        c.report_interval = AGENT_REPORT_INTERVAL_DEFAULT;
        c.backup_root = xstrdup("/var/lib/infrastream/backup");
        c.drill_after_full = true;

        for (line = data; line; line = next) {
                char *key, *value, *eq, **slot = NULL;

                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                lineno++;
                line = strip(line);
                if (!*line || *line == '#' || *line == ';')
                        continue;
                if (*line == '[') {
                        if (!streq(line, "[agent]"))
                                FAIL("%s:%d: unknown section '%.64s'; the agent reads only [agent]", path, lineno, line);
                        continue;
                }
                eq = strchr(line, '=');
                if (!eq)
                        FAIL("%s:%d: expected 'key = value'", path, lineno);
                *eq = '\0';
                key = strip(line);
                value = strip(eq + 1);
                if (value[0] == '"' && strlen(value) >= 2 && value[strlen(value) - 1] == '"') {
                        value[strlen(value) - 1] = '\0';
                        value++;
                }

                if (streq(key, "host"))
                        slot = &c.host;
                else if (streq(key, "state-dir"))
                        slot = &c.state_dir;
                else if (streq(key, "data-root"))
                        slot = &c.data_root;
                else if (streq(key, "postgres-bin-dir"))
                        slot = &c.postgres_bin_dir;
                else if (streq(key, "os-user"))
                        slot = &c.os_user;
                else if (streq(key, "trust-key"))
                        slot = &c.trust_key;
                else if (streq(key, "unit-dir"))
                        slot = &c.unit_dir;
                else if (streq(key, "restart-command"))
                        slot = &c.restart_command;
                else if (streq(key, "apps-dir"))
                        slot = &c.apps_dir;
                else if (streq(key, "socket"))
                        slot = &c.socket_path;
                else if (streq(key, "backup-root"))
                        slot = &c.backup_root;
                else if (streq(key, "backup-s3-key-file"))
                        slot = &c.backup_s3_key_file;
                else if (streq(key, "data-device"))
                        slot = &c.data_device;
                else if (streq(key, "luks-helper"))
                        slot = &c.luks_helper;
                else if (streq(key, "encryption")) {
                        size_t m;
                        for (m = 0; m < ELEMENTSOF(encryption_modes); m++)
                                if (streq(value, encryption_modes[m]))
                                        break;
                        if (m == ELEMENTSOF(encryption_modes))
                                FAIL("%s:%d: encryption must be 'auto', 'fscrypt', 'luks' or 'none', not '%.64s'", path,
                                     lineno, value);
                        c.encryption = (encryption_mode) m;
                        continue;
                }
                else if (streq(key, "backup-s3-endpoint") || streq(key, "backup-s3-bucket") ||
                         streq(key, "backup-s3-region")) {
                        char **s3 = streq(key, "backup-s3-endpoint") ? &c.backup_s3_endpoint
                                  : streq(key, "backup-s3-bucket")   ? &c.backup_s3_bucket
                                                                     : &c.backup_s3_region;
                        /* They end up as lines of pgBackRest's config file. */
                        if (!*value || strpbrk(value, " \t\n\r=#[]"))
                                FAIL("%s:%d: %s needs a value without spaces, '=', '#' or brackets, not '%.64s'", path,
                                     lineno, key, value);
                        free(*s3);
                        *s3 = xstrdup(value);
                        continue;
                } else if (streq(key, "drill-after-full")) {
                        if (streq(value, "yes") || streq(value, "true"))
                                c.drill_after_full = true;
                        else if (streq(value, "no") || streq(value, "false"))
                                c.drill_after_full = false;
                        else
                                FAIL("%s:%d: drill-after-full must be 'yes' or 'no', not '%.64s'", path, lineno, value);
                        continue;
                }
                else if (streq(key, "listen")) {
                        if (agent_parse_listen(value, NULL, NULL) < 0)
                                FAIL("%s:%d: listen must be ADDRESS:PORT (10.0.0.2:7443, [fd00::2]:7443, "
                                     "0.0.0.0:7443), not '%.64s'",
                                     path, lineno, value);
                        free(c.listen);
                        c.listen = xstrdup(value);
                        continue;
                } else if (streq(key, "socket-group")) {
                        struct group gr, *res = NULL;
                        char buf[4096];
                        if (!*value)
                                FAIL("%s:%d: socket-group needs a value", path, lineno);
                        if (getgrnam_r(value, &gr, buf, sizeof(buf), &res) != 0 || !res)
                                FAIL("%s:%d: socket-group: no group '%.64s' on this host", path, lineno, value);
                        free(c.socket_group);
                        c.socket_group = xstrdup(value);
                        continue;
                } else if (streq(key, "report-interval")) {
                        char *end;
                        long v;
                        errno = 0;
                        v = strtol(value, &end, 10);
                        if (!isdigit((unsigned char) value[0]) || errno || *end || v < 5 || v > 86400)
                                FAIL("%s:%d: report-interval takes seconds from 5 to 86400, not '%.64s'", path,
                                     lineno, value);
                        c.report_interval = (int) v;
                        continue;
                }
                else if (streq(key, "service-backend")) {
                        if (streq(value, "systemd"))
                                c.backend = SERVICE_SYSTEMD;
                        else if (streq(value, "direct"))
                                c.backend = SERVICE_DIRECT;
                        else
                                FAIL("%s:%d: service-backend must be 'systemd' or 'direct', not '%.64s'", path, lineno,
                                     value);
                        continue;
                } else if (streq(key, "addresses")) {
                        char *tok, *s2 = NULL;
                        for (char *q = value;; q = NULL) {
                                unsigned char buf[16];
                                tok = strtok_r(q, ", \t", &s2);
                                if (!tok)
                                        break;
                                if (inet_pton(AF_INET, tok, buf) != 1 && inet_pton(AF_INET6, tok, buf) != 1)
                                        FAIL("%s:%d: '%.64s' is not an IPv4 or IPv6 address", path, lineno, tok);
                                c.addresses = xrealloc(c.addresses, (c.n_addresses + 1) * sizeof(char *));
                                c.addresses[c.n_addresses++] = xstrdup(tok);
                        }
                        continue;
                } else if (streq(key, "memory")) {
                        if (parse_size(value, &c.memory_bytes) < 0)
                                FAIL("%s:%d: memory must be a size such as 16GiB, not '%.64s'", path, lineno, value);
                        continue;
                } else if (streq(key, "cpus")) {
                        char *end = NULL;
                        long v;
                        errno = 0;
                        v = strtol(value, &end, 10);
                        if (errno || end == value || *end || v < 1 || v > 65536)
                                FAIL("%s:%d: cpus must be a whole number from 1 to 65536, not '%.64s'", path, lineno,
                                     value);
                        c.cpus = (int) v;
                        continue;
                } else {
                        const char *hint = closest_word(key, KEYS, ELEMENTSOF(KEYS));
                        if (hint)
                                FAIL("%s:%d: unknown key '%.64s'; did you mean '%s'?", path, lineno, key, hint);
                        FAIL("%s:%d: unknown key '%.64s'", path, lineno, key);
                }
                if (!*value)
                        FAIL("%s:%d: %s needs a value", path, lineno, key);
                if (slot != &c.host && slot != &c.os_user && slot != &c.restart_command && !absolute_path(value))
                        FAIL("%s:%d: %s must be an absolute path, not '%.64s'", path, lineno, key, value);
                free(*slot);
                *slot = xstrdup(value);
        }
        if (!!c.backup_s3_bucket != !!c.backup_s3_endpoint || (c.backup_s3_bucket && !c.backup_s3_key_file))
                FAIL("%s: an S3 repository needs backup-s3-endpoint, backup-s3-bucket and backup-s3-key-file", path);
        if (c.encryption == ENCRYPTION_LUKS && !c.data_device)
                FAIL("%s: encryption = luks needs data-device (the block device to format and mount at data-root)", path);
        if (c.encryption == ENCRYPTION_FSCRYPT && c.data_device)
                FAIL("%s: data-device is formatted with LUKS2: it cannot go with encryption = fscrypt", path);
        if (c.encryption == ENCRYPTION_NONE && c.data_device)
                FAIL("%s: data-device is only used with encryption (LUKS2): remove it or drop encryption = none", path);
        if (!c.host)
                FAIL("%s: 'host' is required (this host's name in the controller's inventory)", path);
        /* The listener answers on this host's first address unless told otherwise: that is the
         * endpoint enrollment tells the controller. */
        if (!c.listen && c.n_addresses > 0)
                c.listen = strchr(c.addresses[0], ':') ? xasprintf("[%s]:%d", c.addresses[0], AGENT_LISTEN_PORT_DEFAULT)
                                                       : xasprintf("%s:%d", c.addresses[0], AGENT_LISTEN_PORT_DEFAULT);
        *ret = c;
        return 0;
fail:
        agent_config_done(&c);
        return r;
}
