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

/* --- schema v3: enrolled hosts, enrollment tokens, issued server certificates ----------------- */

/* A host that enrolled with a token (or reported since). */
typedef struct stored_host {
        char *name;
        char *role;               /* "database" / "application" (the token's) */
        char **addresses;
        size_t n_addresses;
        int cpus;
        uint64_t memory_bytes;
        char *labels;             /* "k=v,k=v" as the token gave them, "" for none */
        char *endpoint;           /* "ADDR:PORT" of the agent's HTTPS listener */
        char *cert_fingerprint;   /* hex SHA-256 of the host certificate issued at enrollment */
        int64_t enrolled_at;
        int64_t last_seen;        /* last report or successful push, 0 never */
        uint64_t applied_revision;/* as last reported */
        char *applied_commit;
        bool failed;              /* the last report said something failed or drifted */
        char *status;             /* the last report (JSON text), or NULL */
} stored_host;

void stored_host_done(stored_host *h);
void stored_hosts_free(stored_host *h, size_t n);
/* Every enrolled host, sorted by name. */
int store_load_hosts(store *s, stored_host **ret, size_t *ret_n);
/* -ENOENT when not enrolled. */
int store_load_host(store *s, const char *name, stored_host *ret);
/* Record a host's enrollment facts (name .. enrolled_at). replace: insert or replace, keeping its
 * reports; !replace: insert only, -EEXIST when the name is enrolled already. */
int store_save_host(store *s, const stored_host *h, bool replace);
/* A status report (or a push response): last_seen, applied revision and commit, failed, status. */
int store_record_report(store *s, const char *host, uint64_t revision, const char *commit, bool failed,
                        const char *status_json, int64_t now);

typedef struct stored_token {
        char *id;                 /* 8 hex digits, public */
        char *verifier;           /* wire_token_verifier() of the secret */
        unsigned char binding_key[32];
        char *role;
        char *labels;             /* "k=v,..." or "" */
        int64_t created, expires;
        int64_t used_at;          /* 0: unused */
        char *used_by;            /* host that enrolled with it, or NULL */
        char *replaces;           /* schema v6: the enrolled host it may re-enroll (and no other
                                   * name), or NULL: it enrolls only a name not enrolled yet */
} stored_token;

void stored_token_done(stored_token *t);
int store_insert_token(store *s, const stored_token *t);
/* -ENOENT when there is no such token. */
int store_load_token(store *s, const char *id, stored_token *ret);
/* Mark used (inside the caller's transaction); -EALREADY when it was used already. */
int store_use_token(store *s, const char *id, const char *host, int64_t now);

/* A server certificate the CA issued for a database on a host: rendered into the host's document
 * (doc_database.tls_certificate) until a newer one replaces it. */
typedef struct stored_cert {
        char *host;
        char *database;           /* the database's name on that host */
        char *certificate;        /* PEM */
        int64_t not_after;
} stored_cert;

void stored_certs_free(stored_cert *c, size_t n);
int store_load_certs(store *s, stored_cert **ret, size_t *ret_n);   /* sorted by (host, database) */
int store_save_cert(store *s, const stored_cert *c);                /* insert or replace */

/* --- schema v4: pgBackRest repository passphrases ---------------------------------------------- */

/* A database's repository passphrase as stored; the ciphertext is opaque here (secrets.c). There
 * is no delete: the repository outlives the database, and only this passphrase opens it. */
typedef struct stored_passphrase {
        char *database_key;       /* "org/ou/env/project/database" */
        unsigned char *ciphertext;
        size_t ciphertext_size;
        int64_t created;          /* Unix time */
} stored_passphrase;

void stored_passphrase_done(stored_passphrase *x);
void stored_passphrases_free(stored_passphrase *x, size_t n);
/* Every one, sorted by database_key (strcmp() order). */
int store_load_backup_passphrases(store *s, stored_passphrase **ret, size_t *ret_n);
/* -ENOENT when the database has none. */
int store_load_backup_passphrase(store *s, const char *database_key, stored_passphrase *ret);
/* -EEXIST when the database has one already. */
int store_insert_backup_passphrase(store *s, const stored_passphrase *x);

/* --- schema v5: the databases' data keys ----------------------------------------------------- */

/* A database's data key (disk encryption) as stored: a row like a passphrase's, the ciphertext
 * opaque here (secrets.c). No delete either: the encrypted data outlives the database's removal
 * from the manifests. Freed with stored_passphrase_done(). */
typedef stored_passphrase stored_data_key;

/* -ENOENT when the database has none. */
int store_load_data_key(store *s, const char *database_key, stored_data_key *ret);
/* -EEXIST when the database has one already. */
int store_insert_data_key(store *s, const stored_data_key *x);
/* 1 when the recorded placements put database_key (any member) on host, 0 when not. */
int store_database_placed_on(store *s, const char *database_key, const char *host);
