/* The encryption reconciler: every database's files (data directory and WAL, TLS key, logs, the
 * local backup repository and the restore drills' copies) on encrypted storage whose keys come from
 * the controller and live only in the kernel.
 *
 *   fscrypt  each database's directories, <data-root>/<db> and <backup-root>/<db>, carry a v2
 *            policy for the database's own key, added to the filesystem's keyring while unlocked;
 *   luks     data-device is a LUKS2 volume (one keyslot per database's key) opened as
 *            /dev/mapper/infrastream-data and mounted at data-root; backup-root must be under it;
 *   none     stated by the operator; nothing is encrypted and status says so in red.
 * With auto (the default), luks when data-device is set, else fscrypt; when the machine can do
 * neither, no database is created and the reason is the result.
 *
 * Keys are fetched from the controller (datakeys.h) only when something must be unlocked or
 * created, handed to the kernel, and wiped. After a reboot the keys are gone from the kernel: the
 * next pass asks the controller again (network-bound unlock); until it answers, the database stays
 * down and status says "locked, waiting for controller". Nothing here deletes or reformats data:
 * a directory or device that holds data this reconciler did not protect is refused. */
#pragma once

#include <stdbool.h>

#include "config.h"
#include "document.h"
#include "results.h"

#define ENCRYPTION_LOCKED "locked, waiting for controller"
#define ENCRYPTION_RETRY_SECONDS 5 /* between passes while a database waits for its key */

/* Make every database of d ready: ready[i] (d->n_databases entries) tells whether database i's
 * storage is encrypted and unlocked (or encryption = none), so it may be created and started.
 * One result line "encryption <db>" per database that was set up, unlocked or refused. */
void encryption_reconcile(const agent_config *cfg, const doc_document *d, bool *ready, results *res);

/* One database's encryption as status shows it, read live from the kernel (a reboot locks). */
typedef struct encryption_state {
        const char *mode;   /* "fscrypt", "luks2", "none" */
        const char *state;  /* "unlocked", ENCRYPTION_LOCKED, "not set up", "unencrypted", "none" */
        bool ok;            /* unlocked; "none" is the operator's choice: not ok, but not a failure */
        bool failed;        /* counts as a failure for agentctl status's exit code */
} encryption_state;

void encryption_status(const agent_config *cfg, const char *db, encryption_state *ret);

/* Give the new, empty directory dir (on the backup root: a restore drill's copy of db) the same
 * protection as db's data: its fscrypt policy. Nothing to do with luks or none. */
int encryption_protect_dir(const agent_config *cfg, const char *db, const char *dir, char **ret_error);

/* Whether any database waits for its key: the daemon then tries again sooner. */
bool encryption_waiting(const results *res);
