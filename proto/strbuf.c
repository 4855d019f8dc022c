/* strbuf: amortised appends with printf formatting. */
#include <stdarg.h>
#include <stdio.h>

#include "strbuf.h"

static void reserve(strbuf *b, size_t extra) {
        if (b->len + extra + 1 <= b->alloc)
                return;
        b->alloc = (b->len + extra + 1) * 2;
        b->s = xrealloc(b->s, b->alloc);
}

void strbuf_printf(strbuf *b, const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        reserve(b, (size_t) n);
        va_start(ap, fmt);
        vsnprintf(b->s + b->len, (size_t) n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t) n;
}

void strbuf_append(strbuf *b, const char *s) {
        size_t n = strlen(s);
        reserve(b, n);
        memcpy(b->s + b->len, s, n + 1);
        b->len += n;
}

char *strbuf_steal(strbuf *b) {
        char *s = b->s ? b->s : xstrdup("");
        *b = (strbuf) {};
        return s;
}

void strbuf_done(strbuf *b) {
        free(b->s);
        *b = (strbuf) {};
}
