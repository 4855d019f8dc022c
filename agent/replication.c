/* Streaming replication: slots on the primary, pg_basebackup and primary_conninfo on standbys.
 * The replication password exists only on standbys, in a 0600 passfile: never on a command line,
 * in a log or in a result. */
#include <stdio.h>
#include <sys/stat.h>

#include "fileio.h"
#include "macro.h"
#include "pg.h"
#include "proc.h"
#include "replication.h"
#include "service.h"
#include "strbuf.h"
#include "tls.h"

char *replication_slot_name(const char *host) {
        char *s;

        if (!host || !*host || strlen(REPLICATION_SLOT_PREFIX) + strlen(host) > 63)
                return NULL;
        s = xasprintf(REPLICATION_SLOT_PREFIX "%s", host);
        for (char *p = s + strlen(REPLICATION_SLOT_PREFIX); *p; p++) {
                if (*p == '-')
                        *p = '_';
                else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
                        free(s);
                        return NULL;
                }
        }
        return s;
}

static const doc_member *primary_member(const doc_replication *r) {
        for (size_t i = 0; r && r->primary && i < r->n_members; i++)
                if (streq(r->members[i].host, r->primary))
                        return &r->members[i];
        return NULL;
}

/* A conninfo value: single-quoted, with ' and \ escaped by a backslash. */
static void conninfo_value(strbuf *b, const char *key, const char *v) {
        strbuf_printf(b, "%s%s='", b->len ? " " : "", key);
        for (const char *p = v; *p; p++)
                strbuf_printf(b, *p == '\'' || *p == '\\' ? "\\%c" : "%c", *p);
        strbuf_append(b, "'");
}

static char *passfile_path(const agent_config *cfg, const char *db) {
        return xasprintf("%s/%s/" REPLICATION_PASSFILE, cfg->data_root, db);
}

char *replication_conninfo(const agent_config *cfg, const doc_database *db) {
        const doc_member *m = primary_member(db->replication);
        _cleanup_free_ char *port = NULL, *passfile = NULL;
        tls_paths tp = {};
        strbuf b = {};

        if (!m)
                return NULL;
        port = xasprintf("%d", db->port);
        passfile = passfile_path(cfg, db->name);
        tls_paths_init(&tp, cfg, db->name);
        /* The primary's certificate carries the database's name, as for any client: verify-full
         * against the name, the address only says where to connect. */
        conninfo_value(&b, "host", db->hostname);
        conninfo_value(&b, "hostaddr", m->address);
        conninfo_value(&b, "port", port);
        conninfo_value(&b, "user", DOC_REPLICATION_USER);
        conninfo_value(&b, "sslmode", "verify-full");
        conninfo_value(&b, "sslrootcert", tp.ca);
        conninfo_value(&b, "passfile", passfile);
        conninfo_value(&b, "application_name", cfg->host);
        conninfo_value(&b, "connect_timeout", "5");
        tls_paths_done(&tp);
        return strbuf_steal(&b);
}

/* The passfile: "*:*:*:user:password", ':' and '\' escaped (libpq's .pgpass syntax). */
static int write_passfile(const agent_config *cfg, const doc_database *db, uid_t uid, gid_t gid, char **ret_error) {
        _cleanup_free_ char *path = passfile_path(cfg, db->name);
        const char *pw = db->replication->password;
        size_t cap = 64 + 2 * strlen(pw), n;
        _cleanup_erase_ char *text = xmalloc(cap);
        int r;

        n = (size_t) snprintf(text, cap, "*:*:*:" DOC_REPLICATION_USER ":");
        for (const char *p = pw; *p; p++) {
                if (*p == ':' || *p == '\\')
                        text[n++] = '\\';
                text[n++] = *p;
        }
        text[n++] = '\n';
        text[n] = '\0';
        r = write_file_atomic_owned(path, text, n, 0600, uid, gid);
        explicit_bzero(text, cap);
        if (r < 0)
                *ret_error = xasprintf("cannot write %s: %s", path, strerror(-r));
        return r;
}

