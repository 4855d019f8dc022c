/* get database: the declared manifest is read again from its file (so it shows as written, not
 * as the model normalised it), turned into JSON, given its computed block, and printed as JSON
 * (json-c) or YAML (libyaml's emitter). */
#include <json-c/json.h>
#include <strings.h>
#include <yaml.h>

#include "ca.h"
#include "describe.h"
#include "fileio.h"
#include "yaml-tree.h"

static void json_putp(json_object **o) {
        json_object_put(*o);
}

/* --- the declared document as JSON ------------------------------------------------------------ */

static json_object *node_to_json(const ynode *n) {
        json_object *o;
        int64_t i;
        bool b;

        if (!n)
                return NULL;
        switch (n->type) {
        case YNODE_MAPPING:
                o = json_object_new_object();
                for (size_t k = 0; k < n->n_pairs; k++)
                        json_object_object_add(o, n->pairs[k].key->value, node_to_json(n->pairs[k].value));
                return o;
        case YNODE_SEQUENCE:
                o = json_object_new_array();
                for (size_t k = 0; k < n->n_items; k++)
                        json_object_array_add(o, node_to_json(n->items[k]));
                return o;
        case YNODE_SCALAR:
                /* The types the manifest parser gives scalars (YAML 1.2 core schema). */
                if (ynode_is_null(n))
                        return NULL;
                if (ynode_get_bool(n, &b) >= 0)
                        return json_object_new_boolean(b);
                if (ynode_get_int(n, &i) >= 0)
                        return json_object_new_int64(i);
                return json_object_new_string_len(n->value, (int) n->len);
        }
        return NULL;
}

static int load_declared(const m_database *m, const char *repo, json_object **ret, char **ret_error) {
        _cleanup_free_ char *path = m->loc.path[0] == '/' ? xstrdup(m->loc.path) : xasprintf("%s/%s", repo, m->loc.path);
        _cleanup_free_ char *data = NULL;
        _cleanup_(yfile_freep) yfile *f = NULL;
        _cleanup_(diag_list_done) diag_list diags = {};
        size_t size = 0;
        int r;

        diag_list_init(&diags);
        r = read_full_file(path, 64u * 1024u * 1024u, &data, &size);
        if (r < 0) {
                *ret_error = xasprintf("cannot read %s again: %s", path, strerror(-r));
                return r;
        }
        (void) yaml_load(m->loc.path, data, size, &yaml_limits_default, true, &diags, &f);
        for (size_t i = 0; f && i < f->n_docs; i++)
                if (f->docs[i].root && f->docs[i].root->type == YNODE_MAPPING && f->docs[i].line == m->loc.line &&
                    f->docs[i].col == m->loc.col) {
                        *ret = node_to_json(f->docs[i].root);
                        /* Ours to fill, whatever the file says. */
                        json_object_object_del(*ret, "computed");
                        return 0;
                }
        *ret_error = xasprintf("%s changed while it was read: no document at line %d", path, m->loc.line);
        return -ESTALE;
}

/* --- the computed block ------------------------------------------------------------------------ */

static const doc_database *rendered_database(const doc_document *d, const m_database *m) {
        for (size_t i = 0; d && i < d->n_databases; i++)
                if (streq(d->databases[i].name, m->name))
                        return &d->databases[i];
        return NULL;
}

static json_object *roles_json(const doc_database *db) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; db && i < db->n_roles; i++) {
                json_object *o = json_object_new_object(), *clients = json_object_new_array();

                json_object_object_add(o, "name", json_object_new_string(db->roles[i].name));
                json_object_object_add(o, "application", json_object_new_string(db->roles[i].application));
                json_object_object_add(o, "access", json_object_new_string(doc_access_to_string(db->roles[i].access)));
                for (size_t k = 0; k < db->roles[i].n_clients; k++)
                        json_object_array_add(clients, json_object_new_string(db->roles[i].clients[k]));
                json_object_object_add(o, "clients", clients);
                json_object_array_add(a, o);
        }
        return a;
}

/* The database's state in the host's last report ("ready", ...), or NULL. */
static char *reported_state(const char *status_json, const char *name) {
        _cleanup_(json_putp) json_object *o = status_json ? json_tokener_parse(status_json) : NULL;
        json_object *dbs, *v;

        if (!o || !json_object_object_get_ex(o, "databases", &dbs) || !json_object_is_type(dbs, json_type_array))
                return NULL;
        for (size_t i = 0; i < json_object_array_length(dbs); i++) {
                json_object *d = json_object_array_get_idx(dbs, i);
                if (json_object_object_get_ex(d, "name", &v) && streq(json_object_get_string(v), name) &&
                    json_object_object_get_ex(d, "state", &v) && json_object_is_type(v, json_type_string))
                        return xstrdup(json_object_get_string(v));
        }
        return NULL;
}

