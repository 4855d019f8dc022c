/* Unit tests for resolution: identity-scoped references, duplicates, hints. */
#include "resolve.h"
#include "unit.h"

#define DB(name, env)                                                                             \
        "apiVersion: lowops.manifests.v1\nkind: Database\nmetadata:\n  name: " name "\n"          \
        "  project: p\n  environment: " env "\n  organizational-unit: ou\n  organization: o\n"    \
        "spec:\n  cpuCount: 2\n"
#define APP(name, env, db)                                                                        \
        "apiVersion: lowops.manifests.v1\nkind: Application\nmetadata:\n  name: " name "\n"       \
        "  project: p\n  environment: " env "\n  organizational-unit: ou\n  organization: o\n"    \
        "spec:\n  target:\n    hosts: [h1]\n  accessControl:\n    databases:\n      - name: " db "\n" \
        "        secretSource:\n          envVar: URL\n"

static void setup_set(manifest_set *s, diag_list *d, const char *const *files, size_t n) {
        manifest_set_init(s);
        diag_list_init(d);
        for (size_t i = 0; i < n; i++) {
                char path[32];
                snprintf(path, sizeof(path), "f%zu.yaml", i);
                manifest_load_buffer(s, path, files[i], strlen(files[i]), d);
        }
        resolve_manifests(s, d);
        diag_sort(d);
}

static void test_resolves_within_identity(void **state) {
        const char *files[] = { DB("db", "dev"), DB("db", "prod"), APP("api", "prod", "db") };
        manifest_set s;
        diag_list d;

        setup_set(&s, &d, files, 3);
        assert_int_equal(d.n_errors, 0);
        assert_int_equal(s.n_apps, 1);
        assert_true(s.apps[0].grants[0].db >= 0);
        assert_string_equal(s.dbs[s.apps[0].grants[0].db].id.environment, "prod");
        manifest_set_done(&s);
        diag_list_done(&d);
}

static void test_unresolved_with_hint(void **state) {
        const char *files[] = { DB("accounts-db", "dev"), APP("api", "dev", "acounts-db") };
        manifest_set s;
        diag_list d;

        setup_set(&s, &d, files, 2);
        assert_int_equal(d.n_errors, 1);
        assert_string_equal(d.items[0].path, "f1.yaml");
        assert_int_equal(d.items[0].line, 14);
        assert_int_equal(d.items[0].col, 15);
        assert_string_equal(d.items[0].message, "database 'acounts-db' not found in project o/ou/dev/p; did you mean 'accounts-db'?");
        manifest_set_done(&s);
        diag_list_done(&d);
}

static void test_unresolved_other_identity(void **state) {
        const char *files[] = { DB("db", "prod"), APP("api", "dev", "db") };
        manifest_set s;
        diag_list d;

        setup_set(&s, &d, files, 2);
        assert_int_equal(d.n_errors, 1);
        assert_string_equal(d.items[0].message,
                            "database 'db' not found in project o/ou/dev/p; a database of that name exists in "
                            "o/ou/prod/p (f0.yaml:4), but references resolve within the same organization, "
                            "organizational-unit, environment and project");
        manifest_set_done(&s);
        diag_list_done(&d);
}

static void test_duplicates_name_both(void **state) {
        const char *files[] = { DB("db", "dev"), DB("db", "dev") };
        manifest_set s;
        diag_list d;

        setup_set(&s, &d, files, 2);
        assert_int_equal(d.n_errors, 1);
        assert_string_equal(d.items[0].path, "f1.yaml");
        assert_string_equal(d.items[0].message, "Database 'db' is defined twice in this project: here and at f0.yaml:4:9");
        assert_int_equal(s.n_dbs, 1);
        manifest_set_done(&s);
        diag_list_done(&d);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_resolves_within_identity),
                cmocka_unit_test(test_unresolved_with_hint),
                cmocka_unit_test(test_unresolved_other_identity),
                cmocka_unit_test(test_duplicates_name_both),
        };
        return cmocka_run_group_tests_name("resolve", tests, NULL, NULL);
}
