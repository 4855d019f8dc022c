/* The encryption reconciler (encryption.h): decides what is protected how; fscrypt.c, luks.c and
 * datakeys.c do the work. */
#include <dirent.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "datakeys.h"
#include "encryption.h"
#include "fileio.h"
#include "fscrypt.h"
#include "luks.h"
#include "macro.h"
#include "proc.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(DIR *, closedir);

/* "org/ou/env/project/db": the controller's name for the database, the key's context. */
static char *database_key(const doc_database *db) {
        return xasprintf("%s/%s/%s/%s/%s", db->identity.organization, db->identity.organizational_unit,
                         db->identity.environment, db->identity.project, db->name);
}

static encryption_mode effective_mode(const agent_config *cfg) {
        if (cfg->encryption == ENCRYPTION_AUTO)
                return cfg->data_device ? ENCRYPTION_LUKS : ENCRYPTION_FSCRYPT;
        return cfg->encryption;
}

static const char *why_fetch_failed(int r) {
        switch (r) {
        case -ENOENT:
                return "no controller to ask";
        case -EKEYREJECTED:
                return "the controller's answer does not open";
        default:
                return ENCRYPTION_LOCKED;
        }
}

bool encryption_waiting(const results *res) {
        for (size_t i = 0; i < res->n; i++)
                if (res->items[i].state == RES_FAILED && streq(res->items[i].kind, "encryption") && res->items[i].detail &&
                    strncmp(res->items[i].detail, ENCRYPTION_LOCKED, strlen(ENCRYPTION_LOCKED)) == 0)
                        return true;
        return false;
}

/* --- fscrypt --------------------------------------------------------------------------------- */

/* One directory of a database: <data-root>/<db> or <backup-root>/<db>. */
typedef struct fs_dir {
        char *root, *path;
        int policy;                 /* 1 encrypted, 0 plain and empty or missing (to encrypt) */
        fscrypt_policy_info info;
        bool key_present;
} fs_dir;

typedef struct fs_db {
        const doc_database *db;
        char *key;                  /* database key */
        fs_dir dirs[2];
        size_t n_dirs;
        bool needs_key, failed;
} fs_db;

static void fs_db_done(fs_db *f) {
        free(f->key);
        for (size_t i = 0; i < f->n_dirs; i++) {
                free(f->dirs[i].root);
                free(f->dirs[i].path);
        }
}

static int dir_is_empty(const char *path) {
        _cleanup_(closedirp) DIR *d = opendir(path);
        struct dirent *de;

        if (!d)
                return -errno;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        return 0;
        return 1;
}

/* What dir is now; false (with the result line) when the database cannot go on. */
static bool fs_inspect(fs_dir *x, const char *name, results *res) {
        _cleanup_free_ char *err = NULL;
        fscrypt_key_state ks;
        int r;

        r = mkdir_root(x->root);
        if (r < 0) {
                results_add(res, "encryption", name, RES_FAILED, "cannot create %s: %s", x->root, strerror(-r));
                return false;
        }
        r = fscrypt_check_support(x->root, &err);
        if (r < 0) {
                results_add(res, "encryption", name, RES_FAILED,
                            "refusing to create or start the database: %s; encrypt it with LUKS2 (data-device) or "
                            "state encryption = none in the agent's config", err);
                return false;
        }
        r = fscrypt_get_policy(x->path, &x->info, &err);
        if (r == -ENOENT) {
                x->policy = 0;
                return true;
        }
        if (r < 0) {
                results_add(res, "encryption", name, RES_FAILED, "%s", err);
                return false;
        }
        x->policy = r;
        if (r == 0) {
                /* fscrypt encrypts only new files: a policy over existing ones would leave them in
                 * clear while the directory claims to be encrypted. Never moved nor deleted here. */
                if (dir_is_empty(x->path) != 1) {
                        results_add(res, "encryption", name, RES_FAILED,
                                    "%s holds unencrypted files: refusing to use it (nothing was changed); move "
                                    "them away, or state encryption = none", x->path);
                        return false;
                }
                return true;
        }
        r = fscrypt_key_status(x->root, &x->info.id, &ks, &err);
        if (r < 0) {
                results_add(res, "encryption", name, RES_FAILED, "%s", err);
                return false;
        }
        x->key_present = ks == FSCRYPT_KEY_PRESENT;
        return true;
}

