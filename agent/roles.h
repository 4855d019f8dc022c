/* The database and roles reconciler: the database owned by a NOLOGIN owner role, group roles
 * for read-write and read-only access, one LOGIN role per (application, database) grant, and
 * revocation of grants the document no longer has. */
#pragma once

#include "config.h"
#include "document.h"
#include "results.h"

#define ROLE_OWNER "infrastream_owner"
#define ROLE_READWRITE "infrastream_readwrite"
#define ROLE_READONLY "infrastream_readonly"

/* Connections used to create many roles at once (PostgreSQL checks each SCRAM verifier,
 * ~6.5 ms of server CPU per role). */
#define ROLES_PARALLEL 4
#define ROLES_BATCH_MIN 64

int roles_reconcile(const agent_config *cfg, const doc_database *db, results *res);
