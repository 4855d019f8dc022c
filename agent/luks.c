/* LUKS2 through libcryptsetup: probe, format, inspect, check a key, open and close. libcryptsetup's
 * own error messages are captured per context and become part of ours here. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <json-c/json.h>
#include <libcryptsetup.h>

#include "luks.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct crypt_device *, crypt_free);

/* The last error libcryptsetup logged on a context, to explain a negative return. */
typedef struct luks_errlog {
        char msg[256];
} luks_errlog;

static void log_capture(int level, const char *msg, void *userdata) {
        luks_errlog *l = userdata;
        size_t n;

        if (level != CRYPT_LOG_ERROR || !msg)
                return;
        n = strnlen(msg, sizeof(l->msg) - 1);
        memcpy(l->msg, msg, n);
        /* Its messages end in a newline; ours are one line. */
        while (n > 0 && (l->msg[n - 1] == '\n' || l->msg[n - 1] == '.'))
                n--;
        l->msg[n] = '\0';
}

/* Set *ret_error to the message, followed by libcryptsetup's last error when it logged one, else
 * (with_errno) by strerror(-r). Returns r. */
static int fail_full(char **ret_error, int r, const luks_errlog *l, bool with_errno, const char *fmt, va_list ap)
        _printf_(5, 0);
static int fail_full(char **ret_error, int r, const luks_errlog *l, bool with_errno, const char *fmt, va_list ap) {
        _cleanup_free_ char *what = NULL;

        if (!ret_error)
                return r;
        if (vasprintf(&what, fmt, ap) < 0)
                abort();
        if (l && l->msg[0])
                *ret_error = xasprintf("%s: %s", what, l->msg);
        else if (with_errno)
                *ret_error = xasprintf("%s: %s", what, strerror(-r));
        else
                *ret_error = TAKE_PTR(what);
        return r;
}

static int fail(char **ret_error, int r, const luks_errlog *l, const char *fmt, ...) _printf_(4, 5);
static int fail(char **ret_error, int r, const luks_errlog *l, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        r = fail_full(ret_error, r, l, false, fmt, ap);
        va_end(ap);
        return r;
}

static int fail_errno(char **ret_error, int r, const luks_errlog *l, const char *fmt, ...) _printf_(4, 5);
static int fail_errno(char **ret_error, int r, const luks_errlog *l, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        r = fail_full(ret_error, r, l, true, fmt, ap);
        va_end(ap);
        return r;
}

static void copy_str(char *dst, size_t size, const char *src) {
        size_t n = strnlen(strempty(src), size - 1);

        memcpy(dst, strempty(src), n);
        dst[n] = '\0';
}

static int context(const char *path, luks_errlog *l, struct crypt_device **ret, char **ret_error) {
        struct crypt_device *cd = NULL;
        int r;

        r = crypt_init(&cd, path);
        if (r < 0)
                return fail_errno(ret_error, r, NULL, "'%s': cannot open it for libcryptsetup", path);
        crypt_set_log_callback(cd, log_capture, l);
        *ret = cd;
        return 0;
}

/* A context with the LUKS header of path loaded (either version). */
static int load(const char *path, luks_errlog *l, struct crypt_device **ret, char **ret_error) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        int r;

        r = context(path, l, &cd, ret_error);
        if (r < 0)
                return r;
        r = crypt_load(cd, CRYPT_LUKS, NULL);
        if (r < 0)
                return fail(ret_error, -EINVAL, NULL, "'%s' holds no LUKS header", path);
        *ret = TAKE_PTR(cd);
        return 0;
}

/* --- probing ------------------------------------------------------------------------------- */

typedef struct signature {
        size_t offset;
        const char *magic;
        size_t len;
        const char *what;
} signature;

