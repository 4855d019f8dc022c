/* Backup schedules: systemd timer/service units, or the daemon's own loop with the same OnCalendar
 * expressions evaluated by proto/calendar.c. */
#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "calendar.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "proc.h"
#include "schedule.h"
#include "state.h"
#include "strbuf.h"
#include "systemd.h"

#ifndef AGENTCTL_PATH
#define AGENTCTL_PATH "/usr/bin/agentctl" /* Makefile.am passes $(bindir)/agentctl */
#endif
#define USEC_PER_SEC INT64_C(1000000)
#define SCHEDULE_FILE "schedule.json"
#define SCHEDULE_FILE_MAX (4u << 20)
/* Elapses looked at for the interval: enough for weekday lists and month lengths. */
#define INTERVAL_SAMPLES 12

static const char *const kind_names[_SCHEDULE_KIND_MAX] = { [SCHEDULE_KIND_FULL] = "full", [SCHEDULE_KIND_DIFF] = "diff" };

const char *schedule_kind_to_string(schedule_kind k) {
        return k >= 0 && k < _SCHEDULE_KIND_MAX ? kind_names[k] : NULL;
}

const char *schedule_expression(const doc_backup *b, schedule_kind k) {
        if (k == SCHEDULE_KIND_FULL)
                return SCHEDULE_FULL;
        return b->schedule && *b->schedule ? b->schedule : SCHEDULE_DIFF_DEFAULT;
}

static int parse(const char *expr, calendar_spec **ret, char **ret_error) {
        _cleanup_free_ char *err = NULL;
        int r = calendar_spec_parse(expr, ret, &err);

        if (r < 0 && ret_error)
                *ret_error = err ? TAKE_PTR(err) : xasprintf("'%.100s': invalid calendar expression", expr);
        return r;
}

static int next_of(const calendar_spec *c, const char *expr, int64_t after, int64_t *ret, char **ret_error) {
        int r = calendar_spec_next(c, after, ret);

        if (r == -ENOENT && ret_error)
                *ret_error = xasprintf("'%.100s' never elapses again", expr);
        return r;
}

int schedule_next(const char *expr, int64_t after_usec, int64_t *ret_usec, char **ret_error) {
        _cleanup_(calendar_spec_freep) calendar_spec *c = NULL;
        int r = parse(expr, &c, ret_error);

        if (r < 0)
                return r;
        return next_of(c, expr, after_usec, ret_usec, ret_error);
}

int schedule_interval(const char *expr, int64_t after_usec, int64_t *ret_usec, char **ret_error) {
        _cleanup_(calendar_spec_freep) calendar_spec *c = NULL;
        int64_t prev, next, longest = 0;
        int r = parse(expr, &c, ret_error);

        if (r < 0)
                return r;
        r = next_of(c, expr, after_usec, &prev, ret_error);
        if (r < 0)
                return r;
        for (int i = 0; i < INTERVAL_SAMPLES; i++) {
                r = calendar_spec_next(c, prev, &next);
                if (r == -ENOENT)
                        break; /* a finite series: the gaps seen so far */
                if (r < 0)
                        return r;
                if (next - prev > longest)
                        longest = next - prev;
                prev = next;
        }
        if (longest == 0) {
                if (ret_error)
                        *ret_error = xasprintf("'%.100s' elapses only once: it has no interval", expr);
                return -ENOENT;
        }
        *ret_usec = longest;
        return 0;
}

int schedule_backup_interval(const doc_backup *b, int64_t after_usec, int64_t *ret_usec, char **ret_error) {
        int64_t full, diff;
        int r;

        r = schedule_interval(SCHEDULE_FULL, after_usec, &full, ret_error);
        if (r < 0)
                return r;
        r = schedule_interval(schedule_expression(b, SCHEDULE_KIND_DIFF), after_usec, &diff, NULL);
        /* A differential that never repeats still leaves the weekly full. */
        *ret_usec = r < 0 || full < diff ? full : diff;
        return 0;
}

