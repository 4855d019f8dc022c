/* The daemon's engine: the HTTPS listener the controller pushes to and the local Unix socket
 * (both on the event loop, main thread), and one worker thread that runs every apply — pushed
 * documents, the resume at start, drift repair on an interval — and the status reports. */
#pragma once

#include <stdint.h>

#include "config.h"

struct event_base;

#define AGENT_MAX_BODY (8u * 1024u * 1024u) /* a pushed document; more gets 413 */
#define AGENT_MAX_HEADERS (16u * 1024u)
#define AGENT_TIMEOUT_SECONDS 30

typedef struct agent_server agent_server;

typedef struct converge_info {
        uint64_t revision;      /* the stored document's */
        size_t n_databases, n_apps;
        bool waiting;           /* a database waits for its key from the controller */
} converge_info;

/* One pass over the stored document (desired.json): resume an interrupted apply or repair drift.
 * Logs one line per resource that changed; quiet otherwise. 0 converged, 1 some resource failed,
 * <0 nothing stored could be applied (*ret_error says why; -ENOENT: no document yet, no message). */
int agent_converge(const agent_config *cfg, converge_info *ret_info, char **ret_error);

/* base must have been created after evthread_use_pthreads(). cfg is copied. */
agent_server *agent_server_new(struct event_base *base, const agent_config *cfg, long interval);
/* Start the worker (its first job: the resume pass) and the listeners: the Unix socket always,
 * HTTPS when this host is enrolled. Tells systemd READY=1 after the first pass. */
int agent_server_start(agent_server *s, char **ret_error);
/* A new configuration (SIGHUP): the worker takes it for its next job and runs a pass at once;
 * listeners whose settings or certificates changed are restarted (after answering the requests
 * in flight). */
void agent_server_reload(agent_server *s, const agent_config *cfg);
/* SIGTERM: refuse new requests (503), answer a queued push with 503, let the current apply
 * finish, then leave the event loop. */
void agent_server_stop(agent_server *s);
void agent_server_free(agent_server *s);