/* What pg_basebackup said went wrong: its last "error:" line, not libpq's tab-indented hint after
 * it nor "removing data directory" after that; else its last line. */
static const char *clone_error(const proc_result *res, char *buf, size_t size) {
        const char *s = res->output ? res->output : "", *found = NULL, *end;

        for (const char *l = s; *l; l = *end ? end + 1 : end) {
                end = strchrnul(l, '\n');
                if (l[0] != '\t' && l[0] != ' ' && memmem(l, (size_t) (end - l), "error:", 6))
                        found = l;
        }
        if (!found)
                return proc_last_line(res, buf, size);
        end = strchrnul(found, '\n');
        snprintf(buf, size, "%.*s", (int) (end - found), found);
        return buf;
}

int replication_clone(const agent_config *cfg, const doc_database *db, const char *target, uid_t uid, gid_t gid,
                      char **ret_error) {
        const doc_member *m = primary_member(db->replication);
        _cleanup_free_ char *bin = xasprintf("%s/pg_basebackup", cfg->postgres_bin_dir);
        _cleanup_free_ char *conninfo = NULL, *slot = replication_slot_name(cfg->host);
        tls_paths tp = {};
        proc_result res = {};
        struct stat st;
        char line[512];
        int r;

        if (!m || !db->replication->password) {
                *ret_error = xstrdup("the document names no primary among the members, or no replication password");
                return -EINVAL;
        }
        if (!slot) {
                *ret_error = xasprintf("host name '%s' cannot make a replication slot name", cfg->host);
                return -EINVAL;
        }
        tls_paths_init(&tp, cfg, db->name);
        r = stat(tp.ca, &st) < 0 ? -errno : 0;
        if (r < 0)
                *ret_error = xasprintf("waiting for the CA certificate in %s: the standby verifies the primary %s with it",
                                       tp.ca, m->host);
        tls_paths_done(&tp);
        if (r < 0)
                return -EAGAIN;
        r = write_passfile(cfg, db, uid, gid, ret_error);
        if (r < 0)
                return r;
        conninfo = replication_conninfo(cfg, db);
        {
                const char *argv[] = { bin, "-d", conninfo, "-D", target, "-X", "stream", "-S", slot,
                                       "--checkpoint=fast", "--no-password", NULL };
                r = proc_run(argv, cfg->os_user, "/", NULL, &res);
        }
        if (r < 0) {
                *ret_error = xasprintf("cannot run %s: %s", bin, strerror(-r));
                return r;
        }
        if (res.exit_status != 0) {
                *ret_error = xasprintf("waiting for the primary %s: pg_basebackup failed (exit %d): %s", m->host,
                                       res.exit_status, clone_error(&res, line, sizeof(line)));
                proc_result_done(&res);
                return -EAGAIN;
        }
        proc_result_done(&res);
        return 0;
}

typedef struct live_slot {
        char *name;
        char *active_pid;     /* NULL when no walsender uses it */
} live_slot;