/* Order matters: a boot sector's 0x55AA is also in FAT, NTFS and hybrid images, so it comes last. */
static const signature signatures[] = {
        { 0, "XFSB", 4, "an xfs filesystem" },
        { 65536 + 64, "_BHRfS_M", 8, "a btrfs filesystem" },
        { 1024, "\x10\x20\xf5\xf2", 4, "an f2fs filesystem" },
        { 4096 - 10, "SWAPSPACE2", 10, "a swap area" },
        { 4096 - 10, "SWAP-SPACE", 10, "a swap area" },
        { 512, "LABELONE", 8, "an LVM2 physical volume" },
        { 0, "\xfc\x4e\x2b\xa9", 4, "an md RAID member" },
        { 4096, "\xfc\x4e\x2b\xa9", 4, "an md RAID member" },
        { 512, "EFI PART", 8, "a GPT partition table" },
        { 32769, "CD001", 5, "an iso9660 filesystem" },
        { 510, "\x55\xaa", 2, "a partition table or boot sector" },
};

static uint32_t le32(const uint8_t *p) {
        return (uint32_t) p[0] | (uint32_t) p[1] << 8 | (uint32_t) p[2] << 16 | (uint32_t) p[3] << 24;
}

/* The ext superblock sits at 1024; its magic 0xEF53 at +56. Which of ext2/3/4 it is follows from
 * the features, as blkid decides it. */
static const char *ext_kind(const uint8_t *buf, size_t n) {
        const uint8_t *sb = buf + 1024;
        uint32_t compat, incompat;

        if (n < 1024 + 0x68 || sb[56] != 0x53 || sb[57] != 0xef)
                return NULL;
        compat = le32(sb + 0x5c);
        incompat = le32(sb + 0x60);
        /* extents, 64bit, flex_bg */
        if (incompat & (0x40 | 0x80 | 0x200))
                return "an ext4 filesystem";
        if (compat & 0x4) /* has_journal */
                return "an ext3 filesystem";
        return "an ext2 filesystem";
}

static int read_head(int fd, uint8_t *buf, size_t size, size_t *ret_n) {
        size_t n = 0;

        while (n < size) {
                ssize_t k = pread(fd, buf + n, size - n, (off_t) n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        *ret_n = n;
        return 0;
}

int luks_probe(const char *path, luks_content *ret, const char **ret_what, char **ret_error) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_close_ int fd = -EBADF;
        luks_errlog l = {};
        struct stat st;
        size_t n = 0;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return fail_errno(ret_error, -errno, NULL, "cannot open '%s'", path);
        if (fstat(fd, &st) < 0)
                return fail_errno(ret_error, -errno, NULL, "cannot stat '%s'", path);
        if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode))
                return fail(ret_error, -ENOTBLK, NULL, "'%s' is neither a block device nor an image file", path);

        buf = xcalloc(1, LUKS_PROBE_SIZE);
        r = read_head(fd, buf, LUKS_PROBE_SIZE, &n);
        if (r < 0)
                return fail_errno(ret_error, r, NULL, "cannot read '%s'", path);

        /* libcryptsetup's loader also finds a LUKS2 header by its secondary copy. */
        r = context(path, &l, &cd, ret_error);
        if (r < 0)
                return r;
        if (crypt_load(cd, CRYPT_LUKS, NULL) >= 0) {
                *ret = LUKS_CONTENT_LUKS;
                *ret_what = streq_ptr(crypt_get_type(cd), CRYPT_LUKS1) ? "a LUKS1 header" : "a LUKS2 header";
                return 0;
        }
        if (n >= 6 && (memcmp(buf, "LUKS\xba\xbe", 6) == 0 || memcmp(buf, "SKUL\xba\xbe", 6) == 0)) {
                *ret = LUKS_CONTENT_LUKS;
                *ret_what = "a damaged LUKS header";
                return 0;
        }

        *ret_what = ext_kind(buf, n);
        for (size_t i = 0; !*ret_what && i < ELEMENTSOF(signatures); i++) {
                const signature *s = &signatures[i];
                if (s->offset + s->len <= n && memcmp(buf + s->offset, s->magic, s->len) == 0)
                        *ret_what = s->what;
        }
        if (*ret_what) {
                *ret = LUKS_CONTENT_OTHER;
                return 0;
        }
        /* No signature we know, but not blank either: someone's data, and we cannot tell whose. */
        for (size_t i = 0; i < n; i++)
                if (buf[i] != 0) {
                        *ret = LUKS_CONTENT_OTHER;
                        *ret_what = "unrecognised data (non-zero bytes where signatures live)";
                        return 0;
                }
        *ret = LUKS_CONTENT_EMPTY;
        *ret_what = NULL;
        return 0;
}

