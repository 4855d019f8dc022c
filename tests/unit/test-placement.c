/* Unit tests for placement: environment match, best fit, determinism, stickiness, pending. */
#include "placement.h"
#include "resolve.h"
#include "unit.h"

#define DB(name, env, cpus, size)                                                                 \
        "apiVersion: lowops.manifests.v1\nkind: Database\nmetadata:\n  name: " name "\n"          \
        "  project: p\n  environment: " env "\n  organizational-unit: ou\n  organization: o\n"    \
        "spec:\n  cpuCount: " cpus "\n  clusterSize: " size "\n---\n"

static const char HOSTS[] =
        "hosts:\n"
        "  - {name: big, role: database, addresses: [10.0.0.1], cpus: 32, labels: {environment: dev}}\n"
        "  - {name: small, role: database, addresses: [10.0.0.2], cpus: 4, labels: {environment: dev}}\n"
        "  - {name: mid, role: database, addresses: [10.0.0.3], cpus: 8, labels: {environment: dev}}\n"
        "  - {name: prod1, role: database, addresses: [10.0.1.1], cpus: 64, labels: {environment: prod}}\n"
        "  - {name: app1, role: application, addresses: [10.0.2.1], cpus: 64, labels: {environment: dev}}\n";

typedef struct world {
        manifest_set s;
        inventory inv;
        diag_list d;
        arena a;
        placement pl[8];
} world;

static void make_world(world *w, const char *dbs, const stored_placement *prev, size_t n_prev) {
        manifest_set_init(&w->s);
        inventory_init(&w->inv);
        diag_list_init(&w->d);
        arena_init(&w->a);
        manifest_load_buffer(&w->s, "dbs.yaml", dbs, strlen(dbs), &w->d);
        resolve_manifests(&w->s, &w->d);
        assert_int_equal(inventory_load_buffer(&w->inv, "hosts.yaml", HOSTS, strlen(HOSTS), &w->d), 0);
        assert_int_equal(w->d.n_errors, 0);
        place_databases(&w->s, &w->inv, prev, n_prev, &w->a, w->pl);
}

static void free_world(world *w) {
        arena_done(&w->a);
        inventory_done(&w->inv);
        manifest_set_done(&w->s);
        diag_list_done(&w->d);
}

static const char *member(world *w, size_t db, size_t m) {
        return w->inv.hosts[w->pl[db].members[m]].name;
}

static void test_best_fit(void **state) {
        world w;

        /* Sorted by name: a (4 CPUs) → small, b (6) → mid, c (16) → big. */
        make_world(&w, DB("a", "dev", "4", "1") DB("b", "dev", "6", "1") DB("c", "dev", "16", "1"), NULL, 0);
        assert_null(w.pl[0].pending);
        assert_string_equal(member(&w, 0, 0), "small");
        assert_string_equal(member(&w, 1, 0), "mid");
        assert_string_equal(member(&w, 2, 0), "big");
        assert_true(w.pl[0].changed);
        free_world(&w);
}

static void test_one_database_per_host_and_pending(void **state) {
        world w;

        make_world(&w, DB("a", "dev", "30", "1") DB("b", "dev", "30", "1") DB("c", "qa", "1", "1"), NULL, 0);
        assert_string_equal(member(&w, 0, 0), "big");
        assert_int_equal(w.pl[1].n_members, 0);
        assert_string_equal(w.pl[1].pending, "needs 1 database host in environment 'dev' with at least 30 CPUs; 0 free");
        assert_string_equal(w.pl[2].pending, "needs 1 database host in environment 'qa' with at least 1 CPUs; 0 free");
        free_world(&w);
}

static void test_cluster_members_distinct(void **state) {
        world w;

        make_world(&w, DB("a", "dev", "2", "3"), NULL, 0);
        assert_null(w.pl[0].pending);
        assert_int_equal(w.pl[0].n_members, 3);
        assert_string_equal(member(&w, 0, 0), "small");
        assert_string_equal(member(&w, 0, 1), "mid");
        assert_string_equal(member(&w, 0, 2), "big");
        free_world(&w);
}

static void test_sticky(void **state) {
        stored_placement prev[] = { { "o/ou/dev/p/a", 0, "big" } };
        world w;

        /* Recorded on 'big': stays there although 'small' would fit better now. */
        make_world(&w, DB("a", "dev", "2", "1") DB("b", "dev", "2", "1"), prev, 1);
        assert_string_equal(member(&w, 0, 0), "big");
        assert_false(w.pl[0].changed);
        assert_string_equal(member(&w, 1, 0), "small");
        free_world(&w);
}

static void test_host_gone_is_pending_not_moved(void **state) {
        stored_placement prev[] = { { "o/ou/dev/p/a", 0, "vanished" } };
        world w;

        make_world(&w, DB("a", "dev", "2", "1"), prev, 1);
        assert_int_equal(w.pl[0].n_members, 0);
        assert_string_equal(w.pl[0].pending, "member 0 was placed on host 'vanished', which is no longer in the "
                                             "inventory; its data is there: bring the host back (it is not moved "
                                             "automatically)");
        free_world(&w);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_best_fit),
                cmocka_unit_test(test_one_database_per_host_and_pending),
                cmocka_unit_test(test_cluster_members_distinct),
                cmocka_unit_test(test_sticky),
                cmocka_unit_test(test_host_gone_is_pending_not_moved),
        };
        return cmocka_run_group_tests_name("placement", tests, NULL, NULL);
}
