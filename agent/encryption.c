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
#include "jsondec.h"
#include "luks-client.h"
#include "luks-volume.h"
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

/* Databases known to have a keyslot on the device. Keyslots are never removed here, so a pass over
 * a mounted volume whose databases all have one needs nothing from the helper (each connection
 * starts a unit: a pass every minute should not). Only the worker thread reconciles. */
static struct {
        char *device;
        char **names;
        size_t n;
} known_keyslots;

static bool has_keyslot(char *const *names, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(names[i], name))
                        return true;
        return false;
}

static void remember_keyslots(const char *device, const wire_luks_response *m) {
        strv_free_n(known_keyslots.names, known_keyslots.n);
        free(known_keyslots.device);
        known_keyslots.device = xstrdup(device);
        known_keyslots.names = m->n_keyslots ? xcalloc(m->n_keyslots, sizeof(char *)) : NULL;
        for (size_t i = 0; i < m->n_keyslots; i++)
                known_keyslots.names[i] = xstrdup(m->keyslots[i]);
        known_keyslots.n = m->n_keyslots;
}

static bool keyslot_known(const char *device, const char *name) {
        return known_keyslots.device && streq(known_keyslots.device, device) &&
               has_keyslot(known_keyslots.names, known_keyslots.n, name);
}

static int compare_luks_keys(const void *a, const void *b) {
        return strcmp(((const wire_luks_key *) a)->database, ((const wire_luks_key *) b)->database);
}

/* The helper mounts in the host's mount namespace; a helper unit given a namespace of its own
 * (ProtectSystem=, PrivateTmp=, ...) would mount where nobody sees it. */
static int check_mount_visible(const agent_config *cfg, char **ret_error) {
        if (luks_volume_is_mounted(cfg->data_root))
                return 0;
        *ret_error = xasprintf("the LUKS2 helper mounted %s at %s, but the agent does not see that mount: "
                               "infrastream-luks@.service must run in the host's mount namespace (no ProtectSystem=, "
                               "PrivateTmp=, PrivateDevices= or other file system sandboxing in it or its drop-ins)",
                               LUKS_VOLUME_PATH, cfg->data_root);
        return -EREMOTE;
}

/* Unlock with the keys of want: the helper formats, opens, mounts and adds keyslots as needed. */
static int luks_unlock(const agent_config *cfg, const datakeys *keys, bool *ret_formatted, char **ret_error) {
        wire_luks_key *k = xcalloc(keys->n, sizeof(wire_luks_key));
        wire_luks_request q = { .op = WIRE_LUKS_UNLOCK, .device = cfg->data_device, .mount_point = cfg->data_root,
                                .keys = k, .n_keys = keys->n };
        wire_luks_response m = {};
        int r;

        for (size_t i = 0; i < keys->n; i++) {
                k[i].database = keys->keys[i].database;
                memcpy(k[i].key, keys->keys[i].key, WIRE_LUKS_KEY_SIZE);
        }
        qsort(k, keys->n, sizeof(wire_luks_key), compare_luks_keys);
        r = luks_client_call(cfg->luks_helper, &q, &m, ret_error);
        explicit_bzero(k, keys->n * sizeof(wire_luks_key));
        free(k);
        if (r < 0)
                return r;
        remember_keyslots(cfg->data_device, &m);
        *ret_formatted = m.formatted;
        wire_luks_response_done(&m);
        return check_mount_visible(cfg, ret_error);
}

static void reconcile_luks(const agent_config *cfg, const doc_document *d, bool *ready, results *res) {
        _cleanup_free_ char *err = NULL;
        const char **want = d->n_databases ? xcalloc(d->n_databases, sizeof(char *)) : NULL;
        char **names = d->n_databases ? xcalloc(d->n_databases, sizeof(char *)) : NULL;
        bool mounted = luks_volume_is_mounted(cfg->data_root), formatted = false, ask = !mounted;
        wire_luks_request q = { .op = WIRE_LUKS_INSPECT, .device = cfg->data_device, .mount_point = cfg->data_root };
        wire_luks_response state = {};
        datakeys keys = {};
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
        for (size_t i = 0; i < d->n_databases; i++) {
                names[i] = database_key(&d->databases[i]);
                if (!keyslot_known(cfg->data_device, names[i]))
                        ask = true;
        }
        if (!ask)
                goto done;
        r = luks_client_call(cfg->luks_helper, &q, &state, &err);
        if (r < 0)
                goto done;
        remember_keyslots(cfg->data_device, &state);
        if (!mounted) {
                if (state.mounted) {
                        r = check_mount_visible(cfg, &err);
                        goto done;
                }
                if (!state.device_mapper) {
                        r = -ENODEV;
                        err = xasprintf("cannot use %s: %s", cfg->data_device, LUKS_NO_DM_REASON);
                        goto done;
                }
                if (state.content == WIRE_LUKS_OTHER) {
                        r = -EEXIST;
                        err = xasprintf("%s holds %s: refusing to format it (nothing was written)", cfg->data_device,
                                        state.what ? state.what : "unrecognised data");
                        goto done;
                }
                for (size_t i = 0; i < d->n_databases; i++)
                        want[n_want++] = names[i];
        } else
                /* Open: only databases without a keyslot yet need keys (theirs and one that opens). */
                for (size_t i = 0; i < d->n_databases; i++) {
                        if (has_keyslot(state.keyslots, state.n_keyslots, names[i]))
                                continue;
                        if (n_want == 0)
                                for (size_t j = 0; j < d->n_databases; j++)
                                        if (j != i && has_keyslot(state.keyslots, state.n_keyslots, names[j])) {
                                                want[n_want++] = names[j];
                                                break;
                                        }
                        want[n_want++] = names[i];
                }
        if (n_want == 0)
                goto done;
        r = datakeys_fetch(cfg, want, n_want, &keys, &err);
        if (r < 0) {
                char *e = xasprintf("%s: %s", why_fetch_failed(r), err);
                free(err);
                err = e;
                goto done;
        }
        r = luks_unlock(cfg, &keys, &formatted, &err);
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
        wire_luks_response_done(&state);
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
                wire_luks_request q = { .op = WIRE_LUKS_INSPECT, .device = cfg->data_device, .mount_point = cfg->data_root };
                wire_luks_response m = {};

                /* Mounted is all status needs, and asks the helper nothing. */
                if (luks_volume_is_mounted(cfg->data_root))
                        *ret = (encryption_state) { "luks2", "unlocked", true, false };
                else if (luks_client_call(cfg->luks_helper, &q, &m, &err) < 0)
                        *ret = (encryption_state) { "luks2", "unknown", false, true };
                else if (m.active) /* the next pass mounts it */
                        *ret = (encryption_state) { "luks2", "open, not mounted", false, true };
                else if (m.content == WIRE_LUKS_LUKS)
                        *ret = (encryption_state) { "luks2", ENCRYPTION_LOCKED, false, true };
                else /* not formatted yet, or refused: the encryption result says why */
                        *ret = (encryption_state) { "luks2", "not set up", false, true };
                wire_luks_response_done(&m);
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