/* --- formatting ---------------------------------------------------------------------------- */

/* Undo a format that did not complete: zero the header area, so the device is empty again. */
static int wipe_head(const char *path, uint64_t size) {
        _cleanup_close_ int fd = -EBADF;
        static const uint8_t zero[64 * 1024];

        fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        for (uint64_t off = 0; off < size;) {
                size_t chunk = size - off < sizeof(zero) ? (size_t) (size - off) : sizeof(zero);
                ssize_t k = pwrite(fd, zero, chunk, (off_t) off);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                off += (uint64_t) k;
        }
        return fsync(fd) < 0 ? -errno : 0;
}

/* Argon2id as asked for, or libcryptsetup's LUKS2 defaults. */
static int pbkdf_params(const luks_pbkdf_cost *cost, struct crypt_pbkdf_type *pbkdf, char **ret_error) {
        *pbkdf = (struct crypt_pbkdf_type) { .type = CRYPT_KDF_ARGON2ID, .hash = "sha256" };
        if (cost) {
                pbkdf->iterations = cost->iterations;
                pbkdf->max_memory_kb = cost->memory_kb;
                pbkdf->parallel_threads = cost->threads;
                pbkdf->flags = CRYPT_PBKDF_NO_BENCHMARK;
        } else {
                const struct crypt_pbkdf_type *d = crypt_get_pbkdf_type_params(CRYPT_KDF_ARGON2ID);
                if (!d)
                        return fail(ret_error, -ENOTSUP, NULL, "libcryptsetup has no %s", LUKS_PBKDF);
                pbkdf->time_ms = d->time_ms;
                pbkdf->max_memory_kb = d->max_memory_kb;
                pbkdf->parallel_threads = d->parallel_threads;
        }
        return 0;
}

int luks_format(const char *path, const uint8_t key[LUKS_KEY_SIZE], const luks_pbkdf_cost *cost,
                char **ret_error) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        struct crypt_pbkdf_type pbkdf;
        struct crypt_params_luks2 params = { .pbkdf = &pbkdf };
        luks_content content;
        const char *what;
        luks_errlog l = {};
        struct stat st;
        uint64_t head, size;
        int r;

        r = luks_probe(path, &content, &what, ret_error);
        if (r < 0)
                return r;
        if (content != LUKS_CONTENT_EMPTY)
                return fail(ret_error, -EEXIST, NULL, "'%s' holds %s: refusing to format it (only a device "
                            "with neither a filesystem nor a LUKS header is formatted)", path, what);
        /* A mounted or otherwise held block device refuses O_EXCL: the last check before writing. */
        if (stat(path, &st) < 0)
                return fail_errno(ret_error, -errno, NULL, "cannot stat '%s'", path);
        if (S_ISBLK(st.st_mode)) {
                _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_EXCL);
                if (fd < 0 && errno == EBUSY)
                        return fail(ret_error, -EBUSY, NULL, "'%s' is in use (mounted or held by another device)", path);
                if (fd < 0)
                        return fail_errno(ret_error, -errno, NULL, "cannot open '%s' exclusively", path);
                if (ioctl(fd, BLKGETSIZE64, &size) < 0)
                        return fail_errno(ret_error, -errno, NULL, "cannot read the size of '%s'", path);
        } else
                size = (uint64_t) st.st_size;
        /* libcryptsetup would grow a small image file to hold the header and leave no room for data. */
        if (size < LUKS_MIN_SIZE)
                return fail(ret_error, -ENOSPC, NULL, "'%s' is too small for LUKS2: %" PRIu64 " bytes, at least %u needed",
                            path, size, LUKS_MIN_SIZE);

        r = pbkdf_params(cost, &pbkdf, ret_error);
        if (r < 0)
                return r;

        r = context(path, &l, &cd, ret_error);
        if (r < 0)
                return r;
        /* A NULL volume key: libcryptsetup draws it from its RNG and wipes it on crypt_free(). */
        r = crypt_format(cd, CRYPT_LUKS2, LUKS_CIPHER, LUKS_CIPHER_MODE, NULL, NULL, LUKS_VOLUME_KEY_BITS / 8, &params);
        if (r < 0) {
                /* It may have written part of a header before failing; the device was empty. */
                (void) wipe_head(path, LUKS_PROBE_SIZE);
                return fail_errno(ret_error, r, &l, "'%s': LUKS2 format failed", path);
        }
        head = crypt_get_data_offset(cd) * 512;
        r = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, NULL, 0, (const char *) key, LUKS_KEY_SIZE);
        if (r < 0) {
                (void) wipe_head(path, head);
                return fail_errno(ret_error, r, &l, "'%s': adding the keyslot failed", path);
        }
        r = crypt_token_json_set(cd, CRYPT_ANY_TOKEN, "{\"type\":\"" LUKS_MKFS_TOKEN_TYPE "\",\"keyslots\":[]}");
        if (r < 0) {
                (void) wipe_head(path, head);
                return fail_errno(ret_error, r, &l, "'%s': recording that it needs a filesystem failed", path);
        }
        return 0;
}

