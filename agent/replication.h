/* Streaming replication (clusterSize > 1): on the primary, one physical slot per standby (and
 * none for hosts no longer members); on a standby, the clone from the primary by pg_basebackup
 * over TLS verify-full, and the conninfo it streams with. The replication role itself is a role
 * like the others: roles.c. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <sys/types.h>

#include "config.h"
#include "document.h"
#include "results.h"

/* The standby's password for DOC_REPLICATION_USER, in <data-root>/<db>/ (0600, the OS user's). */
#define REPLICATION_PASSFILE "replication.pass"
#define REPLICATION_SLOT_PREFIX "infrastream_"

static inline bool replication_is_standby(const doc_database *db) {
        return db->replication && db->replication->role == DOC_REPLICA_STANDBY;
}
static inline bool replication_is_primary(const doc_database *db) {
        return db->replication && db->replication->role == DOC_REPLICA_PRIMARY;
}

/* "infrastream_<host, '-' as '_'>", or NULL when host cannot make a slot name (slot names are
 * [a-z0-9_], at most 63 bytes). */
char *replication_slot_name(const char *host);

/* The standby's connection to the primary (libpq conninfo: name checked by verify-full, the
 * address given, the password only in the passfile), application_name = this host. NULL when the
 * document names no primary among the members. */
char *replication_conninfo(const agent_config *cfg, const doc_database *db);

/* Clone the primary into target (absent or empty) with pg_basebackup as the OS user, through
 * this standby's slot; the passfile is written first. -EAGAIN with "waiting for the primary
 * <host>: ..." when the primary cannot be reached or refuses (the next pass retries). */
int replication_clone(const agent_config *cfg, const doc_database *db, const char *target, uid_t uid, gid_t gid,
                      char **ret_error);

/* A stopped standby's existing copy in data (re)joining: can it still stream from the primary? 1
 * yes, 0 no, with *ret_why (another system; the WAL it needs is gone from the primary, as when its
 * slot was dropped while it was not a member; a point not in the primary's history); negative when
 * that cannot be found out (pg_controldata fails, the primary cannot be reached: *ret_error). */
int replication_copy_follows(const agent_config *cfg, const doc_database *db, const char *data, uid_t uid, gid_t gid,
                             char **ret_why, char **ret_error);

/* Primary: the slots of the standbys, created when missing; our slots of hosts no longer members
 * dropped. One result per change. */
int replication_reconcile(const agent_config *cfg, const doc_database *db, results *res);

/* {"role", "timeline", "lagBytes", "lagSeconds"[, "standbys"]} from the running cluster (NULL
 * values when it cannot be asked); NULL without replication. */
json_object *replication_status(const agent_config *cfg, const doc_database *db);

/* The shutdown checkpoint of a demoted primary, in <data-root>/<db>/: what its standbys must
 * have replayed before one of them is promoted (reported as replication.shutdownLsn). */
#define REPLICATION_DEMOTED_FILE "demoted-at"

/* Primary → standby: a fast shutdown (the walsenders send the shutdown checkpoint to the
 * connected standbys first), the checkpoint's location read with pg_controldata and kept, the
 * passfile and standby.signal written. The caller writes the standby's config and starts it.
 * *ret_lsn: "0/3000060". */
int replication_demote(const agent_config *cfg, const doc_database *db, uid_t uid, gid_t gid, char **ret_lsn,
                       char **ret_error);

/* Standby → primary: once replay has reached what was received, pg_promote(). *ret_timeline: the
 * new timeline. -EAGAIN while WAL received is not replayed yet. */
int replication_promote(const agent_config *cfg, const doc_database *db, int *ret_timeline, char **ret_error);
