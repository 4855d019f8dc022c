/* The one wrapper around the pgbackrest binary: the per-database configuration text, running its
 * commands as the OS user with that configuration and the stanza, and reading `info --output=json`.
 * pgBackRest's errors become one line here; the repository passphrase never leaves the config. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "document.h"
#include "proc.h"

#define PGBACKREST_BIN "/usr/bin/pgbackrest"

/* <data-root>/<db>/pgbackrest.conf: 0600, owned by the OS user (it holds the passphrase). */
char *pgbackrest_conf_path(const agent_config *cfg, const char *db);
/* The local repository <backup-root>/<db> (also the path inside an S3 bucket). */
char *pgbackrest_repo_path(const agent_config *cfg, const char *db);
/* <data-root>/<db>/log/pgbackrest */
char *pgbackrest_log_path(const agent_config *cfg, const char *db);
/* PostgreSQL's archive_command for db (no secret in it: the passphrase is in the config file). */
char *pgbackrest_archive_command(const agent_config *cfg, const char *db);

/* The config file's text. s3_key_id/s3_secret: the S3 credentials when the host has an S3
 * repository (NULL otherwise). Holds secrets: erase_and_free() it. */
char *pgbackrest_conf_text(const agent_config *cfg, const doc_database *db, const char *s3_key_id,
                           const char *s3_secret);

/* Run `pgbackrest --config=<conf> --stanza=<db> ARGS...` as the OS user. 0 when it exited 0;
 * -EIO with "pgbackrest <command> failed (exit N): <its last line>" otherwise. ret (may be NULL)
 * gets the output either way (free with proc_result_done). */
int pgbackrest_run(const agent_config *cfg, const char *db, const char *const *args, proc_result *ret,
                   char **ret_error);

typedef struct pgbr_backup {
        char *label;
        char *type;          /* "full", "diff", "incr" */
        int64_t start, stop; /* seconds since the epoch */
        uint64_t size;       /* database size */
        uint64_t repo_size;  /* in the repository (compressed) */
        bool error;          /* pgBackRest found checksum errors while copying */
} pgbr_backup;

typedef struct pgbr_info {
        int status_code;     /* 0 ok, 2 no valid backups, ... */
        char *status_message;
        pgbr_backup *backups; /* oldest first */
        size_t n_backups;
        char *archive_min, *archive_max; /* WAL range in the repository, or NULL */
} pgbr_info;

/* Parse `pgbackrest info --output=json` for stanza. -EBADMSG with a message when it is not what
 * pgBackRest prints. */
int pgbackrest_info_parse(const char *json, const char *stanza, pgbr_info *ret, char **ret_error);
/* Run info and parse it. */
int pgbackrest_info(const agent_config *cfg, const char *db, pgbr_info *ret, char **ret_error);
void pgbr_info_done(pgbr_info *i);
