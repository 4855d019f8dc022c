/* Unit tests for the state store's schema v3: enrolled hosts (save keeps reports, reports need an
 * enrolled host), tokens (binding key round trip, one use only, unknown ids), issued certificates
 * (replace by key), transactions, and the upgrade of a version 2 store that keeps its records;
 * the backup passphrases (v4), the data keys and the placement check of /v1/data-keys (v5), the
 * host a token may re-enroll (v6); a plain insert of a host never replaces an enrolled one. */
#include "unit.h"

#include <ftw.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "store.h"

typedef struct fixture {
        char dir[64];
        store *s;
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup(void **state) {
        fixture *f = xcalloc(1, sizeof(fixture));

        strcpy(f->dir, "/tmp/test-store.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_int_equal(store_open(f->dir, true, false, &f->s, NULL), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture *f = *state;

        store_close(f->s);
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

static char *addrs_db1[] = { "10.99.0.2", "fd00::2" };

static stored_host host_db1(void) {
        return (stored_host) {
                .name = "db1",
                .role = "database",
                .addresses = addrs_db1,
                .n_addresses = 2,
                .cpus = 8,
                .memory_bytes = 16ULL << 30,
                .labels = "environment=development,zone=a",
                .endpoint = "10.99.0.2:7444",
                .cert_fingerprint = "ab12",
                .enrolled_at = 1000,
        };
}

static void test_hosts(void **state) {
        fixture *f = *state;
        stored_host h = host_db1(), app = { .name = "app1", .role = "application", .addresses = addrs_db1,
                                             .n_addresses = 1, .cpus = 2, .memory_bytes = 1, .labels = "",
                                             .endpoint = "10.99.0.3:7444", .cert_fingerprint = "cd", .enrolled_at = 5 };
        stored_host got = {}, *all = NULL;
        size_t n = 0;

        assert_int_equal(store_load_host(f->s, "db1", &got), -ENOENT);
        assert_int_equal(store_load_hosts(f->s, &all, &n), 0);
        assert_int_equal(n, 0);
        stored_hosts_free(all, n);
        /* A report from a host that never enrolled is refused, not recorded. */
        assert_int_equal(store_record_report(f->s, "db1", 3, "c0ffee", false, "{}", 2000), -ENOENT);

        assert_int_equal(store_save_host(f->s, &h, false), 0);
        assert_int_equal(store_save_host(f->s, &app, false), 0);
        assert_int_equal(store_load_host(f->s, "db1", &got), 0);
        assert_string_equal(got.name, "db1");
        assert_string_equal(got.role, "database");
        assert_int_equal(got.n_addresses, 2);
        assert_string_equal(got.addresses[0], "10.99.0.2");
        assert_string_equal(got.addresses[1], "fd00::2");
        assert_int_equal(got.cpus, 8);
        assert_true(got.memory_bytes == 16ULL << 30);
        assert_string_equal(got.labels, "environment=development,zone=a");
        assert_string_equal(got.endpoint, "10.99.0.2:7444");
        assert_string_equal(got.cert_fingerprint, "ab12");
        assert_int_equal(got.enrolled_at, 1000);
        assert_int_equal(got.last_seen, 0);
        assert_int_equal(got.applied_revision, 0);
        assert_string_equal(got.applied_commit, "");
        assert_false(got.failed);
        assert_null(got.status);
        stored_host_done(&got);

        /* A report updates what the host last said. */
        assert_int_equal(store_record_report(f->s, "db1", 3, "c0ffee", true, "{\"host\":\"db1\"}", 2000), 0);
        /* Enrolling again (--force) replaces the facts and keeps the report. */
        h.cpus = 16;
        h.cert_fingerprint = "ef34";
        h.enrolled_at = 3000;
        h.n_addresses = 1;
        /* ... but only when asked to replace: a plain insert of an enrolled name changes nothing. */
        assert_int_equal(store_save_host(f->s, &h, false), -EEXIST);
        assert_int_equal(store_load_host(f->s, "db1", &got), 0);
        assert_string_equal(got.cert_fingerprint, "ab12");
        stored_host_done(&got);
        assert_int_equal(store_save_host(f->s, &h, true), 0);
        assert_int_equal(store_load_host(f->s, "db1", &got), 0);
        assert_int_equal(got.cpus, 16);
        assert_int_equal(got.n_addresses, 1);
        assert_string_equal(got.cert_fingerprint, "ef34");
        assert_int_equal(got.enrolled_at, 3000);
        assert_int_equal(got.last_seen, 2000);
        assert_int_equal(got.applied_revision, 3);
        assert_string_equal(got.applied_commit, "c0ffee");
        assert_true(got.failed);
        assert_string_equal(got.status, "{\"host\":\"db1\"}");
        stored_host_done(&got);

        /* Sorted by name. */
        assert_int_equal(store_load_hosts(f->s, &all, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(all[0].name, "app1");
        assert_string_equal(all[0].labels, "");
        assert_string_equal(all[1].name, "db1");
        stored_hosts_free(all, n);
}

static void test_tokens(void **state) {
        fixture *f = *state;
        stored_token t = { .id = "0123abcd", .verifier = "v", .role = "application", .labels = "environment=x",
                           .created = 10, .expires = 3610 },
                     got = {};

        for (size_t i = 0; i < sizeof(t.binding_key); i++)
                t.binding_key[i] = (unsigned char) (i * 7);
        assert_int_equal(store_load_token(f->s, "0123abcd", &got), -ENOENT);
        assert_int_equal(store_insert_token(f->s, &t), 0);
        /* Ids are unique: the creator draws again. */
        assert_int_equal(store_insert_token(f->s, &t), -EEXIST);
        assert_int_equal(store_load_token(f->s, "0123abcd", &got), 0);
        assert_string_equal(got.id, "0123abcd");
        assert_string_equal(got.verifier, "v");
        assert_memory_equal(got.binding_key, t.binding_key, sizeof(t.binding_key));
        assert_string_equal(got.role, "application");
        assert_string_equal(got.labels, "environment=x");
        assert_int_equal(got.created, 10);
        assert_int_equal(got.expires, 3610);
        assert_int_equal(got.used_at, 0);
        assert_null(got.used_by);
        assert_null(got.replaces);
        stored_token_done(&got);

        /* Used once, never twice; an unknown id is not "used". */
        assert_int_equal(store_use_token(f->s, "0123abcd", "db1", 500), 0);
        assert_int_equal(store_use_token(f->s, "0123abcd", "db2", 600), -EALREADY);
        assert_int_equal(store_use_token(f->s, "ffffffff", "db2", 600), -ENOENT);
        assert_int_equal(store_load_token(f->s, "0123abcd", &got), 0);
        assert_int_equal(got.used_at, 500);
        assert_string_equal(got.used_by, "db1");
        stored_token_done(&got);

        /* Inside a transaction that rolls back, the token stays unused. */
        t.id = "0123abce";
        assert_int_equal(store_insert_token(f->s, &t), 0);
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(store_use_token(f->s, "0123abce", "db3", 700), 0);
        store_rollback(f->s);
        assert_int_equal(store_load_token(f->s, "0123abce", &got), 0);
        assert_int_equal(got.used_at, 0);
        stored_token_done(&got);

        /* v6: the host a token may re-enroll round-trips. */
        t.id = "0123abcf";
        t.replaces = "db1";
        assert_int_equal(store_insert_token(f->s, &t), 0);
        assert_int_equal(store_load_token(f->s, "0123abcf", &got), 0);
        assert_string_equal(got.replaces, "db1");
        stored_token_done(&got);
}

static void test_certs(void **state) {
        fixture *f = *state;
        stored_cert a = { "db1", "accounts-db", "PEM1", 100 }, b = { "db1", "audit-db", "PEM2", 200 },
                    c = { "db0", "x", "PEM3", 300 }, *all = NULL;
        size_t n = 0;

        assert_int_equal(store_load_certs(f->s, &all, &n), 0);
        assert_int_equal(n, 0);
        stored_certs_free(all, n);
        assert_int_equal(store_save_cert(f->s, &b), 0);
        assert_int_equal(store_save_cert(f->s, &a), 0);
        assert_int_equal(store_save_cert(f->s, &c), 0);
        a.certificate = "PEM1-renewed";
        a.not_after = 150;
        assert_int_equal(store_save_cert(f->s, &a), 0);
        assert_int_equal(store_load_certs(f->s, &all, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(all[0].host, "db0");
        assert_string_equal(all[1].database, "accounts-db");
        assert_string_equal(all[1].certificate, "PEM1-renewed");
        assert_int_equal(all[1].not_after, 150);
        assert_string_equal(all[2].database, "audit-db");
        stored_certs_free(all, n);
}

/* A store as the previous controller (schema version 2) left it. */
static void make_v2_store(const char *dir) {
        _cleanup_free_ char *path = xasprintf("%s/%s", dir, STORE_FILE);
        sqlite3 *db = NULL;

        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(
                sqlite3_exec(db,
                             "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                             "CREATE TABLE placements (database TEXT NOT NULL, member INTEGER NOT NULL, "
                             "  host TEXT NOT NULL, PRIMARY KEY (database, member));"
                             "CREATE TABLE documents (host TEXT PRIMARY KEY, revision INTEGER NOT NULL, "
                             "  content_hash TEXT NOT NULL, body TEXT NOT NULL);"
                             "CREATE TABLE secrets (application_key TEXT NOT NULL, database_key TEXT NOT NULL, "
                             "  ciphertext BLOB NOT NULL, verifier TEXT NOT NULL, created INTEGER NOT NULL, "
                             "  PRIMARY KEY (application_key, database_key));"
                             "INSERT INTO meta (key, value) VALUES ('revision', '12');"
                             "INSERT INTO placements VALUES ('o/u/e/p/db', 0, 'db1');"
                             "INSERT INTO documents VALUES ('db1', 12, 'hash', '{}');"
                             "INSERT INTO secrets VALUES ('o/u/e/p/app', 'o/u/e/p/db', x'00', 'SCRAM', 1);"
                             "PRAGMA user_version = 2;",
                             NULL, NULL, NULL),
                SQLITE_OK);
        sqlite3_close(db);
}

static void test_migration_from_2(void **state) {
        _cleanup_free_ char *err = NULL;
        char dir[64] = "/tmp/test-store.XXXXXX";
        stored_placement *p = NULL;
        stored_document *d = NULL;
        stored_secret *x = NULL;
        stored_host *h = NULL;
        store *s = NULL;
        stored_host one = host_db1();
        uint64_t rev = 0;
        size_t n = 0;

        assert_non_null(mkdtemp(dir));
        make_v2_store(dir);
        /* plan (read-only) cannot upgrade and says so. */
        assert_int_equal(store_open(dir, false, true, &s, &err), -ESTALE);
        assert_non_null(strstr(err, "has schema version 2, older than this controller's 6"));
        assert_null(s);
        /* A writable open upgrades it: everything recorded before is still there. */
        assert_int_equal(store_open(dir, false, false, &s, NULL), 0);
        assert_int_equal(store_load_placements(s, &p, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(p[0].host, "db1");
        stored_placements_free(p, n);
        assert_int_equal(store_load_documents(s, &d, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(d[0].revision, 12);
        stored_documents_free(d, n);
        assert_int_equal(store_load_secrets(s, &x, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(x[0].verifier, "SCRAM");
        stored_secrets_free(x, n);
        assert_int_equal(store_next_revision(s, &rev), 0);
        assert_int_equal(rev, 13);
        /* ... and the new tables work. */
        assert_int_equal(store_load_hosts(s, &h, &n), 0);
        assert_int_equal(n, 0);
        stored_hosts_free(h, n);
        assert_int_equal(store_save_host(s, &one, false), 0);
        store_close(s);
        /* Upgraded once: read-only opens work now, and see the host. */
        assert_int_equal(store_open(dir, false, true, &s, NULL), 0);
        assert_int_equal(store_load_hosts(s, &h, &n), 0);
        assert_int_equal(n, 1);
        stored_hosts_free(h, n);
        store_close(s);
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_backup_passphrases(void **state) {
        store *s = ((fixture *) *state)->s;
        stored_passphrase *all = NULL, one = {};
        unsigned char ct1[] = { 1, 2, 3, 0, 5 }, ct2[] = { 9 };
        size_t n = 99;

        assert_int_equal(store_load_backup_passphrases(s, &all, &n), 0);
        assert_int_equal(n, 0);
        free(all);
        assert_int_equal(store_load_backup_passphrase(s, "o/u/e/p/db", &one), -ENOENT);
        assert_int_equal(store_insert_backup_passphrase(s, &(stored_passphrase) { "o/u/e/p/db", ct1, sizeof(ct1), 100 }), 0);
        assert_int_equal(store_insert_backup_passphrase(s, &(stored_passphrase) { "o/u/e/a/db", ct2, sizeof(ct2), 50 }), 0);
        /* One per database, never replaced. */
        assert_int_equal(store_insert_backup_passphrase(s, &(stored_passphrase) { "o/u/e/p/db", ct2, sizeof(ct2), 1 }),
                         -EEXIST);
        assert_int_equal(store_load_backup_passphrase(s, "o/u/e/p/db", &one), 0);
        assert_string_equal(one.database_key, "o/u/e/p/db");
        assert_int_equal(one.ciphertext_size, sizeof(ct1));
        assert_memory_equal(one.ciphertext, ct1, sizeof(ct1)); /* a blob: the NUL inside is kept */
        assert_int_equal(one.created, 100);
        stored_passphrase_done(&one);
        /* Sorted by key, in strcmp() order (compile looks them up with bsearch()). */
        assert_int_equal(store_load_backup_passphrases(s, &all, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(all[0].database_key, "o/u/e/a/db");
        assert_int_equal(all[0].ciphertext_size, 1);
        assert_int_equal(all[0].ciphertext[0], 9);
        assert_string_equal(all[1].database_key, "o/u/e/p/db");
        assert_memory_equal(all[1].ciphertext, ct1, sizeof(ct1));
        stored_passphrases_free(all, n);
}

static void test_data_keys(void **state) {
        store *s = ((fixture *) *state)->s;
        const char *const hosts[] = { "db1", "db2" };
        unsigned char ct1[] = { 1, 0, 3 }, ct2[] = { 9 };
        stored_data_key one = {};

        assert_int_equal(store_load_data_key(s, "o/u/e/p/db", &one), -ENOENT);
        assert_int_equal(store_insert_data_key(s, &(stored_data_key) { "o/u/e/p/db", ct1, sizeof(ct1), 100 }), 0);
        /* One per database, never replaced; apart from the backup passphrases. */
        assert_int_equal(store_insert_data_key(s, &(stored_data_key) { "o/u/e/p/db", ct2, sizeof(ct2), 1 }), -EEXIST);
        assert_int_equal(store_load_backup_passphrase(s, "o/u/e/p/db", &one), -ENOENT);
        assert_int_equal(store_load_data_key(s, "o/u/e/p/db", &one), 0);
        assert_string_equal(one.database_key, "o/u/e/p/db");
        assert_int_equal(one.ciphertext_size, sizeof(ct1));
        assert_memory_equal(one.ciphertext, ct1, sizeof(ct1));
        assert_int_equal(one.created, 100);
        stored_passphrase_done(&one);

        /* Placed on a host: any member, primary or standby; nothing else. */
        assert_int_equal(store_database_placed_on(s, "o/u/e/p/db", "db1"), 0);
        assert_int_equal(store_save_placement(s, "o/u/e/p/db", hosts, 2), 0);
        assert_int_equal(store_database_placed_on(s, "o/u/e/p/db", "db1"), 1);
        assert_int_equal(store_database_placed_on(s, "o/u/e/p/db", "db2"), 1);
        assert_int_equal(store_database_placed_on(s, "o/u/e/p/db", "db3"), 0);
        assert_int_equal(store_database_placed_on(s, "o/u/e/p/other", "db1"), 0);
        assert_int_equal(store_save_placement(s, "o/u/e/p/db", hosts + 1, 1), 0);
        assert_int_equal(store_database_placed_on(s, "o/u/e/p/db", "db1"), 0);
}

/* A store as the issue-5 controller (schema version 3) left it. */
static void test_migration_from_3(void **state) {
        _cleanup_free_ char *err = NULL, *path = NULL;
        char dir[64] = "/tmp/test-store.XXXXXX";
        stored_passphrase *all = NULL;
        stored_document *d = NULL;
        stored_token t = {};
        unsigned char ct[] = { 1 };
        sqlite3 *db = NULL;
        store *s = NULL;
        size_t n = 0;

        assert_non_null(mkdtemp(dir));
        make_v2_store(dir);
        /* Version 3 is version 2 with the v3 tables: upgrade to it as the issue-5 controller did. */
        path = xasprintf("%s/%s", dir, STORE_FILE);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "CREATE TABLE hosts (name TEXT PRIMARY KEY, role TEXT NOT NULL, addresses TEXT NOT NULL, "
                                      "  cpus INTEGER NOT NULL, memory_bytes INTEGER NOT NULL, labels TEXT NOT NULL, "
                                      "  endpoint TEXT NOT NULL, cert_fingerprint TEXT NOT NULL, enrolled_at INTEGER NOT NULL, "
                                      "  last_seen INTEGER NOT NULL DEFAULT 0, applied_revision INTEGER NOT NULL DEFAULT 0, "
                                      "  applied_commit TEXT NOT NULL DEFAULT '', failed INTEGER NOT NULL DEFAULT 0, status TEXT);"
                                      "CREATE TABLE tokens (id TEXT PRIMARY KEY, verifier TEXT NOT NULL, binding_key BLOB NOT NULL, "
                                      "  role TEXT NOT NULL, labels TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL, "
                                      "  used_at INTEGER NOT NULL DEFAULT 0, used_by TEXT);"
                                      "CREATE TABLE certs (host TEXT NOT NULL, database TEXT NOT NULL, certificate TEXT NOT NULL, "
                                      "  not_after INTEGER NOT NULL, PRIMARY KEY (host, database));"
                                      "INSERT INTO tokens (id, verifier, binding_key, role, labels, created, expires) "
                                      "  VALUES ('0123abcd', 'v', zeroblob(32), 'database', '', 10, 3610);"
                                      "PRAGMA user_version = 3;",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(store_open(dir, false, true, &s, &err), -ESTALE);
        assert_non_null(strstr(err, "has schema version 3, older than this controller's 6"));
        assert_int_equal(store_open(dir, false, false, &s, NULL), 0);
        assert_int_equal(store_load_documents(s, &d, &n), 0);
        assert_int_equal(n, 1);
        stored_documents_free(d, n);
        assert_int_equal(store_load_backup_passphrases(s, &all, &n), 0);
        assert_int_equal(n, 0);
        free(all);
        assert_int_equal(store_insert_backup_passphrase(s, &(stored_passphrase) { "o/u/e/p/db", ct, 1, 1 }), 0);
        /* Up to version 6 in the same step: the data keys' table is there too, and a token made
         * before --replace existed enrolls only a name not enrolled yet. */
        assert_int_equal(store_insert_data_key(s, &(stored_data_key) { "o/u/e/p/db", ct, 1, 1 }), 0);
        assert_int_equal(store_database_placed_on(s, "o/u/e/p/db", "db1"), 1);
        assert_int_equal(store_load_token(s, "0123abcd", &t), 0);
        assert_string_equal(t.role, "database");
        assert_null(t.replaces);
        stored_token_done(&t);
        store_close(s);
        assert_int_equal(store_open(dir, false, true, &s, NULL), 0);
        assert_int_equal(store_load_backup_passphrases(s, &all, &n), 0);
        assert_int_equal(n, 1);
        stored_passphrases_free(all, n);
        store_close(s);
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A newer controller's store is refused, not downgraded. */
static void test_newer_schema(void **state) {
        _cleanup_free_ char *err = NULL, *path = NULL;
        char dir[64] = "/tmp/test-store.XXXXXX";
        sqlite3 *db = NULL;
        store *s = NULL;

        assert_non_null(mkdtemp(dir));
        path = xasprintf("%s/%s", dir, STORE_FILE);
        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 7;", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(store_open(dir, false, false, &s, &err), -EPROTONOSUPPORT);
        assert_non_null(strstr(err, "has schema version 7, newer than this controller's 6"));
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_hosts),
                T(test_tokens),
                T(test_certs),
                T(test_backup_passphrases),
                T(test_data_keys),
                cmocka_unit_test(test_migration_from_2),
                cmocka_unit_test(test_migration_from_3),
                cmocka_unit_test(test_newer_schema),
        };

        return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
