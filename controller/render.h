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
        doc_document **docs;  /* one per inventory host, same index */
        size_t n_docs;
        pending_item *pending;
        size_t n_pending, pending_alloc;
        arena arena;          /* pending reasons */
} render_result;

/* Build every host's document (revision 0, commit ""; the caller stamps them). */
void render_documents(const manifest_set *s, const inventory *inv, const placement *pl, const char *domain,
                      render_result *ret);
void render_result_done(render_result *r);

char *database_hostname(const m_database *d, const char *domain);