/* --- reading the header -------------------------------------------------------------------- */

static bool keyslot_active(struct crypt_device *cd, int ks) {
        crypt_keyslot_info s = crypt_keyslot_status(cd, ks);
        return s == CRYPT_SLOT_ACTIVE || s == CRYPT_SLOT_ACTIVE_LAST;
}

int luks_inspect(const char *path, luks_info *ret, char **ret_error) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        luks_info info = {};
        luks_errlog l = {};
        int r, max;

        r = load(path, &l, &cd, ret_error);
        if (r < 0)
                return r;
        copy_str(info.type, sizeof(info.type), crypt_get_type(cd));
        copy_str(info.cipher, sizeof(info.cipher), crypt_get_cipher(cd));
        copy_str(info.cipher_mode, sizeof(info.cipher_mode), crypt_get_cipher_mode(cd));
        copy_str(info.uuid, sizeof(info.uuid), crypt_get_uuid(cd));
        info.volume_key_bits = crypt_get_volume_key_size(cd) * 8;
        max = crypt_keyslot_max(crypt_get_type(cd));
        for (int ks = 0; ks < max; ks++) {
                struct crypt_pbkdf_type p = {};
                if (!keyslot_active(cd, ks))
                        continue;
                if (info.n_keyslots++ == 0 && crypt_keyslot_get_pbkdf(cd, ks, &p) >= 0)
                        copy_str(info.pbkdf, sizeof(info.pbkdf), p.type);
        }
        *ret = info;
        return 0;
}

int luks_verify(const char *path, char **ret_error) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        luks_errlog l = {};
        const char *type, *cipher, *mode;
        int r, max, active = 0;

        r = load(path, &l, &cd, ret_error);
        if (r < 0)
                return r;
        type = crypt_get_type(cd);
        cipher = strempty(crypt_get_cipher(cd));
        mode = strempty(crypt_get_cipher_mode(cd));
        if (!streq_ptr(type, CRYPT_LUKS2))
                return fail(ret_error, -EBADMSG, NULL, "'%s' is %s, not LUKS2", path, strempty(type));
        if (!streq(cipher, LUKS_CIPHER) || !streq(mode, LUKS_CIPHER_MODE))
                return fail(ret_error, -EBADMSG, NULL, "'%s' uses cipher %s-%s, not %s-%s", path, cipher, mode,
                            LUKS_CIPHER, LUKS_CIPHER_MODE);
        if (crypt_get_volume_key_size(cd) * 8 != LUKS_VOLUME_KEY_BITS)
                return fail(ret_error, -EBADMSG, NULL, "'%s' has a %d-bit volume key, not %d-bit", path,
                            crypt_get_volume_key_size(cd) * 8, LUKS_VOLUME_KEY_BITS);
        max = crypt_keyslot_max(CRYPT_LUKS2);
        for (int ks = 0; ks < max; ks++) {
                struct crypt_pbkdf_type p = {};
                if (!keyslot_active(cd, ks))
                        continue;
                active++;
                r = crypt_keyslot_get_pbkdf(cd, ks, &p);
                if (r < 0)
                        return fail_errno(ret_error, r, &l, "'%s': cannot read keyslot %d", path, ks);
                if (!streq_ptr(p.type, LUKS_PBKDF))
                        return fail(ret_error, -EBADMSG, NULL, "'%s': keyslot %d uses %s, not %s", path, ks,
                                    strempty(p.type), LUKS_PBKDF);
        }
        if (active == 0)
                return fail(ret_error, -EBADMSG, NULL, "'%s' has no active keyslot", path);
        return 0;
}

