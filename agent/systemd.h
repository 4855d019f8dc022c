/* The libsystemd wrapper: sd-bus calls to the system manager and sd_notify. The only file that
 * includes systemd's headers. */
#pragma once

#include <stdbool.h>

int systemd_daemon_reload(char **ret_error);
/* method: "StartUnit", "StopUnit", "ReloadUnit", "RestartUnit", "TryRestartUnit". Waits for the
 * job to finish. */
int systemd_unit_call(const char *unit, const char *method, char **ret_error);
int systemd_unit_active(const char *unit, bool *ret, char **ret_error);
/* True when systemd is PID 1 (the systemd backend can work). */
bool systemd_booted(void);
void systemd_notify(const char *state);
