/* SQLite-backed state store: schema versioning and migrations, transactions, prepared statements. */
#include <sqlite3.h>
#include <sys/stat.h>

#include "macro.h"
#include "store.h"

#define SCHEMA_VERSION 6

struct store {
        sqlite3 *db;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize)
#define _cleanup_stmt_ _cleanup_(sqlite3_finalizep)

/* MIGRATIONS[v] takes a store from schema version v to v + 1; a new store runs them all. Each
 * step only adds, so a store written by an older controller keeps everything it had. */
static const char *const MIGRATIONS[SCHEMA_VERSION] = {
        /* 0 → 1: placements, documents and the revision counter. */
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS placements ("
        "  database TEXT NOT NULL, member INTEGER NOT NULL, host TEXT NOT NULL,"
        "  PRIMARY KEY (database, member));"
        "CREATE TABLE IF NOT EXISTS documents ("
        "  host TEXT PRIMARY KEY, revision INTEGER NOT NULL, content_hash TEXT NOT NULL, body TEXT NOT NULL);"
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', '0');",
        /* 1 → 2: one encrypted password and its SCRAM verifier per (application, database) grant. */
        "CREATE TABLE IF NOT EXISTS secrets ("
        "  application_key TEXT NOT NULL, database_key TEXT NOT NULL, ciphertext BLOB NOT NULL,"
        "  verifier TEXT NOT NULL, created INTEGER NOT NULL,"
        "  PRIMARY KEY (application_key, database_key));",
        /* 2 → 3: enrolled hosts (facts from enrollment, the last report), one-time enrollment tokens
         * (the secret's verifier, never the secret) and the server certificates issued for databases. */
        "CREATE TABLE IF NOT EXISTS hosts ("
        "  name TEXT PRIMARY KEY, role TEXT NOT NULL, addresses TEXT NOT NULL, cpus INTEGER NOT NULL,"
        "  memory_bytes INTEGER NOT NULL, labels TEXT NOT NULL, endpoint TEXT NOT NULL,"
        "  cert_fingerprint TEXT NOT NULL, enrolled_at INTEGER NOT NULL, last_seen INTEGER NOT NULL DEFAULT 0,"
        "  applied_revision INTEGER NOT NULL DEFAULT 0, applied_commit TEXT NOT NULL DEFAULT '',"
        "  failed INTEGER NOT NULL DEFAULT 0, status TEXT);"
        "CREATE TABLE IF NOT EXISTS tokens ("
        "  id TEXT PRIMARY KEY, verifier TEXT NOT NULL, binding_key BLOB NOT NULL, role TEXT NOT NULL,"
        "  labels TEXT NOT NULL, created INTEGER NOT NULL, expires INTEGER NOT NULL,"
        "  used_at INTEGER NOT NULL DEFAULT 0, used_by TEXT);"
        "CREATE TABLE IF NOT EXISTS certs ("
        "  host TEXT NOT NULL, database TEXT NOT NULL, certificate TEXT NOT NULL, not_after INTEGER NOT NULL,"
        "  PRIMARY KEY (host, database));",
        /* 3 → 4: one sealed pgBackRest repository passphrase per database. Never deleted: the
         * repository outlives the database (and its backups being disabled). */
        ("CREATE TABLE IF NOT EXISTS backup_passphrases ("
         "  database_key TEXT PRIMARY KEY, ciphertext BLOB NOT NULL, created INTEGER NOT NULL);"),
        /* 4 → 5: one sealed data key per database (its storage's encryption). Never deleted: the
         * encrypted data outlives the database's removal from the manifests, and only this key
         * opens it when the database comes back. */
        ("CREATE TABLE IF NOT EXISTS data_keys ("
         "  database_key TEXT PRIMARY KEY, ciphertext BLOB NOT NULL, created INTEGER NOT NULL);"),
        /* 5 → 6: the enrolled host a token may re-enroll (token create --replace); NULL, as every
         * earlier token gets, enrolls only a name not enrolled yet. */
        "ALTER TABLE tokens ADD COLUMN replaces TEXT;",
};

static int sql_error(sqlite3 *db) {
        int c = db ? sqlite3_errcode(db) : SQLITE_ERROR;
        switch (c) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        default:
                return -EIO;
        }
}

