/* Diff of two desired-state documents at resource granularity, and its presentation. */
#include "plan.h"

static json_object *change(const char *op, const char *resource) {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "op", json_object_new_string(op));
        json_object_object_add(o, "resource", json_object_new_string(resource));
        return o;
}

static void set_str(json_object *o, const char *k, const char *v) {
        json_object_object_add(o, k, json_object_new_string(v));
}

static void field_change(json_object *list, const char *field, json_object *from, json_object *to) {
        json_object *c = json_object_new_object();
        json_object_object_add(c, "field", json_object_new_string(field));
        json_object_object_add(c, "from", from);
        json_object_object_add(c, "to", to);
        json_object_array_add(list, c);
}

#define CMP_INT(list, field, a, b)                                                               \
        do {                                                                                     \
                if ((a) != (b))                                                                  \
                        field_change(list, field, json_object_new_int(a), json_object_new_int(b)); \
        } while (0)
#define CMP_STR(list, field, a, b)                                                                      \
        do {                                                                                            \
                if (!streq_ptr(a, b))                                                                   \
                        field_change(list, field, json_object_new_string(strempty(a)),                  \
                                     json_object_new_string(strempty(b)));                              \
        } while (0)

static json_object *database_details(const doc_database *d) {
        json_object *o = json_object_new_object();
        json_object *id = json_object_new_object();
        set_str(id, "organization", d->identity.organization);
        set_str(id, "organizationalUnit", d->identity.organizational_unit);
        set_str(id, "environment", d->identity.environment);
        set_str(id, "project", d->identity.project);
        json_object_object_add(o, "identity", id);
        set_str(o, "hostname", d->hostname);
        json_object_object_add(o, "cpuCount", json_object_new_int(d->cpu_count));
        json_object_object_add(o, "clusterSize", json_object_new_int(d->cluster_size));
        json_object_object_add(o, "postgresVersion", json_object_new_int(d->postgres_version));
        json_object_object_add(o, "port", json_object_new_int(d->port));
        json_object_object_add(o, "backupEnabled", json_object_new_boolean(d->backup.enabled));
        set_str(o, "backupSchedule", d->backup.schedule);
        json_object_object_add(o, "retentionDays", json_object_new_int(d->backup.retention_days));
        return o;
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

static void diff_database(json_object *out, const doc_database *a, const doc_database *b) {
        /* a: recorded (may be NULL), b: desired (may be NULL). */
        const doc_database *any = b ? b : a;

        if (!a) {
                json_object *c = change("create", "database");
                set_str(c, "database", b->name);
                json_object_object_add(c, "details", database_details(b));
                json_object_array_add(out, c);
        } else if (!b) {
                json_object *c = change("remove", "database");
                set_str(c, "database", a->name);
                set_str(c, "note", "retained on the host: stopped, data and backups kept");
                json_object_array_add(out, c);
        } else {
                json_object *fields = json_object_new_array();
                CMP_INT(fields, "cpuCount", a->cpu_count, b->cpu_count);
                CMP_INT(fields, "clusterSize", a->cluster_size, b->cluster_size);
                CMP_INT(fields, "postgresVersion", a->postgres_version, b->postgres_version);
                CMP_INT(fields, "port", a->port, b->port);
                CMP_STR(fields, "hostname", a->hostname, b->hostname);
                if (a->backup.enabled != b->backup.enabled)
                        field_change(fields, "backupConfig.enabled", json_object_new_boolean(a->backup.enabled),
                                     json_object_new_boolean(b->backup.enabled));
                CMP_STR(fields, "backupConfig.schedule", a->backup.schedule, b->backup.schedule);
                CMP_INT(fields, "backupConfig.retentionDays", a->backup.retention_days, b->backup.retention_days);
                if (json_object_array_length(fields) > 0) {
                        json_object *c = change("change", "database");
                        set_str(c, "database", b->name);
                        json_object_object_add(c, "changes", fields);
                        json_object_array_add(out, c);
                } else
                        json_object_put(fields);
        }

        /* Roles, in name order (both lists are sorted). */
        for (size_t i = 0; b && i < b->n_roles; i++) {
                const doc_role *r = &b->roles[i], *old = find_role(a, r->name);
                if (!old) {
                        json_object *c = change("create", "role");
                        set_str(c, "database", any->name);
                        set_str(c, "role", r->name);
                        set_str(c, "access", doc_access_to_string(r->access));
                        json_object_array_add(out, c);
                } else if (old->access != r->access || !streq_ptr(old->scram_verifier, r->scram_verifier)) {
                        json_object *c = change("change", "role"), *fields = json_object_new_array();
                        set_str(c, "database", any->name);
                        set_str(c, "role", r->name);
                        if (old->access != r->access)
                                field_change(fields, "access", json_object_new_string(doc_access_to_string(old->access)),
                                             json_object_new_string(doc_access_to_string(r->access)));
                        if (!streq_ptr(old->scram_verifier, r->scram_verifier))
                                /* Never the verifiers themselves: only that the password changes. */
                                field_change(fields, "password", json_object_new_string("(hidden)"),
                                             json_object_new_string("(new)"));
                        json_object_object_add(c, "changes", fields);
                        json_object_array_add(out, c);
                }
        }
        for (size_t i = 0; a && i < a->n_roles; i++)
                if (!find_role(b, a->roles[i].name)) {
                        json_object *c = change("remove", "role");
                        set_str(c, "database", any->name);
                        set_str(c, "role", a->roles[i].name);
                        set_str(c, "note", "revoked: sessions ended and the role dropped; its data stays");
                        json_object_array_add(out, c);
                }

        for (size_t i = 0; b && i < b->n_allow; i++)
                if (!a || !in_list(a->allow, a->n_allow, b->allow[i])) {
                        json_object *c = change("create", "firewall");
                        set_str(c, "database", any->name);
                        set_str(c, "address", b->allow[i]);
                        json_object_object_add(c, "port", json_object_new_int(b->port));
                        json_object_array_add(out, c);
                }
        for (size_t i = 0; a && i < a->n_allow; i++)
                if (!b || !in_list(b->allow, b->n_allow, a->allow[i])) {
                        json_object *c = change("remove", "firewall");
                        set_str(c, "database", any->name);
                        set_str(c, "address", a->allow[i]);
                        json_object_object_add(c, "port", json_object_new_int(a->port));
                        json_object_array_add(out, c);
                }
}

static json_object *env_change(const char *op, const doc_app *app, const doc_env *e) {
        json_object *c = change(op, "env");
        set_str(c, "application", app->name);
        set_str(c, "unit", app->unit);
        set_str(c, "name", e->name);
        set_str(c, "database", e->database);
        set_str(c, "dbHostname", e->db_hostname);
        set_str(c, "access", doc_access_to_string(e->access));
        return c;
}

static void diff_app(json_object *out, const doc_app *a, const doc_app *b) {
        if (!a) {
                json_object *c = change("create", "application");
                set_str(c, "application", b->name);
                set_str(c, "unit", b->unit);
                json_object_array_add(out, c);
        } else if (!b) {
                json_object *c = change("remove", "application");
                set_str(c, "application", a->name);
                set_str(c, "unit", a->unit);
                set_str(c, "note", "injected variables removed and the unit restarted");
                json_object_array_add(out, c);
        } else if (!streq(a->unit, b->unit)) {
                json_object *c = change("change", "application"), *fields = json_object_new_array();
                set_str(c, "application", b->name);
                set_str(c, "unit", b->unit);
                field_change(fields, "unit", json_object_new_string(a->unit), json_object_new_string(b->unit));
                json_object_object_add(c, "changes", fields);
                json_object_array_add(out, c);
        }
        for (size_t i = 0; b && i < b->n_env; i++) {
                const doc_env *e = &b->env[i], *old = find_env(a, e->name);
                if (!old)
                        json_object_array_add(out, env_change("create", b, e));
                else if (!streq(old->database, e->database) || !streq(old->db_hostname, e->db_hostname) ||
                         !streq(old->db_address, e->db_address) || old->port != e->port || !streq(old->role, e->role) ||
                         old->access != e->access || !streq_ptr(old->password, e->password))
                        json_object_array_add(out, env_change("change", b, e));
        }
        for (size_t i = 0; a && i < a->n_env; i++)
                if (!find_env(b, a->env[i].name))
                        json_object_array_add(out, env_change("remove", a, &a->env[i]));
}

json_object *plan_diff_host(const doc_document *prev, const doc_document *next) {
        json_object *out = json_object_new_array();

        for (size_t i = 0; i < next->n_databases; i++)
                diff_database(out, find_db(prev, next->databases[i].name), &next->databases[i]);
        for (size_t i = 0; prev && i < prev->n_databases; i++)
                if (!find_db(next, prev->databases[i].name))
                        diff_database(out, &prev->databases[i], NULL);
        for (size_t i = 0; i < next->n_apps; i++)
                diff_app(out, find_app(prev, next->apps[i].name), &next->apps[i]);
        for (size_t i = 0; prev && i < prev->n_apps; i++)
                if (!find_app(next, prev->apps[i].name))
                        diff_app(out, &prev->apps[i], NULL);
        return out;
}

json_object *plan_build(const plan_host *hosts, size_t n, const render_result *rr) {
        json_object *plan = json_object_new_object(), *jhosts = json_object_new_array(),
                    *jpending = json_object_new_array(), *summary = json_object_new_object();
        int add = 0, chg = 0, rem = 0, changed_hosts = 0, unchanged = 0;

        for (size_t i = 0; i < n; i++) {
                const plan_host *ph = &hosts[i];
                json_object *h, *addrs, *changes;

                if (ph->unchanged) {
                        unchanged++;
                        continue;
                }
                changes = plan_diff_host(ph->prev, ph->next);
                if (json_object_array_length(changes) == 0) {
                        /* A host that has never had a document gets its (empty) first one. */
                        if (ph->prev) {
                                json_object_put(changes);
                                unchanged++;
                                continue;
                        }
                }
                h = json_object_new_object();
                set_str(h, "name", ph->host->name);
                set_str(h, "role", doc_host_role_to_string(ph->host->role));
                addrs = json_object_new_array();
                for (size_t j = 0; j < ph->host->n_addresses; j++)
                        json_object_array_add(addrs, json_object_new_string(ph->host->addresses[j]));
                json_object_object_add(h, "addresses", addrs);
                json_object_object_add(h, "revision", json_object_new_int64((int64_t) ph->prev_revision));
                for (size_t j = 0; j < json_object_array_length(changes); j++) {
                        const char *op = json_object_get_string(
                                json_object_object_get(json_object_array_get_idx(changes, j), "op"));
                        add += streq(op, "create");
                        chg += streq(op, "change");
                        rem += streq(op, "remove");
                }
                json_object_object_add(h, "changes", changes);
                json_object_array_add(jhosts, h);
                changed_hosts++;
        }
        for (size_t i = 0; i < rr->n_pending; i++) {
                const pending_item *p = &rr->pending[i];
                json_object *o = json_object_new_object();
                char where[512], id[300];
                identity_format(&p->id, id, sizeof(id));
                snprintf(where, sizeof(where), "%s:%d:%d", p->loc.path, p->loc.line, p->loc.col);
                set_str(o, "kind", p->kind);
                set_str(o, "name", p->name);
                set_str(o, "project", id);
                set_str(o, "location", where);
                set_str(o, "reason", p->reason);
                json_object_array_add(jpending, o);
        }
        json_object_object_add(summary, "add", json_object_new_int(add));
        json_object_object_add(summary, "change", json_object_new_int(chg));
        json_object_object_add(summary, "remove", json_object_new_int(rem));
        json_object_object_add(summary, "hostsChanged", json_object_new_int(changed_hosts));
        json_object_object_add(summary, "hostsUnchanged", json_object_new_int(unchanged));
        json_object_object_add(summary, "pending", json_object_new_int((int) rr->n_pending));
        json_object_object_add(plan, "hosts", jhosts);
        json_object_object_add(plan, "pending", jpending);
        json_object_object_add(plan, "summary", summary);
        return plan;
}

static const char *jstr(json_object *o, const char *k) {
        json_object *v = json_object_object_get(o, k);
        return v ? json_object_get_string(v) : "";
}
static int jint(json_object *o, const char *k) {
        return json_object_get_int(json_object_object_get(o, k));
}

static char sign_of(const char *op) {
        return streq(op, "create") ? '+' : streq(op, "remove") ? '-' : '~';
}

static void print_fields(FILE *f, json_object *fields) {
        for (size_t i = 0; i < json_object_array_length(fields); i++) {
                json_object *fc = json_object_array_get_idx(fields, i);
                fprintf(f, "%s%s %s -> %s", i ? ", " : "", jstr(fc, "field"), jstr(fc, "from"), jstr(fc, "to"));
        }
}

static void print_change(FILE *f, json_object *c) {
        const char *op = jstr(c, "op"), *res = jstr(c, "resource");
        json_object *fields = json_object_object_get(c, "changes");

        fprintf(f, "  %c ", sign_of(op));
        if (streq(res, "database")) {
                fprintf(f, "database \"%s\"", jstr(c, "database"));
                if (streq(op, "create")) {
                        json_object *d = json_object_object_get(c, "details"), *id = json_object_object_get(d, "identity");
                        fprintf(f, " (%s/%s/%s/%s)\n", jstr(id, "organization"), jstr(id, "organizationalUnit"),
                                jstr(id, "environment"), jstr(id, "project"));
                        fprintf(f, "        PostgreSQL %d, %d CPUs, clusterSize %d, port %d\n", jint(d, "postgresVersion"),
                                jint(d, "cpuCount"), jint(d, "clusterSize"), jint(d, "port"));
                        fprintf(f, "        hostname %s\n", jstr(d, "hostname"));
                        if (json_object_get_boolean(json_object_object_get(d, "backupEnabled")))
                                fprintf(f, "        backups %s, kept %d days\n", jstr(d, "backupSchedule"),
                                        jint(d, "retentionDays"));
                        else
                                fprintf(f, "        backups disabled\n");
                        return;
                }
        } else if (streq(res, "role")) {
                fprintf(f, "role \"%s\" on database \"%s\"", jstr(c, "role"), jstr(c, "database"));
                if (streq(op, "create"))
                        fprintf(f, ": %s", jstr(c, "access"));
        } else if (streq(res, "firewall")) {
                fprintf(f, "firewall: %s %s to database \"%s\" (port %d)", streq(op, "create") ? "allow" : "stop allowing",
                        jstr(c, "address"), jstr(c, "database"), jint(c, "port"));
        } else if (streq(res, "application")) {
                fprintf(f, "application \"%s\" (unit %s)", jstr(c, "application"), jstr(c, "unit"));
        } else if (streq(res, "env")) {
                fprintf(f, "env %s for \"%s\"", jstr(c, "name"), jstr(c, "application"));
                if (!streq(op, "remove"))
                        fprintf(f, ": database \"%s\" at %s, %s", jstr(c, "database"), jstr(c, "dbHostname"),
                                jstr(c, "access"));
        }
        if (fields) {
                fputs(": ", f);
                print_fields(f, fields);
        }
        if (json_object_object_get(c, "note"))
                fprintf(f, " (%s)", jstr(c, "note"));
        fputc('\n', f);
}

void plan_print_text(json_object *plan, FILE *f) {
        json_object *hosts = json_object_object_get(plan, "hosts"), *pending = json_object_object_get(plan, "pending"),
                    *s = json_object_object_get(plan, "summary");

        for (size_t i = 0; i < json_object_array_length(hosts); i++) {
                json_object *h = json_object_array_get_idx(hosts, i), *addrs = json_object_object_get(h, "addresses"),
                            *changes = json_object_object_get(h, "changes");
                fprintf(f, "host %s (%s", jstr(h, "name"), jstr(h, "role"));
                for (size_t j = 0; j < json_object_array_length(addrs); j++)
                        fprintf(f, "%s%s", j ? " " : ", ", json_object_get_string(json_object_array_get_idx(addrs, j)));
                fputs("):\n", f);
                if (json_object_array_length(changes) == 0)
                        fputs("  + first document (nothing to run on this host yet)\n", f);
                for (size_t j = 0; j < json_object_array_length(changes); j++)
                        print_change(f, json_object_array_get_idx(changes, j));
                fputc('\n', f);
        }
        if (json_object_array_length(pending) > 0) {
                fputs("pending (left out of the documents until resolved):\n", f);
                for (size_t i = 0; i < json_object_array_length(pending); i++) {
                        json_object *p = json_object_array_get_idx(pending, i);
                        fprintf(f, "  ! %s \"%s\" (%s) at %s: %s\n", jstr(p, "kind"), jstr(p, "name"), jstr(p, "project"),
                                jstr(p, "location"), jstr(p, "reason"));
                }
                fputc('\n', f);
        }
        if (jint(s, "add") + jint(s, "change") + jint(s, "remove") == 0 && jint(s, "hostsChanged") == 0)
                fprintf(f, "No changes: %d host%s up to date, %d pending.\n", jint(s, "hostsUnchanged"),
                        jint(s, "hostsUnchanged") == 1 ? "" : "s", jint(s, "pending"));
        else
                fprintf(f, "Plan: %d to add, %d to change, %d to remove, on %d host%s (%d unchanged); %d pending.\n",
                        jint(s, "add"), jint(s, "change"), jint(s, "remove"), jint(s, "hostsChanged"),
                        jint(s, "hostsChanged") == 1 ? "" : "s", jint(s, "hostsUnchanged"), jint(s, "pending"));
}
