/* fscrypt through the kernel's ioctls: support checks, v2 keys and v2 policies. The kernel does
 * the cryptography; this file only speaks its ABI and turns its errnos into reasons. */
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fscrypt.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <dirent.h>

#include "fscrypt.h"
#include "macro.h"

#define FSCRYPT_CONTENTS_MODE FSCRYPT_MODE_AES_256_XTS
#define FSCRYPT_FILENAMES_MODE FSCRYPT_MODE_AES_256_CTS
#define FSCRYPT_FLAGS FSCRYPT_POLICY_FLAGS_PAD_32

bool fscrypt_key_id_equal(const fscrypt_key_id *a, const fscrypt_key_id *b) {
        return memcmp(a->b, b->b, FSCRYPT_ID_SIZE) == 0;
}

char *fscrypt_key_id_to_hex(const fscrypt_key_id *id, char buf[static FSCRYPT_ID_HEX_SIZE]) {
        static const char hex[] = "0123456789abcdef";
        for (size_t i = 0; i < FSCRYPT_ID_SIZE; i++) {
                buf[2 * i] = hex[id->b[i] >> 4];
                buf[2 * i + 1] = hex[id->b[i] & 15];
        }
        buf[2 * FSCRYPT_ID_SIZE] = 0;
        return buf;
}

static void key_spec_init(struct fscrypt_key_specifier *s, const fscrypt_key_id *id) {
        *s = (struct fscrypt_key_specifier) { .type = FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER };
        memcpy(s->u.identifier, id->b, FSCRYPT_ID_SIZE);
}

/* O_NOFOLLOW: a symlink planted at the data root must not redirect a policy to another tree. */
static int open_dir(const char *dir, char **ret_error) {
        int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0) {
                int r = -errno;
                struct stat st;
                /* O_DIRECTORY wins over O_NOFOLLOW: a symlink answers ENOTDIR. */
                if (r == -ELOOP || (r == -ENOTDIR && lstat(dir, &st) == 0 && S_ISLNK(st.st_mode))) {
                        *ret_error = xasprintf("%s is a symbolic link, not a directory", dir);
                        return -ELOOP;
                }
                *ret_error = r == -ENOTDIR ? xasprintf("%s is not a directory", dir)
                                           : xasprintf("cannot open %s: %s", dir, strerror(-r));
                return r;
        }
        return fd;
}

/* --- why a filesystem cannot encrypt ---------------------------------------------------------- */

typedef struct fs_name {
        uint32_t magic;
        const char *name;
} fs_name;

/* Filesystems a data root plausibly sits on. f_type is a word whose width varies by
 * architecture: compare as 32 bits. */
static const fs_name fs_names[] = {
        { EXT4_SUPER_MAGIC, "ext4" },        { F2FS_SUPER_MAGIC, "f2fs" },
        { XFS_SUPER_MAGIC, "xfs" },          { BTRFS_SUPER_MAGIC, "btrfs" },
        { TMPFS_MAGIC, "tmpfs" },            { RAMFS_MAGIC, "ramfs" },
        { OVERLAYFS_SUPER_MAGIC, "overlayfs" }, { NFS_SUPER_MAGIC, "nfs" },
        { CIFS_SUPER_MAGIC, "cifs" },        { SMB2_SUPER_MAGIC, "smb2" },
        { FUSE_SUPER_MAGIC, "fuse" },        { MSDOS_SUPER_MAGIC, "vfat" },
        { EXFAT_SUPER_MAGIC, "exfat" },      { SQUASHFS_MAGIC, "squashfs" },
        { 0x2fc12fc1, "zfs" },               { 0xca451a4e, "bcachefs" },
        { CEPH_SUPER_MAGIC, "ceph" },        { 0x24051905, "ubifs" },
};

static const char *fs_type_name(uint32_t magic) {
        for (size_t i = 0; i < ELEMENTSOF(fs_names); i++)
                if (fs_names[i].magic == magic)
                        return fs_names[i].name;
        return NULL;
}

/* The mount source of the filesystem holding fd ("/dev/sdb1"), from mountinfo; NULL if unknown. */
static char *mount_source(int fd) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return NULL;
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return NULL;
        _cleanup_free_ char *line = NULL;
        size_t n = 0;
        while (getline(&line, &n, f) > 0) {
                unsigned maj, min;
                if (sscanf(line, "%*u %*u %u:%u", &maj, &min) != 2 || makedev(maj, min) != st.st_dev)
                        continue;
                /* "... - fstype source options": the source follows the separator and the type. */
                char *sep = strstr(line, " - ");
                char src[4096];
                if (sep && sscanf(sep, " - %*s %4095s", src) == 1)
                        return xstrdup(src);
        }
        return NULL;
}

