/* Diff of two desired-state documents at resource granularity, and its presentation. A host's
 * diff is a list of typed records pointing into the documents, printed from them directly as text
 * or JSON (tens of thousands of json-c objects, each with its own hash table, cost more than the
 * whole diff). The plan keeps no records: each host is diffed again to be printed, which costs
 * less than holding every change of every host in memory. */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>

#include "compile.h"
#include "plan.h"

static const char *const OP_NAMES[] = { [PLAN_CREATE] = "create", [PLAN_CHANGE] = "change", [PLAN_REMOVE] = "remove" };
static const char *const RESOURCE_NAMES[] = {
        [PLAN_DATABASE] = "database", [PLAN_ROLE] = "role",  [PLAN_FIREWALL] = "firewall",
        [PLAN_APPLICATION] = "application", [PLAN_ENV] = "env",
};

static plan_change *add_change(plan_changes *l, plan_op op, plan_resource resource) {
        if (l->n == l->alloc) {
                l->alloc = l->alloc ? l->alloc * 2 : 256;
                l->v = xrealloc(l->v, l->alloc * sizeof(plan_change));
        }
        l->v[l->n] = (plan_change) { .op = op, .resource = resource, .first_field = l->n_fields };
        return &l->v[l->n++];
}

static plan_field *add_field(plan_changes *l, const char *field, plan_value_type type) {
        if (l->n_fields == l->fields_alloc) {
                l->fields_alloc = l->fields_alloc ? l->fields_alloc * 2 : 64;
                l->fields = xrealloc(l->fields, l->fields_alloc * sizeof(plan_field));
        }
        l->fields[l->n_fields] = (plan_field) { .field = field, .type = type };
        return &l->fields[l->n_fields++];
}

static void cmp_int(plan_changes *l, const char *field, int a, int b) {
        if (a != b) {
                plan_field *f = add_field(l, field, PLAN_INT);
                f->from_int = a;
                f->to_int = b;
        }
}

static void cmp_bool(plan_changes *l, const char *field, bool a, bool b) {
        if (a != b) {
                plan_field *f = add_field(l, field, PLAN_BOOL);
                f->from_int = a;
                f->to_int = b;
        }
}

static void cmp_str(plan_changes *l, const char *field, const char *a, const char *b) {
        if (!streq_ptr(a, b)) {
                plan_field *f = add_field(l, field, PLAN_STR);
                f->from = strempty(a);
                f->to = strempty(b);
        }
}

static void str_field(plan_changes *l, const char *field, const char *a, const char *b) {
        plan_field *f = add_field(l, field, PLAN_STR);
        f->from = a;
        f->to = b;
}

/* A changed resource, kept only when some of its fields (added from first on) changed. */
static void add_changed(plan_changes *l, size_t first, plan_change what) {
        if (l->n_fields == first)
                return;
        what.op = PLAN_CHANGE;
        what.first_field = first;
        what.n_fields = l->n_fields - first;
        *add_change(l, PLAN_CHANGE, what.resource) = what;
}

static const doc_database *find_db(const doc_document *d, const char *name) {
        for (size_t i = 0; d && i < d->n_databases; i++)
                if (streq(d->databases[i].name, name))
                        return &d->databases[i];
        return NULL;
}
static const doc_role *find_role(const doc_database *d, const char *name) {
        for (size_t i = 0; d && i < d->n_roles; i++)
                if (streq(d->roles[i].name, name))
                        return &d->roles[i];
        return NULL;
}
static const doc_app *find_app(const doc_document *d, const char *name) {
        for (size_t i = 0; d && i < d->n_apps; i++)
                if (streq(d->apps[i].name, name))
                        return &d->apps[i];
        return NULL;
}
static const doc_env *find_env(const doc_app *a, const char *name) {
        for (size_t i = 0; a && i < a->n_env; i++)
                if (streq(a->env[i].name, name))
                        return &a->env[i];
        return NULL;
}
static bool in_list(char *const *v, size_t n, const char *s) {
        for (size_t i = 0; i < n; i++)
                if (streq(v[i], s))
                        return true;
        return false;
}

static const char *replication_role(const doc_replication *rep) {
        return !rep ? "(none)" : rep->role == DOC_REPLICA_PRIMARY ? "primary" : "standby";
}