int replication_reconcile(const agent_config *cfg, const doc_database *db, results *res) {
        const doc_replication *rep = db->replication;
        _cleanup_free_ char *err = NULL;
        _cleanup_pg_ pg_conn *c = NULL;
        _cleanup_rows_ pg_rows *rows = NULL;
        cluster_paths p = {};
        char label[160];
        int r;

        if (!replication_is_primary(db))
                return 0;
        cluster_paths_init(&p, cfg, db->name);
        r = pg_connect(p.socket_dir, db->port, "postgres", "postgres", &c, &err);
        cluster_paths_done(&p);
        if (r < 0)
                goto fail;
        r = pg_exec(c,
                    "SELECT slot_name, active_pid::text FROM pg_replication_slots"
                    " WHERE slot_type = 'physical' AND slot_name LIKE '" REPLICATION_SLOT_PREFIX "%' ORDER BY 1",
                    NULL, 0, &rows, &err);
        if (r < 0)
                goto fail;

        /* One slot per standby: WAL it has not received stays on the primary. */
        for (size_t i = 0; i < rep->n_members; i++) {
                const doc_member *m = &rep->members[i];
                _cleanup_free_ char *slot = NULL;
                bool found = false;

                if (streq(m->host, rep->primary))
                        continue;
                slot = replication_slot_name(m->host);
                snprintf(label, sizeof(label), "%s/%s", db->name, slot ? slot : m->host);
                if (!slot) {
                        results_add(res, "replication-slot", label, RES_FAILED,
                                    "host name '%s' cannot make a replication slot name", m->host);
                        continue;
                }
                for (size_t j = 0; j < pg_rows_count(rows); j++)
                        found |= streq(pg_rows_get(rows, j, 0), slot);
                if (found) {
                        results_add(res, "replication-slot", label, RES_UNCHANGED, NULL);
                        continue;
                }
                {
                        const char *params[] = { slot };
                        _cleanup_free_ char *e = NULL;
                        /* Reserved now: the standby's first pg_basebackup streams from it. */
                        if (pg_exec(c, "SELECT pg_create_physical_replication_slot($1, true)", params, 1, NULL, &e) < 0)
                                results_add(res, "replication-slot", label, RES_FAILED, "%s", e);
                        else
                                results_add(res, "replication-slot", label, RES_CREATED, "for standby '%s'", m->host);
                }
        }

        /* Slots of hosts no longer members would hold WAL forever; dropping one loses no data. */
        for (size_t j = 0; j < pg_rows_count(rows); j++) {
                const char *name = pg_rows_get(rows, j, 0), *pid = pg_rows_get(rows, j, 1);
                const char *params[] = { name };
                _cleanup_free_ char *e = NULL;
                bool wanted = false;

                for (size_t i = 0; i < rep->n_members; i++) {
                        _cleanup_free_ char *slot = replication_slot_name(rep->members[i].host);
                        wanted |= !streq(rep->members[i].host, rep->primary) && streq_ptr(slot, name);
                }
                if (wanted)
                        continue;
                snprintf(label, sizeof(label), "%s/%s", db->name, name);
                if (pid) {
                        const char *pp[] = { pid };
                        (void) pg_exec(c, "SELECT pg_terminate_backend($1::int, 5000)", pp, 1, NULL, NULL);
                }
                r = -EIO;
                for (int k = 0; k < 50 && r < 0; k++) {
                        free(e);
                        e = NULL;
                        r = pg_exec(c, "SELECT pg_drop_replication_slot($1)", params, 1, NULL, &e);
                        if (r < 0)
                                usleep(100000);
                }
                if (r < 0)
                        results_add(res, "replication-slot", label, RES_FAILED, "cannot drop: %s", e);
                else
                        results_add(res, "replication-slot", label, RES_REMOVED,
                                    "its host is no longer a member: dropped (it would hold WAL)");
        }
        return 0;
fail:
        results_add(res, "replication", db->name, RES_FAILED, "%s", err ? err : strerror(-r));
        return r < 0 ? r : -EIO;
}

static char *demoted_path(const agent_config *cfg, const char *db) {
        return xasprintf("%s/%s/" REPLICATION_DEMOTED_FILE, cfg->data_root, db);
}

static json_object *int_or_null(const char *s) {
        return s ? json_object_new_int64(strtoll(s, NULL, 10)) : NULL;
}

static json_object *double_or_null(const char *s) {
        return s ? json_object_new_double(strtod(s, NULL)) : NULL;
}