/* --- units --------------------------------------------------------------------------------------- */

char *schedule_unit_name(const char *db, schedule_kind k, const char *suffix) {
        return xasprintf("infrastream-backup-%s@%s.%s", schedule_kind_to_string(k), db, suffix);
}

int schedule_timer_text(const doc_database *db, schedule_kind k, char **ret_text, char **ret_error) {
        _cleanup_(calendar_spec_freep) calendar_spec *c = NULL;
        _cleanup_free_ char *norm = NULL;
        const char *expr = schedule_expression(&db->backup, k);
        size_t n;
        int r = parse(expr, &c, ret_error);

        if (r < 0)
                return r;
        /* systemd reads an expression without a zone in local time; ours are UTC everywhere. */
        norm = calendar_spec_to_string(c);
        n = strlen(norm);
        *ret_text = xasprintf("# Managed by infrastream-agent: rewritten on every apply, do not edit.\n"
                              "[Unit]\n"
                              "Description=%s backups of database %s (infrastream)\n"
                              "Documentation=man:infrastream-agent(8)\n"
                              "\n"
                              "[Timer]\n"
                              "OnCalendar=%s%s\n"
                              "Persistent=true\n"
                              "RandomizedDelaySec=" SCHEDULE_RANDOM_DELAY "\n"
                              "FixedRandomDelay=true\n"
                              "AccuracySec=1min\n"
                              "\n"
                              "[Install]\n"
                              "WantedBy=timers.target\n",
                              k == SCHEDULE_KIND_FULL ? "Weekly full" : "Differential", db->name, norm,
                              n >= 4 && streq(norm + n - 4, " UTC") ? "" : " UTC");
        return 0;
}

char *schedule_service_text(const agent_config *cfg, const char *agentctl, const char *db, schedule_kind k) {
        _cleanup_(strbuf_done) strbuf cmd = {}, rw = {};
        _cleanup_free_ char *line = NULL, *paths = NULL, *base = xasprintf("%s/%s", cfg->data_root, db);

        systemd_unit_word(&cmd, agentctl);
        strbuf_append(&cmd, " --config ");
        systemd_unit_word(&cmd, cfg->path);
        strbuf_printf(&cmd, " backup run %s --type %s", db, schedule_kind_to_string(k));
        line = strbuf_steal(&cmd);
        /* What `backup run` writes: backups.json in the state directory; pgBackRest's log and lock
         * under <data-root>/<db>; the repository and the drill's copy under <backup-root>. '-': a
         * database whose storage is locked (not mounted) still runs agentctl, which records why. */
        systemd_unit_word(&rw, cfg->state_dir);
        strbuf_append(&rw, " -");
        systemd_unit_word(&rw, base);
        strbuf_append(&rw, " -");
        systemd_unit_word(&rw, cfg->backup_root);
        paths = strbuf_steal(&rw);
        /* No TimeoutStartSec=: a oneshot's is infinity, and a big backup takes hours. Low CPU and
         * I/O priority: the database serves clients meanwhile. Sandboxed like the agent, less what
         * only the agent does (nftables, units, LUKS2); no MemoryDenyWriteExecute=: the drill's
         * PostgreSQL may JIT-compile queries. */
        return xasprintf("# Managed by infrastream-agent: rewritten on every apply, do not edit.\n"
                         "[Unit]\n"
                         "Description=%s backup of database %s (infrastream)\n"
                         "Documentation=man:infrastream-agent(8)\n"
                         "After=infrastream-postgresql@%s.service network-online.target\n"
                         "\n"
                         "[Service]\n"
                         "Type=oneshot\n"
                         "ExecStart=%s\n"
                         "Nice=10\n"
                         "IOSchedulingClass=best-effort\n"
                         "IOSchedulingPriority=7\n"
                         "UMask=0077\n"
                         "ProtectSystem=strict\n"
                         "ReadWritePaths=%s\n"
                         SYSTEMD_UNIT_PROTECT
                         "NoNewPrivileges=yes\n"
                         "CapabilityBoundingSet=CAP_CHOWN CAP_DAC_OVERRIDE CAP_FOWNER CAP_SETUID CAP_SETGID\n"
                         SYSTEMD_UNIT_RESTRICT
                         "SystemCallErrorNumber=EPERM\n",
                         k == SCHEDULE_KIND_FULL ? "Full" : "Differential", db, db, line, paths);
}