/* This host's part in a replicated database. Never the password or the verifier: only that the
 * replication role's password is created. */
static void diff_replication(plan_changes *l, const doc_replication *a, const doc_replication *b) {
        cmp_str(l, "replication.role", replication_role(a), replication_role(b));
        cmp_str(l, "replication.primary", a ? a->primary : "(none)", b ? b->primary : "(none)");
        if (b && b->verifier && streq(b->verifier, COMPILE_VERIFIER_PENDING))
                str_field(l, "replication.password", "(none)", "(new)");
}

static void diff_database(plan_changes *l, const doc_database *a, const doc_database *b) {
        /* a: recorded (may be NULL), b: desired (may be NULL). */
        const doc_database *any = b ? b : a;

        if (!a)
                add_change(l, PLAN_CREATE, PLAN_DATABASE)->db = b;
        else if (!b)
                add_change(l, PLAN_REMOVE, PLAN_DATABASE)->db = a;
        else {
                size_t first = l->n_fields;
                cmp_int(l, "cpuCount", a->cpu_count, b->cpu_count);
                cmp_int(l, "clusterSize", a->cluster_size, b->cluster_size);
                cmp_int(l, "postgresVersion", a->postgres_version, b->postgres_version);
                cmp_int(l, "port", a->port, b->port);
                cmp_str(l, "hostname", a->hostname, b->hostname);
                cmp_bool(l, "backupConfig.enabled", a->backup.enabled, b->backup.enabled);
                cmp_str(l, "backupConfig.schedule", a->backup.schedule, b->backup.schedule);
                cmp_int(l, "backupConfig.retentionDays", a->backup.retention_days, b->backup.retention_days);
                /* Recorded documents never keep the passphrase (compile_stored_body()), and it never
                 * changes once created: only its creation is a change, and never its value. */
                if (b->backup.passphrase && streq(b->backup.passphrase, COMPILE_PASSPHRASE_PENDING))
                        str_field(l, "backupConfig.passphrase", "(none)", "(new)");
                diff_replication(l, a->replication, b->replication);
                if (!streq_ptr(a->tls_certificate, b->tls_certificate))
                        /* Issued by the CA in apply's certificate round; the PEM itself says nothing here. */
                        str_field(l, "tlsCertificate", a->tls_certificate ? "(issued)" : "(none)",
                                  !b->tls_certificate ? "(none)" : a->tls_certificate ? "(renewed)" : "(issued)");
                add_changed(l, first, (plan_change) { .resource = PLAN_DATABASE, .db = b });
        }

        /* Roles, in name order (both lists are sorted). */
        for (size_t i = 0; b && i < b->n_roles; i++) {
                const doc_role *r = &b->roles[i], *old = find_role(a, r->name);
                if (!old) {
                        plan_change *c = add_change(l, PLAN_CREATE, PLAN_ROLE);
                        c->db = any;
                        c->role = r;
                } else if (old->access != r->access || !streq_ptr(old->scram_verifier, r->scram_verifier)) {
                        size_t first = l->n_fields;
                        if (old->access != r->access)
                                str_field(l, "access", doc_access_to_string(old->access), doc_access_to_string(r->access));
                        if (!streq_ptr(old->scram_verifier, r->scram_verifier))
                                /* Never the verifiers themselves: only that the password changes. */
                                str_field(l, "password", "(hidden)", "(new)");
                        add_changed(l, first, (plan_change) { .resource = PLAN_ROLE, .db = any, .role = r });
                }
        }
        for (size_t i = 0; a && i < a->n_roles; i++)
                if (!find_role(b, a->roles[i].name)) {
                        plan_change *c = add_change(l, PLAN_REMOVE, PLAN_ROLE);
                        c->db = any;
                        c->role = &a->roles[i];
                }

        for (size_t i = 0; b && i < b->n_allow; i++)
                if (!a || !in_list(a->allow, a->n_allow, b->allow[i])) {
                        plan_change *c = add_change(l, PLAN_CREATE, PLAN_FIREWALL);
                        c->db = any;
                        c->address = b->allow[i];
                        c->port = b->port;
                }
        for (size_t i = 0; a && i < a->n_allow; i++)
                if (!b || !in_list(b->allow, b->n_allow, a->allow[i])) {
                        plan_change *c = add_change(l, PLAN_REMOVE, PLAN_FIREWALL);
                        c->db = any;
                        c->address = a->allow[i];
                        c->port = a->port;
                }
}

