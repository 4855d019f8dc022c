/* PostgreSQL clusters: initdb into a temporary directory and rename (a crash never leaves a
 * half-made cluster where a real one is expected), owned config files, start/reload/restart. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "backup.h"
#include "failpoint.h"
#include "fileio.h"
#include "pg.h"
#include "pgbackrest.h"
#include "pgconf.h"
#include "postgres.h"
#include "proc.h"
#include "replication.h"
#include "service.h"

uint64_t host_memory_bytes(const agent_config *cfg) {
        _cleanup_fclose_ FILE *f = NULL;
        char line[256];

        if (cfg->memory_bytes)
                return cfg->memory_bytes;
        f = fopen("/proc/meminfo", "re");
        while (f && fgets(line, sizeof(line), f)) {
                unsigned long long kb;
                if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
                        return (uint64_t) kb << 10;
        }
        return 1ULL << 30;
}

int host_cpus(const agent_config *cfg) {
        long n;

        if (cfg->cpus > 0)
                return cfg->cpus;
        n = sysconf(_SC_NPROCESSORS_ONLN);
        return n > 0 && n <= 65536 ? (int) n : 1;
}

static bool exists(const char *path) {
        struct stat st;
        return lstat(path, &st) == 0;
}

static bool dir_is_empty(const char *path) {
        DIR *d = opendir(path);
        struct dirent *de;
        bool empty = true;

        if (!d)
                return false;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
                        empty = false;
                        break;
                }
        closedir(d);
        return empty;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path) < 0 ? -1 : 0;
}

/* Remove a directory tree that is ours by construction (an interrupted initdb). */
static int rm_rf(const char *path) {
        return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0 ? -errno : 0;
}

static void fsync_path(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0)
                (void) fsync(fd);
}

static int run_initdb(const agent_config *cfg, const cluster_paths *p, char **ret_error) {
        _cleanup_free_ char *bin = xasprintf("%s/initdb", cfg->postgres_bin_dir);
        const char *argv[] = { bin, "-D", p->initdb_tmp, "-U", "postgres", "--data-checksums", "-E", "UTF8",
                               "--locale=C.UTF-8", "--auth-local=peer", "--auth-host=reject", "--no-instructions",
                               NULL };
        proc_result res = {};
        char line[512];
        int r;

        r = proc_run(argv, cfg->os_user, "/", NULL, &res);
        if (r < 0) {
                *ret_error = xasprintf("cannot run %s: %s", bin, strerror(-r));
                return r;
        }
        if (res.exit_status != 0) {
                *ret_error = xasprintf("initdb failed (exit %d): %s", res.exit_status, proc_last_line(&res, line, sizeof(line)));
                proc_result_done(&res);
                return -EIO;
        }
        proc_result_done(&res);
        return 0;
}

/* Write the three files the agent owns; returns >0 when any of them changed. */
static int write_config(const agent_config *cfg, const doc_database *db, const pgconf_tls *tls, const char *dir,
                        const cluster_paths *p, uid_t uid, gid_t gid, char **ret_error) {
        /* Archiving only with a passphrase: without one the backup reconciler cannot write the
         * repository's config, and every archive_command would fail. */
        _cleanup_free_ char *archive = db->backup.enabled && db->backup.passphrase
                                             ? pgbackrest_archive_command(cfg, db->name)
                                             : NULL;
        _cleanup_free_ char *conninfo = replication_is_standby(db) ? replication_conninfo(cfg, db) : NULL;
        _cleanup_free_ char *slot = conninfo ? replication_slot_name(cfg->host) : NULL;
        pgconf_input in = {
                .db = db,
                .listen_addresses = (const char *const *) cfg->addresses,
                .n_listen = cfg->n_addresses,
                .socket_dir = p->socket_dir,
                .memory_bytes = host_memory_bytes(cfg),
                .os_user = cfg->os_user,
                .tls = tls,
                .archive_command = archive,
                .host = cfg->host,
                .primary_conninfo = conninfo,
                .primary_slot_name = slot,
        };
        struct {
                const char *name;
                char *text;
        } files[] = {
                { PGCONF_MANAGED_FILE, pgconf_managed(&in) },
                { "pg_hba.conf", pgconf_hba(&in) },
                { "pg_ident.conf", pgconf_ident(&in) },
        };
        int changed = 0, r = 0;

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                _cleanup_free_ char *path = xasprintf("%s/%s", dir, files[i].name);
                int k = r < 0 ? 0 : write_file_atomic_owned(path, files[i].text, strlen(files[i].text), 0600, uid, gid);
                if (k < 0 && r >= 0) {
                        *ret_error = xasprintf("cannot write %s: %s", path, strerror(-k));
                        r = k;
                }
                changed |= k > 0;
                free(files[i].text);
        }
        return r < 0 ? r : changed;
}

