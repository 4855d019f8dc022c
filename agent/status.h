/* What this host was told and what it did, as one JSON object: GET /v1/status, the report to the
 * controller, `agentctl status [--json]`. Built from the state directory (so agentctl can build it
 * when the daemon is not running) plus what only the daemon knows. Never a password or a key. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>

#include "config.h"

typedef struct status_daemon {
        const char *last_error;   /* the daemon's last failure outside the results, or NULL */
        bool applying;            /* an apply runs now: a desired revision ahead of the applied one is no drift */
} status_daemon;

/* The status object:
 *   {"host","role","controller","identity","identityExpires","revision","commit","appliedAt",
 *    "failed","lastError","databases":[...],"apps":[...],"resources":[...]}
 * Times are seconds since the epoch (null: unknown). daemon is NULL when built by agentctl from
 * the files. */
json_object *status_build(const agent_config *cfg, const status_daemon *daemon);

/* Ask the running daemon over its Unix socket (plain HTTP, GET /v1/status). -ENOENT or
 * -ECONNREFUSED (no message): the daemon is not running. -EACCES with a message: the socket's
 * permissions or the daemon refused this user. Other errors with a message. */
int status_fetch(const char *socket_path, json_object **ret, char **ret_error);

/* Anything failed or drifted (the "failed" member). */
bool status_failed(json_object *status);

/* One line per fact and per resource; colour (the state words) only when color is set. */
void status_print(json_object *status, FILE *f, bool color);