static void env_change(plan_changes *l, plan_op op, const doc_app *app, const doc_env *e) {
        plan_change *c = add_change(l, op, PLAN_ENV);
        c->app = app;
        c->env = e;
}

static void diff_app(plan_changes *l, const doc_app *a, const doc_app *b) {
        if (!a)
                add_change(l, PLAN_CREATE, PLAN_APPLICATION)->app = b;
        else if (!b)
                add_change(l, PLAN_REMOVE, PLAN_APPLICATION)->app = a;
        else if (!streq(a->unit, b->unit)) {
                size_t first = l->n_fields;
                str_field(l, "unit", a->unit, b->unit);
                add_changed(l, first, (plan_change) { .resource = PLAN_APPLICATION, .app = b });
        }
        for (size_t i = 0; b && i < b->n_env; i++) {
                const doc_env *e = &b->env[i], *old = find_env(a, e->name);
                if (!old)
                        env_change(l, PLAN_CREATE, b, e);
                else if (!streq(old->database, e->database) || !streq(old->db_hostname, e->db_hostname) ||
                         !streq(old->db_address, e->db_address) || old->port != e->port || !streq(old->role, e->role) ||
                         old->access != e->access)
                        /* Not the passwords: recorded documents never keep them (compile_stored_body()). */
                        env_change(l, PLAN_CHANGE, b, e);
        }
        for (size_t i = 0; a && i < a->n_env; i++)
                if (!find_env(b, a->env[i].name))
                        env_change(l, PLAN_REMOVE, a, &a->env[i]);
}

static void diff_host(plan_changes *l, const doc_document *prev, const doc_document *next) {
        for (size_t i = 0; i < next->n_databases; i++)
                diff_database(l, find_db(prev, next->databases[i].name), &next->databases[i]);
        for (size_t i = 0; prev && i < prev->n_databases; i++)
                if (!find_db(next, prev->databases[i].name))
                        diff_database(l, &prev->databases[i], NULL);
        for (size_t i = 0; i < next->n_apps; i++)
                diff_app(l, find_app(prev, next->apps[i].name), &next->apps[i]);
        for (size_t i = 0; prev && i < prev->n_apps; i++)
                if (!find_app(next, prev->apps[i].name))
                        diff_app(l, &prev->apps[i], NULL);
}

void plan_diff_host(const doc_document *prev, const doc_document *next, plan_changes *l) {
        l->n = l->n_fields = 0;
        diff_host(l, prev, next);
}

void plan_changes_done(plan_changes *l) {
        free(l->v);
        free(l->fields);
        *l = (plan_changes) {};
}

void plan_build(const plan_host *hosts, size_t n, const render_result *rr, plan *p) {
        plan_changes l = {};

        *p = (plan) { .hosts = xcalloc(n + 1, sizeof(plan_host *)), .rr = rr };
        for (size_t i = 0; i < n; i++) {
                const plan_host *ph = &hosts[i];

                if (ph->unchanged) {
                        p->hosts_unchanged++;
                        continue;
                }
                plan_diff_host(ph->prev, ph->next, &l);
                /* A host that has never had a document gets its (empty) first one. */
                if (l.n == 0 && ph->prev) {
                        p->hosts_unchanged++;
                        continue;
                }
                p->hosts[p->n_hosts++] = ph;
                for (size_t j = 0; j < l.n; j++) {
                        p->add += l.v[j].op == PLAN_CREATE;
                        p->change += l.v[j].op == PLAN_CHANGE;
                        p->remove += l.v[j].op == PLAN_REMOVE;
                }
        }
        plan_changes_done(&l);
}

void plan_done(plan *p) {
        free(p->hosts);
        *p = (plan) {};
}

/* Whether l removes the database named db from the host. */
static bool removes_database(const plan_changes *l, const char *db) {
        for (size_t i = 0; i < l->n; i++)
                if (l->v[i].op == PLAN_REMOVE && l->v[i].resource == PLAN_DATABASE && streq(l->v[i].db->name, db))
                        return true;
        return false;
}

