/* A bump allocator: many small objects freed at once (parse trees, the manifest model), and
 * string interning on top of it. */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct arena_chunk arena_chunk;
typedef struct arena {
        arena_chunk *head;
        size_t used, size;    /* of the head chunk */
        size_t total;         /* bytes handed out, for limits and benchmarks */
} arena;

void arena_init(arena *a);
void arena_done(arena *a);
void *arena_alloc(arena *a, size_t n);          /* zeroed, 16-byte aligned */
char *arena_strndup(arena *a, const char *s, size_t n);
char *arena_strdup(arena *a, const char *s);
char *arena_printf(arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The strings up to a NULL, one after the other: a tenth of what arena_printf() costs. */
char *arena_concat(arena *a, ...) __attribute__((sentinel));

/* One copy of each distinct string, in an arena: equal strings get equal pointers, so callers
 * may compare interned strings by pointer before (or instead of) strcmp(). */
typedef struct strpool {
        arena *arena;         /* where the copies live; the pool only indexes them */
        const char **slots;   /* open addressing, power-of-two size */
        size_t n, n_slots;
        uint64_t seed;
} strpool;

void strpool_init(strpool *p, arena *a);
void strpool_done(strpool *p);      /* frees the index; the strings stay in the arena */
const char *strpool_intern(strpool *p, const char *s);
/* The interned copy of s, or NULL when s is not in the pool. */
const char *strpool_find(const strpool *p, const char *s);

/* A random seed, the same for the whole process, for hash tables keyed by names from files anyone
 * may write (the string pool, YAML anchors): names chosen to collide cannot be prepared in advance. */
uint64_t hash_seed(void);
/* FNV-1a with a final mix, seeded (hash_seed()) for tables keyed by untrusted names. */
uint64_t hash_string(uint64_t seed, const char *s);
