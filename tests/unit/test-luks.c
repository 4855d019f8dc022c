/* Unit tests for the LUKS2 wrapper on file-backed images with the real libcryptsetup: format and
 * read the header back, keys right and wrong, refusals of images that hold data (nothing written),
 * a header that is not ours, databases' keyslots and their tokens. Built a second time as test-luks-open for opening, mkfs and mount,
 * which need device-mapper and root and skip with the reason without them. */
#include "unit.h"

#include <ftw.h>
#include <sys/mount.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <libcryptsetup.h>

#include "jsondec.h"
#include "luks.h"

#define IMAGE_SIZE (32u * 1024u * 1024u)

/* Small Argon2id costs: the tests are about the format, not the work factor. */
static const luks_pbkdf_cost cheap = { .iterations = 4, .memory_kb = 8 * 1024, .threads = 1 };

typedef struct fixture {
        char dir[64];
        char *image;
        uint8_t key[LUKS_KEY_SIZE], wrong[LUKS_KEY_SIZE];
        uint8_t other[LUKS_KEY_SIZE]; /* a second database's */
        char *dm_name, *mnt; /* set while a mapping may be active or mounted: teardown undoes it */
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void make_image(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, IMAGE_SIZE), 0);
}

static uint8_t *read_image(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        uint8_t *buf = xmalloc(IMAGE_SIZE);
        size_t n = 0;

        assert_true(fd >= 0);
        while (n < IMAGE_SIZE) {
                ssize_t k = read(fd, buf + n, IMAGE_SIZE - n);
                assert_true(k > 0);
                n += (size_t) k;
        }
        return buf;
}