/* One member's replication as its host last reported it ({"role", "timeline", "lagBytes",
 * "lagSeconds"} in the database's entry of the agent's status): each value that is not there, or
 * not of its type, is null. */
static json_object *reported_member(compilation *c, long h, const char *name) {
        static const struct {
                const char *key;
                json_type type;
        } fields[] = {
                { "role", json_type_string },
                { "timeline", json_type_int },
                { "lagBytes", json_type_int },
                { "lagSeconds", json_type_double },
        };
        _cleanup_(stored_host_done) stored_host sh = {};
        _cleanup_(json_putp) json_object *status = NULL;
        json_object *o = json_object_new_object(), *rep = NULL, *dbs, *v;
        const inv_host *host = &c->inv.hosts[h];

        json_object_object_add(o, "host", json_object_new_string(host->name));
        json_object_object_add(o, "address", host->n_addresses > 0 ? json_object_new_string(host->addresses[0]) : NULL);
        if (c->store && store_load_host(c->store, host->name, &sh) >= 0 && sh.status)
                status = json_tokener_parse(sh.status);
        if (status && json_object_object_get_ex(status, "databases", &dbs) && json_object_is_type(dbs, json_type_array))
                for (size_t i = 0; i < json_object_array_length(dbs); i++) {
                        json_object *d = json_object_array_get_idx(dbs, i);
                        if (json_object_object_get_ex(d, "name", &v) && streq(json_object_get_string(v), name) &&
                            json_object_object_get_ex(d, "replication", &v) && json_object_is_type(v, json_type_object))
                                rep = v;
                }
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                json_object *val = NULL;

                /* A whole number of seconds is an int to json-c: lagSeconds takes either. */
                if (rep && json_object_object_get_ex(rep, fields[i].key, &v) &&
                    (json_object_is_type(v, fields[i].type) ||
                     (fields[i].type == json_type_double && json_object_is_type(v, json_type_int))))
                        val = json_object_get(v);
                json_object_object_add(o, fields[i].key, val);
        }
        return o;
}

/* status and its detail, from the placement, the recorded document and the host's reports. */
static void compute_status(compilation *c, size_t i, const doc_document *hostdoc, json_object *computed) {
        const placement *p = &c->pl[i];
        const char *host = hostdoc ? hostdoc->host : NULL;
        const stored_document *sd = host ? compilation_recorded(c, host) : NULL;
        _cleanup_(stored_host_done) stored_host sh = {};
        _cleanup_free_ char *detail = NULL, *state = NULL;
        const char *status;
        char hash[65];
        bool enrolled = false;

        if (host && c->store)
                enrolled = store_load_host(c->store, host, &sh) >= 0;
        json_object_object_add(computed, "appliedRevision",
                               json_object_new_int64(enrolled ? (int64_t) sh.applied_revision : 0));

        if (!hostdoc || !rendered_database(hostdoc, &c->set.dbs[i])) {
                status = "not placed";
                detail = xstrdup(p->pending ? p->pending : "no database host is available");
        } else if (doc_content_hash(hostdoc, hash), !sd || !streq(sd->content_hash, hash)) {
                status = "not applied";
                detail = xasprintf("the desired state of host '%s' changed since the last apply: run "
                                   "'infrastream-controller apply'",
                                   host);
        } else if (!enrolled) {
                status = "not applied";
                detail = xasprintf("host '%s' is not enrolled: run agentctl enroll on it", host);
        } else if (sh.applied_revision < sd->revision) {
                status = "pending";
                detail = sh.applied_revision == 0
                        ? xasprintf("revision %llu recorded, nothing applied yet", (unsigned long long) sd->revision)
                        : xasprintf("revision %llu recorded, %llu applied", (unsigned long long) sd->revision,
                                    (unsigned long long) sh.applied_revision);
        } else if (sh.failed) {
                status = "failed";
                detail = xasprintf("the last report of host '%s' says something failed or drifted (agentctl status "
                                   "on it)",
                                   host);
        } else {
                state = reported_state(sh.status, c->set.dbs[i].name);
                status = state ? state : "applied";
        }
        json_object_object_add(computed, "status", json_object_new_string(status));
        if (detail)
                json_object_object_add(computed, "statusDetail", json_object_new_string(detail));
}

