/* Database placement: keep recorded members, then best-fit new members per environment.
 * Free hosts are found with a "next free" forest over hosts sorted by CPUs, so placing
 * thousands of databases stays O(n log n). */
#include "placement.h"

char *database_key(arena *a, const m_database *d) {
        return arena_printf(a, "%s/%s/%s/%s/%s", d->id.organization, d->id.organizational_unit, d->id.environment,
                            d->id.project, d->name);
}

typedef struct env_pool {
        const char *environment;
        long *hosts;          /* inventory indices sorted by (cpus, name) */
        long *next;           /* union-find: next candidate position at or after i */
        size_t n;
} env_pool;

static const inventory *sort_inv;

static int pool_host_cmp(const void *a, const void *b) {
        const inv_host *x = &sort_inv->hosts[*(const long *) a], *y = &sort_inv->hosts[*(const long *) b];
        int r;
        if (x->environment != y->environment) {
                r = strcmp(x->environment, y->environment);
                if (r)
                        return r;
        }
        if (x->cpus != y->cpus)
                return x->cpus < y->cpus ? -1 : 1;
        return strcmp(x->name, y->name);
}

static long find_next(long *next, long i) {
        long root = i;
        while (next[root] != root)
                root = next[root];
        while (next[i] != root) {
                long t = next[i];
                next[i] = root;
                i = t;
        }
        return root;
}

static void take(env_pool *p, size_t pos) {
        p->next[pos] = (long) pos + 1;
}

static env_pool *pool_for(env_pool *pools, size_t n, const char *env) {
        size_t lo = 0, hi = n;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int r = strcmp(pools[mid].environment, env);
                if (r == 0)
                        return &pools[mid];
                if (r < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

static int stored_cmp(const void *key, const void *elem) {
        return strcmp(key, ((const stored_placement *) elem)->database);
}

void place_databases(const manifest_set *s, const inventory *inv, const stored_placement *prev, size_t n_prev,
                     arena *a, placement *ret) {
        _cleanup_free_ long *order = NULL, *pos_of = NULL;
        _cleanup_free_ bool *used = xcalloc(inv->n + 1, sizeof(bool));
        _cleanup_free_ env_pool *pools = NULL;
        _cleanup_free_ long *next_all = NULL;
        size_t n_order = 0, n_pools = 0;

        /* Pools: database hosts with an environment label, grouped by environment. */
        order = xmalloc((inv->n + 1) * sizeof(long));
        pos_of = xmalloc((inv->n + 1) * sizeof(long));
        for (size_t i = 0; i < inv->n; i++) {
                pos_of[i] = -1;
                if (inv->hosts[i].role == DOC_HOST_DATABASE && inv->hosts[i].environment)
                        order[n_order++] = (long) i;
        }
        sort_inv = inv;
        qsort_safe(order, n_order, sizeof(long), pool_host_cmp);
        pools = xcalloc(n_order + 1, sizeof(env_pool));
        next_all = xmalloc((n_order + 1 + n_order) * sizeof(long));
        for (size_t i = 0, base = 0; i < n_order; i++) {
                const char *env = inv->hosts[order[i]].environment;
                if (n_pools == 0 || !streq(pools[n_pools - 1].environment, env)) {
                        /* Each pool's "next" array has one sentinel slot past its end. */
                        pools[n_pools++] = (env_pool) { .environment = env, .hosts = &order[i], .next = &next_all[base + i] };
                        base++;
                }
                env_pool *p = &pools[n_pools - 1];
                pos_of[order[i]] = (long) p->n;
                p->next[p->n] = (long) p->n;
                p->n++;
                p->next[p->n] = (long) p->n;
        }

        /* Pass 1: recorded members stay where their data is, as long as the host exists. */
        for (size_t i = 0; i < s->n_dbs; i++) {
                const m_database *d = &s->dbs[i];
                placement *pl = &ret[i];
                const char *key = database_key(a, d);
                const stored_placement *sp = n_prev ? bsearch(key, prev, n_prev, sizeof(*prev), stored_cmp) : NULL;

                *pl = (placement) { .members = arena_alloc(a, (size_t) d->cluster_size * sizeof(long)) };
                if (!sp)
                        continue;
                while (sp > prev && streq(sp[-1].database, key))
                        sp--;
                for (; sp < prev + n_prev && streq(sp->database, key); sp++) {
                        long h = inventory_find(inv, sp->host);
                        if (h < 0 || inv->hosts[h].role != DOC_HOST_DATABASE) {
                                pl->pending = arena_printf(a,
                                                           "member %d was placed on host '%s', which is %s; its data "
                                                           "is there: bring the host back (it is not moved automatically)",
                                                           sp->member, sp->host,
                                                           h < 0 ? "no longer in the inventory" : "no longer a database host");
                                continue;
                        }
                        if (used[h] || (size_t) sp->member >= (size_t) d->cluster_size) {
                                pl->changed = true; /* shrunk: members past clusterSize are released */
                                continue;
                        }
                        used[h] = true;
                        pl->members[pl->n_members++] = h;
                        if (pos_of[h] >= 0) {
                                env_pool *p = pool_for(pools, n_pools, inv->hosts[h].environment);
                                if (p)
                                        take(p, (size_t) pos_of[h]);
                        }
                }
        }

        /* Pass 2: new members, best fit (fewest CPUs that suffice, then name) in the environment. */
        for (size_t i = 0; i < s->n_dbs; i++) {
                const m_database *d = &s->dbs[i];
                placement *pl = &ret[i];
                env_pool *p;

                if (pl->pending || pl->n_members >= (size_t) d->cluster_size)
                        continue;
                p = pool_for(pools, n_pools, d->id.environment);
                while (pl->n_members < (size_t) d->cluster_size) {
                        size_t lo = 0, hi = p ? p->n : 0;
                        long pos;

                        while (lo < hi) {
                                size_t mid = (lo + hi) / 2;
                                if (inv->hosts[p->hosts[mid]].cpus < d->cpu_count)
                                        lo = mid + 1;
                                else
                                        hi = mid;
                        }
                        pos = p ? find_next(p->next, (long) lo) : 0;
                        if (!p || (size_t) pos >= p->n) {
                                pl->pending = arena_printf(
                                        a, "needs %d database host%s in environment '%s' with at least %d CPUs; %zu free",
                                        d->cluster_size, d->cluster_size > 1 ? "s" : "", d->id.environment,
                                        d->cpu_count, pl->n_members);
                                break;
                        }
                        take(p, (size_t) pos);
                        used[p->hosts[pos]] = true;
                        pl->members[pl->n_members++] = p->hosts[pos];
                        pl->changed = true;
                }
        }
}