static int run(const char *const argv[]) {
        int status;
        pid_t pid = fork();

        assert_true(pid >= 0);
        if (pid == 0) {
                execv(argv[0], (char *const *) argv);
                _exit(127);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static const char *mkfs_ext4(void) {
        if (access("/usr/sbin/mkfs.ext4", X_OK) == 0)
                return "/usr/sbin/mkfs.ext4";
        if (access("/sbin/mkfs.ext4", X_OK) == 0)
                return "/sbin/mkfs.ext4";
        return NULL;
}

static int setup(void **state) {
        fixture *f = xcalloc(1, sizeof(fixture));

        strcpy(f->dir, "/tmp/test-luks.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->image = xasprintf("%s/disk.img", f->dir);
        make_image(f->image);
        assert_int_equal(getrandom(f->key, sizeof(f->key), 0), (ssize_t) sizeof(f->key));
        memcpy(f->wrong, f->key, sizeof(f->key));
        f->wrong[LUKS_KEY_SIZE - 1] ^= 0x01; /* one bit off */
        assert_int_equal(getrandom(f->other, sizeof(f->other), 0), (ssize_t) sizeof(f->other));
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture *f = *state;

        if (f->mnt)
                (void) umount2(f->mnt, MNT_DETACH);
        if (f->dm_name) {
                _cleanup_free_ char *err = NULL;
                (void) luks_close(f->dm_name, &err);
        }
        free(f->dm_name);
        free(f->mnt);
        explicit_bzero(f->key, sizeof(f->key));
        explicit_bzero(f->wrong, sizeof(f->wrong));
        explicit_bzero(f->other, sizeof(f->other));
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f->image);
        free(f);
        return 0;
}

#ifndef LUKS_OPEN_TEST
/* An error message never carries a key's bytes. */
static void assert_no_key(const char *err, const uint8_t key[LUKS_KEY_SIZE]) {
        assert_non_null(err);
        assert_null(memmem(err, strlen(err), key, LUKS_KEY_SIZE));
}

/* database has no keyslot, and its key opens none: both said without the key. */
static void assert_no_keyslot(const fixture *f, const char *database, const uint8_t key[LUKS_KEY_SIZE]) {
        _cleanup_free_ char *err = NULL;

        assert_int_equal(luks_find_keyslot(f->image, database, &err), -ENOENT);
        assert_no_key(err, key);
        free(err);
        err = NULL;
        assert_int_equal(luks_check_key(f->image, key, &err), -EPERM);
        assert_no_key(err, key);
}

static void test_format_and_header(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *err = NULL;
        _cleanup_free_ uint8_t *raw = NULL;
        struct crypt_device *cd = NULL;
        struct crypt_pbkdf_type p = {};
        luks_content content;
        const char *what;
        luks_info info;

        assert_int_equal(luks_probe(f->image, &content, &what, &err), 0);
        assert_int_equal(content, LUKS_CONTENT_EMPTY);
        assert_null(what);

        assert_int_equal(luks_format(f->image, f->key, &cheap, &err), 0);
        assert_null(err);

        /* Read back with libcryptsetup directly, not only through the wrapper. */
        assert_int_equal(crypt_init(&cd, f->image), 0);
        assert_int_equal(crypt_load(cd, CRYPT_LUKS2, NULL), 0);
        assert_string_equal(crypt_get_type(cd), CRYPT_LUKS2);
        assert_string_equal(crypt_get_cipher(cd), "aes");
        assert_string_equal(crypt_get_cipher_mode(cd), "xts-plain64");
        assert_int_equal(crypt_get_volume_key_size(cd), 64);
        assert_int_equal(crypt_keyslot_status(cd, 0), CRYPT_SLOT_ACTIVE_LAST);
        assert_int_equal(crypt_keyslot_get_pbkdf(cd, 0, &p), 0);
        assert_string_equal(p.type, CRYPT_KDF_ARGON2ID);
        assert_int_equal(p.iterations, cheap.iterations);
        assert_int_equal(p.max_memory_kb, cheap.memory_kb);
        assert_int_equal(p.parallel_threads, cheap.threads);
        crypt_free(cd);

        assert_int_equal(luks_inspect(f->image, &info, &err), 0);
        assert_string_equal(info.type, "LUKS2");
        assert_string_equal(info.cipher, "aes");
        assert_string_equal(info.cipher_mode, "xts-plain64");
        assert_int_equal(info.volume_key_bits, 512);
        assert_int_equal(info.n_keyslots, 1);
        assert_string_equal(info.pbkdf, "argon2id");
        assert_int_equal(strlen(info.uuid), 36);
        assert_int_equal(luks_verify(f->image, &err), 0);

        /* A new volume says it still needs its filesystem until told otherwise, once. */
        assert_int_equal(luks_mkfs_pending(f->image, &err), 1);
        assert_int_equal(luks_clear_mkfs_pending(f->image, &err), 1);
        assert_int_equal(luks_mkfs_pending(f->image, &err), 0);
        assert_int_equal(luks_clear_mkfs_pending(f->image, &err), 0);
        assert_int_equal(luks_verify(f->image, &err), 0);
        assert_null(err);

        assert_int_equal(luks_probe(f->image, &content, &what, &err), 0);
        assert_int_equal(content, LUKS_CONTENT_LUKS);
        assert_string_equal(what, "a LUKS2 header");

        /* The key is only an Argon2id input: it is nowhere in the image. */
        raw = read_image(f->image);
        assert_memory_equal(raw, "LUKS\xba\xbe", 6);
        assert_null(memmem(raw, IMAGE_SIZE, f->key, sizeof(f->key)));
}

static void test_keys(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *err = NULL;

        assert_int_equal(luks_format(f->image, f->key, &cheap, &err), 0);
        /* The keyslot opens without activation: no device-mapper involved. */
        assert_int_equal(luks_check_key(f->image, f->key, &err), 0);
        assert_null(err);

        assert_int_equal(luks_check_key(f->image, f->wrong, &err), -EPERM);
        assert_non_null(err);
        assert_non_null(strstr(err, "the key opens no keyslot"));
        assert_non_null(strstr(err, f->image));
        assert_no_key(err, f->wrong);
}

static void test_refuse_luks(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *err = NULL;
        _cleanup_free_ uint8_t *before = NULL, *after = NULL;

        assert_int_equal(luks_format(f->image, f->key, &cheap, &err), 0);
        before = read_image(f->image);
        assert_int_equal(luks_format(f->image, f->other, &cheap, &err), -EEXIST);
        assert_non_null(err);
        assert_non_null(strstr(err, "holds a LUKS2 header: refusing to format it"));
        after = read_image(f->image);
        assert_memory_equal(before, after, IMAGE_SIZE);
        /* Still opened by the first key. */
        free(err);
        err = NULL;
        assert_int_equal(luks_check_key(f->image, f->key, &err), 0);
}

static void test_refuse_ext4(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *err = NULL;
        _cleanup_free_ uint8_t *before = NULL, *after = NULL;
        const char *mkfs = mkfs_ext4();
        luks_content content;
        const char *what;

        assert_non_null(mkfs); /* e2fsprogs: a real ext4, not a forged superblock */
        assert_int_equal(run((const char *const[]) { mkfs, "-q", "-F", f->image, NULL }), 0);
        assert_int_equal(luks_probe(f->image, &content, &what, &err), 0);
        assert_int_equal(content, LUKS_CONTENT_OTHER);
        assert_string_equal(what, "an ext4 filesystem");

        before = read_image(f->image);
        assert_int_equal(luks_format(f->image, f->key, &cheap, &err), -EEXIST);
        assert_non_null(strstr(err, "holds an ext4 filesystem: refusing to format it"));
        after = read_image(f->image);
        assert_memory_equal(before, after, IMAGE_SIZE);
}

static void test_refuse_other_data(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *err = NULL;
        _cleanup_close_ int fd = -EBADF;
        luks_content content;
        const char *what;

        /* One stray byte where no signature lives is still someone's data. */
        fd = open(f->image, O_WRONLY | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "x", 1, 40000), 1);
        assert_int_equal(luks_probe(f->image, &content, &what, &err), 0);
        assert_int_equal(content, LUKS_CONTENT_OTHER);
        assert_non_null(strstr(what, "unrecognised data"));
        assert_int_equal(luks_format(f->image, f->key, &cheap, &err), -EEXIST);
        assert_non_null(strstr(err, "holds unrecognised data"));

        /* An xfs superblock by its magic. */
        free(err);
        err = NULL;
        assert_int_equal(pwrite(fd, "XFSB", 4, 0), 4);
        assert_int_equal(luks_probe(f->image, &content, &what, &err), 0);
        assert_string_equal(what, "an xfs filesystem");

        /* Not a device or image at all. */
        assert_int_equal(luks_probe(f->dir, &content, &what, &err), -ENOTBLK);
        assert_non_null(strstr(err, "neither a block device nor an image file"));
}

/* An image too small for header and data: refused before anything is written (libcryptsetup
 * itself would grow the file to hold the header). */
static void test_refuse_too_small(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *err = NULL;
        _cleanup_close_ int fd = -EBADF;
        luks_content content;
        const char *what;
        struct stat st;

        fd = open(f->image, O_WRONLY | O_TRUNC | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 1024 * 1024), 0);
        assert_int_equal(luks_format(f->image, f->key, &cheap, &err), -ENOSPC);
        assert_non_null(strstr(err, "is too small for LUKS2: 1048576 bytes"));
        free(err);
        err = NULL;
        assert_int_equal(luks_probe(f->image, &content, &what, &err), 0);
        assert_int_equal(content, LUKS_CONTENT_EMPTY);
        assert_int_equal(stat(f->image, &st), 0);
        assert_int_equal(st.st_size, 1024 * 1024);
}

