/* The status object and its text form: read from applied.json, desired.json, enrollment.json, the
 * certificates and the services, so it is the same whoever builds it (daemon or agentctl). */
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "apps.h"
#include "backup.h"
#include "encryption.h"
#include "enroll.h"
#include "fileio.h"
#include "macro.h"
#include "replication.h"
#include "results.h"
#include "service.h"
#include "state.h"
#include "status.h"
#include "tls.h"
#include "wire.h"
#include "x509.h"

static json_object *string_or_null(const char *s) {
        return s ? json_object_new_string(s) : NULL;
}

static json_object *time_or_null(time_t t) {
        return t > 0 ? json_object_new_int64((int64_t) t) : NULL;
}

/* A certificate file's first DNS name and its expiry; false when it cannot be read. */
static bool cert_info(const char *path, char **ret_name, time_t *ret_expires) {
        _cleanup_free_ char *pem = NULL, *err = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        char **names = NULL;
        size_t n = 0;
        time_t nb, na;

        if (read_full_file(path, X509_PEM_MAX, &pem, NULL) < 0 || x509_cert_from_pem(pem, &x, &err) < 0 ||
            x509_validity(x, &nb, &na) < 0)
                return false;
        if (ret_name) {
                *ret_name = NULL;
                if (x509_cert_dns_names(x, &names, &n, NULL) >= 0 && n > 0)
                        *ret_name = xstrdup(names[0]);
                x509_names_free(names, n);
        }
        *ret_expires = na;
        return true;
}

static json_object *database_status(const agent_config *cfg, const doc_database *db, bool *failed,
                                    char **first_error) {
        _cleanup_free_ char *err = NULL;
        json_object *o = json_object_new_object(), *a;
        cluster_paths p = {};
        tls_paths tp = {};
        bool running = false;
        time_t expires = 0;
        const char *state;

        cluster_paths_init(&p, cfg, db->name);
        if (service_running(cfg, db->name, &p, &running, &err) < 0)
                state = "unknown";
        else
                state = running ? "running" : "stopped";
        /* In the document but not running: drift the next pass repairs, not green. */
        if (!running) {
                *failed = true;
                if (!*first_error)
                        *first_error = err ? xasprintf("database '%s': cannot tell whether it runs: %s", db->name, err)
                                           : xasprintf("database '%s' is not running", db->name);
        }
        cluster_paths_done(&p);

        json_object_object_add(o, "name", json_object_new_string(db->name));
        json_object_object_add(o, "state", json_object_new_string(state));
        json_object_object_add(o, "port", json_object_new_int(db->port));
        a = json_object_new_array();
        for (size_t i = 0; i < db->n_allow; i++)
                json_object_array_add(a, json_object_new_string(db->allow[i]));
        json_object_object_add(o, "clients", a);
        a = json_object_new_array();
        for (size_t i = 0; i < db->n_roles; i++)
                json_object_array_add(a, json_object_new_string(db->roles[i].name));
        json_object_object_add(o, "roles", a);
        tls_paths_init(&tp, cfg, db->name);
        (void) cert_info(tp.cert, NULL, &expires);
        tls_paths_done(&tp);
        json_object_object_add(o, "tlsExpires", time_or_null(expires));
        {
                _cleanup_free_ char *text = NULL;
                json_object *b = backup_status(cfg, db, &text, failed, first_error);
                json_object_object_add(o, "backups", json_object_new_string(text));
                json_object_object_add(o, "backup", b);
        }
        if (db->replication) {
                /* Asked only of a running cluster: a stopped one has no lag to tell. */
                json_object *rep = running ? replication_status(cfg, db) : NULL;
                if (!rep) {
                        rep = json_object_new_object();
                        json_object_object_add(rep, "role", json_object_new_string(
                                                            db->replication->role == DOC_REPLICA_STANDBY ? "standby" : "primary"));
                        json_object_object_add(rep, "timeline", NULL);
                        json_object_object_add(rep, "lagBytes", NULL);
                        json_object_object_add(rep, "lagSeconds", NULL);
                }
                json_object_object_add(o, "replication", rep);
        }
        {
                encryption_state es;
                encryption_status(cfg, db->name, &es);
                json_object *e = json_object_new_object();
                json_object_object_add(e, "mode", json_object_new_string(es.mode));
                json_object_object_add(e, "state", json_object_new_string(es.state));
                json_object_object_add(o, "encryption", e);
                if (es.failed) {
                        *failed = true;
                        if (!*first_error)
                                *first_error = xasprintf("database '%s': encryption %s: %s", db->name, es.mode, es.state);
                }
        }
        return o;
}

