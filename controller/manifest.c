/* Database and Application manifests: schema checks with did-you-mean hints, defaults,
 * and the model the resolver and renderer work on. */
#include <ctype.h>
#include <fcntl.h>

#include "calendar.h"
#include "discover.h"
#include "fileio.h"
#include "manifest.h"

typedef struct pctx {
        manifest_set *set;
        diag_list *diags;
        const char *path;
        const char *kind;     /* "Database" / "Application", for messages */
} pctx;

static const char *const DATABASE_SPEC_KEYS[] = { "cpuCount", "clusterSize", "backupConfig", "postgresVersion" };
static const char *const BACKUP_KEYS[] = { "enabled", "schedule", "retentionDays" };
static const char *const METADATA_KEYS[] = { "name", "project", "environment", "organizational-unit",
                                             "organization", "labels", "annotations" };
static const char *const TOP_KEYS[] = { "apiVersion", "kind", "metadata", "spec" };
static const char *const ACCESS_KEYS[] = { "databases" };
static const char *const GRANT_KEYS[] = { "name", "readOnly", "secretSource" };
static const char *const SECRET_SOURCE_KEYS[] = { "envVar" };
static const char *const TARGET_KEYS[] = { "hosts", "unit" };
static const char *const KINDS[] = { "Database", "Application" };
static const int SUPPORTED_POSTGRES[] = { 15 };

void manifest_set_init(manifest_set *s) {
        *s = (manifest_set) {};
        arena_init(&s->arena);
        strpool_init(&s->ids, &s->arena);
        strpool_init(&s->schedules, &s->arena);
}

void manifest_set_done(manifest_set *s) {
        strpool_done(&s->ids);
        strpool_done(&s->schedules);
        free(s->dbs);
        free(s->apps);
        arena_done(&s->arena);
        *s = (manifest_set) {};
}

bool valid_dns_label(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > NAME_MAX_LEN)
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];
                if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
                        return false;
        }
        return s[0] != '-' && s[n - 1] != '-';
}

