/* Reading and atomically replacing files; the only place that writes state or config. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Read a whole file (at most max bytes, -EFBIG beyond). The buffer is NUL-terminated. */
int read_full_file(const char *path, size_t max, char **ret_data, size_t *ret_size);

/* Replace path with data unless it already holds exactly that content and mode.
 * Temp file in the same directory, explicit mode, fsync, rename, fsync of the directory.
 * Returns 0 when nothing had to be written, 1 when the file was written, -errno on failure. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);
/* The same, owned by uid:gid (e.g. a file in a PostgreSQL data directory). An owner that differs
 * counts as a difference. */
int write_file_atomic_owned(const char *path, const void *data, size_t size, mode_t mode, uid_t uid, gid_t gid);

/* mkdir -p with the given mode for directories it creates. */
int mkdir_p(const char *path, mode_t mode);
