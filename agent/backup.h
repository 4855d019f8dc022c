/* The backup reconciler (database hosts, after the cluster and its roles): per database with
 * backups enabled, pgBackRest's config file, the repository, the stanza and a check that WAL
 * archiving works; `agentctl backup run`; and what status shows. What happened is kept in
 * <state-dir>/backups.json (times, sizes, results: never a secret). */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "document.h"
#include "results.h"

#define BACKUPS_STATE_FILE "backups.json"

typedef struct backup_drill_table {
        char *name;           /* schema.table */
        int64_t rows;
} backup_drill_table;

/* One database's backup history, as the agent recorded it. */
typedef struct backup_entry {
        char *name;
        bool enabled;                 /* the last apply set backups up */
        char *checked_config;         /* SHA-256 of the config the stanza was created and checked with */
        int64_t configured_at;        /* when that check passed */
        /* the last `backup run` */
        char *backup_type;            /* "full", "diff", "incr"; NULL: never */
        char *backup_label;
        int64_t backup_started, backup_finished;
        uint64_t backup_size, backup_repo_size;
        char *backup_error;           /* NULL: it succeeded */
        int64_t last_good_backup;     /* end of the last successful backup */
        int64_t oldest_restorable;    /* stop time of the oldest backup in the repository, 0: none */
        /* the last restore drill */
        int64_t drill_at;             /* 0: never */
        double drill_seconds;
        char *drill_label;            /* the backup it restored */
        char *drill_error;            /* NULL: it passed */
        int64_t drill_last_good;      /* when a drill last passed */
        double drill_last_good_seconds;
        backup_drill_table *drill_tables;
        size_t n_drill_tables;
} backup_entry;

typedef struct backups_state {
        backup_entry *dbs;
        size_t n_dbs;
} backups_state;

/* Read-modify-write of backups.json under its own lock (<state-dir>/backups.lock), so a backup
 * running for an hour never holds the apply lock. backups_lock returns the fd to close. */
int backups_lock(const agent_config *cfg, char **ret_error);
int backups_load(const agent_config *cfg, backups_state *ret, char **ret_error);
int backups_save(const agent_config *cfg, const backups_state *s, char **ret_error);
void backups_state_done(backups_state *s);
/* The entry for db, added when missing. */
backup_entry *backups_entry(backups_state *s, const char *db);
/* <backup-root>/<db>, the local repository: 0750, the OS user's (and the backup root 0755). */
int backup_make_repository(const agent_config *cfg, const char *db, uid_t uid, gid_t gid, char **ret_error);

/* Converge db's backups: one result line "backup <db>: ..." (none while backups are disabled and
 * were never enabled). The cluster must be running. */
int backup_reconcile(const agent_config *cfg, const doc_database *db, results *res);

typedef enum backup_type {
        BACKUP_FULL,
        BACKUP_DIFF,
        BACKUP_INCR,
} backup_type;
int backup_type_from_string(const char *s, backup_type *ret);
const char *backup_type_to_string(backup_type t);

/* `agentctl backup run`: a backup of db (in the applied document, backups enabled), recorded in
 * backups.json; a drill follows a full backup when drill-after-full is set. Prints progress lines
 * on out. 0 on success; -errno with *ret_error otherwise (also recorded). */
int backup_run(const agent_config *cfg, const char *db, backup_type type, FILE *out, char **ret_error);

/* `agentctl backup list`: the backups in the repository, one line each, on out. */
int backup_list(const agent_config *cfg, const char *db, FILE *out, char **ret_error);

/* The "backups" text of db's status line and a "backup" object with the same facts; *failed and
 * *first_error (when still NULL) are set for a failed backup, a failed drill, failing WAL
 * archiving, or a backup older than twice the schedule's interval. */
json_object *backup_status(const agent_config *cfg, const doc_database *db, char **ret_text, bool *failed,
                           char **first_error);

/* The applied document's database db, for the backup commands: -ENOENT with a message when it is
 * not there or its backups are disabled. */
int backup_find_database(const agent_config *cfg, const char *db, doc_document **ret_doc,
                         const doc_database **ret_db, char **ret_error);