bool valid_env_var(const char *s) {
        if (!((*s >= 'A' && *s <= 'Z') || *s == '_'))
                return false;
        for (s++; *s; s++)
                if (!((*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
                        return false;
        return true;
}

static bool valid_host_name(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 253 || s[0] == '.' || s[n - 1] == '.')
                return false;
        for (const char *p = s; *p; p++)
                if (!(isalnum((unsigned char) *p) || *p == '-' || *p == '.' || *p == '_'))
                        return false;
        return true;
}

void identity_format(const identity *id, char *buf, size_t size) {
        snprintf(buf, size, "%s/%s/%s/%s", id->organization, id->organizational_unit, id->environment,
                 id->project);
}

/* Parts of the model's identities are interned: equal parts are usually the same pointer. */
static int part_cmp(const char *a, const char *b) {
        return a == b ? 0 : strcmp(a, b);
}

int identity_cmp(const identity *a, const identity *b) {
        int r;
        if ((r = part_cmp(a->organization, b->organization)))
                return r;
        if ((r = part_cmp(a->organizational_unit, b->organizational_unit)))
                return r;
        if ((r = part_cmp(a->environment, b->environment)))
                return r;
        return part_cmp(a->project, b->project);
}

/* User text inside a message: bounded and free of control characters. */
static const char *shown(pctx *c, const char *v) {
        size_t n = strlen(v), max = 64;
        char *out = arena_alloc(&c->set->arena, max + 8);
        size_t i;

        for (i = 0; i < n && i < max; i++)
                out[i] = (unsigned char) v[i] < 0x20 || v[i] == 0x7f ? '?' : v[i];
        if (n > max)
                strcpy(out + i, "...");
        return out;
}

#define ERR(c, n, ...) diag_add((c)->diags, DIAG_ERROR, (c)->path, (n)->line, (n)->col, __VA_ARGS__)

static mloc loc_of(pctx *c, const ynode *n) {
        return (mloc) { c->path, n->line, n->col };
}

/* The model outlives the parse trees (each is freed once its file is parsed), so what it keeps
 * from a tree is copied into the set's arena, and the parts of identities interned. */
static const char *keep(pctx *c, const char *s) {
        return s ? arena_strdup(&c->set->arena, s) : NULL;
}

static void keep_identity(pctx *c, identity *id) {
        id->organization = strpool_intern(&c->set->ids, id->organization);
        id->organizational_unit = strpool_intern(&c->set->ids, id->organizational_unit);
        id->environment = strpool_intern(&c->set->ids, id->environment);
        id->project = strpool_intern(&c->set->ids, id->project);
}

/* A key that belongs one level down: the commonest slip when YAML loses its indentation. */
static const char *nested_home(const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(METADATA_KEYS); i++)
                if (streq(key, METADATA_KEYS[i]))
                        return "metadata";
        for (size_t i = 0; i < ELEMENTSOF(DATABASE_SPEC_KEYS); i++)
                if (streq(key, DATABASE_SPEC_KEYS[i]))
                        return "spec";
        if (streq(key, "accessControl") || streq(key, "target"))
                return "spec";
        for (size_t i = 0; i < ELEMENTSOF(BACKUP_KEYS); i++)
                if (streq(key, BACKUP_KEYS[i]))
                        return "spec.backupConfig";
        return NULL;
}

/* Report keys of map not in allowed, with a did-you-mean hint. */
static void check_keys(pctx *c, const ynode *map, const char *const *allowed, size_t n, const char *where) {
        for (size_t i = 0; i < map->n_pairs; i++) {
                const ynode *k = map->pairs[i].key;
                const char *hint;
                bool ok = false;

                for (size_t j = 0; j < n && !ok; j++)
                        ok = k->value[0] == allowed[j][0] && streq(k->value, allowed[j]);
                if (ok)
                        continue;
                if (streq(k->value, "computed")) {
                        ERR(c, k, "'computed' is written by the platform and must not appear in a manifest; remove it");
                        continue;
                }
                hint = closest_word(k->value, allowed, n);
                if (allowed == TOP_KEYS && nested_home(k->value))
                        ERR(c, k, "unknown key '%s' in %s; it belongs under '%s': indent it", shown(c, k->value), where,
                            nested_home(k->value));
                else if (hint)
                        ERR(c, k, "unknown key '%s' in %s; did you mean '%s'?", shown(c, k->value), where, hint);
                else
                        ERR(c, k, "unknown key '%s' in %s", shown(c, k->value), where);
        }
}

/* The path of parent.key in messages. field is NULL for a key of the document itself: the
 * document is then named by its kind when the key is missing ("Database: missing required key
 * 'spec'"), and the key by itself otherwise ("metadata: expected a mapping"). */
static const char *field_path(pctx *c, const char *field, const char *key) {
        return field ? arena_printf(&c->set->arena, "%s.%s", field, key) : key;
}

static const char *field_owner(pctx *c, const char *field) {
        return field ? field : c->kind ? c->kind : "manifest";
}

/* A quoted "4" or "true" is a string in YAML; say so when the quotes are the only problem. */
static const char *quoted_hint(const ynode *n, bool want_bool) {
        ynode unquoted;
        int64_t i;
        bool b;

        if (n->type != YNODE_SCALAR || n->plain || n->tag)
                return "";
        unquoted = *n;
        unquoted.plain = true;
        if (want_bool ? ynode_get_bool(&unquoted, &b) >= 0 : ynode_get_int(&unquoted, &i) != -EINVAL)
                return "; write it without quotes";
        return "";
}

static const ynode *want_map(pctx *c, const ynode *parent, const char *key, const char *field, bool required) {
        const ynode *n = ymap_get(parent, key);

        if (n && ynode_is_null(n) && required) {
                ERR(c, ymap_get_key(parent, key), "%s: '%s' is empty; its keys must be indented under it",
                    field_owner(c, field), key);
                return NULL;
        }
        if (!n || ynode_is_null(n)) {
                if (required)
                        ERR(c, parent, "%s: missing required key '%s'", field_owner(c, field), key);
                return NULL;
        }
        if (n->type != YNODE_MAPPING) {
                ERR(c, n, "%s: expected a mapping, got %s", field_path(c, field, key), ynode_type_name(n));
                return NULL;
        }
        return n;
}

/* A string field; returns NULL (after reporting) when missing or of the wrong type. */
static const char *want_string(pctx *c, const ynode *parent, const char *key, const char *field, bool required,
                               const ynode **ret_node) {
        const ynode *n = ymap_get(parent, key);

        if (ret_node)
                *ret_node = n;
        if (!n || ynode_is_null(n)) {
                if (required)
                        ERR(c, n ? n : parent, "%s: missing required key '%s'", field_owner(c, field), key);
                return NULL;
        }
        if (n->type != YNODE_SCALAR) {
                ERR(c, n, "%s: expected a string, got %s", field_path(c, field, key), ynode_type_name(n));
                return NULL;
        }
        if (!ynode_is_string(n)) {
                ERR(c, n, "%s: expected a string, got %s ('%s'); quote it if it is meant as text",
                    field_path(c, field, key), ynode_type_name(n), shown(c, n->value));
                return NULL;
        }
        return n->value;
}

static bool want_int(pctx *c, const ynode *parent, const char *key, const char *field, int64_t min, int64_t max,
                     bool required, int def, int *ret) {
        const ynode *n = ymap_get(parent, key);
        int64_t v;
        int r;

        if (!n || ynode_is_null(n)) {
                if (required) {
                        ERR(c, n ? n : parent, "%s: missing required key '%s'", field, key);
                        return false;
                }
                *ret = def;
                return true;
        }
        r = n->type == YNODE_SCALAR ? ynode_get_int(n, &v) : -EINVAL;
        if (r == -ERANGE || (r >= 0 && (v < min || v > max))) {
                ERR(c, n, "%s.%s: %s is out of range (%lld to %lld)", field, key, shown(c, n->value),
                    (long long) min, (long long) max);
                return false;
        }
        if (r < 0) {
                if (n->type == YNODE_SCALAR)
                        ERR(c, n, "%s.%s: expected an integer, got %s ('%s')%s", field, key, ynode_type_name(n),
                            shown(c, n->value), quoted_hint(n, false));
                else
                        ERR(c, n, "%s.%s: expected an integer, got %s", field, key, ynode_type_name(n));
                return false;
        }
        *ret = (int) v;
        return true;
}

static bool want_bool(pctx *c, const ynode *parent, const char *key, const char *field, bool def, bool *ret) {
        const ynode *n = ymap_get(parent, key);

        if (!n || ynode_is_null(n)) {
                *ret = def;
                return true;
        }
        if (n->type != YNODE_SCALAR || ynode_get_bool(n, ret) < 0) {
                if (n->type == YNODE_SCALAR)
                        ERR(c, n, "%s.%s: expected true or false, got %s ('%s')%s", field, key, ynode_type_name(n),
                            shown(c, n->value), quoted_hint(n, true));
                else
                        ERR(c, n, "%s.%s: expected true or false, got %s", field, key, ynode_type_name(n));
                return false;
        }
        return true;
}

static void parse_string_map(pctx *c, const ynode *parent, const char *key) {
        const ynode *n = ymap_get(parent, key);
        if (!n || ynode_is_null(n))
                return;
        if (n->type != YNODE_MAPPING) {
                ERR(c, n, "metadata.%s: expected a mapping of strings, got %s", key, ynode_type_name(n));
                return;
        }
        for (size_t i = 0; i < n->n_pairs; i++)
                if (n->pairs[i].value->type != YNODE_SCALAR)
                        ERR(c, n->pairs[i].value, "metadata.%s.%s: expected a string, got %s", key,
                            shown(c, n->pairs[i].key->value), ynode_type_name(n->pairs[i].value));
}

static bool parse_metadata(pctx *c, const ynode *root, identity *id, const char **ret_name, mloc *ret_name_loc) {
        static const struct {
                const char *key;
                size_t offset;
        } parts[] = {
                { "organization", offsetof(identity, organization) },
                { "organizational-unit", offsetof(identity, organizational_unit) },
                { "environment", offsetof(identity, environment) },
                { "project", offsetof(identity, project) },
        };
        const ynode *meta = want_map(c, root, "metadata", NULL, true), *n;
        const char *name;
        bool ok = true;

        if (!meta)
                return false;
        check_keys(c, meta, METADATA_KEYS, ELEMENTSOF(METADATA_KEYS), "metadata");
        parse_string_map(c, meta, "labels");
        parse_string_map(c, meta, "annotations");

        name = want_string(c, meta, "name", "metadata", true, &n);
        if (name && !valid_dns_label(name)) {
                ERR(c, n, "metadata.name: '%s' is not a valid name: use at most 63 lower-case letters, digits "
                          "and '-', starting and ending with a letter or digit", shown(c, name));
                name = NULL;
        }
        if (name) {
                *ret_name = name;
                *ret_name_loc = loc_of(c, n);
        } else
                ok = false;

        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                const char *v = want_string(c, meta, parts[i].key, "metadata", true, &n);
                if (v && !valid_dns_label(v)) {
                        ERR(c, n, "metadata.%s: '%s' is not a valid identifier: use at most 63 lower-case "
                                  "letters, digits and '-', starting and ending with a letter or digit",
                            parts[i].key, shown(c, v));
                        v = NULL;
                }
                if (!v)
                        ok = false;
                *(const char **) ((char *) id + parts[i].offset) = v;
        }
        return ok;
}