/* Applications: the apps reconciler's state (unit, variable names: never a value, last restart),
 * for each application the document names. */
static json_object *apps_status(const agent_config *cfg, const doc_document *d, bool *failed, char **first_error) {
        _cleanup_free_ char *err = NULL;
        json_object *a = json_object_new_array();
        apps_state st = {};

        if (d && d->n_apps > 0 && apps_load_state(cfg, &st, &err) < 0) {
                *failed = true;
                if (!*first_error)
                        *first_error = TAKE_PTR(err);
        }
        for (size_t i = 0; d && i < d->n_apps; i++) {
                const doc_app *app = &d->apps[i];
                const apps_entry *e = apps_state_find(&st, app->name);
                json_object *o = json_object_new_object(), *vars = json_object_new_array();

                json_object_object_add(o, "name", json_object_new_string(app->name));
                json_object_object_add(o, "unit", json_object_new_string(app->unit));
                for (size_t j = 0; e && j < e->n_variables; j++)
                        json_object_array_add(vars, json_object_new_string(e->variables[j]));
                json_object_object_add(o, "variables", vars);
                json_object_object_add(o, "lastRestart", time_or_null(e ? (time_t) e->last_restart : 0));
                /* An environment that changed without a successful restart: the app runs with old values. */
                if (!e || e->restart_pending) {
                        *failed = true;
                        if (!*first_error)
                                *first_error = !e ? xasprintf("app '%s' is not set up yet", app->name)
                                                  : xasprintf("app '%s': its unit %s was not restarted since its "
                                                              "environment changed%s%s",
                                                              app->name, app->unit, e->last_result ? ": " : "",
                                                              strempty(e->last_result));
                }
                json_object_array_add(a, o);
        }
        apps_state_done(&st);
        return a;
}