/* FS_IOC_GET_ENCRYPTION_POLICY_EX failed with EOPNOTSUPP or ENOTTY on fd: say why. */
static char *unsupported_reason(int fd, const char *dir, int err) {
        struct statfs sf;
        if (fstatfs(fd, &sf) < 0)
                return xasprintf("the filesystem of %s has no fscrypt support (%s)", dir, strerror(err));
        uint32_t magic = (uint32_t) sf.f_type;
        const char *name = fs_type_name(magic);
        if (magic == EXT4_SUPER_MAGIC || magic == F2FS_SUPER_MAGIC) {
                /* Both only answer EOPNOTSUPP when the feature is off or the kernel was built without
                 * CONFIG_FS_ENCRYPTION; the latter also drops the feature from sysfs. */
                _cleanup_free_ char *feature = xasprintf("/sys/fs/%s/features/encryption", name);
                if (access(feature, F_OK) < 0 && access(magic == EXT4_SUPER_MAGIC ? "/sys/fs/ext4" : "/sys/fs/f2fs", F_OK) == 0)
                        return xasprintf("%s is on %s, but this kernel was built without fscrypt (CONFIG_FS_ENCRYPTION)",
                                         dir, name);
                _cleanup_free_ char *src = mount_source(fd);
                if (magic == EXT4_SUPER_MAGIC)
                        return xasprintf("the filesystem of %s has no 'encrypt' feature: tune2fs -O encrypt %s, then remount",
                                         dir, src ? src : "<device>");
                return xasprintf("the filesystem of %s has no 'encrypt' feature: fsck.f2fs -O encrypt %s while unmounted",
                                 dir, src ? src : "<device>");
        }
        if (name)
                return xasprintf("%s is on %s, which has no fscrypt support here (ext4 or f2fs with the 'encrypt' feature has)",
                                 dir, name);
        return xasprintf("%s is on a filesystem of type 0x%08" PRIx32 ", which has no fscrypt support (ext4 or f2fs has)",
                         dir, magic);
}

/* The policy of the open directory fd: 1 encrypted (v2, *ret set), 0 not encrypted. */
static int get_policy_fd(int fd, const char *dir, fscrypt_policy_info *ret, char **ret_error) {
        struct fscrypt_get_policy_ex_arg arg = { .policy_size = sizeof(arg.policy) };
        if (ioctl(fd, FS_IOC_GET_ENCRYPTION_POLICY_EX, &arg) < 0) {
                int e = errno;
                switch (e) {
                case ENODATA:
                        return 0;
                case EOPNOTSUPP:
                case ENOTTY:
                        *ret_error = unsupported_reason(fd, dir, e);
                        return -EOPNOTSUPP;
                case EINVAL:
                case EOVERFLOW:
                        /* The on-disk context is unknown to this kernel or larger than any we know. */
                        *ret_error = xasprintf("%s has an encryption policy this kernel cannot read (%s)", dir, strerror(e));
                        return -EPROTONOSUPPORT;
                default:
                        *ret_error = xasprintf("cannot read the encryption policy of %s: %s", dir, strerror(e));
                        return -e;
                }
        }
        if (arg.policy.version != FSCRYPT_POLICY_V2) {
                *ret_error = xasprintf("%s is encrypted with a v%u policy; only v2 policies are managed here", dir,
                                       arg.policy.version == FSCRYPT_POLICY_V1 ? 1u : (unsigned) arg.policy.version);
                return -EPROTONOSUPPORT;
        }
        if (ret) {
                *ret = (fscrypt_policy_info) {
                        .version = arg.policy.v2.version,
                        .contents_mode = arg.policy.v2.contents_encryption_mode,
                        .filenames_mode = arg.policy.v2.filenames_encryption_mode,
                        .flags = arg.policy.v2.flags,
                };
                memcpy(ret->id.b, arg.policy.v2.master_key_identifier, FSCRYPT_ID_SIZE);
        }
        return 1;
}

int fscrypt_check_support(const char *dir, char **ret_error) {
        _cleanup_close_ int fd = open_dir(dir, ret_error);
        if (fd < 0)
                return fd;
        int r = get_policy_fd(fd, dir, NULL, ret_error);
        /* An encrypted directory with a policy we do not manage still proves the support. */
        if (r == -EPROTONOSUPPORT) {
                free(*ret_error);
                *ret_error = NULL;
                return 0;
        }
        return r < 0 ? r : 0;
}