static m_database *add_db(manifest_set *s) {
        if (s->n_dbs == s->dbs_alloc) {
                s->dbs_alloc = s->dbs_alloc ? s->dbs_alloc * 2 : 64;
                s->dbs = xrealloc(s->dbs, s->dbs_alloc * sizeof(m_database));
        }
        return memset(&s->dbs[s->n_dbs++], 0, sizeof(m_database));
}

static m_application *add_app(manifest_set *s) {
        if (s->n_apps == s->apps_alloc) {
                s->apps_alloc = s->apps_alloc ? s->apps_alloc * 2 : 64;
                s->apps = xrealloc(s->apps, s->apps_alloc * sizeof(m_application));
        }
        return memset(&s->apps[s->n_apps++], 0, sizeof(m_application));
}

static void parse_database(pctx *c, const ynode *root, const ydoc *doc) {
        m_database d = { .loc = { c->path, doc->line, doc->col } };
        const ynode *spec, *backup, *n;
        bool ok;

        ok = parse_metadata(c, root, &d.id, &d.name, &d.name_loc);
        spec = want_map(c, root, "spec", NULL, true);
        if (!spec)
                return;
        check_keys(c, spec, DATABASE_SPEC_KEYS, ELEMENTSOF(DATABASE_SPEC_KEYS), "Database spec");
        ok &= want_int(c, spec, "cpuCount", "spec", 1, 256, true, 0, &d.cpu_count);
        ok &= want_int(c, spec, "clusterSize", "spec", 1, 9, false, 1, &d.cluster_size);
        ok &= want_int(c, spec, "postgresVersion", "spec", 1, 1000, false, 15, &d.postgres_version);
        if (ok) {
                bool supported = false;
                for (size_t i = 0; i < ELEMENTSOF(SUPPORTED_POSTGRES); i++)
                        supported |= SUPPORTED_POSTGRES[i] == d.postgres_version;
                if (!supported) {
                        n = ymap_get(spec, "postgresVersion");
                        ERR(c, n, "spec.postgresVersion: PostgreSQL %d is not supported; supported: 15",
                            d.postgres_version);
                        ok = false;
                }
        }

        d.backup_enabled = true;
        d.schedule = "daily";
        d.retention_days = 7;
        d.schedule_loc = d.loc;
        backup = want_map(c, spec, "backupConfig", "spec", false);
        if (!backup && ymap_get(spec, "backupConfig") && !ynode_is_null(ymap_get(spec, "backupConfig")))
                ok = false;
        if (backup) {
                const char *sched;

                check_keys(c, backup, BACKUP_KEYS, ELEMENTSOF(BACKUP_KEYS), "backupConfig");
                ok &= want_bool(c, backup, "enabled", "spec.backupConfig", true, &d.backup_enabled);
                ok &= want_int(c, backup, "retentionDays", "spec.backupConfig", 1, 3650, false, 7, &d.retention_days);
                sched = want_string(c, backup, "schedule", "spec.backupConfig", false, &n);
                if (sched) {
                        /* A handful of schedules recur in thousands of files: each is parsed once. */
                        const char *known = strpool_find(&c->set->schedules, sched);
                        _cleanup_free_ char *err = NULL;

                        if (!known && calendar_spec_parse(sched, NULL, &err) < 0) {
                                ERR(c, n, "spec.backupConfig.schedule: %s", err ? err : "invalid calendar expression");
                                ok = false;
                        } else {
                                d.schedule = known ? known : strpool_intern(&c->set->schedules, sched);
                                d.schedule_loc = loc_of(c, n);
                        }
                } else if (n && !ynode_is_null(n))
                        ok = false;
        }
        if (!ok)
                return;
        d.name = keep(c, d.name);
        keep_identity(c, &d.id);
        *add_db(c->set) = d; /* d.schedule is "daily" or from c->set->schedules: already kept */
}

