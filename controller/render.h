/* Rendering: the resolved, placed model → one desired-state document per inventory host. */
#pragma once

#include "document.h"
#include "inventory.h"
#include "manifest.h"
#include "placement.h"

#define DEFAULT_DOMAIN "infrastream.internal"
#define DEFAULT_PG_PORT 5432

typedef struct pending_item {
        const char *kind;     /* "Database" / "Application" */
        const char *name;
        identity id;
        mloc loc;
        const char *reason;
} pending_item;

typedef struct render_result {
        doc_document **docs;  /* one per inventory host, same index; see render_documents() */
        size_t n_docs;
        pending_item *pending;
        size_t n_pending, pending_alloc;
        arena arena;          /* the documents and the pending reasons */
} render_result;

/* Build every host's document (revision 0, commit ""; the caller stamps them). The documents are
 * read-only views: they live in ret->arena, share arrays, and point to the strings of s and inv,
 * which must outlive them. Never doc_document_free() them. Only these fields are malloc'd (or
 * NULL), so that callers may free() and replace them: doc_document.commit,
 * doc_role.scram_verifier, doc_database.tls_certificate, doc_replication.verifier, and the secrets
 * doc_backup.passphrase, doc_replication.password and doc_env.password (replace those with
 * erase_and_free()). render_result_done() frees those
 * (wiping the secrets) and the rest. */
void render_documents(const manifest_set *s, const inventory *inv, const placement *pl, const char *domain,
                      render_result *ret);
void render_result_done(render_result *r);
