/* Small language helpers shared by every component: cleanup attributes and array sizing.
 * Modelled on systemd's src/basic/macro.h; destructors accept NULL. */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <stdio.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_result_ __attribute__((warn_unused_result))

static inline void freep(void *p) {
        free(*(void **) p);
}
static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}
static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Define a cleanup helper for a library type whose destructor takes T* and may not accept NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                 \
        static inline void func##p(type *p) {                  \
                if (*p)                                         \
                        func(*p);                               \
        }

/* Hand a pointer over to a caller: return it and forget it here, so cleanup does nothing. */
#define TAKE_PTR(p)                                             \
        ({                                                      \
                __typeof__(p) _ptr_ = (p);                      \
                (p) = NULL;                                     \
                _ptr_;                                          \
        })
#define TAKE_FD(fd)                                             \
        ({                                                      \
                int _fd_ = (fd);                                \
                (fd) = -1;                                      \
                _fd_;                                           \
        })

static inline const char *strempty(const char *s) {
        return s ? s : "";
}
static inline int streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
#define streq(a, b) (strcmp((a), (b)) == 0)

/* qsort() must not be given NULL, not even with no elements, and our empty arrays are NULL. */
static inline void qsort_safe(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
        if (n > 1)
                qsort(base, n, size, cmp);
}

/* memcpy() must not be given NULL, not even for zero bytes; empty arrays here are NULL. */
static inline void *memcpy_safe(void *dst, const void *src, size_t n) {
        return n ? memcpy(dst, src, n) : dst;
}

/* Wipe a buffer that held a secret before it goes back to the allocator. */
static inline void erase_and_free(char *s) {
        if (!s)
                return;
        explicit_bzero(s, strlen(s));
        free(s);
}
static inline void erase_and_freep(char **s) {
        erase_and_free(*s);
}
#define _cleanup_erase_ _cleanup_(erase_and_freep)

/* Abort on allocation failure: every caller would otherwise only print "out of memory" and exit. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) _printf_(1, 2);
