/* SQLite-backed state store: schema versioning, transactions, prepared statements. */
#include <sqlite3.h>
#include <sys/stat.h>

#include "macro.h"
#include "store.h"

#define SCHEMA_VERSION 1

struct store {
        sqlite3 *db;
};

DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize)
#define _cleanup_stmt_ _cleanup_(sqlite3_finalizep)

static const char SCHEMA[] =
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "CREATE TABLE IF NOT EXISTS placements ("
        "  database TEXT NOT NULL, member INTEGER NOT NULL, host TEXT NOT NULL,"
        "  PRIMARY KEY (database, member));"
        "CREATE TABLE IF NOT EXISTS documents ("
        "  host TEXT PRIMARY KEY, revision INTEGER NOT NULL, content_hash TEXT NOT NULL, body TEXT NOT NULL);"
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('revision', '0');";

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
        default:
                return -EIO;
        }
}

int store_open(const char *state_dir, bool create, bool readonly, store **ret, char **ret_error) {
        _cleanup_free_ char *path = xasprintf("%s/%s", state_dir, STORE_FILE);
        sqlite3 *db = NULL;
        int flags = readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE, r, version = 0;
        sqlite3_stmt *st = NULL;
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
                /* WAL lets plan read while serve/apply writes; the store holds secrets later: 0600. */
                (void) chmod(path, 0600);
                (void) sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL);
        }
        if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
                version = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        if (version > SCHEMA_VERSION) {
                if (ret_error)
                        *ret_error = xasprintf("%s has schema version %d, newer than this controller's %d", path,
                                               version, SCHEMA_VERSION);
                sqlite3_close(db);
                return -EPROTONOSUPPORT;
        }
        if (version < SCHEMA_VERSION) {
                if (readonly) {
                        if (ret_error)
                                *ret_error = xasprintf("%s is not initialised (run 'infrastream-controller init')", path);
                        sqlite3_close(db);
                        return -ENOENT;
                }
                if (sqlite3_exec(db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK ||
                    sqlite3_exec(db, "PRAGMA user_version = 1", NULL, NULL, NULL) != SQLITE_OK) {
                        r = sql_error(db);
                        if (ret_error)
                                *ret_error = xasprintf("cannot create the schema in %s: %s", path, sqlite3_errmsg(db));
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
