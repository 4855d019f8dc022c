/* The firewall reconciler: what the table should hold, what it holds, and the one batch between
 * the two. nft.c builds, sends and reads; the decisions are here. */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "fileio.h"
#include "firewall.h"
#include "macro.h"
#include "strbuf.h"

/* Optimistic concurrency: a batch carries the generation it was planned at, and the kernel
 * refuses it if anything committed in between; we then observe and plan again. */
#define ATTEMPTS 4
/* Name the changed addresses in the result when there are this few. */
#define LIST_MAX 8

/* --- the desired table ------------------------------------------------------------------------ */

static int db_cmp(const void *a, const void *b) {
        return strcmp(((const fw_db *) a)->name, ((const fw_db *) b)->name);
}

void firewall_dbs_free(fw_db *dbs, size_t n) {
        for (size_t i = 0; i < n; i++)
                fw_db_done(&dbs[i]);
        free(dbs);
}

int firewall_desired(const doc_document *d, fw_db **ret, size_t *ret_n, char **ret_error, const char **ret_bad_db) {
        fw_db *v = d->n_databases ? xcalloc(d->n_databases, sizeof(fw_db)) : NULL;

        for (size_t i = 0; i < d->n_databases; i++) {
                const doc_database *db = &d->databases[i];
                v[i].name = xstrdup(db->name);
                v[i].port = (uint16_t) db->port;
                fw_ranges_reserve(&v[i].allow[FW_SET_H4], db->n_allow);
                for (size_t j = 0; j < db->n_allow; j++) {
                        fw_family f;
                        fw_range r;
                        if (fw_parse_cidr(db->allow[j], &f, &r) < 0) {
                                *ret_error = xasprintf("allow[%zu] '%.64s' is not an IP address or CIDR", j, db->allow[j]);
                                *ret_bad_db = db->name;
                                firewall_dbs_free(v, d->n_databases);
                                return -EINVAL;
                        }
                        /* One address: the hash set; a network: the interval set. */
                        if (r.lo == r.hi)
                                fw_ranges_push(&v[i].allow[f == FW_V4 ? FW_SET_H4 : FW_SET_H6], r);
                        else
                                fw_ranges_push(&v[i].allow[f == FW_V4 ? FW_SET_N4 : FW_SET_N6], r);
                }
                for (fw_set k = FW_SET_H4; k < FW_SET_MAX; k++)
                        if (fw_set_hosts(k))
                                fw_ranges_unique(&v[i].allow[k]);
                        else
                                fw_ranges_normalise(&v[i].allow[k]);
        }
        qsort_safe(v, d->n_databases, sizeof(fw_db), db_cmp);
        *ret = v;
        *ret_n = d->n_databases;
        return 0;
}

static const fw_db *find_db(const fw_db *v, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(v[i].name, name))
                        return &v[i];
        return NULL;
}

static int prefix_cmp(const fw_prefix *a, const fw_prefix *b) {
        if (a->addr != b->addr)
                return a->addr < b->addr ? -1 : 1;
        return (int) a->len - (int) b->len;
}

/* Counts, and the changed prefixes ("+10.0.0.3/32") appended to list while it has room. */
static void prefix_changes(fw_family f, const fw_ranges *old, const fw_ranges *new, size_t *added, size_t *removed,
                           strbuf *list, size_t *listed) {
        _cleanup_free_ fw_prefix *a = NULL, *b = NULL;
        size_t na = fw_ranges_prefixes(f, old, &a), nb = fw_ranges_prefixes(f, new, &b), i = 0, j = 0;

        while (i < na || j < nb) {
                int c = i == na ? 1 : j == nb ? -1 : prefix_cmp(&a[i], &b[j]);
                const fw_prefix *p = NULL;
                char sign = 0;
                if (c == 0) {
                        i++;
                        j++;
                        continue;
                }
                if (c < 0) {
                        (*removed)++;
                        p = &a[i++];
                        sign = '-';
                } else {
                        (*added)++;
                        p = &b[j++];
                        sign = '+';
                }
                if (list && (*listed)++ < LIST_MAX) {
                        _cleanup_free_ char *s = fw_prefix_to_string(f, p);
                        strbuf_printf(list, "%s%c%s", list->len ? " " : "", sign, s);
                }
        }
}