static int schema_version(sqlite3 *db, int *ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW)
                return sql_error(db);
        *ret = sqlite3_column_int(st, 0);
        return 0;
}

/* Run the missing migrations and set the version in one transaction. The version is read again
 * under the write lock: two controllers starting at once must not both migrate. */
static int migrate(sqlite3 *db, const char *path, char **ret_error) {
        _cleanup_free_ char *set = xasprintf("PRAGMA user_version = %d", SCHEMA_VERSION);
        int version = 0, r;

        if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
                goto fail;
        if (schema_version(db, &version) < 0)
                goto fail;
        for (int v = version; v < SCHEMA_VERSION; v++)
                if (sqlite3_exec(db, MIGRATIONS[v], NULL, NULL, NULL) != SQLITE_OK)
                        goto fail;
        if (sqlite3_exec(db, set, NULL, NULL, NULL) != SQLITE_OK || sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
                goto fail;
        return 0;
fail:
        r = sql_error(db);
        if (ret_error)
                *ret_error = version > 0 ? xasprintf("cannot upgrade the schema of %s from version %d to %d: %s", path,
                                                     version, SCHEMA_VERSION, sqlite3_errmsg(db))
                                         : xasprintf("cannot create the schema in %s: %s", path, sqlite3_errmsg(db));
        (void) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return r;
}

int store_open(const char *state_dir, bool create, bool readonly, store **ret, char **ret_error) {
        _cleanup_free_ char *path = xasprintf("%s/%s", state_dir, STORE_FILE);
        sqlite3 *db = NULL;
        int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE, r, version = 0;
        struct stat sb;

        if (stat(path, &sb) < 0) {
                if (errno != ENOENT || !create)
                        return -errno;
                flags |= SQLITE_OPEN_CREATE;
        }
        if (sqlite3_open_v2(path, &db, flags | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
                r = sql_error(db);
                if (ret_error)
                        *ret_error = xasprintf("cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "out of memory");
                sqlite3_close(db);
                return r;
        }
        sqlite3_busy_timeout(db, 5000);
        if (!readonly) {
                /* WAL lets plan read while serve/apply writes; the store holds secrets: 0600. */
                (void) chmod(path, 0600);
                (void) sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL);
        }
        (void) schema_version(db, &version);
        if (version > SCHEMA_VERSION) {
                if (ret_error)
                        *ret_error = xasprintf("%s has schema version %d, newer than this controller's %d", path,
                                               version, SCHEMA_VERSION);
                sqlite3_close(db);
                return -EPROTONOSUPPORT;
        }
        if (version < SCHEMA_VERSION) {
                if (readonly) {
                        /* -ENOENT means "nothing recorded" to plan; an older schema has records. */
                        if (ret_error)
                                *ret_error = version == 0
                                        ? xasprintf("%s is not initialised (run 'infrastream-controller init')", path)
                                        : xasprintf("%s has schema version %d, older than this controller's %d "
                                                    "(run 'infrastream-controller init' to upgrade it)",
                                                    path, version, SCHEMA_VERSION);
                        sqlite3_close(db);
                        return version == 0 ? -ENOENT : -ESTALE;
                }
                r = migrate(db, path, ret_error);
                if (r < 0) {
                        sqlite3_close(db);
                        return r;
                }
        }
        *ret = xcalloc(1, sizeof(store));
        (*ret)->db = db;
        return 0;
}

void store_close(store *s) {
        if (!s)
                return;
        sqlite3_close(s->db);
        free(s);
}

int store_begin(store *s) {
        return sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK ? 0 : sql_error(s->db);
}

int store_commit(store *s) {
        return sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK ? 0 : sql_error(s->db);
}

void store_rollback(store *s) {
        (void) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

static char *col_dup(sqlite3_stmt *st, int i) {
        const unsigned char *t = sqlite3_column_text(st, i);
        return xstrdup(t ? (const char *) t : "");
}

int store_load_placements(store *s, stored_placement **ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        stored_placement *p = NULL;
        size_t n = 0, alloc = 0;
        int rc;

        if (sqlite3_prepare_v2(s->db, "SELECT database, member, host FROM placements ORDER BY database, member", -1,
                               &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 64;
                        p = xrealloc(p, alloc * sizeof(*p));
                }
                p[n++] = (stored_placement) { col_dup(st, 0), sqlite3_column_int(st, 1), col_dup(st, 2) };
        }
        if (rc != SQLITE_DONE) {
                stored_placements_free(p, n);
                return sql_error(s->db);
        }
        *ret = p;
        *ret_n = n;
        return 0;
}

void stored_placements_free(stored_placement *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(p[i].database);
                free(p[i].host);
        }
        free(p);
}

int store_save_placement(store *s, const char *database, const char *const *hosts, size_t n) {
        _cleanup_stmt_ sqlite3_stmt *del = NULL, *ins = NULL;

        if (sqlite3_prepare_v2(s->db, "DELETE FROM placements WHERE database = ?1", -1, &del, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(s->db, "INSERT INTO placements (database, member, host) VALUES (?1, ?2, ?3)", -1, &ins,
                               NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(del, 1, database, -1, SQLITE_STATIC);
        if (sqlite3_step(del) != SQLITE_DONE)
                return sql_error(s->db);
        for (size_t i = 0; i < n; i++) {
                sqlite3_reset(ins);
                sqlite3_bind_text(ins, 1, database, -1, SQLITE_STATIC);
                sqlite3_bind_int(ins, 2, (int) i);
                sqlite3_bind_text(ins, 3, hosts[i], -1, SQLITE_STATIC);
                if (sqlite3_step(ins) != SQLITE_DONE)
                        return sql_error(s->db);
        }
        return 0;
}

int store_load_documents(store *s, stored_document **ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        stored_document *d = NULL;
        size_t n = 0, alloc = 0;
        int rc;

        if (sqlite3_prepare_v2(s->db, "SELECT host, revision, content_hash, body FROM documents ORDER BY host", -1, &st,
                               NULL) != SQLITE_OK)
                return sql_error(s->db);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 64;
                        d = xrealloc(d, alloc * sizeof(*d));
                }
                d[n++] = (stored_document) { col_dup(st, 0), (uint64_t) sqlite3_column_int64(st, 1), col_dup(st, 2),
                                             col_dup(st, 3) };
        }
        if (rc != SQLITE_DONE) {
                stored_documents_free(d, n);
                return sql_error(s->db);
        }
        *ret = d;
        *ret_n = n;
        return 0;
}

void stored_documents_free(stored_document *d, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(d[i].host);
                free(d[i].content_hash);
                free(d[i].body);
        }
        free(d);
}

int store_save_document(store *s, const char *host, uint64_t revision, const char *content_hash, const char *body) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(s->db,
                               "INSERT INTO documents (host, revision, content_hash, body) VALUES (?1, ?2, ?3, ?4) "
                               "ON CONFLICT (host) DO UPDATE SET revision = ?2, content_hash = ?3, body = ?4",
                               -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (sqlite3_int64) revision);
        sqlite3_bind_text(st, 3, content_hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, body, -1, SQLITE_STATIC);
        return sqlite3_step(st) == SQLITE_DONE ? 0 : sql_error(s->db);
}

int store_next_revision(store *s, uint64_t *ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(s->db,
                               "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision' "
                               "RETURNING CAST(value AS INTEGER)",
                               -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        if (sqlite3_step(st) != SQLITE_ROW)
                return sql_error(s->db);
        *ret = (uint64_t) sqlite3_column_int64(st, 0);
        return 0;
}

int store_get_meta(store *s, const char *key, char **ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc;

        if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return sql_error(s->db);
        *ret = col_dup(st, 0);
        return 0;
}

int store_set_meta(store *s, const char *key, const char *value) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(s->db,
                               "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
                               -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
        return sqlite3_step(st) == SQLITE_DONE ? 0 : sql_error(s->db);
}

int store_load_secret(store *s, const char *application_key, const char *database_key, stored_secret *ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        const void *blob;
        int rc, size;

        if (sqlite3_prepare_v2(s->db,
                               "SELECT ciphertext, verifier, created FROM secrets "
                               "WHERE application_key = ?1 AND database_key = ?2",
                               -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(st, 1, application_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, database_key, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return sql_error(s->db);
        blob = sqlite3_column_blob(st, 0);
        size = sqlite3_column_bytes(st, 0);
        *ret = (stored_secret) {
                .application_key = xstrdup(application_key),
                .database_key = xstrdup(database_key),
                .ciphertext = xmalloc((size_t) size + 1),
                .ciphertext_size = (size_t) size,
                .verifier = col_dup(st, 1),
                .created = sqlite3_column_int64(st, 2),
        };
        if (size > 0)
                memcpy(ret->ciphertext, blob, (size_t) size);
        return 0;
}

int store_load_secrets(store *s, stored_secret **ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        stored_secret *x = NULL;
        size_t n = 0, alloc = 0;
        int rc;

        if (sqlite3_prepare_v2(s->db,
                               "SELECT application_key, database_key, verifier, created FROM secrets "
                               "ORDER BY application_key, database_key",
                               -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 64;
                        x = xrealloc(x, alloc * sizeof(*x));
                }
                x[n++] = (stored_secret) { .application_key = col_dup(st, 0), .database_key = col_dup(st, 1),
                                           .verifier = col_dup(st, 2), .created = sqlite3_column_int64(st, 3) };
        }
        if (rc != SQLITE_DONE) {
                stored_secrets_free(x, n);
                return sql_error(s->db);
        }
        *ret = x;
        *ret_n = n;
        return 0;
}

void stored_secret_done(stored_secret *x) {
        if (!x)
                return;
        free(x->application_key);
        free(x->database_key);
        free(x->ciphertext);
        free(x->verifier);
        *x = (stored_secret) {};
}

void stored_secrets_free(stored_secret *x, size_t n) {
        for (size_t i = 0; i < n; i++)
                stored_secret_done(&x[i]);
        free(x);
}

int store_insert_secret(store *s, const stored_secret *x) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(s->db,
                               "INSERT INTO secrets (application_key, database_key, ciphertext, verifier, created) "
                               "VALUES (?1, ?2, ?3, ?4, ?5)",
                               -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(st, 1, x->application_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, x->database_key, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, x->ciphertext, (int) x->ciphertext_size, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, x->verifier, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, x->created);
        return sqlite3_step(st) == SQLITE_DONE ? 0 : sql_error(s->db);
}

int store_delete_secret(store *s, const char *application_key, const char *database_key) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(s->db, "DELETE FROM secrets WHERE application_key = ?1 AND database_key = ?2", -1, &st,
                               NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(st, 1, application_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, database_key, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
                return sql_error(s->db);
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

/* --- schema v3 --------------------------------------------------------------------------------- */

static char *join_addresses(char *const *v, size_t n) {
        size_t len = 1;
        char *s, *p;

        for (size_t i = 0; i < n; i++)
                len += strlen(v[i]) + 1;
        p = s = xmalloc(len);
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        *p++ = ',';
                p = stpcpy(p, v[i]);
        }
        *p = '\0';
        return s;
}

/* Addresses are validated IP literals: a comma never occurs inside one. */
static void split_addresses(const char *s, char ***ret, size_t *ret_n) {
        char **v = NULL;
        size_t n = 0;

        for (const char *p = s; *p;) {
                const char *e = strchrnul(p, ',');
                v = xrealloc(v, (n + 1) * sizeof(char *));
                v[n++] = xstrndup(p, (size_t) (e - p));
                p = *e ? e + 1 : e;
        }
        *ret = v;
        *ret_n = n;
}

static char *col_dup_or_null(sqlite3_stmt *st, int i) {
        return sqlite3_column_type(st, i) == SQLITE_NULL ? NULL : col_dup(st, i);
}

void stored_host_done(stored_host *h) {
        if (!h)
                return;
        free(h->name);
        free(h->role);
        for (size_t i = 0; i < h->n_addresses; i++)
                free(h->addresses[i]);
        free(h->addresses);
        free(h->labels);
        free(h->endpoint);
        free(h->cert_fingerprint);
        free(h->applied_commit);
        free(h->status);
        *h = (stored_host) {};
}

void stored_hosts_free(stored_host *h, size_t n) {
        for (size_t i = 0; i < n; i++)
                stored_host_done(&h[i]);
        free(h);
}

#define HOST_COLUMNS                                                                                          \
        "name, role, addresses, cpus, memory_bytes, labels, endpoint, cert_fingerprint, enrolled_at, last_seen, " \
        "applied_revision, applied_commit, failed, status"

static void host_from_row(sqlite3_stmt *st, stored_host *h) {
        _cleanup_free_ char *addresses = col_dup(st, 2);

        *h = (stored_host) {
                .name = col_dup(st, 0),
                .role = col_dup(st, 1),
                .cpus = sqlite3_column_int(st, 3),
                .memory_bytes = (uint64_t) sqlite3_column_int64(st, 4),
                .labels = col_dup(st, 5),
                .endpoint = col_dup(st, 6),
                .cert_fingerprint = col_dup(st, 7),
                .enrolled_at = sqlite3_column_int64(st, 8),
                .last_seen = sqlite3_column_int64(st, 9),
                .applied_revision = (uint64_t) sqlite3_column_int64(st, 10),
                .applied_commit = col_dup(st, 11),
                .failed = sqlite3_column_int(st, 12) != 0,
                .status = col_dup_or_null(st, 13),
        };
        split_addresses(addresses, &h->addresses, &h->n_addresses);
}

int store_load_hosts(store *s, stored_host **ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        stored_host *h = NULL;
        size_t n = 0, alloc = 0;
        int rc;

        if (sqlite3_prepare_v2(s->db, "SELECT " HOST_COLUMNS " FROM hosts ORDER BY name", -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 16;
                        h = xrealloc(h, alloc * sizeof(*h));
                }
                host_from_row(st, &h[n++]);
        }
        if (rc != SQLITE_DONE) {
                stored_hosts_free(h, n);
                return sql_error(s->db);
        }
        *ret = h;
        *ret_n = n;
        return 0;
}

int store_load_host(store *s, const char *name, stored_host *ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc;

        if (sqlite3_prepare_v2(s->db, "SELECT " HOST_COLUMNS " FROM hosts WHERE name = ?1", -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return sql_error(s->db);
        host_from_row(st, ret);
        return 0;
}

int store_save_host(store *s, const stored_host *h, bool replace) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        _cleanup_free_ char *addresses = join_addresses(h->addresses, h->n_addresses);

        /* A host that enrolls again (agentctl enroll --force) gets new facts and a new certificate;
         * what it last reported stays until its next report. Without replace the primary key is the
         * one check that counts: of two enrollments racing for a new name, only one inserts. */
        if (sqlite3_prepare_v2(s->db,
                               replace ? "INSERT INTO hosts (name, role, addresses, cpus, memory_bytes, labels, endpoint, "
                                         "cert_fingerprint, enrolled_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
                                         "ON CONFLICT (name) DO UPDATE SET role = ?2, addresses = ?3, cpus = ?4, "
                                         "memory_bytes = ?5, labels = ?6, endpoint = ?7, cert_fingerprint = ?8, "
                                         "enrolled_at = ?9"
                                       : "INSERT INTO hosts (name, role, addresses, cpus, memory_bytes, labels, endpoint, "
                                         "cert_fingerprint, enrolled_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                               -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(st, 1, h->name, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, h->role, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, addresses, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, h->cpus);
        sqlite3_bind_int64(st, 5, (sqlite3_int64) h->memory_bytes);
        sqlite3_bind_text(st, 6, strempty(h->labels), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, strempty(h->endpoint), -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, strempty(h->cert_fingerprint), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 9, h->enrolled_at);
        return sqlite3_step(st) == SQLITE_DONE ? 0 : sql_error(s->db);
}

int store_record_report(store *s, const char *host, uint64_t revision, const char *commit, bool failed,
                        const char *status_json, int64_t now) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(s->db,
                               "UPDATE hosts SET last_seen = ?2, applied_revision = ?3, applied_commit = ?4, "
                               "failed = ?5, status = ?6 WHERE name = ?1",
                               -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(st, 1, host, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int64(st, 3, (sqlite3_int64) revision);
        sqlite3_bind_text(st, 4, strempty(commit), -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 5, failed ? 1 : 0);
        if (status_json)
                sqlite3_bind_text(st, 6, status_json, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, 6);
        if (sqlite3_step(st) != SQLITE_DONE)
                return sql_error(s->db);
        return sqlite3_changes(s->db) > 0 ? 0 : -ENOENT;
}

void stored_token_done(stored_token *t) {
        if (!t)
                return;
        free(t->id);
        free(t->verifier);
        free(t->role);
        free(t->labels);
        free(t->used_by);
        free(t->replaces);
        /* The binding key is derived from the secret: it lets whoever holds it vouch for a CA. */
        explicit_bzero(t, sizeof(*t));
}

int store_insert_token(store *s, const stored_token *t) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(s->db,
                               "INSERT INTO tokens (id, verifier, binding_key, role, labels, created, expires, "
                               "replaces) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                               -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(st, 1, t->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, t->verifier, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, t->binding_key, sizeof(t->binding_key), SQLITE_STATIC);
        sqlite3_bind_text(st, 4, t->role, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, strempty(t->labels), -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 6, t->created);
        sqlite3_bind_int64(st, 7, t->expires);
        if (t->replaces)
                sqlite3_bind_text(st, 8, t->replaces, -1, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, 8);
        return sqlite3_step(st) == SQLITE_DONE ? 0 : sql_error(s->db);
}

int store_load_token(store *s, const char *id, stored_token *ret) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc;

        if (sqlite3_prepare_v2(s->db,
                               "SELECT verifier, binding_key, role, labels, created, expires, used_at, used_by, "
                               "replaces FROM tokens WHERE id = ?1",
                               -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return sql_error(s->db);
        if (sqlite3_column_bytes(st, 1) != (int) sizeof(ret->binding_key))
                return -EBADMSG;
        *ret = (stored_token) {
                .id = xstrdup(id),
                .verifier = col_dup(st, 0),
                .role = col_dup(st, 2),
                .labels = col_dup(st, 3),
                .created = sqlite3_column_int64(st, 4),
                .expires = sqlite3_column_int64(st, 5),
                .used_at = sqlite3_column_int64(st, 6),
                .used_by = col_dup_or_null(st, 7),
                .replaces = col_dup_or_null(st, 8),
        };
        memcpy(ret->binding_key, sqlite3_column_blob(st, 1), sizeof(ret->binding_key));
        return 0;
}

int store_use_token(store *s, const char *id, const char *host, int64_t now) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL, *q = NULL;
        int rc;

        /* The condition on used_at makes this the one check that counts: two enrollments racing with
         * the same token both passed the caller's checks, only one of them changes the row. */
        if (sqlite3_prepare_v2(s->db, "UPDATE tokens SET used_at = ?2, used_by = ?3 WHERE id = ?1 AND used_at = 0", -1,
                               &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now > 0 ? now : 1);
        sqlite3_bind_text(st, 3, host, -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_DONE)
                return sql_error(s->db);
        if (sqlite3_changes(s->db) > 0)
                return 0;
        if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM tokens WHERE id = ?1", -1, &q, NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
        rc = sqlite3_step(q);
        if (rc == SQLITE_ROW)
                return -EALREADY;
        return rc == SQLITE_DONE ? -ENOENT : sql_error(s->db);
}

void stored_certs_free(stored_cert *c, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(c[i].host);
                free(c[i].database);
                free(c[i].certificate);
        }
        free(c);
}

int store_load_certs(store *s, stored_cert **ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        stored_cert *c = NULL;
        size_t n = 0, alloc = 0;
        int rc;

        if (sqlite3_prepare_v2(s->db, "SELECT host, database, certificate, not_after FROM certs ORDER BY host, database",
                               -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 16;
                        c = xrealloc(c, alloc * sizeof(*c));
                }
                c[n++] = (stored_cert) { col_dup(st, 0), col_dup(st, 1), col_dup(st, 2), sqlite3_column_int64(st, 3) };
        }
        if (rc != SQLITE_DONE) {
                stored_certs_free(c, n);
                return sql_error(s->db);
        }
        *ret = c;
        *ret_n = n;
        return 0;
}

int store_save_cert(store *s, const stored_cert *c) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(s->db,
                               "INSERT INTO certs (host, database, certificate, not_after) VALUES (?1, ?2, ?3, ?4) "
                               "ON CONFLICT (host, database) DO UPDATE SET certificate = ?3, not_after = ?4",
                               -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(st, 1, c->host, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, c->database, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, c->certificate, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, c->not_after);
        return sqlite3_step(st) == SQLITE_DONE ? 0 : sql_error(s->db);
}

int store_load_backup_passphrases(store *s, stored_passphrase **ret, size_t *ret_n) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        stored_passphrase *x = NULL;
        size_t n = 0, alloc = 0;
        int rc;

        if (sqlite3_prepare_v2(s->db,
                               "SELECT database_key, ciphertext, created FROM backup_passphrases ORDER BY database_key",
                               -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const void *blob = sqlite3_column_blob(st, 1);
                size_t size = (size_t) sqlite3_column_bytes(st, 1);

                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 64;
                        x = xrealloc(x, alloc * sizeof(*x));
                }
                x[n] = (stored_passphrase) { .database_key = col_dup(st, 0), .ciphertext = xmalloc(size + 1),
                                             .ciphertext_size = size, .created = sqlite3_column_int64(st, 2) };
                if (size > 0)
                        memcpy(x[n].ciphertext, blob, size);
                n++;
        }
        if (rc != SQLITE_DONE) {
                stored_passphrases_free(x, n);
                return sql_error(s->db);
        }
        *ret = x;
        *ret_n = n;
        return 0;
}

/* One sealed row of table (backup_passphrases, data_keys: the same columns) by its database. */
static int load_sealed_row(store *s, const char *table, const char *database_key, stored_passphrase *ret) {
        _cleanup_free_ char *sql = xasprintf("SELECT ciphertext, created FROM %s WHERE database_key = ?1", table);
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        const void *blob;
        size_t size;
        int rc;

        if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(st, 1, database_key, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return -ENOENT;
        if (rc != SQLITE_ROW)
                return sql_error(s->db);
        blob = sqlite3_column_blob(st, 0);
        size = (size_t) sqlite3_column_bytes(st, 0);
        *ret = (stored_passphrase) { .database_key = xstrdup(database_key), .ciphertext = xmalloc(size + 1),
                                     .ciphertext_size = size, .created = sqlite3_column_int64(st, 1) };
        if (size > 0)
                memcpy(ret->ciphertext, blob, size);
        return 0;
}

static int insert_sealed_row(store *s, const char *table, const stored_passphrase *x) {
        _cleanup_free_ char *sql = xasprintf("INSERT INTO %s (database_key, ciphertext, created) VALUES (?1, ?2, ?3)",
                                             table);
        _cleanup_stmt_ sqlite3_stmt *st = NULL;

        if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(st, 1, x->database_key, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, x->ciphertext, (int) x->ciphertext_size, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, x->created);
        return sqlite3_step(st) == SQLITE_DONE ? 0 : sql_error(s->db);
}

int store_load_backup_passphrase(store *s, const char *database_key, stored_passphrase *ret) {
        return load_sealed_row(s, "backup_passphrases", database_key, ret);
}

void stored_passphrase_done(stored_passphrase *x) {
        if (!x)
                return;
        free(x->database_key);
        free(x->ciphertext);
        *x = (stored_passphrase) {};
}

void stored_passphrases_free(stored_passphrase *x, size_t n) {
        for (size_t i = 0; i < n; i++)
                stored_passphrase_done(&x[i]);
        free(x);
}

int store_insert_backup_passphrase(store *s, const stored_passphrase *x) {
        return insert_sealed_row(s, "backup_passphrases", x);
}

/* --- schema v5 --------------------------------------------------------------------------------- */

int store_load_data_key(store *s, const char *database_key, stored_data_key *ret) {
        return load_sealed_row(s, "data_keys", database_key, ret);
}

int store_insert_data_key(store *s, const stored_data_key *x) {
        return insert_sealed_row(s, "data_keys", x);
}

int store_database_placed_on(store *s, const char *database_key, const char *host) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc;

        if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM placements WHERE database = ?1 AND host = ?2", -1, &st, NULL) !=
            SQLITE_OK)
                return sql_error(s->db);
        sqlite3_bind_text(st, 1, database_key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, host, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                return 1;
        return rc == SQLITE_DONE ? 0 : sql_error(s->db);
}
