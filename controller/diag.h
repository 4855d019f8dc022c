/* Diagnostics: every error and warning about the manifests, collected, sorted, printed once
 * as "path:line:col: error: message". */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "hint.h"
#include "macro.h"

typedef enum diag_severity {
        DIAG_ERROR,
        DIAG_WARNING,
        DIAG_NOTE,    /* shown only with --verbose */
} diag_severity;

typedef struct diag {
        char *path;   /* relative to the repo */
        int line, col;
        diag_severity severity;
        char *message;
        size_t seq;   /* insertion order: ties sort stably */
} diag;

typedef struct diag_list {
        diag *items;
        size_t n, alloc;
        size_t n_errors, n_warnings;
        size_t max;   /* stop recording beyond this many (the count goes on) */
} diag_list;

void diag_list_init(diag_list *l);
void diag_list_done(diag_list *l);
void diag_add(diag_list *l, diag_severity sev, const char *path, int line, int col, const char *fmt, ...)
        _printf_(6, 7);
void diag_addv(diag_list *l, diag_severity sev, const char *path, int line, int col, const char *fmt, va_list ap)
        _printf_(6, 0);
/* Append src's diagnostics to dst and empty src: the same as if each had been added to dst after
 * dst's own (order, limit and counts; both lists have the default limit). */
void diag_list_move(diag_list *dst, diag_list *src);
void diag_sort(diag_list *l);
/* Print the sorted list to f; notes only when verbose. */
void diag_print(const diag_list *l, FILE *f, bool verbose);