json_object *status_build(const agent_config *cfg, const status_daemon *daemon) {
        _cleanup_(doc_document_freep) doc_document *d = NULL;
        _cleanup_free_ char *err = NULL, *first_error = NULL, *identity = NULL, *cert = NULL;
        json_object *o = json_object_new_object(), *dbs = json_object_new_array(), *apps;
        enrollment e = {};
        applied_state s = {};
        bool enrolled, failed = false;
        time_t identity_expires = 0;

        enrolled = enrollment_load(cfg, &e, &err) >= 0;
        free(err);
        err = NULL;
        cert = enrollment_file(cfg, ENROLL_HOST_CERT);
        if (enrolled)
                (void) cert_info(cert, &identity, &identity_expires);
        if (state_load_applied(cfg, &s, &err) < 0) {
                failed = true;
                first_error = TAKE_PTR(err);
        }
        free(err);
        err = NULL;
        if (state_load_desired(cfg, &d, &err) < 0 && err && !strstr(err, "no document applied yet")) {
                failed = true;
                if (!first_error)
                        first_error = TAKE_PTR(err);
        }

        json_object_object_add(o, "host", json_object_new_string(cfg->host));
        json_object_object_add(o, "role", string_or_null(enrolled ? e.role : d ? doc_host_role_to_string(d->role) : NULL));
        json_object_object_add(o, "controller", string_or_null(enrolled ? e.controller_name : NULL));
        json_object_object_add(o, "identity", string_or_null(identity));
        json_object_object_add(o, "identityExpires", time_or_null(identity_expires));
        json_object_object_add(o, "revision", json_object_new_int64((int64_t) s.revision));
        json_object_object_add(o, "commit", json_object_new_string(strempty(s.commit)));
        json_object_object_add(o, "appliedAt", time_or_null((time_t) s.applied_at));

        if (results_failed(&s.results)) {
                failed = true;
                for (size_t i = 0; !first_error && i < s.results.n; i++)
                        if (s.results.items[i].state == RES_FAILED)
                                first_error = xasprintf("%s %s: %s", s.results.items[i].kind, s.results.items[i].name,
                                                        s.results.items[i].detail ? s.results.items[i].detail : "failed");
        }
        if (d && d->revision != s.revision && !(daemon && daemon->applying)) {
                failed = true;
                if (!first_error)
                        first_error = xasprintf("revision %llu was accepted but is not applied (applied: %llu)",
                                                (unsigned long long) d->revision, (unsigned long long) s.revision);
        }
        /* Only what the applied document asked for is checked against the live state. */
        for (size_t i = 0; d && i < d->n_databases; i++)
                json_object_array_add(dbs, database_status(cfg, &d->databases[i], &failed, &first_error));
        apps = apps_status(cfg, d, &failed, &first_error);
        if (daemon && daemon->last_error) {
                failed = true;
                free(first_error);
                first_error = xstrdup(daemon->last_error);
        }
        json_object_object_add(o, "failed", json_object_new_boolean(failed));
        json_object_object_add(o, "lastError", string_or_null(first_error));
        json_object_object_add(o, "databases", dbs);
        json_object_object_add(o, "apps", apps);
        json_object_object_add(o, "resources", results_to_json(&s.results));
        applied_state_done(&s);
        enrollment_done(&e);
        return o;
}

#define FETCH_MAX (16u * 1024u * 1024u)
#define FETCH_TIMEOUT_MS 30000

/* A tiny HTTP/1.0 client: one request, the answer until the daemon closes the connection. */
int status_fetch(const char *socket_path, json_object **ret, char **ret_error) {
        static const char request[] = "GET /v1/status HTTP/1.0\r\nHost: localhost\r\n\r\n";
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        _cleanup_free_ char *buf = NULL, *msg = NULL;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        size_t len = 0, alloc = 0;
        const char *body;
        json_object *o;
        int status;

        if (fd < 0) {
                *ret_error = xasprintf("cannot create a socket: %s", strerror(errno));
                return -errno;
        }
        if (strlen(socket_path) >= sizeof(sa.sun_path)) {
                *ret_error = xasprintf("socket path %s is too long", socket_path);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, socket_path);
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                int r = -errno;
                if (r == -ENOENT || r == -ECONNREFUSED)
                        return r;
                *ret_error = r == -EACCES ? xasprintf("cannot connect to the agent at %s: permission denied (root or "
                                                      "the configured socket-group only)",
                                                      socket_path)
                                          : xasprintf("cannot connect to the agent at %s: %s", socket_path, strerror(-r));
                return r;
        }
        if (send(fd, request, sizeof(request) - 1, MSG_NOSIGNAL) != (ssize_t) sizeof(request) - 1) {
                *ret_error = xasprintf("cannot send to the agent at %s: %s", socket_path, strerror(errno));
                return -EIO;
        }
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t n;
                int k = poll(&p, 1, FETCH_TIMEOUT_MS);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0) {
                        *ret_error = xasprintf("the agent at %s did not answer within %d s", socket_path,
                                               FETCH_TIMEOUT_MS / 1000);
                        return -ETIMEDOUT;
                }
                if (alloc - len < 65536) {
                        alloc = alloc ? alloc * 2 : 65536 * 2;
                        if (alloc > FETCH_MAX + 65536) {
                                *ret_error = xasprintf("the agent's answer is larger than %u bytes", FETCH_MAX);
                                return -EFBIG;
                        }
                        buf = xrealloc(buf, alloc + 1);
                }
                n = read(fd, buf + len, alloc - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        *ret_error = xasprintf("cannot read from the agent at %s: %s", socket_path, strerror(errno));
                        return -errno;
                }
                if (n == 0)
                        break;
                len += (size_t) n;
        }
        if (buf)
                buf[len] = '\0';
        if (!buf || sscanf(buf, "HTTP/1.%*d %d", &status) != 1 || !(body = strstr(buf, "\r\n\r\n"))) {
                *ret_error = xasprintf("the agent at %s answered something that is not HTTP", socket_path);
                return -EBADMSG;
        }
        body += 4;
        if (status != 200) {
                msg = wire_error_message(body, len - (size_t) (body - buf));
                *ret_error = xasprintf("the agent refused: %d %s", status, msg ? msg : "(no message)");
                return status == 403 ? -EACCES : -EPROTO;
        }
        o = json_tokener_parse(body);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                *ret_error = xasprintf("the agent at %s answered a status that is not a JSON object", socket_path);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}