/* postgresql.conf from initdb gets one line: the include of the file we own. */
static int add_include(const char *dir, uid_t uid, gid_t gid, char **ret_error) {
        _cleanup_free_ char *path = xasprintf("%s/postgresql.conf", dir), *text = NULL, *out = NULL;
        size_t size;
        int r;

        r = read_full_file(path, 1 << 20, &text, &size);
        if (r < 0) {
                *ret_error = xasprintf("cannot read %s: %s", path, strerror(-r));
                return r;
        }
        if (strstr(text, "include = '" PGCONF_MANAGED_FILE "'"))
                return 0;
        out = xasprintf("%s\n# Added by infrastream-agent: the settings it manages.\ninclude = '" PGCONF_MANAGED_FILE "'\n",
                        text);
        r = write_file_atomic_owned(path, out, strlen(out), 0600, uid, gid);
        if (r < 0)
                *ret_error = xasprintf("cannot write %s: %s", path, strerror(-r));
        return r;
}

/* A stopped standby copy that can no longer stream from the primary (its slot was dropped while
 * this host was not a member and the WAL it needs is gone, or it is of another system or timeline
 * history) would retry forever: it is moved aside to data.stale-<UTC time>, never deleted, and
 * ensure_cluster clones the primary again. A copy that is a primary is check_role's (demotion);
 * when the primary cannot be asked, the copy is started as it is and the next pass asks again. */
static int set_aside_stale_copy(const agent_config *cfg, const doc_database *db, const cluster_paths *p, uid_t uid,
                                gid_t gid, results *res) {
        _cleanup_free_ char *version = xasprintf("%s/PG_VERSION", p->data), *signal = xasprintf("%s/standby.signal", p->data);
        _cleanup_free_ char *why = NULL, *err = NULL, *aside = NULL;
        bool running = true;
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;

        if (!replication_is_standby(db) || !exists(version) || !exists(signal))
                return 0;
        if (service_running(cfg, db->name, p, &running, &err) < 0 || running)
                return 0;
        if (replication_copy_follows(cfg, db, p->data, uid, gid, &why, &err) != 0)
                return 0;
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
        aside = xasprintf("%s/data.stale-%s", p->base, stamp);
        if (rename(p->data, aside) < 0) {
                int e = -errno;
                results_add(res, "cluster", db->name, RES_FAILED, "this host's copy cannot follow the primary '%s' (%s), "
                            "and cannot be moved aside to %s: %s", db->replication->primary, why, aside, strerror(-e));
                return e;
        }
        fsync_path(p->base);
        results_add(res, "cluster", db->name, RES_CHANGED,
                    "this host's copy cannot follow the primary '%s' (%s): moved aside to %s, to be cloned again",
                    db->replication->primary, why, aside);
        return 0;
}

/* Make <data> a cluster: 1 when it was created, 0 when it existed. Never touches an existing
 * cluster; a leftover data.initdb (data.basebackup) is an initdb (clone) of ours that a crash
 * interrupted: redone. A standby is never initdb'd: it is a clone of its primary, made again from
 * the primary whenever its data directory is gone (a lost replica). */
