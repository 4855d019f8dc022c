/* A bump allocator: many small objects freed at once (parse trees, the manifest model). */
#pragma once

#include <stddef.h>

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