static int str_ptr_cmp(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static int build_computed(compilation *c, size_t i, const describe_options *o, json_object **ret, char **ret_error) {
        const m_database *m = &c->set.dbs[i];
        const placement *p = &c->pl[i];
        const doc_document *hostdoc = p->n_members > 0 ? c->rr.docs[p->members[0]] : NULL;
        const doc_database *db = rendered_database(hostdoc, m);
        _cleanup_(ca_freep) ca *authority = NULL;
        _cleanup_free_ char *err = NULL, *subject = NULL, *hostname = NULL;
        json_object *computed = json_object_new_object();
        time_t nb, na;
        char fp[65];
        int r;

        hostname = db ? xstrdup(db->hostname)
                      : xasprintf("%s.%s.%s.%s.%s.%s", m->name, m->id.project, m->id.environment,
                                  m->id.organizational_unit, m->id.organization, o->domain);
        json_object_object_add(computed, "hostname", json_object_new_string(hostname));
        json_object_object_add(computed, "port", json_object_new_int(db ? db->port : DEFAULT_PG_PORT));
        json_object_object_add(computed, "host", hostdoc ? json_object_new_string(hostdoc->host) : NULL);
        json_object_object_add(computed, "address",
                               hostdoc && c->inv.hosts[p->members[0]].n_addresses > 0
                                       ? json_object_new_string(c->inv.hosts[p->members[0]].addresses[0])
                                       : NULL);
        /* members[0] is the primary (render.c); the replicas by host name. */
        json_object_object_add(computed, "primary", hostdoc ? json_object_new_string(hostdoc->host) : NULL);
        {
                json_object *replicas = json_object_new_array();
                _cleanup_free_ const char **names = xcalloc(p->n_members + 1, sizeof(char *));

                for (size_t k = 1; k < p->n_members; k++)
                        names[k - 1] = c->inv.hosts[p->members[k]].name;
                if (p->n_members > 1)
                        qsort_safe(names, p->n_members - 1, sizeof(char *), str_ptr_cmp);
                for (size_t k = 0; k + 1 < p->n_members; k++)
                        json_object_array_add(replicas, json_object_new_string(names[k]));
                json_object_object_add(computed, "replicas", replicas);
        }
        r = ca_load(o->state_dir, &authority, &err);
        if (r >= 0)
                r = ca_describe(authority, &subject, fp, &nb, &na);
        if (r < 0 && r != -ENOENT) {
                *ret_error = err ? TAKE_PTR(err) : xasprintf("cannot read the CA: %s", strerror(-r));
                json_object_put(computed);
                return r;
        }
        json_object_object_add(computed, "caFingerprint", r >= 0 ? json_object_new_string(fp) : NULL);
        compute_status(c, i, db ? hostdoc : NULL, computed);
        json_object_object_add(computed, "roles", roles_json(db));
        if (p->n_members > 1) {
                /* Replicated: each member as its host reports it, primary first. */
                json_object *members = json_object_new_array();

                json_object_array_add(members, reported_member(c, p->members[0], m->name));
                for (size_t k = 1; k < p->n_members; k++) {
                        const char *want = json_object_get_string(
                                json_object_array_get_idx(json_object_object_get(computed, "replicas"), k - 1));
                        json_object_array_add(members, reported_member(c, inventory_find(&c->inv, want), m->name));
                }
                json_object_object_add(computed, "members", members);
        }
        *ret = computed;
        return 0;
}

/* --- output ----------------------------------------------------------------------------------- */

/* A string that a YAML reader (ours, or a YAML 1.1 one) would not read back as a string when
 * written plain: null, a boolean, a number. The emitter quotes what plain style cannot carry. */
static bool needs_quotes(const char *s) {
        static const char *const words[] = { "", "~", "null", "true", "false", "y", "n", "yes", "no", "on", "off" };
        char *end = NULL;

        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (strcasecmp(s, words[i]) == 0)
                        return true;
        errno = 0;
        (void) strtod(s, &end);
        return end != s && *end == '\0';
}

static int emit(yaml_emitter_t *e, yaml_event_t *ev) {
        return yaml_emitter_emit(e, ev) ? 0 : -EIO;
}

static int emit_scalar(yaml_emitter_t *e, const char *s, bool plain_ok) {
        yaml_event_t ev;
        /* Quoted is always a string; plain only where it reads back as this one. */
        yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *) s, (int) strlen(s), plain_ok, 1,
                                     YAML_ANY_SCALAR_STYLE);
        return emit(e, &ev);
}

