/* Application hosts: the connection strings the controller granted, injected into the apps' units
 * through an environment file and a systemd drop-in, and a restart when (only when) an app's
 * environment changed. The passwords exist in the document, in memory while an apply runs and in
 * the 0600 environment files; nowhere else: results, apps.json and messages carry names only. */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "apps.h"
#include "enroll.h"
#include "fileio.h"
#include "proc.h"
#include "strbuf.h"
#include "systemd.h"
#include "x509.h"

#define APPS_DIR_DEFAULT "/etc/infrastream/apps"
#define ENV_FILE_MAX (1u << 20)
#define STATE_MAX (16u << 20)
#define MANAGED_HEADER "# Managed by infrastream-agent: rewritten on every apply, do not edit.\n"

static void json_unrefp(json_object **o) {
        json_object_put(*o); /* accepts NULL */
}

/* ---- names ------------------------------------------------------------------------------- */

static bool valid_app_name(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > DOC_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
                        return false;
        return true;
}

/* What the controller's manifest rules allow (controller/manifest.c): no '/', so the name is one
 * path component of the drop-in directory. */
static bool valid_unit_name(const char *s) {
        size_t n = strlen(s);

        if (n <= strlen(".service") || n > 255 || s[0] == '.' || !streq(s + n - strlen(".service"), ".service"))
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr(":-_.\\@", *p)))
                        return false;
        return true;
}

static bool valid_env_name(const char *s) {
        if (!((*s >= 'A' && *s <= 'Z') || *s == '_') || strlen(s) > 255)
                return false;
        for (s++; *s; s++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
                        return false;
        return true;
}

static bool valid_address(const char *s) {
        unsigned char buf[16];
        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* The directory appears in EnvironmentFile= (where '%' is a specifier and blanks split values)
 * and in the connection strings: plain path characters only. */
static bool valid_apps_dir(const char *s) {
        if (s[0] != '/')
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr("/._-+@", *p)))
                        return false;
        return true;
}

int apps_check(const doc_document *d, char **ret_error) {
        for (size_t i = 0; i < d->n_apps; i++) {
                const doc_app *a = &d->apps[i];

                if (!valid_app_name(a->name)) {
                        *ret_error = xasprintf("applications[%zu].name: '%.64s' is not a valid application name "
                                               "(lower-case letters, digits and '-')",
                                               i, a->name);
                        return -EINVAL;
                }
                if (!valid_unit_name(a->unit)) {
                        *ret_error = xasprintf("applications[%zu].unit: '%.64s' is not a systemd service name", i,
                                               a->unit);
                        return -EINVAL;
                }
                /* One drop-in per unit: two apps in one unit would overwrite each other's. */
                for (size_t k = 0; k < i; k++)
                        if (streq(d->apps[k].unit, a->unit)) {
                                *ret_error = xasprintf("applications[%zu].unit: '%.64s' is also the unit of '%s'", i,
                                                       a->unit, d->apps[k].name);
                                return -EINVAL;
                        }
                for (size_t j = 0; j < a->n_env; j++) {
                        const doc_env *e = &a->env[j];
                        const char *what = NULL;

                        if (!valid_env_name(e->name))
                                what = "name: not an environment variable name (A-Z, 0-9, '_')";
                        else if (!x509_dns_name_valid(e->db_hostname))
                                what = "dbHostname: not a DNS host name";
                        else if (!valid_address(e->db_address))
                                what = "dbAddress: not an IPv4 or IPv6 address";
                        if (what) {
                                *ret_error = xasprintf("applications[%zu].env[%zu].%s", i, j, what);
                                return -EINVAL;
                        }
                }
        }
        return 0;
}

/* ---- connection strings ------------------------------------------------------------------ */

/* RFC 3986 percent-encoding of everything but the unreserved characters (and '/' in paths). */
static void url_encode(strbuf *b, const char *s, bool keep_slash) {
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                    strchr("-._~", *p) || (keep_slash && *p == '/')) {
                        char c[2] = { (char) *p, 0 };
                        strbuf_append(b, c);
                } else
                        strbuf_printf(b, "%%%02X", *p);
        }
}

/* A buffer for a secret: sized once, up front, so appending never reallocates (which would leave
 * a copy behind in freed memory). cap must bound everything appended. */
static void secret_init(strbuf *b, size_t cap) {
        *b = (strbuf) { .s = xmalloc(cap + 1), .alloc = cap + 1 };
        b->s[0] = '\0';
}

static void strbuf_erase(strbuf *b) {
        if (b->s)
                explicit_bzero(b->s, b->alloc);
        strbuf_done(b);
}