json_object *replication_status(const agent_config *cfg, const doc_database *db) {
        _cleanup_pg_ pg_conn *c = NULL;
        _cleanup_rows_ pg_rows *rows = NULL;
        json_object *o;
        cluster_paths p = {};
        bool standby;
        int r;

        if (!db->replication)
                return NULL;
        o = json_object_new_object();
        cluster_paths_init(&p, cfg, db->name);
        r = pg_connect(p.socket_dir, db->port, "postgres", "postgres", &c, NULL);
        cluster_paths_done(&p);
        /* What the server says, not what the document says: they differ during a promotion. */
        if (r >= 0)
                r = pg_exec(c,
                            "SELECT pg_is_in_recovery(),"
                            "  coalesce((SELECT received_tli FROM pg_stat_wal_receiver),"
                            "           (SELECT timeline_id FROM pg_control_checkpoint()))::text,"
                            "  CASE WHEN pg_is_in_recovery() THEN"
                            "    pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint::text END,"
                            "  CASE WHEN pg_is_in_recovery() THEN"
                            "    CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN '0'"
                            "    ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::text END END,"
                            "  CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn()"
                            "  ELSE pg_current_wal_lsn() END::text",
                            NULL, 0, &rows, NULL);
        if (r < 0) {
                json_object_object_add(o, "role", json_object_new_string(replication_is_standby(db) ? "standby" : "primary"));
                json_object_object_add(o, "timeline", NULL);
                json_object_object_add(o, "lagBytes", NULL);
                json_object_object_add(o, "lagSeconds", NULL);
                return o;
        }
        standby = streq(pg_rows_get(rows, 0, 0), "t");
        json_object_object_add(o, "role", json_object_new_string(standby ? "standby" : "primary"));
        json_object_object_add(o, "timeline", int_or_null(pg_rows_get(rows, 0, 1)));
        json_object_object_add(o, "lagBytes", int_or_null(pg_rows_get(rows, 0, 2)));
        json_object_object_add(o, "lagSeconds", double_or_null(pg_rows_get(rows, 0, 3)));
        /* What a switchover compares: the new primary's replay against the old one's shutdown. */
        json_object_object_add(o, "replayLsn", pg_rows_get(rows, 0, 4) ? json_object_new_string(pg_rows_get(rows, 0, 4)) : NULL);
        {
                _cleanup_free_ char *path = demoted_path(cfg, db->name), *text = NULL;
                if (read_full_file(path, 64, &text, NULL) >= 0) {
                        text[strcspn(text, "\n")] = '\0';
                        json_object_object_add(o, "shutdownLsn", json_object_new_string(text));
                }
        }
        if (!standby) {
                json_object *a = json_object_new_array();
                pg_rows_free(TAKE_PTR(rows));
                if (pg_exec(c,
                            "SELECT application_name, state,"
                            "  pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint::text,"
                            "  extract(epoch FROM replay_lag)::text"
                            " FROM pg_stat_replication ORDER BY 1",
                            NULL, 0, &rows, NULL) >= 0)
                        for (size_t i = 0; i < pg_rows_count(rows); i++) {
                                json_object *s = json_object_new_object();
                                json_object_object_add(s, "host", json_object_new_string(strempty(pg_rows_get(rows, i, 0))));
                                json_object_object_add(s, "state", json_object_new_string(strempty(pg_rows_get(rows, i, 1))));
                                json_object_object_add(s, "lagBytes", int_or_null(pg_rows_get(rows, i, 2)));
                                json_object_object_add(s, "lagSeconds", double_or_null(pg_rows_get(rows, i, 3)));
                                json_object_array_add(a, s);
                        }
                json_object_object_add(o, "standbys", a);
        }
        return o;
}


/* "Latest checkpoint location:           0/3000060" from pg_controldata's output. */
static int controldata_checkpoint(const agent_config *cfg, const cluster_paths *p, char **ret_lsn, char **ret_error) {
        _cleanup_free_ char *bin = xasprintf("%s/pg_controldata", cfg->postgres_bin_dir);
        const char *argv[] = { bin, "-D", p->data, NULL };
        proc_result res = {};
        const char *l;
        char lsn[32], line[512];
        int r;

        r = proc_run(argv, cfg->os_user, "/", NULL, &res);
        if (r < 0) {
                *ret_error = xasprintf("cannot run %s: %s", bin, strerror(-r));
                return r;
        }
        l = res.output ? strstr(res.output, "Latest checkpoint location:") : NULL;
        if (res.exit_status != 0 || !l || sscanf(l + strlen("Latest checkpoint location:"), " %31[0-9A-F/]", lsn) != 1) {
                *ret_error = xasprintf("pg_controldata (exit %d) gives no checkpoint location: %s", res.exit_status,
                                       proc_last_line(&res, line, sizeof(line)));
                proc_result_done(&res);
                return -EIO;
        }
        proc_result_done(&res);
        *ret_lsn = xstrdup(lsn);
        return 0;
}