/* Next to ourselves in a build tree; installed, the daemon is in sbindir and agentctl in bindir. */
char *schedule_agentctl_path(void) {
        char exe[PATH_MAX], *slash;
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

        if (n > 0) {
                _cleanup_free_ char *sibling = NULL;
                exe[n] = '\0';
                slash = strrchr(exe, '/');
                sibling = xasprintf("%.*s/agentctl", (int) (slash - exe), exe);
                if (access(sibling, X_OK) == 0)
                        return TAKE_PTR(sibling);
        }
        return xstrdup(AGENTCTL_PATH);
}

static char *absolute_config(const agent_config *cfg) {
        char *p = realpath(cfg->path, NULL);
        return p ? p : xstrdup(cfg->path);
}

static const doc_database *find_database(const doc_document *d, const char *name) {
        for (size_t i = 0; i < d->n_databases; i++)
                if (streq(d->databases[i].name, name))
                        return &d->databases[i];
        return NULL;
}

static bool wants_schedule(const doc_document *d, const char *name) {
        const doc_database *db = find_database(d, name);
        return db && db->backup.enabled;
}

/* Writes the four units of one database; 1 when any changed. */
static int write_units(const agent_config *cfg, const char *agentctl, const doc_database *db, char **ret_error) {
        bool changed = false;

        for (schedule_kind k = 0; k < _SCHEDULE_KIND_MAX; k++) {
                _cleanup_free_ char *timer = NULL, *service = NULL, *tname = schedule_unit_name(db->name, k, "timer"),
                                    *sname = schedule_unit_name(db->name, k, "service"), *tpath = NULL,
                                    *spath = NULL;
                int r = schedule_timer_text(db, k, &timer, ret_error);

                if (r < 0)
                        return r;
                service = schedule_service_text(cfg, agentctl, db->name, k);
                tpath = xasprintf("%s/%s", cfg->unit_dir, tname);
                spath = xasprintf("%s/%s", cfg->unit_dir, sname);
                /* The service before its timer: a timer must never name a missing unit. */
                r = write_file_atomic(spath, service, strlen(service), 0644);
                if (r >= 0) {
                        changed = changed || r > 0;
                        r = write_file_atomic(tpath, timer, strlen(timer), 0644);
                        if (r < 0)
                                *ret_error = xasprintf("cannot write %s: %s", tpath, strerror(-r));
                } else
                        *ret_error = xasprintf("cannot write %s: %s", spath, strerror(-r));
                if (r < 0)
                        return r;
                changed = changed || r > 0;
        }
        return changed;
}

/* "infrastream-backup-full@DB.timer" → DB, or NULL for anything else in the unit directory. */
static char *unit_database(const char *file) {
        static const char *const prefixes[] = { "infrastream-backup-full@", "infrastream-backup-diff@" };
        static const char *const suffixes[] = { ".timer", ".service" };

        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++) {
                size_t lp = strlen(prefixes[i]), n = strlen(file);
                if (strncmp(file, prefixes[i], lp) != 0)
                        continue;
                for (size_t j = 0; j < ELEMENTSOF(suffixes); j++) {
                        size_t ls = strlen(suffixes[j]);
                        if (n > lp + ls && streq(file + n - ls, suffixes[j]))
                                return xstrndup(file + lp, n - lp - ls);
                }
        }
        return NULL;
}

