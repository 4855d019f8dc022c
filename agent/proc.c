/* fork/exec with privilege drop; the only place the agent starts programs. */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>

#include "macro.h"
#include "proc.h"

#define OUTPUT_MAX (64 * 1024)

int user_lookup(const char *user, uid_t *ret_uid, gid_t *ret_gid, char **ret_home) {
        struct passwd pw, *res = NULL;
        char buf[4096];
        int r = getpwnam_r(user, &pw, buf, sizeof(buf), &res);

        if (r != 0)
                return -r;
        if (!res)
                return -ESRCH;
        if (ret_uid)
                *ret_uid = pw.pw_uid;
        if (ret_gid)
                *ret_gid = pw.pw_gid;
        if (ret_home)
                *ret_home = xstrdup(pw.pw_dir ? pw.pw_dir : "/");
        return 0;
}

void proc_result_done(proc_result *r) {
        free(r->output);
        *r = (proc_result) {};
}

int proc_run(const char *const *argv, const char *user, const char *cwd, const char *const *env, proc_result *ret) {
        _cleanup_free_ char *home = NULL, *out = NULL;
        const char *envp[64];
        size_t n_env = 0, len = 0;
        int pipefd[2], status, r;
        uid_t uid = 0;
        gid_t gid = 0;
        pid_t pid;

        if (user) {
                r = user_lookup(user, &uid, &gid, &home);
                if (r < 0)
                        return r;
        }
        /* A clean environment: nothing of ours (secrets, NOTIFY_SOCKET, LD_*) leaks into children. */
        envp[n_env++] = "PATH=/usr/local/bin:/usr/bin:/bin";
        envp[n_env++] = "LANG=C.UTF-8";
        envp[n_env++] = "LC_ALL=C.UTF-8";
        for (size_t i = 0; env && env[i] && n_env < ELEMENTSOF(envp) - 2; i++)
                envp[n_env++] = env[i];
        _cleanup_free_ char *home_env = xasprintf("HOME=%s", home ? home : "/");
        envp[n_env++] = home_env;
        envp[n_env] = NULL;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0) {
                r = -errno;
                close(pipefd[0]);
                close(pipefd[1]);
                return r;
        }
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
                sigset_t all;

                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                signal(SIGPIPE, SIG_DFL);
                if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(pipefd[1], 1) < 0 || dup2(pipefd[1], 2) < 0)
                        _exit(127);
                if (user && (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0))
                        _exit(126);
                if (chdir(cwd ? cwd : "/") < 0)
                        _exit(125);
                execve(argv[0], (char *const *) argv, (char *const *) envp);
                _exit(127);
        }
        close(pipefd[1]);
        out = xmalloc(OUTPUT_MAX + 1);
        for (;;) {
                char buf[4096];
                ssize_t k = read(pipefd[0], buf, sizeof(buf));
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                /* Keep the tail: the reason for a failure is usually at the end. */
                if (len + (size_t) k > OUTPUT_MAX) {
                        size_t drop = len + (size_t) k - OUTPUT_MAX;
                        if (drop > len)
                                drop = len;
                        memmove(out, out + drop, len - drop);
                        len -= drop;
                }
                if ((size_t) k > OUTPUT_MAX)
                        k = OUTPUT_MAX;
                memcpy(out + len, buf, (size_t) k);
                len += (size_t) k;
        }
        close(pipefd[0]);
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        out[len] = '\0';
        ret->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        ret->output = TAKE_PTR(out);
        return 0;
}

int proc_spawn(const char *const *argv, pid_t *ret_pid) {
        static const char *const envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", "LC_ALL=C.UTF-8",
                                            "HOME=/", NULL };
        pid_t pid = fork();

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
                sigset_t all;

                sigemptyset(&all);
                sigprocmask(SIG_SETMASK, &all, NULL);
                signal(SIGPIPE, SIG_DFL);
                if (devnull < 0 || dup2(devnull, 0) < 0 || chdir("/") < 0)
                        _exit(127);
                execve(argv[0], (char *const *) argv, (char *const *) envp);
                _exit(127);
        }
        *ret_pid = pid;
        return 0;
}

int proc_reap(pid_t pid, int *ret_status) {
        int status;
        pid_t r;

        while ((r = waitpid(pid, &status, WNOHANG)) < 0)
                if (errno != EINTR)
                        return -errno;
        if (r == 0)
                return 0;
        *ret_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return 1;
}

const char *proc_last_line(const proc_result *r, char *buf, size_t size) {
        return text_last_line(r->output, buf, size);
}

const char *text_last_line(const char *text, char *buf, size_t size) {
        const char *s = text ? text : "", *end = s + strlen(s), *start;

        while (end > s && (end[-1] == '\n' || end[-1] == ' '))
                end--;
        start = end;
        while (start > s && start[-1] != '\n')
                start--;
        snprintf(buf, size, "%.*s", (int) (end - start), start);
        return buf;
}
