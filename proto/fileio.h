/* Reading and atomically replacing files; the only place that writes state or config. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Read a whole file (at most max bytes, -EFBIG beyond). The buffer is NUL-terminated. */
int read_full_file(const char *path, size_t max, char **ret_data, size_t *ret_size);
/* The same, with path relative to the directory dirfd (or AT_FDCWD). */
int read_full_file_at(int dirfd, const char *path, size_t max, char **ret_data, size_t *ret_size);
/* For reading many files in a row: into *buf (alloc bytes, grown as needed and kept by the caller
 * for the next file, freed with free()), without a stat() or an allocation per file. Same limit
 * and errors; the data is NUL-terminated and valid until the next call. */
int read_file_reusing(int dirfd, const char *path, size_t max, char **buf, size_t *alloc, size_t *ret_size);

/* Read fd (a pipe, a socket) to its end into buf, which holds at most size - 1 bytes and a NUL:
 * the length, or -EFBIG when there is more (buf then holds the first part), -errno. Into the
 * caller's buffer, never a copy: what it held can be wiped by the caller alone. */
ssize_t read_to_eof(int fd, char *buf, size_t size);
/* All of data, through short writes and EINTR: 0 or -errno. */
int write_all(int fd, const void *data, size_t size);

/* Replace path with data unless it already holds exactly that content and mode.
 * Temp file in the same directory, explicit mode, fsync, rename, fsync of the directory.
 * Returns 0 when nothing had to be written, 1 when the file was written, -errno on failure. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);
/* The same, owned by uid:gid (e.g. a file in a PostgreSQL data directory). An owner that differs
 * counts as a difference. */
int write_file_atomic_owned(const char *path, const void *data, size_t size, mode_t mode, uid_t uid, gid_t gid);

/* mkdir -p with the given mode for directories it creates. */
int mkdir_p(const char *path, mode_t mode);
/* A root other users traverse (data root, backup root): mkdir -p, each directory it creates 0755
 * whatever the umask (parents included); an existing one is left as the operator made it. */
int mkdir_root(const char *path);
/* path as a directory of uid:gid with exactly mode, created when missing (its parent must exist). */
int mkdir_owned(const char *path, mode_t mode, uid_t uid, gid_t gid);
/* Create path (0600) for a new key, never replacing one: O_EXCL, so a key agents may already
 * trust is never overwritten and a racing second run stops here. An empty file left by a run that
 * crashed before writing is claimed again. Returns the fd, or -EEXIST / -errno. */
int open_new_secret_file(const char *path);