int fscrypt_get_policy(const char *dir, fscrypt_policy_info *ret, char **ret_error) {
        _cleanup_close_ int fd = open_dir(dir, ret_error);
        if (fd < 0)
                return fd;
        return get_policy_fd(fd, dir, ret, ret_error);
}

/* --- keys ------------------------------------------------------------------------------------- */

/* Key errors that mean the filesystem, not the key, is the problem. */
static int key_ioctl_error(int fd, const char *path, const char *what, int e, char **ret_error) {
        if (e == EOPNOTSUPP || e == ENOTTY) {
                *ret_error = unsupported_reason(fd, path, e);
                return -EOPNOTSUPP;
        }
        if (e == EACCES || e == EPERM)
                *ret_error = xasprintf("cannot %s on the filesystem of %s: permission denied (needs CAP_SYS_ADMIN)", what, path);
        else
                *ret_error = xasprintf("cannot %s on the filesystem of %s: %s", what, path, strerror(e));
        return -e;
}

int fscrypt_add_key(const char *path, const uint8_t *key, size_t size, fscrypt_key_id *ret_id, char **ret_error) {
        /* 32 bytes is the security strength of AES-256; 64 is what the kernel accepts at most. */
        if (size != 32 && size != 64) {
                *ret_error = xasprintf("an fscrypt key must be 32 or 64 bytes, not %zu", size);
                return -EINVAL;
        }
        _cleanup_close_ int fd = open_dir(path, ret_error);
        if (fd < 0)
                return fd;

        /* The argument ends in a flexible array for the raw key: a union on the stack gives it room
         * and alignment without an allocation that would need wiping before free. */
        union {
                struct fscrypt_add_key_arg arg;
                uint8_t bytes[sizeof(struct fscrypt_add_key_arg) + FSCRYPT_MAX_KEY_SIZE];
        } u;
        memset(&u, 0, sizeof(u));
        u.arg.key_spec.type = FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER;
        u.arg.raw_size = (uint32_t) size;
        memcpy(u.arg.raw, key, size);
        int r = ioctl(fd, FS_IOC_ADD_ENCRYPTION_KEY, &u.arg) < 0 ? -errno : 0;
        fscrypt_key_id id;
        memcpy(id.b, u.arg.key_spec.u.identifier, FSCRYPT_ID_SIZE);
        explicit_bzero(&u, sizeof(u));
        if (r < 0)
                return key_ioctl_error(fd, path, "add an fscrypt key", -r, ret_error);
        *ret_id = id;
        return 0;
}

int fscrypt_remove_key(const char *path, const fscrypt_key_id *id, char **ret_error) {
        _cleanup_close_ int fd = open_dir(path, ret_error);
        if (fd < 0)
                return fd;
        struct fscrypt_remove_key_arg arg = {};
        key_spec_init(&arg.key_spec, id);
        if (ioctl(fd, FS_IOC_REMOVE_ENCRYPTION_KEY, &arg) < 0) {
                int e = errno;
                char hex[FSCRYPT_ID_HEX_SIZE];
                if (e == ENOKEY) {
                        *ret_error = xasprintf("the filesystem of %s does not have fscrypt key %s", path,
                                               fscrypt_key_id_to_hex(id, hex));
                        return -ENOKEY;
                }
                return key_ioctl_error(fd, path, "remove an fscrypt key", e, ret_error);
        }
        if (arg.removal_status_flags & FSCRYPT_KEY_REMOVAL_STATUS_FLAG_FILES_BUSY)
                return FSCRYPT_REMOVED_FILES_BUSY;
        if (arg.removal_status_flags & FSCRYPT_KEY_REMOVAL_STATUS_FLAG_OTHER_USERS)
                return FSCRYPT_REMOVED_OTHER_USERS;
        return FSCRYPT_REMOVED;
}

int fscrypt_key_status(const char *path, const fscrypt_key_id *id, fscrypt_key_state *ret, char **ret_error) {
        _cleanup_close_ int fd = open_dir(path, ret_error);
        if (fd < 0)
                return fd;
        struct fscrypt_get_key_status_arg arg = {};
        key_spec_init(&arg.key_spec, id);
        if (ioctl(fd, FS_IOC_GET_ENCRYPTION_KEY_STATUS, &arg) < 0)
                return key_ioctl_error(fd, path, "read the status of an fscrypt key", errno, ret_error);
        switch (arg.status) {
        case FSCRYPT_KEY_STATUS_ABSENT:
                *ret = FSCRYPT_KEY_ABSENT;
                return 0;
        case FSCRYPT_KEY_STATUS_PRESENT:
                *ret = FSCRYPT_KEY_PRESENT;
                return 0;
        case FSCRYPT_KEY_STATUS_INCOMPLETELY_REMOVED:
                *ret = FSCRYPT_KEY_INCOMPLETELY_REMOVED;
                return 0;
        default:
                *ret_error = xasprintf("the kernel reports an unknown status %" PRIu32 " for an fscrypt key on %s",
                                       (uint32_t) arg.status, path);
                return -EPROTO;
        }
}

