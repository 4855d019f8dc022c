/* Bump allocator in chunks; a chunk is freed only with the whole arena. String interning. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/random.h>

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

char *arena_concat(arena *a, ...) {
        va_list ap;
        size_t n = 0;
        char *p, *w;

        va_start(ap, a);
        for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
                n += strlen(s);
        va_end(ap);
        p = w = arena_alloc(a, n + 1);
        va_start(ap, a);
        for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
                w = stpcpy(w, s);
        va_end(ap);
        return p;
}

uint64_t hash_seed(void) {
        static uint64_t seed;
        static bool seeded;

        if (!seeded) {
                if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != sizeof(seed))
                        seed = (uint64_t) (uintptr_t) &seed; /* ASLR: weaker, still not known in advance */
                seeded = true;
        }
        return seed;
}

void strpool_init(strpool *p, arena *a) {
        *p = (strpool) { .arena = a, .seed = hash_seed() };
}

void strpool_done(strpool *p) {
        free(p->slots);
        *p = (strpool) {};
}

uint64_t hash_string(uint64_t seed, const char *s) {
        uint64_t h = 0xcbf29ce484222325ULL ^ seed;

        for (const unsigned char *c = (const unsigned char *) s; *c; c++)
                h = (h ^ *c) * 0x100000001b3ULL;
        h ^= h >> 33; /* tables index with the low bits: let the high ones reach them */
        h *= 0xff51afd7ed558ccdULL;
        h ^= h >> 33;
        return h;
}

static size_t pool_hash(const strpool *p, const char *s) {
        return (size_t) hash_string(p->seed, s) & (p->n_slots - 1);
}

static const char **pool_slot(const strpool *p, const char *s) {
        for (size_t h = pool_hash(p, s);; h = (h + 1) & (p->n_slots - 1))
                if (!p->slots[h] || streq(p->slots[h], s))
                        return &p->slots[h];
}

const char *strpool_find(const strpool *p, const char *s) {
        return s && p->n_slots > 0 ? *pool_slot(p, s) : NULL;
}

const char *strpool_intern(strpool *p, const char *s) {
        const char **slot;

        if (!s)
                return NULL;
        if (p->n_slots > 0) {
                slot = pool_slot(p, s);
                if (*slot)
                        return *slot;
        }
        if ((p->n + 1) * 2 > p->n_slots) {
                const char **old = p->slots;
                size_t n_old = p->n_slots;

                p->n_slots = p->n_slots ? p->n_slots * 2 : 64;
                p->slots = xcalloc(p->n_slots, sizeof(char *));
                for (size_t i = 0; i < n_old; i++)
                        if (old[i])
                                *pool_slot(p, old[i]) = old[i];
                free(old);
        }
        slot = pool_slot(p, s);
        *slot = arena_strdup(p->arena, s);
        p->n++;
        return *slot;
}
