/* Per-resource outcomes of an apply: what `agentctl apply` prints and status shows. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "macro.h"

typedef enum res_state {
        RES_UNCHANGED,
        RES_CREATED,
        RES_CHANGED,
        RES_REMOVED,
        RES_RETAINED,
        RES_FAILED,
} res_state;

typedef struct res_item {
        char *kind;           /* "cluster", "config", "database", "role", ... */
        char *name;           /* "accounts-db", "accounts-db/auth-api" */
        res_state state;
        char *detail;         /* why it failed, or what was done ("reloaded"); may be NULL */
} res_item;

typedef struct results {
        res_item *items;
        size_t n, alloc;
} results;

void results_add(results *r, const char *kind, const char *name, res_state state, const char *fmt, ...)
        _printf_(5, 6);
void results_done(results *r);
bool results_failed(const results *r);
/* True when any resource was created, changed, removed or failed. */
bool results_changed(const results *r);
const char *res_state_to_string(res_state s);
void results_print(const results *r, FILE *f);
json_object *results_to_json(const results *r);
int results_from_json(json_object *o, results *ret);