static const char *change_note(const plan_changes *l, const plan_change *c) {
        if (c->op != PLAN_REMOVE)
                return NULL;
        switch (c->resource) {
        case PLAN_DATABASE:
                return "retained on the host: stopped, data and backups kept";
        case PLAN_ROLE:
                /* The agent retains a database that leaves its document as it is, roles included. */
                if (removes_database(l, c->db->name))
                        return "kept in the retained database, which no longer runs";
                return "revoked: sessions ended and the role dropped; its data stays";
        case PLAN_APPLICATION:
                return "injected variables removed and the unit restarted";
        default:
                return NULL;
        }
}

static void pending_location(const pending_item *it, char *id, size_t id_size, char *where, size_t where_size) {
        identity_format(&it->id, id, id_size);
        snprintf(where, where_size, "%s:%d:%d", it->loc.path, it->loc.line, it->loc.col);
}

/* --- text ------------------------------------------------------------------------------------ */

/* Text goes through a local buffer of plain copies: fprintf() parsing a format for each of a
 * few hundred thousand pieces took longer than the whole diff. */
typedef struct out {
        FILE *f;
        size_t n;
        char buf[65536];
} out;

static void flush(out *o) {
        if (o->n > 0)
                (void) fwrite(o->buf, 1, o->n, o->f);
        o->n = 0;
}

static void putn(out *o, const char *s, size_t len) {
        if (o->n + len > sizeof(o->buf)) {
                flush(o);
                if (len > sizeof(o->buf)) {
                        (void) fwrite(s, 1, len, o->f);
                        return;
                }
        }
        memcpy(o->buf + o->n, s, len);
        o->n += len;
}

static void put(out *o, const char *s) {
        putn(o, s, strlen(s));
}

/* put() of each argument up to a NULL. */
__attribute__((sentinel)) static void puts_all(out *o, ...) {
        va_list ap;

        va_start(ap, o);
        for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
                put(o, s);
        va_end(ap);
}

static void put_int(out *o, int v) {
        char tmp[16], *p = tmp + sizeof(tmp);
        unsigned u = v < 0 ? 0u - (unsigned) v : (unsigned) v;

        do
                *--p = (char) ('0' + u % 10);
        while (u /= 10);
        if (v < 0)
                *--p = '-';
        putn(o, p, (size_t) (tmp + sizeof(tmp) - p));
}

static void put_value(out *o, plan_value_type type, int i, const char *s) {
        if (type == PLAN_INT)
                put_int(o, i);
        else if (type == PLAN_BOOL)
                put(o, i ? "true" : "false");
        else
                put(o, s);
}