static int ensure_cluster(const agent_config *cfg, const doc_database *db, const pgconf_tls *tls, const cluster_paths *p,
                          uid_t uid, gid_t gid, bool *ret_redone, char **ret_error) {
        _cleanup_free_ char *version = xasprintf("%s/PG_VERSION", p->data);
        bool standby = replication_is_standby(db);
        _cleanup_free_ char *clone_tmp = xasprintf("%s/data.basebackup", p->base);
        const char *tmp = standby ? clone_tmp : p->initdb_tmp;
        int r;

        if (exists(version))
                return 0;
        if (exists(p->data) && !dir_is_empty(p->data)) {
                *ret_error = xasprintf("%s exists but is not a PostgreSQL cluster; refusing to touch it", p->data);
                return -EEXIST;
        }
        if (exists(tmp)) {
                r = rm_rf(tmp);
                if (r < 0) {
                        *ret_error = xasprintf("cannot remove the interrupted %s in %s: %s", standby ? "clone" : "initdb",
                                               tmp, strerror(-r));
                        return r;
                }
                *ret_redone = true;
        }
        if (standby) {
                r = replication_clone(cfg, db, tmp, uid, gid, ret_error);
                if (r < 0) {
                        if (exists(tmp))
                                (void) rm_rf(tmp);
                        return r;
                }
        } else {
                r = run_initdb(cfg, p, ret_error);
                if (r < 0)
                        return r;
        }
        failpoint("initdb-before-rename");
        r = add_include(tmp, uid, gid, ret_error);
        if (r < 0)
                return r;
        /* The cluster's first start already has our config, hba and ident: never a permissive window. */
        r = write_config(cfg, db, tls, tmp, p, uid, gid, ret_error);
        if (r < 0)
                return r;
        if (standby) {
                _cleanup_free_ char *signal = xasprintf("%s/standby.signal", tmp);
                r = write_file_atomic_owned(signal, "", 0, 0600, uid, gid);
                if (r < 0) {
                        *ret_error = xasprintf("cannot write %s: %s", signal, strerror(-r));
                        return r;
                }
        }
        if (exists(p->data) && rmdir(p->data) < 0) {
                *ret_error = xasprintf("cannot replace empty %s: %s", p->data, strerror(errno));
                return -errno;
        }
        if (rename(tmp, p->data) < 0) {
                *ret_error = xasprintf("cannot move the new cluster into %s: %s", p->data, strerror(errno));
                return -errno;
        }
        fsync_path(p->base);
        failpoint("after-initdb");
        return 1;
}

/* An existing cluster is what its standby.signal says; the document may say otherwise. Two
 * changes are made, the steps of a switchover the controller orders: a primary whose document
 * names another member primary is demoted (after it, the caller writes the standby's config and
 * starts it), a standby whose document makes it the primary is promoted (the caller then writes
 * the primary's config). Anything else, a cluster without replication that the document makes a
 * standby say, is refused with nothing touched: a primary_conninfo written into a primary, or
 * removed from a standby, would take effect at the next restart. */
static int check_role(const agent_config *cfg, const doc_database *db, const cluster_paths *p, uid_t uid, gid_t gid,
                      results *res) {
        _cleanup_free_ char *signal = xasprintf("%s/standby.signal", p->data), *err = NULL, *lsn = NULL;
        bool is_standby = exists(signal), want_standby = replication_is_standby(db);
        int r, timeline = 0;

        if (is_standby == want_standby)
                return 0;
        if (!db->replication) {
                results_add(res, "replication", db->name, RES_FAILED,
                            "this host's copy is a standby, the document has no replication: nothing was changed");
                return -EBUSY;
        }
        if (want_standby) {
                r = replication_demote(cfg, db, uid, gid, &lsn, &err);
                if (r < 0) {
                        results_add(res, "replication", db->name, RES_FAILED, "demoting to a standby of '%s': %s",
                                    db->replication->primary, err ? err : strerror(-r));
                        return r;
                }
                results_add(res, "replication", db->name, RES_CHANGED, "demoted: shut down at %s, now a standby of %s",
                            lsn, db->replication->primary);
                return 0;
        }
        r = replication_promote(cfg, db, &timeline, &err);
        if (r < 0) {
                results_add(res, "replication", db->name, RES_FAILED, "promoting: %s", err ? err : strerror(-r));
                return r;
        }
        results_add(res, "replication", db->name, RES_CHANGED, "promoted: primary on timeline %d", timeline);
        return 0;
}

/* The port the running postmaster listens on (postmaster.pid, line 4): after a port change it
 * differs from the document's until the restart. */
static int live_port(const cluster_paths *p, int fallback) {
        _cleanup_free_ char *path = xasprintf("%s/postmaster.pid", p->data), *text = NULL;
        const char *line = NULL;
        int port;

        if (read_full_file(path, 4096, &text, NULL) < 0)
                return fallback;
        line = text;
        for (int i = 0; i < 3 && line; i++) {
                line = strchr(line, '\n');
                if (line)
                        line++;
        }
        return line && sscanf(line, "%d", &port) == 1 && port > 0 ? port : fallback;
}

