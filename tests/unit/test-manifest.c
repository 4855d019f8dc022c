/* Unit tests for manifest parsing: the seed example, defaults, and representative errors
 * (the exhaustive error corpus lives in tests/invalid). */
#include <stdio.h>

#include "manifest.h"
#include "unit.h"

#define SEED_DB                                                                                  \
        "apiVersion: lowops.manifests.v1\nkind: Database\nmetadata:\n  name: accounts-db\n"      \
        "  project: login-svc\n  environment: development\n  organizational-unit: retail-banking\n" \
        "  organization: fincorp\nspec:\n  cpuCount: 4\n  clusterSize: 1\n  backupConfig:\n    enabled: true\n"

#define META(name)                                                                                  \
        "metadata:\n  name: " name "\n  project: login-svc\n  environment: development\n"           \
        "  organizational-unit: retail-banking\n  organization: fincorp\n"

static void load(manifest_set *s, diag_list *d, const char *text) {
        manifest_load_buffer(s, "m.yaml", text, strlen(text), d);
}

static void test_seed_database(void **state) {
        manifest_set s;
        diag_list d;

        manifest_set_init(&s);
        diag_list_init(&d);
        load(&s, &d, SEED_DB);
        assert_int_equal(d.n_errors, 0);
        assert_int_equal(s.n_dbs, 1);
        assert_string_equal(s.dbs[0].name, "accounts-db");
        assert_string_equal(s.dbs[0].id.organization, "fincorp");
        assert_string_equal(s.dbs[0].id.organizational_unit, "retail-banking");
        assert_string_equal(s.dbs[0].id.environment, "development");
        assert_string_equal(s.dbs[0].id.project, "login-svc");
        assert_int_equal(s.dbs[0].cpu_count, 4);
        assert_int_equal(s.dbs[0].cluster_size, 1);
        assert_true(s.dbs[0].backup_enabled);
        /* Defaults the guide does not spell out. */
        assert_string_equal(s.dbs[0].schedule, "daily");
        assert_int_equal(s.dbs[0].retention_days, 7);
        assert_int_equal(s.dbs[0].postgres_version, 15);
        assert_int_equal(s.dbs[0].name_loc.line, 4);
        assert_int_equal(s.dbs[0].name_loc.col, 9);
        manifest_set_done(&s);
        diag_list_done(&d);
}

/* The schedules are accepted as written (kept verbatim: the agent hands them to systemd),
 * and bad ones are refused with the reason, at the schedule. */
static void test_backup_schedules(void **state) {
        static const char *const good[] = { "daily", "weekly", "Mon *-*-* 03:00", "*-*-* 02:30 UTC" };
        static const struct {
                const char *schedule, *error;
        } bad[] = {
                { "dialy", "m.yaml:14:15: error: spec.backupConfig.schedule: 'dialy': not a calendar expression; did you mean 'daily'?" },
                { "\"Mon *-*-* 25:00\"", "m.yaml:14:15: error: spec.backupConfig.schedule: 'Mon *-*-* 25:00': hour 25 is out of range 0..23" },
                { "\"weekly Europe/Berlin\"", "m.yaml:14:15: error: spec.backupConfig.schedule: 'weekly Europe/Berlin': time zone 'Europe/Berlin' is not supported; only UTC is (schedules are evaluated in UTC)" },
        };

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_free_ char *text = xasprintf(SEED_DB "    schedule: \"%s\"\n", good[i]);
                manifest_set s;
                diag_list d;

                manifest_set_init(&s);
                diag_list_init(&d);
                load(&s, &d, text);
                assert_int_equal(d.n_errors, 0);
                assert_int_equal(s.n_dbs, 1);
                assert_string_equal(s.dbs[0].schedule, good[i]);
                manifest_set_done(&s);
                diag_list_done(&d);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *text = xasprintf(SEED_DB "    schedule: %s\n", bad[i].schedule), *msg = NULL;
                manifest_set s;
                diag_list d;

                manifest_set_init(&s);
                diag_list_init(&d);
                load(&s, &d, text);
                assert_int_equal(d.n_errors, 1);
                assert_int_equal(s.n_dbs, 0);
                msg = xasprintf("%s:%d:%d: error: %s", d.items[0].path, d.items[0].line, d.items[0].col,
                                d.items[0].message);
                if (!streq(msg, bad[i].error))
                        print_error("expected: %s\n     got: %s\n", bad[i].error, msg);
                assert_string_equal(msg, bad[i].error);
                manifest_set_done(&s);
                diag_list_done(&d);
        }
}

static void test_application_defaults(void **state) {
        manifest_set s;
        diag_list d;

        manifest_set_init(&s);
        diag_list_init(&d);
        load(&s, &d,
             "apiVersion: lowops.manifests.v1\nkind: Application\n" META("auth-api")
             "spec:\n  source: {repo: x}\n  target:\n    hosts: [app1, app2]\n"
             "  accessControl:\n    databases:\n      - name: accounts-db\n"
             "        secretSource:\n          envVar: DATABASE_URL\n");
        assert_int_equal(d.n_errors, 0);
        assert_int_equal(s.n_apps, 1);
        assert_string_equal(s.apps[0].unit, "auth-api.service");
        assert_int_equal(s.apps[0].n_hosts, 2);
        assert_int_equal(s.apps[0].n_grants, 1);
        /* Least privilege: no readOnly means read-only. */
        assert_true(s.apps[0].grants[0].read_only);
        assert_string_equal(s.apps[0].grants[0].env_var, "DATABASE_URL");
        manifest_set_done(&s);
        diag_list_done(&d);
}