char *apps_connection_string(const doc_env *e, const char *ca_file, bool resolve) {
        strbuf b;

        if (!e->password)
                return NULL;
        size_t members = e->n_db_addresses > 1 ? e->n_db_addresses : 1, addresses = strlen(e->db_address);

        for (size_t i = 0; i < e->n_db_addresses; i++)
                addresses += strlen(e->db_addresses[i]) + 1;
        secret_init(&b, 160 + 3 * (strlen(e->role) + strlen(e->password) + strlen(e->database) + strlen(ca_file)) +
                                members * (strlen(e->db_hostname) + 8) + addresses);
        strbuf_append(&b, "postgresql://");
        url_encode(&b, e->role, false);
        strbuf_append(&b, ":");
        url_encode(&b, e->password, false);
        /* Every member serves the same TLS name: one host entry per member, told apart by hostaddr. */
        strbuf_append(&b, "@");
        for (size_t i = 0; i < members; i++)
                strbuf_printf(&b, "%s%s:%d", i ? "," : "", e->db_hostname, e->port);
        strbuf_append(&b, "/");
        url_encode(&b, e->database, false);
        strbuf_append(&b, "?sslmode=verify-full&sslrootcert=");
        url_encode(&b, ca_file, true);
        if (members > 1) {
                /* The name cannot say which member is which, so the addresses are always given;
                 * libpq (14+) picks the primary for writers and prefers a standby for readers. */
                strbuf_append(&b, "&hostaddr=");
                for (size_t i = 0; i < members; i++)
                        strbuf_printf(&b, "%s%s", i ? "," : "", e->db_addresses[i]);
                strbuf_printf(&b, "&target_session_attrs=%s",
                              e->access == DOC_ACCESS_READ_WRITE ? "read-write" : "prefer-standby");
                return strbuf_steal(&b);
        }
        /* The name stays (verify-full checks the certificate against it); the address only says
         * where to connect when the name does not resolve here. */
        if (!resolve)
                strbuf_printf(&b, "&hostaddr=%s", e->db_address);
        return strbuf_steal(&b);
}

static bool resolves(const char *name) {
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *ai = NULL;

        if (getaddrinfo(name, NULL, &hints, &ai) != 0)
                return false;
        freeaddrinfo(ai);
        return true;
}

/* ---- apps.json --------------------------------------------------------------------------- */

static void entry_done(apps_entry *e) {
        free(e->name);
        free(e->unit);
        for (size_t i = 0; i < e->n_variables; i++)
                free(e->variables[i]);
        free(e->variables);
        free(e->last_result);
        *e = (apps_entry) {};
}

void apps_state_done(apps_state *s) {
        for (size_t i = 0; i < s->n_apps; i++)
                entry_done(&s->apps[i]);
        free(s->apps);
        *s = (apps_state) {};
}

const apps_entry *apps_state_find(const apps_state *s, const char *name) {
        for (size_t i = 0; i < s->n_apps; i++)
                if (streq(s->apps[i].name, name))
                        return &s->apps[i];
        return NULL;
}

static char *state_path(const agent_config *cfg) {
        return xasprintf("%s/" APPS_STATE_FILE, cfg->state_dir);
}

