/* libpq behind a small interface; libpq's errors become one-line strings here. */
#include <libpq-fe.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "macro.h"
#include "pg.h"

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct pg_conn {
        PGconn *conn;
};

struct pg_rows {
        PGresult *res;
};

/* libpq messages end in newlines and sometimes span lines: make them one line. */
static char *one_line(const char *msg) {
        char *s = xstrdup(msg ? msg : "unknown error");
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
                s[--n] = '\0';
        for (char *p = s; *p; p++)
                if (*p == '\n')
                        *p = ' ';
        return s;
}

int pg_connect(const char *socket_dir, int port, const char *user, const char *dbname, pg_conn **ret,
               char **ret_error) {
        char portbuf[16];
        const char *keys[] = { "host", "port", "user", "dbname", "application_name", "connect_timeout", NULL };
        const char *vals[] = { socket_dir, portbuf, user, dbname, "infrastream-agent", "10", NULL };
        PGconn *conn;

        snprintf(portbuf, sizeof(portbuf), "%d", port);
        conn = PQconnectdbParams(keys, vals, 0);
        if (!conn)
                return -ENOMEM;
        if (PQstatus(conn) != CONNECTION_OK) {
                if (ret_error)
                        *ret_error = one_line(PQerrorMessage(conn));
                PQfinish(conn);
                return -ECONNREFUSED;
        }
        *ret = xcalloc(1, sizeof(pg_conn));
        (*ret)->conn = conn;
        return 0;
}

void pg_close(pg_conn *c) {
        if (!c)
                return;
        PQfinish(c->conn);
        free(c);
}

static char *result_error(PGresult *res, PGconn *conn) {
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
        _cleanup_free_ char *line = one_line(msg ? msg : PQerrorMessage(conn));
        return state ? xasprintf("%s (SQLSTATE %s)", line, state) : TAKE_PTR(line);
}

int pg_exec(pg_conn *c, const char *sql, const char *const *params, int n_params, pg_rows **ret_rows,
            char **ret_error) {
        PGresult *res = PQexecParams(c->conn, sql, n_params, NULL, params, NULL, NULL, 0);
        ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                if (ret_error)
                        *ret_error = result_error(res, c->conn);
                PQclear(res);
                return -EIO;
        }
        if (ret_rows) {
                *ret_rows = xcalloc(1, sizeof(pg_rows));
                (*ret_rows)->res = res;
        } else
                PQclear(res);
        return 0;
}

size_t pg_rows_count(const pg_rows *r) {
        return r ? (size_t) PQntuples(r->res) : 0;
}

const char *pg_rows_get(const pg_rows *r, size_t row, int col) {
        if (PQgetisnull(r->res, (int) row, col))
                return NULL;
        return PQgetvalue(r->res, (int) row, col);
}

void pg_rows_free(pg_rows *r) {
        if (!r)
                return;
        PQclear(r->res);
        free(r);
}

char *pg_quote_ident(pg_conn *c, const char *s) {
        char *q = PQescapeIdentifier(c->conn, s, strlen(s));
        char *out;
        if (!q)
                abort(); /* only fails on out-of-memory or invalid encoding of names we validated */
        out = xstrdup(q);
        PQfreemem(q);
        return out;
}

char *pg_quote_literal(pg_conn *c, const char *s) {
        char *q = PQescapeLiteral(c->conn, s, strlen(s));
        char *out;
        if (!q)
                abort();
        out = xstrdup(q);
        explicit_bzero(q, strlen(q));
        PQfreemem(q);
        return out;
}

int pg_send(pg_conn *c, const char *sql, char **ret_error) {
        if (!PQsendQuery(c->conn, sql)) {
                if (ret_error)
                        *ret_error = one_line(PQerrorMessage(c->conn));
                return -EIO;
        }
        return 0;
}

int pg_wait(pg_conn *c, char **ret_error) {
        PGresult *res;
        int r = 0;

        while ((res = PQgetResult(c->conn))) {
                ExecStatusType st = PQresultStatus(res);
                if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && r == 0) {
                        if (ret_error)
                                *ret_error = result_error(res, c->conn);
                        r = -EIO;
                }
                PQclear(res);
        }
        return r;
}

/* After START_REPLICATION: 1 at the first WAL message (or when none comes within 5 s: the
 * server has nothing past the starting point, so nothing is missing); 0 with the server's error
 * in *ret_res. Keepalives are skipped. */
static int first_wal(PGconn *conn, PGresult **ret_res) {
        struct pollfd pfd = { .fd = PQsocket(conn), .events = POLLIN };
        int64_t deadline = now_ms() + 5000;

        for (;;) {
                char *buf = NULL;
                int n = PQgetCopyData(conn, &buf, 1);

                if (n > 0) {
                        bool wal = buf[0] == 'w';
                        PQfreemem(buf);
                        if (wal)
                                return 1;
                        continue;
                }
                if (n < 0) {
                        *ret_res = PQgetResult(conn);
                        return 0;
                }
                int64_t left = deadline - now_ms();
                if (left <= 0)
                        return 1;
                if (poll(&pfd, 1, (int) left) < 0 && errno != EINTR)
                        return 1;
                if (!PQconsumeInput(conn)) {
                        *ret_res = PQgetResult(conn);
                        return 0;
                }
        }
}

int pg_replication_probe(const char *conninfo, const char *sysid, unsigned timeline, const char *lsn,
                         char **ret_why, char **ret_error) {
        _cleanup_free_ char *ci = xasprintf("%s replication=true connect_timeout=10", conninfo);
        _cleanup_free_ char *cmd = xasprintf("START_REPLICATION PHYSICAL %s TIMELINE %u", lsn, timeline);
        PGconn *conn = PQconnectdb(ci);
        PGresult *res = NULL;
        int r;

        if (!conn)
                return -ENOMEM;
        if (PQstatus(conn) != CONNECTION_OK) {
                *ret_error = one_line(PQerrorMessage(conn));
                r = -ECONNREFUSED;
                goto done;
        }
        res = PQexec(conn, "IDENTIFY_SYSTEM");
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
                *ret_error = result_error(res, conn);
                r = -EIO;
                goto done;
        }
        if (!streq(PQgetvalue(res, 0, 0), sysid)) {
                *ret_why = xasprintf("its system identifier is %s, the primary's %s", sysid, PQgetvalue(res, 0, 0));
                r = 0;
                goto done;
        }
        PQclear(res);
        /* A starting point not in the server's history is refused at once; WAL it no longer has
         * only once it reads it, after CopyBoth: the first WAL message or error decides. Closing
         * the connection ends the stream. */
        res = PQexec(conn, cmd);
        if (PQresultStatus(res) == PGRES_COPY_BOTH) {
                PQclear(res);
                res = NULL;
                r = first_wal(conn, &res);
                if (r > 0)
                        goto done;
        }
        if (PQresultStatus(res) == PGRES_FATAL_ERROR && PQresultErrorField(res, PG_DIAG_SQLSTATE)) {
                _cleanup_free_ char *e = result_error(res, conn);
                *ret_why = xasprintf("the primary cannot stream from %s on timeline %u: %s", lsn, timeline, e);
                r = 0;
        } else {
                *ret_error = result_error(res, conn); /* res NULL: the connection's error */
                r = -EIO;
        }
done:
        PQclear(res);
        PQfinish(conn);
        return r;
}