bool status_failed(json_object *status) {
        json_object *v;
        return !json_object_object_get_ex(status, "failed", &v) || json_object_get_boolean(v);
}

/* --- text ------------------------------------------------------------------------------------ */

#define GREEN "\033[32m"
#define YELLOW "\033[33m"
#define RED "\033[31m"
#define RESET "\033[0m"

static const char *get_str(json_object *o, const char *key) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static time_t get_time(json_object *o, const char *key) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return 0;
        return (time_t) json_object_get_int64(v);
}

static const char *when(time_t t, char buf[32]) {
        if (t <= 0)
                return "never";
        x509_format_time(t, buf);
        return buf;
}

static const char *paint(bool color, const char *word) {
        if (!color)
                return "";
        if (streq(word, "running") || streq(word, "unchanged") || streq(word, "created") || streq(word, "changed") ||
            streq(word, "removed"))
                return GREEN;
        if (streq(word, "retained"))
                return YELLOW;
        return RED;
}

static void join(FILE *f, json_object *a, const char *sep, const char *suffix, const char *none) {
        size_t n = a && json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
        if (n == 0)
                fputs(none, f);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s%s%s", i ? sep : "", json_object_get_string(json_object_array_get_idx(a, i)), suffix);
}

/* ", role standby (timeline 1, lag 0 B)" or ", role primary (timeline 1, standby db2 lag 0 B)";
 * nothing without replication. */
static void print_replication(FILE *f, json_object *db) {
        json_object *r = NULL, *v = NULL, *a = NULL;
        const char *role;

        if (!json_object_object_get_ex(db, "replication", &r) || !json_object_is_type(r, json_type_object))
                return;
        role = strempty(get_str(r, "role"));
        fprintf(f, ", role %s (", role);
        if (json_object_object_get_ex(r, "timeline", &v) && json_object_is_type(v, json_type_int))
                fprintf(f, "timeline %lld", (long long) json_object_get_int64(v));
        else
                fputs("timeline unknown", f);
        if (streq(role, "standby")) {
                if (json_object_object_get_ex(r, "lagBytes", &v) && json_object_is_type(v, json_type_int))
                        fprintf(f, ", lag %lld B", (long long) json_object_get_int64(v));
                else
                        fputs(", lag unknown", f);
        } else if (json_object_object_get_ex(r, "standbys", &a) && json_object_is_type(a, json_type_array))
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        json_object *s = json_object_array_get_idx(a, i);
                        fprintf(f, ", standby %s %s", strempty(get_str(s, "host")), strempty(get_str(s, "state")));
                        if (json_object_object_get_ex(s, "lagBytes", &v) && json_object_is_type(v, json_type_int))
                                fprintf(f, " lag %lld B", (long long) json_object_get_int64(v));
                }
        fputs(")", f);
}

