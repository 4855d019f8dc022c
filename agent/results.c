/* Collected reconciler outcomes, printed one line each and persisted as JSON. */
#include <stdarg.h>

#include "results.h"

static const char *const STATES[] = {
        [RES_UNCHANGED] = "unchanged", [RES_CREATED] = "created",   [RES_CHANGED] = "changed",
        [RES_REMOVED] = "removed",     [RES_RETAINED] = "retained", [RES_FAILED] = "failed",
};

const char *res_state_to_string(res_state s) {
        return STATES[s];
}

void results_add(results *r, const char *kind, const char *name, res_state state, const char *fmt, ...) {
        res_item *it;

        if (r->n == r->alloc) {
                r->alloc = r->alloc ? r->alloc * 2 : 16;
                r->items = xrealloc(r->items, r->alloc * sizeof(res_item));
        }
        it = &r->items[r->n++];
        *it = (res_item) { .kind = xstrdup(kind), .name = xstrdup(name), .state = state };
        if (fmt) {
                va_list ap;
                va_start(ap, fmt);
                if (vasprintf(&it->detail, fmt, ap) < 0)
                        abort();
                va_end(ap);
                /* A detail is one line of text (the controller refuses a report with control
                 * characters): a child's output quoted in it (libpq's tab-indented hints, a
                 * newline) must not make the whole report unreadable. */
                for (char *s = it->detail; *s; s++)
                        if ((unsigned char) *s < 0x20 || *s == 0x7f)
                                *s = ' ';
        }
}

void results_done(results *r) {
        for (size_t i = 0; i < r->n; i++) {
                free(r->items[i].kind);
                free(r->items[i].name);
                free(r->items[i].detail);
        }
        free(r->items);
        *r = (results) {};
}

bool results_failed(const results *r) {
        for (size_t i = 0; i < r->n; i++)
                if (r->items[i].state == RES_FAILED)
                        return true;
        return false;
}

bool results_changed(const results *r) {
        for (size_t i = 0; i < r->n; i++)
                if (r->items[i].state != RES_UNCHANGED && r->items[i].state != RES_RETAINED)
                        return true;
        return false;
}

void results_print(const results *r, FILE *f) {
        for (size_t i = 0; i < r->n; i++) {
                const res_item *it = &r->items[i];
                fprintf(f, "%s %s: %s%s%s\n", it->kind, it->name, STATES[it->state], it->detail ? ": " : "",
                        it->detail ? it->detail : "");
        }
}

json_object *results_to_json(const results *r) {
        json_object *a = json_object_new_array();
        for (size_t i = 0; i < r->n; i++) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "kind", json_object_new_string(r->items[i].kind));
                json_object_object_add(o, "name", json_object_new_string(r->items[i].name));
                json_object_object_add(o, "state", json_object_new_string(STATES[r->items[i].state]));
                if (r->items[i].detail)
                        json_object_object_add(o, "detail", json_object_new_string(r->items[i].detail));
                json_object_array_add(a, o);
        }
        return a;
}

int results_from_json(json_object *a, results *ret) {
        results r = {};

        if (!json_object_is_type(a, json_type_array))
                return -EBADMSG;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *o = json_object_array_get_idx(a, i), *k, *n, *s, *d;
                res_state st = RES_FAILED;
                if (!json_object_object_get_ex(o, "kind", &k) || !json_object_object_get_ex(o, "name", &n) ||
                    !json_object_object_get_ex(o, "state", &s)) {
                        results_done(&r);
                        return -EBADMSG;
                }
                for (size_t j = 0; j < ELEMENTSOF(STATES); j++)
                        if (streq(STATES[j], json_object_get_string(s)))
                                st = (res_state) j;
                d = json_object_object_get(o, "detail");
                results_add(&r, json_object_get_string(k), json_object_get_string(n), st, d ? "%s" : NULL,
                            d ? json_object_get_string(d) : NULL);
        }
        *ret = r;
        return 0;
}