static void test_not_luks(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *err = NULL;
        luks_info info;

        assert_int_equal(luks_inspect(f->image, &info, &err), -EINVAL);
        assert_non_null(strstr(err, "holds no LUKS header"));
        free(err);
        err = NULL;
        assert_int_equal(luks_check_key(f->image, f->key, &err), -EINVAL);
        free(err);
        err = NULL;
        assert_int_equal(luks_verify(f->image, &err), -EINVAL);
}

/* A LUKS2 header somebody else made (cbc, pbkdf2) is not what we format: verify says how. */
static void test_verify_foreign(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *err = NULL;
        struct crypt_device *cd = NULL;
        struct crypt_pbkdf_type pbkdf = { .type = CRYPT_KDF_PBKDF2, .hash = "sha256", .iterations = 1000,
                                          .flags = CRYPT_PBKDF_NO_BENCHMARK };
        struct crypt_params_luks2 params = { .pbkdf = &pbkdf };

        assert_int_equal(crypt_init(&cd, f->image), 0);
        assert_int_equal(crypt_format(cd, CRYPT_LUKS2, "aes", "xts-plain64", NULL, NULL, 64, &params), 0);
        assert_true(crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0, (const char *) f->key,
                                                    sizeof(f->key)) >= 0);
        crypt_free(cd);
        assert_int_equal(luks_verify(f->image, &err), -EBADMSG);
        assert_non_null(strstr(err, "keyslot 0 uses pbkdf2, not argon2id"));

        make_image(f->image);
        free(err);
        err = NULL;
        pbkdf.type = CRYPT_KDF_ARGON2ID;
        pbkdf.iterations = 4;
        pbkdf.max_memory_kb = 8 * 1024;
        pbkdf.parallel_threads = 1;
        assert_int_equal(crypt_init(&cd, f->image), 0);
        assert_int_equal(crypt_format(cd, CRYPT_LUKS2, "aes", "cbc-essiv:sha256", NULL, NULL, 32, &params), 0);
        crypt_free(cd);
        assert_int_equal(luks_verify(f->image, &err), -EBADMSG);
        assert_non_null(strstr(err, "uses cipher aes-cbc-essiv:sha256, not aes-xts-plain64"));
}

