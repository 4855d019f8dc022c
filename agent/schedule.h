/* Backup schedules: per database with backups enabled, a weekly full backup and a differential
 * on the document's OnCalendar expression. The systemd backend writes timer and service units;
 * the direct backend (no systemd, as in CI) runs the same schedule from the daemon's loop. Both
 * start the same command: `agentctl --config FILE backup run DB --type full|diff`. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "document.h"
#include "results.h"

/* The full backup's schedule: weekly, one hour after the default differential ("daily", 00:00),
 * so the two seldom meet. Not in the document: v1 carries only the differential's expression. */
#define SCHEDULE_FULL "Sun *-*-* 01:00:00"
#define SCHEDULE_DIFF_DEFAULT "daily"
/* systemd spreads the start over this much (each host and timer gets its own fixed offset), so
 * hosts that share a repository do not all start at once. The direct backend has no delay. */
#define SCHEDULE_RANDOM_DELAY "30min"

typedef enum schedule_kind {
        SCHEDULE_KIND_FULL,
        SCHEDULE_KIND_DIFF,
        _SCHEDULE_KIND_MAX,
} schedule_kind;

const char *schedule_kind_to_string(schedule_kind k); /* "full", "diff": agentctl's --type */

/* The OnCalendar expression of one kind for a database ('daily' when the document has none). */
const char *schedule_expression(const doc_backup *b, schedule_kind k);

/* The first elapse of expr strictly after after_usec (µs since the epoch, UTC). -EINVAL with the
 * calendar parser's message, -ENOENT (with a message) when it never elapses again. */
int schedule_next(const char *expr, int64_t after_usec, int64_t *ret_usec, char **ret_error);

/* The longest gap between two consecutive elapses of expr among the first few after after_usec
 * ("daily": 1 day; "Mon,Thu": 4 days; "monthly": 28..31 days depending on the month). For
 * status: a backup older than twice this is stale. Same errors as schedule_next(); a one-shot
 * expression ("@1700000000") has no interval: -ENOENT. */
int schedule_interval(const char *expr, int64_t after_usec, int64_t *ret_usec, char **ret_error);
/* The longest a database goes without any backup by its schedules: the smaller of the
 * differential's and the weekly full's intervals. */
int schedule_backup_interval(const doc_backup *b, int64_t after_usec, int64_t *ret_usec, char **ret_error);

/* --- systemd backend ---------------------------------------------------------------------------- */

/* "infrastream-backup-full@accounts-db.timer", ".service". */
char *schedule_unit_name(const char *db, schedule_kind k, const char *suffix);
/* The unit texts. agentctl is the absolute path of the agentctl binary; the config path is
 * cfg->path. Timer: OnCalendar= in UTC (the expression normalized, " UTC" appended: the direct
 * backend evaluates in UTC too), Persistent=true, RandomizedDelaySec=. Service: Type=oneshot. */
int schedule_timer_text(const doc_database *db, schedule_kind k, char **ret_text, char **ret_error);
char *schedule_service_text(const agent_config *cfg, const char *agentctl, const char *db, schedule_kind k);
/* agentctl next to the running binary (infrastream-agent and agentctl are installed together). */
char *schedule_agentctl_path(void);

/* Converges the units for every database of the document on a database host: written, daemon
 * reloaded, timers enabled and started while backups are enabled; timers stopped and disabled,
 * files removed when they are disabled or the database is gone (backups themselves are never
 * touched). Results: kind "schedule", name the database. With the direct backend it only checks
 * the expressions. Returns <0 when some database failed. */
int schedule_reconcile(const agent_config *cfg, const doc_document *d, results *res);

/* --- direct backend ----------------------------------------------------------------------------- */

typedef struct schedule_job {
        char *database;
        schedule_kind kind;
        int64_t elapse_usec;  /* the elapse that made it due */
} schedule_job;

void schedule_jobs_free(schedule_job *jobs, size_t n);

/* The schedule's state: <state-dir>/schedule.json, the time each timer last triggered (what
 * systemd keeps in its stamp files for Persistent=true). Takes the jobs due at now_usec and
 * records them as triggered: a job is due when its expression elapsed after the last trigger.
 * Like a persistent timer, missed elapses run once, and a schedule seen for the first time
 * starts counting from now (no backup at once). When a full and a differential of one database
 * are due together only the full runs. *ret_next_usec: the earliest next elapse (INT64_MAX when
 * none). Databases without backups are dropped from the state. */
int schedule_due(const agent_config *cfg, const doc_document *d, int64_t now_usec, schedule_job **ret_jobs,
                 size_t *ret_n, int64_t *ret_next_usec, char **ret_error);

/* The backups the daemon's worker started and has not seen finish. */
typedef struct schedule_runner {
        struct schedule_child {
                pid_t pid;
                char *database;
                schedule_kind kind;
        } *children;
        size_t n;
} schedule_runner;

/* One step of the direct backend, from the daemon's worker: collects finished runs (logging how
 * they ended), starts the due ones as `agentctl backup run` children (not on the worker: a backup
 * takes minutes to hours, pushes must not wait for it), skips one whose previous run of the same
 * database is still going. Returns the seconds until the next elapse, at most max_seconds (and
 * at most 60 while a child runs, to collect it). */
long schedule_tick(schedule_runner *r, const agent_config *cfg, long max_seconds);
void schedule_runner_done(schedule_runner *r);