/* "encryption fscrypt (unlocked)"; anything but unlocked in red: "encryption none". */
static void print_encryption(FILE *f, json_object *db, bool color) {
        json_object *e = NULL;
        const char *mode, *state;
        bool ok;

        json_object_object_get_ex(db, "encryption", &e);
        mode = strempty(get_str(e, "mode"));
        state = strempty(get_str(e, "state"));
        ok = streq(state, "unlocked");
        fprintf(f, "encryption %s", color && !ok ? RED : "");
        if (streq(mode, "none"))
                fputs("none", f);
        else if (ok)
                fprintf(f, "%s (unlocked)", mode);
        else
                fprintf(f, "%s: %s", mode, state);
        fprintf(f, "%s\n", color && !ok ? RESET : "");
}

void status_print(json_object *o, FILE *f, bool color) {
        json_object *a, *v;
        const char *commit = get_str(o, "commit"), *err = get_str(o, "lastError"), *identity = get_str(o, "identity");
        char b1[32], b2[32];

        json_object_object_get_ex(o, "revision", &v);
        fprintf(f, "host %s: revision %lld applied %s%s%s\n", strempty(get_str(o, "host")), (long long) json_object_get_int64(v),
                when(get_time(o, "appliedAt"), b1), commit && *commit ? ", commit " : "", commit && *commit ? commit : "");
        if (identity)
                fprintf(f, "identity %s (%s host), certificate expires %s; controller %s\n", identity,
                        strempty(get_str(o, "role")), when(get_time(o, "identityExpires"), b1),
                        strempty(get_str(o, "controller")));
        else
                fputs("identity: not enrolled (agentctl enroll)\n", f);

        if (json_object_object_get_ex(o, "databases", &a))
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        json_object *db = json_object_array_get_idx(a, i), *port, *x;
                        const char *state = strempty(get_str(db, "state"));
                        time_t tls = get_time(db, "tlsExpires");

                        json_object_object_get_ex(db, "port", &port);
                        fprintf(f, "database %s: %s%s%s, port %d, clients ", strempty(get_str(db, "name")),
                                paint(color, state), state, color ? RESET : "", json_object_get_int(port));
                        json_object_object_get_ex(db, "clients", &x);
                        join(f, x, " ", "", "none");
                        fputs(", roles ", f);
                        json_object_object_get_ex(db, "roles", &x);
                        join(f, x, " ", "", "none");
                        fprintf(f, ", TLS %s%s, backups %s", tls ? "expires " : "no certificate yet",
                                tls ? when(tls, b2) : "", strempty(get_str(db, "backups")));
                        print_replication(f, db);
                        fputs(", ", f);
                        print_encryption(f, db, color);
                }
        if (json_object_object_get_ex(o, "apps", &a))
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        json_object *app = json_object_array_get_idx(a, i), *x;
                        fprintf(f, "app %s: unit %s, ", strempty(get_str(app, "name")), strempty(get_str(app, "unit")));
                        json_object_object_get_ex(app, "variables", &x);
                        join(f, x, " ", "=(hidden)", "no variables");
                        fprintf(f, ", last restart %s\n", when(get_time(app, "lastRestart"), b1));
                }
        if (err)
                fprintf(f, "%slast error%s: %s\n", color ? RED : "", color ? RESET : "", err);
        if (json_object_object_get_ex(o, "resources", &a))
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        json_object *it = json_object_array_get_idx(a, i);
                        const char *state = strempty(get_str(it, "state")), *detail = get_str(it, "detail");
                        fprintf(f, "%s %s: %s%s%s%s%s\n", strempty(get_str(it, "kind")), strempty(get_str(it, "name")),
                                paint(color, state), state, color ? RESET : "", detail ? ": " : "", strempty(detail));
                }
}
