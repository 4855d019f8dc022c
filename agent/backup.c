/* Backups with pgBackRest: the per-database config, stanza and archive check on apply; backup
 * runs; backups.json; the status line. Everything pgBackRest-specific goes through pgbackrest.c. */
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "backup.h"
#include "calendar.h"
#include "drill.h"
#include "fileio.h"
#include "macro.h"
#include "pg.h"
#include "pgbackrest.h"
#include "proc.h"
#include "schedule.h"
#include "service.h"
#include "state.h"
#include "strbuf.h"
#include "x509.h"

/* --- backups.json ---------------------------------------------------------------------------- */

int backups_lock(const agent_config *cfg, char **ret_error) {
        _cleanup_free_ char *path = xasprintf("%s/backups.lock", cfg->state_dir);
        int fd, r;

        r = state_prepare(cfg, ret_error);
        if (r < 0)
                return r;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                *ret_error = xasprintf("cannot open %s: %s", path, strerror(errno));
                return -errno;
        }
        if (flock(fd, LOCK_EX) < 0) {
                r = -errno;
                *ret_error = xasprintf("cannot lock %s: %s", path, strerror(errno));
                close(fd);
                return r;
        }
        return fd;
}

static void entry_done(backup_entry *e) {
        free(e->name);
        free(e->checked_config);
        free(e->backup_type);
        free(e->backup_label);
        free(e->backup_error);
        free(e->drill_label);
        free(e->drill_error);
        for (size_t i = 0; i < e->n_drill_tables; i++)
                free(e->drill_tables[i].name);
        free(e->drill_tables);
        *e = (backup_entry) {};
}

void backups_state_done(backups_state *s) {
        for (size_t i = 0; i < s->n_dbs; i++)
                entry_done(&s->dbs[i]);
        free(s->dbs);
        *s = (backups_state) {};
}

backup_entry *backups_entry(backups_state *s, const char *db) {
        for (size_t i = 0; i < s->n_dbs; i++)
                if (streq(s->dbs[i].name, db))
                        return &s->dbs[i];
        s->dbs = xrealloc(s->dbs, (s->n_dbs + 1) * sizeof(backup_entry));
        s->dbs[s->n_dbs] = (backup_entry) { .name = xstrdup(db) };
        return &s->dbs[s->n_dbs++];
}

