/* Restores: the restore drill (the latest backup with WAL replay into a scratch directory,
 * started, checked, stopped, removed; result and duration in backups.json) and the point-in-time
 * restore into a new directory. Never the live data directory. */
#pragma once

#include <stdio.h>

#include "config.h"

/* `agentctl backup restore-test DB`: <backup-root>/.drill-<db>, a free local port, the OS user,
 * Unix socket only, archive_mode off. Checks: recovery ends, the database exists, pg_amcheck
 * (heap and indexes), row counts of the largest tables. Progress on out; 0 when it passed,
 * -errno with *ret_error (also recorded) when it failed. */
int drill_run(const agent_config *cfg, const char *db, FILE *out, char **ret_error);

/* `agentctl backup restore DB --target-time T --to DIR`: DIR absent or empty, not the data
 * directory nor inside it; leaves a stopped cluster that recovers to T when started (Unix socket
 * in DIR only, archive_mode off). Prints how to start it on out. */
int drill_restore(const agent_config *cfg, const char *db, const char *target_time, const char *dir, FILE *out,
                  char **ret_error);
