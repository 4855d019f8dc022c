/* sd-bus: start, stop, reload and restart units, and wait for their jobs; sd_notify. */
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>

#include "macro.h"
#include "systemd.h"


bool systemd_booted(void) {
        return sd_booted() > 0;
}

void systemd_notify(const char *state) {
        (void) sd_notify(0, state);
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

/* Wait for the job object to disappear (JobRemoved), then report its result. */
int systemd_unit_call(const char *unit, const char *method, char **ret_error) {
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
