/* The controller's state store (SQLite under --state-dir): placements, rendered documents and
 * revisions. The only file that talks to SQLite. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define STORE_FILE "state.db"

typedef struct store store;

typedef struct stored_placement {
        char *database;       /* "org/ou/env/project/name" */
        int member;           /* 0 = primary */
        char *host;
} stored_placement;

typedef struct stored_document {
        char *host;
        uint64_t revision;
        char *content_hash;
        char *body;           /* the signed envelope as pushed */
} stored_document;

/* create: make the schema (init); readonly: plan's view. A missing store with !create gives
 * -ENOENT, which callers treat as "nothing recorded yet". */
int store_open(const char *state_dir, bool create, bool readonly, store **ret, char **ret_error);
void store_close(store *s);

int store_begin(store *s);
int store_commit(store *s);
void store_rollback(store *s);

int store_load_placements(store *s, stored_placement **ret, size_t *ret_n);
void stored_placements_free(stored_placement *p, size_t n);
/* Replace the recorded placement of one database. */
int store_save_placement(store *s, const char *database, const char *const *hosts, size_t n);

int store_load_documents(store *s, stored_document **ret, size_t *ret_n);
void stored_documents_free(stored_document *d, size_t n);
int store_save_document(store *s, const char *host, uint64_t revision, const char *content_hash, const char *body);
/* Allocate the next revision number (global and monotonic, so revisions order across hosts). */
int store_next_revision(store *s, uint64_t *ret);