static const char *get_string(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static int parse_state(json_object *root, apps_state *ret) {
        json_object *apps, *v;
        apps_state s = {};

        if (!json_object_object_get_ex(root, "apps", &apps) || !json_object_is_type(apps, json_type_array))
                return -EBADMSG;
        s.apps = xcalloc(json_object_array_length(apps) + 1, sizeof(apps_entry));
        for (size_t i = 0; i < json_object_array_length(apps); i++) {
                json_object *o = json_object_array_get_idx(apps, i), *vars;
                const char *name = get_string(o, "name"), *unit = get_string(o, "unit"),
                           *result = get_string(o, "lastResult");
                apps_entry *e = &s.apps[s.n_apps];

                if (!name || !unit || !valid_app_name(name) || !valid_unit_name(unit) ||
                    !json_object_object_get_ex(o, "variables", &vars) || !json_object_is_type(vars, json_type_array)) {
                        apps_state_done(&s);
                        return -EBADMSG;
                }
                s.n_apps++;
                e->name = xstrdup(name);
                e->unit = xstrdup(unit);
                e->last_result = result ? xstrdup(result) : NULL;
                e->variables = xcalloc(json_object_array_length(vars) + 1, sizeof(char *));
                for (size_t j = 0; j < json_object_array_length(vars); j++) {
                        const char *n = json_object_get_string(json_object_array_get_idx(vars, j));
                        if (n && valid_env_name(n))
                                e->variables[e->n_variables++] = xstrdup(n);
                }
                if (json_object_object_get_ex(o, "lastRestart", &v) && json_object_is_type(v, json_type_int))
                        e->last_restart = json_object_get_int64(v);
                if (json_object_object_get_ex(o, "restartPending", &v))
                        e->restart_pending = json_object_get_boolean(v);
        }
        *ret = s;
        return 0;
}

int apps_load_state(const agent_config *cfg, apps_state *ret, char **ret_error) {
        _cleanup_free_ char *path = state_path(cfg), *text = NULL;
        _cleanup_(json_unrefp) json_object *root = NULL;
        int r;

        r = read_full_file(path, STATE_MAX, &text, NULL);
        if (r == -ENOENT) {
                *ret = (apps_state) {};
                return 0;
        }
        if (r < 0) {
                *ret_error = xasprintf("cannot read %s: %s", path, strerror(-r));
                return r;
        }
        root = json_tokener_parse(text);
        if (!root || parse_state(root, ret) < 0) {
                *ret_error = xasprintf("%s is damaged", path);
                return -EBADMSG;
        }
        return 0;
}

static int save_state(const agent_config *cfg, const apps_state *s, char **ret_error) {
        _cleanup_free_ char *path = state_path(cfg);
        _cleanup_(json_unrefp) json_object *root = json_object_new_object();
        json_object *apps = json_object_new_array();
        const char *text;
        int r;

        for (size_t i = 0; i < s->n_apps; i++) {
                const apps_entry *e = &s->apps[i];
                json_object *o = json_object_new_object(), *vars = json_object_new_array();

                json_object_object_add(o, "name", json_object_new_string(e->name));
                json_object_object_add(o, "unit", json_object_new_string(e->unit));
                for (size_t j = 0; j < e->n_variables; j++)
                        json_object_array_add(vars, json_object_new_string(e->variables[j]));
                json_object_object_add(o, "variables", vars);
                json_object_object_add(o, "lastRestart", e->last_restart ? json_object_new_int64(e->last_restart) : NULL);
                json_object_object_add(o, "lastResult", e->last_result ? json_object_new_string(e->last_result) : NULL);
                json_object_object_add(o, "restartPending", json_object_new_boolean(e->restart_pending));
                json_object_array_add(apps, o);
        }
        json_object_object_add(root, "apps", apps);
        text = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        r = write_file_atomic(path, text, strlen(text), 0600);
        if (r < 0) {
                *ret_error = xasprintf("cannot write %s: %s", path, strerror(-r));
                return r;
        }
        return 0;
}

/* ---- the plan ---------------------------------------------------------------------------- */

/* One application: in the document (app set), or only in the last state / the apps directory. */
typedef struct plan {
        const doc_app *app;
        char *name;
        char *unit;            /* NULL: unknown (an env file nobody recorded) */
        char *old_unit;        /* the unit the last apply injected into, when it was another */
        char *env_path, *drop_in_dir, *drop_in;
        char *content;         /* the env file wanted (secret), NULL: none */
        char **vars;           /* its variable names, sorted (the document's order) */
        size_t n_vars;
        strbuf waiting;        /* variables without a password yet */
        strbuf diff;           /* "X changed, Y added, Z removed" */
        bool had_file, env_changed, mode_fixed, drop_in_changed, restart, restarted, failed;
        bool unit_missing;     /* systemd knows no such unit: nothing ran it */
        char *error;           /* why it failed (never a secret) */
        apps_entry *entry;     /* in the new state, or NULL when the app is gone for good */
} plan;

static void plan_done(plan *p) {
        free(p->name);
        free(p->unit);
        free(p->old_unit);
        free(p->env_path);
        free(p->drop_in_dir);
        free(p->drop_in);
        erase_and_free(p->content);
        free(p->vars);
        strbuf_done(&p->waiting);
        strbuf_done(&p->diff);
        free(p->error);
}

/* Record why p failed (appended to what failed before); -EIO. */
static int plan_fail(plan *p, const char *fmt, ...) _printf_(2, 3);
static int plan_fail(plan *p, const char *fmt, ...) {
        va_list ap;
        char *m;

        p->failed = true;
        va_start(ap, fmt);
        if (vasprintf(&m, fmt, ap) < 0)
                abort();
        va_end(ap);
        if (!p->error)
                p->error = m;
        else {
                char *both = xasprintf("%s; %s", p->error, m);
                free(p->error);
                free(m);
                p->error = both;
        }
        return -EIO;
}

static void set_paths(plan *p, const agent_config *cfg, const char *apps_dir) {
        p->env_path = xasprintf("%s/%s.env", apps_dir, p->name);
        if (p->unit) {
                p->drop_in_dir = xasprintf("%s/%s.d", cfg->unit_dir, p->unit);
                p->drop_in = xasprintf("%s/" APPS_DROP_IN, p->drop_in_dir);
        }
}

/* The variable names in an env file we wrote, each with its value's line, for the diff. */
typedef struct env_line {
        const char *name;
        size_t name_len;
        const char *line;      /* the whole line, value included */
        size_t line_len;
} env_line;

static size_t env_lines(const char *text, env_line *out, size_t max) {
        size_t n = 0;

        for (const char *p = text; p && *p && n < max;) {
                const char *nl = strchr(p, '\n'), *eq = strchr(p, '=');
                size_t len = nl ? (size_t) (nl - p) : strlen(p);

                /* Only names we could have written: a hand-made line is never echoed. */
                if (eq && eq < p + len && eq > p) {
                        _cleanup_free_ char *name = xstrndup(p, (size_t) (eq - p));
                        if (valid_env_name(name))
                                out[n++] = (env_line) { p, (size_t) (eq - p), p, len };
                }
                p = nl ? nl + 1 : NULL;
        }
        return n;
}

static const env_line *find_line(const env_line *l, size_t n, const char *name, size_t len) {
        for (size_t i = 0; i < n; i++)
                if (l[i].name_len == len && memcmp(l[i].name, name, len) == 0)
                        return &l[i];
        return NULL;
}

/* "A changed, B added, C removed" between the file we had and the one we want. */
static void describe_diff(plan *p, const char *old, const char *new) {
        env_line a[256], b[256];
        size_t na = old ? env_lines(old, a, ELEMENTSOF(a)) : 0, nb = new ? env_lines(new, b, ELEMENTSOF(b)) : 0;
        const char *sep = "";

        for (size_t i = 0; i < nb; i++) {
                const env_line *o = find_line(a, na, b[i].name, b[i].name_len);
                if (o && o->line_len == b[i].line_len && memcmp(o->line, b[i].line, o->line_len) == 0)
                        continue;
                strbuf_printf(&p->diff, "%s%.*s %s", sep, (int) b[i].name_len, b[i].name, o ? "changed" : "added");
                sep = ", ";
        }
        for (size_t i = 0; i < na; i++)
                if (!find_line(b, nb, a[i].name, a[i].name_len)) {
                        strbuf_printf(&p->diff, "%s%.*s removed", sep, (int) a[i].name_len, a[i].name);
                        sep = ", ";
                }
}

/* The wanted env file of app (NULL when no variable has credentials yet). */
static void build_content(plan *p, const doc_app *a, const char *ca_file) {
        char **cs = xcalloc(a->n_env + 1, sizeof(char *)), **resolved = xcalloc(a->n_env + 1, sizeof(char *));
        bool *ok = xcalloc(a->n_env + 1, sizeof(bool));
        size_t n_resolved = 0, cap = strlen(MANAGED_HEADER);
        strbuf b;

        p->vars = xcalloc(a->n_env + 1, sizeof(char *));
        for (size_t i = 0; i < a->n_env; i++) {
                const doc_env *e = &a->env[i];
                bool r = false, found = false;

                if (!e->password) {
                        strbuf_printf(&p->waiting, "%s%s", p->waiting.s ? ", " : "", e->name);
                        continue;
                }
                /* One lookup per name per apply: a name that does not resolve can cost a timeout. */
                for (size_t k = 0; k < n_resolved && !found; k++)
                        if (streq(resolved[k], e->db_hostname))
                                found = true, r = ok[k];
                if (!found) {
                        r = resolves(e->db_hostname);
                        resolved[n_resolved] = e->db_hostname;
                        ok[n_resolved++] = r;
                }
                cs[i] = apps_connection_string(e, ca_file, r);
                cap += strlen(e->name) + strlen(cs[i]) + 4;
                p->vars[p->n_vars++] = e->name;
        }
        if (p->n_vars > 0) {
                secret_init(&b, cap);
                strbuf_append(&b, MANAGED_HEADER);
                /* Single quotes: systemd takes the value verbatim, and so does a shell that sources
                 * the file. The value never holds one (percent-encoded). */
                for (size_t i = 0; i < a->n_env; i++)
                        if (cs[i])
                                strbuf_printf(&b, "%s='%s'\n", a->env[i].name, cs[i]);
                p->content = strbuf_steal(&b);
        }
        for (size_t i = 0; i < a->n_env; i++)
                erase_and_free(cs[i]);
        free(cs);
        free(resolved);
        free(ok);
}

/* Read what the env file holds now; compare. */
static int examine_env(plan *p) {
        _cleanup_free_ char *old = NULL;
        size_t size = 0;
        struct stat st;
        int r;

        r = read_full_file(p->env_path, ENV_FILE_MAX, &old, &size);
        if (r == -ENOENT) {
                p->env_changed = p->content != NULL;
                if (p->content)
                        describe_diff(p, NULL, p->content);
                return 0;
        }
        if (r < 0)
                return plan_fail(p, "cannot read %s: %s", p->env_path, strerror(-r));
        p->had_file = true;
        p->env_changed = !p->content || !streq(old, p->content);
        if (p->env_changed)
                describe_diff(p, old, p->content);
        else if (stat(p->env_path, &st) == 0 &&
                 ((st.st_mode & 07777) != 0600 || st.st_uid != geteuid() || st.st_gid != getegid()))
                p->mode_fixed = true;
        explicit_bzero(old, size);
        return 0;
}

static int remove_file(const char *path, bool *ret_removed) {
        if (unlink(path) == 0) {
                *ret_removed = true;
                return 0;
        }
        return errno == ENOENT ? 0 : -errno;
}

/* The env file and the drop-in as the plan wants them. */
static int write_files(plan *p, const char *apps_dir, const agent_config *cfg) {
        _cleanup_free_ char *drop_in_text = NULL;
        bool removed = false;
        int r;

        if (p->content && (p->env_changed || p->mode_fixed)) {
                /* Created 0600 before a byte is written; owned by us (root). */
                r = write_file_atomic_owned(p->env_path, p->content, strlen(p->content), 0600, geteuid(), getegid());
                if (r < 0)
                        return plan_fail(p, "cannot write %s: %s", p->env_path, strerror(-r));
        } else if (!p->content && p->had_file) {
                r = remove_file(p->env_path, &removed);
                if (r < 0)
                        return plan_fail(p, "cannot remove %s: %s", p->env_path, strerror(-r));
        }
        if (p->old_unit) {
                _cleanup_free_ char *dir = xasprintf("%s/%s.d", cfg->unit_dir, p->old_unit),
                                    *file = xasprintf("%s/" APPS_DROP_IN, dir);
                removed = false;
                r = remove_file(file, &removed);
                if (r < 0)
                        return plan_fail(p, "cannot remove %s: %s", file, strerror(-r));
                p->drop_in_changed |= removed;
                (void) rmdir(dir); /* only when empty: other drop-ins are not ours */
        }
        if (!p->drop_in)
                return 0;
        if (p->content) {
                drop_in_text = xasprintf(MANAGED_HEADER "[Service]\nEnvironmentFile=%s/%s.env\n", apps_dir, p->name);
                r = mkdir_p(p->drop_in_dir, 0755);
                if (r < 0)
                        return plan_fail(p, "cannot create %s: %s", p->drop_in_dir, strerror(-r));
                r = write_file_atomic(p->drop_in, drop_in_text, strlen(drop_in_text), 0644);
                if (r < 0)
                        return plan_fail(p, "cannot write %s: %s", p->drop_in, strerror(-r));
                p->drop_in_changed |= r > 0;
        } else {
                removed = false;
                r = remove_file(p->drop_in, &removed);
                if (r < 0)
                        return plan_fail(p, "cannot remove %s: %s", p->drop_in, strerror(-r));
                p->drop_in_changed |= removed;
                (void) rmdir(p->drop_in_dir);
        }
        return 0;
}

/* Whether text shows one of the document's passwords (as is or percent-encoded). */
static bool shows_secret(const doc_document *d, const char *text) {
        for (size_t i = 0; i < d->n_apps; i++)
                for (size_t j = 0; j < d->apps[i].n_env; j++) {
                        const char *pw = d->apps[i].env[j].password;
                        strbuf enc;
                        bool hit;

                        if (!pw || !*pw)
                                continue;
                        secret_init(&enc, 3 * strlen(pw));
                        url_encode(&enc, pw, false);
                        hit = strstr(text, pw) || strstr(text, enc.s);
                        strbuf_erase(&enc);
                        if (hit)
                                return true;
                }
        return false;
}

static int run_restart_command(const agent_config *cfg, const doc_document *d, const plan *p, const char *unit,
                               char **ret_error) {
        _cleanup_free_ char *cmd = NULL, *e_app = NULL, *e_unit = NULL, *e_file = NULL;
        const char *argv[32];
        const char *env[4];
        proc_result res = {};
        size_t n = 0;
        char *save = NULL, line[512];
        int r;

        if (!cfg->restart_command) {
                *ret_error = xstrdup("the direct service backend needs restart-command in the configuration");
                return -EINVAL;
        }
        cmd = xstrdup(cfg->restart_command);
        for (char *tok = strtok_r(cmd, " \t", &save); tok && n < ELEMENTSOF(argv) - 1; tok = strtok_r(NULL, " \t", &save))
                argv[n++] = tok;
        argv[n] = NULL;
        if (n == 0 || argv[0][0] != '/') {
                *ret_error = xstrdup("restart-command must start with an absolute path");
                return -EINVAL;
        }
        /* Names and a path only: the command reads the file if it wants the values. */
        e_app = xasprintf("INFRASTREAM_APP=%s", p->name);
        e_unit = xasprintf("INFRASTREAM_UNIT=%s", unit);
        e_file = xasprintf("INFRASTREAM_ENV_FILE=%s", p->env_path);
        env[0] = e_app, env[1] = e_unit, env[2] = e_file, env[3] = NULL;
        r = proc_run(argv, NULL, "/", env, &res);
        if (r < 0) {
                *ret_error = xasprintf("cannot run %s: %s", argv[0], strerror(-r));
                return r;
        }
        if (res.exit_status != 0) {
                proc_last_line(&res, line, sizeof(line));
                if (shows_secret(d, line))
                        snprintf(line, sizeof(line), "(output withheld: it shows a password)");
                *ret_error = xasprintf("%s exited with status %d%s%s", argv[0], res.exit_status, *line ? ": " : "",
                                       line);
                r = -EIO;
        }
        if (res.output)
                explicit_bzero(res.output, strlen(res.output));
        explicit_bzero(line, sizeof(line));
        proc_result_done(&res);
        return r;
}

static void restart(const agent_config *cfg, const doc_document *d, plan *p, const char *unit, int64_t now) {
        _cleanup_free_ char *err = NULL;
        int r;

        if (cfg->backend == SERVICE_SYSTEMD) {
                r = systemd_unit_try_restart(unit, &err);
                if (r == 0)
                        p->unit_missing = true;
        } else
                r = run_restart_command(cfg, d, p, unit, &err);
        if (p->entry && streq(unit, p->entry->unit)) {
                p->entry->last_restart = now;
                free(p->entry->last_result);
                p->entry->last_result = r >= 0 ? xstrdup(p->unit_missing ? "no such unit" : "restarted")
                                               : xasprintf("failed: %s", err);
        }
        if (r < 0)
                (void) plan_fail(p, "restart of %s failed: %s", unit, err);
}

/* ---- the reconciler ---------------------------------------------------------------------- */

static int cmp_plan(const void *a, const void *b) {
        return strcmp(((const plan *) a)->name, ((const plan *) b)->name);
}

static plan *find_plan(plan *ps, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(ps[i].name, name))
                        return &ps[i];
        return NULL;
}