/* The key ids the controller's keys were checked to have, per database: <state-dir>/encryption.json.
 * A key id is a hash of the key (safe to keep); with it a pass over unlocked directories needs no
 * key and no controller. */
static char *ids_path(const agent_config *cfg) {
        return xasprintf("%s/encryption.json", cfg->state_dir);
}

static json_object *ids_load(const agent_config *cfg) {
        _cleanup_free_ char *path = ids_path(cfg), *text = NULL;
        json_object *o = NULL;

        if (read_full_file(path, 1 << 20, &text, NULL) >= 0)
                o = json_tokener_parse(text);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                o = json_object_new_object();
        }
        return o;
}

static bool ids_match(json_object *ids, const char *name, const fscrypt_key_id *id) {
        json_object *v;
        char hex[FSCRYPT_ID_HEX_SIZE];

        return json_object_object_get_ex(ids, name, &v) && json_object_is_type(v, json_type_string) &&
               streq(json_object_get_string(v), fscrypt_key_id_to_hex(id, hex));
}

static void ids_save(const agent_config *cfg, json_object *ids, results *res) {
        _cleanup_free_ char *path = ids_path(cfg);
        const char *text = json_object_to_json_string_ext(ids, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
        int r;

        (void) mkdir_p(cfg->state_dir, 0700);
        r = write_file_atomic(path, text, strlen(text), 0600);
        if (r < 0)
                results_add(res, "encryption", path, RES_FAILED, "cannot write: %s", strerror(-r));
}

/* Hand the database's key to the kernel for each directory, check the encrypted ones are under
 * exactly that key, and encrypt the new ones. */
static bool fs_unlock(const agent_config *cfg, fs_db *f, const datakey *k, json_object *ids, results *res) {
        fscrypt_key_id id = {};
        bool created = false, had_key = false;
        char a[FSCRYPT_ID_HEX_SIZE], b[FSCRYPT_ID_HEX_SIZE];
        uid_t uid;
        gid_t gid;
        int r;

        r = user_lookup(cfg->os_user, &uid, &gid, NULL);
        if (r < 0) {
                results_add(res, "encryption", f->db->name, RES_FAILED, "OS user '%s' not found", cfg->os_user);
                return false;
        }
        /* The same key gives the same id on every filesystem. */
        for (size_t i = 0; i < f->n_dirs; i++) {
                _cleanup_free_ char *err = NULL;
                r = fscrypt_add_key(f->dirs[i].root, k->key, sizeof(k->key), &id, &err);
                if (r < 0) {
                        results_add(res, "encryption", f->db->name, RES_FAILED, "%s", err);
                        goto undo;
                }
        }
        for (size_t i = 0; i < f->n_dirs; i++) {
                fs_dir *x = &f->dirs[i];
                if (x->policy == 1 && x->key_present && fscrypt_key_id_equal(&x->info.id, &id))
                        had_key = true;
        }
        for (size_t i = 0; i < f->n_dirs; i++) {
                fs_dir *x = &f->dirs[i];
                if (x->policy == 1 && !fscrypt_key_id_equal(&id, &x->info.id)) {
                        results_add(res, "encryption", f->db->name, RES_FAILED,
                                    "%s is encrypted with key %s, but the controller's key for %s is %s: refusing "
                                    "to use it (nothing was changed; was the controller's state replaced?)",
                                    x->path, fscrypt_key_id_to_hex(&x->info.id, a), f->key,
                                    fscrypt_key_id_to_hex(&id, b));
                        goto undo;
                }
        }
        for (size_t i = 0; i < f->n_dirs; i++) {
                _cleanup_free_ char *err = NULL;
                fs_dir *x = &f->dirs[i];

                if (x->policy == 1)
                        continue;
                r = mkdir_owned(x->path, 0700, uid, gid);
                if (r >= 0)
                        r = fscrypt_set_policy(x->path, &id, &err);
                if (r < 0) {
                        results_add(res, "encryption", f->db->name, RES_FAILED, "%s: %s", x->path,
                                    err ? err : strerror(-r));
                        goto undo;
                }
                created = true;
        }
        json_object_object_add(ids, f->db->name, json_object_new_string(fscrypt_key_id_to_hex(&id, a)));
        results_add(res, "encryption", f->db->name, created ? RES_CREATED : RES_CHANGED, "fscrypt, key %s: %s", a,
                    created ? "encrypted with the controller's key" : "unlocked with the controller's key");
        return true;
undo:
        /* Take our claims back unless the key was in use already; the data stays as it was. */
        for (size_t i = 0; i < f->n_dirs && !had_key; i++)
                (void) fscrypt_remove_key(f->dirs[i].root, &id, NULL);
        return false;
}

static void reconcile_fscrypt(const agent_config *cfg, const doc_document *d, bool *ready, results *res) {
        fs_db *dbs = d->n_databases ? xcalloc(d->n_databases, sizeof(fs_db)) : NULL;
        const char **want = d->n_databases ? xcalloc(d->n_databases, sizeof(char *)) : NULL;
        _cleanup_free_ char *err = NULL;
        json_object *ids = ids_load(cfg);
        datakeys keys = {};
        size_t n_want = 0;
        int r = 0;

        for (size_t i = 0; i < d->n_databases; i++) {
                fs_db *f = &dbs[i];

                f->db = &d->databases[i];
                f->key = database_key(f->db);
                /* The backup root holds the local repository and, with S3 too, the drills' restored
                 * copies: the key goes into its filesystem's keyring as well. */
                f->dirs[f->n_dirs++] = (fs_dir) { xstrdup(cfg->data_root), xasprintf("%s/%s", cfg->data_root, f->db->name) };
                f->dirs[f->n_dirs++] = (fs_dir) { xstrdup(cfg->backup_root),
                                                  xasprintf("%s/%s", cfg->backup_root, f->db->name) };
                for (size_t j = 0; j < f->n_dirs && !f->failed; j++) {
                        fs_dir *x = &f->dirs[j];
                        if (!fs_inspect(x, f->db->name, res))
                                f->failed = true;
                        /* Unlocked under the key checked before: nothing to ask for. */
                        else if (x->policy == 0 || !x->key_present || !ids_match(ids, f->db->name, &x->info.id))
                                f->needs_key = true;
                }
                if (f->failed)
                        continue;
                if (f->needs_key)
                        want[n_want++] = f->key;
                else
                        ready[i] = true;
        }
        if (n_want > 0)
                r = datakeys_fetch(cfg, want, n_want, &keys, &err);
        for (size_t i = 0; i < d->n_databases; i++) {
                fs_db *f = &dbs[i];

                if (!f->failed && f->needs_key) {
                        if (r < 0)
                                results_add(res, "encryption", f->db->name, RES_FAILED, "%s: %s", why_fetch_failed(r), err);
                        else
                                ready[i] = fs_unlock(cfg, f, datakeys_find(&keys, f->key), ids, res);
                }
                fs_db_done(f);
        }
        if (n_want > 0 && r >= 0)
                ids_save(cfg, ids, res);
        json_object_put(ids);
        datakeys_done(&keys);
        free(want);
        free(dbs);
}

int encryption_protect_dir(const agent_config *cfg, const char *db, const char *dir, char **ret_error) {
        _cleanup_free_ char *data = xasprintf("%s/%s", cfg->data_root, db);
        fscrypt_policy_info info;
        int r;

        if (effective_mode(cfg) != ENCRYPTION_FSCRYPT)
                return 0;
        r = fscrypt_get_policy(data, &info, ret_error);
        if (r < 0)
                return r;
        if (r == 0) {
                *ret_error = xasprintf("%s is not encrypted: refusing to restore %s's data into %s", data, db, dir);
                return -ENOKEY;
        }
        return fscrypt_set_policy(dir, &info.id, ret_error);
}

/* --- LUKS2 ----------------------------------------------------------------------------------- */

static bool path_under(const char *path, const char *dir) {
        size_t n = strlen(dir);
        return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

/* The source of the filesystem mounted exactly at path, from /proc/self/mountinfo, or NULL. The
 * kernel lists canonical paths: "/srv/data/" or a symlink would never match as written. */
static char *mount_source_at(const char *given) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        _cleanup_free_ char *line = NULL, *path = realpath(given, NULL);
        char *source = NULL;
        size_t alloc = 0;

        if (!f || !path)
                return NULL;
        while (getline(&line, &alloc, f) > 0) {
                char mnt[4096], src[4096];
                const char *sep = strstr(line, " - ");

                /* id parent major:minor root mount-point options ... - fstype source options */
                if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 || sscanf(sep + 3, "%*s %4095s", src) != 1)
                        continue;
                if (streq(mnt, path)) { /* the last one mounted there wins */
                        free(source);
                        source = xstrdup(src);
                }
        }
        return source;
}

