/* Unit tests for the application reconciler: connection strings (percent-encoding, hostaddr when
 * the name does not resolve), the document checks, and whole applies with the direct backend and
 * a restart command that records its calls: env file and drop-in contents and modes, restart only
 * on a change, revocation, a failing restart retried, drift repaired without a restart, leftovers
 * removed, apps.json with names only. The systemd backend runs as far as it can without systemd
 * (the bus is not there: the failure is reported and the restart stays pending). No root needed:
 * the files belong to whoever runs the test. */
#include "unit.h"

#include <ftw.h>
#include <sys/stat.h>

#include "apps.h"
#include "ca.h"
#include "fileio.h"

#define HOSTNAME_DB "accounts-db.login-svc.development.retail-banking.fincorp.infrastream.internal"
#define PASSWORD "s3cr3t p@ss:w/rd?&='x\"$HOME%"
#define PASSWORD_ENC "s3cr3t%20p%40ss%3Aw%2Frd%3F%26%3D%27x%22%24HOME%25"

typedef struct fixture {
        char dir[64];
        agent_config cfg;
        char *log, *script, *ca_src;
        doc_document doc;
        results res;
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static char *path_in(fixture *f, const char *rel) {
        return xasprintf("%s/%s", f->dir, rel);
}

static void write_text(const char *path, const char *text, mode_t mode) {
        assert_int_equal(write_file_atomic(path, text, strlen(text), mode) >= 0, 1);
}

static char *read_text(const char *path) {
        char *s = NULL;
        int r = read_full_file(path, 1 << 20, &s, NULL);
        if (r < 0)
                fail_msg("cannot read %s: %s", path, strerror(-r));
        return s;
}

static doc_env env(const char *name, const char *db, const char *hostname, const char *password) {
        return (doc_env) { .name = xstrdup(name),
                           .database = xstrdup(db),
                           .db_hostname = xstrdup(hostname),
                           .db_address = xstrdup("10.99.0.2"),
                           .port = 5432,
                           .role = xstrdup("auth-api"),
                           .access = DOC_ACCESS_READ_WRITE,
                           .password = password ? xstrdup(password) : NULL };
}

static void env_free(doc_env *e) {
        free(e->name);
        free(e->database);
        free(e->db_hostname);
        free(e->db_address);
        free(e->role);
        erase_and_free(e->password);
}

static void apps_clear(doc_document *d) {
        for (size_t i = 0; i < d->n_apps; i++) {
                for (size_t j = 0; j < d->apps[i].n_env; j++)
                        env_free(&d->apps[i].env[j]);
                free(d->apps[i].env);
                free(d->apps[i].name);
                free(d->apps[i].unit);
        }
        free(d->apps);
        d->apps = NULL;
        d->n_apps = 0;
}

/* Append an app with n env entries (given as doc_env values, taken over). */
static doc_app *add_app(fixture *f, const char *name, const char *unit) {
        doc_app *a;

        f->doc.apps = xrealloc(f->doc.apps, (f->doc.n_apps + 1) * sizeof(doc_app));
        a = &f->doc.apps[f->doc.n_apps++];
        *a = (doc_app) { .name = xstrdup(name), .unit = xstrdup(unit) };
        return a;
}

static void add_env(doc_app *a, doc_env e) {
        a->env = xrealloc(a->env, (a->n_env + 1) * sizeof(doc_env));
        a->env[a->n_env++] = e;
}

static int setup(void **state) {
        fixture *f = xcalloc(1, sizeof(fixture));
        _cleanup_free_ char *err = NULL, *ctl = NULL, *ca_pem = NULL, *ca_path = NULL, *dst = NULL;

        strcpy(f->dir, "/tmp/test-apps.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        ctl = path_in(f, "ctl");
        assert_int_equal(mkdir(ctl, 0700), 0);
        assert_int_equal(ca_create(ctl, "infrastream.internal", &err), 1);
        ca_path = xasprintf("%s/" CA_CERT_FILE, ctl);
        ca_pem = read_text(ca_path);

        f->cfg = (agent_config) {
                .host = xstrdup("app1"),
                .state_dir = path_in(f, "state"),
                .apps_dir = path_in(f, "apps"),
                .unit_dir = path_in(f, "units"),
                .backend = SERVICE_DIRECT,
        };
        assert_int_equal(mkdir(f->cfg.state_dir, 0700), 0);
        /* What enrollment leaves: the controller's CA in the state directory. */
        dst = xasprintf("%s/ca.crt", f->cfg.state_dir);
        write_text(dst, ca_pem, 0644);
        f->ca_src = TAKE_PTR(ca_pem);

        /* The restart command records each call: its environment, one line. */
        f->log = path_in(f, "restarts.log");
        f->script = path_in(f, "restart.sh");
        {
                _cleanup_free_ char *sh = xasprintf(
                        "#!/bin/sh\n"
                        "echo \"$INFRASTREAM_APP $INFRASTREAM_UNIT $INFRASTREAM_ENV_FILE\" >>%s\n"
                        "if [ -e %s/fail ]; then cat \"$INFRASTREAM_ENV_FILE\"; echo 'it broke' >&2; exit 3; fi\n"
                        "exit 0\n",
                        f->log, f->dir);
                write_text(f->script, sh, 0755);
        }
        f->cfg.restart_command = xstrdup(f->script);
        f->doc = (doc_document) { .host = xstrdup("app1"), .role = DOC_HOST_APPLICATION, .revision = 1 };
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture *f = *state;

        nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        apps_clear(&f->doc);
        free(f->doc.host);
        free(f->cfg.host);
        free(f->cfg.state_dir);
        free(f->cfg.apps_dir);
        free(f->cfg.unit_dir);
        free(f->cfg.restart_command);
        free(f->log);
        free(f->script);
        free(f->ca_src);
        results_done(&f->res);
        free(f);
        return 0;
}

/* Run the reconciler on a fresh result list; no line, file or state may show a password. */
static void reconcile(fixture *f, int want_r) {
        results_done(&f->res);
        assert_int_equal(apps_reconcile(&f->cfg, &f->doc, &f->res), want_r);
        for (size_t i = 0; i < f->res.n; i++) {
                const char *d = strempty(f->res.items[i].detail);
                if (strstr(d, "s3cr3t") || strstr(d, "p@ss") || strstr(d, "%40ss"))
                        fail_msg("a result shows the password: %s", d);
        }
        {
                _cleanup_free_ char *p = xasprintf("%s/apps.json", f->cfg.state_dir), *s = NULL;
                if (read_full_file(p, 1 << 20, &s, NULL) >= 0 && (strstr(s, "s3cr3t") || strstr(s, "%40ss")))
                        fail_msg("apps.json shows the password");
        }
}

/* "state: detail" of the result kind/name, or NULL when there is none. */
static char *line(fixture *f, const char *kind, const char *name) {
        for (size_t i = 0; i < f->res.n; i++)
                if (streq(f->res.items[i].kind, kind) && streq(f->res.items[i].name, name))
                        return xasprintf("%s: %s", res_state_to_string(f->res.items[i].state),
                                         strempty(f->res.items[i].detail));
        return NULL;
}

static void expect_line(fixture *f, const char *kind, const char *name, const char *want) {
        _cleanup_free_ char *got = line(f, kind, name);
        if (!got || !streq(got, want))
                fail_msg("%s %s:\n  got  '%s'\n  want '%s'", kind, name, strempty(got), want);
}

static size_t restarts(fixture *f) {
        _cleanup_free_ char *s = NULL;
        size_t n = 0;

        if (read_full_file(f->log, 1 << 20, &s, NULL) < 0)
                return 0;
        for (char *p = s; *p; p++)
                n += *p == '\n';
        return n;
}

static char *expected_cs(fixture *f, const char *password_enc, bool hostaddr) {
        return xasprintf("postgresql://auth-api:%s@" HOSTNAME_DB ":5432/accounts-db?sslmode=verify-full&sslrootcert=%s"
                         "/ca.crt%s",
                         password_enc, f->cfg.apps_dir, hostaddr ? "&hostaddr=10.99.0.2" : "");
}

/* ---- connection strings and checks ------------------------------------------------------- */

static void test_connection_string(void **state) {
        doc_env e = env("DATABASE_CONNECTION_STRING", "accounts db", HOSTNAME_DB, PASSWORD);
        _cleanup_free_ char *resolved = NULL, *unresolved = NULL;
        char *none;

        free(e.role);
        e.role = xstrdup("auth/api");
        resolved = apps_connection_string(&e, "/etc/infrastream/apps/ca.crt", true);
        assert_string_equal(resolved, "postgresql://auth%2Fapi:" PASSWORD_ENC "@" HOSTNAME_DB
                                      ":5432/accounts%20db?sslmode=verify-full&sslrootcert=/etc/infrastream/apps/ca.crt");
        unresolved = apps_connection_string(&e, "/a b/ca.crt", false);
        assert_string_equal(unresolved, "postgresql://auth%2Fapi:" PASSWORD_ENC "@" HOSTNAME_DB
                                        ":5432/accounts%20db?sslmode=verify-full&sslrootcert=/a%20b/ca.crt"
                                        "&hostaddr=10.99.0.2");
        erase_and_free(e.password);
        e.password = NULL;
        none = apps_connection_string(&e, "/x/ca.crt", true);
        assert_null(none);
        env_free(&e);
}

/* clusterSize > 1: every member, the primary first; writers to the primary, readers to a standby. */
static void test_connection_string_members(void **state) {
        doc_env e = env("DATABASE_CONNECTION_STRING", "accounts-db", HOSTNAME_DB, PASSWORD);
        char *addresses[] = { "10.99.0.2", "10.99.0.5", "10.99.0.6" };
        _cleanup_free_ char *rw = NULL, *ro = NULL;

        e.db_addresses = addresses;
        e.n_db_addresses = 3;
        rw = apps_connection_string(&e, "/x/ca.crt", true);
        assert_string_equal(rw, "postgresql://auth-api:" PASSWORD_ENC "@" HOSTNAME_DB ":5432," HOSTNAME_DB ":5432,"
                                HOSTNAME_DB ":5432/accounts-db?sslmode=verify-full&sslrootcert=/x/ca.crt"
                                "&hostaddr=10.99.0.2,10.99.0.5,10.99.0.6&target_session_attrs=read-write");
        e.access = DOC_ACCESS_READ_ONLY;
        ro = apps_connection_string(&e, "/x/ca.crt", false);
        assert_string_equal(ro, "postgresql://auth-api:" PASSWORD_ENC "@" HOSTNAME_DB ":5432," HOSTNAME_DB ":5432,"
                                HOSTNAME_DB ":5432/accounts-db?sslmode=verify-full&sslrootcert=/x/ca.crt"
                                "&hostaddr=10.99.0.2,10.99.0.5,10.99.0.6&target_session_attrs=prefer-standby");
        e.db_addresses = NULL;
        e.n_db_addresses = 0;
        env_free(&e);
}

static void test_check(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *err = NULL;
        doc_app *a;

        a = add_app(f, "auth-api", "auth-api.service");
        add_env(a, env("DATABASE_CONNECTION_STRING", "accounts-db", HOSTNAME_DB, PASSWORD));
        assert_int_equal(apps_check(&f->doc, &err), 0);

#define REFUSED(msg)                                                  \
        do {                                                          \
                free(TAKE_PTR(err));                                  \
                assert_int_equal(apps_check(&f->doc, &err), -EINVAL); \
                assert_string_equal(err, msg);                        \
        } while (0)

        free(a->name);
        a->name = xstrdup("../etc");
        REFUSED("applications[0].name: '../etc' is not a valid application name (lower-case letters, digits and '-')");
        free(a->name);
        a->name = xstrdup("auth-api");
        free(a->unit);
        a->unit = xstrdup("../../x.service");
        REFUSED("applications[0].unit: '../../x.service' is not a systemd service name");
        free(a->unit);
        a->unit = xstrdup("auth-api.socket");
        REFUSED("applications[0].unit: 'auth-api.socket' is not a systemd service name");
        free(a->unit);
        a->unit = xstrdup("auth-api.service");
        free(a->env[0].name);
        a->env[0].name = xstrdup("X=1\nLD_PRELOAD");
        REFUSED("applications[0].env[0].name: not an environment variable name (A-Z, 0-9, '_')");
        free(a->env[0].name);
        a->env[0].name = xstrdup("DATABASE_CONNECTION_STRING");
        free(a->env[0].db_hostname);
        a->env[0].db_hostname = xstrdup("db/x@evil");
        REFUSED("applications[0].env[0].dbHostname: not a DNS host name");
        free(a->env[0].db_hostname);
        a->env[0].db_hostname = xstrdup(HOSTNAME_DB);
        free(a->env[0].db_address);
        a->env[0].db_address = xstrdup("10.99.0.2&sslmode=disable");
        REFUSED("applications[0].env[0].dbAddress: not an IPv4 or IPv6 address");
        free(a->env[0].db_address);
        a->env[0].db_address = xstrdup("fd00::2");
        free(TAKE_PTR(err));
        assert_int_equal(apps_check(&f->doc, &err), 0);
        add_app(f, "billing", "auth-api.service");
        REFUSED("applications[1].unit: 'auth-api.service' is also the unit of 'auth-api'");
#undef REFUSED

        /* An apps-dir systemd or libpq would read otherwise than meant: refused, nothing written. */
        free(f->cfg.apps_dir);
        f->cfg.apps_dir = xasprintf("%s/my apps%%i", f->dir);
        results_done(&f->res);
        assert_int_equal(apps_reconcile(&f->cfg, &f->doc, &f->res), -EINVAL);
        {
                _cleanup_free_ char *want = xasprintf("failed: apps-dir must be an absolute path of letters, digits and "
                                                      "'/._-+@'");
                expect_line(f, "apps", f->cfg.apps_dir, want);
        }
        assert_int_equal(access(f->cfg.apps_dir, F_OK), -1);
}

/* ---- applies ----------------------------------------------------------------------------- */

static void test_lifecycle(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *env_path = NULL, *drop_in = NULL, *ca_copy = NULL, *want = NULL, *cs = NULL,
                            *got = NULL, *want_drop_in = NULL, *expect = NULL, *log = NULL, *err = NULL;
        apps_state st = {};
        struct stat s;
        doc_app *a;

        env_path = xasprintf("%s/auth-api.env", f->cfg.apps_dir);
        drop_in = xasprintf("%s/auth-api.service.d/infrastream.conf", f->cfg.unit_dir);
        ca_copy = xasprintf("%s/ca.crt", f->cfg.apps_dir);
        a = add_app(f, "auth-api", "auth-api.service");
        add_env(a, env("DATABASE_CONNECTION_STRING", "accounts-db", HOSTNAME_DB, PASSWORD));

        /* First apply: the CA, the env file, the drop-in, one restart. */
        reconcile(f, 0);
        expect = xasprintf("created: the controller's CA, from %s/ca.crt", f->cfg.state_dir);
        expect_line(f, "ca", ca_copy, expect);
        free(expect);
        expect = xasprintf("created: DATABASE_CONNECTION_STRING in %s for auth-api.service; auth-api.service restarted",
                           env_path);
        expect_line(f, "app", "auth-api", expect);
        cs = expected_cs(f, PASSWORD_ENC, true); /* *.infrastream.internal does not resolve here */
        want = xasprintf("# Managed by infrastream-agent: rewritten on every apply, do not edit.\n"
                         "DATABASE_CONNECTION_STRING='%s'\n",
                         cs);
        got = read_text(env_path);
        assert_string_equal(got, want);
        assert_int_equal(stat(env_path, &s), 0);
        assert_int_equal(s.st_mode & 07777, 0600);
        assert_int_equal(s.st_uid, geteuid());
        assert_int_equal(stat(f->cfg.apps_dir, &s), 0);
        assert_int_equal(s.st_mode & 07777, 0755);
        assert_int_equal(stat(ca_copy, &s), 0);
        assert_int_equal(s.st_mode & 07777, 0644);
        free(got);
        got = read_text(ca_copy);
        assert_string_equal(got, f->ca_src);
        want_drop_in = xasprintf("# Managed by infrastream-agent: rewritten on every apply, do not edit.\n"
                                 "[Service]\nEnvironmentFile=%s\n",
                                 env_path);
        free(got);
        got = read_text(drop_in);
        assert_string_equal(got, want_drop_in);
        assert_int_equal(restarts(f), 1);
        log = read_text(f->log);
        free(expect);
        expect = xasprintf("auth-api auth-api.service %s\n", env_path);
        assert_string_equal(log, expect);

        /* The state for status: names only. */
        assert_int_equal(apps_load_state(&f->cfg, &st, &err), 0);
        assert_int_equal(st.n_apps, 1);
        assert_string_equal(st.apps[0].name, "auth-api");
        assert_string_equal(st.apps[0].unit, "auth-api.service");
        assert_int_equal(st.apps[0].n_variables, 1);
        assert_string_equal(st.apps[0].variables[0], "DATABASE_CONNECTION_STRING");
        assert_true(st.apps[0].last_restart > 0);
        assert_string_equal(st.apps[0].last_result, "restarted");
        assert_false(st.apps[0].restart_pending);
        assert_non_null(apps_state_find(&st, "auth-api"));
        assert_null(apps_state_find(&st, "billing"));
        apps_state_done(&st);

        /* Again: nothing changes, nothing restarts. */
        reconcile(f, 0);
        free(expect);
        expect = xasprintf("unchanged: DATABASE_CONNECTION_STRING in %s for auth-api.service", env_path);
        expect_line(f, "app", "auth-api", expect);
        free(expect);
        expect = xasprintf("unchanged: the controller's CA, from %s/ca.crt", f->cfg.state_dir);
        expect_line(f, "ca", ca_copy, expect);
        assert_int_equal(restarts(f), 1);

        /* Drift: a looser mode and a deleted drop-in are put right without a restart. */
        assert_int_equal(chmod(env_path, 0644), 0);
        assert_int_equal(unlink(drop_in), 0);
        reconcile(f, 0);
        free(expect);
        expect = xasprintf("changed: DATABASE_CONNECTION_STRING in %s for auth-api.service; owner and mode 0600 "
                           "restored; drop-in restored",
                           env_path);
        expect_line(f, "app", "auth-api", expect);
        assert_int_equal(stat(env_path, &s), 0);
        assert_int_equal(s.st_mode & 07777, 0600);
        assert_int_equal(access(drop_in, F_OK), 0);
        assert_int_equal(restarts(f), 1);

        /* A new password: changed, restarted once. */
        erase_and_free(a->env[0].password);
        a->env[0].password = xstrdup("n3w");
        reconcile(f, 0);
        free(expect);
        expect = xasprintf("changed: DATABASE_CONNECTION_STRING changed in %s for auth-api.service; auth-api.service "
                           "restarted",
                           env_path);
        expect_line(f, "app", "auth-api", expect);
        assert_int_equal(restarts(f), 2);
        free(got);
        got = read_text(env_path);
        free(cs);
        cs = expected_cs(f, "n3w", true);
        assert_non_null(strstr(got, cs));

        /* A second grant, one waiting for its credentials. */
        add_env(a, env("REPORTS_URL", "reports", "localhost", "r3p"));
        add_env(a, env("ZZZ_LATER", "later", HOSTNAME_DB, NULL));
        reconcile(f, 0);
        free(expect);
        expect = xasprintf("changed: REPORTS_URL added in %s for auth-api.service; auth-api.service restarted; waiting "
                           "for credentials: ZZZ_LATER",
                           env_path);
        expect_line(f, "app", "auth-api", expect);
        assert_int_equal(restarts(f), 3);
        free(got);
        got = read_text(env_path);
        /* localhost resolves: no hostaddr for it. */
        free(expect);
        expect = xasprintf("REPORTS_URL='postgresql://auth-api:r3p@localhost:5432/reports?sslmode=verify-full&"
                           "sslrootcert=%s/ca.crt'\n",
                           f->cfg.apps_dir);
        assert_non_null(strstr(got, expect));
        assert_null(strstr(got, "ZZZ_LATER"));

        /* Revoked: the first grant goes; its variable with it. */
        env_free(&a->env[0]);
        memmove(&a->env[0], &a->env[1], 2 * sizeof(doc_env));
        a->n_env = 2;
        reconcile(f, 0);
        free(expect);
        expect = xasprintf("changed: DATABASE_CONNECTION_STRING removed in %s for auth-api.service; auth-api.service "
                           "restarted; waiting for credentials: ZZZ_LATER",
                           env_path);
        expect_line(f, "app", "auth-api", expect);
        assert_int_equal(restarts(f), 4);
        free(got);
        got = read_text(env_path);
        assert_null(strstr(got, "DATABASE_CONNECTION_STRING"));
        assert_int_equal(apps_load_state(&f->cfg, &st, &err), 0);
        assert_int_equal(st.apps[0].n_variables, 1);
        assert_string_equal(st.apps[0].variables[0], "REPORTS_URL");
        apps_state_done(&st);

        /* Every grant revoked: the env file and the drop-in go, the unit restarts without them. */
        for (size_t i = 0; i < a->n_env; i++)
                env_free(&a->env[i]);
        a->n_env = 0;
        reconcile(f, 0);
        free(expect);
        expect = xasprintf("removed: REPORTS_URL removed; %s removed with the drop-in of auth-api.service; "
                           "auth-api.service restarted",
                           env_path);
        expect_line(f, "app", "auth-api", expect);
        assert_int_equal(access(env_path, F_OK), -1);
        assert_int_equal(access(drop_in, F_OK), -1);
        free(got);
        got = xasprintf("%s/auth-api.service.d", f->cfg.unit_dir);
        assert_int_equal(access(got, F_OK), -1);
        assert_int_equal(restarts(f), 5);
        reconcile(f, 0);
        expect_line(f, "app", "auth-api", "unchanged: no variables for auth-api.service");
        assert_int_equal(restarts(f), 5);

        /* The app leaves the document: gone from the state as well. */
        add_env(a, env("DATABASE_CONNECTION_STRING", "accounts-db", HOSTNAME_DB, PASSWORD));
        reconcile(f, 0);
        assert_int_equal(restarts(f), 6);
        apps_clear(&f->doc);
        reconcile(f, 0);
        free(expect);
        expect = xasprintf("removed: DATABASE_CONNECTION_STRING removed; no longer in the document; %s removed with the "
                           "drop-in of auth-api.service; auth-api.service restarted",
                           env_path);
        expect_line(f, "app", "auth-api", expect);
        assert_int_equal(restarts(f), 7);
        assert_int_equal(access(env_path, F_OK), -1);
        assert_int_equal(apps_load_state(&f->cfg, &st, &err), 0);
        assert_int_equal(st.n_apps, 0);
        apps_state_done(&st);
        reconcile(f, 0);
        assert_null(line(f, "app", "auth-api"));
        assert_int_equal(restarts(f), 7);
}

/* A restart command that fails (and prints the env file): a failed resource with its exit status,
 * never the output that shows the password; the restart stays pending and the next apply retries
 * it even though the environment did not change. */
static void test_failed_restart(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *fail = path_in(f, "fail"), *env_path = NULL, *expect = NULL, *err = NULL;
        apps_state st = {};
        doc_app *a;

        env_path = xasprintf("%s/auth-api.env", f->cfg.apps_dir);
        a = add_app(f, "auth-api", "auth-api.service");
        add_env(a, env("DATABASE_CONNECTION_STRING", "accounts-db", HOSTNAME_DB, PASSWORD));
        write_text(fail, "", 0644);
        reconcile(f, -EIO);
        expect = xasprintf("failed: DATABASE_CONNECTION_STRING in %s for auth-api.service; restart of auth-api.service "
                           "failed: %s exited with status 3: it broke",
                           env_path, f->script);
        expect_line(f, "app", "auth-api", expect);
        assert_true(results_failed(&f->res));
        assert_int_equal(apps_load_state(&f->cfg, &st, &err), 0);
        assert_true(st.apps[0].restart_pending);
        free(expect);
        expect = xasprintf("failed: %s exited with status 3: it broke", f->script);
        assert_string_equal(st.apps[0].last_result, expect);
        apps_state_done(&st);

        /* The output's last line shows the password: withheld. */
        {
                _cleanup_free_ char *sh = xasprintf("#!/bin/sh\necho \"$INFRASTREAM_APP\" >>%s\ncat \"$INFRASTREAM_ENV_FILE\"\nexit 4\n",
                                                    f->log);
                write_text(f->script, sh, 0755);
        }
        reconcile(f, -EIO);
        free(expect);
        expect = xasprintf("failed: DATABASE_CONNECTION_STRING in %s for auth-api.service; restart of auth-api.service "
                           "failed: %s exited with status 4: (output withheld: it shows a password)",
                           env_path, f->script);
        expect_line(f, "app", "auth-api", expect);
        assert_int_equal(restarts(f), 2);

        /* Fixed: the pending restart runs, once. */
        {
                _cleanup_free_ char *sh = xasprintf("#!/bin/sh\necho \"$INFRASTREAM_APP\" >>%s\n", f->log);
                write_text(f->script, sh, 0755);
        }
        reconcile(f, 0);
        free(expect);
        expect = xasprintf("changed: DATABASE_CONNECTION_STRING in %s for auth-api.service; restart left pending by an "
                           "earlier apply; auth-api.service restarted",
                           env_path);
        expect_line(f, "app", "auth-api", expect);
        assert_int_equal(restarts(f), 3);
        reconcile(f, 0);
        assert_int_equal(restarts(f), 3);

        /* Without a restart command the direct backend cannot restart: said so. */
        free(f->cfg.restart_command);
        f->cfg.restart_command = NULL;
        erase_and_free(a->env[0].password);
        a->env[0].password = xstrdup("other");
        reconcile(f, -EIO);
        free(expect);
        expect = xasprintf("failed: DATABASE_CONNECTION_STRING changed in %s for auth-api.service; restart of "
                           "auth-api.service failed: the direct service backend needs restart-command in the "
                           "configuration",
                           env_path);
        expect_line(f, "app", "auth-api", expect);
        f->cfg.restart_command = xstrdup("restart.sh");
        reconcile(f, -EIO);
        free(expect);
        expect = xasprintf("failed: DATABASE_CONNECTION_STRING in %s for auth-api.service; restart of "
                           "auth-api.service failed: restart-command must start with an absolute path",
                           env_path);
        expect_line(f, "app", "auth-api", expect);
}

/* A unit renamed in the document: the old unit's drop-in goes, both units restart. An env file
 * nobody recorded is removed. No CA from enrollment: said, the env files are written anyway. */
static void test_unit_change_orphan_no_ca(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *old_drop_in = NULL, *new_drop_in = NULL, *orphan = NULL, *ca_src = NULL,
                            *expect = NULL, *log = NULL, *env_path = NULL, *ca_copy = NULL;
        doc_app *a;

        old_drop_in = xasprintf("%s/auth-api.service.d/infrastream.conf", f->cfg.unit_dir);
        new_drop_in = xasprintf("%s/auth-api-v2.service.d/infrastream.conf", f->cfg.unit_dir);
        env_path = xasprintf("%s/auth-api.env", f->cfg.apps_dir);
        a = add_app(f, "auth-api", "auth-api.service");
        add_env(a, env("DATABASE_CONNECTION_STRING", "accounts-db", HOSTNAME_DB, PASSWORD));
        reconcile(f, 0);
        free(a->unit);
        a->unit = xstrdup("auth-api-v2.service");
        reconcile(f, 0);
        expect = xasprintf("changed: DATABASE_CONNECTION_STRING in %s for auth-api-v2.service; moved from "
                           "auth-api.service; auth-api.service and auth-api-v2.service restarted",
                           env_path);
        expect_line(f, "app", "auth-api", expect);
        free(TAKE_PTR(expect));
        assert_int_equal(access(old_drop_in, F_OK), -1);
        assert_int_equal(access(new_drop_in, F_OK), 0);
        log = read_text(f->log);
        expect = xasprintf("auth-api auth-api.service %s\nauth-api auth-api.service %s\nauth-api auth-api-v2.service %s\n",
                           env_path, env_path, env_path);
        assert_string_equal(log, expect);

        orphan = xasprintf("%s/old-app.env", f->cfg.apps_dir);
        write_text(orphan, "OLD='x'\n", 0600);
        reconcile(f, 0);
        free(expect);
        expect = xasprintf("removed: OLD removed; no longer in the document; %s removed; not restarted: its unit is "
                           "unknown",
                           orphan);
        expect_line(f, "app", "old-app", expect);
        assert_int_equal(access(orphan, F_OK), -1);

        /* Edited by hand: rewritten (and restarted: the unit may have read the edit). A line
         * that is not a variable is not echoed. */
        {
                _cleanup_free_ char *text = read_text(env_path), *edited = xasprintf("%shunter2 is the pw=1\n", text);
                write_text(env_path, edited, 0600);
        }
        reconcile(f, 0);
        free(expect);
        expect = xasprintf("changed: edited outside the agent: rewritten in %s for auth-api-v2.service; "
                           "auth-api-v2.service restarted",
                           env_path);
        expect_line(f, "app", "auth-api", expect);

        ca_src = xasprintf("%s/ca.crt", f->cfg.state_dir);
        ca_copy = xasprintf("%s/ca.crt", f->cfg.apps_dir);
        assert_int_equal(unlink(ca_src), 0);
        erase_and_free(a->env[0].password);
        a->env[0].password = xstrdup("again");
        reconcile(f, -EIO);
        free(expect);
        expect = xasprintf("failed: this host is not enrolled (%s is missing): run 'agentctl enroll'; the connection "
                           "strings verify the database against this file",
                           ca_src);
        expect_line(f, "ca", ca_copy, expect);
        free(expect);
        expect = xasprintf("changed: DATABASE_CONNECTION_STRING changed in %s for auth-api-v2.service; "
                           "auth-api-v2.service restarted",
                           env_path);
        expect_line(f, "app", "auth-api", expect);

        /* A damaged state file is rebuilt, not trusted. */
        {
                _cleanup_free_ char *p = xasprintf("%s/apps.json", f->cfg.state_dir), *e2 = NULL;
                write_text(p, "{\"apps\": 5}", 0600);
                reconcile(f, -EIO);
                e2 = xasprintf("changed: %s is damaged; rebuilt", p);
                expect_line(f, "apps", "apps.json", e2);
        }
}

/* The drop-in cannot be written (unit-dir is a file): failed with the reason, no restart (the unit
 * would not see its environment); once the directory is there, the owed restart happens. */
static void test_write_failure(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *env_path = NULL, *expect = NULL;
        doc_app *a;

        env_path = xasprintf("%s/auth-api.env", f->cfg.apps_dir);
        write_text(f->cfg.unit_dir, "not a directory\n", 0644);
        a = add_app(f, "auth-api", "auth-api.service");
        add_env(a, env("DATABASE_CONNECTION_STRING", "accounts-db", HOSTNAME_DB, PASSWORD));
        reconcile(f, -EIO);
        expect = xasprintf("failed: DATABASE_CONNECTION_STRING in %s for auth-api.service; cannot create "
                           "%s/auth-api.service.d: Not a directory",
                           env_path, f->cfg.unit_dir);
        expect_line(f, "app", "auth-api", expect);
        assert_int_equal(restarts(f), 0);
        assert_int_equal(unlink(f->cfg.unit_dir), 0);
        reconcile(f, 0);
        free(expect);
        expect = xasprintf("changed: DATABASE_CONNECTION_STRING in %s for auth-api.service; drop-in restored; restart "
                           "left pending by an earlier apply; auth-api.service restarted",
                           env_path);
        expect_line(f, "app", "auth-api", expect);
        assert_int_equal(restarts(f), 1);
}

/* The systemd backend without systemd (no system bus here): the files are written, the failure
 * to reload says why, the restart stays pending for the next apply. */
static void test_systemd_backend_without_systemd(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *env_path = NULL, *drop_in = NULL, *err = NULL, *l = NULL;
        apps_state st = {};
        doc_app *a;

        if (access("/run/systemd/system", F_OK) == 0)
                skip(); /* systemd is running: this test is about its absence */
        f->cfg.backend = SERVICE_SYSTEMD;
        env_path = xasprintf("%s/auth-api.env", f->cfg.apps_dir);
        drop_in = xasprintf("%s/auth-api.service.d/infrastream.conf", f->cfg.unit_dir);
        a = add_app(f, "auth-api", "auth-api.service");
        add_env(a, env("DATABASE_CONNECTION_STRING", "accounts-db", HOSTNAME_DB, PASSWORD));
        reconcile(f, -EIO);
        l = line(f, "app", "auth-api");
        if (!strstr(l, "failed: DATABASE_CONNECTION_STRING in ") || !strstr(l, "; daemon-reload failed: "))
                fail_msg("got '%s'", l);
        assert_int_equal(access(env_path, F_OK), 0);
        assert_int_equal(access(drop_in, F_OK), 0);
        assert_int_equal(apps_load_state(&f->cfg, &st, &err), 0);
        assert_true(st.apps[0].restart_pending);
        apps_state_done(&st);
        /* Nothing changed on disk, but the restart is still owed: tried again, not "unchanged". */
        reconcile(f, -EIO);
        free(l);
        l = line(f, "app", "auth-api");
        if (!strstr(l, "failed: DATABASE_CONNECTION_STRING in ") || !strstr(l, "; daemon-reload failed: "))
                fail_msg("got '%s'", l);
        assert_int_equal(restarts(f), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_connection_string),
                cmocka_unit_test(test_connection_string_members),
                cmocka_unit_test_setup_teardown(test_check, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lifecycle, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failed_restart, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unit_change_orphan_no_ca, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
                cmocka_unit_test_setup_teardown(test_systemd_backend_without_systemd, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