/* A fresh connection and the time the server last read its configuration files. */
static int conf_load_time(const cluster_paths *p, int port, pg_conn **ret_conn, char **ret_time, char **ret_error) {
        _cleanup_pg_ pg_conn *c = NULL;
        _cleanup_rows_ pg_rows *rows = NULL;
        int r;

        r = pg_connect(p->socket_dir, port, "postgres", "postgres", &c, ret_error);
        if (r < 0)
                return r;
        r = pg_exec(c, "SELECT pg_conf_load_time()::text", NULL, 0, &rows, ret_error);
        if (r < 0)
                return r;
        *ret_time = xstrdup(pg_rows_get(rows, 0, 0));
        *ret_conn = TAKE_PTR(c);
        return 0;
}

/* Reload through SQL, wait until the server has read the files, report hba errors and whether
 * a restart is needed. Returns 1 when a restart is needed. */
static int reload_and_check(const agent_config *cfg, const doc_database *db, const cluster_paths *p, char **ret_error) {
        _cleanup_pg_ pg_conn *c = NULL;
        _cleanup_rows_ pg_rows *rows = NULL;
        _cleanup_free_ char *t0 = NULL;
        int port = live_port(p, db->port), r;

        r = conf_load_time(p, port, &c, &t0, ret_error);
        if (r < 0)
                return r;
        r = pg_exec(c, "SELECT pg_reload_conf()", NULL, 0, NULL, ret_error);
        if (r < 0)
                return r;
        /* The postmaster rereads the files asynchronously; new backends see the new load time. */
        for (int i = 0; i < 200; i++) {
                _cleanup_pg_ pg_conn *c2 = NULL;
                _cleanup_free_ char *t = NULL;

                usleep(10000 + i * 1000);
                r = conf_load_time(p, port, &c2, &t, ret_error);
                if (r < 0)
                        return r;
                if (!streq(t, t0)) {
                        pg_close(c);
                        c = TAKE_PTR(c2);
                        break;
                }
        }
        r = pg_exec(c,
                    "SELECT coalesce(string_agg(format('line %s: %s', line_number, error), '; '), '') "
                    "FROM pg_hba_file_rules WHERE error IS NOT NULL",
                    NULL, 0, &rows, ret_error);
        if (r < 0)
                return r;
        if (*pg_rows_get(rows, 0, 0)) {
                *ret_error = xasprintf("pg_hba.conf rejected by PostgreSQL: %s", pg_rows_get(rows, 0, 0));
                return -EINVAL;
        }
        pg_rows_free(TAKE_PTR(rows));
        r = pg_exec(c, "SELECT count(*) FROM pg_settings WHERE pending_restart", NULL, 0, &rows, ret_error);
        if (r < 0)
                return r;
        return !streq(pg_rows_get(rows, 0, 0), "0");
}

