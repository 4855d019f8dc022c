/* libyaml event stream → node tree with marks, anchors, merge keys and resource bounds. */
#include <yaml.h>

#include "yaml-tree.h"

const yaml_limits yaml_limits_default = {
        .max_depth = 64,
        .max_weight = 1000000,
        .max_documents = 10000,
};

#define TAG_STR "tag:yaml.org,2002:str"
#define TAG_INT "tag:yaml.org,2002:int"
#define TAG_BOOL "tag:yaml.org,2002:bool"
#define TAG_NULL "tag:yaml.org,2002:null"
#define TAG_MERGE "tag:yaml.org,2002:merge"

typedef struct anchor {
        const char *name;
        ynode *node;
} anchor;

typedef struct anchor_slot {
        uint32_t generation, index;
} anchor_slot;

typedef struct frame {
        ynode *node;
        ynode **items;        /* growing children (sequence items, or keys and values in turn); the
                               * buffer stays with its depth for the next collection there */
        size_t n, alloc;
} frame;

typedef struct loader {
        yfile *file;
        const yaml_limits *lim;
        diag_list *diags;
        bool quiet;
        frame *stack;
        size_t depth, stack_alloc;
        anchor *anchors;
        size_t n_anchors, anchors_alloc;
        anchor_slot *slots;   /* hash index of this document's anchors, by name */
        size_t n_slots;
        uint32_t generation;  /* slots of other generations are free: no clearing per document */
        uint64_t seed;
        ydoc *cur;
        size_t docs_alloc;
        uint64_t merged;      /* pairs copied by merge keys in the whole file */
        bool failed, errors;
} loader;

/* An error in a document that can still be read on (a duplicate key): reported, parsing goes on. */
_printf_(4, 5) static void report(loader *l, int line, int col, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        diag_addv(l->diags, l->quiet ? DIAG_WARNING : DIAG_ERROR, l->file->path, line, col, fmt, ap);
        va_end(ap);
        l->errors = true;
}

/* An error after which the rest of the file cannot be trusted: parsing stops. */
_printf_(4, 5) static void fail(loader *l, int line, int col, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        diag_addv(l->diags, l->quiet ? DIAG_WARNING : DIAG_ERROR, l->file->path, line, col, fmt, ap);
        va_end(ap);
        l->errors = l->failed = true;
}

/* extra: bytes wanted right after the node (a scalar's value), in the same allocation. */
static ynode *node_new(loader *l, ynode_type t, const yaml_mark_t *m, const yaml_char_t *tag, size_t extra) {
        ynode *n = arena_alloc(&l->file->arena, sizeof(ynode) + extra);
        n->type = t;
        n->line = (int) m->line + 1;
        n->col = (int) m->column + 1;
        n->weight = 1;
        if (tag)
                n->tag = arena_strdup(&l->file->arena, (const char *) tag);
        return n;
}

#define MAX_ANCHORS 10000

/* Aliases are looked up through a hash index: a file may hold a million aliases and a document
 * ten thousand anchors, too many for a scan each. The hash is seeded per process (hash_seed()). */
static size_t anchor_hash(const loader *l, const char *name) {
        return (size_t) hash_string(l->seed, name) & (l->n_slots - 1);
}

/* Point the slot of anchors[i]'s name at i; an earlier anchor of that name is shadowed. */
static void index_anchor(loader *l, size_t i) {
        for (size_t h = anchor_hash(l, l->anchors[i].name);; h = (h + 1) & (l->n_slots - 1)) {
                anchor_slot *sl = &l->slots[h];
                if (sl->generation != l->generation || streq(l->anchors[sl->index].name, l->anchors[i].name)) {
                        *sl = (anchor_slot) { l->generation, (uint32_t) i };
                        return;
                }
        }
}