/* <apps-dir>/ca.crt from the enrolled <state-dir>/ca.crt. */
static bool reconcile_ca(const agent_config *cfg, const char *ca_file, results *res) {
        _cleanup_free_ char *src = xasprintf("%s/" ENROLL_CA, cfg->state_dir), *pem = NULL, *err = NULL,
                            *out = NULL;
        _cleanup_(X509_freep) X509 *ca = NULL;
        bool existed = access(ca_file, F_OK) == 0;
        int r;

        r = read_full_file(src, X509_PEM_MAX, &pem, NULL);
        if (r == -ENOENT) {
                results_add(res, "ca", ca_file, RES_FAILED,
                            "this host is not enrolled (%s is missing): run 'agentctl enroll'; the connection strings "
                            "verify the database against this file",
                            src);
                return false;
        }
        if (r < 0) {
                results_add(res, "ca", ca_file, RES_FAILED, "cannot read %s: %s", src, strerror(-r));
                return false;
        }
        r = x509_cert_from_pem(pem, &ca, &err);
        if (r >= 0 && X509_check_ca(ca) == 0) {
                err = xstrdup("not a CA certificate");
                r = -EBADMSG;
        }
        if (r >= 0 && !(out = x509_cert_to_pem(ca))) {
                err = xstrdup("cannot encode it");
                r = -EIO;
        }
        if (r < 0) {
                results_add(res, "ca", ca_file, RES_FAILED, "%s: %s", src, err);
                return false;
        }
        r = write_file_atomic_owned(ca_file, out, strlen(out), 0644, geteuid(), getegid());
        if (r < 0) {
                results_add(res, "ca", ca_file, RES_FAILED, "cannot write: %s", strerror(-r));
                return false;
        }
        results_add(res, "ca", ca_file, r == 0 ? RES_UNCHANGED : existed ? RES_CHANGED : RES_CREATED,
                    "the controller's CA, from %s", src);
        return true;
}

