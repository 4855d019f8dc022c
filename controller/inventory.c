/* The static inventory file: hosts with addresses, role, capacity and labels. */
#include <arpa/inet.h>
#include <ctype.h>

#include "fileio.h"
#include "inventory.h"
#include "size.h"

static const char *const HOST_KEYS[] = { "name", "addresses", "role", "cpus", "memory", "labels" };
static const char *const ROLES[] = { "database", "application" };

void inventory_init(inventory *inv) {
        *inv = (inventory) {};
        arena_init(&inv->arena);
        strpool_init(&inv->labels, &inv->arena);
}

void inventory_done(inventory *inv) {
        strpool_done(&inv->labels);
        free(inv->hosts);
        arena_done(&inv->arena);
        *inv = (inventory) {};
}

#define IERR(path, n, ...) diag_add(diags, DIAG_ERROR, path, (n)->line, (n)->col, __VA_ARGS__)

static bool valid_address(const char *s) {
        unsigned char buf[16];
        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

void address_to_cidr(const char *addr, char *buf, size_t size) {
        snprintf(buf, size, "%s/%d", addr, strchr(addr, ':') ? 128 : 32);
}

/* "16GiB", "512MiB", "16G", or a plain number of MiB. */
static int parse_memory(const ynode *n, uint64_t *ret) {
        int64_t v;
        uint64_t bytes;

        if (ynode_get_int(n, &v) >= 0) {
                if (v <= 0 || v > (int64_t) 1 << 40)
                        return -ERANGE;
                *ret = (uint64_t) v << 20;
                return 0;
        }
        if (n->type != YNODE_SCALAR || parse_size(n->value, &bytes) < 0 || bytes > (1ULL << 50))
                return -EINVAL;
        *ret = bytes;
        return 0;
}

static int host_cmp(const void *a, const void *b) {
        return strcmp(((const inv_host *) a)->name, ((const inv_host *) b)->name);
}

static bool parse_host(inventory *inv, const char *path, const ynode *h, size_t idx, inv_host *out, diag_list *diags) {
        const ynode *n;
        bool ok = true;
        int64_t v;

        *out = (inv_host) { .loc = { path, h->line, h->col } };
        if (h->type != YNODE_MAPPING) {
                IERR(path, h, "hosts[%zu]: expected a mapping, got %s", idx, ynode_type_name(h));
                return false;
        }
        for (size_t i = 0; i < h->n_pairs; i++) {
                const ynode *k = h->pairs[i].key;
                bool known = false;
                for (size_t j = 0; j < ELEMENTSOF(HOST_KEYS) && !known; j++)
                        known = k->value[0] == HOST_KEYS[j][0] && streq(k->value, HOST_KEYS[j]);
                if (!known) {
                        const char *hint = closest_word(k->value, HOST_KEYS, ELEMENTSOF(HOST_KEYS));
                        IERR(path, k, "hosts[%zu]: unknown key '%.64s'%s%s%s", idx, k->value, hint ? "; did you mean '" : "",
                             hint ? hint : "", hint ? "'?" : "");
                        ok = false;
                }
        }

        n = ymap_get(h, "name");
        if (!n || !ynode_is_string(n) || n->len == 0 || n->len > 253) {
                IERR(path, n ? n : h, "hosts[%zu].name: expected a host name", idx);
                ok = false;
        } else {
                for (const char *p = n->value; *p; p++)
                        if (!(isalnum((unsigned char) *p) || *p == '-' || *p == '.' || *p == '_')) {
                                IERR(path, n, "hosts[%zu].name: '%.64s' is not a valid host name", idx, n->value);
                                ok = false;
                                break;
                        }
                out->name = arena_strdup(&inv->arena, n->value);
        }

        n = ymap_get(h, "role");
        if (!n || !ynode_is_string(n)) {
                IERR(path, n ? n : h, "hosts[%zu].role: expected 'database' or 'application'", idx);
                ok = false;
        } else if (streq(n->value, "database"))
                out->role = DOC_HOST_DATABASE;
        else if (streq(n->value, "application"))
                out->role = DOC_HOST_APPLICATION;
        else {
                const char *hint = closest_word(n->value, ROLES, ELEMENTSOF(ROLES));
                IERR(path, n, "hosts[%zu].role: '%.64s' is not a role; expected 'database' or 'application'%s%s%s", idx,
                     n->value, hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
                ok = false;
        }

        n = ymap_get(h, "addresses");
        if (!n || n->type != YNODE_SEQUENCE || n->n_items == 0) {
                IERR(path, n ? n : h, "hosts[%zu].addresses: expected a non-empty list of IP addresses", idx);
                ok = false;
        } else {
                out->addresses = arena_alloc(&inv->arena, n->n_items * sizeof(char *));
                for (size_t i = 0; i < n->n_items; i++) {
                        const ynode *a = n->items[i];
                        if (a->type != YNODE_SCALAR || !valid_address(a->value)) {
                                IERR(path, a, "hosts[%zu].addresses[%zu]: '%.64s' is not an IPv4 or IPv6 address", idx, i,
                                     a->type == YNODE_SCALAR ? a->value : ynode_type_name(a));
                                ok = false;
                                continue;
                        }
                        out->addresses[out->n_addresses++] = arena_strdup(&inv->arena, a->value);
                }
        }

        n = ymap_get(h, "cpus");
        if (!n || ynode_get_int(n, &v) < 0 || v < 1 || v > 4096) {
                IERR(path, n ? n : h, "hosts[%zu].cpus: expected an integer from 1 to 4096", idx);
                ok = false;
        } else
                out->cpus = (int) v;

        n = ymap_get(h, "memory");
        if (n && parse_memory(n, &out->memory_bytes) < 0) {
                IERR(path, n, "hosts[%zu].memory: expected a size such as 16GiB or 512MiB", idx);
                ok = false;
        }

        n = ymap_get(h, "labels");
        if (n && !ynode_is_null(n)) {
                if (n->type != YNODE_MAPPING) {
                        IERR(path, n, "hosts[%zu].labels: expected a mapping of strings", idx);
                        ok = false;
                } else {
                        out->label_keys = arena_alloc(&inv->arena, (n->n_pairs + 1) * sizeof(char *));
                        out->label_values = arena_alloc(&inv->arena, (n->n_pairs + 1) * sizeof(char *));
                        for (size_t i = 0; i < n->n_pairs; i++) {
                                const ynode *lv = n->pairs[i].value;
                                if (lv->type != YNODE_SCALAR) {
                                        IERR(path, lv, "hosts[%zu].labels.%.64s: expected a string", idx,
                                             n->pairs[i].key->value);
                                        ok = false;
                                        continue;
                                }
                                out->label_keys[out->n_labels] = strpool_intern(&inv->labels, n->pairs[i].key->value);
                                out->label_values[out->n_labels++] = strpool_intern(&inv->labels, lv->value);
                                if (streq(n->pairs[i].key->value, "environment"))
                                        out->environment = out->label_values[out->n_labels - 1];
                        }
                }
        }
        return ok;
}

int inventory_load_buffer(inventory *inv, const char *path, const char *data, size_t size, diag_list *diags) {
        _cleanup_(yfile_freep) yfile *file = NULL;
        yaml_limits lim = yaml_limits_default;
        const ynode *root, *list;
        const char *kept_path;
        size_t before = diags->n_errors;
        int r;

        lim.max_weight = 50000000;
        lim.max_documents = 1;
        r = yaml_load(path, data, size, &lim, false, diags, &file);
        if (r < 0)
                return r;
        root = file->n_docs > 0 ? file->docs[0].root : NULL;
        list = ymap_get(root, "hosts");
        if (!root || root->type != YNODE_MAPPING || !list || list->type != YNODE_SEQUENCE) {
                diag_add(diags, DIAG_ERROR, path, root ? root->line : 1, root ? root->col : 1,
                         "an inventory is a mapping with a 'hosts' list");
                return -EBADMSG;
        }
        for (size_t i = 0; root && i < root->n_pairs; i++)
                if (!streq(root->pairs[i].key->value, "hosts"))
                        diag_add(diags, DIAG_ERROR, path, root->pairs[i].key->line, root->pairs[i].key->col,
                                 "unknown key '%.64s' in the inventory; it holds only 'hosts'", root->pairs[i].key->value);

        /* The hosts keep copies of what they need (parse_host()): the tree, the largest piece of
         * memory a plan touches, is freed on return, and what is built next reuses its pages. */
        kept_path = arena_strdup(&inv->arena, path);
        inv->hosts = xcalloc(list->n_items + 1, sizeof(inv_host));
        for (size_t i = 0; i < list->n_items; i++)
                if (parse_host(inv, kept_path, list->items[i], i, &inv->hosts[inv->n], diags))
                        inv->n++;
        qsort_safe(inv->hosts, inv->n, sizeof(inv_host), host_cmp);
        for (size_t i = 1; i < inv->n; i++)
                if (streq(inv->hosts[i].name, inv->hosts[i - 1].name)) {
                        const inv_host *a = &inv->hosts[i - 1], *b = &inv->hosts[i];
                        if (a->loc.line > b->loc.line) {
                                const inv_host *t = a;
                                a = b;
                                b = t;
                        }
                        diag_add(diags, DIAG_ERROR, path, b->loc.line, b->loc.col,
                                 "host '%.64s' is listed twice (first at line %d)", b->name, a->loc.line);
                }
        return diags->n_errors > before ? -EBADMSG : 0;
}

int inventory_load(inventory *inv, const char *path, diag_list *diags) {
        _cleanup_free_ char *data = NULL;
        size_t size;
        int r;

        r = read_full_file(path, INVENTORY_MAX_SIZE, &data, &size);
        if (r < 0) {
                diag_add(diags, DIAG_ERROR, path, 0, 0, "cannot read the inventory: %s", strerror(-r));
                return r;
        }
        return inventory_load_buffer(inv, path, data, size, diags);
}

long inventory_find(const inventory *inv, const char *name) {
        inv_host key = { .name = name };
        const inv_host *h = inv->n ? bsearch(&key, inv->hosts, inv->n, sizeof(inv_host), host_cmp) : NULL;
        return h ? (long) (h - inv->hosts) : -1;
}

int inventory_add_host(inventory *inv, const inv_host *h) {
        inv_host *n;
        size_t at = 0, lo = 0, hi = inv->n;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(inv->hosts[mid].name, h->name);

                if (c == 0)
                        return -EEXIST;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        at = lo;
        /* One slot more than n, as inventory_load_buffer() allocates. */
        inv->hosts = xrealloc(inv->hosts, (inv->n + 2) * sizeof(inv_host));
        memmove(&inv->hosts[at + 1], &inv->hosts[at], (inv->n - at) * sizeof(inv_host));
        inv->n++;
        n = &inv->hosts[at];
        *n = (inv_host) {
                .name = arena_strdup(&inv->arena, h->name),
                .addresses = arena_alloc(&inv->arena, (h->n_addresses + 1) * sizeof(char *)),
                .n_addresses = h->n_addresses,
                .role = h->role,
                .cpus = h->cpus,
                .memory_bytes = h->memory_bytes,
                .label_keys = arena_alloc(&inv->arena, (h->n_labels + 1) * sizeof(char *)),
                .label_values = arena_alloc(&inv->arena, (h->n_labels + 1) * sizeof(char *)),
                .n_labels = h->n_labels,
                .loc = { h->loc.path ? arena_strdup(&inv->arena, h->loc.path) : NULL, h->loc.line, h->loc.col },
        };
        memset(&inv->hosts[inv->n], 0, sizeof(inv_host));
        for (size_t i = 0; i < h->n_addresses; i++)
                n->addresses[i] = arena_strdup(&inv->arena, h->addresses[i]);
        for (size_t i = 0; i < h->n_labels; i++) {
                n->label_keys[i] = strpool_intern(&inv->labels, h->label_keys[i]);
                n->label_values[i] = strpool_intern(&inv->labels, h->label_values[i]);
                if (streq(h->label_keys[i], "environment"))
                        n->environment = n->label_values[i];
        }
        return 0;
}
