/* The controller's front half as one pipeline: discover → parse → validate → resolve →
 * inventory → place → render. validate, plan, render (and apply later) share it. */
#pragma once

#include <stdbool.h>

#include "diag.h"
#include "inventory.h"
#include "manifest.h"
#include "placement.h"
#include "render.h"
#include "secrets.h"
#include "store.h"

/* plan's stand-in for the verifier of a role whose secret does not exist yet: it differs from
 * every real verifier, so plan reports the password the next render creates. Never signed. */
#define COMPILE_VERIFIER_PENDING "(created on the next render)"
/* The same for a database's backup passphrase (plan, get database: hashed, never signed). */
#define COMPILE_PASSPHRASE_PENDING "(created on the next render)"

typedef struct compile_options {
        const char *repo;
        const char *hosts_file;   /* NULL: no static inventory */
        const char *state_dir;
        const char *domain;
        bool write_store;         /* render/apply record placements; plan only reads */
        /* switchover: the database (its key) whose recorded members are read with this host
         * first, so it is placed and rendered as the primary (and recorded so by apply). */
        const char *first_member_db;
        const char *first_member_host;
} compile_options;

typedef struct compilation {
        manifest_set set;
        diag_list diags;
        inventory inv;
        store *store;             /* NULL when nothing is recorded yet (plan before init) */
        stored_placement *prev;
        size_t n_prev;
        stored_document *docs;    /* recorded documents, sorted by host */
        size_t n_docs;
        placement *pl;
        arena arena;
        render_result rr;
        bool rendered;
} compilation;

void compilation_init(compilation *c);
void compilation_done(compilation *c);

/* Manifests only. Returns 0 when there are no errors, -EBADMSG when diags hold errors, -errno
 * (with a message on stderr) when the repository cannot be read. */
int compile_manifests(compilation *c, const compile_options *o);
/* Manifests, inventory, placement and documents. Same return convention. */
int compile_all(compilation *c, const compile_options *o, char **ret_error);
/* Recorded document for host, or NULL. */
const stored_document *compilation_recorded(const compilation *c, const char *host);
/* Record placements that changed (write_store). */
int compile_record_placements(compilation *c);

/* Fill doc_role.scram_verifier for every role on every database host. With x (render, inside the
 * caller's transaction), a grant's secret is created on first use; without (plan), stored
 * verifiers are only read and a role without a secret gets COMPILE_VERIFIER_PENDING. */
/* The same for the replication role of every replicated database (doc_replication.verifier, on
 * its primary), kept in the secret store as a grant of the reserved application key
 * DOC_REPLICATION_USER. */
int compile_attach_verifiers(compilation *c, secrets *x);
/* Delete the secrets of grants no longer in the manifests (inside the caller's transaction).
 * A grant whose database is not placed yet keeps its secret; a database's replication secret is
 * kept while the database is in the manifests. */
int compile_prune_secrets(compilation *c, secrets *x, size_t *ret_removed);

/* Fill doc_env.password on every application host from the secret store (render, apply, and plan,
 * which must hash what apply hashes), and doc_replication.password on standbys. In memory only: the
 * state store never keeps a document with a password (compile_stored_body()). A grant without a
 * secret yet keeps NULL. */
int compile_attach_passwords(compilation *c, secrets *x);
/* Set doc_database.tls_certificate on database hosts (host < 0: every host; else that inventory
 * index) from the certificates the CA issued (store_load_certs()), where the stored certificate
 * for (host, database) names every TLS name of the document and has not expired at now. */
int compile_attach_certificates(compilation *c, long host, int64_t now);
/* Set doc_backup.passphrase of every database with backups enabled on every database host (NULL
 * where they are disabled). With create (render, apply: inside the caller's transaction), a
 * database's passphrase is created on first use; without (plan, get database), a database without
 * one gets COMPILE_PASSPHRASE_PENDING. x is required either way: the content hash covers the
 * passphrases. Never deleted here: a passphrase outlives its database. */
int compile_attach_backup_passphrases(compilation *c, secrets *x, bool create);
/* Make sure every placed database has its data key (secrets_ensure_data_key(), inside the
 * caller's transaction: render, apply), backups enabled or not. The keys never enter a document:
 * serve hands them to the hosts, wrapped, on POST /v1/data-keys. Never deleted here either. */
int compile_ensure_data_keys(compilation *c, secrets *x);

/* The body the state store keeps for d: its canonical JSON without signature and without the
 * passwords, replication passwords and backup passphrases (they are left out as if NULL). */
char *compile_stored_body(doc_document *d);
/* Stamp inventory host h's document for publication; the content hash covers everything,
 * passwords, passphrases and certificates included. Unchanged since the recorded document: the recorded
 * revision and commit, so signing gives the same bytes again (Ed25519 is deterministic); returns
 * 0. Changed (or never recorded): the next revision and commit, recorded in the caller's
 * transaction (compile_stored_body()); returns 1. */
int compile_stamp_document(compilation *c, size_t h, const char *commit);

/* The manifests repository's HEAD commit, or "" when it is not a git work tree. */
char *repo_head_commit(const char *repo);