static int run_mkfs(const char *dev, char **ret_error) {
        const char *argv[] = { "/sbin/mkfs.ext4", "-q", "-L", "infrastream", dev, NULL };
        proc_result pr = {};
        char line[256];
        int r;

        r = proc_run(argv, NULL, NULL, NULL, &pr);
        if (r < 0)
                *ret_error = xasprintf("cannot run %s: %s", argv[0], strerror(-r));
        else if (pr.exit_status != 0) {
                *ret_error = xasprintf("mkfs.ext4 %s failed: %s", dev, proc_last_line(&pr, line, sizeof(line)));
                r = -EIO;
        }
        proc_result_done(&pr);
        return r;
}

/* Open the volume with the first key that has a keyslot, give it a filesystem when it has none,
 * mount it at the data root. */
static int luks_unlock(const agent_config *cfg, const datakeys *keys, const datakey **ret_opened, char **ret_error) {
        _cleanup_free_ char *mapped = xasprintf("/dev/mapper/%s", ENCRYPTION_DM_NAME);
        luks_content content;
        const char *what;
        int r = -ENOKEY;

        for (size_t i = 0; i < keys->n; i++) {
                int ks = luks_find_keyslot(cfg->data_device, keys->keys[i].database, NULL);
                if (ks < 0)
                        continue;
                free(*ret_error);
                *ret_error = NULL;
                r = luks_open(cfg->data_device, ENCRYPTION_DM_NAME, ks, keys->keys[i].key, ret_error);
                if (r >= 0) {
                        *ret_opened = &keys->keys[i];
                        break;
                }
        }
        if (r == -ENOKEY)
                *ret_error = xasprintf("%s has no keyslot for any database in the document", cfg->data_device);
        if (r < 0)
                return r;
        /* A volume formatted here reads as noise until it has a filesystem: its header says so. */
        r = luks_mkfs_pending(cfg->data_device, ret_error);
        if (r < 0)
                return r;
        if (r > 0) {
                r = run_mkfs(mapped, ret_error);
                if (r >= 0)
                        r = luks_clear_mkfs_pending(cfg->data_device, ret_error);
                if (r < 0)
                        return r;
        } else if ((r = luks_probe(mapped, &content, &what, ret_error)) < 0)
                return r;
        else if (!what || !streq(what, "an ext4 filesystem")) {
                *ret_error = xasprintf("%s holds %s, not the ext4 filesystem the agent makes: refusing to mount it",
                                       mapped, what ? what : "unrecognised data");
                return -EMEDIUMTYPE;
        }
        r = mkdir_root(cfg->data_root);
        if (r >= 0 && mount(mapped, cfg->data_root, "ext4", MS_NOSUID | MS_NODEV, NULL) < 0)
                r = -errno;
        if (r < 0)
                *ret_error = xasprintf("cannot mount %s at %s: %s", mapped, cfg->data_root, strerror(-r));
        return r;
}

