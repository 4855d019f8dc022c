/* File helpers in the manner of systemd's fileio.c: compare first, then temp + fsync + rename. */
#include <assert.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fileio.h"
#include "macro.h"

#define MIN(a, b) ((a) < (b) ? (a) : (b))

int read_full_file(const char *path, size_t max, char **ret_data, size_t *ret_size) {
        return read_full_file_at(AT_FDCWD, path, max, ret_data, ret_size);
}

ssize_t read_to_eof(int fd, char *buf, size_t size) {
        size_t n = 0;

        assert(size > 0);
        for (;;) {
                char extra;
                ssize_t k = n + 1 < size ? read(fd, buf + n, size - 1 - n) : read(fd, &extra, 1);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        buf[n] = '\0';
                        return -errno;
                }
                if (k == 0)
                        break;
                if (n + 1 >= size) {
                        buf[n] = '\0';
                        return -EFBIG;
                }
                n += (size_t) k;
        }
        buf[n] = '\0';
        return (ssize_t) n;
}

int write_all(int fd, const void *data, size_t size) {
        const char *p = data;

        while (size > 0) {
                ssize_t k = write(fd, p, size);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                size -= (size_t) k;
        }
        return 0;
}

int read_full_file_at(int dirfd, const char *path, size_t max, char **ret_data, size_t *ret_size) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, alloc = 0;
        struct stat st;

        fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (S_ISREG(st.st_mode) && (uint64_t) st.st_size > max)
                return -EFBIG;

        /* The size, a byte for the NUL and one more: the read that finds the end of a file that did
         * not grow must not have to make room first (doubling the buffer of every file). */
        alloc = S_ISREG(st.st_mode) ? (size_t) st.st_size + 2 : 4096;
        buf = xmalloc(alloc);
        for (;;) {
                ssize_t n;

                if (size + 1 >= alloc) {
                        alloc *= 2;
                        buf = xrealloc(buf, alloc);
                }
                n = read(fd, buf + size, alloc - size - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > max)
                        return -EFBIG;
        }
        buf[size] = '\0';
        *ret_data = TAKE_PTR(buf);
        if (ret_size)
                *ret_size = size;
        return 0;
}

int read_file_reusing(int dirfd, const char *path, size_t max, char **buf, size_t *alloc, size_t *ret_size) {
        _cleanup_close_ int fd = -1;
        size_t size = 0;

        fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        for (;;) {
                ssize_t n;

                if (size + 1 >= *alloc) {
                        *alloc = *alloc ? *alloc * 2 : 4096;
                        *buf = xrealloc(*buf, *alloc);
                }
                /* Never more than one byte past the limit: enough to tell the file is too large. */
                n = read(fd, *buf + size, MIN(*alloc - size - 1, max + 1 - size));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno; /* a directory gives EISDIR here */
                }
                if (n == 0)
                        break;
                size += (size_t) n;
                if (size > max)
                        return -EFBIG;
        }
        (*buf)[size] = '\0';
        *ret_size = size;
        return 0;
}

static int same_content(int dirfd, const char *name, const void *data, size_t size, mode_t mode, uid_t uid,
                        gid_t gid) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        char buf[65536];
        size_t off = 0;

        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return 0;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (size_t) st.st_size != size ||
            (st.st_mode & 07777) != mode || (uid != (uid_t) -1 && st.st_uid != uid) ||
            (gid != (gid_t) -1 && st.st_gid != gid))
                return 0;
        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return 0;
                }
                if (n == 0)
                        break;
                if (off + (size_t) n > size || memcmp((const char *) data + off, buf, (size_t) n) != 0)
                        return 0;
                off += (size_t) n;
        }
        return off == size;
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode) {
        return write_file_atomic_owned(path, data, size, mode, (uid_t) -1, (gid_t) -1);
}

int write_file_atomic_owned(const char *path, const void *data, size_t size, mode_t mode, uid_t uid, gid_t gid) {
        _cleanup_free_ char *dcopy = xstrdup(path), *bcopy = xstrdup(path), *tmp = NULL;
        _cleanup_close_ int dirfd = -1, fd = -1;
        const char *dir = dirname(dcopy), *base = basename(bcopy);
        size_t off = 0;
        int r;

        dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return -errno;
        if (same_content(dirfd, base, data, size, mode, uid, gid))
                return 0;

        tmp = xasprintf(".#%s.%ld.tmp", base, (long) getpid());
        /* The mode is set at creation, before any byte is written: secrets are never exposed. */
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode & 0600);
        if (fd < 0)
                return -errno;
        while (off < size) {
                ssize_t n = write(fd, (const char *) data + off, size - off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto fail;
                }
                off += (size_t) n;
        }
        if ((uid != (uid_t) -1 || gid != (gid_t) -1) && fchown(fd, uid, gid) < 0) {
                r = -errno;
                goto fail;
        }
        if (fchmod(fd, mode) < 0 || fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }
        /* rename() replaces atomically; readers see the old or the new file, never a torn one. */
        if (renameat(dirfd, tmp, dirfd, base) < 0) {
                r = -errno;
                goto fail;
        }
        (void) fsync(dirfd);
        return 1;
fail:
        (void) unlinkat(dirfd, tmp, 0);
        return r;
}

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = xstrdup(path);

        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = '\0';
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int mkdir_root(const char *path) {
        _cleanup_free_ char *p = xstrdup(path);

        /* Each directory made here gets 0755 whatever the umask (the units' is 0077): a parent
         * left 0700 would stop PostgreSQL on its way to its data directory. */
        for (char *s = p + 1;; s++) {
                char c = *s;

                if (c != '/' && c != '\0')
                        continue;
                *s = '\0';
                if (mkdir(p, 0755) == 0) {
                        if (chmod(p, 0755) < 0)
                                return -errno;
                } else if (errno != EEXIST)
                        return -errno;
                if (c == '\0')
                        return 0;
                *s = c;
        }
}

int mkdir_owned(const char *path, mode_t mode, uid_t uid, gid_t gid) {
        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return -errno;
        if (chown(path, uid, gid) < 0 || chmod(path, mode) < 0)
                return -errno;
        return 0;
}

int open_new_secret_file(const char *path) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);

        if (fd < 0 && errno == EEXIST) {
                struct stat st;
                /* An empty file is the placeholder of a run that crashed before writing: no agent
                 * can trust a key that never existed, so it is safe to claim it again. */
                if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 0 && unlink(path) == 0)
                        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
                else
                        errno = EEXIST;
        }
        return fd < 0 ? -errno : fd;
}