/* --- policies --------------------------------------------------------------------------------- */

/* 1 when the open directory fd has entries besides . and .., 0 when empty. */
static int dir_has_entries(int fd) {
        int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        DIR *d = fdopendir(dfd);
        if (!d) {
                int r = -errno;
                close(dfd);
                return r;
        }
        int r = 0;
        struct dirent *de;
        errno = 0;
        while ((de = readdir(d)))
                if (!streq(de->d_name, ".") && !streq(de->d_name, "..")) {
                        r = 1;
                        break;
                }
        if (!de && errno != 0)
                r = -errno;
        closedir(d);
        return r;
}

int fscrypt_set_policy(const char *dir, const fscrypt_key_id *id, char **ret_error) {
        _cleanup_close_ int fd = open_dir(dir, ret_error);
        if (fd < 0)
                return fd;
        char want_hex[FSCRYPT_ID_HEX_SIZE], have_hex[FSCRYPT_ID_HEX_SIZE];

        fscrypt_policy_info have;
        int r = get_policy_fd(fd, dir, &have, ret_error);
        if (r < 0)
                return r == -EPROTONOSUPPORT ? -EEXIST : r;
        if (r > 0) {
                if (!fscrypt_key_id_equal(&have.id, id)) {
                        *ret_error = xasprintf("%s is already encrypted with key %s, not %s", dir,
                                               fscrypt_key_id_to_hex(&have.id, have_hex), fscrypt_key_id_to_hex(id, want_hex));
                        return -EEXIST;
                }
                if (have.contents_mode != FSCRYPT_CONTENTS_MODE || have.filenames_mode != FSCRYPT_FILENAMES_MODE ||
                    have.flags != FSCRYPT_FLAGS) {
                        *ret_error = xasprintf("%s is already encrypted with key %s but other modes (contents %u, "
                                               "names %u, flags 0x%02x)", dir, fscrypt_key_id_to_hex(id, want_hex),
                                               have.contents_mode, have.filenames_mode, have.flags);
                        return -EEXIST;
                }
                return 1;
        }

        /* The kernel refuses non-empty directories too; checking first gives the reason in our words. */
        r = dir_has_entries(fd);
        if (r < 0) {
                *ret_error = xasprintf("cannot list %s: %s", dir, strerror(-r));
                return r;
        }
        if (r > 0) {
                *ret_error = xasprintf("%s is not empty and not encrypted: fscrypt only encrypts new files, so the "
                                       "existing ones would stay in clear; refusing to encrypt it in place", dir);
                return -ENOTEMPTY;
        }

        struct fscrypt_policy_v2 p = {
                .version = FSCRYPT_POLICY_V2,
                .contents_encryption_mode = FSCRYPT_CONTENTS_MODE,
                .filenames_encryption_mode = FSCRYPT_FILENAMES_MODE,
                .flags = FSCRYPT_FLAGS,
        };
        memcpy(p.master_key_identifier, id->b, FSCRYPT_ID_SIZE);
        if (ioctl(fd, FS_IOC_SET_ENCRYPTION_POLICY, &p) < 0) {
                int e = errno;
                switch (e) {
                case ENOTEMPTY:
                        *ret_error = xasprintf("%s is not empty and not encrypted (an entry appeared meanwhile); "
                                               "refusing to encrypt it in place", dir);
                        break;
                case EEXIST:
                        *ret_error = xasprintf("%s was encrypted with another policy meanwhile", dir);
                        break;
                case ENOKEY:
                        *ret_error = xasprintf("fscrypt key %s has not been added to the filesystem of %s",
                                               fscrypt_key_id_to_hex(id, want_hex), dir);
                        break;
                case EOPNOTSUPP:
                case ENOTTY:
                        *ret_error = unsupported_reason(fd, dir, e);
                        return -EOPNOTSUPP;
                case EINVAL:
                        *ret_error = xasprintf("the kernel refuses an AES-256-XTS/AES-256-CTS v2 policy on %s "
                                               "(crypto algorithms missing?)", dir);
                        break;
                case EACCES:
                case EPERM:
                        *ret_error = xasprintf("cannot encrypt %s: not its owner and no CAP_FOWNER", dir);
                        break;
                default:
                        *ret_error = xasprintf("cannot encrypt %s: %s", dir, strerror(e));
                        break;
                }
                return -e;
        }
        return 0;
}
