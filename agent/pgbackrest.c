/* pgBackRest: config text, commands as the OS user, info parsing. The only file that knows the
 * binary's options and its JSON. */
#include <json-c/json.h>
#include <stdio.h>

#include "macro.h"
#include "pgbackrest.h"
#include "strbuf.h"

char *pgbackrest_conf_path(const agent_config *cfg, const char *db) {
        return xasprintf("%s/%s/pgbackrest.conf", cfg->data_root, db);
}

char *pgbackrest_repo_path(const agent_config *cfg, const char *db) {
        return xasprintf("%s/%s", cfg->backup_root, db);
}

char *pgbackrest_log_path(const agent_config *cfg, const char *db) {
        return xasprintf("%s/%s/log/pgbackrest", cfg->data_root, db);
}

/* One word for /bin/sh: as is when it has nothing the shell interprets, else single-quoted. */
static void shell_word(strbuf *b, const char *s) {
        bool plain = *s != '\0';
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr("/._-+=:,@", *p)))
                        plain = false;
        if (plain) {
                strbuf_append(b, s);
                return;
        }
        strbuf_append(b, "'");
        for (const char *p = s; *p; p++)
                strbuf_append(b, *p == '\'' ? "'\\''" : (char[]) { *p, '\0' });
        strbuf_append(b, "'");
}

char *pgbackrest_archive_command(const agent_config *cfg, const char *db) {
        _cleanup_free_ char *conf = pgbackrest_conf_path(cfg, db), *copt = xasprintf("--config=%s", conf),
                            *sopt = xasprintf("--stanza=%s", db);
        strbuf b = {};

        strbuf_append(&b, PGBACKREST_BIN " ");
        shell_word(&b, copt);
        strbuf_append(&b, " ");
        shell_word(&b, sopt);
        strbuf_append(&b, " archive-push %p");
        return strbuf_steal(&b);
}

char *pgbackrest_conf_text(const agent_config *cfg, const doc_database *db, const char *s3_key_id,
                           const char *s3_secret) {
        _cleanup_free_ char *repo = pgbackrest_repo_path(cfg, db->name), *log = pgbackrest_log_path(cfg, db->name);
        strbuf b = {};

        strbuf_printf(&b, "# Managed by infrastream-agent: rewritten on every apply, do not edit.\n"
                      "# database '%s'; holds the repository's passphrase: 0600, %s only\n"
                      "[global]\n",
                      db->name, cfg->os_user);
        if (cfg->backup_s3_bucket) {
                /* The same layout inside the bucket as on a local disk: one directory per database. */
                strbuf_printf(&b, "repo1-type=s3\nrepo1-path=/%s\nrepo1-s3-bucket=%s\nrepo1-s3-endpoint=%s\n"
                              "repo1-s3-region=%s\n",
                              db->name, cfg->backup_s3_bucket, strempty(cfg->backup_s3_endpoint),
                              cfg->backup_s3_region ? cfg->backup_s3_region : "us-east-1");
                if (s3_key_id && s3_secret)
                        strbuf_printf(&b, "repo1-s3-key=%s\nrepo1-s3-key-secret=%s\n", s3_key_id, s3_secret);
        } else
                strbuf_printf(&b, "repo1-path=%s\n", repo);
        /* Retention in days (pgBackRest keeps the full backups needed to restore that far back). */
        strbuf_printf(&b, "repo1-retention-full-type=time\nrepo1-retention-full=%d\n", db->backup.retention_days);
        strbuf_printf(&b, "repo1-cipher-type=aes-256-cbc\nrepo1-cipher-pass=%s\n", strempty(db->backup.passphrase));
        strbuf_printf(&b, "compress-type=zst\n");
        /* A backup starts with an immediate checkpoint, not at the next timed one (up to 5 min). */
        strbuf_printf(&b, "start-fast=y\n");
        strbuf_printf(&b, "log-path=%s\nlog-level-console=warn\nlog-level-stderr=off\nlog-level-file=info\n", log);
        strbuf_printf(&b, "lock-path=%s/%s/run\n", cfg->data_root, db->name);
        strbuf_printf(&b, "\n[%s]\npg1-path=%s/%s/data\npg1-socket-path=%s/%s/run\npg1-port=%d\npg1-user=postgres\n",
                      db->name, cfg->data_root, db->name, cfg->data_root, db->name, db->port);
        return strbuf_steal(&b);
}

/* pgBackRest's error: "ERROR: [041]: message" and its indented continuation lines (HINT: ...) as
 * one line, without the timestamp and process prefix; else the last line. */
static char *error_text(const proc_result *res) {
        const char *p = res->output ? strstr(res->output, "ERROR: [") : NULL;
        char line[512];
        strbuf b = {};

        if (!p)
                return xstrdup(proc_last_line(res, line, sizeof(line)));
        for (;;) {
                const char *end = strchr(p, '\n');
                size_t n = end ? (size_t) (end - p) : strlen(p);
                strbuf_printf(&b, "%s%.*s", b.len ? " " : "", (int) n, p);
                if (!end || end[1] != ' ' || b.len > 1024)
                        break;
                p = end + 1;
                while (*p == ' ')
                        p++;
        }
        return strbuf_steal(&b);
}

