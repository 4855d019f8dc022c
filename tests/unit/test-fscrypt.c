/* fscrypt against the real kernel: ext4 images loop-mounted in a private mount namespace (they
 * vanish with the test, even when it crashes). A marker written under an encrypted directory is
 * absent from the raw image while one outside it is there; removing the key locks names and
 * contents, a wrong key unlocks nothing, the right one brings the data back intact; non-empty
 * directories, filesystems without the feature and other filesystems are refused with the reason.
 * Needs root and loop devices: skips (TAP "1..0 # SKIP") with the reason otherwise. */
#include "unit.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "fscrypt.h"

#define CONTENT_MARKER "infrastream-fscrypt-content-marker-7f3a9c"
#define NAME_MARKER "infrastream-name-marker-b81e"
#define CONTROL_MARKER "infrastream-fscrypt-control-marker-52d0e4"

static struct world {
        char dir[64];
        char *img, *mnt;             /* ext4 with -O encrypt */
        char *plain_img, *plain_mnt; /* ext4 without it */
        char *tmpfs_mnt;
        bool mounted, plain_mounted, tmpfs_mounted;
} w;

/* Run a shell command; its output (stderr included) in *ret_output when asked. */
static int run(char **ret_output, const char *fmt, ...) _printf_(2, 3);
static int run(char **ret_output, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *cmd = NULL, *full = NULL;
        if (vasprintf(&cmd, fmt, ap) < 0)
                abort();
        va_end(ap);
        full = xasprintf("%s 2>&1", cmd);
        FILE *p = popen(full, "re");
        if (!p)
                return -errno;
        char buf[4096];
        size_t n = fread(buf, 1, sizeof(buf) - 1, p);
        buf[n] = 0;
        while (n && buf[n - 1] == '\n')
                buf[--n] = 0;
        int status = pclose(p);
        if (ret_output)
                *ret_output = xstrdup(buf);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static int make_image(const char *path, const char *features, char **ret_output) {
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, 64 << 20) < 0) {
                *ret_output = xasprintf("cannot create %s: %s", path, strerror(errno));
                return -errno;
        }
        return run(ret_output, "mkfs.ext4 -q -F -O %s '%s'", features, path);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void world_done(void) {
        /* The namespace would drop the mounts anyway; unmounting also frees the loop devices now. */
        if (w.tmpfs_mounted && umount2(w.tmpfs_mnt, MNT_DETACH) == 0)
                w.tmpfs_mounted = false;
        if (w.plain_mounted && umount2(w.plain_mnt, MNT_DETACH) == 0)
                w.plain_mounted = false;
        if (w.mounted && umount2(w.mnt, MNT_DETACH) == 0)
                w.mounted = false;
        if (w.dir[0] && !w.mounted && !w.plain_mounted && !w.tmpfs_mounted)
                nftw(w.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(w.img);
        free(w.mnt);
        free(w.plain_img);
        free(w.plain_mnt);
        free(w.tmpfs_mnt);
}

/* Build the world or say why this machine cannot: NULL on success, the reason otherwise. */
static char *world_init(void) {
        if (geteuid() != 0)
                return xstrdup("needs root (loop mounts, fscrypt keys)");
        if (access("/sys/fs/ext4/features/encryption", F_OK) < 0)
                return xstrdup("this kernel's ext4 has no fscrypt support (no /sys/fs/ext4/features/encryption)");
        if (unshare(CLONE_NEWNS) < 0)
                return xasprintf("cannot make a private mount namespace: %s", strerror(errno));
        if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0)
                return xasprintf("cannot make mounts private: %s", strerror(errno));
        strcpy(w.dir, "/tmp/test-fscrypt.XXXXXX");
        if (!mkdtemp(w.dir)) {
                w.dir[0] = 0;
                return xasprintf("mkdtemp: %s", strerror(errno));
        }
        w.img = xasprintf("%s/enc.img", w.dir);
        w.mnt = xasprintf("%s/enc", w.dir);
        w.plain_img = xasprintf("%s/plain.img", w.dir);
        w.plain_mnt = xasprintf("%s/plain", w.dir);
        w.tmpfs_mnt = xasprintf("%s/tmpfs", w.dir);
        if (mkdir(w.mnt, 0700) < 0 || mkdir(w.plain_mnt, 0700) < 0 || mkdir(w.tmpfs_mnt, 0700) < 0)
                return xasprintf("mkdir: %s", strerror(errno));

        _cleanup_free_ char *out = NULL, *out2 = NULL;
        if (make_image(w.img, "encrypt", &out) < 0)
                return xasprintf("mkfs.ext4 -O encrypt failed: %s", out);
        if (make_image(w.plain_img, "^encrypt", &out2) < 0)
                return xasprintf("mkfs.ext4 failed: %s", out2);
        free(out);
        out = NULL;
        if (run(&out, "mount -o loop '%s' '%s'", w.img, w.mnt) < 0)
                return xasprintf("cannot loop-mount an ext4 image: %s", out);
        w.mounted = true;
        free(out);
        out = NULL;
        if (run(&out, "mount -o loop '%s' '%s'", w.plain_img, w.plain_mnt) < 0)
                return xasprintf("cannot loop-mount a second ext4 image: %s", out);
        w.plain_mounted = true;
        if (mount("tmpfs", w.tmpfs_mnt, "tmpfs", 0, "size=1m") < 0)
                return xasprintf("cannot mount tmpfs: %s", strerror(errno));
        w.tmpfs_mounted = true;
        return NULL;
}

