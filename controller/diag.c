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
                qsort(l->items, l->n, sizeof(diag), diag_cmp);
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

size_t edit_distance(const char *a, const char *b, size_t max) {
        size_t la = strlen(a), lb = strlen(b);
        size_t row[64 + 1];

        if (la > 64 || lb > 64)
                return max + 1;
        if ((la > lb ? la - lb : lb - la) > max)
                return max + 1;
        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t prev = row[0], best;
                row[0] = i;
                best = row[0];
                for (size_t j = 1; j <= lb; j++) {
                        size_t cur = row[j];
                        size_t cost = (a[i - 1] | 0x20) == (b[j - 1] | 0x20) ? 0 : 1;
                        size_t v = prev + cost;
                        if (row[j] + 1 < v)
                                v = row[j] + 1;
                        if (row[j - 1] + 1 < v)
                                v = row[j - 1] + 1;
                        row[j] = v;
                        prev = cur;
                        if (v < best)
                                best = v;
                }
                if (best > max)
                        return max + 1;
        }
        return row[lb];
}

const char *closest_word(const char *word, const char *const *candidates, size_t n) {
        size_t len = strlen(word);
        /* A hint must be closer than a third of the word, or it is noise. */
        size_t max = len < 4 ? 1 : len / 3 + 1;
        const char *best = NULL;
        size_t best_d = max + 1;

        for (size_t i = 0; i < n; i++) {
                size_t d = edit_distance(word, candidates[i], max);
                if (d < best_d) {
                        best_d = d;
                        best = candidates[i];
                }
        }
        return best;
}
