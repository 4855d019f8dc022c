/* The controller's state store (SQLite under --state-dir): placements, rendered documents,
 * revisions and the encrypted secrets. The only file that talks to SQLite. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
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

/* One (application, database) grant's secret as stored; the ciphertext is opaque here (secrets.c
 * encrypts and decrypts it). */
typedef struct stored_secret {
        char *application_key;    /* "org/ou/env/project/app" */
        char *database_key;       /* "org/ou/env/project/database" */
        unsigned char *ciphertext; /* NULL in store_load_secrets() listings */
        size_t ciphertext_size;
        char *verifier;           /* "SCRAM-SHA-256$4096:..." */
        int64_t created;          /* Unix time */
} stored_secret;

/* create: make the schema (init); readonly: plan's view. A missing store with !create gives
 * -ENOENT, which callers treat as "nothing recorded yet". A writable open upgrades an older schema
 * (one transaction); a read-only open of one gives -ESTALE with a message. */
int store_open(const char *state_dir, bool create, bool readonly, store **ret, char **ret_error);
void store_close(store *s);
static inline void store_closep(store **s) {
        store_close(*s);
}

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

/* Small settings in the meta table; -ENOENT when unset. */
int store_get_meta(store *s, const char *key, char **ret);
int store_set_meta(store *s, const char *key, const char *value);

/* One secret with its ciphertext; -ENOENT when the grant has none. */
int store_load_secret(store *s, const char *application_key, const char *database_key, stored_secret *ret);
/* Every secret without its ciphertext, sorted by (application_key, database_key). */
int store_load_secrets(store *s, stored_secret **ret, size_t *ret_n);
void stored_secret_done(stored_secret *x);
void stored_secrets_free(stored_secret *x, size_t n);
/* -EEXIST when the grant already has a secret. */
int store_insert_secret(store *s, const stored_secret *x);
/* -ENOENT when there was none. */
int store_delete_secret(store *s, const char *application_key, const char *database_key);