/* Databases that have units in unit-dir but should not: sorted, unique. */
static int stale_databases(const agent_config *cfg, const doc_document *d, char ***ret, size_t *ret_n,
                           char **ret_error) {
        DIR *dir = opendir(cfg->unit_dir);
        struct dirent *de;
        char **v = NULL;
        size_t n = 0;

        if (!dir) {
                if (errno == ENOENT) {
                        *ret = NULL;
                        *ret_n = 0;
                        return 0;
                }
                *ret_error = xasprintf("cannot list %s: %s", cfg->unit_dir, strerror(errno));
                return -errno;
        }
        while ((de = readdir(dir))) {
                _cleanup_free_ char *db = unit_database(de->d_name);
                bool seen = false;

                if (!db || wants_schedule(d, db))
                        continue;
                for (size_t i = 0; i < n && !seen; i++)
                        seen = streq(v[i], db);
                if (seen)
                        continue;
                v = xrealloc(v, (n + 1) * sizeof(char *));
                v[n++] = TAKE_PTR(db);
        }
        closedir(dir);
        *ret = v;
        *ret_n = n;
        return 0;
}

/* Stop and disable the timers of db, then remove its units. A backup running now finishes. */
static int remove_units(const agent_config *cfg, const char *db, char **ret_error) {
        _cleanup_free_ char *full = schedule_unit_name(db, SCHEDULE_KIND_FULL, "timer"),
                            *diff = schedule_unit_name(db, SCHEDULE_KIND_DIFF, "timer");
        const char *timers[] = { full, diff };
        int r;

        for (size_t i = 0; i < ELEMENTSOF(timers); i++) {
                bool active = false;
                _cleanup_free_ char *err = NULL;

                /* Unknown to systemd (never loaded): nothing to stop. */
                if (systemd_unit_active(timers[i], &active, &err) >= 0 && active) {
                        r = systemd_unit_call(timers[i], "StopUnit", ret_error);
                        if (r < 0)
                                return r;
                }
        }
        r = systemd_unit_files_enable(timers, ELEMENTSOF(timers), false, ret_error);
        if (r < 0)
                return r;
        for (schedule_kind k = 0; k < _SCHEDULE_KIND_MAX; k++)
                for (int s = 0; s < 2; s++) {
                        _cleanup_free_ char *name = schedule_unit_name(db, k, s ? "service" : "timer"),
                                            *path = xasprintf("%s/%s", cfg->unit_dir, name);
                        if (unlink(path) < 0 && errno != ENOENT) {
                                r = -errno;
                                *ret_error = xasprintf("cannot remove %s: %s", path, strerror(errno));
                                return r;
                        }
                }
        return 0;
}

static int reconcile_direct(const doc_document *d, results *res) {
        int ret = 0;

        for (size_t i = 0; i < d->n_databases; i++) {
                const doc_database *db = &d->databases[i];
                _cleanup_free_ char *err = NULL;

                if (!db->backup.enabled)
                        continue;
                if (parse(schedule_expression(&db->backup, SCHEDULE_KIND_DIFF), NULL, &err) < 0) {
                        results_add(res, "schedule", db->name, RES_FAILED, "backup schedule: %s", err);
                        ret = -EINVAL;
                        continue;
                }
                results_add(res, "schedule", db->name, RES_UNCHANGED, "run by the agent (direct backend)");
        }
        return ret;
}