typedef struct indexed_name {
        const char *name;
        size_t index;
} indexed_name;

static int indexed_name_cmp(const void *a, const void *b) {
        const indexed_name *x = a, *y = b;
        int r = strcmp(x->name, y->name);
        return r ? r : x->index < y->index ? -1 : x->index > y->index;
}

/* Lists of at most this many names (nearly all: grants, target hosts) are checked pair by pair,
 * with their scratch arrays on the stack. */
#define SHORT_LIST 8

/* Sets first[i] to the index of the first name equal to names[i] when that is an earlier one,
 * else to SIZE_MAX. Longer lists are sorted once: comparing every pair would let a long list in
 * a hostile file take hours. */
static void find_repeats(const char *const *names, size_t n, size_t *first) {
        _cleanup_free_ indexed_name *v = NULL;

        if (n <= SHORT_LIST) {
                for (size_t i = 0; i < n; i++) {
                        first[i] = SIZE_MAX;
                        for (size_t j = 0; j < i && first[i] == SIZE_MAX; j++)
                                if (streq(names[i], names[j]))
                                        first[i] = j;
                }
                return;
        }
        v = xmalloc(n * sizeof(indexed_name));
        for (size_t i = 0; i < n; i++)
                v[i] = (indexed_name) { names[i], i };
        qsort_safe(v, n, sizeof(indexed_name), indexed_name_cmp);
        for (size_t i = 0, start = 0; i < n; i++) {
                if (i > 0 && !streq(v[i].name, v[start].name))
                        start = i;
                first[v[i].index] = i == start ? SIZE_MAX : v[start].index;
        }
}

