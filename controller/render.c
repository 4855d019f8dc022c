/* Builds per-host desired state: databases with roles and firewall allow-lists on database
 * hosts, applications with the variables to inject on application hosts. */
#include "render.h"

typedef struct grant_ref {
        const m_application *app;
        const m_grant *grant;
} grant_ref;

/* An application's client addresses, computed once however many databases it is granted. */
typedef struct client_list {
        char **v;             /* CIDR strings in r->arena, sorted, unique */
        size_t n;
        bool done;
} client_list;

/* What render_documents() works out once and looks up many times. */
typedef struct render_ctx {
        render_result *r;
        const inventory *inv;
        long *target;         /* inventory index of each application's target hosts, -1 when absent */
        size_t *first_target; /* apps[i]'s targets start at target[first_target[i]] */
        char ***cidrs;        /* inventory host → its addresses as CIDRs, made on first use */
        client_list *clients; /* per application */
        char ***db_addresses; /* per database: member_addresses(), made on first use */
} render_ctx;

static void add_pending(render_result *r, const char *kind, const char *name, const identity *id, mloc loc,
                        const char *reason) {
        if (r->n_pending == r->pending_alloc) {
                r->pending_alloc = r->pending_alloc ? r->pending_alloc * 2 : 16;
                r->pending = xrealloc(r->pending, r->pending_alloc * sizeof(pending_item));
        }
        r->pending[r->n_pending++] = (pending_item) { kind, name, *id, loc, reason };
}

/* The documents are read-only views (see render.h): their strings are the model's and the
 * inventory's, not copies. doc_document's fields are not const only because decoded documents
 * own theirs. */
static char *borrow(const char *s) {
        return (char *) s;
}

static doc_identity borrow_identity(const identity *id) {
        return (doc_identity) { borrow(id->organization), borrow(id->organizational_unit), borrow(id->environment),
                                borrow(id->project) };
}

/* n elements from the arena; NULL for none, as a document without databases or applications has. */
static void *alloc_array(render_result *r, size_t n, size_t size) {
        return n > 0 ? arena_alloc(&r->arena, n * size) : NULL;
}