int luks_check_key(const char *path, const uint8_t key[LUKS_KEY_SIZE], char **ret_error) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        luks_errlog l = {};
        int r;

        r = load(path, &l, &cd, ret_error);
        if (r < 0)
                return r;
        /* A NULL name checks the passphrase against the keyslots without touching device-mapper. */
        r = crypt_activate_by_passphrase(cd, NULL, CRYPT_ANY_SLOT, (const char *) key, LUKS_KEY_SIZE, 0);
        if (r == -EPERM)
                return fail(ret_error, r, NULL, "'%s': the key opens no keyslot", path);
        if (r < 0)
                return fail_errno(ret_error, r, &l, "'%s': checking the key failed", path);
        return r;
}

/* --- keyslots of databases ----------------------------------------------------------------- */

#define LUKS2_TOKENS_MAX 32

int luks_tag_keyslot(const char *path, int keyslot, const char *database, char **ret_error) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        json_object *o, *slots;
        luks_errlog l = {};
        char buf[16];
        int r;

        r = load(path, &l, &cd, ret_error);
        if (r < 0)
                return r;
        o = json_object_new_object();
        json_object_object_add(o, "type", json_object_new_string(LUKS_TOKEN_TYPE));
        slots = json_object_new_array();
        snprintf(buf, sizeof(buf), "%d", keyslot);
        json_object_array_add(slots, json_object_new_string(buf));
        json_object_object_add(o, "keyslots", slots);
        json_object_object_add(o, "database", json_object_new_string(database));
        r = crypt_token_json_set(cd, CRYPT_ANY_TOKEN, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        if (r < 0)
                return fail_errno(ret_error, r, &l, "'%s': cannot record keyslot %d's database", path, keyslot);
        return 0;
}

/* The keyslot a token of ours names for database, or -ENOENT. */
/* Token t when it is ours: the database it names (*ret_database, malloc'd) and its keyslot, which
 * is active; -ENOENT otherwise. */
static int token_read(struct crypt_device *cd, int t, char **ret_database) {
        const char *type = NULL, *json = NULL;
        json_object *o, *v, *slots;
        int ks = -ENOENT;

        if (crypt_token_status(cd, t, &type) == CRYPT_TOKEN_INACTIVE || !streq_ptr(type, LUKS_TOKEN_TYPE) ||
            crypt_token_json_get(cd, t, &json) < 0)
                return -ENOENT;
        o = json_tokener_parse(json);
        if (o && json_object_object_get_ex(o, "database", &v) && json_object_is_type(v, json_type_string) &&
            json_object_object_get_ex(o, "keyslots", &slots) && json_object_is_type(slots, json_type_array) &&
            json_object_array_length(slots) == 1) {
                const char *s = json_object_get_string(json_object_array_get_idx(slots, 0));
                ks = s ? atoi(s) : -ENOENT;
                if (ks >= 0 && keyslot_active(cd, ks))
                        *ret_database = xstrdup(json_object_get_string(v));
                else
                        ks = -ENOENT;
        }
        json_object_put(o);
        return ks;
}

static int token_keyslot(struct crypt_device *cd, const char *database) {
        for (int t = 0; t < LUKS2_TOKENS_MAX; t++) {
                _cleanup_free_ char *name = NULL;
                int ks = token_read(cd, t, &name);

                if (ks >= 0 && streq(name, database))
                        return ks;
        }
        return -ENOENT;
}