/* One grant per database and one grant per variable: anything else is ambiguous. Keeps the
 * grants that repeat neither. */
static void check_grant_repeats(pctx *c, m_application *a) {
        size_t n = a->n_grants, w = 0;
        const char *small_names[2 * SHORT_LIST];
        size_t small_first[2 * SHORT_LIST];
        _cleanup_free_ const char **heap_names = NULL;
        _cleanup_free_ size_t *heap_first = NULL;
        const char **by_db = n <= SHORT_LIST ? small_names : (heap_names = xmalloc(2 * n * sizeof(char *))),
                   **by_env = by_db + n;
        size_t *first_db = n <= SHORT_LIST ? small_first : (heap_first = xmalloc(2 * n * sizeof(size_t))),
               *first_env = first_db + n;

        for (size_t i = 0; i < n; i++) {
                by_db[i] = a->grants[i].database;
                by_env[i] = a->grants[i].env_var;
        }
        find_repeats(by_db, n, first_db);
        find_repeats(by_env, n, first_env);
        for (size_t i = 0; i < n; i++) {
                const m_grant *g = &a->grants[i];

                if (first_db[i] != SIZE_MAX)
                        diag_add(c->diags, DIAG_ERROR, c->path, g->loc.line, g->loc.col,
                                 "database '%s' is granted twice to application '%s' (first at line %d)", g->database,
                                 strempty(a->name), a->grants[first_db[i]].loc.line);
                else if (first_env[i] != SIZE_MAX)
                        diag_add(c->diags, DIAG_ERROR, c->path, g->env_loc.line, g->env_loc.col,
                                 "environment variable '%s' is injected twice (first at line %d, for database '%s')",
                                 shown(c, g->env_var), a->grants[first_env[i]].env_loc.line,
                                 a->grants[first_env[i]].database);
        }
        /* Only now: the messages above name earlier grants by index. */
        for (size_t i = 0; i < n; i++)
                if (first_db[i] == SIZE_MAX && first_env[i] == SIZE_MAX)
                        a->grants[w++] = a->grants[i];
        a->n_grants = w;
}