/* One keyslot per database, each named by a token of ours: read back through libcryptsetup too. */
static void test_keyslots_of_databases(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *err = NULL, *expected = NULL;
        _cleanup_free_ uint8_t *raw = NULL;
        struct crypt_device *cd = NULL;
        struct crypt_pbkdf_type p = {};
        const char *type = NULL, *json = NULL;
        luks_info info;

        assert_int_equal(luks_format(f->image, f->key, &cheap, &err), 0);
        assert_int_equal(luks_tag_keyslot(f->image, 0, "o/u/e/p/a", &err), 0);
        assert_null(err);
        assert_int_equal(luks_find_keyslot(f->image, "o/u/e/p/a", &err), 0);
        assert_null(err);

        assert_int_equal(luks_find_keyslot(f->image, "o/u/e/p/b", &err), -ENOENT);
        expected = xasprintf("'%s' has no keyslot for database o/u/e/p/b", f->image);
        assert_string_equal(err, expected);
        free(err);
        err = NULL;

        assert_int_equal(luks_add_key(f->image, 0, f->key, f->other, "o/u/e/p/b", &cheap, &err), 1);
        assert_null(err);
        assert_int_equal(luks_find_keyslot(f->image, "o/u/e/p/b", &err), 1);
        assert_int_equal(luks_find_keyslot(f->image, "o/u/e/p/a", &err), 0);
        assert_int_equal(luks_check_key(f->image, f->other, &err), 1);
        assert_int_equal(luks_check_key(f->image, f->key, &err), 0);
        assert_int_equal(luks_inspect(f->image, &info, &err), 0);
        assert_int_equal(info.n_keyslots, 2);
        assert_int_equal(luks_verify(f->image, &err), 0);
        assert_null(err);
        /* Only the keyslot named is tried: a's key does not open b's keyslot, and nothing is added. */
        assert_int_equal(luks_add_key(f->image, 1, f->key, f->wrong, "o/u/e/p/c", &cheap, &err), -EPERM);
        free(err);
        err = NULL;
        assert_int_equal(luks_inspect(f->image, &info, &err), 0);
        assert_int_equal(info.n_keyslots, 2);

        assert_int_equal(crypt_init(&cd, f->image), 0);
        assert_int_equal(crypt_load(cd, CRYPT_LUKS2, NULL), 0);
        assert_int_equal(crypt_keyslot_get_pbkdf(cd, 1, &p), 0);
        assert_string_equal(p.type, CRYPT_KDF_ARGON2ID);
        assert_int_equal(p.iterations, cheap.iterations);
        assert_int_equal(p.max_memory_kb, cheap.memory_kb);
        /* Token 0 is the format's "filesystem pending", 1 database a's keyslot, 2 b's. */
        assert_int_equal(crypt_token_status(cd, 2, &type), CRYPT_TOKEN_EXTERNAL_UNKNOWN);
        assert_string_equal(type, LUKS_TOKEN_TYPE);
        assert_int_equal(crypt_token_json_get(cd, 2, &json), 2);
        assert_string_equal(json, "{\"type\":\"infrastream-database\",\"keyslots\":[\"1\"],\"database\":\"o/u/e/p/b\"}");
        crypt_free(cd);

        /* The databases with a keyslot, sorted, each once (c has none: its key opened nothing). */
        {
                char **names = NULL;
                size_t n = 0;

                assert_int_equal(luks_list_keyslots(f->image, &names, &n, &err), 0);
                assert_int_equal(n, 2);
                assert_string_equal(names[0], "o/u/e/p/a");
                assert_string_equal(names[1], "o/u/e/p/b");
                strv_free_n(names, n);
        }

        /* Like the first key, the second is only an Argon2id input. */
        raw = read_image(f->image);
        assert_null(memmem(raw, IMAGE_SIZE, f->other, sizeof(f->other)));
}

