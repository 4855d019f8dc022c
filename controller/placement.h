/* Placement: which database hosts serve each Database. Deterministic, best fit, and sticky:
 * once recorded, a database stays where its data is. */
#pragma once

#include <stdbool.h>

#include "arena.h"
#include "inventory.h"
#include "manifest.h"
#include "store.h"

typedef struct placement {
        long *members;        /* host indices into the inventory; [0] is the primary */
        size_t n_members;
        const char *pending;  /* why the database cannot be (fully) placed, or NULL */
        bool changed;         /* differs from what the store recorded */
} placement;

/* "org/ou/env/project/name", the key placements are recorded under. */
char *database_key(arena *a, const m_database *d);

/* One placement per s->dbs[i] into ret (allocated from a). prev: recorded placements, sorted by
 * (database, member) as store_load_placements returns them. */
void place_databases(const manifest_set *s, const inventory *inv, const stored_placement *prev, size_t n_prev,
                     arena *a, placement *ret);