static void register_anchor(loader *l, const yaml_char_t *name, ynode *n) {
        if (!name)
                return;
        if (l->n_anchors >= MAX_ANCHORS) {
                fail(l, n->line, n->col, "more than %d anchors in one document", MAX_ANCHORS);
                return;
        }
        if (l->n_anchors == l->anchors_alloc) {
                l->anchors_alloc = l->anchors_alloc ? l->anchors_alloc * 2 : 8;
                l->anchors = xrealloc(l->anchors, l->anchors_alloc * sizeof(anchor));
        }
        /* A later anchor of the same name shadows the earlier one (YAML 1.2 §3.2.2.2). */
        l->anchors[l->n_anchors++] = (anchor) { arena_strdup(&l->file->arena, (const char *) name), n };
        if (l->n_anchors * 2 > l->n_slots) {
                free(l->slots);
                l->n_slots = l->n_slots ? l->n_slots * 2 : 16;
                l->slots = xcalloc(l->n_slots, sizeof(anchor_slot));
                for (size_t i = 0; i < l->n_anchors; i++)
                        index_anchor(l, i);
        } else
                index_anchor(l, l->n_anchors - 1);
}

static ynode *find_anchor(loader *l, const char *name) {
        if (l->n_slots == 0)
                return NULL;
        for (size_t h = anchor_hash(l, name);; h = (h + 1) & (l->n_slots - 1)) {
                const anchor_slot *sl = &l->slots[h];
                if (sl->generation != l->generation)
                        return NULL;
                if (streq(l->anchors[sl->index].name, name))
                        return l->anchors[sl->index].node;
        }
}

static uint64_t sat_add(uint64_t a, uint64_t b) {
        return a + b < a ? UINT64_MAX : a + b;
}

/* Attach a finished node to the open parent, or make it the document root. */
static void attach(loader *l, ynode *n) {
        frame *f;

        if (l->depth == 0) {
                l->cur->root = n;
                return;
        }
        f = &l->stack[l->depth - 1];
        if (f->n == f->alloc) {
                f->alloc = f->alloc ? f->alloc * 2 : 8;
                f->items = xrealloc(f->items, f->alloc * sizeof(ynode *));
        }
        f->items[f->n++] = n;
        f->node->weight = sat_add(f->node->weight, n->weight);
}

static bool is_merge_key(const ynode *k) {
        return k->type == YNODE_SCALAR &&
               ((k->plain && !k->tag && k->len == 2 && streq(k->value, "<<")) || (k->tag && streq(k->tag, TAG_MERGE)));
}

static int pair_cmp(const void *a, const void *b) {
        const ypair *x = a, *y = b;
        int r = strcmp(x->key->value, y->key->value);
        if (r != 0)
                return r;
        if (x->key->line != y->key->line)
                return x->key->line - y->key->line;
        return x->key->col - y->key->col;
}

#define SMALL_MAPPING 16

static bool has_duplicate_key(const ypair *pairs, size_t n) {
        for (size_t i = 1; i < n; i++)
                for (size_t j = 0; j < i; j++)
                        if (streq(pairs[i].key->value, pairs[j].key->value))
                                return true;
        return false;
}

/* A merge candidate and its rank: explicit keys first, then merged mappings in order. */
typedef struct ranked_pair {
        ypair pair;
        size_t rank;
} ranked_pair;

static int ranked_key_cmp(const void *a, const void *b) {
        const ranked_pair *x = a, *y = b;
        int r = strcmp(x->pair.key->value, y->pair.key->value);
        return r ? r : x->rank < y->rank ? -1 : x->rank > y->rank;
}

static int ranked_rank_cmp(const void *a, const void *b) {
        const ranked_pair *x = a, *y = b;
        return x->rank < y->rank ? -1 : x->rank > y->rank;
}

/* Close a mapping: check keys are scalars and unique, then apply "<<" merge keys
 * (explicit keys win, earlier merged mappings win over later ones). */