/* A key that opens nothing adds nothing, and neither key shows in the message. */
static void test_add_key_wrong_key(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *err = NULL;
        luks_info info;

        assert_int_equal(luks_format(f->image, f->key, &cheap, &err), 0);
        assert_int_equal(luks_tag_keyslot(f->image, 0, "o/u/e/p/a", &err), 0);

        assert_int_equal(luks_add_key(f->image, LUKS_ANY_KEYSLOT, f->wrong, f->other, "o/u/e/p/b", &cheap, &err), -EPERM);
        assert_non_null(strstr(err, "the key opens no keyslot"));
        assert_non_null(strstr(err, f->image));
        assert_no_key(err, f->wrong);
        assert_no_key(err, f->other);
        assert_no_key(err, f->key);
        free(err);
        err = NULL;

        assert_int_equal(luks_inspect(f->image, &info, &err), 0);
        assert_int_equal(info.n_keyslots, 1);
        assert_no_keyslot(f, "o/u/e/p/b", f->other);
}

/* A token outlives the keyslot it named (libcryptsetup drops the keyslot from the token, not the
 * token): such a database has no keyslot. */
static void test_destroyed_keyslot(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *err = NULL;
        struct crypt_device *cd = NULL;

        assert_int_equal(luks_format(f->image, f->key, &cheap, &err), 0);
        assert_int_equal(luks_tag_keyslot(f->image, 0, "o/u/e/p/a", &err), 0);
        assert_int_equal(luks_add_key(f->image, 0, f->key, f->other, "o/u/e/p/b", &cheap, &err), 1);

        assert_int_equal(crypt_init(&cd, f->image), 0);
        assert_int_equal(crypt_load(cd, CRYPT_LUKS2, NULL), 0);
        assert_int_equal(crypt_keyslot_destroy(cd, 1), 0);
        assert_int_equal(crypt_token_status(cd, 1, NULL), CRYPT_TOKEN_EXTERNAL_UNKNOWN);
        crypt_free(cd);

        assert_no_keyslot(f, "o/u/e/p/b", f->other);
        assert_int_equal(luks_find_keyslot(f->image, "o/u/e/p/a", &err), 0);
        /* Nor is it listed. */
        {
                char **names = NULL;
                size_t n = 0;

                assert_int_equal(luks_list_keyslots(f->image, &names, &n, &err), 0);
                assert_int_equal(n, 1);
                assert_string_equal(names[0], "o/u/e/p/a");
                strv_free_n(names, n);
        }
}

/* Without device-mapper, opening fails with the reason instead of pretending. */
static void test_open_without_dm(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *err = NULL;

        assert_int_equal(luks_format(f->image, f->key, &cheap, &err), 0);
        assert_int_equal(luks_open(f->image, "infrastream-test", LUKS_ANY_KEYSLOT, f->key, &err), -ENODEV);
        assert_non_null(strstr(err, LUKS_NO_DM_REASON));
        free(err);
        err = NULL;
        assert_int_equal(luks_close("infrastream-test", &err), -ENODEV);
        free(err);
        err = NULL;
        assert_int_equal(luks_open(f->image, "../evil", LUKS_ANY_KEYSLOT, f->key, &err), -EINVAL);
}