int pgbackrest_run(const agent_config *cfg, const char *db, const char *const *args, proc_result *ret,
                   char **ret_error) {
        _cleanup_free_ char *conf = pgbackrest_conf_path(cfg, db), *copt = xasprintf("--config=%s", conf),
                            *sopt = xasprintf("--stanza=%s", db);
        const char *argv[32] = { PGBACKREST_BIN, copt, sopt };
        proc_result res = {};
        size_t n = 3;
        const char *command = NULL;
        int r;

        for (size_t i = 0; args[i] && n < ELEMENTSOF(argv) - 1; i++) {
                argv[n++] = args[i];
                if (!command && args[i][0] != '-')
                        command = args[i];
        }
        argv[n] = NULL;
        r = proc_run(argv, cfg->os_user, "/", NULL, &res);
        if (r < 0) {
                *ret_error = xasprintf("cannot run " PGBACKREST_BIN ": %s", strerror(-r));
                return r;
        }
        if (res.exit_status != 0) {
                _cleanup_free_ char *msg = error_text(&res);
                *ret_error = xasprintf("pgbackrest %s failed (exit %d): %s", strempty(command), res.exit_status, msg);
                r = -EIO;
        }
        if (ret)
                *ret = res;
        else
                proc_result_done(&res);
        return r;
}

void pgbr_info_done(pgbr_info *i) {
        for (size_t k = 0; k < i->n_backups; k++) {
                free(i->backups[k].label);
                free(i->backups[k].type);
        }
        free(i->backups);
        free(i->status_message);
        free(i->archive_min);
        free(i->archive_max);
        *i = (pgbr_info) {};
}

static json_object *get(json_object *o, const char *key, json_type t) {
        json_object *v;
        if (!o || !json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, t))
                return NULL;
        return v;
}

int pgbackrest_info_parse(const char *json, const char *stanza, pgbr_info *ret, char **ret_error) {
        json_object *root = json_tokener_parse(json), *st = NULL, *v, *a;
        pgbr_info i = {};

        for (size_t k = 0; root && json_object_is_type(root, json_type_array) && k < json_object_array_length(root); k++) {
                json_object *e = json_object_array_get_idx(root, k);
                if ((v = get(e, "name", json_type_string)) && streq(json_object_get_string(v), stanza))
                        st = e;
        }
        if (!st || !(v = get(st, "status", json_type_object)) || !get(v, "code", json_type_int)) {
                json_object_put(root);
                *ret_error = xasprintf("pgbackrest info: no stanza '%s' in its output", stanza);
                return -EBADMSG;
        }
        i.status_code = json_object_get_int(get(v, "code", json_type_int));
        i.status_message = xstrdup(get(v, "message", json_type_string) ? json_object_get_string(get(v, "message", json_type_string)) : "");
        if ((a = get(st, "backup", json_type_array))) {
                size_t n = json_object_array_length(a);
                i.backups = n ? xcalloc(n, sizeof(pgbr_backup)) : NULL;
                for (size_t k = 0; k < n; k++) {
                        json_object *b = json_object_array_get_idx(a, k), *ts = get(b, "timestamp", json_type_object),
                                    *inf = get(b, "info", json_type_object), *repo = get(inf, "repository", json_type_object);
                        pgbr_backup *x = &i.backups[i.n_backups];
                        if (!get(b, "label", json_type_string) || !get(b, "type", json_type_string) || !ts)
                                continue;
                        x->label = xstrdup(json_object_get_string(get(b, "label", json_type_string)));
                        x->type = xstrdup(json_object_get_string(get(b, "type", json_type_string)));
                        x->start = get(ts, "start", json_type_int) ? json_object_get_int64(get(ts, "start", json_type_int)) : 0;
                        x->stop = get(ts, "stop", json_type_int) ? json_object_get_int64(get(ts, "stop", json_type_int)) : 0;
                        x->size = get(inf, "size", json_type_int) ? (uint64_t) json_object_get_int64(get(inf, "size", json_type_int)) : 0;
                        x->repo_size = get(repo, "size", json_type_int) ? (uint64_t) json_object_get_int64(get(repo, "size", json_type_int)) : 0;
                        x->error = get(b, "error", json_type_boolean) && json_object_get_boolean(get(b, "error", json_type_boolean));
                        i.n_backups++;
                }
        }
        if ((a = get(st, "archive", json_type_array)) && json_object_array_length(a) > 0) {
                /* The current database's range: the last entry. */
                json_object *e = json_object_array_get_idx(a, json_object_array_length(a) - 1);
                if ((v = get(e, "min", json_type_string)))
                        i.archive_min = xstrdup(json_object_get_string(v));
                if ((v = get(e, "max", json_type_string)))
                        i.archive_max = xstrdup(json_object_get_string(v));
        }
        json_object_put(root);
        *ret = i;
        return 0;
}

int pgbackrest_info(const agent_config *cfg, const char *db, pgbr_info *ret, char **ret_error) {
        const char *args[] = { "--output=json", "info", NULL };
        proc_result res = {};
        int r;

        r = pgbackrest_run(cfg, db, args, &res, ret_error);
        if (r >= 0) {
                /* stdout and stderr are one stream: the JSON is what starts with '['. */
                const char *j = strchr(res.output, '[');
                r = pgbackrest_info_parse(j ? j : res.output, db, ret, ret_error);
        }
        proc_result_done(&res);
        return r;
}