/* --- helpers ---------------------------------------------------------------------------------- */

static void random_key(uint8_t *key, size_t n) {
        assert_int_equal(getrandom(key, n, 0), (ssize_t) n);
}

static char *path_in(const char *dir, const char *rel) {
        return xasprintf("%s/%s", dir, rel);
}

static void write_marker_file(const char *path, const char *marker) {
        /* Many copies across a few blocks: one surviving in clear anywhere would be found. */
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        for (int i = 0; i < 512; i++) {
                assert_int_equal(write(fd, marker, strlen(marker)), (ssize_t) strlen(marker));
                assert_int_equal(write(fd, "\n", 1), 1);
        }
        assert_int_equal(fsync(fd), 0);
}

static bool file_is_marker_file(const char *path, const char *marker) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return false;
        size_t len = strlen(marker) + 1;
        _cleanup_free_ char *want = xmalloc(len), *buf = xmalloc(len);
        memcpy(want, marker, len - 1);
        want[len - 1] = '\n';
        for (int i = 0; i < 512; i++)
                if (read(fd, buf, len) != (ssize_t) len || memcmp(buf, want, len) != 0)
                        return false;
        return read(fd, buf, 1) == 0;
}

/* Whether the raw image holds s: what a stolen disk would show. */
static bool image_contains(const char *img, const char *s) {
        _cleanup_close_ int mfd = open(w.mnt, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(mfd >= 0);
        /* syncfs writes through the loop device into the image file's page cache, which is what
         * read() below sees. */
        assert_int_equal(syncfs(mfd), 0);
        _cleanup_close_ int fd = open(img, O_RDONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        _cleanup_free_ char *data = xmalloc(st.st_size);
        size_t got = 0;
        while (got < (size_t) st.st_size) {
                ssize_t n = read(fd, data + got, st.st_size - got);
                assert_true(n > 0);
                got += n;
        }
        return memmem(data, got, s, strlen(s)) != NULL;
}

/* The single entry of dir, as listed (encrypted names appear encoded without the key). */
static char *only_entry(const char *dir) {
        DIR *d = opendir(dir);
        assert_non_null(d);
        char *name = NULL;
        struct dirent *de;
        while ((de = readdir(d))) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                assert_null(name);
                name = xstrdup(de->d_name);
        }
        closedir(d);
        assert_non_null(name);
        return name;
}

static void assert_status(const fscrypt_key_id *id, fscrypt_key_state want) {
        _cleanup_free_ char *err = NULL;
        fscrypt_key_state s;
        assert_int_equal(fscrypt_key_status(w.mnt, id, &s, &err), 0);
        assert_int_equal(s, want);
}

/* err by reference: it is read after the call that fills it, whatever the order of arguments. */
static void assert_error(int r, int want_r, char **err, const char *want_text) {
        if (r != want_r || !*err || !strstr(*err, want_text))
                fail_msg("got %d (%s), want %d with '%s'", r, strempty(*err), want_r, want_text);
        free(*err);
        *err = NULL;
}

/* --- tests ------------------------------------------------------------------------------------ */

static void test_support(void **state) {
        char *err = NULL;
        assert_int_equal(fscrypt_check_support(w.mnt, &err), 0);
        assert_null(err);
        assert_int_equal(fscrypt_get_policy(w.mnt, NULL, &err), 0);

        /* ext4 without the feature: the fix is named, with the device. */
        int r = fscrypt_check_support(w.plain_mnt, &err);
        fprintf(stderr, "# %s\n", strempty(err));
        _cleanup_free_ char *want = xasprintf("the filesystem of %s has no 'encrypt' feature: tune2fs -O encrypt /dev/loop",
                                              w.plain_mnt);
        assert_error(r, -EOPNOTSUPP, &err, want);
        assert_error(fscrypt_get_policy(w.plain_mnt, NULL, &err), -EOPNOTSUPP, &err, "no 'encrypt' feature");

        /* A filesystem without fscrypt at all. */
        r = fscrypt_check_support(w.tmpfs_mnt, &err);
        fprintf(stderr, "# %s\n", strempty(err));
        free(want);
        want = xasprintf("%s is on tmpfs, which has no fscrypt support", w.tmpfs_mnt);
        assert_error(r, -EOPNOTSUPP, &err, want);

        assert_error(fscrypt_check_support("/nonexistent-fscrypt-dir", &err), -ENOENT, &err, "cannot open /nonexistent");
        _cleanup_free_ char *link = path_in(w.mnt, "link");
        assert_int_equal(symlink(w.mnt, link), 0);
        assert_error(fscrypt_check_support(link, &err), -ELOOP, &err, "is a symbolic link");
        assert_int_equal(unlink(link), 0);
}

static void test_key_arguments(void **state) {
        uint8_t key[64] = {};
        fscrypt_key_id id = {};
        char *err = NULL;
        assert_error(fscrypt_add_key(w.mnt, key, 16, &id, &err), -EINVAL, &err, "must be 32 or 64 bytes, not 16");
        assert_error(fscrypt_add_key(w.plain_mnt, key, 32, &id, &err), -EOPNOTSUPP, &err, "no 'encrypt' feature");
        /* Never added: removing it says so, and its status is absent. */
        random_key(id.b, sizeof(id.b));
        assert_error(fscrypt_remove_key(w.mnt, &id, &err), -ENOKEY, &err, "does not have fscrypt key");
        assert_status(&id, FSCRYPT_KEY_ABSENT);

        char hex[FSCRYPT_ID_HEX_SIZE];
        memset(id.b, 0xa5, sizeof(id.b));
        id.b[0] = 0x01;
        assert_string_equal(fscrypt_key_id_to_hex(&id, hex), "01a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5");
}

static void test_lock_unlock(void **state) {
        uint8_t key[32], wrong[32];
        random_key(key, sizeof(key));
        random_key(wrong, sizeof(wrong));
        char *err = NULL;
        fscrypt_key_id id, wrong_id;
        assert_int_equal(fscrypt_add_key(w.mnt, key, sizeof(key), &id, &err), 0);
        assert_null(err);
        assert_status(&id, FSCRYPT_KEY_PRESENT);

        _cleanup_free_ char *dir = path_in(w.mnt, "data");
        assert_int_equal(mkdir(dir, 0700), 0);
        assert_int_equal(fscrypt_set_policy(dir, &id, &err), 0);
        assert_null(err);
        assert_int_equal(fscrypt_set_policy(dir, &id, &err), 1); /* the second apply changes nothing */
        fscrypt_policy_info p;
        assert_int_equal(fscrypt_get_policy(dir, &p, &err), 1);
        assert_true(fscrypt_key_id_equal(&p.id, &id));
        assert_int_equal(p.version, 2);
        assert_int_equal(p.contents_mode, 1);   /* AES-256-XTS */
        assert_int_equal(p.filenames_mode, 4);  /* AES-256-CTS */
        assert_int_equal(p.flags, 0x03);        /* names padded to 32 bytes */
        assert_int_equal(fscrypt_check_support(dir, &err), 0);

        _cleanup_free_ char *file = path_in(dir, NAME_MARKER);
        _cleanup_free_ char *control = path_in(w.mnt, "control");
        write_marker_file(file, CONTENT_MARKER);
        write_marker_file(control, CONTROL_MARKER);
        assert_true(file_is_marker_file(file, CONTENT_MARKER));

        /* What a stolen disk shows: the control in clear, neither the encrypted contents nor name. */
        assert_true(image_contains(w.img, CONTROL_MARKER));
        assert_false(image_contains(w.img, CONTENT_MARKER));
        assert_false(image_contains(w.img, NAME_MARKER));

        /* An open file keeps the key in use: the removal says so and completes once it is closed. */
        int busy = open(file, O_RDONLY | O_CLOEXEC);
        assert_true(busy >= 0);
        assert_int_equal(fscrypt_remove_key(w.mnt, &id, &err), FSCRYPT_REMOVED_FILES_BUSY);
        assert_status(&id, FSCRYPT_KEY_INCOMPLETELY_REMOVED);
        close(busy);
        int r = fscrypt_remove_key(w.mnt, &id, &err);
        if (r < 0)
                fail_msg("second removal: %s", err);
        assert_int_equal(r, FSCRYPT_REMOVED);
        assert_status(&id, FSCRYPT_KEY_ABSENT);

        /* Locked: the name is gone from the listing, the encoded entry cannot be opened. */
        _cleanup_free_ char *name = only_entry(dir);
        assert_string_not_equal(name, NAME_MARKER);
        assert_null(strstr(name, "marker"));
        assert_int_equal(access(file, F_OK), -1);
        assert_int_equal(errno, ENOENT);
        _cleanup_free_ char *locked = path_in(dir, name);
        assert_int_equal(open(locked, O_RDONLY | O_CLOEXEC), -1);
        assert_int_equal(errno, ENOKEY);
        /* Still encrypted with the same key, which the policy names even while it is absent. */
        assert_int_equal(fscrypt_get_policy(dir, &p, &err), 1);
        assert_true(fscrypt_key_id_equal(&p.id, &id));

        /* A wrong key has another identifier and unlocks nothing. */
        assert_int_equal(fscrypt_add_key(w.mnt, wrong, sizeof(wrong), &wrong_id, &err), 0);
        assert_false(fscrypt_key_id_equal(&wrong_id, &id));
        assert_false(fscrypt_key_id_equal(&wrong_id, &p.id));
        assert_int_equal(open(locked, O_RDONLY | O_CLOEXEC), -1);
        assert_int_equal(errno, ENOKEY);
        assert_int_equal(access(file, F_OK), -1);
        r = fscrypt_set_policy(dir, &wrong_id, &err);
        fprintf(stderr, "# %s\n", strempty(err));
        assert_error(r, -EEXIST, &err, "is already encrypted with key");
        assert_int_equal(fscrypt_remove_key(w.mnt, &wrong_id, &err), FSCRYPT_REMOVED);

        /* The right key again: the same identifier, the name and contents back intact. */
        fscrypt_key_id again;
        assert_int_equal(fscrypt_add_key(w.mnt, key, sizeof(key), &again, &err), 0);
        assert_true(fscrypt_key_id_equal(&again, &id));
        assert_true(file_is_marker_file(file, CONTENT_MARKER));
        _cleanup_free_ char *name2 = only_entry(dir);
        assert_string_equal(name2, NAME_MARKER);

        assert_int_equal(fscrypt_remove_key(w.mnt, &id, &err), FSCRYPT_REMOVED);
        explicit_bzero(key, sizeof(key));
        explicit_bzero(wrong, sizeof(wrong));
}

static void test_not_empty_refused(void **state) {
        uint8_t key[32];
        random_key(key, sizeof(key));
        char *err = NULL;
        fscrypt_key_id id;
        assert_int_equal(fscrypt_add_key(w.mnt, key, sizeof(key), &id, &err), 0);
        explicit_bzero(key, sizeof(key));

        _cleanup_free_ char *dir = path_in(w.mnt, "full");
        _cleanup_free_ char *file = path_in(dir, "existing");
        assert_int_equal(mkdir(dir, 0700), 0);
        write_marker_file(file, CONTENT_MARKER);
        int r = fscrypt_set_policy(dir, &id, &err);
        fprintf(stderr, "# %s\n", strempty(err));
        assert_error(r, -ENOTEMPTY, &err, "is not empty and not encrypted");
        assert_int_equal(fscrypt_get_policy(dir, NULL, &err), 0); /* nothing changed */

        /* Not a directory at all, and a symlink to an empty one. */
        assert_error(fscrypt_set_policy(file, &id, &err), -ENOTDIR, &err, "is not a directory");
        _cleanup_free_ char *empty = path_in(w.mnt, "empty"), *link = path_in(w.mnt, "empty-link");
        assert_int_equal(mkdir(empty, 0700), 0);
        assert_int_equal(symlink(empty, link), 0);
        assert_error(fscrypt_set_policy(link, &id, &err), -ELOOP, &err, "is a symbolic link");
        assert_int_equal(fscrypt_get_policy(empty, NULL, &err), 0);

        /* An unsupported filesystem is refused before anything is set. */
        assert_error(fscrypt_set_policy(w.tmpfs_mnt, &id, &err), -EOPNOTSUPP, &err, "is on tmpfs");

        assert_int_equal(fscrypt_remove_key(w.mnt, &id, &err), FSCRYPT_REMOVED);
}

static void test_64_byte_key(void **state) {
        uint8_t key[64];
        random_key(key, sizeof(key));
        char *err = NULL;
        fscrypt_key_id id;
        assert_int_equal(fscrypt_add_key(w.mnt, key, sizeof(key), &id, &err), 0);
        _cleanup_free_ char *dir = path_in(w.mnt, "data64"), *file = path_in(dir, "f");
        assert_int_equal(mkdir(dir, 0700), 0);
        assert_int_equal(fscrypt_set_policy(dir, &id, &err), 0);
        write_marker_file(file, CONTENT_MARKER "-64");
        assert_false(image_contains(w.img, CONTENT_MARKER "-64"));
        assert_int_equal(fscrypt_remove_key(w.mnt, &id, &err), FSCRYPT_REMOVED);
        assert_int_equal(access(file, F_OK), -1);
        fscrypt_key_id again;
        assert_int_equal(fscrypt_add_key(w.mnt, key, sizeof(key), &again, &err), 0);
        assert_true(fscrypt_key_id_equal(&again, &id));
        assert_true(file_is_marker_file(file, CONTENT_MARKER "-64"));
        assert_int_equal(fscrypt_remove_key(w.mnt, &id, &err), FSCRYPT_REMOVED);
        explicit_bzero(key, sizeof(key));
}

static char tool[4096];

/* fscrypttool COMMAND DIR: exit status 0 (want_r 0) with exactly want, or failing (want_r -EIO)
 * with want in its message. */
static void assert_tool(const char *command, const char *dir, int want_r, const char *want) {
        _cleanup_free_ char *out = NULL;
        int r = run(&out, "'%s' %s '%s'", tool, command, dir);
        if (r != want_r || (r == 0 ? !streq(out, want) : !strstr(out, want)))
                fail_msg("fscrypttool %s %s: got %d '%s', want %d '%s'", command, dir, r, out, want_r, want);
}

/* tests/tools/fscrypttool, which the end-to-end tests lock databases with. */
static void test_tool(void **state) {
        const char *builddir = getenv("top_builddir");
        _cleanup_free_ char *dir = path_in(w.mnt, "tool"), *file = path_in(dir, "f"), *id = NULL, *want = NULL;
        _cleanup_free_ char *full = path_in(w.mnt, "tool-full"), *full_file = path_in(full, "f");
        snprintf(tool, sizeof(tool), "%s/tests/tools/fscrypttool", builddir ? builddir : ".");
        if (access(tool, X_OK) < 0)
                skip();
        assert_int_equal(mkdir(dir, 0700), 0);
        assert_tool("status", dir, 0, "unencrypted");
        assert_int_equal(run(&id, "'%s' encrypt-random '%s'", tool, dir), 0);
        assert_int_equal(strlen(id), FSCRYPT_ID_HEX_SIZE - 1);
        want = xasprintf("encrypted %s present", id);
        assert_tool("status", dir, 0, want);
        write_marker_file(file, CONTENT_MARKER "-tool");

        /* Locked as a reboot leaves it: busy while a file is open, then removed. */
        int busy = open(file, O_RDONLY | O_CLOEXEC);
        assert_true(busy >= 0);
        assert_tool("remove-key", dir, 0, "files busy");
        free(want);
        want = xasprintf("encrypted %s incompletely-removed", id);
        assert_tool("status", dir, 0, want);
        close(busy);
        assert_tool("remove-key", dir, 0, "removed");
        free(want);
        want = xasprintf("encrypted %s absent", id);
        assert_tool("status", dir, 0, want);
        assert_int_equal(access(file, F_OK), -1);

        /* Errors say why and fail. */
        assert_tool("remove-key", dir, -EIO, "does not have fscrypt key");
        assert_tool("remove-key", w.mnt, -EIO, "is not encrypted");
        assert_int_equal(mkdir(full, 0700), 0);
        write_marker_file(full_file, CONTROL_MARKER);
        assert_tool("encrypt-random", full, -EIO, "is not empty and not encrypted");
        assert_tool("status", w.tmpfs_mnt, 0, "unencrypted");
        assert_tool("status", "/nonexistent-fscrypt-dir", -EIO, "cannot open /nonexistent-fscrypt-dir");
}

int main(void) {
        _cleanup_free_ char *why = world_init();
        if (why) {
                printf("1..0 # SKIP %s\n", why);
                world_done();
                return 0;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_support),
                cmocka_unit_test(test_key_arguments),
                cmocka_unit_test(test_lock_unlock),
                cmocka_unit_test(test_not_empty_refused),
                cmocka_unit_test(test_64_byte_key),
                cmocka_unit_test(test_tool),
        };
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        world_done();
        return r;
}
