/* YAML documents as a tree of nodes that remember their line and column (libyaml events).
 * Aliases share the anchored node; their expanded size, nesting depth and input size are
 * bounded so that a hostile file gets an error, not an OOM. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "diag.h"

typedef enum ynode_type {
        YNODE_SCALAR,
        YNODE_SEQUENCE,
        YNODE_MAPPING,
} ynode_type;

typedef struct ynode ynode;
typedef struct ypair {
        ynode *key, *value;
} ypair;

struct ynode {
        ynode_type type;
        int line, col;        /* 1-based */
        bool plain;           /* scalar written without quotes or block style: may be typed */
        bool open;            /* still being built: an alias to it would be recursive */
        const char *tag;      /* explicit tag ("tag:yaml.org,2002:str") or NULL */
        const char *value;    /* scalar text, NUL-terminated */
        size_t len;
        ynode **items;        /* sequence */
        size_t n_items;
        ypair *pairs;         /* mapping, in file order */
        size_t n_pairs;
        uint64_t weight;      /* nodes in the subtree with aliases expanded */
};

typedef struct ydoc {
        ynode *root;          /* NULL for an empty document */
        int line, col;
} ydoc;

typedef struct yaml_limits {
        size_t max_depth;
        uint64_t max_weight;  /* per document, aliases expanded */
        size_t max_documents;
} yaml_limits;

extern const yaml_limits yaml_limits_default;

typedef struct yfile {
        char *path;           /* as shown in diagnostics */
        arena arena;
        ydoc *docs;
        size_t n_docs;
        bool syntax_error;
} yfile;

/* Parse data into documents. Syntax errors and limit violations are reported into diags
 * (as errors, or as warnings when quiet_syntax is set: for YAML that may not be ours) and
 * make the function return -EBADMSG; documents before the error are kept. */
int yaml_load(const char *path, const char *data, size_t size, const yaml_limits *lim, bool quiet_syntax,
              diag_list *diags, yfile **ret);
void yfile_free(yfile *f);
static inline void yfile_freep(yfile **f) {
        yfile_free(*f);
}

/* Typed access. */
const ynode *ymap_get(const ynode *map, const char *key);
/* The key node itself, for messages that should point at the key rather than its value. */
const ynode *ymap_get_key(const ynode *map, const char *key);
bool ynode_is_null(const ynode *n);
bool ynode_is_string(const ynode *n);  /* a scalar that is not null, bool or number */
int ynode_get_bool(const ynode *n, bool *ret);
int ynode_get_int(const ynode *n, int64_t *ret);
const char *ynode_type_name(const ynode *n);  /* "a string", "a mapping", "an integer", ... */
