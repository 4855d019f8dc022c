/* Diagnostics collection and "did you mean" hints for manifest errors. */
#include <stdarg.h>

#include "diag.h"

#define DIAG_MAX_DEFAULT 10000

void diag_list_init(diag_list *l) {
        *l = (diag_list) { .max = DIAG_MAX_DEFAULT };
}

void diag_list_done(diag_list *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->items[i].path);
                free(l->items[i].message);
        }
        free(l->items);
        *l = (diag_list) {};
}

void diag_add(diag_list *l, diag_severity sev, const char *path, int line, int col, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        diag_addv(l, sev, path, line, col, fmt, ap);
        va_end(ap);
}

void diag_addv(diag_list *l, diag_severity sev, const char *path, int line, int col, const char *fmt, va_list ap) {
        diag *d;

        if (sev == DIAG_ERROR)
                l->n_errors++;
        else if (sev == DIAG_WARNING)
                l->n_warnings++;
        if (l->n >= l->max)
                return;
        if (l->n == l->alloc) {
                l->alloc = l->alloc ? l->alloc * 2 : 16;
                l->items = xrealloc(l->items, l->alloc * sizeof(diag));
        }
        d = &l->items[l->n];
        *d = (diag) {
                .path = xstrdup(path ? path : ""),
                .line = line,
                .col = col,
                .severity = sev,
                .seq = l->n,
        };
        if (vasprintf(&d->message, fmt, ap) < 0)
                abort();
        l->n++;
}

void diag_list_move(diag_list *dst, diag_list *src) {
        for (size_t i = 0; i < src->n; i++) {
                diag *d = &src->items[i];

                if (dst->n >= dst->max) {
                        free(d->path);
                        free(d->message);
                        continue;
                }
                if (dst->n == dst->alloc) {
                        dst->alloc = dst->alloc ? dst->alloc * 2 : 16;
                        dst->items = xrealloc(dst->items, dst->alloc * sizeof(diag));
                }
                dst->items[dst->n] = *d;
                dst->items[dst->n].seq = dst->n;
                dst->n++;
        }
        /* Counted, recorded or not; what src could not record, dst could not either. */
        dst->n_errors += src->n_errors;
        dst->n_warnings += src->n_warnings;
        free(src->items);
        *src = (diag_list) { .max = src->max };
}

static int diag_cmp(const void *a, const void *b) {
        const diag *x = a, *y = b;
        int r = strcmp(x->path, y->path);

        if (r != 0)
                return r;
        if (x->line != y->line)
                return x->line < y->line ? -1 : 1;
        if (x->col != y->col)
                return x->col < y->col ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void diag_sort(diag_list *l) {
        if (l->n > 1)
                qsort_safe(l->items, l->n, sizeof(diag), diag_cmp);
}

static const char *severity_word(diag_severity s) {
        switch (s) {
        case DIAG_ERROR:
                return "error";
        case DIAG_WARNING:
                return "warning";
        default:
                return "note";
        }
}

void diag_print(const diag_list *l, FILE *f, bool verbose) {
        for (size_t i = 0; i < l->n; i++) {
                const diag *d = &l->items[i];

                if (d->severity == DIAG_NOTE && !verbose)
                        continue;
                if (d->line > 0)
                        fprintf(f, "%s:%d:%d: %s: %s\n", d->path, d->line, d->col, severity_word(d->severity),
                                d->message);
                else
                        fprintf(f, "%s: %s: %s\n", d->path, severity_word(d->severity), d->message);
        }
        if (l->n_errors + l->n_warnings > l->n)
                fprintf(f, "(%zu more diagnostics not shown)\n", l->n_errors + l->n_warnings - l->n);
}