int replication_demote(const agent_config *cfg, const doc_database *db, uid_t uid, gid_t gid, char **ret_lsn,
                       char **ret_error) {
        _cleanup_free_ char *lsn = NULL, *signal = NULL, *at = demoted_path(cfg, db->name);
        cluster_paths p = {};
        bool running = false;
        int r;

        if (!primary_member(db->replication) || !db->replication->password) {
                *ret_error = xstrdup("the document names no primary among the members, or no replication password");
                return -EINVAL;
        }
        cluster_paths_init(&p, cfg, db->name);
        signal = xasprintf("%s/standby.signal", p.data);
        /* Fast, not immediate: the walsenders send everything up to the shutdown checkpoint to
         * the connected standbys before they exit; that is what the new primary must replay. */
        r = service_running(cfg, db->name, &p, &running, ret_error);
        if (r >= 0 && running)
                r = service_stop(cfg, db->name, &p, ret_error);
        if (r >= 0)
                r = controldata_checkpoint(cfg, &p, &lsn, ret_error);
        if (r >= 0)
                r = write_passfile(cfg, db, uid, gid, ret_error);
        if (r >= 0) {
                _cleanup_free_ char *text = xasprintf("%s\n", lsn);
                r = write_file_atomic_owned(at, text, strlen(text), 0600, uid, gid);
                if (r < 0)
                        *ret_error = xasprintf("cannot write %s: %s", at, strerror(-r));
        }
        /* Last: until it exists, a retry takes the primary path again and finds it stopped. */
        if (r >= 0) {
                r = write_file_atomic_owned(signal, "", 0, 0600, uid, gid);
                if (r < 0)
                        *ret_error = xasprintf("cannot write %s: %s", signal, strerror(-r));
        }
        cluster_paths_done(&p);
        if (r < 0)
                return r;
        *ret_lsn = TAKE_PTR(lsn);
        return 0;
}

int replication_promote(const agent_config *cfg, const doc_database *db, int *ret_timeline, char **ret_error) {
        _cleanup_free_ char *at = demoted_path(cfg, db->name);
        _cleanup_pg_ pg_conn *c = NULL;
        cluster_paths p = {};
        bool running = false;
        int r;

        cluster_paths_init(&p, cfg, db->name);
        r = service_running(cfg, db->name, &p, &running, ret_error);
        if (r >= 0 && !running)
                r = service_start(cfg, db->name, &p, ret_error);
        if (r >= 0)
                r = pg_connect(p.socket_dir, db->port, "postgres", "postgres", &c, ret_error);
        cluster_paths_done(&p);
        if (r < 0)
                return r;
        /* Promoting with WAL received but not replayed would be safe too (it is replayed first),
         * but a gap means the replay is stuck: a promotion would wait for it unbounded. */
        for (int i = 0;; i++) {
                _cleanup_rows_ pg_rows *rows = NULL;

                r = pg_exec(c,
                            "SELECT pg_is_in_recovery(),"
                            "  coalesce(pg_last_wal_receive_lsn() <= pg_last_wal_replay_lsn(), true)",
                            NULL, 0, &rows, ret_error);
                if (r < 0)
                        return r;
                if (streq(pg_rows_get(rows, 0, 0), "f"))
                        break;
                if (streq(pg_rows_get(rows, 0, 1), "t")) {
                        _cleanup_rows_ pg_rows *pr = NULL;

                        r = pg_exec(c, "SELECT pg_promote(true, 60)", NULL, 0, &pr, ret_error);
                        if (r < 0)
                                return r;
                        if (!streq(pg_rows_get(pr, 0, 0), "t")) {
                                *ret_error = xstrdup("pg_promote() did not finish within 60 s");
                                return -ETIMEDOUT;
                        }
                        break;
                }
                if (i >= 300) {
                        *ret_error = xstrdup("WAL received is still not replayed after 30 s: not promoted");
                        return -EAGAIN;
                }
                usleep(100000);
        }
        {
                _cleanup_rows_ pg_rows *rows = NULL;

                r = pg_exec(c, "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int::text",
                            NULL, 0, &rows, ret_error);
                if (r < 0)
                        return r;
                *ret_timeline = atoi(pg_rows_get(rows, 0, 0));
        }
        /* A primary again: the checkpoint it was demoted at no longer means anything. */
        (void) unlink(at);
        return 0;
}