void firewall_count_changes(fw_family f, const fw_ranges *old, const fw_ranges *new, size_t *ret_added,
                            size_t *ret_removed) {
        *ret_added = *ret_removed = 0;
        prefix_changes(f, old, new, ret_added, ret_removed, NULL, NULL);
}

static size_t count_addresses(const fw_db *db) {
        size_t n = 0;
        for (fw_set k = FW_SET_H4; k < FW_SET_MAX; k++) {
                _cleanup_free_ fw_prefix *p = NULL;
                n += fw_ranges_prefixes(fw_set_family(k), &db->allow[k], &p);
        }
        return n;
}

/* --- the cache -------------------------------------------------------------------------------- */

/* Layout (host byte order: the file never leaves the host): magic, nonce, genid, number of
 * databases; per database its name (u16 length + bytes), port, the number of ranges of each set
 * (fw_set order: h4, n4, h6, n6), then each set's ranges, IPv4 ones as u32 pairs, IPv6 ones as
 * 128-bit pairs; then a checksum of all that. */
#define CACHE_MAGIC "ISFWC03\n"

typedef struct fw_cache {
        bool valid;
        uint8_t nonce[NFT_NONCE_SIZE];
        uint32_t genid;
        fw_db *dbs;
        size_t n;
} fw_cache;

static void cache_done(fw_cache *c) {
        firewall_dbs_free(c->dbs, c->n);
        *c = (fw_cache) {};
}

/* Catches a torn or damaged file, eight bytes at a time (not a defence against tampering: the
 * state directory is root's, and the cache is checked against the kernel anyway). */
static uint64_t checksum(const uint8_t *p, size_t n) {
        uint64_t h = 0xcbf29ce484222325ULL ^ n;
        size_t i = 0;

        for (; i + 8 <= n; i += 8) {
                uint64_t w;
                memcpy_safe(&w, p + i, sizeof(w));
                h = (h ^ w) * 0x100000001b3ULL;
                h ^= h >> 29;
        }
        for (; i < n; i++)
                h = (h ^ p[i]) * 0x100000001b3ULL;
        return h;
}

typedef struct reader {
        const uint8_t *p;
        size_t len, pos;
        bool bad;
} reader;

static const void *take(reader *r, size_t n) {
        const void *at;
        if (r->bad || r->len - r->pos < n) {
                r->bad = true;
                return NULL;
        }
        at = r->p + r->pos;
        r->pos += n;
        return at;
}

static void get(reader *r, void *out, size_t n) {
        const void *at = take(r, n);
        if (at)
                memcpy_safe(out, at, n);
        else
                memset(out, 0, n);
}

static char *cache_path(const agent_config *cfg) {
        return xasprintf("%s/%s", cfg->state_dir, FIREWALL_CACHE_FILE);
}

static void cache_load(const agent_config *cfg, fw_cache *ret) {
        _cleanup_free_ char *path = cache_path(cfg);
        _cleanup_free_ char *data = NULL;
        fw_cache c = {};
        reader r;
        uint64_t sum;
        uint32_t n;
        size_t size;

        *ret = (fw_cache) {};
        if (read_full_file(path, 1u << 30, &data, &size) < 0 || size < 8 + sizeof(sum) ||
            memcmp(data, CACHE_MAGIC, 8) != 0)
                return;
        memcpy_safe(&sum, data + size - sizeof(sum), sizeof(sum));
        if (sum != checksum((const uint8_t *) data, size - sizeof(sum)))
                return; /* torn or damaged: the slow path reads the truth */
        r = (reader) { .p = (const uint8_t *) data, .len = size - sizeof(sum), .pos = 8 };
        get(&r, c.nonce, sizeof(c.nonce));
        get(&r, &c.genid, sizeof(c.genid));
        get(&r, &n, sizeof(n));
        if (r.bad || n > 100000)
                return;
        c.dbs = n ? xcalloc(n, sizeof(fw_db)) : NULL;
        for (c.n = 0; c.n < n && !r.bad; c.n++) {
                fw_db *db = &c.dbs[c.n];
                uint32_t k[FW_SET_MAX];
                const char *name;
                uint16_t len;

                get(&r, &len, sizeof(len));
                name = take(&r, len);
                if (!name)
                        break;
                db->name = xstrndup(name, len);
                get(&r, &db->port, sizeof(db->port));
                get(&r, k, sizeof(k));
                for (fw_set f = FW_SET_H4; f < FW_SET_MAX && !r.bad; f++) {
                        bool v4 = fw_set_family(f) == FW_V4;
                        size_t width = v4 ? 2 * sizeof(uint32_t) : sizeof(fw_range);
                        const uint8_t *v = (size_t) k[f] <= (r.len - r.pos) / width ? take(&r, k[f] * width) : NULL;
                        if (!v) {
                                r.bad = true;
                                break;
                        }
                        db->allow[f] = (fw_ranges) { .v = k[f] ? xmalloc(k[f] * sizeof(fw_range)) : NULL,
                                                     .n = k[f], .alloc = k[f] };
                        if (!v4) {
                                memcpy_safe(db->allow[f].v, v, k[f] * sizeof(fw_range));
                                continue;
                        }
                        for (uint32_t i = 0; i < k[f]; i++) {
                                uint32_t pair[2];
                                memcpy_safe(pair, v + i * sizeof(pair), sizeof(pair));
                                db->allow[f].v[i] = (fw_range) { .lo = pair[0], .hi = pair[1] };
                        }
                }
        }
        if (r.bad || r.pos != r.len) {
                cache_done(&c);
                return;
        }
        c.valid = true;
        *ret = c;
}