int schedule_reconcile(const agent_config *cfg, const doc_document *d, results *res) {
        _cleanup_free_ char *agentctl = NULL, *config = NULL, *err = NULL;
        char **stale = NULL;
        size_t n_stale = 0;
        bool reload = false, *written;
        int ret = 0, r;

        if (cfg->backend != SERVICE_SYSTEMD)
                return reconcile_direct(d, res);

        agentctl = schedule_agentctl_path();
        config = absolute_config(cfg);
        agent_config c = *cfg;
        c.path = config;
        written = xcalloc(d->n_databases ? d->n_databases : 1, sizeof(bool));
        for (size_t i = 0; i < d->n_databases; i++) {
                const doc_database *db = &d->databases[i];
                _cleanup_free_ char *e = NULL;

                if (!db->backup.enabled)
                        continue;
                r = write_units(&c, agentctl, db, &e);
                if (r < 0) {
                        results_add(res, "schedule", db->name, RES_FAILED, "%s", e);
                        ret = r;
                        continue;
                }
                written[i] = r > 0;
                reload = reload || r > 0;
        }
        r = stale_databases(cfg, d, &stale, &n_stale, &err);
        if (r < 0) {
                results_add(res, "schedule", cfg->unit_dir, RES_FAILED, "%s", err);
                ret = r;
        }
        for (size_t i = 0; i < n_stale; i++) {
                _cleanup_free_ char *e = NULL;

                r = remove_units(cfg, stale[i], &e);
                if (r < 0) {
                        results_add(res, "schedule", stale[i], RES_FAILED, "cannot remove the backup schedule: %s", e);
                        ret = r;
                } else {
                        results_add(res, "schedule", stale[i], RES_REMOVED, "timers stopped; existing backups are kept");
                        reload = true;
                }
        }
        if (reload) {
                free(err);
                err = NULL;
                r = systemd_daemon_reload(&err);
                if (r < 0) {
                        for (size_t i = 0; i < d->n_databases; i++)
                                if (written[i])
                                        results_add(res, "schedule", d->databases[i].name, RES_FAILED,
                                                    "systemd daemon-reload failed: %s", err);
                        ret = r;
                        goto done;
                }
        }
        for (size_t i = 0; i < d->n_databases; i++) {
                const doc_database *db = &d->databases[i];
                bool failed = false, started = false;

                if (!db->backup.enabled)
                        continue;
                for (schedule_kind k = 0; k < _SCHEDULE_KIND_MAX && !failed; k++) {
                        _cleanup_free_ char *timer = schedule_unit_name(db->name, k, "timer"), *e = NULL;
                        const char *names[] = { timer };
                        bool active = false;

                        if (written[i] && systemd_unit_files_enable(names, 1, true, &e) < 0) {
                                results_add(res, "schedule", db->name, RES_FAILED, "cannot enable %s: %s", timer, e);
                                failed = true;
                        } else if (systemd_unit_active(timer, &active, &e) < 0 ||
                                   (!active && systemd_unit_call(timer, "StartUnit", &e) < 0)) {
                                results_add(res, "schedule", db->name, RES_FAILED, "cannot start %s: %s", timer,
                                            e ? e : "unknown error");
                                failed = true;
                        } else
                                started = started || !active;
                }
                if (failed) {
                        ret = -EIO;
                        continue;
                }
                results_add(res, "schedule", db->name, written[i] || started ? RES_CHANGED : RES_UNCHANGED,
                            "diff '%s', full weekly", schedule_expression(&db->backup, SCHEDULE_KIND_DIFF));
        }
done:
        for (size_t i = 0; i < n_stale; i++)
                free(stale[i]);
        free(stale);
        free(written);
        return ret;
}

/* --- direct backend ------------------------------------------------------------------------------ */

void schedule_jobs_free(schedule_job *jobs, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(jobs[i].database);
        free(jobs);
}

/* schedule.json: { "DB": { "full": SECONDS, "diff": SECONDS } } — when each timer last triggered. */
static int load_stamps(const agent_config *cfg, json_object **ret, char **ret_error) {
        _cleanup_free_ char *path = xasprintf("%s/" SCHEDULE_FILE, cfg->state_dir), *text = NULL;
        json_object *o;
        int r = read_full_file(path, SCHEDULE_FILE_MAX, &text, NULL);

        if (r == -ENOENT) {
                *ret = json_object_new_object();
                return 0;
        }
        if (r < 0) {
                *ret_error = xasprintf("cannot read %s: %s", path, strerror(-r));
                return r;
        }
        o = json_tokener_parse(text);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                *ret_error = xasprintf("%s is damaged; move it away to start the schedules over", path);
                return -EBADMSG;
        }
        *ret = o;
        return 0;
}

