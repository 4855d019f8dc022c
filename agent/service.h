/* Running a database's PostgreSQL: the 'direct' backend (pg_ctl as the OS user, used by tests
 * and hosts without systemd) or the 'systemd' backend (a unit per database, driven over sd-bus). */
#pragma once

#include <stdbool.h>

#include "config.h"
#include "document.h"

typedef struct cluster_paths {
        char *base;           /* <data-root>/<db> */
        char *data;           /* <base>/data */
        char *initdb_tmp;     /* <base>/data.initdb: an initdb in progress */
        char *socket_dir;     /* <base>/run */
        char *pg_ctl_log;     /* <base>/pg_ctl.log: startup output before the logging collector */
} cluster_paths;

void cluster_paths_init(cluster_paths *p, const agent_config *cfg, const char *db);
void cluster_paths_done(cluster_paths *p);

char *service_unit_name(const char *db);
/* The local pgBackRest repository the database's unit lets it write (archive_command), NULL when
 * none: it must exist before the unit starts. */
char *service_repository_path(const agent_config *cfg, const doc_database *db);
/* The systemd unit for a database (text), CPUQuota from cpuCount. */
char *service_unit_text(const agent_config *cfg, const doc_database *db, const cluster_paths *p);

int service_running(const agent_config *cfg, const char *db, const cluster_paths *p, bool *ret, char **ret_error);
/* Writes/updates the unit first with the systemd backend; returns 1 if the unit file changed. */
int service_install(const agent_config *cfg, const doc_database *db, const cluster_paths *p, char **ret_error);
int service_start(const agent_config *cfg, const char *db, const cluster_paths *p, char **ret_error);
int service_stop(const agent_config *cfg, const char *db, const cluster_paths *p, char **ret_error);
int service_reload(const agent_config *cfg, const char *db, const cluster_paths *p, char **ret_error);
int service_restart(const agent_config *cfg, const char *db, const cluster_paths *p, char **ret_error);