static void finish_mapping(loader *l, ynode *n, frame *f) {
        size_t n_pairs = f->n / 2, n_explicit = 0, n_merged = 0;
        ypair *pairs = arena_alloc(&l->file->arena, (n_pairs ? n_pairs : 1) * sizeof(ypair));
        const ynode **merges = NULL;
        size_t n_merges = 0;

        for (size_t i = 0; i + 1 < f->n; i += 2) {
                ynode *k = f->items[i], *v = f->items[i + 1];

                if (k->type != YNODE_SCALAR) {
                        report(l, k->line, k->col, "mapping keys must be plain scalars, not %s", ynode_type_name(k));
                        continue;
                }
                if (is_merge_key(k)) {
                        if (v->type == YNODE_MAPPING) {
                                merges = xrealloc(merges, (n_merges + 1) * sizeof(ynode *));
                                merges[n_merges++] = v;
                        } else if (v->type == YNODE_SEQUENCE) {
                                for (size_t j = 0; j < v->n_items; j++) {
                                        if (v->items[j]->type != YNODE_MAPPING) {
                                                report(l, v->items[j]->line, v->items[j]->col,
                                                     "merge key '<<' takes mappings, not %s",
                                                       ynode_type_name(v->items[j]));
                                                continue;
                                        }
                                        merges = xrealloc(merges, (n_merges + 1) * sizeof(ynode *));
                                        merges[n_merges++] = v->items[j];
                                }
                        } else
                                report(l, v->line, v->col, "merge key '<<' takes a mapping or a list of mappings, not %s",
                                       ynode_type_name(v));
                        continue;
                }
                pairs[n_explicit++] = (ypair) { k, v };
        }

        /* Duplicate keys: sort a copy, compare neighbours. O(n log n) even for hostile files. Small
         * mappings, nearly all of them, are first checked pair by pair, without allocating: the
         * sort (and its messages, in its order) is only for those that have a duplicate. */
        if (n_explicit > 1 && (n_explicit > SMALL_MAPPING || has_duplicate_key(pairs, n_explicit))) {
                _cleanup_free_ ypair *sorted = xmalloc(n_explicit * sizeof(ypair));
                memcpy(sorted, pairs, n_explicit * sizeof(ypair));
                qsort_safe(sorted, n_explicit, sizeof(ypair), pair_cmp);
                for (size_t i = 1; i < n_explicit; i++)
                        if (streq(sorted[i].key->value, sorted[i - 1].key->value)) {
                                report(l, sorted[i].key->line, sorted[i].key->col,
                                       "duplicate key '%.64s' (first defined at %d:%d)", sorted[i].key->value,
                                       sorted[i - 1].key->line, sorted[i - 1].key->col);
                        }
        }

        for (size_t m = 0; m < n_merges; m++)
                n_merged += merges[m]->n_pairs;
        /* Merged pairs are copies, unlike aliases: bound them per file, or a few hundred documents
         * that each merge one big mapping many times exhaust memory within the size limit. */
        l->merged = sat_add(l->merged, n_merged);
        if (n_merged > 0 && l->merged > l->lim->max_weight) {
                fail(l, n->line, n->col, "merge keys copy more than %llu entries in this file; refusing an alias bomb",
                     (unsigned long long) l->lim->max_weight);
                n_merged = 0;
        }
        if (n_merged > 0) {
                /* First come, first kept: explicit keys (all of them, duplicates were reported above),
                 * then the first merged pair of each other key. Sorting keeps this O(n log n). */
                size_t total = n_explicit + n_merged, k = 0, w = 0;
                _cleanup_free_ ranked_pair *r = xmalloc(total * sizeof(ranked_pair));
                ypair *all;

                for (size_t i = 0; i < n_explicit; i++, k++)
                        r[k] = (ranked_pair) { pairs[i], k };
                for (size_t m = 0; m < n_merges; m++)
                        for (size_t j = 0; j < merges[m]->n_pairs; j++, k++)
                                r[k] = (ranked_pair) { merges[m]->pairs[j], k };
                qsort_safe(r, total, sizeof(ranked_pair), ranked_key_cmp);
                for (size_t i = 0; i < total; i++)
                        if (r[i].rank < n_explicit || i == 0 || !streq(r[i].pair.key->value, r[i - 1].pair.key->value))
                                r[w++] = r[i];
                qsort_safe(r, w, sizeof(ranked_pair), ranked_rank_cmp);
                all = arena_alloc(&l->file->arena, w * sizeof(ypair));
                for (size_t i = 0; i < w; i++)
                        all[i] = r[i].pair;
                pairs = all;
                n_explicit = w;
        }
        free(merges);
        n->pairs = pairs;
        n->n_pairs = n_explicit;
}