static void add_result(plan *p, results *res) {
        strbuf detail = {};
        res_state state;
        const char *unit = p->unit ? p->unit : "its unit";

        if (p->content && !p->had_file) {
                state = RES_CREATED;
                for (size_t i = 0; i < p->n_vars; i++)
                        strbuf_printf(&detail, "%s%s", i ? ", " : "", p->vars[i]);
                strbuf_printf(&detail, " in %s for %s", p->env_path, unit);
        } else if (!p->content && p->had_file) {
                state = RES_REMOVED;
                if (p->diff.s)
                        strbuf_printf(&detail, "%s; ", p->diff.s);
                strbuf_printf(&detail, "%s%s removed", p->app ? "" : "no longer in the document; ", p->env_path);
                if (p->unit)
                        strbuf_printf(&detail, " with the drop-in of %s", unit);
        } else if (p->env_changed) {
                state = RES_CHANGED;
                strbuf_printf(&detail, "%s in %s for %s", p->diff.s ? p->diff.s : "edited outside the agent: rewritten",
                              p->env_path, unit);
        } else {
                state = p->mode_fixed || p->drop_in_changed || p->restarted ? RES_CHANGED : RES_UNCHANGED;
                if (p->n_vars > 0) {
                        for (size_t i = 0; i < p->n_vars; i++)
                                strbuf_printf(&detail, "%s%s", i ? ", " : "", p->vars[i]);
                        strbuf_printf(&detail, " in %s for %s", p->env_path, unit);
                } else
                        strbuf_printf(&detail, "%s %s", p->app ? "no variables for" : "no longer in the document:",
                                      unit);
                if (p->mode_fixed)
                        strbuf_append(&detail, "; owner and mode 0600 restored");
                /* A moved drop-in and its restarts are said below. */
                if (p->drop_in_changed && !p->old_unit)
                        strbuf_printf(&detail, "; drop-in %s", p->content ? "restored" : "removed");
                if (p->restarted && !p->old_unit)
                        strbuf_append(&detail, "; restart left pending by an earlier apply");
        }
        if (p->old_unit)
                strbuf_printf(&detail, "; moved from %s", p->old_unit);
        if (p->restarted && p->old_unit)
                strbuf_printf(&detail, "; %s and %s restarted", p->old_unit, unit);
        else if (p->restarted)
                strbuf_printf(&detail, "; %s %s", unit,
                              p->unit_missing ? "not restarted: systemd has no such unit" : "restarted");
        else if (p->env_changed && !p->unit)
                strbuf_append(&detail, "; not restarted: its unit is unknown");
        if (p->waiting.s)
                strbuf_printf(&detail, "; waiting for credentials: %s", p->waiting.s);
        if (p->failed) {
                state = RES_FAILED;
                strbuf_printf(&detail, "; %s", p->error);
        }
        results_add(res, "app", p->name, state, "%s", detail.s);
        strbuf_done(&detail);
}