static const char *jstr(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string) ? json_object_get_string(v)
                                                                                                 : NULL;
}
static char *jdup(json_object *o, const char *key) {
        const char *s = jstr(o, key);
        return s ? xstrdup(s) : NULL;
}
static int64_t jint(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
}
static double jdouble(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) &&
                               (json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int))
                       ? json_object_get_double(v)
                       : 0;
}
static void add_str(json_object *o, const char *key, const char *v) {
        json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

int backups_load(const agent_config *cfg, backups_state *ret, char **ret_error) {
        _cleanup_free_ char *path = xasprintf("%s/%s", cfg->state_dir, BACKUPS_STATE_FILE), *text = NULL;
        backups_state s = {};
        json_object *o, *dbs;
        int r;

        r = read_full_file(path, 16u << 20, &text, NULL);
        if (r == -ENOENT) {
                *ret = s;
                return 0;
        }
        if (r < 0) {
                *ret_error = xasprintf("cannot read %s: %s", path, strerror(-r));
                return r;
        }
        o = json_tokener_parse(text);
        if (!o || !json_object_object_get_ex(o, "databases", &dbs) || !json_object_is_type(dbs, json_type_object)) {
                json_object_put(o);
                *ret_error = xasprintf("%s is damaged; move it away to start over", path);
                return -EBADMSG;
        }
        json_object_object_foreach(dbs, name, d) {
                backup_entry *e = backups_entry(&s, name);
                json_object *t;
                e->enabled = json_object_object_get_ex(d, "enabled", &t) && json_object_get_boolean(t);
                e->checked_config = jdup(d, "checkedConfig");
                e->configured_at = jint(d, "configuredAt");
                e->backup_type = jdup(d, "backupType");
                e->backup_label = jdup(d, "backupLabel");
                e->backup_started = jint(d, "backupStarted");
                e->backup_finished = jint(d, "backupFinished");
                e->backup_size = (uint64_t) jint(d, "backupSize");
                e->backup_repo_size = (uint64_t) jint(d, "backupRepoSize");
                e->backup_error = jdup(d, "backupError");
                e->last_good_backup = jint(d, "lastGoodBackup");
                e->oldest_restorable = jint(d, "oldestRestorable");
                e->drill_at = jint(d, "drillAt");
                e->drill_seconds = jdouble(d, "drillSeconds");
                e->drill_label = jdup(d, "drillBackup");
                e->drill_error = jdup(d, "drillError");
                e->drill_last_good = jint(d, "drillLastGood");
                e->drill_last_good_seconds = jdouble(d, "drillLastGoodSeconds");
                if (json_object_object_get_ex(d, "drillTables", &t) && json_object_is_type(t, json_type_array)) {
                        size_t n = json_object_array_length(t);
                        e->drill_tables = n ? xcalloc(n, sizeof(backup_drill_table)) : NULL;
                        for (size_t i = 0; i < n; i++) {
                                json_object *x = json_object_array_get_idx(t, i);
                                if (!jstr(x, "name"))
                                        continue;
                                e->drill_tables[e->n_drill_tables].name = jdup(x, "name");
                                e->drill_tables[e->n_drill_tables++].rows = jint(x, "rows");
                        }
                }
        }
        json_object_put(o);
        *ret = s;
        return 0;
}

int backups_save(const agent_config *cfg, const backups_state *s, char **ret_error) {
        _cleanup_free_ char *path = xasprintf("%s/%s", cfg->state_dir, BACKUPS_STATE_FILE);
        json_object *o = json_object_new_object(), *dbs = json_object_new_object();
        const char *text;
        int r;

        for (size_t i = 0; i < s->n_dbs; i++) {
                const backup_entry *e = &s->dbs[i];
                json_object *d = json_object_new_object(), *t = json_object_new_array();
                json_object_object_add(d, "enabled", json_object_new_boolean(e->enabled));
                add_str(d, "checkedConfig", e->checked_config);
                json_object_object_add(d, "configuredAt", json_object_new_int64(e->configured_at));
                add_str(d, "backupType", e->backup_type);
                add_str(d, "backupLabel", e->backup_label);
                json_object_object_add(d, "backupStarted", json_object_new_int64(e->backup_started));
                json_object_object_add(d, "backupFinished", json_object_new_int64(e->backup_finished));
                json_object_object_add(d, "backupSize", json_object_new_int64((int64_t) e->backup_size));
                json_object_object_add(d, "backupRepoSize", json_object_new_int64((int64_t) e->backup_repo_size));
                add_str(d, "backupError", e->backup_error);
                json_object_object_add(d, "lastGoodBackup", json_object_new_int64(e->last_good_backup));
                json_object_object_add(d, "oldestRestorable", json_object_new_int64(e->oldest_restorable));
                json_object_object_add(d, "drillAt", json_object_new_int64(e->drill_at));
                json_object_object_add(d, "drillSeconds", json_object_new_double(e->drill_seconds));
                add_str(d, "drillBackup", e->drill_label);
                add_str(d, "drillError", e->drill_error);
                json_object_object_add(d, "drillLastGood", json_object_new_int64(e->drill_last_good));
                json_object_object_add(d, "drillLastGoodSeconds", json_object_new_double(e->drill_last_good_seconds));
                for (size_t k = 0; k < e->n_drill_tables; k++) {
                        json_object *x = json_object_new_object();
                        add_str(x, "name", e->drill_tables[k].name);
                        json_object_object_add(x, "rows", json_object_new_int64(e->drill_tables[k].rows));
                        json_object_array_add(t, x);
                }
                json_object_object_add(d, "drillTables", t);
                json_object_object_add(dbs, e->name, d);
        }
        json_object_object_add(o, "databases", dbs);
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        r = write_file_atomic(path, text, strlen(text), 0600);
        json_object_put(o);
        if (r < 0) {
                *ret_error = xasprintf("cannot write %s: %s", path, strerror(-r));
                return r;
        }
        return 0;
}

/* --- the reconciler -------------------------------------------------------------------------- */

static void sha256_hex(const char *text, char out[65]) {
        unsigned char md[32];
        unsigned int n = 0;
        EVP_Digest(text, strlen(text), md, &n, EVP_sha256(), NULL);
        for (unsigned i = 0; i < 32; i++)
                snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The S3 credentials from backup-s3-key-file ("key-id:secret", root only). */
static int read_s3_keys(const agent_config *cfg, char **ret_id, char **ret_secret, char **ret_error) {
        _cleanup_erase_ char *text = NULL;
        char *colon, *end;
        struct stat st;
        int r;

        if (stat(cfg->backup_s3_key_file, &st) == 0 && (st.st_mode & 077)) {
                *ret_error = xasprintf("%s is readable by others (mode %04o): make it 0600", cfg->backup_s3_key_file,
                                       (unsigned) (st.st_mode & 07777));
                return -EPERM;
        }
        r = read_full_file(cfg->backup_s3_key_file, 4096, &text, NULL);
        if (r < 0) {
                *ret_error = xasprintf("cannot read %s: %s", cfg->backup_s3_key_file, strerror(-r));
                return r;
        }
        end = text + strcspn(text, "\r\n");
        *end = '\0';
        colon = strchr(text, ':');
        if (!colon || colon == text || !colon[1]) {
                *ret_error = xasprintf("%s must hold one line KEY-ID:SECRET", cfg->backup_s3_key_file);
                return -EINVAL;
        }
        *ret_id = xstrndup(text, (size_t) (colon - text));
        *ret_secret = xstrdup(colon + 1);
        return 0;
}

int backup_make_repository(const agent_config *cfg, const char *db, uid_t uid, gid_t gid, char **ret_error) {
        _cleanup_free_ char *repo = pgbackrest_repo_path(cfg, db);
        /* The backup root is traversed by the OS user; each repository is its own. */
        int r = mkdir_root(cfg->backup_root);

        if (r < 0) {
                *ret_error = xasprintf("cannot create backup root %s: %s", cfg->backup_root, strerror(-r));
                return r;
        }
        r = mkdir_owned(repo, 0750, uid, gid);
        if (r < 0)
                *ret_error = xasprintf("cannot create repository %s: %s", repo, strerror(-r));
        return r;
}

/* Repository, log directory and the config file; returns >0 when the config changed. The config's
 * hash goes to ret_hash. */
static int write_setup(const agent_config *cfg, const doc_database *db, char ret_hash[65], char **ret_error) {
        _cleanup_free_ char *conf = pgbackrest_conf_path(cfg, db->name),
                            *logdir = xasprintf("%s/%s/log", cfg->data_root, db->name),
                            *pglog = pgbackrest_log_path(cfg, db->name);
        _cleanup_erase_ char *text = NULL, *key_id = NULL, *secret = NULL;
        uid_t uid;
        gid_t gid;
        int r;

        r = user_lookup(cfg->os_user, &uid, &gid, NULL);
        if (r < 0) {
                *ret_error = xasprintf("OS user '%s' not found", cfg->os_user);
                return r;
        }
        if (cfg->backup_s3_bucket) {
                r = read_s3_keys(cfg, &key_id, &secret, ret_error);
                if (r < 0)
                        return r;
        } else {
                r = backup_make_repository(cfg, db->name, uid, gid, ret_error);
                if (r < 0)
                        return r;
        }
        if ((r = mkdir_owned(logdir, 0700, uid, gid)) < 0 || (r = mkdir_owned(pglog, 0700, uid, gid)) < 0) {
                *ret_error = xasprintf("cannot create %s: %s", pglog, strerror(-r));
                return r;
        }
        text = pgbackrest_conf_text(cfg, db, key_id, secret);
        sha256_hex(text, ret_hash);
        r = write_file_atomic_owned(conf, text, strlen(text), 0600, uid, gid);
        if (r < 0)
                *ret_error = xasprintf("cannot write %s: %s", conf, strerror(-r));
        return r;
}

int backup_reconcile(const agent_config *cfg, const doc_database *db, results *res) {
        _cleanup_free_ char *err = NULL, *repo = NULL;
        _cleanup_close_ int lock = -1;
        backups_state st = {};
        backup_entry *e;
        char hash[65];
        int r, changed;

        lock = backups_lock(cfg, &err);
        if (lock < 0 || backups_load(cfg, &st, &err) < 0) {
                results_add(res, "backup", db->name, RES_FAILED, "%s", err);
                return -EIO;
        }
        e = backups_entry(&st, db->name);
        if (!db->backup.enabled) {
                /* archive_mode is off with the cluster's config; the repository stays. */
                if (e->enabled) {
                        e->enabled = false;
                        free(e->checked_config);
                        e->checked_config = NULL;
                        r = backups_save(cfg, &st, &err);
                        repo = pgbackrest_repo_path(cfg, db->name);
                        if (r < 0)
                                results_add(res, "backup", db->name, RES_FAILED, "%s", err);
                        else
                                results_add(res, "backup", db->name, RES_CHANGED,
                                            "disabled: WAL archiving off; the backups in %s are kept", repo);
                }
                backups_state_done(&st);
                return 0;
        }
        if (!db->backup.passphrase || !*db->backup.passphrase) {
                results_add(res, "backup", db->name, RES_FAILED,
                            "backups are enabled but the document carries no repository passphrase");
                backups_state_done(&st);
                return -EINVAL;
        }
        r = changed = write_setup(cfg, db, hash, &err);
        if (r < 0)
                goto fail;
        if (!changed && e->enabled && streq_ptr(e->checked_config, hash)) {
                results_add(res, "backup", db->name, RES_UNCHANGED, NULL);
                backups_state_done(&st);
                return 0;
        }
        {
                /* stanza-create is idempotent; check switches a WAL segment and waits for it in the
                 * repository: archiving proven end to end. */
                const char *create[] = { "stanza-create", NULL }, *check[] = { "check", NULL };
                r = pgbackrest_run(cfg, db->name, create, NULL, &err);
                if (r >= 0)
                        r = pgbackrest_run(cfg, db->name, check, NULL, &err);
                if (r < 0)
                        goto fail;
        }
        {
                bool first = !e->enabled && !e->configured_at;
                e->enabled = true;
                free(e->checked_config);
                e->checked_config = xstrdup(hash);
                e->configured_at = (int64_t) time(NULL);
                r = backups_save(cfg, &st, &err);
                if (r < 0)
                        goto fail;
                repo = cfg->backup_s3_bucket ? xasprintf("s3://%s/%s", cfg->backup_s3_bucket, db->name)
                                             : pgbackrest_repo_path(cfg, db->name);
                results_add(res, "backup", db->name, first ? RES_CREATED : RES_CHANGED,
                            "%s: stanza ready, WAL archiving checked, repository %s (aes-256-cbc, zstd, %d days)",
                            first ? "set up" : "configuration updated", repo, db->backup.retention_days);
        }
        backups_state_done(&st);
        return 0;
fail:
        /* The next apply checks again. */
        if (e->checked_config) {
                free(e->checked_config);
                e->checked_config = NULL;
                e->enabled = true;
                _cleanup_free_ char *err2 = NULL;
                (void) backups_save(cfg, &st, &err2);
        }
        results_add(res, "backup", db->name, RES_FAILED, "%s", err ? err : strerror(-r));
        backups_state_done(&st);
        return r;
}

/* --- commands -------------------------------------------------------------------------------- */

int backup_type_from_string(const char *s, backup_type *ret) {
        if (streq(s, "full"))
                *ret = BACKUP_FULL;
        else if (streq(s, "diff"))
                *ret = BACKUP_DIFF;
        else if (streq(s, "incr"))
                *ret = BACKUP_INCR;
        else
                return -EINVAL;
        return 0;
}

const char *backup_type_to_string(backup_type t) {
        return t == BACKUP_FULL ? "full" : t == BACKUP_DIFF ? "diff" : "incr";
}

int backup_find_database(const agent_config *cfg, const char *db, doc_document **ret_doc,
                         const doc_database **ret_db, char **ret_error) {
        doc_document *d = NULL;
        int r = state_load_desired(cfg, &d, ret_error);

        if (r < 0)
                return r;
        for (size_t i = 0; i < d->n_databases; i++)
                if (streq(d->databases[i].name, db)) {
                        if (!d->databases[i].backup.enabled) {
                                *ret_error = xasprintf("backups are disabled for database '%s' (backupConfig.enabled)",
                                                       db);
                                doc_document_free(d);
                                return -ENOENT;
                        }
                        *ret_doc = d;
                        *ret_db = &d->databases[i];
                        return 0;
                }
        *ret_error = xasprintf("database '%s' is not in the applied document (revision %llu)", db,
                               (unsigned long long) d->revision);
        doc_document_free(d);
        return -ENOENT;
}

static double now_seconds(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void format_size(uint64_t b, char buf[32]) {
        if (b >= 1ULL << 30)
                snprintf(buf, 32, "%.1f GiB", (double) b / (1ULL << 30));
        else if (b >= 1ULL << 20)
                snprintf(buf, 32, "%.1f MiB", (double) b / (1ULL << 20));
        else
                snprintf(buf, 32, "%.0f KiB", (double) b / 1024);
}

static int64_t oldest_stop(const pgbr_info *i) {
        int64_t t = 0;
        for (size_t k = 0; k < i->n_backups; k++)
                if (!t || (i->backups[k].stop && i->backups[k].stop < t))
                        t = i->backups[k].stop;
        return t;
}

int backup_run(const agent_config *cfg, const char *name, backup_type type, FILE *out, char **ret_error) {
        _cleanup_(doc_document_freep) doc_document *d = NULL;
        _cleanup_free_ char *err = NULL, *type_opt = xasprintf("--type=%s", backup_type_to_string(type));
        const doc_database *db;
        const char *args[] = { type_opt, "backup", NULL };
        pgbr_info info = {};
        backups_state st = {};
        backup_entry *e;
        int64_t started = (int64_t) time(NULL);
        double t0 = now_seconds(), secs;
        bool full = false;
        int r, lock;

        r = backup_find_database(cfg, name, &d, &db, ret_error);
        if (r < 0)
                return r;
        r = pgbackrest_run(cfg, name, args, NULL, &err);
        secs = now_seconds() - t0;
        if (r >= 0) {
                r = pgbackrest_info(cfg, name, &info, &err);
                if (r >= 0 && info.n_backups == 0) {
                        err = xstrdup("pgbackrest info lists no backup after the backup");
                        r = -EIO;
                }
        }
        lock = backups_lock(cfg, ret_error);
        if (lock < 0) {
                pgbr_info_done(&info);
                return lock;
        }
        if (backups_load(cfg, &st, ret_error) < 0) {
                close(lock);
                pgbr_info_done(&info);
                return -EIO;
        }
        e = backups_entry(&st, name);
        e->backup_started = started;
        e->backup_finished = (int64_t) time(NULL);
        free(e->backup_error);
        e->backup_error = r < 0 ? xstrdup(err ? err : strerror(-r)) : NULL;
        free(e->backup_type);
        free(e->backup_label);
        e->backup_label = NULL;
        if (r >= 0) {
                const pgbr_backup *b = &info.backups[info.n_backups - 1];
                /* pgBackRest makes a diff or incr without a full before it a full: record what it did. */
                e->backup_type = xstrdup(b->type);
                e->backup_label = xstrdup(b->label);
                e->backup_size = b->size;
                e->backup_repo_size = b->repo_size;
                e->last_good_backup = b->stop ? b->stop : e->backup_finished;
                e->oldest_restorable = oldest_stop(&info);
                full = streq(b->type, "full");
        } else
                e->backup_type = xstrdup(backup_type_to_string(type));
        {
                _cleanup_free_ char *err2 = NULL;
                if (backups_save(cfg, &st, &err2) < 0 && r >= 0) {
                        r = -EIO;
                        err = TAKE_PTR(err2);
                }
        }
        close(lock);
        if (r < 0) {
                *ret_error = xasprintf("database '%s': %s backup failed: %s", name, backup_type_to_string(type),
                                       err ? err : strerror(-r));
                backups_state_done(&st);
                pgbr_info_done(&info);
                return r;
        }
        {
                char s1[32], s2[32];
                format_size(e->backup_size, s1);
                format_size(e->backup_repo_size, s2);
                fprintf(out, "backup %s: %s backup %s in %.1f s, %s (%s in the repository)\n", name, e->backup_type,
                        e->backup_label, secs, s1, s2);
                fflush(out);
        }
        backups_state_done(&st);
        pgbr_info_done(&info);
        if (full && cfg->drill_after_full) {
                r = drill_run(cfg, name, out, ret_error);
                if (r < 0)
                        return r;
        }
        return 0;
}

int backup_list(const agent_config *cfg, const char *name, FILE *out, char **ret_error) {
        _cleanup_(doc_document_freep) doc_document *d = NULL;
        const doc_database *db;
        pgbr_info info = {};
        int r;

        r = backup_find_database(cfg, name, &d, &db, ret_error);
        if (r < 0)
                return r;
        r = pgbackrest_info(cfg, name, &info, ret_error);
        if (r < 0)
                return r;
        fprintf(out, "%-24s %-5s %-25s %-25s %10s %10s\n", "LABEL", "TYPE", "STARTED", "FINISHED", "SIZE", "STORED");
        for (size_t i = 0; i < info.n_backups; i++) {
                const pgbr_backup *b = &info.backups[i];
                char t1[32], t2[32], s1[32], s2[32];
                x509_format_time((time_t) b->start, t1);
                x509_format_time((time_t) b->stop, t2);
                format_size(b->size, s1);
                format_size(b->repo_size, s2);
                fprintf(out, "%-24s %-5s %-25s %-25s %10s %10s%s\n", b->label, b->type, t1, t2, s1, s2,
                        b->error ? "  (checksum errors while copying)" : "");
        }
        if (info.n_backups == 0)
                fprintf(out, "(no backups yet: agentctl backup run %s)\n", name);
        if (info.archive_min)
                fprintf(out, "WAL in the repository: %s .. %s\n", info.archive_min, strempty(info.archive_max));
        if (info.status_code != 0 && info.status_code != 2)
                fprintf(out, "repository status: %s (code %d)\n", info.status_message, info.status_code);
        pgbr_info_done(&info);
        return 0;
}

/* --- status ---------------------------------------------------------------------------------- */

typedef struct archiver {
        bool known;
        int64_t archived_count, failed_count;
        int64_t last_archived, last_failed; /* epoch seconds, 0: never */
        char *last_failed_wal;
} archiver;

static void archiver_query(const agent_config *cfg, const doc_database *db, archiver *a) {
        _cleanup_free_ char *sock = xasprintf("%s/%s/run", cfg->data_root, db->name), *err = NULL;
        _cleanup_pg_ pg_conn *c = NULL;
        _cleanup_rows_ pg_rows *rows = NULL;

        if (pg_connect(sock, db->port, "postgres", "postgres", &c, &err) < 0 ||
            pg_exec(c,
                    "SELECT archived_count, failed_count, coalesce(extract(epoch FROM last_archived_time)::bigint, 0), "
                    "coalesce(extract(epoch FROM last_failed_time)::bigint, 0), coalesce(last_failed_wal, '') "
                    "FROM pg_stat_archiver",
                    NULL, 0, &rows, &err) < 0 ||
            pg_rows_count(rows) != 1)
                return;
        a->known = true;
        a->archived_count = strtoll(pg_rows_get(rows, 0, 0), NULL, 10);
        a->failed_count = strtoll(pg_rows_get(rows, 0, 1), NULL, 10);
        a->last_archived = strtoll(pg_rows_get(rows, 0, 2), NULL, 10);
        a->last_failed = strtoll(pg_rows_get(rows, 0, 3), NULL, 10);
        a->last_failed_wal = xstrdup(pg_rows_get(rows, 0, 4));
}

static void fail_with(bool *failed, char **first_error, char *msg) {
        *failed = true;
        if (!*first_error)
                *first_error = msg;
        else
                free(msg);
}

json_object *backup_status(const agent_config *cfg, const doc_database *db, char **ret_text, bool *failed,
                           char **first_error) {
        _cleanup_free_ char *err = NULL;
        json_object *o = json_object_new_object();
        backups_state st = {};
        const backup_entry *e = NULL;
        archiver a = {};
        strbuf b = {};
        char t[32], s[32];
        int64_t now = (int64_t) time(NULL), interval;

        json_object_object_add(o, "enabled", json_object_new_boolean(db->backup.enabled));
        if (!db->backup.enabled) {
                *ret_text = xstrdup("disabled");
                return o;
        }
        if (backups_load(cfg, &st, &err) >= 0)
                for (size_t i = 0; i < st.n_dbs; i++)
                        if (streq(st.dbs[i].name, db->name))
                                e = &st.dbs[i];
        if (!e || !e->configured_at) {
                *ret_text = xstrdup("not set up yet");
                backups_state_done(&st);
                return o; /* the apply's failed result line says why */
        }
        /* last backup */
        if (e->backup_type) {
                x509_format_time((time_t) e->backup_finished, t);
                format_size(e->backup_size, s);
                if (e->backup_error)
                        strbuf_printf(&b, "last %s FAILED %s", e->backup_type, t);
                else
                        strbuf_printf(&b, "last %s %s (%s)", e->backup_type, t, s);
        } else
                strbuf_append(&b, "no backup yet");
        json_object_object_add(o, "lastBackupType", e->backup_type ? json_object_new_string(e->backup_type) : NULL);
        json_object_object_add(o, "lastBackupAt", e->backup_finished ? json_object_new_int64(e->backup_finished) : NULL);
        json_object_object_add(o, "lastBackupSize", json_object_new_int64((int64_t) e->backup_size));
        add_str(o, "lastBackupError", e->backup_error);
        if (e->backup_error)
                fail_with(failed, first_error,
                          xasprintf("database '%s': the last backup failed: %s", db->name, e->backup_error));
        /* stale: nothing good for twice the schedule's interval (since set up, when never) */
        /* The longest the schedules (differential and weekly full) leave without a backup. */
        {
                _cleanup_free_ char *ignored = NULL;
                int64_t usec = 0;
                interval = schedule_backup_interval(&db->backup, now * 1000000, &usec, &ignored) >= 0 ? usec / 1000000 : 0;
        }
        if (interval > 0) {
                int64_t since = e->last_good_backup ? e->last_good_backup : e->configured_at;
                if (now - since > 2 * interval) {
                        strbuf_printf(&b, ", STALE");
                        fail_with(failed, first_error,
                                  xasprintf("database '%s': %s for more than twice the schedule's interval (%s)", db->name,
                                            e->last_good_backup ? "no successful backup" : "no backup since set up",
                                            db->backup.schedule));
                }
        }
        /* WAL archiving */
        archiver_query(cfg, db, &a);
        if (a.known) {
                bool failing = a.failed_count > 0 && a.last_failed >= a.last_archived;
                json_object_object_add(o, "walArchivedAt", a.last_archived ? json_object_new_int64(a.last_archived) : NULL);
                json_object_object_add(o, "walArchiveFailures", json_object_new_int64(a.failed_count));
                json_object_object_add(o, "walArchiving", json_object_new_string(failing ? "failing" : "ok"));
                if (failing) {
                        x509_format_time((time_t) a.last_failed, t);
                        strbuf_printf(&b, ", WAL archiving FAILING (%s at %s)", a.last_failed_wal, t);
                        fail_with(failed, first_error,
                                  xasprintf("database '%s': WAL archiving is failing: %s could not be archived at %s "
                                            "(see %s/%s/data/log)",
                                            db->name, a.last_failed_wal, t, cfg->data_root, db->name));
                } else if (a.last_archived) {
                        x509_format_time((time_t) a.last_archived, t);
                        strbuf_printf(&b, ", WAL archived %s (%llds ago)", t, (long long) (now - a.last_archived));
                }
        }
        if (e->oldest_restorable) {
                x509_format_time((time_t) e->oldest_restorable, t);
                strbuf_printf(&b, ", restorable from %s", t);
        }
        json_object_object_add(o, "oldestRestorable",
                               e->oldest_restorable ? json_object_new_int64(e->oldest_restorable) : NULL);
        /* drills */
        if (e->drill_last_good) {
                x509_format_time((time_t) e->drill_last_good, t);
                strbuf_printf(&b, ", last proven restorable: %s (%.1f s)", t, e->drill_last_good_seconds);
        }
        json_object_object_add(o, "lastProvenRestorable",
                               e->drill_last_good ? json_object_new_int64(e->drill_last_good) : NULL);
        json_object_object_add(o, "lastDrillAt", e->drill_at ? json_object_new_int64(e->drill_at) : NULL);
        json_object_object_add(o, "lastDrillSeconds", json_object_new_double(e->drill_seconds));
        add_str(o, "lastDrillError", e->drill_error);
        if (e->drill_error) {
                x509_format_time((time_t) e->drill_at, t);
                strbuf_printf(&b, ", restore drill FAILED %s", t);
                fail_with(failed, first_error,
                          xasprintf("database '%s': the restore drill of %s failed: %s", db->name,
                                    strempty(e->drill_label), e->drill_error));
        }
        free(a.last_failed_wal);
        backups_state_done(&st);
        *ret_text = strbuf_steal(&b);
        return o;
}
