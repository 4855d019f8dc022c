/* Builds per-host desired state: databases with roles and firewall allow-lists on database
 * hosts, applications with the variables to inject on application hosts. */
#include "render.h"

typedef struct grant_ref {
        const m_application *app;
        const m_grant *grant;
} grant_ref;

static void add_pending(render_result *r, const char *kind, const char *name, const identity *id, mloc loc,
                        const char *reason) {
        if (r->n_pending == r->pending_alloc) {
                r->pending_alloc = r->pending_alloc ? r->pending_alloc * 2 : 16;
                r->pending = xrealloc(r->pending, r->pending_alloc * sizeof(pending_item));
        }
        r->pending[r->n_pending++] = (pending_item) { kind, name, *id, loc, reason };
}

char *database_hostname(const m_database *d, const char *domain) {
        return xasprintf("%s.%s.%s.%s.%s.%s", d->name, d->id.project, d->id.environment, d->id.organizational_unit,
                         d->id.organization, domain);
}

static void copy_identity(doc_identity *to, const identity *from) {
        to->organization = xstrdup(from->organization);
        to->organizational_unit = xstrdup(from->organizational_unit);
        to->environment = xstrdup(from->environment);
        to->project = xstrdup(from->project);
}

static int str_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sort and de-duplicate an array of malloc'd strings in place. */
static size_t sort_unique(char **v, size_t n) {
        size_t w = 0;
        if (n == 0)
                return 0;
        qsort(v, n, sizeof(char *), str_cmp);
        for (size_t i = 0; i < n; i++) {
                if (w > 0 && streq(v[w - 1], v[i])) {
                        free(v[i]);
                        continue;
                }
                v[w++] = v[i];
        }
        return w;
}

static int role_cmp(const void *a, const void *b) {
        return strcmp(((const doc_role *) a)->name, ((const doc_role *) b)->name);
}
static int app_cmp(const void *a, const void *b) {
        return strcmp(((const doc_app *) a)->name, ((const doc_app *) b)->name);
}
static int env_cmp(const void *a, const void *b) {
        return strcmp(((const doc_env *) a)->name, ((const doc_env *) b)->name);
}

/* Client addresses of an application: every address of every target host that is an
 * application host in the inventory. */
static size_t app_clients(const m_application *a, const inventory *inv, char ***ret) {
        char **v = NULL;
        size_t n = 0;

        for (size_t i = 0; i < a->n_hosts; i++) {
                long h = inventory_find(inv, a->hosts[i]);
                if (h < 0 || inv->hosts[h].role != DOC_HOST_APPLICATION)
                        continue;
                v = xrealloc(v, (n + inv->hosts[h].n_addresses) * sizeof(char *));
                for (size_t j = 0; j < inv->hosts[h].n_addresses; j++) {
                        char cidr[64];
                        address_to_cidr(inv->hosts[h].addresses[j], cidr, sizeof(cidr));
                        v[n++] = xstrdup(cidr);
                }
        }
        *ret = v;
        return sort_unique(v, n);
}