static void push(loader *l, ynode *n) {
        if (l->depth == l->stack_alloc) {
                size_t old = l->stack_alloc;
                l->stack_alloc = l->stack_alloc ? l->stack_alloc * 2 : 16;
                l->stack = xrealloc(l->stack, l->stack_alloc * sizeof(frame));
                memset(l->stack + old, 0, (l->stack_alloc - old) * sizeof(frame));
        }
        n->open = true;
        l->stack[l->depth].node = n;
        l->stack[l->depth++].n = 0;
}

static void pop(loader *l) {
        frame *f = &l->stack[--l->depth];
        ynode *n = f->node;

        if (n->type == YNODE_SEQUENCE) {
                n->items = arena_alloc(&l->file->arena, (f->n ? f->n : 1) * sizeof(ynode *));
                if (f->n > 0) /* f->items is NULL for an empty sequence, and memcpy() may not get NULL */
                        memcpy(n->items, f->items, f->n * sizeof(ynode *));
                n->n_items = f->n;
        } else
                finish_mapping(l, n, f);
        n->open = false;
        attach(l, n);
}

static void free_stack(loader *l) {
        for (size_t i = 0; i < l->stack_alloc; i++)
                free(l->stack[i].items);
        free(l->stack);
}

static void begin_document(loader *l, const yaml_mark_t *m) {
        yfile *f = l->file;

        if (f->n_docs == l->docs_alloc) {
                l->docs_alloc = l->docs_alloc ? l->docs_alloc * 2 : 4;
                f->docs = xrealloc(f->docs, l->docs_alloc * sizeof(ydoc));
        }
        l->cur = &f->docs[f->n_docs++];
        *l->cur = (ydoc) { .line = (int) m->line + 1, .col = (int) m->column + 1 };
        l->n_anchors = 0;
        l->generation++;
}

/* n was just attached; at is where it was written when that is not n's own place (an alias). */
static bool check_weight(loader *l, const ynode *n, const yaml_mark_t *at) {
        /* An open collection counts only its finished children, so the document so far is the sum
         * over the stack: the root alone would notice a bomb only once its branch is closed, after
         * merge keys had already copied it. */
        uint64_t w = l->depth > 0 ? 0 : n->weight;

        for (size_t i = 0; i < l->depth; i++)
                w = sat_add(w, l->stack[i].node->weight);
        if (w <= l->lim->max_weight)
                return true;
        fail(l, at ? (int) at->line + 1 : n->line, at ? (int) at->column + 1 : n->col,
             "document expands to more than %llu nodes with its aliases; refusing an alias bomb",
             (unsigned long long) l->lim->max_weight);
        return false;
}