static void print_change(out *o, const plan_changes *l, const plan_change *c) {
        const char *note = change_note(l, c);

        put(o, c->op == PLAN_CREATE ? "  + " : c->op == PLAN_REMOVE ? "  - " : "  ~ ");
        switch (c->resource) {
        case PLAN_DATABASE: {
                const doc_database *d = c->db;

                puts_all(o, "database \"", d->name, "\"", NULL);
                if (c->op == PLAN_CREATE) {
                        puts_all(o, " (", d->identity.organization, "/", d->identity.organizational_unit, "/",
                                 d->identity.environment, "/", d->identity.project, ")\n        PostgreSQL ", NULL);
                        put_int(o, d->postgres_version);
                        put(o, ", ");
                        put_int(o, d->cpu_count);
                        put(o, " CPUs, clusterSize ");
                        put_int(o, d->cluster_size);
                        put(o, ", port ");
                        put_int(o, d->port);
                        puts_all(o, "\n        hostname ", d->hostname, "\n", NULL);
                        if (d->backup.enabled) {
                                puts_all(o, "        backups ", d->backup.schedule, ", kept ", NULL);
                                put_int(o, d->backup.retention_days);
                                put(o, " days\n");
                        } else if (d->replication && d->replication->role == DOC_REPLICA_STANDBY)
                                put(o, "        backups disabled (taken on the primary)\n");
                        else
                                put(o, "        backups disabled\n");
                        if (d->replication) {
                                if (d->replication->role == DOC_REPLICA_PRIMARY)
                                        put(o, "        replication primary, standbys");
                                else
                                        puts_all(o, "        replication standby of ", d->replication->primary,
                                                 ", members", NULL);
                                for (size_t k = 0; k < d->replication->n_members; k++)
                                        if (d->replication->role == DOC_REPLICA_STANDBY ||
                                            !streq(d->replication->members[k].host, d->replication->primary))
                                                puts_all(o, " ", d->replication->members[k].host, NULL);
                                put(o, "\n");
                        }
                        return;
                }
                break;
        }
        case PLAN_ROLE:
                puts_all(o, "role \"", c->role->name, "\" on database \"", c->db->name, "\"", NULL);
                if (c->op == PLAN_CREATE)
                        puts_all(o, ": ", doc_access_to_string(c->role->access), NULL);
                break;
        case PLAN_FIREWALL:
                puts_all(o, "firewall: ", c->op == PLAN_CREATE ? "allow " : "stop allowing ", c->address,
                         " to database \"", c->db->name, "\" (port ", NULL);
                put_int(o, c->port);
                put(o, ")");
                break;
        case PLAN_APPLICATION:
                puts_all(o, "application \"", c->app->name, "\" (unit ", c->app->unit, ")", NULL);
                break;
        case PLAN_ENV:
                puts_all(o, "env ", c->env->name, " for \"", c->app->name, "\"", NULL);
                if (c->op != PLAN_REMOVE)
                        puts_all(o, ": database \"", c->env->database, "\" at ", c->env->db_hostname, ", ",
                                 doc_access_to_string(c->env->access), NULL);
                break;
        }
        if (c->n_fields > 0) {
                put(o, ": ");
                for (size_t i = c->first_field; i < c->first_field + c->n_fields; i++) {
                        const plan_field *fc = &l->fields[i];
                        puts_all(o, i > c->first_field ? ", " : "", fc->field, " ", NULL);
                        put_value(o, fc->type, fc->from_int, fc->from);
                        put(o, " -> ");
                        put_value(o, fc->type, fc->to_int, fc->to);
                }
        }
        if (note)
                puts_all(o, " (", note, ")", NULL);
        put(o, "\n");
}

void plan_print_text(const plan *p, FILE *f) {
        _cleanup_free_ out *o = xmalloc(sizeof(out));
        int changed_hosts = (int) p->n_hosts;
        plan_changes l = {};

        o->f = f;
        o->n = 0;
        for (size_t i = 0; i < p->n_hosts; i++) {
                const plan_host *ph = p->hosts[i];
                const inv_host *host = ph->host;

                plan_diff_host(ph->prev, ph->next, &l);
                puts_all(o, "host ", host->name, " (", doc_host_role_to_string(host->role), NULL);
                for (size_t j = 0; j < host->n_addresses; j++)
                        puts_all(o, j ? " " : ", ", host->addresses[j], NULL);
                put(o, "):\n");
                if (l.n == 0)
                        put(o, "  + first document (nothing to run on this host yet)\n");
                for (size_t j = 0; j < l.n; j++)
                        print_change(o, &l, &l.v[j]);
                put(o, "\n");
        }
        flush(o);
        plan_changes_done(&l);
        if (p->rr->n_pending > 0) {
                fputs("pending (left out of the documents until resolved):\n", f);
                for (size_t i = 0; i < p->rr->n_pending; i++) {
                        const pending_item *it = &p->rr->pending[i];
                        char where[512], id[300];

                        pending_location(it, id, sizeof(id), where, sizeof(where));
                        fprintf(f, "  ! %s \"%s\" (%s) at %s: %s\n", it->kind, it->name, id, where, it->reason);
                }
                fputc('\n', f);
        }
        if (p->add + p->change + p->remove == 0 && changed_hosts == 0)
                fprintf(f, "No changes: %d host%s up to date, %d pending.\n", p->hosts_unchanged,
                        p->hosts_unchanged == 1 ? "" : "s", (int) p->rr->n_pending);
        else
                fprintf(f, "Plan: %d to add, %d to change, %d to remove, on %d host%s (%d unchanged); %d pending.\n",
                        p->add, p->change, p->remove, changed_hosts, changed_hosts == 1 ? "" : "s", p->hosts_unchanged,
                        (int) p->rr->n_pending);
}

/* --- JSON ------------------------------------------------------------------------------------ */