static void test_other_yaml_ignored(void **state) {
        manifest_set s;
        diag_list d;

        manifest_set_init(&s);
        diag_list_init(&d);
        load(&s, &d, "apiVersion: apps/v1\nkind: Deployment\n---\n- just\n- a list\n---\nname: x\n");
        assert_int_equal(d.n_errors, 0);
        assert_int_equal(s.n_dbs + s.n_apps, 0);
        assert_int_equal(s.n_ignored, 3);
        manifest_set_done(&s);
        diag_list_done(&d);
}

static void test_broken_foreign_yaml_is_not_an_error(void **state) {
        manifest_set s;
        diag_list d;

        manifest_set_init(&s);
        diag_list_init(&d);
        /* A Helm template is not valid YAML, and not ours. */
        load(&s, &d, "replicas: {{ .Values.replicas }}\n  bad: [\n");
        assert_int_equal(d.n_errors, 0);
        manifest_set_done(&s);
        diag_list_done(&d);
}

static void test_errors_are_collected(void **state) {
        manifest_set s;
        diag_list d;

        manifest_set_init(&s);
        diag_list_init(&d);
        load(&s, &d,
             "apiVersion: lowops.manifests.v1\nkind: Database\n" META("Bad_Name")
             "spec:\n  cpuCont: 4\n  clusterSize: 10\ncomputed:\n  hostname: x\n");
        diag_sort(&d);
        assert_int_equal(d.n_errors, 5);
        assert_string_equal(d.items[0].message,
                            "metadata.name: 'Bad_Name' is not a valid name: use at most 63 lower-case letters, digits "
                            "and '-', starting and ending with a letter or digit");
        /* Same place (the first key of spec): the unknown key comes first, then what is missing. */
        assert_string_equal(d.items[1].message, "unknown key 'cpuCont' in Database spec; did you mean 'cpuCount'?");
        assert_string_equal(d.items[2].message, "spec: missing required key 'cpuCount'");
        assert_string_equal(d.items[3].message, "spec.clusterSize: 10 is out of range (1 to 9)");
        assert_string_equal(d.items[4].message,
                            "'computed' is written by the platform and must not appear in a manifest; remove it");
        assert_int_equal(s.n_dbs, 0);
        manifest_set_done(&s);
        diag_list_done(&d);
}

/* Repeated target hosts and grants: short lists are compared pair by pair, long ones sorted;
 * both name the first occurrence. */
static void check_repeats(size_t n_hosts, size_t n_grants) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&text, &size);
        manifest_set s;
        diag_list d;
        char want[128];

        assert_non_null(m);
        fputs("apiVersion: lowops.manifests.v1\nkind: Application\n" META("auth-api") "spec:\n  target:\n    hosts:\n", m);
        for (size_t i = 0; i < n_hosts; i++) /* h0 h1 h2 ... then h0 and h1 again */
                fprintf(m, "      - h%zu\n", i < n_hosts - 2 ? i : i - (n_hosts - 2));
        fputs("  accessControl:\n    databases:\n", m);
        for (size_t i = 0; i < n_grants; i++) /* the last grant repeats the first database */
                fprintf(m, "      - {name: db%zu, secretSource: {envVar: V%zu}}\n", i < n_grants - 1 ? i : 0, i);
        fclose(m);

        manifest_set_init(&s);
        diag_list_init(&d);
        load(&s, &d, text);
        diag_sort(&d);
        assert_int_equal(d.n_errors, 3);
        assert_int_equal(d.items[0].line, 12 + (int) n_hosts - 2);
        assert_string_equal(d.items[1].message, n_hosts == 4 ? "spec.target.hosts[3]: host 'h1' is listed twice"
                                                             : "spec.target.hosts[11]: host 'h1' is listed twice");
        /* The grants start on line 14 + n_hosts. */
        snprintf(want, sizeof(want), "database 'db0' is granted twice to application 'auth-api' (first at line %zu)",
                 14 + n_hosts);
        assert_string_equal(d.items[2].message, want);
        assert_int_equal(d.items[2].line, 14 + (int) n_hosts + (int) n_grants - 1);
        assert_int_equal(s.n_apps, 0);
        manifest_set_done(&s);
        diag_list_done(&d);
}

static void test_repeats_short_and_long_lists(void **state) {
        check_repeats(4, 3);
        check_repeats(12, 11);
}

static void test_validators(void **state) {
        assert_true(valid_dns_label("a"));
        assert_true(valid_dns_label("accounts-db"));
        assert_false(valid_dns_label("-a"));
        assert_false(valid_dns_label("a-"));
        assert_false(valid_dns_label("A"));
        assert_false(valid_dns_label(""));
        assert_true(valid_dns_label("a23456789012345678901234567890123456789012345678901234567890123"));
        assert_false(valid_dns_label("a234567890123456789012345678901234567890123456789012345678901234"));
        assert_true(valid_env_var("DATABASE_CONNECTION_STRING"));
        assert_true(valid_env_var("_X1"));
        assert_false(valid_env_var("1X"));
        assert_false(valid_env_var("lower"));
        assert_false(valid_env_var("A-B"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_seed_database),
                cmocka_unit_test(test_application_defaults),
                cmocka_unit_test(test_backup_schedules),
                cmocka_unit_test(test_other_yaml_ignored),
                cmocka_unit_test(test_broken_foreign_yaml_is_not_an_error),
                cmocka_unit_test(test_errors_are_collected),
                cmocka_unit_test(test_repeats_short_and_long_lists),
                cmocka_unit_test(test_validators),
        };
        return cmocka_run_group_tests_name("manifest", tests, NULL, NULL);
}
