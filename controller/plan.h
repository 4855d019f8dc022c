/* Plans: what applying the manifests would create, change and remove on each host, against the
 * documents last recorded in the state store. Text in the style of `terraform plan`, or JSON. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>

#include "document.h"
#include "inventory.h"
#include "render.h"

/* Changes from prev (NULL: nothing recorded) to next, as a JSON array of change objects. */
json_object *plan_diff_host(const doc_document *prev, const doc_document *next);

typedef struct plan_host {
        const inv_host *host;
        const doc_document *prev; /* NULL when never rendered */
        const doc_document *next;
        bool unchanged;           /* content hash equal to the recorded one */
        uint64_t prev_revision;
} plan_host;

/* The whole plan as a JSON object (hosts with changes, pending, summary). */
json_object *plan_build(const plan_host *hosts, size_t n, const render_result *rr);
void plan_print_text(json_object *plan, FILE *f);
