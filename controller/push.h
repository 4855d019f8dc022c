/* apply's second half: record every host's signed document, push it to the hosts behind it over
 * mutual TLS (many at once), sign the TLS certificate requests the agents answer with and push
 * again, until each host has applied its recorded revision. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "compile.h"

#define PUSH_TIMEOUT_DEFAULT 300   /* seconds per host, all its requests together */
#define PUSH_PARALLEL_DEFAULT 64   /* concurrent connections */
#define PUSH_CSR_ROUNDS_MAX 3      /* certificate rounds per host before it counts as failed */

typedef struct push_options {
        const char *repo;           /* for the commit documents record */
        const char *state_dir;      /* signing key, CA, controller certificate, secrets */
        long timeout_seconds;
        size_t parallel;
        FILE *progress;             /* one line per event (stderr), or NULL */
        /* A switchover pushes its hosts in steps: only the hosts marked here (indexed as the
         * inventory; NULL: all), and the documents recorded by an earlier call (no_record). */
        const bool *only;
        bool no_record;
} push_options;

typedef enum push_status {
        PUSH_CURRENT,               /* had its recorded revision applied already: nothing pushed */
        PUSH_CONVERGED,             /* pushed, and the agent applied it */
        PUSH_FAILED,
} push_status;

typedef struct push_result {
        const char *host;           /* the inventory's string */
        uint64_t revision;          /* the recorded revision the host should run */
        bool changed;               /* its desired state changed in this apply */
        push_status status;
        unsigned pushes;
        double seconds;             /* time its requests took */
        char *detail;               /* "applied in 2.1 s (2 created)", or why it failed */
} push_result;

typedef struct push_report {
        push_result *hosts;         /* one per inventory host, in inventory (name) order */
        size_t n;
        size_t n_changed, n_pushed, n_failed;
} push_report;

void push_report_done(push_report *r);

/* c is compiled for writing (compile_all with write_store). Records placements, secrets,
 * certificates and the changed documents, pushes, and fills *ret. Returns 0 when every host
 * converged, 1 when some did not (named in ret), -errno with *ret_error when apply could not run
 * (state store, keys, CA). Nothing secret is printed. */
int push_apply(compilation *c, const push_options *o, push_report *ret, char **ret_error);

/* The status of one enrolled host, asked now (GET /v1/status over mutual TLS), recorded as its
 * report; *ret_status is the report's JSON text. */
int push_fetch_status(compilation *c, const push_options *o, const char *host, long timeout_ms, char **ret_status,
                      char **ret_error);
