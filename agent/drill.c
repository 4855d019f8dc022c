/* Restore drills and point-in-time restores with pgBackRest, into directories that are never the
 * live cluster's. The scratch cluster runs as the OS user, on its own Unix socket only, with
 * archiving off: a restored copy must never push a new timeline into the live repository. */
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "backup.h"
#include "drill.h"
#include "encryption.h"
#include "fileio.h"
#include "macro.h"
#include "pg.h"
#include "pgbackrest.h"
#include "proc.h"
#include "service.h"
#include "strbuf.h"

#define DRILL_RECOVERY_TIMEOUT_S 3600

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 ? -1 : 0;
}

/* Remove a scratch tree that is ours by construction. */
static int rm_rf(const char *path) {
        struct stat st;
        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 ? -errno : 0;
}

/* A TCP port nobody listens on now; the scratch cluster listens on no TCP address, the port only
 * names its socket, so a race costs nothing. */
static int free_port(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ||
            getsockname(fd, (struct sockaddr *) &sa, &len) < 0)
                return 54329;
        return ntohs(sa.sin_port);
}

static double mono(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* "-c name=value" for pg_ctl -o, which hands it to /bin/sh: single-quoted. */
static void pg_option(strbuf *b, const char *name, const char *value) {
        strbuf_printf(b, " -c '%s=", name);
        for (const char *p = value; *p; p++)
                strbuf_append(b, *p == '\'' ? "'\\''" : (char[]) { *p, '\0' });
        strbuf_append(b, "'");
}

static int run_tool(const agent_config *cfg, const char *const *argv, const char *what, char **ret_error) {
        proc_result res = {};
        char line[512];
        int r = proc_run(argv, cfg->os_user, "/", NULL, &res);

        if (r < 0) {
                *ret_error = xasprintf("cannot run %s: %s", argv[0], strerror(-r));
                return r;
        }
        if (res.exit_status != 0) {
                *ret_error = xasprintf("%s failed (exit %d): %s", what, res.exit_status,
                                       proc_last_line(&res, line, sizeof(line)));
                r = -EIO;
        }
        proc_result_done(&res);
        return r;
}

static void stop_scratch(const agent_config *cfg, const char *data) {
        _cleanup_free_ char *bin = xasprintf("%s/pg_ctl", cfg->postgres_bin_dir), *pid = xasprintf("%s/postmaster.pid", data),
                            *err = NULL;
        const char *argv[] = { bin, "stop", "-w", "-t", "60", "-m", "immediate", "-D", data, NULL };
        if (access(pid, F_OK) == 0)
                (void) run_tool(cfg, argv, "pg_ctl stop", &err);
}

/* Last line of the scratch server's log: why it did not come up. */
static char *log_tail(const char *path) {
        _cleanup_free_ char *text = NULL;
        char line[512];
        if (read_full_file(path, 1 << 20, &text, NULL) < 0)
                return xstrdup("(no server log)");
        return xstrdup(text_last_line(text, line, sizeof(line)));
}

typedef struct drill_result {
        char *label;
        backup_drill_table *tables;
        size_t n_tables;
} drill_result;

/* Wait until recovery has ended (promoted), then the checks. */
static int drill_checks(const agent_config *cfg, const char *db, const char *scratch, int port, drill_result *dr,
                        char **ret_error) {
        _cleanup_free_ char *logf = xasprintf("%s/postgres.log", scratch), *portstr = xasprintf("%d", port),
                            *amcheck = xasprintf("%s/pg_amcheck", cfg->postgres_bin_dir);
        _cleanup_pg_ pg_conn *c = NULL;
        _cleanup_rows_ pg_rows *rows = NULL;
        double deadline = mono() + DRILL_RECOVERY_TIMEOUT_S;
        const char *params[] = { db };
        int r;

        for (;;) {
                _cleanup_free_ char *err = NULL;
                _cleanup_rows_ pg_rows *x = NULL;
                if (!c && pg_connect(scratch, port, "postgres", "postgres", &c, &err) < 0) {
                        free(err);
                        err = NULL;
                }
                if (c && pg_exec(c, "SELECT pg_is_in_recovery()", NULL, 0, &x, &err) >= 0 &&
                    streq(pg_rows_get(x, 0, 0), "f"))
                        break;
                if (c && err) {
                        pg_close(TAKE_PTR(c));
                }
                if (mono() > deadline) {
                        *ret_error = xasprintf("recovery did not end within %d s", DRILL_RECOVERY_TIMEOUT_S);
                        return -ETIMEDOUT;
                }
                {
                        _cleanup_free_ char *pidf = xasprintf("%s/data/postmaster.pid", scratch);
                        if (access(pidf, F_OK) < 0) {
                                _cleanup_free_ char *tail = log_tail(logf);
                                *ret_error = xasprintf("the restored server stopped during recovery: %s", tail);
                                return -EIO;
                        }
                }
                usleep(100 * 1000);
        }
        r = pg_exec(c, "SELECT 1 FROM pg_database WHERE datname = $1", params, 1, &rows, ret_error);
        if (r < 0)
                return r;
        if (pg_rows_count(rows) != 1) {
                *ret_error = xasprintf("database '%s' does not exist in the restored copy", db);
                return -ENOENT;
        }
        {
                const char *argv[] = { amcheck, "-h", scratch, "-p", portstr, "-U", "postgres", "--install-missing",
                                       "--heapallindexed", "--all", NULL };
                r = run_tool(cfg, argv, "pg_amcheck", ret_error);
                if (r < 0)
                        return r;
        }
        pg_close(TAKE_PTR(c));
        r = pg_connect(scratch, port, "postgres", db, &c, ret_error);
        if (r < 0)
                return r;
        pg_rows_free(TAKE_PTR(rows));
        r = pg_exec(c,
                    "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = "
                    "c.relnamespace WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname NOT IN ('pg_catalog', "
                    "'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' "
                    "ORDER BY pg_total_relation_size(c.oid) DESC, 1 LIMIT 5",
                    NULL, 0, &rows, ret_error);
        if (r < 0)
                return r;
        dr->tables = pg_rows_count(rows) ? xcalloc(pg_rows_count(rows), sizeof(backup_drill_table)) : NULL;
        for (size_t i = 0; i < pg_rows_count(rows); i++) {
                _cleanup_rows_ pg_rows *n = NULL;
                _cleanup_free_ char *sql = xasprintf("SELECT count(*) FROM %s", pg_rows_get(rows, i, 0));
                r = pg_exec(c, sql, NULL, 0, &n, ret_error);
                if (r < 0)
                        return r;
                dr->tables[dr->n_tables].name = xstrdup(pg_rows_get(rows, i, 0));
                dr->tables[dr->n_tables++].rows = strtoll(pg_rows_get(n, 0, 0), NULL, 10);
        }
        return 0;
}

static int write_owned(const char *path, const char *text, uid_t uid, gid_t gid, char **ret_error) {
        int r = write_file_atomic_owned(path, text, strlen(text), 0600, uid, gid);
        if (r < 0)
                *ret_error = xasprintf("cannot write %s: %s", path, strerror(-r));
        return r;
}

static int make_owned_dir(const char *path, uid_t uid, gid_t gid, char **ret_error) {
        if ((mkdir(path, 0700) < 0 && errno != EEXIST) || chown(path, uid, gid) < 0 || chmod(path, 0700) < 0) {
                *ret_error = xasprintf("cannot create %s: %s", path, strerror(errno));
                return -errno;
        }
        return 0;
}

static void record(const agent_config *cfg, const char *db, int64_t at, double secs, drill_result *dr, const char *error) {
        _cleanup_free_ char *err = NULL;
        backups_state st = {};
        backup_entry *e;
        int lock = backups_lock(cfg, &err);

        if (lock < 0 || backups_load(cfg, &st, &err) < 0) {
                if (lock >= 0)
                        close(lock);
                return;
        }
        e = backups_entry(&st, db);
        e->drill_at = at;
        e->drill_seconds = secs;
        free(e->drill_label);
        e->drill_label = dr->label ? xstrdup(dr->label) : NULL;
        free(e->drill_error);
        e->drill_error = error ? xstrdup(error) : NULL;
        if (!error) {
                e->drill_last_good = at;
                e->drill_last_good_seconds = secs;
                for (size_t i = 0; i < e->n_drill_tables; i++)
                        free(e->drill_tables[i].name);
                free(e->drill_tables);
                e->drill_tables = TAKE_PTR(dr->tables);
                e->n_drill_tables = dr->n_tables;
                dr->n_tables = 0;
        }
        (void) backups_save(cfg, &st, &err);
        backups_state_done(&st);
        close(lock);
}

int drill_run(const agent_config *cfg, const char *name, FILE *out, char **ret_error) {
        _cleanup_(doc_document_freep) doc_document *d = NULL;
        _cleanup_free_ char *scratch = xasprintf("%s/.drill-%s", cfg->backup_root, name),
                            *data = xasprintf("%s/.drill-%s/data", cfg->backup_root, name), *err = NULL,
                            *pg1 = NULL, *hba = NULL, *ident = NULL, *identtext = NULL, *logf = NULL,
                            *bin = xasprintf("%s/pg_ctl", cfg->postgres_bin_dir);
        const doc_database *db;
        drill_result dr = {};
        pgbr_info info = {};
        strbuf opts = {};
        int64_t at = (int64_t) time(NULL);
        double t0 = mono(), secs;
        bool started = false;
        uid_t uid;
        gid_t gid;
        int r, port;

        r = backup_find_database(cfg, name, &d, &db, ret_error);
        if (r < 0)
                return r;
        r = user_lookup(cfg->os_user, &uid, &gid, NULL);
        if (r < 0) {
                *ret_error = xasprintf("OS user '%s' not found", cfg->os_user);
                return r;
        }
        /* A drill that was interrupted left its copy: stop it and start over. */
        stop_scratch(cfg, data);
        r = rm_rf(scratch);
        if (r < 0) {
                err = xasprintf("cannot remove the previous drill's %s: %s", scratch, strerror(-r));
                goto finish;
        }
        r = mkdir_root(cfg->backup_root);
        if (r < 0) {
                err = xasprintf("cannot create %s: %s", cfg->backup_root, strerror(-r));
                goto finish;
        }
        /* The restored copy is the database's data: as protected as the original. */
        if ((r = make_owned_dir(scratch, uid, gid, &err)) < 0 ||
            (r = encryption_protect_dir(cfg, name, scratch, &err)) < 0 || (r = make_owned_dir(data, uid, gid, &err)) < 0)
                goto finish;
        r = pgbackrest_info(cfg, name, &info, &err);
        if (r < 0)
                goto finish;
        if (info.n_backups == 0) {
                err = xasprintf("no backup in the repository yet: agentctl backup run %s", name);
                r = -ENOENT;
                goto finish;
        }
        dr.label = xstrdup(info.backups[info.n_backups - 1].label);
        fprintf(out, "drill %s: restoring backup %s with WAL replay into %s\n", name, dr.label, scratch);
        fflush(out);
        pg1 = xasprintf("--pg1-path=%s", data);
        {
                const char *args[] = { pg1, "--type=default", "--archive-mode=off", "restore", NULL };
                r = pgbackrest_run(cfg, name, args, NULL, &err);
                if (r < 0)
                        goto finish;
        }
        hba = xasprintf("%s/pg_hba.conf", scratch);
        ident = xasprintf("%s/pg_ident.conf", scratch);
        identtext = xasprintf("drill %s postgres\ndrill root postgres\n", cfg->os_user);
        if ((r = write_owned(hba, "local all all peer map=drill\n", uid, gid, &err)) < 0 ||
            (r = write_owned(ident, identtext, uid, gid, &err)) < 0)
                goto finish;
        port = free_port();
        {
                _cleanup_free_ char *ps = xasprintf("%d", port);
                pg_option(&opts, "port", ps);
                pg_option(&opts, "listen_addresses", "");
                pg_option(&opts, "unix_socket_directories", scratch);
                pg_option(&opts, "archive_mode", "off");
                pg_option(&opts, "ssl", "off");
                pg_option(&opts, "logging_collector", "off");
                pg_option(&opts, "hba_file", hba);
                pg_option(&opts, "ident_file", ident);
                pg_option(&opts, "shared_buffers", "128MB");
        }
        logf = xasprintf("%s/postgres.log", scratch);
        {
                /* -w returns once connections are accepted (consistent, still in recovery) or the
                 * server died; the checks then wait for the end of recovery. */
                const char *argv[] = { bin, "start", "-w", "-t", "3600", "-D", data, "-l", logf, "-o", opts.s, NULL };
                started = true;
                r = run_tool(cfg, argv, "pg_ctl start", &err);
                if (r < 0) {
                        _cleanup_free_ char *tail = log_tail(logf);
                        free(err);
                        err = xasprintf("the restored server did not start: %s", tail);
                        goto finish;
                }
        }
        r = drill_checks(cfg, name, scratch, port, &dr, &err);
finish:
        if (started || r < 0)
                stop_scratch(cfg, data);
        {
                int k = rm_rf(scratch);
                if (k < 0 && r >= 0) {
                        err = xasprintf("cannot remove %s: %s", scratch, strerror(-k));
                        r = k;
                }
        }
        secs = mono() - t0;
        record(cfg, name, at, secs, &dr, r < 0 ? (err ? err : strerror(-r)) : NULL);
        if (r < 0)
                *ret_error = xasprintf("database '%s': restore drill failed: %s", name, err ? err : strerror(-r));
        else {
                backups_state st = {};
                _cleanup_free_ char *e2 = NULL;
                fprintf(out, "drill %s: passed in %.1f s: backup %s restored, recovery ended, database present, "
                        "pg_amcheck clean", name, secs, dr.label);
                /* the counts went to the state with the tables: read them back for the line */
                if (backups_load(cfg, &st, &e2) >= 0) {
                        const backup_entry *e = backups_entry(&st, name);
                        for (size_t i = 0; i < e->n_drill_tables; i++)
                                fprintf(out, "%s%s %lld rows", i ? ", " : "; ", e->drill_tables[i].name,
                                        (long long) e->drill_tables[i].rows);
                }
                fputc('\n', out);
                backups_state_done(&st);
        }
        for (size_t i = 0; i < dr.n_tables; i++)
                free(dr.tables[i].name);
        free(dr.tables);
        free(dr.label);
        strbuf_done(&opts);
        pgbr_info_done(&info);
        return r;
}

/* "YYYY-MM-DD HH:MM:SS[.ffffff][ UTC|Z|+HH[:MM]|-HH[:MM]]" → the same with an explicit zone
 * (UTC when none: everything here is UTC). */
static int parse_target_time(const char *s, char **ret) {
        struct tm tm = {};
        const char *p = strptime(s, "%Y-%m-%d %H:%M:%S", &tm), *frac;
        size_t nf = 0;

        if (!p)
                return -EINVAL;
        frac = p;
        if (*p == '.') {
                p++;
                while (*p >= '0' && *p <= '9' && nf < 6)
                        p++, nf++;
                if (nf == 0 || (*p >= '0' && *p <= '9'))
                        return -EINVAL;
        }
        if (!*p || streq(p, " UTC") || streq(p, "Z") || streq(p, "+00") || streq(p, "+00:00")) {
                *ret = xasprintf("%.*s+00", (int) (p - s), s);
                return 0;
        }
        if ((p[0] == '+' || p[0] == '-') && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' && p[2] <= '9' &&
            (!p[3] || (p[3] == ':' && p[4] >= '0' && p[4] <= '5' && p[5] >= '0' && p[5] <= '9' && !p[6]))) {
                (void) frac;
                *ret = xstrdup(s);
                return 0;
        }
        return -EINVAL;
}

static bool path_inside(const char *path, const char *dir) {
        size_t n = strlen(dir);
        return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int drill_restore(const agent_config *cfg, const char *name, const char *target_time, const char *dir, FILE *out,
                  char **ret_error) {
        _cleanup_(doc_document_freep) doc_document *d = NULL;
        _cleanup_free_ char *target = NULL, *live = NULL, *real = NULL, *err = NULL, *pg1 = NULL,
                            *topt = NULL, *auto_conf = NULL, *text = NULL, *added = NULL;
        const doc_database *db;
        pgbr_info info = {};
        struct stat st;
        bool made;
        uid_t uid;
        gid_t gid;
        int r, port;

        r = backup_find_database(cfg, name, &d, &db, ret_error);
        if (r < 0)
                return r;
        if (parse_target_time(target_time, &target) < 0) {
                *ret_error = xasprintf("--target-time '%.64s' is not 'YYYY-MM-DD HH:MM:SS[.ffffff]' with an optional "
                                       "zone (UTC, Z, +HH[:MM]); UTC when none",
                                       target_time);
                return -EINVAL;
        }
        if (dir[0] != '/') {
                *ret_error = xasprintf("--to must be an absolute path, not '%s'", dir);
                return -EINVAL;
        }
        {
                _cleanup_free_ char *ldata = xasprintf("%s/%s/data", cfg->data_root, name);
                live = realpath(ldata, NULL);
                if (!live)
                        live = TAKE_PTR(ldata);
        }
        /* Compare real paths: a symlink or "x/.." must not lead into the live data directory. */
        if (lstat(dir, &st) == 0) {
                if (!S_ISDIR(st.st_mode)) {
                        *ret_error = xasprintf("%s exists and is not a directory", dir);
                        return -ENOTDIR;
                }
                real = realpath(dir, NULL);
        } else if (errno == ENOENT) {
                _cleanup_free_ char *copy = xstrdup(dir), *rp = NULL;
                char *slash = strrchr(copy, '/');
                *slash = '\0';
                rp = realpath(*copy ? copy : "/", NULL);
                if (!rp) {
                        *ret_error = xasprintf("the parent of %s does not exist: %s", dir, strerror(errno));
                        return -ENOENT;
                }
                real = xasprintf("%s/%s", streq(rp, "/") ? "" : rp, slash + 1);
        } else {
                *ret_error = xasprintf("cannot stat %s: %s", dir, strerror(errno));
                return -errno;
        }
        if (!real || path_inside(real, live) || path_inside(live, real)) {
                *ret_error = xasprintf("refusing to restore into %s: it is or holds the live data directory %s", dir, live);
                return -EPERM;
        }
        made = lstat(dir, &st) < 0;
        if (!made) {
                DIR *dd = opendir(dir);
                struct dirent *de;
                bool empty = true;
                while (dd && (de = readdir(dd)))
                        if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                                empty = false;
                if (dd)
                        closedir(dd);
                if (!dd || !empty) {
                        *ret_error = xasprintf("refusing to restore into %s: it is not empty", dir);
                        return -ENOTEMPTY;
                }
        }
        r = user_lookup(cfg->os_user, &uid, &gid, NULL);
        if (r < 0) {
                *ret_error = xasprintf("OS user '%s' not found", cfg->os_user);
                return r;
        }
        if (make_owned_dir(real, uid, gid, ret_error) < 0)
                return -EIO;
        /* The restored copy is the database's data: as protected as the original, or not made. */
        r = encryption_protect_dir(cfg, name, real, &err);
        if (r < 0) {
                *ret_error = xasprintf("refusing to restore into %s: it cannot be encrypted like %s's data (%s); "
                                       "restore under %s/%s/ or %s/",
                                       dir, name, err, cfg->data_root, name, cfg->backup_root);
                if (made)
                        (void) rmdir(real);
                return r;
        }
        /* The WAL being written now holds the latest commits: have it archived first (best effort). */
        {
                const char *check[] = { "check", NULL };
                _cleanup_free_ char *cerr = NULL;
                if (pgbackrest_run(cfg, name, check, NULL, &cerr) < 0)
                        fprintf(out, "note: could not archive the current WAL first (%s); recovery reaches only what "
                                "the repository has\n", cerr);
        }
        r = pgbackrest_info(cfg, name, &info, ret_error);
        if (r < 0)
                return r;
        pg1 = xasprintf("--pg1-path=%s", real);
        topt = xasprintf("--target=%s", target);
        {
                const char *args[] = { pg1, "--type=time", topt, "--target-action=promote", "--archive-mode=off",
                                       "restore", NULL };
                r = pgbackrest_run(cfg, name, args, NULL, &err);
        }
        if (r < 0) {
                *ret_error = xasprintf("database '%s': restore failed: %s", name, err);
                pgbr_info_done(&info);
                return r;
        }
        /* Its own port and socket, no TCP, no TLS files of the live cluster: it can run next to it. */
        port = free_port();
        auto_conf = xasprintf("%s/postgresql.auto.conf", real);
        if (read_full_file(auto_conf, 1 << 20, &text, NULL) < 0)
                text = xstrdup("");
        added = xasprintf("%s\n# Added by agentctl backup restore: a copy beside the live cluster\n"
                          "port = %d\nlisten_addresses = ''\nunix_socket_directories = '%s'\nssl = off\n"
                          "archive_mode = 'off'\n",
                          text, port, real);
        r = write_owned(auto_conf, added, uid, gid, ret_error);
        if (r < 0) {
                pgbr_info_done(&info);
                return r;
        }
        fprintf(out,
                "restored database '%s' into %s, stopped: when started it replays WAL up to %s and is promoted "
                "(archive_mode off, Unix socket only)\n"
                "start it:  runuser -u %s -- %s/pg_ctl -D %s -l %s/startup.log start\n"
                "connect:   psql -h %s -p %d -U postgres -d %s   (as %s or root)\n",
                name, real, target, cfg->os_user, cfg->postgres_bin_dir, real, real, real, port, name, cfg->os_user);
        pgbr_info_done(&info);
        return 0;
}