/* Written directly, byte for byte as json-c prints with JSON_C_TO_STRING_PRETTY | _SPACED |
 * _NOSLASHESCAPE (the golden files and scripts depend on that form): a json-c tree of the plan
 * took twice as long as the rest of the command. */
#define JSON_MAX_DEPTH 8

typedef struct json_writer {
        out *o;
        size_t depth;
        bool has_items[JSON_MAX_DEPTH]; /* per open container */
        bool is_array[JSON_MAX_DEPTH];
} json_writer;

static void json_indent(json_writer *w) {
        static const char spaces[2 * JSON_MAX_DEPTH] = "                ";
        putn(w->o, spaces, 2 * w->depth);
}

/* json-c's escaping: the two-character escapes, \u00XX for other control characters, nothing
 * else (UTF-8 passes as it is; '/' is not escaped). */
static void json_string(json_writer *w, const char *s) {
        static const char hex[] = "0123456789abcdef";
        const char *run = s;

        put(w->o, "\"");
        for (; *s; s++) {
                unsigned char c = (unsigned char) *s;
                const char *esc;

                if (c >= 0x20 && c != '"' && c != '\\')
                        continue;
                char u[7] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf], '\0' };
                esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\b' ? "\\b" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                      : c == '\t' ? "\\t" : c == '\f' ? "\\f" : NULL;
                putn(w->o, run, (size_t) (s - run));
                put(w->o, esc ? esc : u);
                run = s + 1;
        }
        putn(w->o, run, (size_t) (s - run));
        put(w->o, "\"");
}

/* Before a value: its key in an object, its separator in an array. */
static void json_key(json_writer *w, const char *key) {
        bool *has = &w->has_items[w->depth - 1];

        if (w->is_array[w->depth - 1]) {
                if (*has)
                        put(w->o, ",\n");
        } else {
                put(w->o, *has ? ",\n" : "\n");
        }
        *has = true;
        json_indent(w);
        if (key) {
                json_string(w, key);
                put(w->o, ": ");
        }
}

static void json_open(json_writer *w, const char *key, bool array) {
        if (w->depth > 0)
                json_key(w, key);
        assert(w->depth < JSON_MAX_DEPTH);
        put(w->o, array ? "[\n" : "{");
        w->has_items[w->depth] = false;
        w->is_array[w->depth++] = array;
}

static void json_close(json_writer *w) {
        bool array = w->is_array[--w->depth];

        /* json-c: an empty array still breaks the line, an empty object does not. */
        if (w->has_items[w->depth])
                put(w->o, "\n");
        if (array || w->has_items[w->depth])
                json_indent(w);
        put(w->o, array ? "]" : "}");
}

static void json_str(json_writer *w, const char *key, const char *v) {
        json_key(w, key);
        json_string(w, v);
}

static void json_int(json_writer *w, const char *key, int64_t v) {
        char tmp[24];
        json_key(w, key);
        putn(w->o, tmp, (size_t) snprintf(tmp, sizeof(tmp), "%" PRId64, v));
}

static void json_bool(json_writer *w, const char *key, bool v) {
        json_key(w, key);
        put(w->o, v ? "true" : "false");
}

static void json_value(json_writer *w, const char *key, plan_value_type type, int i, const char *s) {
        if (type == PLAN_INT)
                json_int(w, key, i);
        else if (type == PLAN_BOOL)
                json_bool(w, key, i);
        else
                json_str(w, key, s);
}

static void database_details(json_writer *w, const doc_database *d) {
        json_open(w, "details", false);
        json_open(w, "identity", false);
        json_str(w, "organization", d->identity.organization);
        json_str(w, "organizationalUnit", d->identity.organizational_unit);
        json_str(w, "environment", d->identity.environment);
        json_str(w, "project", d->identity.project);
        json_close(w);
        json_str(w, "hostname", d->hostname);
        json_int(w, "cpuCount", d->cpu_count);
        json_int(w, "clusterSize", d->cluster_size);
        json_int(w, "postgresVersion", d->postgres_version);
        json_int(w, "port", d->port);
        json_bool(w, "backupEnabled", d->backup.enabled);
        json_str(w, "backupSchedule", d->backup.schedule);
        json_int(w, "retentionDays", d->backup.retention_days);
        json_close(w);
}

