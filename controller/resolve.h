/* Resolution: one name per kind and identity, and every grant pointing at a real database. */
#pragma once

#include "diag.h"
#include "manifest.h"

/* Sorts dbs and apps by (identity, name), reports duplicates (naming both places) and
 * unresolved references (with the closest name as a hint), and fills m_grant.db.
 * Grants that do not resolve keep db = -1. */
void resolve_manifests(manifest_set *s, diag_list *diags);

/* Binary search in the sorted dbs; -1 when absent. */
long find_database(const manifest_set *s, const identity *id, const char *name);
