/* Unit tests for backup schedules: next elapses and intervals of the expressions the manifest
 * allows ('daily', 'weekly', 'Mon *-*-* 03:00') and a refused one; the exact unit texts, and all
 * four units of a database accepted by `systemd-analyze verify`; the direct backend's due jobs
 * over a simulated fortnight (first sight, an elapse, a repeat, full and diff together, missed
 * elapses caught up once, a disabled database dropped); the systemd backend without systemd
 * (units written, the failure reported). No root needed. */
#include "unit.h"

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "fileio.h"
#include "schedule.h"
#include "systemd.h"

#define USEC_PER_SEC INT64_C(1000000)
#define DAY (INT64_C(86400) * USEC_PER_SEC)

/* "YYYY-MM-DD HH:MM:SS" in UTC → µs since the epoch. */
static int64_t at(const char *s) {
        struct tm tm = {};

        assert_int_equal(sscanf(s, "%d-%d-%d %d:%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                                &tm.tm_min, &tm.tm_sec),
                         6);
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        return (int64_t) timegm(&tm) * USEC_PER_SEC;
}

static void test_next(void **state) {
        /* 2026-03-04 is a Wednesday. */
        static const struct {
                const char *expr, *after, *next;
        } cases[] = {
                { "daily",           "2026-03-04 10:00:00", "2026-03-05 00:00:00" },
                { "daily",           "2026-03-04 23:59:59", "2026-03-05 00:00:00" },
                { "daily",           "2026-03-05 00:00:00", "2026-03-06 00:00:00" }, /* strictly after */
                { "weekly",          "2026-03-04 10:00:00", "2026-03-09 00:00:00" },
                { "Mon *-*-* 03:00", "2026-03-04 10:00:00", "2026-03-09 03:00:00" },
                { "Mon *-*-* 03:00", "2026-03-09 02:59:59", "2026-03-09 03:00:00" },
                { SCHEDULE_FULL,     "2026-03-04 10:00:00", "2026-03-08 01:00:00" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *err = NULL;
                int64_t next = 0;

                assert_int_equal(schedule_next(cases[i].expr, at(cases[i].after), &next, &err), 0);
                assert_null(err);
                if (next != at(cases[i].next))
                        fail_msg("'%s' after %s: got %lld, want %s", cases[i].expr, cases[i].after, (long long) next,
                                 cases[i].next);
        }
}

static void test_interval(void **state) {
        static const struct {
                const char *expr;
                int64_t interval;
        } cases[] = {
                { "daily", DAY },
                { "weekly", 7 * DAY },
                { "Mon *-*-* 03:00", 7 * DAY },
                { "Mon,Thu 02:00", 4 * DAY },        /* the longer of the two gaps */
                { "monthly", 31 * DAY },             /* the longest month among those sampled */
                { "*-*-* 00/6:00:00", DAY / 4 },
        };
        int64_t v = 0;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *err = NULL;

                assert_int_equal(schedule_interval(cases[i].expr, at("2026-01-15 12:00:00"), &v, &err), 0);
                if (v != cases[i].interval)
                        fail_msg("'%s': interval %lld s, want %lld s", cases[i].expr, (long long) (v / USEC_PER_SEC),
                                 (long long) (cases[i].interval / USEC_PER_SEC));
        }

        /* One elapse only: no interval, and a message that says so. */
        {
                _cleanup_free_ char *err = NULL;
                assert_int_equal(schedule_interval("@1800000000", at("2026-01-15 12:00:00"), &v, &err), -ENOENT);
                assert_string_equal(err, "'@1800000000' elapses only once: it has no interval");
        }

        /* Status's staleness window: the weekly full caps it. */
        {
                doc_backup daily = { .enabled = true, .schedule = "daily" }, monthly = { .enabled = true, .schedule = "monthly" },
                           none = { .enabled = true };
                assert_int_equal(schedule_backup_interval(&daily, at("2026-01-15 12:00:00"), &v, NULL), 0);
                assert_int_equal(v, DAY);
                assert_int_equal(schedule_backup_interval(&monthly, at("2026-01-15 12:00:00"), &v, NULL), 0);
                assert_int_equal(v, 7 * DAY);
                assert_int_equal(schedule_backup_interval(&none, at("2026-01-15 12:00:00"), &v, NULL), 0);
                assert_int_equal(v, DAY); /* no schedule in the document: 'daily' */
        }
}

static void test_bad_expression(void **state) {
        doc_database db = { .name = "accounts-db", .backup = { .enabled = true, .schedule = "Mon 25:00" } };
        _cleanup_free_ char *err = NULL, *err2 = NULL, *err3 = NULL, *text = NULL;
        int64_t v = 0;

        assert_int_equal(schedule_next("Mon 25:00", 0, &v, &err), -EINVAL);
        assert_string_equal(err, "'Mon 25:00': hour 25 is out of range 0..23");
        assert_int_equal(schedule_interval("fortnightly", 0, &v, &err2), -EINVAL);
        assert_non_null(strstr(err2, "fortnightly"));
        /* No unit from a bad expression: the message is the parser's. */
        assert_int_equal(schedule_timer_text(&db, SCHEDULE_KIND_DIFF, &text, &err3), -EINVAL);
        assert_null(text);
        assert_string_equal(err3, "'Mon 25:00': hour 25 is out of range 0..23");
        /* A date that never comes again. */
        {
                _cleanup_free_ char *e = NULL;
                assert_int_equal(schedule_next("2020-01-01", at("2026-01-01 00:00:00"), &v, &e), -ENOENT);
                assert_string_equal(e, "'2020-01-01' never elapses again");
        }
}

static void test_unit_text(void **state) {
        doc_database db = { .name = "accounts-db", .backup = { .enabled = true, .schedule = "Mon *-*-* 03:00" } };
        agent_config cfg = { .path = "/etc/infra stream/agent%1.conf", .state_dir = "/var/lib/infrastream/agent",
                             .data_root = "/srv/pg data", .backup_root = "/var/lib/infrastream/backup" };
        _cleanup_free_ char *timer = NULL, *full = NULL, *name = NULL, *err = NULL,
                            *service = schedule_service_text(&cfg, "/usr/bin/agentctl", "accounts-db", SCHEDULE_KIND_DIFF);

        assert_int_equal(schedule_timer_text(&db, SCHEDULE_KIND_DIFF, &timer, &err), 0);
        assert_string_equal(timer, "# Managed by infrastream-agent: rewritten on every apply, do not edit.\n"
                                   "[Unit]\n"
                                   "Description=Differential backups of database accounts-db (infrastream)\n"
                                   "Documentation=man:infrastream-agent(8)\n"
                                   "\n"
                                   "[Timer]\n"
                                   "OnCalendar=Mon *-*-* 03:00:00 UTC\n"
                                   "Persistent=true\n"
                                   "RandomizedDelaySec=30min\n"
                                   "FixedRandomDelay=true\n"
                                   "AccuracySec=1min\n"
                                   "\n"
                                   "[Install]\n"
                                   "WantedBy=timers.target\n");
        assert_string_equal(service, "# Managed by infrastream-agent: rewritten on every apply, do not edit.\n"
                                     "[Unit]\n"
                                     "Description=Differential backup of database accounts-db (infrastream)\n"
                                     "Documentation=man:infrastream-agent(8)\n"
                                     "After=infrastream-postgresql@accounts-db.service network-online.target\n"
                                     "\n"
                                     "[Service]\n"
                                     "Type=oneshot\n"
                                     "ExecStart=\"/usr/bin/agentctl\" --config \"/etc/infra stream/agent%%1.conf\" "
                                     "backup run accounts-db --type diff\n"
                                     "Nice=10\n"
                                     "IOSchedulingClass=best-effort\n"
                                     "IOSchedulingPriority=7\n"
                                     "UMask=0077\n"
                                     "ProtectSystem=strict\n"
                                     "ReadWritePaths=\"/var/lib/infrastream/agent\" -\"/srv/pg data/accounts-db\" "
                                     "-\"/var/lib/infrastream/backup\"\n"
                                     "ProtectHome=yes\n"
                                     "PrivateTmp=yes\n"
                                     "PrivateDevices=yes\n"
                                     "ProtectKernelTunables=yes\n"
                                     "ProtectKernelModules=yes\n"
                                     "ProtectKernelLogs=yes\n"
                                     "ProtectControlGroups=yes\n"
                                     "ProtectClock=yes\n"
                                     "ProtectHostname=yes\n"
                                     "NoNewPrivileges=yes\n"
                                     "CapabilityBoundingSet=CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_SETUID CAP_SETGID\n"
                                     "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n"
                                     "RestrictNamespaces=yes\n"
                                     "RestrictRealtime=yes\n"
                                     "RestrictSUIDSGID=yes\n"
                                     "LockPersonality=yes\n"
                                     "SystemCallArchitectures=native\n"
                                     "SystemCallFilter=@system-service\n"
                                     "SystemCallErrorNumber=EPERM\n");
        /* The full's timer: weekly, whatever the document's schedule; " UTC" written once. */
        assert_int_equal(schedule_timer_text(&db, SCHEDULE_KIND_FULL, &full, &err), 0);
        assert_non_null(strstr(full, "\nOnCalendar=Sun *-*-* 01:00:00 UTC\n"));
        assert_non_null(strstr(full, "\nDescription=Weekly full backups of database accounts-db (infrastream)\n"));
        free(timer);
        timer = NULL;
        db.backup.schedule = "daily UTC";
        assert_int_equal(schedule_timer_text(&db, SCHEDULE_KIND_DIFF, &timer, &err), 0);
        assert_non_null(strstr(timer, "\nOnCalendar=*-*-* 00:00:00 UTC\n"));
        name = schedule_unit_name("accounts-db", SCHEDULE_KIND_FULL, "timer");
        assert_string_equal(name, "infrastream-backup-full@accounts-db.timer");
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

/* Every unit the agent writes for a database, checked by systemd itself. Any output (unknown
 * keys are only warnings) counts as a failure. */
static void test_units_verify(void **state) {
        doc_database db = { .name = "accounts-db", .backup = { .enabled = true, .schedule = "Mon..Fri 22:30" } };
        /* Paths with a space and a '%': systemd must read them back as they are. */
        agent_config cfg = { .path = "/etc/infrastream/agent.conf", .state_dir = "/var/lib/infrastream/agent",
                             .data_root = "/srv/pg data%", .backup_root = "/var/lib/infrastream/backup" };
        const char *builddir = getenv("top_builddir");
        _cleanup_free_ char *agentctl = xasprintf("%s/agent/agentctl", builddir ? builddir : ".");
        char dir[] = "/tmp/test-schedule.XXXXXX";
        _cleanup_free_ char *cmd = NULL;
        int status;

        if (access("/usr/bin/systemd-analyze", X_OK) < 0 || access(agentctl, X_OK) < 0) {
                skip(); /* needs systemd-analyze and the agentctl the services name */
        }
        assert_non_null(mkdtemp(dir));
        for (schedule_kind k = 0; k < _SCHEDULE_KIND_MAX; k++) {
                _cleanup_free_ char *timer = NULL, *err = NULL, *service = schedule_service_text(&cfg, agentctl, db.name, k),
                                    *tname = schedule_unit_name(db.name, k, "timer"),
                                    *sname = schedule_unit_name(db.name, k, "service"),
                                    *tpath = xasprintf("%s/%s", dir, tname), *spath = xasprintf("%s/%s", dir, sname);

                assert_int_equal(schedule_timer_text(&db, k, &timer, &err), 0);
                assert_true(write_file_atomic(tpath, timer, strlen(timer), 0644) >= 0);
                assert_true(write_file_atomic(spath, service, strlen(service), 0644) >= 0);
        }
        cmd = xasprintf("cd %s && out=$(SYSTEMD_UNIT_PATH=%s: systemd-analyze verify --man=no "
                        "infrastream-backup-full@accounts-db.timer infrastream-backup-full@accounts-db.service "
                        "infrastream-backup-diff@accounts-db.timer infrastream-backup-diff@accounts-db.service 2>&1); "
                        "rc=$?; echo \"$out\" >&2; [ $rc -eq 0 ] && [ -z \"$out\" ]",
                        dir, dir);
        status = system(cmd);
        nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

typedef struct fixture {
        char dir[64];
        agent_config cfg;
        doc_database dbs[3];
        doc_document doc;
} fixture;

static int setup(void **state) {
        fixture *f = xcalloc(1, sizeof(*f));

        snprintf(f->dir, sizeof(f->dir), "/tmp/test-schedule.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->cfg = (agent_config) { .path = "/etc/infrastream/agent.conf", .state_dir = f->dir, .unit_dir = f->dir,
                                  .data_root = f->dir, .backup_root = f->dir, .backend = SERVICE_DIRECT };
        f->dbs[0] = (doc_database) { .name = "a", .backup = { .enabled = true, .schedule = "daily" } };
        f->dbs[1] = (doc_database) { .name = "b", .backup = { .enabled = true, .schedule = "Mon *-*-* 03:00" } };
        f->dbs[2] = (doc_database) { .name = "c", .backup = { .enabled = false, .schedule = "daily" } };
        f->doc = (doc_document) { .host = "db1", .databases = f->dbs, .n_databases = 3 };
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture *f = *state;
        nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

/* The due jobs at 'now' as "a:diff b:full", and the next elapse. */
static char *due(fixture *f, const char *now, int64_t *ret_next) {
        _cleanup_free_ char *err = NULL;
        schedule_job *jobs = NULL;
        size_t n = 0;
        char buf[256] = "";

        if (schedule_due(&f->cfg, &f->doc, at(now), &jobs, &n, ret_next, &err) < 0)
                fail_msg("schedule_due at %s: %s", now, err);
        for (size_t i = 0; i < n; i++)
                snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s:%s", i ? " " : "", jobs[i].database,
                         schedule_kind_to_string(jobs[i].kind));
        schedule_jobs_free(jobs, n);
        return xstrdup(buf);
}

static void check_due(fixture *f, const char *now, const char *want, const char *want_next) {
        int64_t next = 0;
        _cleanup_free_ char *got = due(f, now, &next);

        if (!streq(got, want))
                fail_msg("at %s: due '%s', want '%s'", now, got, want);
        if (next != at(want_next))
                fail_msg("at %s: next elapse %lld, want %s", now, (long long) next, want_next);
}

static void test_due(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *path = xasprintf("%s/schedule.json", f->dir), *text = NULL;
        struct stat st;

        /* First sight: nothing at once, counting starts now. */
        check_due(f, "2026-03-04 10:00:00", "", "2026-03-05 00:00:00");
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        check_due(f, "2026-03-04 23:59:59", "", "2026-03-05 00:00:00");
        /* The elapse came: once, not again at the next step. */
        check_due(f, "2026-03-05 00:00:30", "a:diff", "2026-03-06 00:00:00");
        check_due(f, "2026-03-05 00:05:00", "", "2026-03-06 00:00:00");
        check_due(f, "2026-03-06 00:00:01", "a:diff", "2026-03-07 00:00:00");
        check_due(f, "2026-03-07 00:00:01", "a:diff", "2026-03-08 00:00:00");
        check_due(f, "2026-03-08 00:00:01", "a:diff", "2026-03-08 01:00:00");
        /* Sunday 01:00: the fulls; a's pending differential is not run as well. */
        check_due(f, "2026-03-08 01:00:05", "a:full b:full", "2026-03-09 00:00:00");
        /* The host was down for ten days: each schedule runs once, the full for both. */
        check_due(f, "2026-03-19 12:00:00", "a:full b:full", "2026-03-20 00:00:00");
        check_due(f, "2026-03-19 12:00:01", "", "2026-03-20 00:00:00");
        /* Backups disabled for a: dropped from the state; re-enabled later, it starts counting again. */
        f->dbs[0].backup.enabled = false;
        check_due(f, "2026-03-21 00:00:00", "", "2026-03-22 01:00:00");
        assert_int_equal(read_full_file(path, 65536, &text, NULL), 0);
        assert_null(strstr(text, "\"a\""));
        assert_non_null(strstr(text, "\"b\""));
        f->dbs[0].backup.enabled = true;
        /* b's full came on Sunday meanwhile; a starts over from now. */
        check_due(f, "2026-03-23 10:00:00", "b:full", "2026-03-24 00:00:00");
}

static void test_due_damaged_state(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *path = xasprintf("%s/schedule.json", f->dir), *err = NULL;
        schedule_job *jobs = NULL;
        size_t n = 0;

        assert_true(write_file_atomic(path, "{ not json", 10, 0600) >= 0);
        assert_int_equal(schedule_due(&f->cfg, &f->doc, at("2026-03-04 10:00:00"), &jobs, &n, NULL, &err), -EBADMSG);
        assert_non_null(strstr(err, "schedule.json is damaged; move it away"));
}

/* Without systemd the units are still written, and the failure to load them is reported. */
static void test_systemd_backend_without_systemd(void **state) {
        fixture *f = *state;
        results res = {};
        _cleanup_free_ char *timer = xasprintf("%s/infrastream-backup-diff@a.timer", f->dir),
                            *service = xasprintf("%s/infrastream-backup-full@b.service", f->dir),
                            *none = xasprintf("%s/infrastream-backup-diff@c.timer", f->dir), *text = NULL;
        bool failed_a = false;

        if (systemd_booted()) {
                skip(); /* a real manager would load the units in the test's directory */
        }
        f->cfg.backend = SERVICE_SYSTEMD;
        assert_true(schedule_reconcile(&f->cfg, &f->doc, &res) < 0);
        assert_int_equal(access(timer, F_OK), 0);
        assert_int_equal(access(service, F_OK), 0);
        assert_int_equal(access(none, F_OK), -1); /* backups disabled: no units */
        assert_int_equal(read_full_file(service, 65536, &text, NULL), 0);
        assert_non_null(strstr(text, "backup run b --type full\n"));
        for (size_t i = 0; i < res.n; i++)
                if (streq(res.items[i].name, "a")) {
                        assert_int_equal(res.items[i].state, RES_FAILED);
                        assert_non_null(strstr(res.items[i].detail, "systemd daemon-reload failed: "));
                        failed_a = true;
                }
        assert_true(failed_a);
        results_done(&res);
}

/* The direct backend only checks the expressions. */
static void test_direct_reconcile(void **state) {
        fixture *f = *state;
        results res = {};

        f->dbs[1].backup.schedule = "Mon 25:00";
        assert_int_equal(schedule_reconcile(&f->cfg, &f->doc, &res), -EINVAL);
        assert_int_equal(res.n, 2);
        assert_string_equal(res.items[0].name, "a");
        assert_int_equal(res.items[0].state, RES_UNCHANGED);
        assert_string_equal(res.items[1].name, "b");
        assert_int_equal(res.items[1].state, RES_FAILED);
        assert_string_equal(res.items[1].detail, "backup schedule: 'Mon 25:00': hour 25 is out of range 0..23");
        results_done(&res);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_next),
                cmocka_unit_test(test_interval),
                cmocka_unit_test(test_bad_expression),
                cmocka_unit_test(test_unit_text),
                cmocka_unit_test(test_units_verify),
                cmocka_unit_test_setup_teardown(test_due, setup, teardown),
                cmocka_unit_test_setup_teardown(test_due_damaged_state, setup, teardown),
                cmocka_unit_test_setup_teardown(test_systemd_backend_without_systemd, setup, teardown),
                cmocka_unit_test_setup_teardown(test_direct_reconcile, setup, teardown),
        };
        return cmocka_run_group_tests_name("schedule", tests, NULL, NULL);
}
