/* Identity-scoped names: duplicate detection and grant references, O(n log n). */
#include "resolve.h"

static int db_cmp(const void *a, const void *b) {
        const m_database *x = a, *y = b;
        int r = identity_cmp(&x->id, &y->id);
        if (r)
                return r;
        r = strcmp(x->name, y->name);
        if (r)
                return r;
        r = strcmp(x->loc.path, y->loc.path);
        return r ? r : x->loc.line - y->loc.line;
}

static int app_cmp(const void *a, const void *b) {
        const m_application *x = a, *y = b;
        int r = identity_cmp(&x->id, &y->id);
        if (r)
                return r;
        r = strcmp(x->name, y->name);
        if (r)
                return r;
        r = strcmp(x->loc.path, y->loc.path);
        return r ? r : x->loc.line - y->loc.line;
}

long find_database(const manifest_set *s, const identity *id, const char *name) {
        size_t lo = 0, hi = s->n_dbs;

        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                const m_database *d = &s->dbs[mid];
                int r = identity_cmp(&d->id, id);
                if (!r)
                        r = strcmp(d->name, name);
                if (r == 0)
                        return (long) mid;
                if (r < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -1;
}

/* [first, last) range of dbs with this identity. */
static void identity_range(const manifest_set *s, const identity *id, size_t *first, size_t *last) {
        size_t lo = 0, hi = s->n_dbs;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (identity_cmp(&s->dbs[mid].id, id) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *first = lo;
        /* The end by bisection too: a scan would make every unresolved reference cost a pass over
         * the project's databases. */
        hi = s->n_dbs;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                if (identity_cmp(&s->dbs[mid].id, id) <= 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *last = lo;
}

static int name_ptr_cmp(const void *a, const void *b) {
        const m_database *x = *(m_database *const *) a, *y = *(m_database *const *) b;
        return strcmp(x->name, y->name);
}

/* Each hint compares the name with every database of the project; like clang's typo correction,
 * stop offering them after a while, or thousands of bad references take minutes. */
#define MAX_HINTS 100

static void report_unresolved(const manifest_set *s, m_database **by_name, const m_application *a,
                              const m_grant *g, size_t *hints_left, diag_list *diags) {
        char idbuf[300];
        size_t first, last, n = 0;
        const char **cands;
        const char *hint = NULL;
        m_database key = { .name = g->database }, *kp = &key;
        m_database **other;

        identity_format(&a->id, idbuf, sizeof(idbuf));
        identity_range(s, &a->id, &first, &last);
        if (*hints_left > 0 && last > first) {
                (*hints_left)--;
                cands = xmalloc((last - first) * sizeof(char *));
                for (size_t i = first; i < last; i++)
                        cands[n++] = s->dbs[i].name;
                hint = closest_word(g->database, cands, n);
                free(cands);
        }
        if (hint) {
                diag_add(diags, DIAG_ERROR, g->name_loc.path, g->name_loc.line, g->name_loc.col,
                         "database '%s' not found in project %s; did you mean '%s'?", g->database, idbuf, hint);
                return;
        }
        other = s->n_dbs ? bsearch(&kp, by_name, s->n_dbs, sizeof(m_database *), name_ptr_cmp) : NULL;
        if (other) {
                char otherbuf[300];
                identity_format(&(*other)->id, otherbuf, sizeof(otherbuf));
                diag_add(diags, DIAG_ERROR, g->name_loc.path, g->name_loc.line, g->name_loc.col,
                         "database '%s' not found in project %s; a database of that name exists in %s (%s:%d), "
                         "but references resolve within the same organization, organizational-unit, environment "
                         "and project",
                         g->database, idbuf, otherbuf, (*other)->loc.path, (*other)->name_loc.line);
                return;
        }
        diag_add(diags, DIAG_ERROR, g->name_loc.path, g->name_loc.line, g->name_loc.col,
                 "database '%s' not found in project %s", g->database, idbuf);
}

void resolve_manifests(manifest_set *s, diag_list *diags) {
        _cleanup_free_ m_database **by_name = NULL;
        size_t w, hints_left = MAX_HINTS;

        qsort_safe(s->dbs, s->n_dbs, sizeof(m_database), db_cmp);
        qsort_safe(s->apps, s->n_apps, sizeof(m_application), app_cmp);

        /* Duplicates: both places are named; the first definition stays in the model. */
        for (size_t i = 1, keep = 0; i < s->n_dbs; i++) {
                const m_database *a = &s->dbs[keep], *b = &s->dbs[i];
                if (identity_cmp(&a->id, &b->id) == 0 && streq(a->name, b->name)) {
                        diag_add(diags, DIAG_ERROR, b->name_loc.path, b->name_loc.line, b->name_loc.col,
                                 "Database '%s' is defined twice in this project: here and at %s:%d:%d", b->name,
                                 a->name_loc.path, a->name_loc.line, a->name_loc.col);
                        s->dbs[i].name = NULL;
                } else
                        keep = i;
        }
        for (size_t i = 1, keep = 0; i < s->n_apps; i++) {
                const m_application *a = &s->apps[keep], *b = &s->apps[i];
                if (identity_cmp(&a->id, &b->id) == 0 && streq(a->name, b->name)) {
                        diag_add(diags, DIAG_ERROR, b->name_loc.path, b->name_loc.line, b->name_loc.col,
                                 "Application '%s' is defined twice in this project: here and at %s:%d:%d", b->name,
                                 a->name_loc.path, a->name_loc.line, a->name_loc.col);
                        s->apps[i].name = NULL;
                } else
                        keep = i;
        }
        w = 0;
        for (size_t i = 0; i < s->n_dbs; i++)
                if (s->dbs[i].name)
                        s->dbs[w++] = s->dbs[i];
        s->n_dbs = w;
        w = 0;
        for (size_t i = 0; i < s->n_apps; i++)
                if (s->apps[i].name)
                        s->apps[w++] = s->apps[i];
        s->n_apps = w;

        by_name = xmalloc((s->n_dbs + 1) * sizeof(m_database *));
        for (size_t i = 0; i < s->n_dbs; i++)
                by_name[i] = &s->dbs[i];
        qsort_safe(by_name, s->n_dbs, sizeof(m_database *), name_ptr_cmp);

        for (size_t i = 0; i < s->n_apps; i++) {
                m_application *a = &s->apps[i];
                for (size_t j = 0; j < a->n_grants; j++) {
                        m_grant *g = &a->grants[j];
                        g->db = find_database(s, &a->id, g->database);
                        if (g->db < 0)
                                report_unresolved(s, by_name, a, g, &hints_left, diags);
                }
        }
}
