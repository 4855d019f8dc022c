/* The libsystemd wrapper: sd-bus calls to the system manager and sd_notify. The only file that
 * includes systemd's headers. */
#pragma once

#include <sys/socket.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strbuf.h"

/* One word of a unit file's command line or path list, double-quoted: '%' doubled (it starts a
 * specifier), quotes and backslashes escaped. */
void systemd_unit_word(strbuf *b, const char *s);
/* The sandbox every unit the agent writes shares (the PostgreSQL clusters', the backups'): after
 * ProtectSystem=strict and its ReadWritePaths=, the rest of the file system and the kernel's
 * knobs out of reach ... */
#define SYSTEMD_UNIT_PROTECT                                                                         \
        "ProtectHome=yes\n"                                                                          \
        "PrivateTmp=yes\n"                                                                           \
        "PrivateDevices=yes\n"                                                                       \
        "ProtectKernelTunables=yes\n"                                                                \
        "ProtectKernelModules=yes\n"                                                                 \
        "ProtectKernelLogs=yes\n"                                                                    \
        "ProtectControlGroups=yes\n"                                                                 \
        "ProtectClock=yes\n"                                                                         \
        "ProtectHostname=yes\n"
/* ... and, after their own capabilities, what they may call: IP and Unix sockets, the system
 * calls of a service. */
#define SYSTEMD_UNIT_RESTRICT                                                                        \
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n"                                         \
        "RestrictNamespaces=yes\n"                                                                   \
        "RestrictRealtime=yes\n"                                                                     \
        "RestrictSUIDSGID=yes\n"                                                                     \
        "LockPersonality=yes\n"                                                                      \
        "SystemCallArchitectures=native\n"                                                           \
        "SystemCallFilter=@system-service\n"
int systemd_daemon_reload(char **ret_error);
/* method: "StartUnit", "StopUnit", "ReloadUnit", "RestartUnit", "TryRestartUnit". Waits for the
 * job to finish. */
int systemd_unit_call(const char *unit, const char *method, char **ret_error);
/* Restart unit if it is running (a stopped unit stays stopped; it reads its environment when it
 * starts). 1 when systemd ran the job, 0 when it knows no such unit, <0 on failure. */
int systemd_unit_try_restart(const char *unit, char **ret_error);
/* Enable (EnableUnitFiles: the [Install] symlinks, like systemctl enable) or disable units by
 * name; they must be in the manager's search path. Reload afterwards. */
int systemd_unit_files_enable(const char *const *units, size_t n, bool enable, char **ret_error);
int systemd_unit_active(const char *unit, bool *ret, char **ret_error);
/* True when systemd is PID 1 (the systemd backend can work). */
bool systemd_booted(void);
void systemd_notify(const char *state);
/* The one connection a socket unit with Accept=yes passed (LISTEN_FDS=1: a connected AF_UNIX
 * stream socket on fd 3), or -EBADF when we were not started that way. */
int systemd_accepted_connection(void);
/* Listening sockets a socket unit passed (LISTEN_FDS without Accept=): their number, the first
 * being SD_LISTEN_FDS_START (3); 0 when none. The environment is cleared and each is made
 * close-on-exec, so nothing we run inherits them. */
int systemd_listen_fds(void);
/* fd is a listening stream socket: on the Unix path path (NULL: any Unix path), or on TCP at the
 * address sa (NULL: any). */
bool systemd_socket_is_unix(int fd, const char *path);
bool systemd_socket_is_tcp(int fd, const struct sockaddr *sa, socklen_t len);
/* The watchdog interval systemd expects pings within (WATCHDOG_USEC for us), 0 when none. */
uint64_t systemd_watchdog_usec(void);
/* stderr is the journal's stream (JOURNAL_STREAM names its device and inode): entries can carry
 * fields instead of plain lines. */
bool systemd_stderr_is_journal(void);
/* One journal entry from "NAME=value" fields (MESSAGE=, PRIORITY=, ...). */
int systemd_journal_send(const char *const *fields, size_t n);