static int save_stamps(const agent_config *cfg, json_object *o, char **ret_error) {
        _cleanup_free_ char *path = xasprintf("%s/" SCHEDULE_FILE, cfg->state_dir);
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        int r = write_file_atomic(path, text, strlen(text), 0600);

        if (r < 0) {
                *ret_error = xasprintf("cannot write %s: %s", path, strerror(-r));
                return r;
        }
        return 0;
}

int schedule_due(const agent_config *cfg, const doc_document *d, int64_t now_usec, schedule_job **ret_jobs,
                 size_t *ret_n, int64_t *ret_next_usec, char **ret_error) {
        json_object *stamps = NULL, *keep;
        schedule_job *jobs = NULL;
        size_t n = 0;
        int64_t now_sec = now_usec / USEC_PER_SEC, earliest = INT64_MAX;
        int r;

        r = load_stamps(cfg, &stamps, ret_error);
        if (r < 0)
                return r;
        keep = json_object_new_object();
        for (size_t i = 0; i < d->n_databases; i++) {
                const doc_database *db = &d->databases[i];
                json_object *old = NULL, *entry = json_object_new_object(), *v;
                int64_t last[_SCHEDULE_KIND_MAX], elapse[_SCHEDULE_KIND_MAX];
                bool due[_SCHEDULE_KIND_MAX] = {};

                if (!db->backup.enabled) {
                        json_object_put(entry);
                        continue;
                }
                (void) json_object_object_get_ex(stamps, db->name, &old);
                for (schedule_kind k = 0; k < _SCHEDULE_KIND_MAX; k++) {
                        _cleanup_free_ char *err = NULL;
                        const char *expr = schedule_expression(&db->backup, k);

                        /* First seen: counting starts now, like a timer just enabled. */
                        last[k] = old && json_object_object_get_ex(old, kind_names[k], &v) &&
                                                  json_object_is_type(v, json_type_int)
                                          ? json_object_get_int64(v)
                                          : now_sec;
                        r = schedule_next(expr, last[k] * USEC_PER_SEC, &elapse[k], &err);
                        if (r < 0) {
                                /* The controller validates schedules: one that fails here does not
                                 * run (and reconcile reports it); the others still do. */
                                log_full(LOG_WARNING, db->name, 0, "database '%s': %s backup schedule: %s", db->name,
                                         kind_names[k], err);
                                elapse[k] = INT64_MAX;
                                continue;
                        }
                        due[k] = elapse[k] <= now_usec;
                }
                /* A full is a superset of a differential: one backup, not two in a row. */
                if (due[SCHEDULE_KIND_FULL])
                        due[SCHEDULE_KIND_DIFF] = false, last[SCHEDULE_KIND_DIFF] = now_sec;
                for (schedule_kind k = 0; k < _SCHEDULE_KIND_MAX; k++) {
                        int64_t next = elapse[k];

                        if (due[k]) {
                                jobs = xrealloc(jobs, (n + 1) * sizeof(schedule_job));
                                jobs[n++] = (schedule_job) { xstrdup(db->name), k, elapse[k] };
                                last[k] = now_sec;
                        }
                        if (due[k] || (k == SCHEDULE_KIND_DIFF && due[SCHEDULE_KIND_FULL]))
                                (void) schedule_next(schedule_expression(&db->backup, k), now_sec * USEC_PER_SEC,
                                                     &next, NULL);
                        if (next < earliest)
                                earliest = next;
                        json_object_object_add(entry, kind_names[k], json_object_new_int64(last[k]));
                }
                json_object_object_add(keep, db->name, entry);
        }
        json_object_put(stamps);
        r = save_stamps(cfg, keep, ret_error);
        json_object_put(keep);
        if (r < 0) {
                /* Not recorded: they would run again at the next step. */
                schedule_jobs_free(jobs, n);
                return r;
        }
        *ret_jobs = jobs;
        *ret_n = n;
        if (ret_next_usec)
                *ret_next_usec = earliest;
        return 0;
}