int apps_reconcile(const agent_config *cfg, const doc_document *d, results *res) {
        const char *apps_dir = cfg->apps_dir ? cfg->apps_dir : APPS_DIR_DEFAULT;
        _cleanup_free_ char *ca_file = NULL, *err = NULL;
        apps_state prev = {}, next = {};
        plan *ps = NULL;
        size_t n = 0, w;
        bool reload = false, any_restart = false, failed = false;
        int64_t now = (int64_t) time(NULL);
        DIR *dir;
        int r;

        if (!valid_apps_dir(apps_dir)) {
                results_add(res, "apps", apps_dir, RES_FAILED,
                            "apps-dir must be an absolute path of letters, digits and '/._-+@'");
                return -EINVAL;
        }
        ca_file = xasprintf("%s/" APPS_CA_FILE, apps_dir);
        r = mkdir_p(apps_dir, 0755);
        if (r >= 0 && chmod(apps_dir, 0755) < 0)
                r = -errno;
        if (r < 0) {
                results_add(res, "apps", apps_dir, RES_FAILED, "cannot create it: %s", strerror(-r));
                return r;
        }
        r = apps_load_state(cfg, &prev, &err);
        if (r < 0) {
                /* Rebuilt from the document and the apps directory below. */
                results_add(res, "apps", APPS_STATE_FILE, RES_CHANGED, "%s; rebuilt", err);
                prev = (apps_state) {};
        }
        failed = !reconcile_ca(cfg, ca_file, res);

        /* Everything to converge: the document's apps, then what the last apply left and the
         * document no longer has, then env files nobody recorded. */
        ps = xcalloc(d->n_apps + prev.n_apps + 1, sizeof(plan));
        for (size_t i = 0; i < d->n_apps; i++) {
                const doc_app *a = &d->apps[i];
                const apps_entry *old = apps_state_find(&prev, a->name);
                plan *p = &ps[n++];

                p->app = a;
                p->name = xstrdup(a->name);
                p->unit = xstrdup(a->unit);
                if (old && !streq(old->unit, a->unit) && old->n_variables > 0)
                        p->old_unit = xstrdup(old->unit);
                set_paths(p, cfg, apps_dir);
                build_content(p, a, ca_file);
        }
        for (size_t i = 0; i < prev.n_apps; i++) {
                plan *p;
                if (find_plan(ps, n, prev.apps[i].name))
                        continue;
                p = &ps[n++];
                p->name = xstrdup(prev.apps[i].name);
                p->unit = xstrdup(prev.apps[i].unit);
                set_paths(p, cfg, apps_dir);
        }
        dir = opendir(apps_dir);
        for (struct dirent *de; dir && (de = readdir(dir));) {
                size_t len = strlen(de->d_name);
                _cleanup_free_ char *name = NULL;

                if (len <= 4 || !streq(de->d_name + len - 4, ".env"))
                        continue;
                name = xstrndup(de->d_name, len - 4);
                if (!valid_app_name(name) || find_plan(ps, n, name))
                        continue;
                ps = xrealloc(ps, (n + 1) * sizeof(plan));
                ps[n] = (plan) { .name = TAKE_PTR(name) };
                set_paths(&ps[n++], cfg, apps_dir);
        }
        if (dir)
                closedir(dir);
        qsort_safe(ps, n, sizeof(plan), cmp_plan);

        /* The new state, restarts marked pending before any file changes: a crash between the
         * new environment and the restart leaves the restart to the next apply. */
        next.apps = xcalloc(n + 1, sizeof(apps_entry));
        for (size_t i = 0; i < n; i++) {
                plan *p = &ps[i];
                const apps_entry *old = apps_state_find(&prev, p->name);
                bool pending = old && old->restart_pending && p->unit && streq(old->unit, p->unit);

                if (examine_env(p) >= 0)
                        p->restart = p->unit && (p->env_changed || pending || (p->old_unit && p->content));
                else
                        p->restart = pending;
                /* Kept while the app is in the document, or until its last restart succeeded. */
                if (!p->unit || (!p->app && !p->restart))
                        continue;
                p->entry = &next.apps[next.n_apps++];
                p->entry->name = xstrdup(p->name);
                p->entry->unit = xstrdup(p->unit);
                p->entry->variables = xcalloc(p->n_vars + 1, sizeof(char *));
                for (size_t j = 0; j < p->n_vars; j++)
                        p->entry->variables[p->entry->n_variables++] = xstrdup(p->vars[j]);
                if (old) {
                        p->entry->last_restart = old->last_restart;
                        p->entry->last_result = old->last_result ? xstrdup(old->last_result) : NULL;
                }
                p->entry->restart_pending = p->restart;
                any_restart |= p->restart;
        }
        if (any_restart && save_state(cfg, &next, &err) < 0) {
                results_add(res, "apps", APPS_STATE_FILE, RES_FAILED, "%s; nothing changed", err);
                failed = true;
                goto finish;
        }

        for (size_t i = 0; i < n; i++) {
                if (!ps[i].failed)
                        (void) write_files(&ps[i], apps_dir, cfg);
                /* A restart left pending by a failed reload needs the reload too. */
                reload |= ps[i].drop_in_changed || (ps[i].restart && !ps[i].failed);
        }
        if (reload && cfg->backend == SERVICE_SYSTEMD) {
                free(TAKE_PTR(err));
                r = systemd_daemon_reload(&err);
                if (r < 0)
                        for (size_t i = 0; i < n; i++)
                                if (ps[i].restart || ps[i].drop_in_changed)
                                        (void) plan_fail(&ps[i], "daemon-reload failed: %s", err);
        }
        for (size_t i = 0; i < n; i++) {
                plan *p = &ps[i];

                if (!p->restart || p->failed)
                        continue;
                if (p->old_unit)
                        restart(cfg, d, p, p->old_unit, now);
                restart(cfg, d, p, p->unit, now);
                p->restarted = !p->failed;
                if (p->entry && p->restarted)
                        p->entry->restart_pending = false;
        }
        /* An app gone from the document leaves the state once its unit restarted without it. */
        w = 0;
        for (size_t i = 0; i < next.n_apps; i++) {
                if (!find_plan(ps, n, next.apps[i].name)->app && !next.apps[i].restart_pending)
                        entry_done(&next.apps[i]);
                else
                        next.apps[w++] = next.apps[i];
        }
        next.n_apps = w;
        free(TAKE_PTR(err));
        if (save_state(cfg, &next, &err) < 0) {
                results_add(res, "apps", APPS_STATE_FILE, RES_FAILED, "%s", err);
                failed = true;
        }
        for (size_t i = 0; i < n; i++) {
                if (!ps[i].app && !ps[i].had_file && !ps[i].restart && !ps[i].failed && !ps[i].drop_in_changed)
                        continue; /* gone already, nothing to say */
                add_result(&ps[i], res);
                failed |= ps[i].failed;
        }
finish:
        for (size_t i = 0; i < n; i++)
                plan_done(&ps[i]);
        free(ps);
        apps_state_done(&prev);
        apps_state_done(&next);
        return failed ? -EIO : 0;
}
