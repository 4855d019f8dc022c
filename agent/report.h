/* Status reports to the controller: POST /v1/report with the status object, mutual TLS with the
 * host certificate, after every apply (but a push whose answer carried the status: that answer is
 * the report) and every report-interval seconds. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>

#include "config.h"

/* Send status. 0 when the controller took it; -ENOENT (no message) when this host is not
 * enrolled; otherwise an error with a message naming the controller. */
int report_send(const agent_config *cfg, json_object *status, char **ret_error);

/* Logging that speaks only when the state changes: the first failure and the recovery. Quiet
 * while reports keep working, or keep failing. */
typedef struct report_log {
        bool failing;
        char *error;
} report_log;

void report_log_result(report_log *l, int r, const char *error);
void report_log_done(report_log *l);