/* Not through write_file_atomic(): this file is a cache that is checked against the kernel on
 * every read (generation id and table nonce) and sealed with a checksum, so a write lost or torn
 * by a crash only costs one slow observe. Skipping the fsync (and the read-back comparison) keeps a
 * one-address change at 100,000 addresses to a millisecond of file work. The rename still keeps
 * readers from a half-written file. */
static void cache_save(const agent_config *cfg, const uint8_t nonce[NFT_NONCE_SIZE], uint32_t genid, const fw_db *dbs,
                       size_t n) {
        _cleanup_free_ char *path = cache_path(cfg), *tmp = xasprintf("%s.tmp", path);
        _cleanup_free_ uint8_t *buf = NULL;
        _cleanup_close_ int fd = -1;
        uint32_t n32 = (uint32_t) n;
        size_t size = 8 + NFT_NONCE_SIZE + sizeof(genid) + sizeof(n32) + sizeof(uint64_t), len = 0, off = 0;
        uint64_t sum;

        for (size_t i = 0; i < n; i++)
                size += sizeof(uint16_t) + strlen(dbs[i].name) + sizeof(uint16_t) + FW_SET_MAX * sizeof(uint32_t) +
                        (dbs[i].allow[FW_SET_H4].n + dbs[i].allow[FW_SET_N4].n) * 2 * sizeof(uint32_t) +
                        (dbs[i].allow[FW_SET_H6].n + dbs[i].allow[FW_SET_N6].n) * sizeof(fw_range);
        buf = xmalloc(size);
#define PUT(src, bytes) (memcpy_safe(buf + len, (src), (bytes)), len += (bytes))
        PUT(CACHE_MAGIC, 8);
        PUT(nonce, NFT_NONCE_SIZE);
        PUT(&genid, sizeof(genid));
        PUT(&n32, sizeof(n32));
        for (size_t i = 0; i < n; i++) {
                uint16_t name_len = (uint16_t) strlen(dbs[i].name);
                uint32_t k[FW_SET_MAX];
                for (fw_set f = FW_SET_H4; f < FW_SET_MAX; f++)
                        k[f] = (uint32_t) dbs[i].allow[f].n;
                PUT(&name_len, sizeof(name_len));
                PUT(dbs[i].name, name_len);
                PUT(&dbs[i].port, sizeof(dbs[i].port));
                PUT(k, sizeof(k));
                for (fw_set f = FW_SET_H4; f < FW_SET_MAX; f++) {
                        if (fw_set_family(f) == FW_V6) {
                                if (k[f])
                                        PUT(dbs[i].allow[f].v, k[f] * sizeof(fw_range));
                                continue;
                        }
                        for (size_t j = 0; j < k[f]; j++) {
                                uint32_t pair[2] = { (uint32_t) dbs[i].allow[f].v[j].lo, (uint32_t) dbs[i].allow[f].v[j].hi };
                                PUT(pair, sizeof(pair));
                        }
                }
        }
        sum = checksum(buf, len);
        PUT(&sum, sizeof(sum));
#undef PUT

        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        while (fd >= 0 && off < len) {
                ssize_t k = write(fd, buf + off, len - off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                off += (size_t) k;
        }
        if (fd < 0 || off != len || rename(tmp, path) < 0)
                (void) unlink(tmp); /* no cache: the next apply observes everything */
}

static void cache_forget(const agent_config *cfg) {
        _cleanup_free_ char *path = cache_path(cfg);
        (void) unlink(path);
}

/* --- outcomes --------------------------------------------------------------------------------- */

typedef struct outcome {
        char *name;
        res_state state;
        char *detail;
        char *error; /* what the kernel said about this database's messages */
} outcome;

typedef struct outcomes {
        outcome *v;
        size_t n;
} outcomes;

static void outcomes_done(outcomes *o) {
        for (size_t i = 0; i < o->n; i++) {
                free(o->v[i].name);
                free(o->v[i].detail);
                free(o->v[i].error);
        }
        free(o->v);
        *o = (outcomes) {};
}

static outcome *outcome_get(outcomes *o, const char *name) {
        for (size_t i = 0; i < o->n; i++)
                if (streq(o->v[i].name, name))
                        return &o->v[i];
        o->v = xrealloc(o->v, (o->n + 1) * sizeof(outcome));
        o->v[o->n] = (outcome) { .name = xstrdup(name), .state = RES_UNCHANGED };
        return &o->v[o->n++];
}

static void outcome_set(outcomes *o, const char *name, res_state state, char *detail) {
        outcome *x = outcome_get(o, name);
        x->state = state;
        free(x->detail);
        x->detail = detail;
}

static int outcome_cmp(const void *a, const void *b) {
        return strcmp(((const outcome *) a)->name, ((const outcome *) b)->name);
}

static void outcomes_flush(outcomes *o, results *res) {
        qsort_safe(o->v, o->n, sizeof(outcome), outcome_cmp);
        for (size_t i = 0; i < o->n; i++)
                results_add(res, "firewall", o->v[i].name, o->v[i].state, o->v[i].detail ? "%s" : NULL, o->v[i].detail);
}

/* Every database fails with the same reason (nothing was applied). */
static void fail_all(results *res, const fw_db *dbs, size_t n, const char *fmt, ...) _printf_(4, 5);
static void fail_all(results *res, const fw_db *dbs, size_t n, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                abort();
        va_end(ap);
        if (n == 0)
                results_add(res, "firewall", "table inet " NFT_TABLE, RES_FAILED, "%s", msg);
        for (size_t i = 0; i < n; i++)
                results_add(res, "firewall", dbs[i].name, RES_FAILED, "%s", msg);
}

/* --- observe and compare ---------------------------------------------------------------------- */

static void problem(strbuf *p, const char *fmt, ...) _printf_(2, 3);
static void problem(strbuf *p, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                abort();
        va_end(ap);
        if (p->len)
                strbuf_append(p, "; ");
        strbuf_append(p, msg);
}

static nft_live_set *live_set(nft_live *l, const char *db, fw_set k) {
        for (size_t i = 0; i < l->n_sets; i++)
                if (l->sets[i].db && streq(l->sets[i].db, db) && l->sets[i].set == k)
                        return &l->sets[i];
        return NULL;
}

static bool live_has_db(const nft_live *l, const char *db) {
        for (size_t i = 0; i < l->n_sets; i++)
                if (streq_ptr(l->sets[i].db, db))
                        return true;
        for (size_t i = 0; i < l->n_rules; i++)
                if (streq_ptr(l->rules[i].db, db))
                        return true;
        return false;
}

/* Our rules for db, in chain order: exactly accept h4, n4, h6, n6, drop, on one port. Returns
 * that port, or 0 when they are not in that shape. */
static uint16_t live_rules_port(const nft_live *l, const char *db) {
        nft_rule_kind want = NFT_RULE_ACCEPT_H4;
        uint16_t port = 0;

        for (size_t i = 0; i < l->n_rules; i++) {
                const nft_live_rule *r = &l->rules[i];
                if (!streq_ptr(r->db, db) || !streq(r->chain, NFT_CHAIN))
                        continue;
                if (r->kind != want || want == NFT_RULE_OTHER || (port && r->port != port))
                        return 0;
                port = r->port;
                want++;
        }
        return want == NFT_RULE_OTHER ? port : 0;
}

/* Anything in our table the agent would not have put there, as text; empty when the structure
 * (table, chain, sets, rules) is ours. Elements are compared separately. */
static void structure_problems(nft_live *l, const fw_db *dbs, size_t n, const fw_cache *c, bool known, strbuf *p) {
        bool chain = false;

        if (!l->table) {
                if (n > 0 && c->valid && c->n > 0)
                        problem(p, "table inet %s was missing", NFT_TABLE);
                return;
        }
        if (l->table_dormant)
                problem(p, "table inet %s was set dormant", NFT_TABLE);
        else if (l->table_flags)
                problem(p, "table inet %s had its flags changed (0x%x)", NFT_TABLE, l->table_flags);
        if (!l->has_nonce)
                problem(p, "table inet %s was replaced outside the agent", NFT_TABLE);
        for (size_t i = 0; i < l->n_chains; i++)
                if (streq(l->chains[i].name, NFT_CHAIN)) {
                        chain = true;
                        if (!l->chains[i].ours)
                                problem(p, "chain %s was altered", NFT_CHAIN);
                } else
                        problem(p, "unexpected chain '%s'", l->chains[i].name);
        if (!chain)
                problem(p, "chain %s was missing", NFT_CHAIN);
        for (size_t i = 0; i < l->n_sets; i++)
                if (!l->sets[i].db)
                        problem(p, "unexpected set '%s'", l->sets[i].name);
                else if (!l->sets[i].ours)
                        problem(p, "set '%s' was altered", l->sets[i].name);
        for (size_t i = 0; i < l->n_rules; i++) {
                const nft_live_rule *r = &l->rules[i];
                if (!streq(r->chain, NFT_CHAIN) || r->kind != NFT_RULE_OTHER)
                        continue;
                if (r->db)
                        problem(p, "a rule of '%s' was altered (handle %llu)", r->db, (unsigned long long) r->handle);
                else
                        problem(p, "unexpected rule (handle %llu)", (unsigned long long) r->handle);
        }
        /* The kernel counts chains, sets, stateful objects and flowtables: we only make the first two. */
        if (l->table_use > l->n_chains + l->n_sets)
                problem(p, "unexpected objects in the table");
        for (size_t i = 0; i < n; i++) {
                const char *db = dbs[i].name;
                if (!live_has_db(l, db)) {
                        if (known && find_db(c->dbs, c->n, db))
                                problem(p, "the sets and rules of '%s' were missing", db);
                        continue;
                }
                for (fw_set k = FW_SET_H4; k < FW_SET_MAX; k++)
                        if (!live_set(l, db, k)) {
                                _cleanup_free_ char *name = nft_set_name(db, k);
                                problem(p, "set '%s' was missing", name);
                        }
                if (live_rules_port(l, db) == 0)
                        problem(p, "the rules of '%s' were altered", db);
        }
}

typedef struct plan_ctx {
        const agent_config *cfg;
        const doc_document *doc;
        const fw_db *dbs;
        size_t n;
        const fw_cache *cache;
        nft_socket *sock;
} plan_ctx;

/* The grant (role) whose client list covers addr, for error messages. */
static const char *grant_for(const doc_document *doc, const char *db, fw_family f, fw_addr addr) {
        for (size_t i = 0; doc && i < doc->n_databases; i++) {
                const doc_database *d = &doc->databases[i];
                if (!streq(d->name, db))
                        continue;
                for (size_t j = 0; j < d->n_roles; j++)
                        for (size_t k = 0; k < d->roles[j].n_clients; k++) {
                                fw_family cf;
                                fw_range r;
                                if (fw_parse_cidr(d->roles[j].clients[k], &cf, &r) == 0 && cf == f && r.lo <= addr &&
                                    addr <= r.hi)
                                        return d->roles[j].name;
                        }
        }
        return NULL;
}

static char *describe_error(const nft_error *e, const doc_document *doc) {
        strbuf b = {};

        if (streq(e->object, "table"))
                strbuf_printf(&b, "the kernel refused table inet %s", NFT_TABLE);
        else if (streq(e->object, "chain"))
                strbuf_printf(&b, "the kernel refused chain %s", NFT_CHAIN);
        else if (streq(e->object, "rule"))
                strbuf_printf(&b, "the kernel refused a rule of '%s'", strempty(e->db));
        else if (streq(e->object, "set") || streq(e->object, "elements")) {
                _cleanup_free_ char *set = nft_set_name(strempty(e->db), e->set);
                strbuf_printf(&b, "the kernel refused %s '%s'", streq(e->object, "set") ? "set" : "the elements of set", set);
        } else
                strbuf_append(&b, "the kernel refused the batch");
        if (e->has_element) {
                /* An interval's end element is one past its last address. */
                fw_addr a = e->element_end ? e->element - 1 : e->element;
                _cleanup_free_ char *s = fw_addr_to_string(e->family, a);
                const char *grant = e->db ? grant_for(doc, e->db, e->family, a) : NULL;
                strbuf_printf(&b, " at %s%s", e->element_end ? "the range ending at " : "", s);
                if (grant)
                        strbuf_printf(&b, " (grant '%s')", grant);
        }
        strbuf_printf(&b, ": %s", strerror(e->error));
        return strbuf_steal(&b);
}

/* The kernel refused the batch: each database gets what was said about its own messages, or
 * the table-wide reason, or the name of the database that sank the batch. */
static void map_errors(outcomes *o, const nft_error *errs, size_t n_errs, const doc_document *doc, results *res) {
        _cleanup_free_ char *table_wide = NULL, *culprit = NULL;

        for (size_t i = 0; i < n_errs; i++) {
                _cleanup_free_ char *msg = describe_error(&errs[i], doc);
                if (errs[i].db) {
                        outcome *x = outcome_get(o, errs[i].db);
                        if (!culprit)
                                culprit = xstrdup(errs[i].db);
                        if (x->error) {
                                char *joined = xasprintf("%s; %s", x->error, msg);
                                free(x->error);
                                x->error = joined;
                        } else
                                x->error = TAKE_PTR(msg);
                } else if (!table_wide)
                        table_wide = TAKE_PTR(msg);
        }
        qsort_safe(o->v, o->n, sizeof(outcome), outcome_cmp);
        if (o->n == 0)
                results_add(res, "firewall", "table inet " NFT_TABLE, RES_FAILED, "%s",
                            table_wide ? table_wide : "the kernel refused the batch");
        for (size_t i = 0; i < o->n; i++) {
                const outcome *x = &o->v[i];
                if (x->error)
                        results_add(res, "firewall", x->name, RES_FAILED, "%s", x->error);
                else if (table_wide)
                        results_add(res, "firewall", x->name, RES_FAILED, "%s", table_wide);
                else
                        results_add(res, "firewall", x->name, RES_FAILED,
                                    "not applied: the kernel refused the batch because of '%s'", strempty(culprit));
        }
}

/* One observe → compare → batch. -ERESTART: the ruleset changed under us; plan again. */
static int reconcile_once(const plan_ctx *ctx, results *res) {
        const fw_db *dbs = ctx->dbs;
        const fw_cache *c = ctx->cache;
        size_t n = ctx->n;
        _cleanup_(nft_live_done) nft_live l = {};
        _cleanup_(nft_batch_freep) nft_batch *b = NULL;
        _cleanup_free_ char *err = NULL;
        _cleanup_free_ const fw_ranges **cur = NULL; /* [db * FW_SET_MAX + set]: what each set holds now */
        _cleanup_(outcomes_done) outcomes o = {};
        _cleanup_(strbuf_done) strbuf problems = {};
        nft_error *errs = NULL;
        size_t n_errs = 0;
        uint8_t nonce[NFT_NONCE_SIZE];
        bool known, trusted;
        int r;

        r = nft_observe(ctx->sock, &l, &err);
        if (r < 0) {
                fail_all(res, dbs, n, "%s", err);
                return r;
        }
        /* The cache describes this very table (nonce), and nothing has committed since (generation). */
        known = c->valid && l.table && l.has_nonce && memcmp(l.nonce, c->nonce, NFT_NONCE_SIZE) == 0;
        trusted = known && l.genid == c->genid;

        structure_problems(&l, dbs, n, c, known, &problems);

        cur = xcalloc(n * FW_SET_MAX + 1, sizeof(fw_ranges *));
        for (size_t i = 0; i < n && problems.len == 0; i++) {
                const fw_db *cdb = trusted ? find_db(c->dbs, c->n, dbs[i].name) : NULL;
                if (!live_has_db(&l, dbs[i].name))
                        continue;
                for (fw_set f = FW_SET_H4; f < FW_SET_MAX; f++) {
                        nft_live_set *s = live_set(&l, dbs[i].name, f);
                        if (cdb) {
                                cur[i * FW_SET_MAX + f] = &cdb->allow[f];
                                continue;
                        }
                        r = nft_observe_elements(ctx->sock, l.genid, s, &err);
                        if (r == -EINTR)
                                return -ERESTART;
                        if (r < 0) {
                                fail_all(res, dbs, n, "%s", err);
                                return r;
                        }
                        if (s->elements_bad)
                                problem(&problems, "set '%s' holds elements the agent never makes", s->name);
                        cur[i * FW_SET_MAX + f] = &s->elements;
                }
        }

        b = nft_batch_new(l.genid);
        if (problems.len > 0) {
                /* Drift: rebuild the whole table in one batch, so there is never a moment without it. */
                if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce)) {
                        fail_all(res, dbs, n, "cannot get random bytes: %s", strerror(errno));
                        return -errno;
                }
                if (l.table)
                        nft_batch_del_table(b);
                nft_batch_add_table(b, nonce);
                nft_batch_add_chain(b);
                for (size_t i = 0; i < n; i++) {
                        nft_batch_add_sets(b, &dbs[i]);
                        nft_batch_add_rules(b, &dbs[i]);
                        if (live_has_db(&l, dbs[i].name) || (c->valid && find_db(c->dbs, c->n, dbs[i].name)))
                                outcome_set(&o, dbs[i].name, RES_CHANGED, xasprintf("restored: %s", problems.s));
                        else
                                outcome_set(&o, dbs[i].name, RES_CREATED, xasprintf("%zu addresses", count_addresses(&dbs[i])));
                }
                for (size_t i = 0; i < l.n_sets; i++)
                        if (l.sets[i].db && !find_db(dbs, n, l.sets[i].db))
                                outcome_set(&o, l.sets[i].db, RES_REMOVED, NULL);
        } else {
                memcpy_safe(nonce, l.nonce, sizeof(nonce));
                if (!l.table && n > 0) {
                        /* First apply: the table comes with its own nonce. */
                        if (getrandom(nonce, sizeof(nonce), 0) != sizeof(nonce)) {
                                fail_all(res, dbs, n, "cannot get random bytes: %s", strerror(errno));
                                return -errno;
                        }
                        nft_batch_add_table(b, nonce);
                        nft_batch_add_chain(b);
                }
                /* Databases no longer in the document: rules first (they reference the sets). */
                for (size_t i = 0; i < l.n_rules; i++)
                        if (l.rules[i].db && !find_db(dbs, n, l.rules[i].db)) {
                                nft_batch_del_rule(b, l.rules[i].db, l.rules[i].handle);
                                outcome_set(&o, l.rules[i].db, RES_REMOVED, NULL);
                        }
                for (size_t i = 0; i < l.n_sets; i++)
                        if (l.sets[i].db && !find_db(dbs, n, l.sets[i].db)) {
                                nft_batch_del_set(b, l.sets[i].db, l.sets[i].set);
                                outcome_set(&o, l.sets[i].db, RES_REMOVED, NULL);
                        }
                for (size_t i = 0; i < n; i++) {
                        const fw_db *db = &dbs[i];
                        const fw_db *cdb = known && !trusted ? find_db(c->dbs, c->n, db->name) : NULL;
                        _cleanup_(strbuf_done) strbuf detail = {}, list = {};
                        size_t added = 0, removed = 0, listed = 0;
                        bool edited = false;
                        uint16_t port;

                        if (!live_has_db(&l, db->name)) {
                                nft_batch_add_sets(b, db);
                                nft_batch_add_rules(b, db);
                                outcome_set(&o, db->name, RES_CREATED, xasprintf("%zu addresses", count_addresses(db)));
                                continue;
                        }
                        port = live_rules_port(&l, db->name);
                        if (port != db->port) {
                                for (size_t j = 0; j < l.n_rules; j++)
                                        if (streq_ptr(l.rules[j].db, db->name))
                                                nft_batch_del_rule(b, db->name, l.rules[j].handle);
                                strbuf_printf(&detail, "port %u → %u", port, db->port);
                        }
                        for (fw_set f = FW_SET_H4; f < FW_SET_MAX; f++) {
                                const fw_ranges *now = cur[i * FW_SET_MAX + f];
                                _cleanup_(fw_ranges_done) fw_ranges del = {}, add = {};
                                fw_ranges_diff(now, &db->allow[f], &del, &add);
                                if (del.n)
                                        nft_batch_elements(b, db->name, f, &del, false);
                                if (add.n)
                                        nft_batch_elements(b, db->name, f, &add, true);
                                /* Ranges in both lists give the same prefixes on both sides:
                                 * counting over the changed ones alone gives the same answer. */
                                if (del.n || add.n)
                                        prefix_changes(fw_set_family(f), &del, &add, &added, &removed, &list, &listed);
                                /* We know what we committed: a difference is someone else's edit. */
                                if (cdb && !fw_ranges_equal(now, &cdb->allow[f]))
                                        edited = true;
                        }
                        if (port != db->port)
                                nft_batch_add_rules(b, db);
                        if (added || removed) {
                                if (detail.len)
                                        strbuf_append(&detail, "; ");
                                strbuf_printf(&detail, "%s+%zu -%zu addresses%s%s%s", edited ? "restored: addresses edited outside the agent: " : "",
                                              added, removed, list.len ? " (" : "", list.len ? list.s : "",
                                              list.len ? (listed > LIST_MAX ? " …)" : ")") : "");
                        }
                        if (detail.len)
                                outcome_set(&o, db->name, RES_CHANGED, strbuf_steal(&detail));
                        else
                                outcome_set(&o, db->name, RES_UNCHANGED, NULL);
                }
        }

        if (nft_batch_end(b) == 0) {
                /* Nothing to send. Remember what was verified, so the next apply can skip the dump. */
                if (l.table && l.has_nonce && !trusted)
                        cache_save(ctx->cfg, l.nonce, l.genid, dbs, n);
                else if (!l.table)
                        cache_forget(ctx->cfg);
                outcomes_flush(&o, res);
                return 0;
        }
        r = nft_send(ctx->sock, b, &errs, &n_errs);
        if (r == -EIO) {
                for (size_t i = 0; i < n_errs; i++)
                        if (errs[i].error == ERESTART) { /* the generation moved: someone committed */
                                nft_errors_free(errs, n_errs);
                                return -ERESTART;
                        }
                for (size_t i = 0; i < n; i++)
                        (void) outcome_get(&o, dbs[i].name);
                map_errors(&o, errs, n_errs, ctx->doc, res);
                nft_errors_free(errs, n_errs);
                return -EIO;
        }
        if (r < 0) {
                fail_all(res, dbs, n, "cannot send the batch to the kernel: %s", strerror(-r));
                return r;
        }
        cache_save(ctx->cfg, nonce, nft_genid_next(l.genid), dbs, n);
        outcomes_flush(&o, res);
        return 0;
}