void render_documents(const manifest_set *s, const inventory *inv, const placement *pl, const char *domain,
                      render_result *r) {
        _cleanup_free_ size_t *grant_start = xcalloc(s->n_dbs + 2, sizeof(size_t));
        _cleanup_free_ grant_ref *grants = NULL;
        _cleanup_free_ size_t *fill = NULL;
        size_t n_grants = 0;

        *r = (render_result) { .docs = xcalloc(inv->n + 1, sizeof(doc_document *)), .n_docs = inv->n };
        arena_init(&r->arena);
        for (size_t h = 0; h < inv->n; h++) {
                doc_document *d = xcalloc(1, sizeof(doc_document));
                d->host = xstrdup(inv->hosts[h].name);
                d->role = inv->hosts[h].role;
                d->commit = xstrdup("");
                r->docs[h] = d;
        }

        /* Grants grouped by database (counting sort), so each database finds its roles directly. */
        for (size_t i = 0; i < s->n_apps; i++)
                for (size_t j = 0; j < s->apps[i].n_grants; j++)
                        if (s->apps[i].grants[j].db >= 0) {
                                grant_start[s->apps[i].grants[j].db + 1]++;
                                n_grants++;
                        }
        for (size_t i = 0; i < s->n_dbs; i++)
                grant_start[i + 1] += grant_start[i];
        grants = xmalloc((n_grants + 1) * sizeof(grant_ref));
        fill = xmalloc((s->n_dbs + 1) * sizeof(size_t));
        memcpy(fill, grant_start, (s->n_dbs + 1) * sizeof(size_t));
        for (size_t i = 0; i < s->n_apps; i++)
                for (size_t j = 0; j < s->apps[i].n_grants; j++)
                        if (s->apps[i].grants[j].db >= 0)
                                grants[fill[s->apps[i].grants[j].db]++] = (grant_ref) { &s->apps[i], &s->apps[i].grants[j] };

        /* Database hosts. Replicas (clusterSize > 1) have hosts reserved; only the primary is
         * rendered until replication exists. */
        for (size_t i = 0; i < s->n_dbs; i++) {
                const m_database *m = &s->dbs[i];
                _cleanup_free_ char *hostname = NULL;
                doc_document *d;
                doc_database *db;
                size_t n_allow = 0;

                if (pl[i].pending)
                        add_pending(r, "Database", m->name, &m->id, m->name_loc, pl[i].pending);
                if (pl[i].n_members == 0)
                        continue;
                hostname = database_hostname(m, domain);
                if (strlen(hostname) > 253) {
                        add_pending(r, "Database", m->name, &m->id, m->name_loc,
                                    arena_printf(&r->arena, "its host name would be %zu characters long, over DNS's 253",
                                                 strlen(hostname)));
                        continue;
                }
                d = r->docs[pl[i].members[0]];
                d->databases = xrealloc(d->databases, (d->n_databases + 1) * sizeof(doc_database));
                db = &d->databases[d->n_databases++];
                *db = (doc_database) {
                        .name = xstrdup(m->name),
                        .hostname = TAKE_PTR(hostname),
                        .postgres_version = m->postgres_version,
                        .cpu_count = m->cpu_count,
                        .cluster_size = m->cluster_size,
                        .port = DEFAULT_PG_PORT,
                        .backup = { m->backup_enabled, xstrdup(m->schedule), m->retention_days },
                };
                copy_identity(&db->identity, &m->id);
                db->tls_names = xmalloc(sizeof(char *));
                db->tls_names[db->n_tls_names++] = xstrdup(db->hostname);

                db->roles = xcalloc(grant_start[i + 1] - grant_start[i] + 1, sizeof(doc_role));
                for (size_t g = grant_start[i]; g < grant_start[i + 1]; g++) {
                        doc_role *role = &db->roles[db->n_roles++];
                        role->name = xstrdup(grants[g].app->name);
                        role->application = xstrdup(grants[g].app->name);
                        role->access = grants[g].grant->read_only ? DOC_ACCESS_READ_ONLY : DOC_ACCESS_READ_WRITE;
                        role->n_clients = app_clients(grants[g].app, inv, &role->clients);
                        n_allow += role->n_clients;
                }
                qsort(db->roles, db->n_roles, sizeof(doc_role), role_cmp);
                db->allow = xmalloc((n_allow + 1) * sizeof(char *));
                for (size_t k = 0; k < db->n_roles; k++)
                        for (size_t c = 0; c < db->roles[k].n_clients; c++)
                                db->allow[db->n_allow++] = xstrdup(db->roles[k].clients[c]);
                db->n_allow = sort_unique(db->allow, db->n_allow);
        }

        /* Application hosts. */
        for (size_t i = 0; i < s->n_apps; i++) {
                const m_application *a = &s->apps[i];

                for (size_t j = 0; j < a->n_grants; j++) {
                        const m_grant *g = &a->grants[j];
                        if (g->db >= 0 && pl[g->db].n_members == 0)
                                add_pending(r, "Application", a->name, &a->id, g->name_loc,
                                            arena_printf(&r->arena, "database '%s' is not placed yet; '%s' is injected once it is",
                                                         g->database, g->env_var));
                }
                for (size_t k = 0; k < a->n_hosts; k++) {
                        long h = inventory_find(inv, a->hosts[k]);
                        doc_document *d;
                        doc_app *app;

                        if (h < 0 || inv->hosts[h].role != DOC_HOST_APPLICATION) {
                                add_pending(r, "Application", a->name, &a->id, a->host_locs[k],
                                            arena_printf(&r->arena, "target host '%s' is %s", a->hosts[k],
                                                         h < 0 ? "not in the inventory" : "a database host, not an application host"));
                                continue;
                        }
                        d = r->docs[h];
                        for (size_t x = 0; x < d->n_apps; x++)
                                if (streq(d->apps[x].name, a->name) || streq(d->apps[x].unit, a->unit)) {
                                        add_pending(r, "Application", a->name, &a->id, a->host_locs[k],
                                                    arena_printf(&r->arena,
                                                                 "host '%s' already runs an application named '%s' with unit '%s' "
                                                                 "from another project", a->hosts[k], d->apps[x].name, d->apps[x].unit));
                                        goto next_host;
                                }
                        d->apps = xrealloc(d->apps, (d->n_apps + 1) * sizeof(doc_app));
                        app = &d->apps[d->n_apps++];
                        *app = (doc_app) { .name = xstrdup(a->name), .unit = xstrdup(a->unit) };
                        copy_identity(&app->identity, &a->id);
                        app->env = xcalloc(a->n_grants + 1, sizeof(doc_env));
                        for (size_t j = 0; j < a->n_grants; j++) {
                                const m_grant *g = &a->grants[j];
                                const inv_host *dbh;
                                doc_env *e;

                                if (g->db < 0 || pl[g->db].n_members == 0)
                                        continue;
                                dbh = &inv->hosts[pl[g->db].members[0]];
                                e = &app->env[app->n_env++];
                                e->name = xstrdup(g->env_var);
                                e->database = xstrdup(g->database);
                                e->db_hostname = database_hostname(&s->dbs[g->db], domain);
                                e->db_address = xstrdup(dbh->addresses[0]);
                                e->port = DEFAULT_PG_PORT;
                                e->role = xstrdup(a->name);
                                e->access = g->read_only ? DOC_ACCESS_READ_ONLY : DOC_ACCESS_READ_WRITE;
                        }
                        qsort(app->env, app->n_env, sizeof(doc_env), env_cmp);
                next_host:;
                }
        }

        for (size_t h = 0; h < inv->n; h++) {
                doc_document *d = r->docs[h];
                /* Databases arrive in identity order; the document wants name order. Names are unique
                 * per host because a host serves one database. */
                qsort(d->apps, d->n_apps, sizeof(doc_app), app_cmp);
        }
}

void render_result_done(render_result *r) {
        for (size_t i = 0; i < r->n_docs; i++)
                doc_document_free(r->docs[i]);
        free(r->docs);
        free(r->pending);
        arena_done(&r->arena);
        *r = (render_result) {};
}