int postgres_reconcile(const agent_config *cfg, const doc_database *db, const pgconf_tls *tls, results *res) {
        _cleanup_free_ char *err = NULL;
        cluster_paths p = {};
        bool redone = false, running = false;
        int created, changed, r;
        uid_t uid;
        gid_t gid;

        cluster_paths_init(&p, cfg, db->name);
        r = user_lookup(cfg->os_user, &uid, &gid, NULL);
        if (r < 0) {
                err = xasprintf("OS user '%s' not found", cfg->os_user);
                goto fail;
        }
        /* The data root is traversed by the OS user; each database's own directory is 0700. */
        r = mkdir_root(cfg->data_root);
        if (r < 0) {
                err = xasprintf("cannot create data root %s: %s", cfg->data_root, strerror(-r));
                goto fail;
        }
        r = mkdir_owned(p.base, 0700, uid, gid);
        if (r < 0) {
                err = xasprintf("cannot create %s: %s", p.base, strerror(-r));
                goto fail;
        }
        r = set_aside_stale_copy(cfg, db, &p, uid, gid, res);
        if (r < 0) {
                cluster_paths_done(&p);
                return r;
        }
        r = created = ensure_cluster(cfg, db, tls, &p, uid, gid, &redone, &err);
        if (r < 0)
                goto fail;
        if (!created) {
                r = check_role(cfg, db, &p, uid, gid, res);
                if (r < 0) {
                        cluster_paths_done(&p);
                        return r;
                }
        }
        r = mkdir_owned(p.socket_dir, 0700, uid, gid);
        if (r < 0) {
                err = xasprintf("cannot create %s: %s", p.socket_dir, strerror(-r));
                goto fail;
        }
        r = changed = write_config(cfg, db, tls, p.data, &p, uid, gid, &err);
        if (r < 0)
                goto fail;
        failpoint("after-config");
        if (cfg->backend == SERVICE_SYSTEMD) {
                /* The unit makes the local repository writable for archive_command only when it
                 * exists as the server starts; the backup step, which would make it, comes later. */
                _cleanup_free_ char *repo = service_repository_path(cfg, db);
                r = repo ? backup_make_repository(cfg, db->name, uid, gid, &err) : 0;
                if (r < 0)
                        goto fail;
        }
        r = service_install(cfg, db, &p, &err);
        if (r < 0)
                goto fail;
        r = service_running(cfg, db->name, &p, &running, &err);
        if (r < 0)
                goto fail;

        if (!running) {
                r = service_start(cfg, db->name, &p, &err);
                if (r < 0)
                        goto fail;
                failpoint("after-start");
                if (created && replication_is_standby(db))
                        results_add(res, "cluster", db->name, RES_CREATED,
                                    "cloned from the primary '%s' (pg_basebackup), started as a standby%s",
                                    db->replication->primary, redone ? " (interrupted clone redone)" : "");
                else
                        results_add(res, "cluster", db->name, created ? RES_CREATED : RES_CHANGED, "%s%s",
                                    created ? "initdb, started" : "started", redone ? " (interrupted initdb redone)" : "");
        } else if (changed) {
                r = reload_and_check(cfg, db, &p, &err);
                if (r < 0)
                        goto fail;
                if (r > 0) {
                        r = service_restart(cfg, db->name, &p, &err);
                        if (r < 0)
                                goto fail;
                        results_add(res, "cluster", db->name, RES_CHANGED, "restarted: a setting needs it");
                } else
                        results_add(res, "cluster", db->name, RES_CHANGED, "configuration reloaded");
        } else
                results_add(res, "cluster", db->name, RES_UNCHANGED, NULL);
        cluster_paths_done(&p);
        return 0;
fail:
        results_add(res, "cluster", db->name, RES_FAILED, "%s", err ? err : strerror(-r));
        cluster_paths_done(&p);
        return r < 0 ? r : -EIO;
}

int postgres_retain(const agent_config *cfg, const char *db, results *res) {
        _cleanup_free_ char *err = NULL;
        cluster_paths p = {};
        bool running = false;
        int r;

        cluster_paths_init(&p, cfg, db);
        r = service_running(cfg, db, &p, &running, &err);
        if (r >= 0 && running)
                r = service_stop(cfg, db, &p, &err);
        if (r < 0)
                results_add(res, "cluster", db, RES_FAILED, "no longer in the document, but stopping failed: %s",
                            err ? err : strerror(-r));
        else
                results_add(res, "cluster", db, RES_RETAINED, "no longer in the document: %s, data kept in %s",
                            running ? "stopped" : "not running", p.data);
        cluster_paths_done(&p);
        return r;
}

int postgres_list_clusters(const agent_config *cfg, char ***ret, size_t *ret_n) {
        DIR *d = opendir(cfg->data_root);
        struct dirent *de;
        char **v = NULL;
        size_t n = 0;

        if (!d) {
                *ret = NULL;
                *ret_n = 0;
                return errno == ENOENT ? 0 : -errno;
        }
        while ((de = readdir(d))) {
                _cleanup_free_ char *version = NULL;
                if (de->d_name[0] == '.')
                        continue;
                version = xasprintf("%s/%s/data/PG_VERSION", cfg->data_root, de->d_name);
                if (!exists(version))
                        continue;
                v = xrealloc(v, (n + 1) * sizeof(char *));
                v[n++] = xstrdup(de->d_name);
        }
        closedir(d);
        *ret = v;
        *ret_n = n;
        return 0;
}