static void reconcile_luks(const agent_config *cfg, const doc_document *d, bool *ready, results *res) {
        _cleanup_free_ char *src = mount_source_at(cfg->data_root), *err = NULL,
                            *mapped = xasprintf("/dev/mapper/%s", ENCRYPTION_DM_NAME);
        const char **want = d->n_databases ? xcalloc(d->n_databases, sizeof(char *)) : NULL;
        char **names = d->n_databases ? xcalloc(d->n_databases, sizeof(char *)) : NULL;
        bool mounted = src && streq(src, mapped), formatted = false;
        const datakey *opened = NULL;
        datakeys keys = {};
        luks_content content = LUKS_CONTENT_LUKS;
        const char *what = NULL;
        size_t n_want = 0;
        int r = 0;

        if (d->n_databases == 0)
                goto done;
        /* The local repository and the drills' restored copies live there. */
        if (!path_under(cfg->backup_root, cfg->data_root)) {
                r = -EINVAL;
                err = xasprintf("backup-root %s is not on the encrypted data-root %s: put it under %s", cfg->backup_root,
                                cfg->data_root, cfg->data_root);
                goto done;
        }
        for (size_t i = 0; i < d->n_databases; i++)
                names[i] = database_key(&d->databases[i]);
        if (!mounted) {
                if (!luks_dm_available()) {
                        r = -ENODEV;
                        err = xasprintf("cannot use %s: %s", cfg->data_device, LUKS_NO_DM_REASON);
                        goto done;
                }
                r = luks_probe(cfg->data_device, &content, &what, &err);
                if (r < 0)
                        goto done;
                if (content == LUKS_CONTENT_OTHER) {
                        r = -EEXIST;
                        err = xasprintf("%s holds %s: refusing to format it (nothing was written)", cfg->data_device, what);
                        goto done;
                }
                for (size_t i = 0; i < d->n_databases; i++)
                        want[n_want++] = names[i];
        } else
                /* Open: only databases without a keyslot yet need keys (theirs and one that opens). */
                for (size_t i = 0; i < d->n_databases; i++) {
                        _cleanup_free_ char *e = NULL;
                        if (luks_find_keyslot(cfg->data_device, names[i], &e) >= 0)
                                continue;
                        if (n_want == 0)
                                for (size_t j = 0; j < d->n_databases; j++)
                                        if (j != i && luks_find_keyslot(cfg->data_device, names[j], NULL) >= 0) {
                                                want[n_want++] = names[j];
                                                break;
                                        }
                        want[n_want++] = names[i];
                }
        if (n_want > 0) {
                r = datakeys_fetch(cfg, want, n_want, &keys, &err);
                if (r < 0) {
                        char *e = xasprintf("%s: %s", why_fetch_failed(r), err);
                        free(err);
                        err = e;
                        goto done;
                }
        }
        if (content == LUKS_CONTENT_EMPTY) {
                r = luks_format(cfg->data_device, keys.keys[0].key, NULL, &err);
                if (r >= 0)
                        r = luks_tag_keyslot(cfg->data_device, 0, keys.keys[0].database, &err);
                if (r < 0)
                        goto done;
                formatted = true;
        }
        if (!mounted) {
                r = luks_unlock(cfg, &keys, &opened, &err);
                if (r < 0)
                        goto done;
        }
        /* Every database's key opens the volume: add the keyslots that are missing. */
        for (size_t i = 0; i < keys.n; i++) {
                if (luks_find_keyslot(cfg->data_device, keys.keys[i].database, NULL) >= 0)
                        continue;
                if (!opened)
                        for (size_t j = 0; j < keys.n && !opened; j++)
                                if (luks_find_keyslot(cfg->data_device, keys.keys[j].database, NULL) >= 0)
                                        opened = &keys.keys[j];
                if (!opened) {
                        r = -ENOKEY;
                        err = xasprintf("%s: no key of this host's databases opens it", cfg->data_device);
                        goto done;
                }
                r = luks_add_key(cfg->data_device, luks_find_keyslot(cfg->data_device, opened->database, NULL),
                                 opened->key, keys.keys[i].key, keys.keys[i].database, NULL, &err);
                if (r < 0)
                        goto done;
        }
        r = 0;
done:
        for (size_t i = 0; i < d->n_databases; i++) {
                if (r < 0)
                        results_add(res, "encryption", d->databases[i].name, RES_FAILED, "%s", err);
                else {
                        ready[i] = true;
                        if (n_want > 0)
                                results_add(res, "encryption", d->databases[i].name, formatted ? RES_CREATED : RES_CHANGED,
                                            "LUKS2 %s, mounted at %s", cfg->data_device, cfg->data_root);
                }
                if (names)
                        free(names[i]);
        }
        datakeys_done(&keys);
        free(names);
        free(want);
}

