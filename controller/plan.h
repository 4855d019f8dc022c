/* Plans: what applying the manifests would create, change and remove on each host, against the
 * documents last recorded in the state store. Text in the style of `terraform plan`, or JSON. */
#pragma once

#include <stdbool.h>
#include <stdio.h>

#include "document.h"
#include "inventory.h"
#include "render.h"

typedef struct plan_host {
        const inv_host *host;
        const doc_document *prev; /* NULL when never rendered */
        const doc_document *next;
        bool unchanged;           /* content hash equal to the recorded one */
        uint64_t prev_revision;
} plan_host;

typedef enum plan_op {
        PLAN_CREATE,
        PLAN_CHANGE,
        PLAN_REMOVE,
} plan_op;

typedef enum plan_resource {
        PLAN_DATABASE,
        PLAN_ROLE,
        PLAN_FIREWALL,
        PLAN_APPLICATION,
        PLAN_ENV,
} plan_resource;

typedef enum plan_value_type {
        PLAN_INT,
        PLAN_BOOL,
        PLAN_STR,
} plan_value_type;

/* One changed field of a changed resource: "cpuCount 4 -> 8". */
typedef struct plan_field {
        const char *field;
        plan_value_type type;
        int from_int, to_int;     /* PLAN_INT, PLAN_BOOL */
        const char *from, *to;    /* PLAN_STR */
} plan_field;

/* One change to one resource. Strings are not copied: they belong to the documents compared,
 * which must outlive the list. */
typedef struct plan_change {
        plan_op op;
        plan_resource resource;
        const doc_database *db;   /* database, role, firewall: the database named (created: its details) */
        const doc_role *role;     /* role */
        const char *address;      /* firewall */
        int port;                 /* firewall */
        const doc_app *app;       /* application, env */
        const doc_env *env;       /* env */
        size_t first_field, n_fields; /* into plan_changes.fields: a changed database, role or application */
} plan_change;

/* One host's changes, in the order they are shown. */
typedef struct plan_changes {
        plan_change *v;
        size_t n, alloc;
        plan_field *fields;
        size_t n_fields, fields_alloc;
} plan_changes;

/* The changes from prev (NULL: nothing recorded) to next, into l (emptied first; reuse it from
 * host to host). */
void plan_diff_host(const doc_document *prev, const doc_document *next, plan_changes *l);
void plan_changes_done(plan_changes *l);

typedef struct plan {
        const plan_host **hosts;  /* hosts with changes, and hosts that get their first document */
        size_t n_hosts;
        const render_result *rr;  /* pending */
        int add, change, remove, hosts_unchanged;
} plan;

/* The whole plan: which hosts change, and the counts. hosts must outlive it. */
void plan_build(const plan_host *hosts, size_t n, const render_result *rr, plan *ret);
void plan_done(plan *p);
void plan_print_text(const plan *p, FILE *f);
/* The plan as one JSON object (hosts with changes, pending, summary), pretty-printed. */
void plan_print_json(const plan *p, FILE *f);