#else
static void test_open_mkfs_mount(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *err = NULL, *dev = NULL, *marker = NULL;
        _cleanup_free_ uint8_t *raw = NULL;
        const char *mkfs = mkfs_ext4();
        static const char text[] = "infrastream-luks-marker-5b1e0c";
        struct stat st;

        assert_non_null(mkfs);
        f->dm_name = xasprintf("infrastream-test-%d", (int) getpid());
        f->mnt = xasprintf("%s/mnt", f->dir);
        dev = xasprintf("/dev/mapper/%s", f->dm_name);
        marker = xasprintf("%s/marker", f->mnt);
        assert_int_equal(mkdir(f->mnt, 0700), 0);

        assert_int_equal(luks_format(f->image, f->key, &cheap, &err), 0);
        assert_int_equal(luks_open(f->image, f->dm_name, LUKS_ANY_KEYSLOT, f->wrong, &err), -EPERM);
        free(err);
        err = NULL;
        assert_int_equal(luks_open(f->image, f->dm_name, 0, f->key, &err), 1);
        assert_int_equal(luks_open(f->image, f->dm_name, 0, f->key, &err), 0); /* already open: nothing to do */
        assert_int_equal(stat(dev, &st), 0);
        assert_true(S_ISBLK(st.st_mode));

        assert_int_equal(run((const char *const[]) { mkfs, "-q", dev, NULL }), 0);
        assert_int_equal(mount(dev, f->mnt, "ext4", 0, NULL), 0);
        {
                _cleanup_close_ int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                assert_true(fd >= 0);
                assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t) sizeof(text) - 1);
                assert_int_equal(fsync(fd), 0);
        }
        assert_int_equal(umount(f->mnt), 0);
        free(f->mnt);
        f->mnt = NULL;
        assert_int_equal(luks_close(f->dm_name, &err), 1);
        assert_int_equal(luks_close(f->dm_name, &err), 0);
        free(f->dm_name);
        f->dm_name = NULL;

        /* On disk there is only ciphertext. */
        raw = read_image(f->image);
        assert_null(memmem(raw, IMAGE_SIZE, text, sizeof(text) - 1));
}
#endif

#ifndef LUKS_OPEN_TEST
/* As root, libcryptsetup's first crypt_format() has libdevmapper create /dev/mapper/control
 * even on a kernel without device-mapper. A test leaves the machine as it found it: remove the
 * node (and the directory) when they were not there before and nothing answers behind them. */
static bool mapper_dir_existed;

static void remove_stray_mapper_node(void) {
        if (mapper_dir_existed || luks_dm_available())
                return;
        (void) unlink("/dev/mapper/control");
        (void) rmdir("/dev/mapper");
}
#endif

/* Built twice: test-luks runs everything a file needs, test-luks-open (LUKS_OPEN_TEST) the
 * device-mapper part. That one skips as a whole with a TAP "1..0 # SKIP reason" plan: cmocka 1.1.5
 * prints a skip() as "not ok ... # SKIP", which the TAP driver counts as a failure. */
int main(void) {
#ifdef LUKS_OPEN_TEST
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open_mkfs_mount, setup, teardown),
        };

        if (!luks_dm_available()) {
                printf("1..0 # SKIP %s\n", LUKS_NO_DM_REASON);
                return 0;
        }
        if (geteuid() != 0) {
                printf("1..0 # SKIP needs root (mkfs and mount on /dev/mapper)\n");
                return 0;
        }
        return cmocka_run_group_tests_name("luks-open", tests, NULL, NULL);
#else
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_format_and_header, setup, teardown),
                cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuse_luks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuse_ext4, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuse_other_data, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuse_too_small, setup, teardown),
                cmocka_unit_test_setup_teardown(test_not_luks, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_foreign, setup, teardown),
                cmocka_unit_test_setup_teardown(test_keyslots_of_databases, setup, teardown),
                cmocka_unit_test_setup_teardown(test_add_key_wrong_key, setup, teardown),
                cmocka_unit_test_setup_teardown(test_destroyed_keyslot, setup, teardown),
                cmocka_unit_test_setup_teardown(test_open_without_dm, setup, teardown),
        };

        /* The last one is about device-mapper's absence; with it present test-luks-open opens. */
        size_t n = ELEMENTSOF(tests) - (luks_dm_available() ? 1 : 0);
        int r;

        mapper_dir_existed = access("/dev/mapper", F_OK) == 0;
        r = _cmocka_run_group_tests("luks", tests, n, NULL, NULL);
        remove_stray_mapper_node();
        return r;
#endif
}