static void parse_grants(pctx *c, const ynode *access, m_application *a) {
        const ynode *list = ymap_get(access, "databases");

        check_keys(c, access, ACCESS_KEYS, ELEMENTSOF(ACCESS_KEYS), "accessControl");
        if (!list || ynode_is_null(list))
                return;
        if (list->type != YNODE_SEQUENCE) {
                ERR(c, list, "spec.accessControl.databases: expected a list, got %s", ynode_type_name(list));
                return;
        }
        a->grants = arena_alloc(&c->set->arena, (list->n_items ? list->n_items : 1) * sizeof(m_grant));
        for (size_t i = 0; i < list->n_items; i++) {
                const ynode *item = list->items[i], *src, *n, *ev_node;
                char field[96];
                m_grant g = { .loc = loc_of(c, item), .db = -1 };
                bool ok = true;

                snprintf(field, sizeof(field), "spec.accessControl.databases[%zu]", i);
                if (item->type != YNODE_MAPPING) {
                        ERR(c, item, "%s: expected a mapping with 'name' and 'secretSource', got %s", field,
                            ynode_type_name(item));
                        continue;
                }
                check_keys(c, item, GRANT_KEYS, ELEMENTSOF(GRANT_KEYS), "a database grant");
                g.database = want_string(c, item, "name", field, true, &n);
                if (g.database && !valid_dns_label(g.database)) {
                        ERR(c, n, "%s.name: '%s' is not a valid database name: database names use at most 63 "
                                  "lower-case letters, digits and '-', starting and ending with a letter or digit",
                            field, shown(c, g.database));
                        g.database = NULL;
                }
                if (g.database)
                        g.name_loc = loc_of(c, n);
                ok &= g.database != NULL;
                /* Least privilege: a grant that does not say otherwise is read-only. */
                ok &= want_bool(c, item, "readOnly", field, true, &g.read_only);

                src = want_map(c, item, "secretSource", field, true);
                strncat(field, ".secretSource", sizeof(field) - strlen(field) - 1);
                if (src) {
                        check_keys(c, src, SECRET_SOURCE_KEYS, ELEMENTSOF(SECRET_SOURCE_KEYS), "secretSource");
                        g.env_var = want_string(c, src, "envVar", field, true, &ev_node);
                        if (g.env_var && !valid_env_var(g.env_var)) {
                                ERR(c, ev_node,
                                    "%s.envVar: '%s' is not a valid environment variable name "
                                    "(upper-case letters, digits and '_', not starting with a digit)",
                                    field, shown(c, g.env_var));
                                g.env_var = NULL;
                        }
                        if (g.env_var)
                                g.env_loc = loc_of(c, ev_node);
                }
                ok &= g.env_var != NULL;
                if (ok)
                        a->grants[a->n_grants++] = g;
        }
        check_grant_repeats(c, a);
}

static bool parse_target(pctx *c, const ynode *target, m_application *a) {
        const ynode *hosts, *n;
        const char *unit;
        bool ok = true;

        check_keys(c, target, TARGET_KEYS, ELEMENTSOF(TARGET_KEYS), "target");
        hosts = ymap_get(target, "hosts");
        if (hosts && !ynode_is_null(hosts)) {
                if (hosts->type != YNODE_SEQUENCE) {
                        ERR(c, hosts, "spec.target.hosts: expected a list of host names, got %s", ynode_type_name(hosts));
                        ok = false;
                } else {
                        size_t n_items = hosts->n_items, small[2 * SHORT_LIST], w = 0;
                        _cleanup_free_ size_t *heap = n_items <= SHORT_LIST ? NULL : xmalloc(2 * n_items * sizeof(size_t));
                        size_t *first = heap ? heap : small, *pos = first + n_items;

                        a->hosts = arena_alloc(&c->set->arena, (hosts->n_items + 1) * sizeof(char *));
                        a->host_locs = arena_alloc(&c->set->arena, (hosts->n_items + 1) * sizeof(mloc));
                        for (size_t i = 0; i < hosts->n_items; i++) {
                                const ynode *h = hosts->items[i];

                                if (!ynode_is_string(h) || !valid_host_name(h->value)) {
                                        ERR(c, h, "spec.target.hosts[%zu]: expected a host name, got %s%s%s%s", i,
                                            ynode_type_name(h), h->type == YNODE_SCALAR ? " ('" : "",
                                            h->type == YNODE_SCALAR ? shown(c, h->value) : "",
                                            h->type == YNODE_SCALAR ? "')" : "");
                                        ok = false;
                                        continue;
                                }
                                pos[a->n_hosts] = i;
                                a->host_locs[a->n_hosts] = loc_of(c, h);
                                a->hosts[a->n_hosts++] = h->value;
                        }
                        find_repeats(a->hosts, a->n_hosts, first);
                        for (size_t j = 0; j < a->n_hosts; j++) {
                                if (first[j] != SIZE_MAX) {
                                        diag_add(c->diags, DIAG_ERROR, c->path, a->host_locs[j].line, a->host_locs[j].col,
                                                 "spec.target.hosts[%zu]: host '%s' is listed twice", pos[j],
                                                 shown(c, a->hosts[j]));
                                        ok = false;
                                        continue;
                                }
                                a->host_locs[w] = a->host_locs[j];
                                a->hosts[w++] = a->hosts[j];
                        }
                        a->n_hosts = w;
                }
        }
        unit = want_string(c, target, "unit", "spec.target", false, &n);
        if (unit) {
                const char *dot = strrchr(unit, '.');
                bool chars_ok = strlen(unit) <= 255;
                for (const char *p = unit; *p && chars_ok; p++)
                        chars_ok = isalnum((unsigned char) *p) || strchr(":-_.\\@", *p);
                if (!chars_ok || unit[0] == '.' || unit[0] == '\0') {
                        ERR(c, n, "spec.target.unit: '%s' is not a valid systemd unit name", shown(c, unit));
                        return false;
                }
                if (dot && !streq(dot, ".service")) {
                        ERR(c, n, "spec.target.unit: '%s' is not a service; the unit restarted with new credentials must be a .service",
                            shown(c, unit));
                        return false;
                }
                a->unit = dot ? keep(c, unit) : arena_concat(&c->set->arena, unit, ".service", NULL);
        } else if (n && !ynode_is_null(n))
                ok = false;
        return ok;
}

