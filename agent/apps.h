/* The application reconciler (application hosts): per application an environment file
 * <apps-dir>/<app>.env (0600, root) holding its connection strings, the CA they verify the
 * database against (<apps-dir>/ca.crt, 0644), a systemd drop-in that points the unit at the file,
 * and a restart of the unit when its environment changed. What was done per application is kept
 * in <state-dir>/apps.json (names only, never a value) for status and for the next apply. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "document.h"
#include "results.h"

#define APPS_STATE_FILE "apps.json"
#define APPS_CA_FILE "ca.crt"
#define APPS_DROP_IN "infrastream.conf"

/* One application as the last apply left it. */
typedef struct apps_entry {
        char *name;
        char *unit;
        char **variables;       /* names of the injected variables, sorted; never values */
        size_t n_variables;
        int64_t last_restart;   /* seconds since the epoch of the last restart attempt; 0: never */
        char *last_result;      /* "restarted", or why the restart failed; NULL: never restarted */
        bool restart_pending;   /* the environment changed and the unit has not been restarted since */
} apps_entry;

typedef struct apps_state {
        apps_entry *apps;       /* sorted by name */
        size_t n_apps;
} apps_state;

/* <state-dir>/apps.json; an empty state when it does not exist. -EBADMSG with a message when it
 * is damaged. */
int apps_load_state(const agent_config *cfg, apps_state *ret, char **ret_error);
void apps_state_done(apps_state *s);
const apps_entry *apps_state_find(const apps_state *s, const char *name);

/* The document's applications are fit to become file names, unit names and environment lines:
 * checked before anything is changed (a failure rejects the whole document). */
int apps_check(const doc_document *d, char **ret_error);

/* The connection string of one variable: postgresql://role:password@host:port/db?sslmode=
 * verify-full&sslrootcert=<ca_file>, plus &hostaddr=<address> when resolve is false. With several
 * members (clusterSize > 1): one host:port per member, every address in hostaddr, and
 * target_session_attrs=read-write or prefer-standby by the grant's access. A secret:
 * erase it. NULL when the variable has no password yet. */
char *apps_connection_string(const doc_env *e, const char *ca_file, bool resolve);

/* Converge the host's applications to d->apps: one result line "app <name>: ..." per
 * application (and one for an application no longer in the document), "ca <path>" for the CA.
 * Returns <0 when anything failed (recorded in res). */
int apps_reconcile(const agent_config *cfg, const doc_document *d, results *res);