/* Keys in the order the JSON has always had: op, resource, what is changed, then details. */
static void change_json(json_writer *w, const plan_changes *l, const plan_change *c) {
        const char *note = change_note(l, c);

        json_open(w, NULL, false);
        json_str(w, "op", OP_NAMES[c->op]);
        json_str(w, "resource", RESOURCE_NAMES[c->resource]);
        switch (c->resource) {
        case PLAN_DATABASE:
                json_str(w, "database", c->db->name);
                if (c->op == PLAN_CREATE)
                        database_details(w, c->db);
                break;
        case PLAN_ROLE:
                json_str(w, "database", c->db->name);
                json_str(w, "role", c->role->name);
                if (c->op == PLAN_CREATE)
                        json_str(w, "access", doc_access_to_string(c->role->access));
                break;
        case PLAN_FIREWALL:
                json_str(w, "database", c->db->name);
                json_str(w, "address", c->address);
                json_int(w, "port", c->port);
                break;
        case PLAN_APPLICATION:
                json_str(w, "application", c->app->name);
                json_str(w, "unit", c->app->unit);
                break;
        case PLAN_ENV:
                json_str(w, "application", c->app->name);
                json_str(w, "unit", c->app->unit);
                json_str(w, "name", c->env->name);
                json_str(w, "database", c->env->database);
                json_str(w, "dbHostname", c->env->db_hostname);
                json_str(w, "access", doc_access_to_string(c->env->access));
                break;
        }
        if (c->n_fields > 0) {
                json_open(w, "changes", true);
                for (size_t i = c->first_field; i < c->first_field + c->n_fields; i++) {
                        const plan_field *f = &l->fields[i];
                        json_open(w, NULL, false);
                        json_str(w, "field", f->field);
                        json_value(w, "from", f->type, f->from_int, f->from);
                        json_value(w, "to", f->type, f->to_int, f->to);
                        json_close(w);
                }
                json_close(w);
        }
        if (note)
                json_str(w, "note", note);
        json_close(w);
}

void plan_print_json(const plan *p, FILE *f) {
        _cleanup_free_ out *o = xmalloc(sizeof(out));
        json_writer w = { .o = o };
        plan_changes l = {};

        o->f = f;
        o->n = 0;
        json_open(&w, NULL, false);
        json_open(&w, "hosts", true);
        for (size_t i = 0; i < p->n_hosts; i++) {
                const plan_host *ph = p->hosts[i];
                const inv_host *host = ph->host;

                plan_diff_host(ph->prev, ph->next, &l);
                json_open(&w, NULL, false);
                json_str(&w, "name", host->name);
                json_str(&w, "role", doc_host_role_to_string(host->role));
                json_open(&w, "addresses", true);
                for (size_t j = 0; j < host->n_addresses; j++)
                        json_str(&w, NULL, host->addresses[j]);
                json_close(&w);
                json_int(&w, "revision", (int64_t) ph->prev_revision);
                json_open(&w, "changes", true);
                for (size_t j = 0; j < l.n; j++)
                        change_json(&w, &l, &l.v[j]);
                json_close(&w);
                json_close(&w);
        }
        json_close(&w);
        json_open(&w, "pending", true);
        for (size_t i = 0; i < p->rr->n_pending; i++) {
                const pending_item *it = &p->rr->pending[i];
                char where[512], id[300];

                pending_location(it, id, sizeof(id), where, sizeof(where));
                json_open(&w, NULL, false);
                json_str(&w, "kind", it->kind);
                json_str(&w, "name", it->name);
                json_str(&w, "project", id);
                json_str(&w, "location", where);
                json_str(&w, "reason", it->reason);
                json_close(&w);
        }
        json_close(&w);
        json_open(&w, "summary", false);
        json_int(&w, "add", p->add);
        json_int(&w, "change", p->change);
        json_int(&w, "remove", p->remove);
        json_int(&w, "hostsChanged", (int64_t) p->n_hosts);
        json_int(&w, "hostsUnchanged", p->hosts_unchanged);
        json_int(&w, "pending", (int64_t) p->rr->n_pending);
        json_close(&w);
        json_close(&w);
        put(o, "\n");
        flush(o);
        plan_changes_done(&l);
}