static int compare_strings(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int luks_list_keyslots(const char *path, char ***ret, size_t *ret_n, char **ret_error) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        luks_errlog l = {};
        char **names;
        size_t n = 0;
        int r;

        r = load(path, &l, &cd, ret_error);
        if (r < 0)
                return r;
        names = xcalloc(LUKS2_TOKENS_MAX, sizeof(char *));
        for (int t = 0; t < LUKS2_TOKENS_MAX; t++) {
                char *name = NULL;

                if (token_read(cd, t, &name) >= 0)
                        names[n++] = name;
        }
        qsort(names, n, sizeof(char *), compare_strings);
        /* One keyslot per database; a second token naming one adds nothing to the list. */
        for (size_t i = 1; i < n;)
                if (streq(names[i], names[i - 1])) {
                        free(names[i]);
                        memmove(&names[i], &names[i + 1], (n - i - 1) * sizeof(char *));
                        n--;
                } else
                        i++;
        *ret = names;
        *ret_n = n;
        return 0;
}

int luks_find_keyslot(const char *path, const char *database, char **ret_error) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        luks_errlog l = {};
        int r;

        r = load(path, &l, &cd, ret_error);
        if (r < 0)
                return r;
        r = token_keyslot(cd, database);
        if (r < 0)
                return fail(ret_error, r, NULL, "'%s' has no keyslot for database %s", path, database);
        return r;
}

int luks_add_key(const char *path, int keyslot, const uint8_t key[LUKS_KEY_SIZE], const uint8_t new_key[LUKS_KEY_SIZE],
                 const char *database, const luks_pbkdf_cost *cost, char **ret_error) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        struct crypt_pbkdf_type pbkdf;
        char vk[LUKS_VOLUME_KEY_BITS / 8];
        size_t vk_size = sizeof(vk);
        luks_errlog l = {};
        int r, ks;

        r = load(path, &l, &cd, ret_error);
        if (r < 0)
                return r;
        r = pbkdf_params(cost, &pbkdf, ret_error);
        if (r < 0)
                return r;
        r = crypt_set_pbkdf_type(cd, &pbkdf);
        if (r < 0)
                return fail_errno(ret_error, r, &l, "'%s': cannot use %s", path, LUKS_PBKDF);
        /* The volume key through the one keyslot named (each keyslot tried costs an Argon2id run),
         * then a keyslot for the new key wrapping it. */
        r = crypt_volume_key_get(cd, keyslot, vk, &vk_size, (const char *) key, LUKS_KEY_SIZE);
        if (r == -EPERM) {
                explicit_bzero(vk, sizeof(vk));
                return fail(ret_error, r, NULL, "'%s': the key opens no keyslot", path);
        }
        if (r < 0) {
                explicit_bzero(vk, sizeof(vk));
                return fail_errno(ret_error, r, &l, "'%s': cannot open keyslot %d", path, keyslot);
        }
        ks = crypt_keyslot_add_by_volume_key(cd, CRYPT_ANY_SLOT, vk, vk_size, (const char *) new_key, LUKS_KEY_SIZE);
        explicit_bzero(vk, sizeof(vk));
        if (ks < 0)
                return fail_errno(ret_error, ks, &l, "'%s': adding a keyslot for %s failed", path, database);
        r = luks_tag_keyslot(path, ks, database, ret_error);
        if (r < 0) {
                /* An unnamed keyslot would be added again by every pass. */
                (void) crypt_keyslot_destroy(cd, ks);
                return r;
        }
        return ks;
}

/* The token of type, or -ENOENT. */
static int find_token(struct crypt_device *cd, const char *type) {
        for (int t = 0; t < LUKS2_TOKENS_MAX; t++) {
                const char *tt = NULL;
                if (crypt_token_status(cd, t, &tt) != CRYPT_TOKEN_INACTIVE && streq_ptr(tt, type))
                        return t;
        }
        return -ENOENT;
}

int luks_mkfs_pending(const char *path, char **ret_error) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        luks_errlog l = {};
        int r = load(path, &l, &cd, ret_error);

        if (r < 0)
                return r;
        return find_token(cd, LUKS_MKFS_TOKEN_TYPE) >= 0;
}

