/* Child processes: initdb, pg_ctl, pgbackrest run as the database OS user with a clean
 * environment; output is captured for error messages, never passed to a shell. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

typedef struct proc_result {
        int exit_status;      /* 0..255, or 128+signal */
        char *output;         /* stdout and stderr interleaved, at most 64 KiB (tail kept) */
} proc_result;

/* Run argv[0] (absolute path) as user (NULL: as ourselves), in cwd (NULL: "/"), with env
 * (NULL-terminated "K=V" list; PATH, LANG=C.UTF-8 and HOME are always set). Returns 0 when the
 * child ran (check exit_status), -errno when it could not be started. */
int proc_run(const char *const *argv, const char *user, const char *cwd, const char *const *env, proc_result *ret);
void proc_result_done(proc_result *r);

/* Start argv[0] (absolute path) as ourselves without waiting for it: stdin /dev/null, stdout and
 * stderr ours (the daemon's log), the same clean environment as proc_run(). For work that must
 * not hold the caller up (the direct backend's scheduled backups). */
int proc_spawn(const char *const *argv, pid_t *ret_pid);
/* 1 with the exit status (0..255, or 128+signal) when pid has exited, 0 while it runs, -errno. */
int proc_reap(pid_t pid, int *ret_status);

/* uid/gid of a user name. */
int user_lookup(const char *user, uid_t *ret_uid, gid_t *ret_gid, char **ret_home);

/* The last non-empty line of a child's output, for one-line error messages. */
const char *proc_last_line(const proc_result *r, char *buf, size_t size);
/* The same for any text (a log file's contents). */
const char *text_last_line(const char *text, char *buf, size_t size);
