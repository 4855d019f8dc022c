/* Atomic JSON state files under the state directory (0700; files 0600: documents for
 * application hosts carry passwords). */
#include <fcntl.h>
#include <json-c/json.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include "fileio.h"
#include "macro.h"
#include "state.h"

#define APPLIED_FILE "applied.json"
#define DESIRED_FILE "desired.json"

int state_prepare(const agent_config *cfg, char **ret_error) {
        int r = mkdir_p(cfg->state_dir, 0700);
        if (r < 0) {
                *ret_error = xasprintf("cannot create state directory %s: %s", cfg->state_dir, strerror(-r));
                return r;
        }
        if (chmod(cfg->state_dir, 0700) < 0) {
                *ret_error = xasprintf("cannot restrict %s to 0700: %s", cfg->state_dir, strerror(errno));
                return -errno;
        }
        return 0;
}

int state_lock(const agent_config *cfg, char **ret_error) {
        _cleanup_free_ char *path = xasprintf("%s/lock", cfg->state_dir);
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

        if (fd < 0) {
                *ret_error = xasprintf("cannot open %s: %s", path, strerror(errno));
                return -errno;
        }
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                int r = -errno;
                if (errno == EWOULDBLOCK) {
                        /* Another apply is running: wait for it rather than fail. */
                        if (flock(fd, LOCK_EX) == 0)
                                return fd;
                        r = -errno;
                }
                *ret_error = xasprintf("cannot lock %s: %s", path, strerror(-r));
                close(fd);
                return r;
        }
        return fd;
}

void applied_state_done(applied_state *s) {
        free(s->commit);
        results_done(&s->results);
        *s = (applied_state) {};
}

int state_load_applied(const agent_config *cfg, applied_state *ret, char **ret_error) {
        _cleanup_free_ char *path = xasprintf("%s/%s", cfg->state_dir, APPLIED_FILE), *text = NULL;
        json_object *o, *v;
        applied_state s = {};
        int r;

        r = read_full_file(path, 64u << 20, &text, NULL);
        if (r == -ENOENT) {
                *ret = s;
                return 0;
        }
        if (r < 0) {
                *ret_error = xasprintf("cannot read %s: %s", path, strerror(-r));
                return r;
        }
        o = json_tokener_parse(text);
        if (!o || !json_object_object_get_ex(o, "revision", &v) || !json_object_is_type(v, json_type_int)) {
                json_object_put(o);
                *ret_error = xasprintf("%s is damaged; move it away to start over", path);
                return -EBADMSG;
        }
        s.revision = (uint64_t) json_object_get_int64(v);
        if (json_object_object_get_ex(o, "contentHash", &v))
                snprintf(s.content_hash, sizeof(s.content_hash), "%s", json_object_get_string(v));
        if (json_object_object_get_ex(o, "commit", &v))
                s.commit = xstrdup(json_object_get_string(v));
        if (json_object_object_get_ex(o, "appliedAt", &v))
                s.applied_at = json_object_get_int64(v);
        if (json_object_object_get_ex(o, "results", &v))
                (void) results_from_json(v, &s.results);
        json_object_put(o);
        *ret = s;
        return 0;
}

int state_save_applied(const agent_config *cfg, const applied_state *s, char **ret_error) {
        _cleanup_free_ char *path = xasprintf("%s/%s", cfg->state_dir, APPLIED_FILE);
        json_object *o = json_object_new_object();
        const char *text;
        int r;

        json_object_object_add(o, "revision", json_object_new_int64((int64_t) s->revision));
        json_object_object_add(o, "contentHash", json_object_new_string(s->content_hash));
        json_object_object_add(o, "commit", json_object_new_string(strempty(s->commit)));
        json_object_object_add(o, "appliedAt", json_object_new_int64(s->applied_at));
        json_object_object_add(o, "results", results_to_json(&s->results));
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
        r = write_file_atomic(path, text, strlen(text), 0600);
        json_object_put(o);
        if (r < 0) {
                *ret_error = xasprintf("cannot write %s: %s", path, strerror(-r));
                return r;
        }
        return 0;
}

int state_save_desired(const agent_config *cfg, const char *json, size_t size, char **ret_error) {
        _cleanup_free_ char *path = xasprintf("%s/%s", cfg->state_dir, DESIRED_FILE);
        int r = write_file_atomic(path, json, size, 0600);
        if (r < 0) {
                *ret_error = xasprintf("cannot write %s: %s", path, strerror(-r));
                return r;
        }
        return 0;
}

int state_load_desired(const agent_config *cfg, doc_document **ret, char **ret_error) {
        _cleanup_free_ char *path = xasprintf("%s/%s", cfg->state_dir, DESIRED_FILE), *json = NULL, *err = NULL;
        size_t size;
        int r;

        r = read_full_file(path, DOC_MAX_SIZE, &json, &size);
        if (r < 0) {
                *ret_error = r == -ENOENT ? xasprintf("no document applied yet (%s is missing): run 'agentctl apply' "
                                                      "first",
                                                      path)
                                          : xasprintf("cannot read %s: %s", path, strerror(-r));
                return r;
        }
        r = doc_decode(json, size, ret, NULL, NULL, &err);
        /* Application hosts' documents carry passwords. */
        explicit_bzero(json, size);
        if (r < 0)
                *ret_error = xasprintf("%s is damaged (%s); apply a document again", path, err);
        return r;
}