int firewall_reconcile_on(nft_socket *sock, const agent_config *cfg, const doc_document *d, results *res) {
        _cleanup_free_ char *err = NULL;
        _cleanup_(cache_done) fw_cache cache = {};
        fw_db *dbs = NULL;
        const char *bad = NULL;
        size_t n = 0;
        int r;

        r = firewall_desired(d, &dbs, &n, &err, &bad);
        if (r < 0) {
                for (size_t i = 0; i < d->n_databases; i++)
                        if (streq(d->databases[i].name, bad))
                                results_add(res, "firewall", bad, RES_FAILED, "%s", err);
                        else
                                results_add(res, "firewall", d->databases[i].name, RES_FAILED,
                                            "not applied: the allow-list of '%s' is invalid", bad);
                return r;
        }
        cache_load(cfg, &cache);
        for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
                plan_ctx ctx = { .cfg = cfg, .doc = d, .dbs = dbs, .n = n, .cache = &cache, .sock = sock };
                r = reconcile_once(&ctx, res);
                if (r != -ERESTART)
                        break;
        }
        if (r == -ERESTART)
                fail_all(res, dbs, n, "the ruleset kept changing while the firewall was being applied");
        firewall_dbs_free(dbs, n);
        return r;
}

int firewall_reconcile(const agent_config *cfg, const doc_document *d, results *res) {
        _cleanup_(nft_socket_closep) nft_socket *sock = NULL;
        int r = nft_socket_open(&sock);

        if (r < 0) {
                if (d->n_databases == 0)
                        results_add(res, "firewall", "table inet " NFT_TABLE, RES_FAILED,
                                    "cannot open a netlink socket to nf_tables: %s", strerror(-r));
                for (size_t i = 0; i < d->n_databases; i++)
                        results_add(res, "firewall", d->databases[i].name, RES_FAILED,
                                    "cannot open a netlink socket to nf_tables: %s", strerror(-r));
                return r;
        }
        return firewall_reconcile_on(sock, cfg, d, res);
}