/* libyaml counts marks in characters, not bytes (and skips a BOM): find the character. */
static bool char_is_tab(const char *data, size_t size, size_t index) {
        size_t i = size >= 3 && memcmp(data, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;

        for (; i < size; i++)
                if (((unsigned char) data[i] & 0xc0) != 0x80 && index-- == 0)
                        return data[i] == '\t';
        return false;
}

int yaml_load(const char *path, const char *data, size_t size, const yaml_limits *lim, bool quiet_syntax,
              diag_list *diags, yfile **ret) {
        yaml_parser_t parser;
        yfile *f = xcalloc(1, sizeof(yfile));
        loader l = { .file = f, .lim = lim ? lim : &yaml_limits_default, .diags = diags, .quiet = quiet_syntax,
                     .seed = hash_seed() };
        bool done = false;

        f->path = xstrdup(path);
        arena_init(&f->arena);
        if (!yaml_parser_initialize(&parser))
                abort();
        yaml_parser_set_input_string(&parser, (const unsigned char *) data, size);

        while (!done && !l.failed) {
                yaml_event_t ev;
                ynode *n;

                if (!yaml_parser_parse(&parser, &ev)) {
                        const char *problem = parser.problem ? parser.problem : "malformed YAML";
                        char msg[512], where[64] = "";

                        /* The problem is often found far from its cause (an unclosed '[' or quote is
                         * noticed at the end of the file): name where the construct began. */
                        if (parser.context && parser.context_mark.line != parser.problem_mark.line)
                                snprintf(where, sizeof(where), " that starts at line %zu, column %zu",
                                         parser.context_mark.line + 1, parser.context_mark.column + 1);
                        /* libyaml's "cannot start any token" does not say that the character is a tab. */
                        snprintf(msg, sizeof(msg), "%s%s%s%s%s", problem, parser.context ? " " : "",
                                 parser.context ? parser.context : "", where,
                                 !strstr(problem, "tab") && char_is_tab(data, size, parser.problem_mark.index)
                                         ? " (a tab: YAML indents with spaces only)" : "");
                        fail(&l, (int) parser.problem_mark.line + 1, (int) parser.problem_mark.column + 1,
                             "YAML syntax error: %s", msg);
                        f->syntax_error = true;
                        break;
                }
                switch (ev.type) {
                case YAML_STREAM_END_EVENT:
                        done = true;
                        break;
                case YAML_DOCUMENT_START_EVENT:
                        if (f->n_docs >= l.lim->max_documents) {
                                fail(&l, (int) ev.start_mark.line + 1, (int) ev.start_mark.column + 1,
                                     "more than %zu documents in one file", l.lim->max_documents);
                                break;
                        }
                        begin_document(&l, &ev.start_mark);
                        break;
                case YAML_SCALAR_EVENT:
                        n = node_new(&l, YNODE_SCALAR, &ev.start_mark, ev.data.scalar.tag, ev.data.scalar.length + 1);
                        n->value = memcpy(n + 1, ev.data.scalar.value, ev.data.scalar.length); /* NUL: zeroed */
                        n->len = ev.data.scalar.length;
                        n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                        if (n->len != strlen(n->value)) {
                                fail(&l, n->line, n->col, "NUL character in a scalar");
                                break;
                        }
                        register_anchor(&l, ev.data.scalar.anchor, n);
                        attach(&l, n);
                        (void) check_weight(&l, n, NULL);
                        break;
                case YAML_SEQUENCE_START_EVENT:
                case YAML_MAPPING_START_EVENT:
                        n = node_new(&l, ev.type == YAML_SEQUENCE_START_EVENT ? YNODE_SEQUENCE : YNODE_MAPPING,
                                     &ev.start_mark,
                                     ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.tag
                                                                          : ev.data.mapping_start.tag,
                                     0);
                        if (l.depth >= l.lim->max_depth) {
                                fail(&l, n->line, n->col, "nesting deeper than %zu levels", l.lim->max_depth);
                                break;
                        }
                        register_anchor(&l, ev.type == YAML_SEQUENCE_START_EVENT ? ev.data.sequence_start.anchor
                                                                                 : ev.data.mapping_start.anchor,
                                        n);
                        push(&l, n);
                        break;
                case YAML_SEQUENCE_END_EVENT:
                case YAML_MAPPING_END_EVENT:
                        n = l.stack[l.depth - 1].node;
                        pop(&l);
                        (void) check_weight(&l, n, NULL);
                        break;
                case YAML_ALIAS_EVENT: {
                        yaml_mark_t m = ev.start_mark;
                        n = find_anchor(&l, (const char *) ev.data.alias.anchor);
                        if (!n) {
                                fail(&l, (int) m.line + 1, (int) m.column + 1, "unknown alias '*%.64s'",
                                     (const char *) ev.data.alias.anchor);
                                break;
                        }
                        if (n->open) {
                                fail(&l, (int) m.line + 1, (int) m.column + 1,
                                     "alias '*%.64s' refers to a node that contains it",
                                     (const char *) ev.data.alias.anchor);
                                break;
                        }
                        attach(&l, n);
                        (void) check_weight(&l, n, &m);
                        break;
                }
                default:
                        break;
                }
                yaml_event_delete(&ev);
        }

        free_stack(&l);
        free(l.anchors);
        free(l.slots);
        yaml_parser_delete(&parser);
        *ret = f;
        return l.failed || l.errors ? -EBADMSG : 0;
}

void yfile_free(yfile *f) {
        if (!f)
                return;
        arena_done(&f->arena);
        free(f->docs);
        free(f->path);
        free(f);
}

/* The pair of map whose key is key, or NULL. The first characters are compared inline: most keys
 * differ there, and this runs for every field of every manifest. */
static const ypair *ymap_find(const ynode *map, const char *key) {
        if (!map || map->type != YNODE_MAPPING)
                return NULL;
        for (size_t i = 0; i < map->n_pairs; i++) {
                const char *k = map->pairs[i].key->value;
                if (k[0] == key[0] && streq(k, key))
                        return &map->pairs[i];
        }
        return NULL;
}

const ynode *ymap_get(const ynode *map, const char *key) {
        const ypair *p = ymap_find(map, key);
        return p ? p->value : NULL;
}

const ynode *ymap_get_key(const ynode *map, const char *key) {
        const ypair *p = ymap_find(map, key);
        return p ? p->key : NULL;
}

static bool tag_is(const ynode *n, const char *tag) {
        return n->tag && streq(n->tag, tag);
}

bool ynode_is_null(const ynode *n) {
        if (!n || n->type != YNODE_SCALAR)
                return false;
        if (tag_is(n, TAG_NULL))
                return true;
        if (!n->plain || n->tag)
                return false;
        switch (n->value[0]) { /* most scalars are not null: the first character tells */
        case '\0':
                return n->len == 0;
        case '~':
                return n->value[1] == '\0';
        case 'n':
        case 'N':
                return streq(n->value, "null") || streq(n->value, "Null") || streq(n->value, "NULL");
        default:
                return false;
        }
}

int ynode_get_bool(const ynode *n, bool *ret) {
        if (!n || n->type != YNODE_SCALAR || (!n->plain && !tag_is(n, TAG_BOOL)))
                return -EINVAL;
        if (n->tag && !tag_is(n, TAG_BOOL))
                return -EINVAL;
        if (n->value[0] == '\0' || !strchr("tTfF", n->value[0])) /* most scalars are not booleans */
                return -EINVAL;
        if (streq(n->value, "true") || streq(n->value, "True") || streq(n->value, "TRUE")) {
                *ret = true;
                return 0;
        }
        if (streq(n->value, "false") || streq(n->value, "False") || streq(n->value, "FALSE")) {
                *ret = false;
                return 0;
        }
        return -EINVAL;
}

int ynode_get_int(const ynode *n, int64_t *ret) {
        const char *s;
        int64_t v = 0;
        bool neg = false;

        if (!n || n->type != YNODE_SCALAR || (!n->plain && !tag_is(n, TAG_INT)))
                return -EINVAL;
        if (n->tag && !tag_is(n, TAG_INT))
                return -EINVAL;
        s = n->value;
        if (*s == '+' || *s == '-')
                neg = *s++ == '-';
        if (!*s)
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                if (v > (INT64_MAX - (*s - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (*s - '0');
        }
        *ret = neg ? -v : v;
        return 0;
}

static bool looks_like_number(const char *s) {
        if (*s == '+' || *s == '-')
                s++;
        if (!*s)
                return false;
        bool digit = false;
        for (; *s; s++) {
                if (*s >= '0' && *s <= '9')
                        digit = true;
                else if (*s != '.' && *s != 'e' && *s != 'E' && *s != '_' && *s != 'x' && *s != 'o')
                        return false;
        }
        return digit;
}

bool ynode_is_string(const ynode *n) {
        bool b;
        if (!n || n->type != YNODE_SCALAR)
                return false;
        if (tag_is(n, TAG_STR))
                return true;
        if (n->tag)
                return false;
        if (!n->plain)
                return true;
        return !ynode_is_null(n) && ynode_get_bool(n, &b) < 0 && !looks_like_number(n->value);
}

const char *ynode_type_name(const ynode *n) {
        bool b;
        int64_t i;

        if (!n)
                return "nothing";
        switch (n->type) {
        case YNODE_SEQUENCE:
                return "a list";
        case YNODE_MAPPING:
                return "a mapping";
        default:
                break;
        }
        if (ynode_is_null(n))
                return "null";
        if (ynode_get_bool(n, &b) >= 0)
                return "a boolean";
        if (ynode_get_int(n, &i) != -EINVAL)
                return "an integer";
        if (n->plain && !n->tag && looks_like_number(n->value))
                return "a number";
        return "a string";
}
