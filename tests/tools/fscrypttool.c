/* Test tool: one directory's fscrypt state, for the end-to-end tests to lock a database (what a
 * reboot does) and to make a directory encrypted with a key the controller does not have. Never
 * installed.
 *
 *   fscrypttool status DIR          "encrypted KEYID present|absent|incompletely-removed", or
 *                                   "unencrypted" (also on a filesystem without fscrypt)
 *   fscrypttool remove-key DIR      remove the key of DIR's policy from DIR's filesystem: "removed",
 *                                   "files busy" (open files keep it until they are closed) or
 *                                   "other users" (they still hold it)
 *   fscrypttool encrypt-random DIR  add a fresh random 32-byte key and make it the policy of DIR,
 *                                   which must be empty; prints the key's identifier
 *
 * Errors: a message on stderr, exit 1 (2: usage). */
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "fscrypt.h"
#include "macro.h"

static const char *const key_states[] = {
        [FSCRYPT_KEY_ABSENT] = "absent",
        [FSCRYPT_KEY_PRESENT] = "present",
        [FSCRYPT_KEY_INCOMPLETELY_REMOVED] = "incompletely-removed",
};

static const char *const removals[] = {
        [FSCRYPT_REMOVED] = "removed",
        [FSCRYPT_REMOVED_FILES_BUSY] = "files busy",
        [FSCRYPT_REMOVED_OTHER_USERS] = "other users",
};

/* DIR's key: 1 with *ret when DIR is encrypted, 0 when not. */
static int policy_key(const char *dir, fscrypt_key_id *ret, char **ret_error) {
        fscrypt_policy_info p;
        int r = fscrypt_get_policy(dir, &p, ret_error);

        if (r > 0)
                *ret = p.id;
        return r;
}

static int status(const char *dir, char **ret_error) {
        fscrypt_key_id id;
        fscrypt_key_state s;
        char hex[FSCRYPT_ID_HEX_SIZE];
        int r;

        r = policy_key(dir, &id, ret_error);
        /* A filesystem that cannot encrypt holds no encrypted directory. */
        if (r == 0 || r == -EOPNOTSUPP) {
                puts("unencrypted");
                return 0;
        }
        if (r < 0)
                return r;
        r = fscrypt_key_status(dir, &id, &s, ret_error);
        if (r < 0)
                return r;
        printf("encrypted %s %s\n", fscrypt_key_id_to_hex(&id, hex), key_states[s]);
        return 0;
}

/* The mount point of dir's filesystem: the last directory up from it on the same device. */
static int mount_point(const char *dir, char **ret, char **ret_error) {
        _cleanup_free_ char *p = realpath(dir, NULL);
        struct stat st, up;

        if (!p || stat(p, &st) < 0) {
                int r = -errno;
                *ret_error = xasprintf("cannot resolve %s: %s", dir, strerror(-r));
                return r;
        }
        while (!streq(p, "/")) {
                const char *slash = strrchr(p, '/');
                char *parent = slash == p ? xstrdup("/") : xstrndup(p, (size_t) (slash - p));

                if (stat(parent, &up) < 0 || up.st_dev != st.st_dev) {
                        free(parent);
                        break;
                }
                free(p);
                p = parent;
        }
        *ret = TAKE_PTR(p);
        return 0;
}

static int remove_key(const char *dir, char **ret_error) {
        _cleanup_free_ char *mnt = NULL;
        fscrypt_key_id id;
        int r;

        r = policy_key(dir, &id, ret_error);
        if (r == 0) {
                *ret_error = xasprintf("%s is not encrypted: it has no key to remove", dir);
                return -EINVAL;
        }
        if (r < 0)
                return r;
        /* Not through dir itself: the ioctl's open directory would be a file still using the key,
         * and the removal would always end "files busy". */
        r = mount_point(dir, &mnt, ret_error);
        if (r < 0)
                return r;
        r = fscrypt_remove_key(mnt, &id, ret_error);
        if (r < 0)
                return r;
        puts(removals[r]);
        return 0;
}

static int encrypt_random(const char *dir, char **ret_error) {
        _cleanup_free_ char *ignored = NULL;
        uint8_t key[32];
        fscrypt_key_id id;
        char hex[FSCRYPT_ID_HEX_SIZE];
        int r;

        if (getrandom(key, sizeof(key), 0) != (ssize_t) sizeof(key)) {
                r = -errno;
                *ret_error = xasprintf("cannot draw a random key: %s", strerror(-r));
                return r;
        }
        r = fscrypt_add_key(dir, key, sizeof(key), &id, ret_error);
        explicit_bzero(key, sizeof(key));
        if (r < 0)
                return r;
        r = fscrypt_set_policy(dir, &id, ret_error);
        if (r < 0) {
                /* A key nothing uses would stay in the filesystem's keyring until unmounted. */
                (void) fscrypt_remove_key(dir, &id, &ignored);
                return r;
        }
        puts(fscrypt_key_id_to_hex(&id, hex));
        return 0;
}

int main(int argc, char **argv) {
        _cleanup_free_ char *err = NULL;
        int r;

        if (argc != 3) {
                fputs("usage: fscrypttool status|remove-key|encrypt-random DIR\n", stderr);
                return 2;
        }
        if (streq(argv[1], "status"))
                r = status(argv[2], &err);
        else if (streq(argv[1], "remove-key"))
                r = remove_key(argv[2], &err);
        else if (streq(argv[1], "encrypt-random"))
                r = encrypt_random(argv[2], &err);
        else {
                fprintf(stderr, "fscrypttool: unknown command '%s' (status, remove-key, encrypt-random)\n", argv[1]);
                return 2;
        }
        if (r < 0) {
                fprintf(stderr, "fscrypttool: %s\n", err ? err : strerror(-r));
                return 1;
        }
        return 0;
}