static void parse_application(pctx *c, const ynode *root, const ydoc *doc) {
        m_application a = { .loc = { c->path, doc->line, doc->col } };
        const ynode *spec, *access, *target;
        bool ok, target_ok = true;

        ok = parse_metadata(c, root, &a.id, &a.name, &a.name_loc);
        spec = want_map(c, root, "spec", NULL, true);
        if (!spec)
                return;
        /* Other keys of an Application's spec (source, ...) belong to the wider platform. */
        if (ymap_get_key(spec, "computed"))
                ERR(c, ymap_get_key(spec, "computed"),
                    "'computed' is written by the platform and must not appear in a manifest; remove it");
        access = want_map(c, spec, "accessControl", "spec", false);
        if (access) {
                size_t before = c->diags->n_errors;
                parse_grants(c, access, &a);
                ok &= c->diags->n_errors == before;
        } else if (ymap_get(spec, "accessControl") && !ynode_is_null(ymap_get(spec, "accessControl")))
                ok = false;
        target = want_map(c, spec, "target", "spec", false);
        if (target)
                target_ok = parse_target(c, target, &a);
        else if (ymap_get(spec, "target") && !ynode_is_null(ymap_get(spec, "target")))
                target_ok = false;
        ok &= target_ok;
        if (a.n_grants > 0 && a.n_hosts == 0 && target_ok)
                ERR(c, target ? target : spec, "spec.target.hosts: required when accessControl grants databases: "
                                               "name the hosts that run '%s'", strempty(a.name));
        if (!ok || (a.n_grants > 0 && a.n_hosts == 0))
                return;
        if (!a.unit)
                a.unit = arena_concat(&c->set->arena, a.name, ".service", NULL);
        a.name = keep(c, a.name);
        keep_identity(c, &a.id);
        for (size_t i = 0; i < a.n_grants; i++) {
                a.grants[i].database = keep(c, a.grants[i].database);
                a.grants[i].env_var = keep(c, a.grants[i].env_var);
        }
        for (size_t i = 0; i < a.n_hosts; i++)
                a.hosts[i] = keep(c, a.hosts[i]);
        *add_app(c->set) = a;
}

