/* Bump allocator in chunks; a chunk is freed only with the whole arena. */
#include <stdarg.h>
#include <stdio.h>

#include "arena.h"
#include "macro.h"

#define CHUNK_MIN (64u * 1024u)

struct arena_chunk {
        arena_chunk *next;
        _Alignas(16) unsigned char data[];
};

void arena_init(arena *a) {
        *a = (arena) {};
}

void arena_done(arena *a) {
        arena_chunk *c = a->head;
        while (c) {
                arena_chunk *n = c->next;
                free(c);
                c = n;
        }
        *a = (arena) {};
}

void *arena_alloc(arena *a, size_t n) {
        void *p;

        n = (n + 15) & ~(size_t) 15;
        if (!a->head || a->used + n > a->size) {
                size_t size = n > CHUNK_MIN ? n : CHUNK_MIN;
                arena_chunk *c = xmalloc(sizeof(arena_chunk) + size);
                c->next = a->head;
                a->head = c;
                a->used = 0;
                a->size = size;
        }
        p = a->head->data + a->used;
        a->used += n;
        a->total += n;
        memset(p, 0, n);
        return p;
}

char *arena_strndup(arena *a, const char *s, size_t n) {
        char *p = arena_alloc(a, n + 1);
        memcpy(p, s, n);
        p[n] = '\0';
        return p;
}

char *arena_strdup(arena *a, const char *s) {
        return arena_strndup(a, s, strlen(s));
}

char *arena_printf(arena *a, const char *fmt, ...) {
        va_list ap;
        int n;
        char *p;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        p = arena_alloc(a, (size_t) n + 1);
        va_start(ap, fmt);
        vsnprintf(p, (size_t) n + 1, fmt, ap);
        va_end(ap);
        return p;
}
