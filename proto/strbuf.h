/* A growing string for building text (SQL batches, config files). */
#pragma once

#include <stddef.h>

#include "macro.h"

typedef struct strbuf {
        char *s;
        size_t len, alloc;
} strbuf;

void strbuf_printf(strbuf *b, const char *fmt, ...) _printf_(2, 3);
void strbuf_append(strbuf *b, const char *s);
/* Hand the string over (never NULL); the buffer is empty afterwards. */
char *strbuf_steal(strbuf *b);
void strbuf_done(strbuf *b);