static int emit_json(yaml_emitter_t *e, json_object *o) {
        yaml_event_t ev;
        int r = 0;

        switch (json_object_get_type(o)) {
        case json_type_null:
                return emit_scalar(e, "null", true);
        case json_type_boolean:
                return emit_scalar(e, json_object_get_boolean(o) ? "true" : "false", true);
        case json_type_int:
        case json_type_double:
                return emit_scalar(e, json_object_get_string(o), true);
        case json_type_string:
                return emit_scalar(e, json_object_get_string(o), !needs_quotes(json_object_get_string(o)));
        case json_type_array:
                yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE);
                r = emit(e, &ev);
                for (size_t i = 0; r >= 0 && i < json_object_array_length(o); i++)
                        r = emit_json(e, json_object_array_get_idx(o, i));
                if (r >= 0) {
                        yaml_sequence_end_event_initialize(&ev);
                        r = emit(e, &ev);
                }
                return r;
        case json_type_object:
                yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE);
                r = emit(e, &ev);
                json_object_object_foreach(o, key, val) {
                        if (r >= 0)
                                r = emit_scalar(e, key, !needs_quotes(key));
                        if (r >= 0)
                                r = emit_json(e, val);
                }
                if (r >= 0) {
                        yaml_mapping_end_event_initialize(&ev);
                        r = emit(e, &ev);
                }
                return r;
        }
        return -EINVAL;
}

static int write_yaml(json_object *o, FILE *out) {
        yaml_emitter_t e;
        yaml_event_t ev;
        int r;

        if (!yaml_emitter_initialize(&e))
                return -ENOMEM;
        yaml_emitter_set_output_file(&e, out);
        yaml_emitter_set_unicode(&e, 1);
        yaml_emitter_set_width(&e, -1); /* long host names stay on one line */
        yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING);
        r = emit(&e, &ev);
        if (r >= 0) {
                yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1);
                r = emit(&e, &ev);
        }
        if (r >= 0)
                r = emit_json(&e, o);
        if (r >= 0) {
                yaml_document_end_event_initialize(&ev, 1);
                r = emit(&e, &ev);
        }
        if (r >= 0) {
                yaml_stream_end_event_initialize(&ev);
                r = emit(&e, &ev);
        }
        yaml_emitter_delete(&e);
        return r;
}

/* --- the command ------------------------------------------------------------------------------- */

int describe_database(compilation *c, const char *name, const describe_options *o, FILE *out, char **ret_error) {
        _cleanup_(json_putp) json_object *doc = NULL;
        _cleanup_free_ char *list = NULL;
        json_object *computed = NULL;
        size_t n_match = 0, found = 0;
        int r;

        for (size_t i = 0; i < c->set.n_dbs; i++) {
                const m_database *m = &c->set.dbs[i];
                char project[4 * 64 + 4];

                if (!streq(m->name, name))
                        continue;
                identity_format(&m->id, project, sizeof(project));
                if (o->project && !streq(o->project, project))
                        continue;
                if (n_match++ == 0)
                        found = i;
                {
                        char *next = xasprintf("%s%s%s", strempty(list), list ? ", " : "", project);
                        free(list);
                        list = next;
                }
        }
        if (n_match == 0) {
                *ret_error = o->project ? xasprintf("there is no Database '%s' in project '%s'", name, o->project)
                                        : xasprintf("there is no Database '%s' in the repository", name);
                return -ENOENT;
        }
        if (n_match > 1) {
                *ret_error = xasprintf("Database '%s' exists in %zu projects: %s", name, n_match, list);
                return -ENOTUNIQ;
        }
        r = load_declared(&c->set.dbs[found], o->repo, &doc, ret_error);
        if (r < 0)
                return r;
        r = build_computed(c, found, o, &computed, ret_error);
        if (r < 0)
                return r;
        json_object_object_add(doc, "computed", computed);
        if (o->json) {
                fputs(json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                                  JSON_C_TO_STRING_NOSLASHESCAPE),
                      out);
                fputc('\n', out);
                return 0;
        }
        r = write_yaml(doc, out);
        if (r < 0)
                *ret_error = xstrdup("cannot write YAML");
        return r;
}
