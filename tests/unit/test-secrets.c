/* Unit tests for the secret store: the master key file, sealing and reuse, the AAD binding a
 * ciphertext to its grant, wrong and unusable master keys, pruning, lookup by name, transactions,
 * the schema migration from version 1, the sealed form pinned, the backup passphrases and the
 * data keys. */
#include "unit.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <regex.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "fileio.h"
#include "scram.h"
#include "secrets.h"
#include "store.h"

#define PROJECT "fincorp/retail-banking/development/login-svc"
#define APP1 PROJECT "/auth-api"
#define APP2 PROJECT "/billing"
#define DB1 PROJECT "/accounts-db"
#define DB2 PROJECT "/audit-db"
#define OTHER "fincorp/retail-banking/production/login-svc"

#define VERIFIER_RE "^SCRAM-SHA-256\\$4096:[A-Za-z0-9+/]{22}==\\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$"
#define PASSWORD_RE "^[A-Za-z0-9_-]{43}$"

typedef struct fixture {
        char dir[64];
        store *s;
        secrets *x;
} fixture;

static bool matches(const char *re_text, const char *s) {
        regex_t re;
        int r;

        assert_int_equal(regcomp(&re, re_text, REG_EXTENDED | REG_NOSUB), 0);
        r = regexec(&re, s, 0, NULL, 0);
        regfree(&re);
        return r == 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

/* A state directory with a store and a master key, like init leaves it. */
static void make_state(char dir[64], store **ret) {
        strcpy(dir, "/tmp/test-secrets.XXXXXX");
        assert_non_null(mkdtemp(dir));
        assert_int_equal(store_open(dir, true, false, ret, NULL), 0);
        assert_int_equal(secrets_create_master_key(dir), 1);
}

static int setup(void **state) {
        fixture *f = xcalloc(1, sizeof(fixture));
        _cleanup_free_ char *err = NULL;

        make_state(f->dir, &f->s);
        if (secrets_open(f->s, f->dir, &f->x, &err) < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture *f = *state;

        secrets_close(f->x);
        store_close(f->s);
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

static char *path_in(const fixture *f, const char *name) {
        return xasprintf("%s/%s", f->dir, name);
}

/* Raw SQL on the fixture's store from a second connection, as a tamperer would. */
static int sqlite3_exec_on(const fixture *f, const char *sql) {
        _cleanup_free_ char *path = path_in(f, STORE_FILE);
        sqlite3 *db = NULL;
        int rc;

        assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
        sqlite3_close(db);
        return rc == SQLITE_OK ? 0 : -EIO;
}

static void test_master_key_file(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *path = path_in(f, SECRETS_MASTER_KEY_FILE), *before = NULL, *after = NULL;
        DIR *d;
        struct dirent *de;
        size_t n1 = 0, n2 = 0;
        struct stat st;

        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISREG(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_size, SECRETS_MASTER_KEY_SIZE);
        /* Never replaced: a second init keeps the key every secret is sealed with. */
        assert_int_equal(read_full_file(path, 1024, &before, &n1), 0);
        assert_int_equal(secrets_create_master_key(f->dir), 0);
        assert_int_equal(read_full_file(path, 1024, &after, &n2), 0);
        assert_int_equal(n1, n2);
        assert_memory_equal(before, after, n1);
        /* No temporary file left behind. */
        d = opendir(f->dir);
        assert_non_null(d);
        while ((de = readdir(d)))
                assert_null(strstr(de->d_name, ".tmp"));
        closedir(d);
        assert_int_equal(secrets_create_master_key("/nonexistent/dir"), -ENOENT);
}

static void test_roundtrip(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *v = NULL, *looked_up = NULL;
        _cleanup_erase_ char *pw = NULL;

        assert_int_equal(secrets_lookup_verifier(f->s, APP1, DB1, &looked_up), -ENOENT);
        assert_int_equal(secrets_get_password(f->x, APP1, DB1, &pw), -ENOENT);
        assert_int_equal(secrets_ensure(f->x, APP1, DB1, &v), 1);
        assert_true(matches(VERIFIER_RE, v));
        assert_int_equal(secrets_get_password(f->x, APP1, DB1, &pw), 0);
        assert_true(matches(PASSWORD_RE, pw));
        /* The verifier beside the secret is the verifier of that very password. */
        assert_int_equal(scram_verifier_check(v, pw), 0);
        assert_int_equal(secrets_lookup_verifier(f->s, APP1, DB1, &looked_up), 0);
        assert_string_equal(looked_up, v);
}

static void test_reuse(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *v1 = NULL, *v2 = NULL, *v3 = NULL, *v4 = NULL, *err = NULL;
        _cleanup_erase_ char *pw1 = NULL, *pw2 = NULL, *pw3 = NULL, *pw4 = NULL;

        assert_int_equal(secrets_ensure(f->x, APP1, DB1, &v1), 1);
        assert_int_equal(secrets_get_password(f->x, APP1, DB1, &pw1), 0);
        assert_int_equal(secrets_ensure(f->x, APP1, DB1, &v2), 0);
        assert_string_equal(v1, v2);
        assert_int_equal(secrets_get_password(f->x, APP1, DB1, &pw2), 0);
        assert_string_equal(pw1, pw2);
        /* Another grant, another password. */
        assert_int_equal(secrets_ensure(f->x, APP1, DB2, &v3), 1);
        assert_string_not_equal(v1, v3);
        assert_int_equal(secrets_get_password(f->x, APP1, DB2, &pw3), 0);
        assert_string_not_equal(pw1, pw3);
        /* And the same after reopening everything (another process's view). */
        secrets_close(f->x);
        store_close(f->s);
        f->x = NULL;
        assert_int_equal(store_open(f->dir, false, false, &f->s, NULL), 0);
        assert_int_equal(secrets_open(f->s, f->dir, &f->x, &err), 0);
        assert_int_equal(secrets_ensure(f->x, APP1, DB1, &v4), 0);
        assert_string_equal(v1, v4);
        assert_int_equal(secrets_get_password(f->x, APP1, DB1, &pw4), 0);
        assert_string_equal(pw1, pw4);
}

/* Replace a grant's row with one carrying another ciphertext (or the same one, tampered). */
static void put_row(store *s, const char *app, const char *db, const unsigned char *ct, size_t size, const char *v) {
        stored_secret row = { (char *) app, (char *) db, (unsigned char *) ct, size, (char *) v, 0 };

        (void) store_delete_secret(s, app, db);
        assert_int_equal(store_insert_secret(s, &row), 0);
}

static void test_aad_binding(void **state) {
        fixture *f = *state;
        _cleanup_(stored_secret_done) stored_secret a = {}, b = {};
        _cleanup_free_ char *va = NULL, *vb = NULL;
        _cleanup_erase_ char *pw = NULL;

        assert_int_equal(secrets_ensure(f->x, APP1, DB1, &va), 1);
        assert_int_equal(secrets_ensure(f->x, APP2, DB1, &vb), 1);
        assert_int_equal(store_load_secret(f->s, APP1, DB1, &a), 0);
        assert_int_equal(store_load_secret(f->s, APP2, DB1, &b), 0);
        assert_int_equal(store_insert_secret(f->s, &a), -EEXIST);

        /* Swapped between grants: both sealed with the right key, neither opens under the other's
         * name. */
        put_row(f->s, APP1, DB1, b.ciphertext, b.ciphertext_size, a.verifier);
        put_row(f->s, APP2, DB1, a.ciphertext, a.ciphertext_size, b.verifier);
        assert_int_equal(secrets_get_password(f->x, APP1, DB1, &pw), -EKEYREJECTED);
        assert_int_equal(secrets_get_password(f->x, APP2, DB1, &pw), -EKEYREJECTED);
        assert_null(pw);
        /* Swapped back, both open again. */
        put_row(f->s, APP1, DB1, a.ciphertext, a.ciphertext_size, a.verifier);
        assert_int_equal(secrets_get_password(f->x, APP1, DB1, &pw), 0);
        erase_and_free(TAKE_PTR(pw));

        /* One flipped bit anywhere past the version byte: rejected. */
        for (size_t i = 1; i < a.ciphertext_size; i += 7) {
                a.ciphertext[i] ^= 0x01;
                put_row(f->s, APP1, DB1, a.ciphertext, a.ciphertext_size, a.verifier);
                assert_int_equal(secrets_get_password(f->x, APP1, DB1, &pw), -EKEYREJECTED);
                a.ciphertext[i] ^= 0x01;
        }
        /* Malformed: truncated, empty, unknown version. */
        put_row(f->s, APP1, DB1, a.ciphertext, 29, a.verifier);
        assert_int_equal(secrets_get_password(f->x, APP1, DB1, &pw), -EBADMSG);
        put_row(f->s, APP1, DB1, a.ciphertext, 0, a.verifier);
        assert_int_equal(secrets_get_password(f->x, APP1, DB1, &pw), -EBADMSG);
        a.ciphertext[0] = 2;
        put_row(f->s, APP1, DB1, a.ciphertext, a.ciphertext_size, a.verifier);
        assert_int_equal(secrets_get_password(f->x, APP1, DB1, &pw), -EBADMSG);
        assert_null(pw);
}

static void test_wrong_master_key(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *v = NULL, *v2 = NULL, *err = NULL, *other_id = NULL;
        _cleanup_erase_ char *pw = NULL;
        char dir2[64];
        store *s2 = NULL;
        secrets *x2 = NULL, *y = NULL;

        assert_int_equal(secrets_ensure(f->x, APP1, DB1, &v), 1);

        /* Another state directory's key on this store: refused up front, with the reason. */
        make_state(dir2, &s2);
        assert_int_equal(secrets_open(f->s, dir2, &y, &err), -EKEYREJECTED);
        assert_null(y);
        assert_non_null(strstr(err, "is not the key the state store's secrets are sealed with"));

        /* Even past that check (the key id made to match), GCM refuses to open the secret. */
        assert_int_equal(secrets_open(s2, dir2, &x2, NULL), 0);
        assert_int_equal(secrets_ensure(x2, APP1, DB1, &v2), 1);
        assert_int_equal(store_get_meta(s2, "master_key_id", &other_id), 0);
        assert_int_equal(store_set_meta(f->s, "master_key_id", other_id), 0);
        assert_int_equal(secrets_open(f->s, dir2, &y, NULL), 0);
        assert_int_equal(secrets_get_password(y, APP1, DB1, &pw), -EKEYREJECTED);
        assert_null(pw);
        secrets_close(y);
        secrets_close(x2);
        store_close(s2);
        nftw(dir2, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void test_master_key_errors(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *path = path_in(f, SECRETS_MASTER_KEY_FILE), *err = NULL;
        secrets *y = NULL;

        assert_int_equal(chmod(path, 0644), 0);
        assert_int_equal(secrets_open(f->s, f->dir, &y, &err), -EPERM);
        assert_non_null(strstr(err, "accessible to other users (mode 0644)"));
        free(TAKE_PTR(err));

        assert_int_equal(unlink(path), 0);
        assert_int_equal(write_file_atomic(path, "short", 5, 0600), 1);
        assert_int_equal(secrets_open(f->s, f->dir, &y, &err), -EBADMSG);
        assert_non_null(strstr(err, "has 5 bytes, not 32"));
        free(TAKE_PTR(err));

        assert_int_equal(unlink(path), 0);
        assert_int_equal(secrets_open(f->s, f->dir, &y, &err), -ENOENT);
        assert_non_null(strstr(err, "run 'infrastream-controller init'"));
        assert_null(y);
}

static void test_prune(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *v1 = NULL, *v2 = NULL, *v3 = NULL, *v = NULL;
        const secret_ref live[] = { { APP2, DB1 }, { APP1, DB1 } };
        size_t removed = 99;

        assert_int_equal(secrets_ensure(f->x, APP1, DB1, &v1), 1);
        assert_int_equal(secrets_ensure(f->x, APP1, DB2, &v2), 1);
        assert_int_equal(secrets_ensure(f->x, APP2, DB1, &v3), 1);
        assert_int_equal(secrets_prune(f->x, live, ELEMENTSOF(live), &removed), 0);
        assert_int_equal(removed, 1);
        assert_int_equal(secrets_lookup_verifier(f->s, APP1, DB2, &v), -ENOENT);
        assert_int_equal(secrets_lookup_verifier(f->s, APP1, DB1, &v), 0);
        assert_string_equal(v, v1);
        free(TAKE_PTR(v));
        /* Nothing more to remove. */
        assert_int_equal(secrets_prune(f->x, live, ELEMENTSOF(live), &removed), 0);
        assert_int_equal(removed, 0);
        /* A regranted pair gets a new password, not the old one back. */
        assert_int_equal(secrets_ensure(f->x, APP1, DB2, &v), 1);
        assert_string_not_equal(v, v2);
        /* No grants left: everything goes. */
        assert_int_equal(secrets_prune(f->x, NULL, 0, &removed), 0);
        assert_int_equal(removed, 3);
}

static void test_transaction(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *v = NULL, *v2 = NULL;

        /* render creates secrets inside the document's transaction: a failed render leaves none. */
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(secrets_ensure(f->x, APP1, DB1, &v), 1);
        store_rollback(f->s);
        assert_int_equal(secrets_lookup_verifier(f->s, APP1, DB1, &v2), -ENOENT);
        free(TAKE_PTR(v));
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(secrets_ensure(f->x, APP1, DB1, &v), 1);
        assert_int_equal(store_commit(f->s), 0);
        assert_int_equal(secrets_lookup_verifier(f->s, APP1, DB1, &v2), 0);
        assert_string_equal(v, v2);
}

static void test_find(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *v1 = NULL, *v2 = NULL, *err = NULL, *ak = NULL, *dk = NULL;

        assert_int_equal(secrets_ensure(f->x, APP1, DB1, &v1), 1);
        assert_int_equal(secrets_find(f->s, "auth-api", "accounts-db", NULL, &ak, &dk, NULL), 0);
        assert_string_equal(ak, APP1);
        assert_string_equal(dk, DB1);
        free(TAKE_PTR(ak));
        free(TAKE_PTR(dk));

        assert_int_equal(secrets_ensure(f->x, OTHER "/auth-api", OTHER "/accounts-db", &v2), 1);
        assert_int_equal(secrets_find(f->s, "auth-api", "accounts-db", NULL, &ak, &dk, &err), -ENOTUNIQ);
        assert_string_equal(err, "application 'auth-api' has a secret for database 'accounts-db' in 2 projects: "
                                 PROJECT ", " OTHER);
        free(TAKE_PTR(err));
        assert_int_equal(secrets_find(f->s, "auth-api", "accounts-db", OTHER, &ak, &dk, NULL), 0);
        assert_string_equal(ak, OTHER "/auth-api");
        assert_string_equal(dk, OTHER "/accounts-db");

        assert_int_equal(secrets_find(f->s, "auth-api", "audit-db", NULL, NULL, NULL, &err), -ENOENT);
        assert_string_equal(err, "application 'auth-api' has no secret for database 'audit-db'");
        free(TAKE_PTR(err));
        assert_int_equal(secrets_find(f->s, "auth", "accounts-db", NULL, NULL, NULL, NULL), -ENOENT);
        assert_int_equal(secrets_find(f->s, "auth-api", "accounts-db", "fincorp/x/y/z", NULL, NULL, &err), -ENOENT);
        assert_string_equal(err, "application 'auth-api' has no secret for database 'accounts-db' in project "
                                 "'fincorp/x/y/z'");
}

/* A store as the previous controller (schema version 1) left it. */
static void make_v1_store(const char *dir) {
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
                             "INSERT INTO meta (key, value) VALUES ('revision', '7');"
                             "INSERT INTO placements VALUES ('" DB1 "', 0, 'db1');"
                             "PRAGMA user_version = 1;",
                             NULL, NULL, NULL),
                SQLITE_OK);
        sqlite3_close(db);
}

static void test_migration_from_1(void **state) {
        _cleanup_free_ char *err = NULL, *v = NULL;
        stored_placement *p = NULL;
        char dir[64] = "/tmp/test-secrets.XXXXXX";
        store *s = NULL;
        secrets *x = NULL;
        uint64_t rev = 0;
        size_t n = 0;

        assert_non_null(mkdtemp(dir));
        make_v1_store(dir);
        /* Read-only (plan) cannot upgrade, and must not mistake the old store for an empty one. */
        assert_int_equal(store_open(dir, false, true, &s, &err), -ESTALE);
        assert_non_null(strstr(err, "has schema version 1, older than this controller's 6"));
        assert_null(s);
        /* A writable open (init, render) upgrades it and keeps what was there. */
        assert_int_equal(store_open(dir, false, false, &s, NULL), 0);
        assert_int_equal(store_load_placements(s, &p, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(p[0].database, DB1);
        stored_placements_free(p, n);
        assert_int_equal(store_next_revision(s, &rev), 0);
        assert_int_equal(rev, 8);
        assert_int_equal(secrets_create_master_key(dir), 1);
        assert_int_equal(secrets_open(s, dir, &x, NULL), 0);
        assert_int_equal(secrets_ensure(x, APP1, DB1, &v), 1);
        assert_int_equal(secrets_ensure_data_key(x, DB1, NULL), 1);
        secrets_close(x);
        store_close(s);
        /* Upgraded once: now readable read-only. */
        assert_int_equal(store_open(dir, false, true, &s, NULL), 0);
        store_close(s);
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Decode n hex digits' bytes into out. */
static size_t unhex(const char *hex, unsigned char *out) {
        size_t n = strlen(hex) / 2;

        for (size_t i = 0; i < n; i++)
                assert_int_equal(sscanf(hex + 2 * i, "%2hhx", &out[i]), 1);
        return n;
}

/* The sealed form is pinned: rows written by an earlier controller must open, and the AAD of a
 * passphrase must not be a grant's. The vectors come from Python's cryptography (AESGCM) with key
 * 01..20, nonce a0..ab: version 1 || nonce || ciphertext || tag, AAD "infrastream secret
 * v1\0APP\0DB" for a password and "infrastream backup passphrase v1\0DB" for a passphrase. */
#define PINNED_PASSWORD "Pinned-password-sealed-by-the-v1-format-000"
#define PINNED_PASSWORD_ROW                                                                                         \
        "01a0a1a2a3a4a5a6a7a8a9aaabe9b8530898d177741e7dd11c9ef744a924b2d1753d0c4de65e76a1953763ae041cb7f6ba82b3c4" \
        "191d46f083a7183b5f5d8f3684fac442ce2173d2"
#define PINNED_PASSPHRASE "Pinned-passphrase-sealed-by-the-v1-format-0"
#define PINNED_PASSPHRASE_ROW                                                                                       \
        "01a0a1a2a3a4a5a6a7a8a9aaabe9b8530898d177741e7dd11b99f741f732fac37c390405e00a39acd02626bd1847e0b4ae80a0dd" \
        "55595bf0e6e633a1955c6022feea9de63ecbc4c6"

static void test_pinned_format(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *path = path_in(f, SECRETS_MASTER_KEY_FILE), *err = NULL;
        _cleanup_erase_ char *pw = NULL, *pp = NULL;
        unsigned char key[32], row1[128], row2[128];
        size_t n1 = unhex(PINNED_PASSWORD_ROW, row1), n2 = unhex(PINNED_PASSPHRASE_ROW, row2);

        for (size_t i = 0; i < sizeof(key); i++)
                key[i] = (unsigned char) (i + 1);
        secrets_close(TAKE_PTR(f->x));
        assert_int_equal(unlink(path), 0);
        assert_int_equal(write_file_atomic(path, (const char *) key, sizeof(key), 0600), 1);
        assert_int_equal(secrets_open(f->s, f->dir, &f->x, &err), 0);

        put_row(f->s, APP1, DB1, row1, n1, "SCRAM");
        assert_int_equal(store_insert_backup_passphrase(f->s, &(stored_passphrase) { (char *) DB1, row2, n2, 0 }), 0);
        assert_int_equal(secrets_get_password(f->x, APP1, DB1, &pw), 0);
        assert_string_equal(pw, PINNED_PASSWORD);
        assert_int_equal(secrets_get_backup_passphrase(f->x, DB1, &pp), 0);
        assert_string_equal(pp, PINNED_PASSPHRASE);
        /* Each under the other's name: the labels keep a password from opening as a passphrase. */
        erase_and_free(TAKE_PTR(pp));
        assert_int_equal(store_insert_backup_passphrase(f->s, &(stored_passphrase) { (char *) DB2, row1, n1, 0 }), 0);
        assert_int_equal(secrets_get_backup_passphrase(f->x, DB2, &pp), -EKEYREJECTED);
        assert_null(pp);
}

static void test_backup_passphrase(void **state) {
        fixture *f = *state;
        _cleanup_erase_ char *p1 = NULL, *p2 = NULL, *p3 = NULL, *p4 = NULL, *p5 = NULL;
        _cleanup_free_ char *err = NULL, *id = NULL, *v = NULL;
        stored_passphrase *all = NULL;
        size_t n = 0;

        assert_int_equal(secrets_get_backup_passphrase(f->x, DB1, &p1), -ENOENT);
        assert_int_equal(secrets_ensure_backup_passphrase(f->x, DB1, &p1), 1);
        assert_true(matches(PASSWORD_RE, p1));
        /* The first one also records which master key sealed the store's secrets. */
        assert_int_equal(store_get_meta(f->s, "master_key_id", &id), 0);
        /* Never changed afterwards: the repository it encrypts would become unreadable. */
        assert_int_equal(secrets_ensure_backup_passphrase(f->x, DB1, &p2), 0);
        assert_string_equal(p1, p2);
        assert_int_equal(secrets_get_backup_passphrase(f->x, DB1, &p3), 0);
        assert_string_equal(p1, p3);
        /* Another database, another passphrase; a grant's password is not one. */
        assert_int_equal(secrets_ensure_backup_passphrase(f->x, DB2, &p4), 1);
        assert_string_not_equal(p1, p4);
        assert_int_equal(secrets_ensure(f->x, APP1, DB1, &v), 1);
        assert_int_equal(secrets_get_backup_passphrase(f->x, DB1, &p5), 0);
        assert_string_equal(p1, p5);
        erase_and_free(TAKE_PTR(p5));

        /* Not even pruning every grant touches them: the repository outlives the database. */
        assert_int_equal(secrets_prune(f->x, NULL, 0, NULL), 0);
        assert_int_equal(store_load_backup_passphrases(f->s, &all, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(all[0].database_key, DB1);
        assert_string_equal(all[1].database_key, DB2);
        assert_int_equal(secrets_unseal_backup_passphrase(f->x, &all[0], &p5), 0);
        assert_string_equal(p5, p1);
        erase_and_free(TAKE_PTR(p5));

        /* Swapped between databases: neither opens under the other's name. */
        assert_int_equal(sqlite3_exec_on(f, "UPDATE backup_passphrases SET database_key = 'x' WHERE database_key = '" DB1 "';"
                                            "UPDATE backup_passphrases SET database_key = '" DB1 "' WHERE database_key = '" DB2 "';"
                                            "UPDATE backup_passphrases SET database_key = '" DB2 "' WHERE database_key = 'x';"),
                         0);
        assert_int_equal(secrets_get_backup_passphrase(f->x, DB1, &p5), -EKEYREJECTED);
        assert_int_equal(secrets_get_backup_passphrase(f->x, DB2, &p5), -EKEYREJECTED);
        assert_null(p5);
        /* And ensure does not paper over it with a new one. */
        assert_int_equal(secrets_ensure_backup_passphrase(f->x, DB1, &p5), -EKEYREJECTED);
        assert_null(p5);
        /* Tampered: one flipped bit. */
        all[0].ciphertext[20] ^= 1;
        assert_int_equal(secrets_unseal_backup_passphrase(f->x, &all[0], &p5), -EKEYREJECTED);
        all[0].ciphertext_size = 20;
        assert_int_equal(secrets_unseal_backup_passphrase(f->x, &all[0], &p5), -EBADMSG);
        stored_passphrases_free(all, n);

        /* Reopened (another process's view): the same. */
        secrets_close(TAKE_PTR(f->x));
        assert_int_equal(secrets_open(f->s, f->dir, &f->x, &err), 0);
        assert_int_equal(secrets_get_backup_passphrase(f->x, DB2, &p5), -EKEYREJECTED);
}

static void test_backup_passphrase_transaction(void **state) {
        fixture *f = *state;
        _cleanup_erase_ char *p1 = NULL, *p2 = NULL, *p3 = NULL;

        /* Created inside render's or apply's transaction: a failed one leaves none behind. */
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(secrets_ensure_backup_passphrase(f->x, DB1, &p1), 1);
        store_rollback(f->s);
        assert_int_equal(secrets_get_backup_passphrase(f->x, DB1, &p2), -ENOENT);
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(secrets_ensure_backup_passphrase(f->x, DB1, &p2), 1);
        assert_int_equal(store_commit(f->s), 0);
        assert_string_not_equal(p1, p2);
        assert_int_equal(secrets_get_backup_passphrase(f->x, DB1, &p3), 0);
        assert_string_equal(p2, p3);
}

static void test_find_backup_passphrase(void **state) {
        fixture *f = *state;
        _cleanup_erase_ char *p1 = NULL, *p2 = NULL;
        _cleanup_free_ char *err = NULL, *dk = NULL;

        assert_int_equal(secrets_find_backup_passphrase(f->s, "accounts-db", NULL, &dk, &err), -ENOENT);
        assert_string_equal(err, "database 'accounts-db' has no backup passphrase");
        free(TAKE_PTR(err));
        assert_int_equal(secrets_ensure_backup_passphrase(f->x, DB1, &p1), 1);
        assert_int_equal(secrets_find_backup_passphrase(f->s, "accounts-db", NULL, &dk, NULL), 0);
        assert_string_equal(dk, DB1);
        free(TAKE_PTR(dk));
        assert_int_equal(secrets_ensure_backup_passphrase(f->x, OTHER "/accounts-db", &p2), 1);
        assert_int_equal(secrets_find_backup_passphrase(f->s, "accounts-db", NULL, &dk, &err), -ENOTUNIQ);
        assert_string_equal(err, "database 'accounts-db' has a backup passphrase in 2 projects: " PROJECT ", " OTHER);
        free(TAKE_PTR(err));
        assert_int_equal(secrets_find_backup_passphrase(f->s, "accounts-db", OTHER, &dk, NULL), 0);
        assert_string_equal(dk, OTHER "/accounts-db");
        free(TAKE_PTR(dk));
        assert_int_equal(secrets_find_backup_passphrase(f->s, "accounts", NULL, &dk, NULL), -ENOENT);
        assert_int_equal(secrets_find_backup_passphrase(f->s, "accounts-db", "fincorp/x/y/z", &dk, &err), -ENOENT);
        assert_string_equal(err, "database 'accounts-db' has no backup passphrase in project 'fincorp/x/y/z'");
}

static void test_data_key(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *err = NULL;
        _cleanup_erase_ char *pp = NULL;
        _cleanup_(stored_passphrase_done) stored_data_key row = {};
        uint8_t k1[SECRETS_DATA_KEY_SIZE], k2[SECRETS_DATA_KEY_SIZE], k3[SECRETS_DATA_KEY_SIZE],
                zero[SECRETS_DATA_KEY_SIZE] = {};

        assert_int_equal(secrets_get_data_key(f->x, DB1, k1), -ENOENT);
        assert_int_equal(secrets_ensure_data_key(f->x, DB1, k1), 1);
        assert_memory_not_equal(k1, zero, sizeof(k1));
        /* Created once, the same key afterwards, by either function. */
        assert_int_equal(secrets_ensure_data_key(f->x, DB1, k2), 0);
        assert_memory_equal(k1, k2, sizeof(k1));
        assert_int_equal(secrets_ensure_data_key(f->x, DB1, NULL), 0);
        memset(k2, 0, sizeof(k2));
        assert_int_equal(secrets_get_data_key(f->x, DB1, k2), 0);
        assert_memory_equal(k1, k2, sizeof(k1));
        /* Sealed, not stored as it is: the row is version || nonce || ciphertext || tag. */
        assert_int_equal(store_load_data_key(f->s, DB1, &row), 0);
        assert_int_equal(row.ciphertext_size, 1 + 12 + SECRETS_DATA_KEY_SIZE + 16);
        assert_null(memmem(row.ciphertext, row.ciphertext_size, k1, sizeof(k1)));
        assert_int_equal(store_insert_data_key(f->s, &row), -EEXIST);
        /* Another database, another key; the backup passphrase is another secret. */
        assert_int_equal(secrets_ensure_data_key(f->x, DB2, k3), 1);
        assert_memory_not_equal(k1, k3, sizeof(k1));
        assert_int_equal(secrets_ensure_backup_passphrase(f->x, DB1, &pp), 1);
        /* Not even pruning every grant touches them: the data outlives the database. */
        assert_int_equal(secrets_prune(f->x, NULL, 0, NULL), 0);
        assert_int_equal(secrets_get_data_key(f->x, DB1, k2), 0);
        assert_memory_equal(k1, k2, sizeof(k1));

        /* Reopened (another process's view): the same key. */
        secrets_close(TAKE_PTR(f->x));
        assert_int_equal(secrets_open(f->s, f->dir, &f->x, &err), 0);
        memset(k2, 0, sizeof(k2));
        assert_int_equal(secrets_get_data_key(f->x, DB1, k2), 0);
        assert_memory_equal(k1, k2, sizeof(k1));
        explicit_bzero(k1, sizeof(k1));
        explicit_bzero(k2, sizeof(k2));
        explicit_bzero(k3, sizeof(k3));
}

static void test_data_key_binding(void **state) {
        fixture *f = *state;
        _cleanup_(stored_passphrase_done) stored_data_key row = {};
        _cleanup_erase_ char *pp = NULL;
        uint8_t k[SECRETS_DATA_KEY_SIZE], before[SECRETS_DATA_KEY_SIZE];

        assert_int_equal(secrets_ensure_data_key(f->x, DB1, NULL), 1);
        assert_int_equal(store_load_data_key(f->s, DB1, &row), 0);

        /* Moved to another database's key: sealed with the right master key, but bound to DB1. */
        assert_int_equal(sqlite3_exec_on(f, "UPDATE data_keys SET database_key = '" DB2 "' WHERE database_key = '" DB1 "';"),
                         0);
        memset(before, 0x5a, sizeof(before));
        memcpy(k, before, sizeof(k));
        assert_int_equal(secrets_get_data_key(f->x, DB2, k), -EKEYREJECTED);
        assert_memory_equal(k, before, sizeof(k)); /* written only on success */
        assert_int_equal(secrets_get_data_key(f->x, DB1, k), -ENOENT);
        /* And ensure does not paper over it with a new one. */
        assert_int_equal(secrets_ensure_data_key(f->x, DB2, k), -EKEYREJECTED);
        assert_memory_equal(k, before, sizeof(k));

        /* Tampered: one flipped bit anywhere past the version byte. */
        for (size_t i = 1; i < row.ciphertext_size; i += 5) {
                _cleanup_free_ char *sql = NULL;
                char hex[2 * 64 + 1];

                row.ciphertext[i] ^= 0x01;
                for (size_t j = 0; j < row.ciphertext_size; j++)
                        snprintf(hex + 2 * j, 3, "%02x", row.ciphertext[j]);
                sql = xasprintf("DELETE FROM data_keys; INSERT INTO data_keys VALUES ('" DB1 "', x'%s', 0);", hex);
                assert_int_equal(sqlite3_exec_on(f, sql), 0);
                assert_int_equal(secrets_get_data_key(f->x, DB1, k), -EKEYREJECTED);
                row.ciphertext[i] ^= 0x01;
        }
        /* Malformed: truncated, or a backup passphrase's row where a key should be. */
        assert_int_equal(sqlite3_exec_on(f, "DELETE FROM data_keys;"), 0);
        assert_int_equal(store_insert_data_key(f->s, &(stored_data_key) { (char *) DB1, row.ciphertext, 40, 0 }), 0);
        assert_int_equal(secrets_get_data_key(f->x, DB1, k), -EBADMSG);
        assert_int_equal(secrets_ensure_backup_passphrase(f->x, DB2, &pp), 1);
        assert_int_equal(sqlite3_exec_on(f, "DELETE FROM data_keys;"
                                            "INSERT INTO data_keys SELECT * FROM backup_passphrases;"),
                         0);
        assert_int_equal(secrets_get_data_key(f->x, DB2, k), -EBADMSG);
        /* The original row, back in place, opens again. */
        assert_int_equal(sqlite3_exec_on(f, "DELETE FROM data_keys;"), 0);
        assert_int_equal(store_insert_data_key(f->s, &row), 0);
        assert_int_equal(secrets_get_data_key(f->x, DB1, k), 0);
        explicit_bzero(k, sizeof(k));
}

static void test_data_key_transaction(void **state) {
        fixture *f = *state;
        uint8_t k1[SECRETS_DATA_KEY_SIZE], k2[SECRETS_DATA_KEY_SIZE];

        /* Created inside apply's or render's transaction: a failed one leaves none behind. */
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(secrets_ensure_data_key(f->x, DB1, k1), 1);
        store_rollback(f->s);
        assert_int_equal(secrets_get_data_key(f->x, DB1, k2), -ENOENT);
        assert_int_equal(store_begin(f->s), 0);
        assert_int_equal(secrets_ensure_data_key(f->x, DB1, k2), 1);
        assert_int_equal(store_commit(f->s), 0);
        assert_memory_not_equal(k1, k2, sizeof(k1));
        assert_int_equal(secrets_get_data_key(f->x, DB1, k1), 0);
        assert_memory_equal(k1, k2, sizeof(k1));
        explicit_bzero(k1, sizeof(k1));
        explicit_bzero(k2, sizeof(k2));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_master_key_file), T(test_roundtrip), T(test_reuse),    T(test_aad_binding),
                T(test_wrong_master_key), T(test_master_key_errors), T(test_prune), T(test_transaction),
                T(test_find), cmocka_unit_test(test_migration_from_1), T(test_pinned_format),
                T(test_backup_passphrase), T(test_backup_passphrase_transaction), T(test_find_backup_passphrase),
                T(test_data_key), T(test_data_key_binding), T(test_data_key_transaction),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
