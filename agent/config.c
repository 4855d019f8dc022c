/* agent.conf: "key = value" lines, '#' comments, an optional [agent] section header. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>

#include "config.h"
#include "fileio.h"
#include "hint.h"
#include "macro.h"
#include "size.h"

static const char *const KEYS[] = {
        "host",           "state-dir",  "data-root", "postgres-bin-dir", "os-user",
        "service-backend", "addresses", "memory",    "trust-key",        "unit-dir",
        "restart-command",
};

const char *service_backend_to_string(service_backend b) {
        return b == SERVICE_SYSTEMD ? "systemd" : "direct";
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
        *c = (agent_config) {};
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
        if (!c.host)
                FAIL("%s: 'host' is required (this host's name in the controller's inventory)", path);
        *ret = c;
        return 0;
fail:
        agent_config_done(&c);
        return r;
}