/* One field of pg_controldata's output ("Label:   value"), or false. */
static bool controldata_field(const char *out, const char *label, char *buf, size_t size) {
        const char *l = out ? strstr(out, label) : NULL;
        const char *end;

        if (!l)
                return false;
        l += strlen(label);
        l += strspn(l, " \t");
        end = strchrnul(l, '\n');
        if (end == l || (size_t) (end - l) >= size)
                return false;
        snprintf(buf, size, "%.*s", (int) (end - l), l);
        return true;
}

static uint64_t lsn_value(const char *lsn) {
        unsigned hi = 0, lo = 0;
        return sscanf(lsn, "%X/%X", &hi, &lo) == 2 ? ((uint64_t) hi << 32) | lo : 0;
}

int replication_copy_follows(const agent_config *cfg, const doc_database *db, const char *data, uid_t uid, gid_t gid,
                             char **ret_why, char **ret_error) {
        _cleanup_free_ char *bin = xasprintf("%s/pg_controldata", cfg->postgres_bin_dir), *conninfo = NULL;
        const char *argv[] = { bin, "-D", data, NULL };
        char sysid[32], redo[32], redo_tli[16], min[32], min_tli[16], line[512];
        const char *lsn, *tli;
        proc_result res = {};
        int r;

        r = proc_run(argv, cfg->os_user, "/", NULL, &res);
        if (r < 0) {
                *ret_error = xasprintf("cannot run %s: %s", bin, strerror(-r));
                return r;
        }
        if (res.exit_status != 0 || !controldata_field(res.output, "Database system identifier:", sysid, sizeof(sysid)) ||
            !controldata_field(res.output, "Latest checkpoint's REDO location:", redo, sizeof(redo)) ||
            !controldata_field(res.output, "Latest checkpoint's TimeLineID:", redo_tli, sizeof(redo_tli)) ||
            !controldata_field(res.output, "Minimum recovery ending location:", min, sizeof(min)) ||
            !controldata_field(res.output, "Min recovery ending loc's timeline:", min_tli, sizeof(min_tli))) {
                *ret_error = xasprintf("pg_controldata (exit %d) does not say where the copy is: %s", res.exit_status,
                                       proc_last_line(&res, line, sizeof(line)));
                proc_result_done(&res);
                return -EIO;
        }
        proc_result_done(&res);
        /* Where it will ask the primary for WAL: at least past what it must replay to be consistent
         * (everything before it is in its own pg_wal); a stopped standby is usually exactly there. */
        if (lsn_value(min) > lsn_value(redo)) {
                lsn = min;
                tli = min_tli;
        } else {
                lsn = redo;
                tli = redo_tli;
        }
        r = write_passfile(cfg, db, uid, gid, ret_error);
        if (r < 0)
                return r;
        conninfo = replication_conninfo(cfg, db);
        if (!conninfo) {
                *ret_error = xstrdup("the document names no primary among the members");
                return -EINVAL;
        }
        return pg_replication_probe(conninfo, sysid, (unsigned) strtoul(tli, NULL, 10), lsn, ret_why, ret_error);
}
