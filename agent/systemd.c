/* sd-bus: start, stop, reload and restart units, and wait for their jobs; sd_notify. */
#include <fcntl.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "macro.h"
#include "systemd.h"


void systemd_unit_word(strbuf *b, const char *s) {
        strbuf_append(b, "\"");
        for (const char *p = s; *p; p++) {
                if (*p == '%')
                        strbuf_append(b, "%%");
                else if (*p == '"' || *p == '\\')
                        strbuf_printf(b, "\\%c", *p);
                else
                        strbuf_printf(b, "%c", *p);
        }
        strbuf_append(b, "\"");
}

bool systemd_booted(void) {
        return sd_booted() > 0;
}

void systemd_notify(const char *state) {
        (void) sd_notify(0, state);
}

int systemd_accepted_connection(void) {
        int n = sd_listen_fds(1);

        if (n != 1 || sd_is_socket(SD_LISTEN_FDS_START, AF_UNIX, SOCK_STREAM, 0) <= 0)
                return -EBADF;
        /* Not for what we run (mkfs.ext4): the answer is ours to give. */
        (void) fcntl(SD_LISTEN_FDS_START, F_SETFD, FD_CLOEXEC);
        return SD_LISTEN_FDS_START;
}

int systemd_listen_fds(void) {
        int n = sd_listen_fds(1);

        for (int i = 0; i < n; i++)
                (void) fcntl(SD_LISTEN_FDS_START + i, F_SETFD, FD_CLOEXEC);
        return n < 0 ? 0 : n;
}

bool systemd_socket_is_unix(int fd, const char *path) {
        return sd_is_socket_unix(fd, SOCK_STREAM, 1, path, 0) > 0;
}

bool systemd_socket_is_tcp(int fd, const struct sockaddr *sa, socklen_t len) {
        if (!sa)
                return sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) > 0;
        return sd_is_socket_sockaddr(fd, SOCK_STREAM, sa, len, 1) > 0;
}

uint64_t systemd_watchdog_usec(void) {
        uint64_t usec = 0;
        return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}

bool systemd_stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        /* systemd's advice: compare, for stderr may have been redirected since (a test's log file). */
        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

int systemd_journal_send(const char *const *fields, size_t n) {
        struct iovec iov[16];

        if (n > ELEMENTSOF(iov))
                n = ELEMENTSOF(iov);
        for (size_t i = 0; i < n; i++)
                iov[i] = (struct iovec) { .iov_base = (void *) fields[i], .iov_len = strlen(fields[i]) };
        return sd_journal_sendv(iov, (int) n);
}

static int bus_error(int r, sd_bus_error *e, char **ret_error) {
        if (ret_error)
                *ret_error = xstrdup(sd_bus_error_is_set(e) ? e->message : strerror(-r));
        sd_bus_error_free(e);
        return r;
}

int systemd_daemon_reload(char **ret_error) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return bus_error(r, &e, ret_error);
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "Reload", &e, NULL, "");
        if (r < 0)
                return bus_error(r, &e, ret_error);
        return 0;
}

/* Wait for the job object to disappear (JobRemoved), then report its result. With ret_no_unit,
 * a unit systemd does not know is not an error: *ret_no_unit is set and 0 returned. */
static int unit_call(const char *unit, const char *method, bool *ret_no_unit, char **ret_error) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *job = NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return bus_error(r, &e, ret_error);
        r = sd_bus_match_signal(bus, NULL, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                "org.freedesktop.systemd1.Manager", "JobRemoved", NULL, NULL);
        if (r < 0)
                return bus_error(r, &e, ret_error);
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", method, &e, &reply, "ss", unit, "replace");
        if (r < 0 && ret_no_unit && sd_bus_error_has_name(&e, "org.freedesktop.systemd1.NoSuchUnit")) {
                sd_bus_error_free(&e);
                *ret_no_unit = true;
                return 0;
        }
        if (r < 0)
                return bus_error(r, &e, ret_error);
        r = sd_bus_message_read(reply, "o", &job);
        if (r < 0)
                return bus_error(r, &e, ret_error);
        for (;;) {
                _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
                const char *path, *u, *result;
                uint32_t id;

                r = sd_bus_process(bus, &m);
                if (r < 0)
                        return bus_error(r, &e, ret_error);
                if (r == 0) {
                        r = sd_bus_wait(bus, 120 * 1000000ULL);
                        if (r < 0)
                                return bus_error(r, &e, ret_error);
                        if (r == 0)
                                return bus_error(-ETIMEDOUT, &e, ret_error);
                        continue;
                }
                if (!m || !sd_bus_message_is_signal(m, "org.freedesktop.systemd1.Manager", "JobRemoved"))
                        continue;
                if (sd_bus_message_read(m, "uoss", &id, &path, &u, &result) < 0 || !streq(path, job))
                        continue;
                if (!streq(result, "done")) {
                        if (ret_error)
                                *ret_error = xasprintf("%s of %s finished with result '%s' (see journalctl -u %s)",
                                                       method, unit, result, unit);
                        return -EIO;
                }
                return 0;
        }
}

int systemd_unit_call(const char *unit, const char *method, char **ret_error) {
        return unit_call(unit, method, NULL, ret_error);
}

int systemd_unit_try_restart(const char *unit, char **ret_error) {
        bool no_unit = false;
        int r = unit_call(unit, "TryRestartUnit", &no_unit, ret_error);

        if (r < 0)
                return r;
        return no_unit ? 0 : 1;
}

int systemd_unit_files_enable(const char *const *units, size_t n, bool enable, char **ret_error) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return bus_error(r, &e, ret_error);
        r = sd_bus_message_new_method_call(bus, &m, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                           "org.freedesktop.systemd1.Manager",
                                           enable ? "EnableUnitFiles" : "DisableUnitFiles");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "s");
        for (size_t i = 0; r >= 0 && i < n; i++)
                r = sd_bus_message_append(m, "s", units[i]);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        /* runtime=false (persistent, /etc), and for enable force=false: never replace a link an
         * administrator made. */
        if (r >= 0)
                r = enable ? sd_bus_message_append(m, "bb", 0, 0) : sd_bus_message_append(m, "b", 0);
        if (r < 0)
                return bus_error(r, &e, ret_error);
        r = sd_bus_call(bus, m, 0, &e, &reply);
        if (r < 0)
                return bus_error(r, &e, ret_error);
        return 0;
}

int systemd_unit_active(const char *unit, bool *ret, char **ret_error) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *path = NULL, *state = NULL;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        const char *p;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0)
                return bus_error(r, &e, ret_error);
        r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                               "org.freedesktop.systemd1.Manager", "LoadUnit", &e, &reply, "s", unit);
        if (r < 0)
                return bus_error(r, &e, ret_error);
        r = sd_bus_message_read(reply, "o", &p);
        if (r < 0)
                return bus_error(r, &e, ret_error);
        path = xstrdup(p);
        r = sd_bus_get_property_string(bus, "org.freedesktop.systemd1", path, "org.freedesktop.systemd1.Unit",
                                       "ActiveState", &e, &state);
        if (r < 0)
                return bus_error(r, &e, ret_error);
        *ret = streq(state, "active") || streq(state, "reloading") || streq(state, "activating");
        return 0;
}