static int str_cmp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sort and de-duplicate an array of strings in place (the strings are the arena's: nothing to free). */
static size_t sort_unique(char **v, size_t n) {
        size_t w = 0;
        if (n == 0)
                return 0;
        qsort_safe(v, n, sizeof(char *), str_cmp);
        for (size_t i = 0; i < n; i++)
                if (w == 0 || !streq(v[w - 1], v[i]))
                        v[w++] = v[i];
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

static bool is_app_host(const inventory *inv, long h) {
        return h >= 0 && inv->hosts[h].role == DOC_HOST_APPLICATION;
}

static char **host_cidrs(render_ctx *x, long h) {
        const inv_host *host = &x->inv->hosts[h];

        if (!x->cidrs[h]) {
                x->cidrs[h] = arena_alloc(&x->r->arena, (host->n_addresses + 1) * sizeof(char *));
                for (size_t j = 0; j < host->n_addresses; j++) {
                        char cidr[64];
                        address_to_cidr(host->addresses[j], cidr, sizeof(cidr));
                        x->cidrs[h][j] = arena_strdup(&x->r->arena, cidr);
                }
        }
        return x->cidrs[h];
}

/* Client addresses of application i: every address of every target host that is an
 * application host in the inventory. */
static const client_list *app_clients(render_ctx *x, const manifest_set *s, size_t i) {
        client_list *cl = &x->clients[i];
        const long *target = x->target + x->first_target[i];
        size_t n = 0;

        if (cl->done)
                return cl;
        for (size_t k = 0; k < s->apps[i].n_hosts; k++)
                if (is_app_host(x->inv, target[k]))
                        n += x->inv->hosts[target[k]].n_addresses;
        cl->v = arena_alloc(&x->r->arena, (n + 1) * sizeof(char *));
        for (size_t k = 0; k < s->apps[i].n_hosts; k++) {
                char **cidrs;

                if (!is_app_host(x->inv, target[k]))
                        continue;
                cidrs = host_cidrs(x, target[k]);
                for (size_t j = 0; j < x->inv->hosts[target[k]].n_addresses; j++)
                        cl->v[cl->n++] = cidrs[j];
        }
        cl->n = sort_unique(cl->v, cl->n);
        cl->done = true;
        return cl;
}

static int member_cmp(const void *a, const void *b) {
        return strcmp(((const doc_member *) a)->host, ((const doc_member *) b)->host);
}

/* tmpl (shared roles, no allow-list yet) onto host document d: the roles' clients and, with
 * replication, the other members' addresses as the allow-list. Each member's roles exist there by
 * replication, so every member admits the same clients. */
static void render_database_on(render_ctx *x, doc_document *d, const doc_database *tmpl, size_t n_allow,
                               doc_replication *rep, const placement *p, long self) {
        doc_database *db = &d->databases[d->n_databases++];

        *db = *tmpl;
        /* Each member its own roles: their verifiers are malloc'd and replaced per document. */
        if (p) {
                db->roles = alloc_array(x->r, tmpl->n_roles, sizeof(doc_role));
                if (tmpl->n_roles > 0)
                        memcpy(db->roles, tmpl->roles, tmpl->n_roles * sizeof(doc_role));
        }
        for (size_t k = 0; p && k < p->n_members; k++)
                if (p->members[k] != self)
                        n_allow += x->inv->hosts[p->members[k]].n_addresses;
        db->allow = alloc_array(x->r, n_allow, sizeof(char *));
        for (size_t k = 0; k < db->n_roles; k++)
                for (size_t c = 0; c < db->roles[k].n_clients; c++)
                        db->allow[db->n_allow++] = db->roles[k].clients[c];
        for (size_t k = 0; p && k < p->n_members; k++) {
                char **cidrs;

                if (p->members[k] == self)
                        continue;
                cidrs = host_cidrs(x, p->members[k]);
                for (size_t j = 0; j < x->inv->hosts[p->members[k]].n_addresses; j++)
                        db->allow[db->n_allow++] = cidrs[j];
        }
        db->n_allow = sort_unique(db->allow, db->n_allow);
        db->replication = rep;
}

/* clusterSize > 1: members[0] is the primary, the others hot standbys. The member list is shared;
 * each member gets its own replication block (its role; the verifier or the password is attached
 * later, compile_attach_verifiers() and compile_attach_passwords()). */
static void render_replicated(render_ctx *x, const doc_database *tmpl, size_t n_allow, const placement *p) {
        const inventory *inv = x->inv;
        doc_member *members = arena_alloc(&x->r->arena, p->n_members * sizeof(doc_member));
        const char *primary = inv->hosts[p->members[0]].name;

        for (size_t k = 0; k < p->n_members; k++) {
                const inv_host *h = &inv->hosts[p->members[k]];
                members[k] = (doc_member) { borrow(h->name), borrow(h->addresses[0]) };
        }
        qsort_safe(members, p->n_members, sizeof(doc_member), member_cmp);
        for (size_t k = 0; k < p->n_members; k++) {
                doc_replication *rep = arena_alloc(&x->r->arena, sizeof(doc_replication));
                doc_database db = *tmpl;

                *rep = (doc_replication) {
                        .role = k == 0 ? DOC_REPLICA_PRIMARY : DOC_REPLICA_STANDBY,
                        .primary = borrow(primary),
                        .members = members,
                        .n_members = p->n_members,
                };
                /* Backups from the primary only. pgBackRest could take them from a standby
                 * (backup-standby), but that still needs the primary reachable for the start and
                 * stop calls, and two members each running the schedule into one repository
                 * would race: one writer per repository, and it is the primary. */
                if (k > 0)
                        db.backup.enabled = false;
                render_database_on(x, x->r->docs[p->members[k]], &db, n_allow, rep, p, p->members[k]);
        }
}

/* Every member's first address, the primary's first, then the standbys' by host name
 * (doc_env.db_addresses); NULL with one member. */
static char **member_addresses(render_ctx *x, const placement *p, size_t i) {
        char **v = x->db_addresses[i];

        if (v || p->n_members < 2)
                return v;
        v = arena_alloc(&x->r->arena, p->n_members * sizeof(char *));
        for (size_t k = 1; k < p->n_members; k++)
                v[k] = borrow(x->inv->hosts[p->members[k]].name);
        qsort_safe(v + 1, p->n_members - 1, sizeof(char *), str_cmp);
        /* By name, then the names replaced by their hosts' addresses. */
        for (size_t k = 1; k < p->n_members; k++)
                v[k] = borrow(x->inv->hosts[inventory_find(x->inv, v[k])].addresses[0]);
        v[0] = borrow(x->inv->hosts[p->members[0]].addresses[0]);
        return x->db_addresses[i] = v;
}

void render_documents(const manifest_set *s, const inventory *inv, const placement *pl, const char *domain,
                      render_result *r) {
        _cleanup_free_ size_t *grant_start = xcalloc(s->n_dbs + 2, sizeof(size_t));
        _cleanup_free_ size_t *n_dbs_on = xcalloc(inv->n + 1, sizeof(size_t)), *n_apps_on = xcalloc(inv->n + 1, sizeof(size_t));
        _cleanup_free_ char **hostnames = xcalloc(s->n_dbs + 1, sizeof(char *));
        _cleanup_free_ client_list *clients = xcalloc(s->n_apps + 1, sizeof(client_list));
        _cleanup_free_ size_t *first_target = xmalloc((s->n_apps + 1) * sizeof(size_t));
        _cleanup_free_ char ***cidrs = xcalloc(inv->n + 1, sizeof(char **));
        _cleanup_free_ char ***db_addresses = xcalloc(s->n_dbs + 1, sizeof(char **));
        _cleanup_free_ long *target = NULL;
        _cleanup_free_ grant_ref *grants = NULL;
        _cleanup_free_ size_t *fill = NULL;
        size_t n_grants = 0, n_targets = 0;
        render_ctx ctx = { .r = r, .inv = inv, .first_target = first_target, .cidrs = cidrs, .clients = clients,
                           .db_addresses = db_addresses };

        *r = (render_result) { .docs = xcalloc(inv->n + 1, sizeof(doc_document *)), .n_docs = inv->n };
        arena_init(&r->arena);

        /* Every target host is looked up once. */
        for (size_t i = 0; i < s->n_apps; i++) {
                first_target[i] = n_targets;
                n_targets += s->apps[i].n_hosts;
        }
        ctx.target = target = xmalloc((n_targets + 1) * sizeof(long));
        for (size_t i = 0; i < s->n_apps; i++)
                for (size_t k = 0; k < s->apps[i].n_hosts; k++)
                        target[first_target[i] + k] = inventory_find(inv, s->apps[i].hosts[k]);

        /* Each database's host name once (clients' variables repeat it), and how many databases and
         * applications each host gets, so that the documents' arrays are allocated once. */
        for (size_t i = 0; i < s->n_dbs; i++) {
                const m_database *m = &s->dbs[i];

                if (pl[i].n_members == 0)
                        continue;
                hostnames[i] = arena_concat(&r->arena, m->name, ".", m->id.project, ".", m->id.environment, ".",
                                            m->id.organizational_unit, ".", m->id.organization, ".", domain, NULL);
                if (strlen(hostnames[i]) <= 253)
                        for (size_t k = 0; k < pl[i].n_members; k++)
                                n_dbs_on[pl[i].members[k]]++;
        }
        for (size_t i = 0; i < s->n_apps; i++)
                for (size_t k = 0; k < s->apps[i].n_hosts; k++)
                        if (is_app_host(inv, target[first_target[i] + k]))
                                n_apps_on[target[first_target[i] + k]]++;
        for (size_t h = 0; h < inv->n; h++) {
                doc_document *d = arena_alloc(&r->arena, sizeof(doc_document));
                d->host = borrow(inv->hosts[h].name);
                d->role = inv->hosts[h].role;
                d->commit = xstrdup(""); /* malloc'd: the caller replaces it (render_result_done frees it) */
                d->databases = alloc_array(r, n_dbs_on[h], sizeof(doc_database));
                d->apps = alloc_array(r, n_apps_on[h], sizeof(doc_app));
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

        /* Database hosts: every member of a database gets it, members[0] as the primary. */
        for (size_t i = 0; i < s->n_dbs; i++) {
                const m_database *m = &s->dbs[i];
                doc_database db;
                size_t n_allow = 0;

                if (pl[i].pending)
                        add_pending(r, "Database", m->name, &m->id, m->name_loc, pl[i].pending);
                if (pl[i].n_members == 0)
                        continue;
                if (strlen(hostnames[i]) > 253) {
                        add_pending(r, "Database", m->name, &m->id, m->name_loc,
                                    arena_printf(&r->arena, "its host name would be %zu characters long, over DNS's 253",
                                                 strlen(hostnames[i])));
                        continue;
                }
                db = (doc_database) {
                        .name = borrow(m->name),
                        .identity = borrow_identity(&m->id),
                        .hostname = hostnames[i],
                        .postgres_version = m->postgres_version,
                        .cpu_count = m->cpu_count,
                        .cluster_size = m->cluster_size,
                        .port = DEFAULT_PG_PORT,
                        .backup = { m->backup_enabled, borrow(m->schedule), m->retention_days },
                };
                /* One name for every member: clients verify whichever member they reach with it. */
                db.tls_names = arena_alloc(&r->arena, sizeof(char *));
                db.tls_names[db.n_tls_names++] = db.hostname;

                db.roles = alloc_array(r, grant_start[i + 1] - grant_start[i], sizeof(doc_role));
                for (size_t g = grant_start[i]; g < grant_start[i + 1]; g++) {
                        const m_application *a = grants[g].app;
                        const client_list *cl = app_clients(&ctx, s, (size_t) (a - s->apps));
                        doc_role *role = &db.roles[db.n_roles++];

                        role->name = role->application = borrow(a->name);
                        role->access = grants[g].grant->read_only ? DOC_ACCESS_READ_ONLY : DOC_ACCESS_READ_WRITE;
                        /* Shared by the roles of all databases the application is granted: read only. */
                        role->clients = cl->v;
                        role->n_clients = cl->n;
                        n_allow += cl->n;
                }
                qsort_safe(db.roles, db.n_roles, sizeof(doc_role), role_cmp);
                if (pl[i].n_members == 1) {
                        render_database_on(&ctx, r->docs[pl[i].members[0]], &db, n_allow, NULL, NULL, 0);
                        continue;
                }
                render_replicated(&ctx, &db, n_allow, &pl[i]);
        }

        /* Application hosts. */
        for (size_t i = 0; i < s->n_apps; i++) {
                const m_application *a = &s->apps[i];
                size_t n_env = 0;

                for (size_t j = 0; j < a->n_grants; j++) {
                        const m_grant *g = &a->grants[j];
                        n_env += g->db >= 0 && pl[g->db].n_members > 0;
                        if (g->db >= 0 && pl[g->db].n_members == 0)
                                add_pending(r, "Application", a->name, &a->id, g->name_loc,
                                            arena_printf(&r->arena, "database '%s' is not placed yet; '%s' is injected once it is",
                                                         g->database, g->env_var));
                }
                for (size_t k = 0; k < a->n_hosts; k++) {
                        long h = target[first_target[i] + k];
                        doc_document *d;
                        doc_app *app;

                        if (!is_app_host(inv, h)) {
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
                        app = &d->apps[d->n_apps++];
                        *app = (doc_app) { .name = borrow(a->name), .identity = borrow_identity(&a->id),
                                           .unit = borrow(a->unit) };
                        app->env = alloc_array(r, n_env, sizeof(doc_env));
                        for (size_t j = 0; j < a->n_grants; j++) {
                                const m_grant *g = &a->grants[j];
                                const inv_host *dbh;
                                doc_env *e;

                                if (g->db < 0 || pl[g->db].n_members == 0)
                                        continue;
                                dbh = &inv->hosts[pl[g->db].members[0]];
                                e = &app->env[app->n_env++];
                                e->name = borrow(g->env_var);
                                e->database = borrow(g->database);
                                e->db_hostname = hostnames[g->db];
                                e->db_address = borrow(dbh->addresses[0]);
                                e->db_addresses = member_addresses(&ctx, &pl[g->db], (size_t) g->db);
                                e->n_db_addresses = e->db_addresses ? pl[g->db].n_members : 0;
                                e->port = DEFAULT_PG_PORT;
                                e->role = app->name;
                                e->access = g->read_only ? DOC_ACCESS_READ_ONLY : DOC_ACCESS_READ_WRITE;
                        }
                        qsort_safe(app->env, app->n_env, sizeof(doc_env), env_cmp);
                next_host:;
                }
        }

        for (size_t h = 0; h < inv->n; h++) {
                doc_document *d = r->docs[h];
                /* Databases arrive in identity order; the document wants name order. Names are unique
                 * per host because a host serves one database. */
                qsort_safe(d->apps, d->n_apps, sizeof(doc_app), app_cmp);
        }
}

void render_result_done(render_result *r) {
        /* The documents are the arena's, but for the fields callers replace with malloc'd strings:
         * the commit (render), the roles' verifiers (compile_attach_verifiers()), the databases'
         * certificates and backup passphrases, the replication verifiers and passwords and the
         * variables' passwords (compile_attach_certificates/backup_passphrases/passwords()). */
        for (size_t i = 0; i < r->n_docs; i++) {
                doc_document *d = r->docs[i];

                free(d->commit);
                for (size_t k = 0; k < d->n_databases; k++) {
                        free(d->databases[k].tls_certificate);
                        erase_and_free(d->databases[k].backup.passphrase);
                        if (d->databases[k].replication) {
                                free(d->databases[k].replication->verifier);
                                erase_and_free(d->databases[k].replication->password);
                        }
                        for (size_t j = 0; j < d->databases[k].n_roles; j++)
                                free(d->databases[k].roles[j].scram_verifier);
                }
                for (size_t k = 0; k < d->n_apps; k++)
                        for (size_t j = 0; j < d->apps[k].n_env; j++)
                                erase_and_free(d->apps[k].env[j].password);
        }
        free(r->docs);
        free(r->pending);
        arena_done(&r->arena);
        *r = (render_result) {};
}