/* --- both ------------------------------------------------------------------------------------ */

void encryption_reconcile(const agent_config *cfg, const doc_document *d, bool *ready, results *res) {
        switch (effective_mode(cfg)) {
        case ENCRYPTION_NONE:
                for (size_t i = 0; i < d->n_databases; i++)
                        ready[i] = true;
                return;
        case ENCRYPTION_LUKS:
                reconcile_luks(cfg, d, ready, res);
                return;
        default:
                reconcile_fscrypt(cfg, d, ready, res);
                return;
        }
}

void encryption_status(const agent_config *cfg, const char *db, encryption_state *ret) {
        _cleanup_free_ char *data = xasprintf("%s/%s", cfg->data_root, db), *err = NULL;
        fscrypt_policy_info info;
        fscrypt_key_state ks;
        int r;

        switch (effective_mode(cfg)) {
        case ENCRYPTION_NONE:
                *ret = (encryption_state) { "none", "none", false, false };
                return;
        case ENCRYPTION_LUKS: {
                _cleanup_free_ char *src = mount_source_at(cfg->data_root),
                                    *mapped = xasprintf("/dev/mapper/%s", ENCRYPTION_DM_NAME);
                luks_content content;
                const char *what;

                if (src && streq(src, mapped))
                        *ret = (encryption_state) { "luks2", "unlocked", true, false };
                else if (access(mapped, F_OK) == 0) /* the next pass mounts it */
                        *ret = (encryption_state) { "luks2", "open, not mounted", false, true };
                else if ((r = luks_probe(cfg->data_device, &content, &what, &err)) < 0)
                        *ret = (encryption_state) { "luks2", "unknown", false, true };
                else if (r >= 0 && content == LUKS_CONTENT_LUKS)
                        *ret = (encryption_state) { "luks2", ENCRYPTION_LOCKED, false, true };
                else /* not formatted yet, or refused: the encryption result says why */
                        *ret = (encryption_state) { "luks2", "not set up", false, true };
                return;
        }
        default:
                break;
        }
        r = fscrypt_get_policy(data, &info, &err);
        if (r == -ENOENT || (r == 0 && dir_is_empty(data) == 1))
                *ret = (encryption_state) { "fscrypt", "not set up", false, true };
        else if (r == 0)
                *ret = (encryption_state) { "fscrypt", "unencrypted", false, true };
        else if (r < 0 || fscrypt_key_status(cfg->data_root, &info.id, &ks, &err) < 0)
                *ret = (encryption_state) { "fscrypt", "unknown", false, true };
        else if (ks == FSCRYPT_KEY_PRESENT)
                *ret = (encryption_state) { "fscrypt", "unlocked", true, false };
        else
                *ret = (encryption_state) { "fscrypt", ENCRYPTION_LOCKED, false, true };
}