void schedule_runner_done(schedule_runner *r) {
        /* Children keep running: a backup outlives a daemon restart, as a systemd service would. */
        for (size_t i = 0; i < r->n; i++)
                free(r->children[i].database);
        free(r->children);
        *r = (schedule_runner) {};
}

static void reap(schedule_runner *r) {
        for (size_t i = 0; i < r->n;) {
                struct schedule_child *c = &r->children[i];
                int status = 0, k = proc_reap(c->pid, &status);

                if (k == 0) {
                        i++;
                        continue;
                }
                if (k < 0)
                        log_full(LOG_WARNING, c->database, 0, "database '%s': scheduled %s backup (pid %d): %s",
                                 c->database, kind_names[c->kind], (int) c->pid, strerror(-k));
                else if (status == 0)
                        log_full(LOG_INFO, c->database, 0, "database '%s': scheduled %s backup finished", c->database,
                                 kind_names[c->kind]);
                else
                        log_full(LOG_ERR, c->database, 0,
                                 "database '%s': scheduled %s backup failed (exit status %d); its output is above",
                                 c->database, kind_names[c->kind], status);
                free(c->database);
                r->children[i] = r->children[--r->n];
        }
}

static bool running(const schedule_runner *r, const char *db) {
        for (size_t i = 0; i < r->n; i++)
                if (streq(r->children[i].database, db))
                        return true;
        return false;
}

long schedule_tick(schedule_runner *r, const agent_config *cfg, long max_seconds) {
        _cleanup_(doc_document_freep) doc_document *d = NULL;
        _cleanup_free_ char *err = NULL, *agentctl = NULL, *config = NULL;
        schedule_job *jobs = NULL;
        size_t n = 0;
        struct timespec ts;
        int64_t now, next = INT64_MAX;
        long wait = max_seconds;
        int k;

        reap(r);
        k = state_load_desired(cfg, &d, &err);
        if (k < 0) {
                if (k != -ENOENT)
                        log_error("infrastream-agent: backup schedules: %s", err);
                return r->n > 0 && wait > 60 ? 60 : wait;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        now = (int64_t) ts.tv_sec * USEC_PER_SEC + ts.tv_nsec / 1000;
        if (schedule_due(cfg, d, now, &jobs, &n, &next, &err) < 0) {
                log_error("infrastream-agent: backup schedules: %s", err);
                return r->n > 0 && wait > 60 ? 60 : wait;
        }
        if (n > 0) {
                agentctl = schedule_agentctl_path();
                config = absolute_config(cfg);
        }
        for (size_t i = 0; i < n; i++) {
                const char *argv[] = { agentctl, "--config", config, "backup", "run", jobs[i].database, "--type",
                                       kind_names[jobs[i].kind], NULL };
                pid_t pid;

                if (running(r, jobs[i].database)) {
                        log_full(LOG_WARNING, jobs[i].database, 0,
                                 "database '%s': scheduled %s backup skipped: the previous one is still running",
                                 jobs[i].database, kind_names[jobs[i].kind]);
                        continue;
                }
                k = proc_spawn(argv, &pid);
                if (k < 0) {
                        log_full(LOG_ERR, jobs[i].database, 0, "database '%s': cannot start the scheduled %s backup: %s",
                                 jobs[i].database, kind_names[jobs[i].kind], strerror(-k));
                        continue;
                }
                log_full(LOG_INFO, jobs[i].database, 0, "database '%s': scheduled %s backup started (pid %d)",
                         jobs[i].database, kind_names[jobs[i].kind], (int) pid);
                r->children = xrealloc(r->children, (r->n + 1) * sizeof(*r->children));
                r->children[r->n++] = (struct schedule_child) { pid, xstrdup(jobs[i].database), jobs[i].kind };
        }
        schedule_jobs_free(jobs, n);
        if (next != INT64_MAX && next > now && (next - now) / USEC_PER_SEC + 1 < wait)
                wait = (long) ((next - now) / USEC_PER_SEC + 1);
        if (r->n > 0 && wait > 60)
                wait = 60;
        return wait < 1 ? 1 : wait;
}