int luks_clear_mkfs_pending(const char *path, char **ret_error) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        luks_errlog l = {};
        int r = load(path, &l, &cd, ret_error), t;

        if (r < 0)
                return r;
        t = find_token(cd, LUKS_MKFS_TOKEN_TYPE);
        if (t < 0)
                return 0;
        r = crypt_token_json_set(cd, t, NULL);
        if (r < 0)
                return fail_errno(ret_error, r, &l, "'%s': cannot record that it has its filesystem", path);
        return 1;
}

/* --- device-mapper ------------------------------------------------------------------------- */

bool luks_dm_available(void) {
        _cleanup_close_ int fd = open(LUKS_DM_CONTROL, O_RDWR | O_CLOEXEC | O_NOCTTY);

        if (fd >= 0)
                return true;
        /* libdevmapper mknod()s the node itself (as 10:236) on the first crypt_format(), even when
         * the kernel has no driver behind it: a node that exists proves nothing, opening it does. A
         * missing node is fine when the kernel has the driver: libdevmapper creates it. */
        return errno == ENOENT && access("/sys/class/misc/device-mapper", F_OK) == 0;
}

/* A device-mapper name we create: what fits in /dev/mapper without surprises. */
static bool dm_name_valid(const char *name) {
        size_t n = strlen(name);

        if (n == 0 || n > 127 || streq(name, ".") || streq(name, ".."))
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '_' || c == '.'))
                        return false;
        }
        return true;
}

int luks_open(const char *path, const char *name, int keyslot, const uint8_t key[LUKS_KEY_SIZE], char **ret_error) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        luks_errlog l = {};
        crypt_status_info st;
        int r;

        if (!dm_name_valid(name))
                return fail(ret_error, -EINVAL, NULL, "'%s' is not a valid device-mapper name", name);
        if (!luks_dm_available())
                return fail(ret_error, -ENODEV, NULL, "cannot open '%s': %s", path, LUKS_NO_DM_REASON);
        r = load(path, &l, &cd, ret_error);
        if (r < 0)
                return r;

        st = crypt_status(cd, name);
        if (st == CRYPT_ACTIVE || st == CRYPT_BUSY) {
                _cleanup_(crypt_freep) struct crypt_device *active = NULL;
                r = crypt_init_by_name(&active, name);
                if (r < 0)
                        return fail_errno(ret_error, r, NULL, "'/dev/mapper/%s' is active but cannot be read", name);
                if (streq_ptr(crypt_get_uuid(active), crypt_get_uuid(cd)))
                        return 0;
                return fail(ret_error, -EEXIST, NULL, "'/dev/mapper/%s' is already active for another device", name);
        }
        r = crypt_activate_by_passphrase(cd, name, keyslot, (const char *) key, LUKS_KEY_SIZE, 0);
        if (r == -EPERM)
                return fail(ret_error, r, NULL, "'%s': the key opens no keyslot", path);
        if (r < 0)
                return fail_errno(ret_error, r, &l, "'%s': activating '/dev/mapper/%s' failed", path, name);
        return 1;
}

int luks_close(const char *name, char **ret_error) {
        _cleanup_(crypt_freep) struct crypt_device *cd = NULL;
        luks_errlog l = {};
        crypt_status_info st;
        int r;

        if (!dm_name_valid(name))
                return fail(ret_error, -EINVAL, NULL, "'%s' is not a valid device-mapper name", name);
        if (!luks_dm_available())
                return fail(ret_error, -ENODEV, NULL, "cannot close '/dev/mapper/%s': %s", name, LUKS_NO_DM_REASON);
        st = crypt_status(NULL, name);
        if (st == CRYPT_INACTIVE)
                return 0;
        if (st == CRYPT_INVALID)
                return fail(ret_error, -EIO, NULL, "'/dev/mapper/%s': cannot read its status", name);
        r = crypt_init_by_name(&cd, name);
        if (r < 0)
                return fail_errno(ret_error, r, NULL, "'/dev/mapper/%s' cannot be read", name);
        crypt_set_log_callback(cd, log_capture, &l);
        r = crypt_deactivate(cd, name);
        if (r == -EBUSY)
                return fail(ret_error, r, &l, "'/dev/mapper/%s' is in use (mounted?)", name);
        if (r < 0)
                return fail_errno(ret_error, r, &l, "'/dev/mapper/%s': closing failed", name);
        return 1;
}
