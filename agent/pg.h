/* The libpq wrapper: connections, queries with parameters, escaping, and errors as text.
 * The only file that includes libpq-fe.h. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct pg_conn pg_conn;
typedef struct pg_rows pg_rows;

/* Connect over the Unix socket in socket_dir as user to dbname (peer authentication).
 * On failure *ret_error holds libpq's message (one line). */
int pg_connect(const char *socket_dir, int port, const char *user, const char *dbname, pg_conn **ret,
               char **ret_error);
void pg_close(pg_conn *c);

/* Run SQL with $1.. parameters (text). ret_rows may be NULL for statements. On failure returns
 * -EIO and the server's message (with SQLSTATE) in *ret_error. */
int pg_exec(pg_conn *c, const char *sql, const char *const *params, int n_params, pg_rows **ret_rows,
            char **ret_error);
size_t pg_rows_count(const pg_rows *r);
const char *pg_rows_get(const pg_rows *r, size_t row, int col); /* NULL for SQL NULL */
void pg_rows_free(pg_rows *r);

/* Quote an identifier / literal for SQL text (malloc'd). */
char *pg_quote_ident(pg_conn *c, const char *s);
char *pg_quote_literal(pg_conn *c, const char *s);

/* Send a query without waiting (pipelined batches over several connections). */
int pg_send(pg_conn *c, const char *sql, char **ret_error);
/* Wait for the result of pg_send. */
int pg_wait(pg_conn *c, char **ret_error);

/* Over a replication connection (conninfo, as a standby's primary_conninfo): could a copy with
 * system identifier sysid, needing WAL from lsn on timeline, stream from this server? 1 yes, 0 no
 * (*ret_why says why: another system, WAL removed, a point not in the server's history), negative
 * when the server cannot be asked (*ret_error). */
int pg_replication_probe(const char *conninfo, const char *sysid, unsigned timeline, const char *lsn,
                         char **ret_why, char **ret_error);

static inline void pg_closep(pg_conn **c) {
        pg_close(*c);
}
static inline void pg_rows_freep(pg_rows **r) {
        pg_rows_free(*r);
}
#define _cleanup_pg_ __attribute__((cleanup(pg_closep)))
#define _cleanup_rows_ __attribute__((cleanup(pg_rows_freep)))