static void parse_document(pctx *c, const ydoc *doc) {
        const ynode *root = doc->root, *api, *kind_node;
        const char *kind;

        if (!root)
                return; /* an empty document */
        if (root->type != YNODE_MAPPING) {
                c->set->n_ignored++;
                diag_add(c->diags, DIAG_NOTE, c->path, doc->line, doc->col, "not a lowops manifest, ignored");
                return;
        }
        api = ymap_get(root, "apiVersion");
        if (!api || api->type != YNODE_SCALAR || strncmp(api->value, "lowops.", 7) != 0) {
                c->set->n_ignored++;
                diag_add(c->diags, DIAG_NOTE, c->path, doc->line, doc->col, "not a lowops manifest, ignored");
                return;
        }
        if (!streq(api->value, MANIFEST_API_VERSION)) {
                ERR(c, api, "unknown apiVersion '%s'; this controller reads '%s'", shown(c, api->value),
                    MANIFEST_API_VERSION);
                return;
        }
        c->kind = NULL; /* not yet known: a missing key is the manifest's */
        kind = want_string(c, root, "kind", NULL, true, &kind_node);
        if (!kind)
                return;
        if (streq(kind, "Database")) {
                c->kind = "Database";
                check_keys(c, root, TOP_KEYS, ELEMENTSOF(TOP_KEYS), "a Database manifest");
                parse_database(c, root, doc);
        } else if (streq(kind, "Application")) {
                c->kind = "Application";
                check_keys(c, root, TOP_KEYS, ELEMENTSOF(TOP_KEYS), "an Application manifest");
                parse_application(c, root, doc);
        } else {
                const char *hint = closest_word(kind, KINDS, ELEMENTSOF(KINDS));
                if (hint)
                        ERR(c, kind_node, "unknown kind '%s'; did you mean '%s'?", shown(c, kind), hint);
                else
                        ERR(c, kind_node, "unknown kind '%s'; kinds are 'Database' and 'Application'", shown(c, kind));
        }
}

void manifest_load_buffer(manifest_set *s, const char *path, const char *data, size_t size, diag_list *diags) {
        /* A file that does not parse may not be ours (templates, other tools' YAML): it is an error
         * only when it looks like a manifest. */
        bool ours = memmem(data, size, "lowops.", 7) != NULL;
        yfile *f = NULL;
        /* The model's locations outlive the tree: the path goes into the set's arena. */
        pctx c = { .set = s, .diags = diags, .path = arena_strdup(&s->arena, path) };

        (void) yaml_load(path, data, size, NULL, !ours, diags, &f);
        if (f->syntax_error && !ours)
                diag_add(diags, DIAG_NOTE, path, 0, 0, "not valid YAML and not a manifest, ignored");
        s->n_yaml_files++;
        for (size_t i = 0; i < f->n_docs; i++)
                parse_document(&c, &f->docs[i]);
        /* Freed now, not with the set: the next file's tree reuses this memory instead of touching
         * new pages (ten thousand trees would hold 16 times the YAML's size). */
        yfile_free(f);
}

/* The directory of path (relative to rootfd) open in *dirfd, reusing the previous one when it is the
 * same: files come sorted, so mostly a directory at a time. Returns the file's name within it, or
 * NULL with errno set. */
static const char *open_parent(int rootfd, const char *path, char **dir, int *dirfd) {
        const char *slash = strrchr(path, '/');
        size_t n = slash ? (size_t) (slash - path) : 0;

        if (!slash)
                return path;
        if (*dirfd >= 0 && *dir && strlen(*dir) == n && strncmp(*dir, path, n) == 0)
                return slash + 1;
        free(*dir);
        *dir = xstrndup(path, n);
        if (*dirfd >= 0)
                close(*dirfd);
        *dirfd = openat(rootfd, *dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return *dirfd >= 0 ? slash + 1 : NULL;
}

int manifest_load_repo(manifest_set *s, const char *root, diag_list *diags) {
        _cleanup_close_ int rootfd = -1, dirfd = -1;
        _cleanup_free_ char *dir = NULL, *data = NULL;
        file_list files = {};
        size_t alloc = 0;
        int r;

        r = discover_yaml_files(root, &files, diags);
        if (r < 0)
                return r;
        rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (rootfd < 0) {
                r = -errno;
                file_list_done(&files);
                return r;
        }
        for (size_t i = 0; i < files.n; i++) {
                /* Opened from its directory, not by its full path: the kernel walks the path once per
                 * directory instead of once per file. */
                const char *name = open_parent(rootfd, files.paths[i], &dir, &dirfd);
                size_t size;

                r = name ? read_file_reusing(name == files.paths[i] ? rootfd : dirfd, name, DISCOVER_MAX_FILE_SIZE,
                                             &data, &alloc, &size)
                         : -errno;
                if (r == -EFBIG) {
                        diag_add(diags, DIAG_ERROR, files.paths[i], 0, 0, "file is larger than %u MiB; refusing to read it",
                                 DISCOVER_MAX_FILE_SIZE >> 20);
                        continue;
                }
                if (r < 0) {
                        diag_add(diags, DIAG_ERROR, files.paths[i], 0, 0, "cannot read: %s", strerror(-r));
                        continue;
                }
                manifest_load_buffer(s, files.paths[i], data, size, diags);
        }
        file_list_done(&files);
        return 0;
}
