/* Roles and privileges by observe → diff → apply: one query reads what exists, the difference
 * becomes one transaction (or, for large batches, one per parallel connection), and nothing
 * is written when nothing differs. Privileges go to the group roles only: per-role grants grow
 * every object's ACL and fail outright at thousands of roles. */
#include <stdio.h>

#include "failpoint.h"
#include "macro.h"
#include "pg.h"
#include "roles.h"
#include "service.h"
#include "strbuf.h"

typedef struct live_role {
        char *name;
        bool login;
        char *verifier;       /* "" when none */
        bool in_rw, in_ro, rw_in_owner;
        char *db_setting;     /* setconfig in our database, "" when none */
} live_role;

typedef struct live_state {
        live_role *roles;
        size_t n;
        bool database_exists;
} live_state;

static void live_done(live_state *l) {
        for (size_t i = 0; i < l->n; i++) {
                free(l->roles[i].name);
                erase_and_free(l->roles[i].verifier);
                free(l->roles[i].db_setting);
        }
        free(l->roles);
        *l = (live_state) {};
}

static live_role *live_find(live_state *l, const char *name) {
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->roles[i].name, name))
                        return &l->roles[i];
        return NULL;
}

/* A text[] literal of the document's role names, for = ANY($1): elements double-quoted, with
 * backslash before '"' and '\\' (array literal syntax; the value itself travels as a parameter). */
static char *names_array(const doc_database *db) {
        strbuf b = {};
        strbuf_append(&b, "{");
        for (size_t i = 0; i < db->n_roles; i++) {
                strbuf_append(&b, i ? ",\"" : "\"");
                for (const char *p = db->roles[i].name; *p; p++)
                        strbuf_printf(&b, *p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
                strbuf_append(&b, "\"");
        }
        strbuf_append(&b, "}");
        return strbuf_steal(&b);
}

static int observe(pg_conn *c, const doc_database *db, live_state *l, char **err) {
        _cleanup_rows_ pg_rows *rows = NULL;
        _cleanup_free_ char *names = names_array(db);
        const char *params[] = { names, db->name };
        int r;

        r = pg_exec(c,
                    "SELECT a.rolname, a.rolcanlogin, coalesce(a.rolpassword, ''),"
                    "  EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
                    "          WHERE m.member = a.oid AND g.rolname = '" ROLE_READWRITE "'),"
                    "  EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
                    "          WHERE m.member = a.oid AND g.rolname = '" ROLE_READONLY "'),"
                    "  EXISTS (SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
                    "          WHERE m.member = a.oid AND g.rolname = '" ROLE_OWNER "'),"
                    "  coalesce((SELECT array_to_string(s.setconfig, ',') FROM pg_db_role_setting s"
                    "            JOIN pg_database d ON d.oid = s.setdatabase"
                    "            WHERE s.setrole = a.oid AND d.datname = $2), '')"
                    " FROM pg_authid a"
                    " WHERE a.rolname = ANY($1::text[])"
                    "    OR a.rolname IN ('" ROLE_OWNER "', '" ROLE_READWRITE "', '" ROLE_READONLY "')"
                    "    OR a.oid IN (SELECT m.member FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
                    "                 WHERE g.rolname IN ('" ROLE_READWRITE "', '" ROLE_READONLY "'))"
                    " ORDER BY 1",
                    params, 2, &rows, err);
        if (r < 0)
                return r;
        l->roles = xcalloc(pg_rows_count(rows) + 1, sizeof(live_role));
        for (size_t i = 0; i < pg_rows_count(rows); i++) {
                live_role *lr = &l->roles[l->n++];
                lr->name = xstrdup(pg_rows_get(rows, i, 0));
                lr->login = streq(pg_rows_get(rows, i, 1), "t");
                lr->verifier = xstrdup(pg_rows_get(rows, i, 2));
                lr->in_rw = streq(pg_rows_get(rows, i, 3), "t");
                lr->in_ro = streq(pg_rows_get(rows, i, 4), "t");
                lr->rw_in_owner = streq(pg_rows_get(rows, i, 5), "t");
                lr->db_setting = xstrdup(pg_rows_get(rows, i, 6));
        }
        pg_rows_free(TAKE_PTR(rows));
        r = pg_exec(c, "SELECT count(*) FROM pg_database WHERE datname = $1", params + 1, 1, &rows, err);
        if (r < 0)
                return r;
        l->database_exists = !streq(pg_rows_get(rows, 0, 0), "0");
        return 0;
}

static bool is_app_role(const live_role *lr) {
        return !streq(lr->name, ROLE_OWNER) && !streq(lr->name, ROLE_READWRITE) && !streq(lr->name, ROLE_READONLY);
}

/* "accounts-db/auth-api": roles are reported with their database. */
static const char *role_label(char *buf, size_t size, const doc_database *db, const char *role) {
        snprintf(buf, size, "%s/%s", db->name, role);
        return buf;
}

static const doc_role *doc_find(const doc_database *db, const char *name) {
        for (size_t i = 0; i < db->n_roles; i++)
                if (streq(db->roles[i].name, name))
                        return &db->roles[i];
        return NULL;
}

/* The statements that create one role, appended to b. */
static void create_role_sql(pg_conn *c, strbuf *b, const doc_role *dr) {
        _cleanup_free_ char *id = pg_quote_ident(c, dr->name);
        _cleanup_erase_ char *pw = dr->scram_verifier ? pg_quote_literal(c, dr->scram_verifier) : NULL;

        /* The verifier goes in as is: PostgreSQL stores a SCRAM verifier without re-hashing, so the
         * plaintext never exists on this host. */
        strbuf_printf(b, "CREATE ROLE %s LOGIN PASSWORD %s IN ROLE %s;\n", id, pw ? pw : "NULL",
                      dr->access == DOC_ACCESS_READ_WRITE ? ROLE_READWRITE : ROLE_READONLY);
}

static void erase_strbuf(strbuf *b) {
        if (b->s)
                explicit_bzero(b->s, b->len);
        strbuf_done(b);
}

/* Create many roles over several connections at once; each connection's share is one
 * implicit transaction (a multi-statement simple query). */
static int create_roles_parallel(const agent_config *cfg, const doc_database *db, const cluster_paths *p,
                                 const doc_role **batch, size_t n, char **err) {
        pg_conn *conns[ROLES_PARALLEL] = {};
        strbuf sql[ROLES_PARALLEL] = {};
        size_t k = n < ROLES_PARALLEL * ROLES_BATCH_MIN ? (n + ROLES_BATCH_MIN - 1) / ROLES_BATCH_MIN : ROLES_PARALLEL;
        int r = 0;

        if (k == 0)
                return 0;
        for (size_t i = 0; i < k && r >= 0; i++)
                r = pg_connect(p->socket_dir, db->port, "postgres", "postgres", &conns[i], err);
        for (size_t i = 0; i < n && r >= 0; i++)
                create_role_sql(conns[i % k], &sql[i % k], batch[i]);
        for (size_t i = 0; i < k && r >= 0; i++)
                r = pg_send(conns[i], sql[i].s, err);
        for (size_t i = 0; i < k; i++) {
                if (conns[i] && r >= 0) {
                        int q = pg_wait(conns[i], r >= 0 ? err : NULL);
                        if (q < 0)
                                r = q;
                }
                erase_strbuf(&sql[i]);
                pg_close(conns[i]);
        }
        return r;
}

/* Run a batch as one transaction on c. */
static int exec_batch(pg_conn *c, strbuf *b, char **err) {
        int r;
        if (!b->len)
                return 0;
        r = pg_send(c, b->s, err);
        if (r >= 0)
                r = pg_wait(c, err);
        return r;
}

/* Privileges of the groups inside the database: observed with one query, repaired with
 * idempotent GRANTs only when something is off. */
static int reconcile_privileges(pg_conn *c, const doc_database *db, bool *ret_changed, char **err) {
        _cleanup_rows_ pg_rows *rows = NULL;
        _cleanup_free_ char *dbid = pg_quote_ident(c, db->name);
        strbuf b = {};
        int r;

        r = pg_exec(c,
                    "SELECT has_database_privilege('public', current_database(), 'CONNECT')"
                    "    OR has_database_privilege('public', current_database(), 'TEMP'),"
                    "  has_database_privilege('" ROLE_READONLY "', current_database(), 'CONNECT'),"
                    "  has_database_privilege('" ROLE_READWRITE "', current_database(), 'CONNECT'),"
                    "  has_schema_privilege('public', 'public', 'CREATE'),"
                    "  has_schema_privilege('" ROLE_READONLY "', 'public', 'USAGE'),"
                    "  (SELECT count(*) FROM pg_default_acl d JOIN pg_roles o ON o.oid = d.defaclrole"
                    "   WHERE o.rolname = '" ROLE_OWNER "' AND d.defaclnamespace = 0"
                    "     AND array_to_string(d.defaclacl, ',') LIKE '%" ROLE_READONLY "=%'),"
                    "  (SELECT count(*) FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace"
                    "   WHERE cl.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')"
                    "     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'"
                    "     AND n.nspname NOT LIKE 'pg_temp%'"
                    "     AND NOT has_table_privilege('" ROLE_READONLY "', cl.oid, 'SELECT')),"
                    "  (SELECT count(*) FROM pg_namespace n WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')"
                    "     AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'"
                    "     AND NOT has_schema_privilege('" ROLE_READONLY "', n.oid, 'USAGE'))",
                    NULL, 0, &rows, err);
        if (r < 0)
                return r;
        if (streq(pg_rows_get(rows, 0, 0), "f") && streq(pg_rows_get(rows, 0, 1), "t") &&
            streq(pg_rows_get(rows, 0, 2), "t") && streq(pg_rows_get(rows, 0, 3), "f") &&
            streq(pg_rows_get(rows, 0, 4), "t") && streq(pg_rows_get(rows, 0, 5), "3") &&
            streq(pg_rows_get(rows, 0, 6), "0") && streq(pg_rows_get(rows, 0, 7), "0")) {
                *ret_changed = false;
                return 0;
        }
        strbuf_printf(&b,
                      "BEGIN;\n"
                      "REVOKE ALL ON DATABASE %1$s FROM PUBLIC;\n"
                      "GRANT CONNECT ON DATABASE %1$s TO " ROLE_READWRITE ", " ROLE_READONLY ";\n"
                      "GRANT TEMP ON DATABASE %1$s TO " ROLE_READWRITE ";\n"
                      "REVOKE CREATE ON SCHEMA public FROM PUBLIC;\n"
                      "GRANT USAGE ON SCHEMA public TO " ROLE_READONLY ";\n"
                      "ALTER DEFAULT PRIVILEGES FOR ROLE " ROLE_OWNER " GRANT SELECT ON TABLES TO " ROLE_READONLY ";\n"
                      "ALTER DEFAULT PRIVILEGES FOR ROLE " ROLE_OWNER " GRANT SELECT ON SEQUENCES TO " ROLE_READONLY ";\n"
                      "ALTER DEFAULT PRIVILEGES FOR ROLE " ROLE_OWNER " GRANT USAGE ON SCHEMAS TO " ROLE_READONLY ";\n",
                      dbid);
        /* Existing objects and schemas, whoever made them. */
        strbuf_append(&b,
                      "DO $$DECLARE s name; BEGIN\n"
                      "  FOR s IN SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema')\n"
                      "             AND nspname NOT LIKE 'pg_toast%' AND nspname NOT LIKE 'pg_temp%' LOOP\n"
                      "    EXECUTE format('GRANT USAGE ON SCHEMA %I TO " ROLE_READONLY "', s);\n"
                      "    EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO " ROLE_READONLY "', s);\n"
                      "    EXECUTE format('GRANT SELECT ON ALL SEQUENCES IN SCHEMA %I TO " ROLE_READONLY "', s);\n"
                      "  END LOOP;\n"
                      "END$$;\n"
                      "COMMIT;\n");
        r = exec_batch(c, &b, err);
        strbuf_done(&b);
        *ret_changed = true;
        return r;
}

/* The primary's replication role (LOGIN REPLICATION, the document's verifier): the standbys
 * stream as it. Outside the group roles, so revocation never sees it. */
static int reconcile_replication_role(pg_conn *c, const doc_database *db, results *res, char **err) {
        _cleanup_rows_ pg_rows *rows = NULL;
        _cleanup_erase_ char *pw = NULL;
        const char *params[] = { DOC_REPLICATION_USER };
        char label[160];
        strbuf sql = {}, why = {};
        int r;

        r = pg_exec(c, "SELECT rolcanlogin, rolreplication, coalesce(rolpassword, '') FROM pg_authid WHERE rolname = $1",
                    params, 1, &rows, err);
        if (r < 0)
                return r;
        pw = pg_quote_literal(c, db->replication->verifier);
        role_label(label, sizeof(label), db, DOC_REPLICATION_USER);
        if (pg_rows_count(rows) == 0) {
                strbuf_printf(&sql, "CREATE ROLE " DOC_REPLICATION_USER " LOGIN REPLICATION PASSWORD %s", pw);
                r = pg_exec(c, sql.s, NULL, 0, NULL, err);
                erase_strbuf(&sql);
                if (r < 0)
                        return r;
                results_add(res, "role", label, RES_CREATED, "login, replication");
                return 0;
        }
        if (!streq(pg_rows_get(rows, 0, 0), "t") || !streq(pg_rows_get(rows, 0, 1), "t"))
                strbuf_append(&why, "login and replication enabled");
        if (!streq(pg_rows_get(rows, 0, 2), db->replication->verifier))
                strbuf_printf(&why, "%spassword changed", why.len ? ", " : "");
        if (!why.len) {
                results_add(res, "role", label, RES_UNCHANGED, NULL);
                return 0;
        }
        strbuf_printf(&sql, "ALTER ROLE " DOC_REPLICATION_USER " LOGIN REPLICATION PASSWORD %s", pw);
        r = pg_exec(c, sql.s, NULL, 0, NULL, err);
        erase_strbuf(&sql);
        if (r >= 0)
                results_add(res, "role", label, RES_CHANGED, "%s", why.s);
        strbuf_done(&why);
        return r;
}

int roles_reconcile(const agent_config *cfg, const doc_database *db, results *res) {
        _cleanup_free_ char *err = NULL;
        _cleanup_free_ const doc_role **create = xcalloc(db->n_roles + 1, sizeof(doc_role *));
        _cleanup_pg_ pg_conn *c = NULL, *dbc = NULL;
        char *dbid = NULL;
        live_state l = {};
        cluster_paths p = {};
        strbuf sql = {}, dbsql = {};
        size_t n_create = 0;
        bool groups_made = false, priv_changed = false;
        char label[160];
        int r;

        cluster_paths_init(&p, cfg, db->name);
        r = pg_connect(p.socket_dir, db->port, "postgres", "postgres", &c, &err);
        if (r < 0)
                goto fail;
        r = observe(c, db, &l, &err);
        if (r < 0)
                goto fail;

        /* Group roles and the owner first: everything else hangs off them. */
        if (!live_find(&l, ROLE_OWNER)) {
                strbuf_append(&sql, "CREATE ROLE " ROLE_OWNER " NOLOGIN;\n");
                groups_made = true;
        }
        if (!live_find(&l, ROLE_READWRITE)) {
                strbuf_append(&sql, "CREATE ROLE " ROLE_READWRITE " NOLOGIN IN ROLE " ROLE_OWNER ";\n");
                groups_made = true;
        } else if (!live_find(&l, ROLE_READWRITE)->rw_in_owner)
                strbuf_append(&sql, "GRANT " ROLE_OWNER " TO " ROLE_READWRITE ";\n");
        if (!live_find(&l, ROLE_READONLY)) {
                strbuf_append(&sql, "CREATE ROLE " ROLE_READONLY " NOLOGIN;\n");
                groups_made = true;
        }
        if (sql.len) {
                r = exec_batch(c, &sql, &err);
                strbuf_done(&sql);
                if (r < 0)
                        goto fail;
        }
        if (!l.database_exists) {
                _cleanup_free_ char *id = pg_quote_ident(c, db->name), *q = NULL;
                q = xasprintf("CREATE DATABASE %s OWNER " ROLE_OWNER " ENCODING 'UTF8' TEMPLATE template0", id);
                r = pg_exec(c, q, NULL, 0, NULL, &err);
                if (r < 0)
                        goto fail;
                failpoint("after-create-database");
                results_add(res, "database", db->name, RES_CREATED, "owned by " ROLE_OWNER "%s",
                            groups_made ? ", group roles created" : "");
        } else
                results_add(res, "database", db->name, groups_made ? RES_CHANGED : RES_UNCHANGED,
                            groups_made ? "group roles created" : NULL);

        r = pg_connect(p.socket_dir, db->port, "postgres", db->name, &dbc, &err);
        if (r < 0)
                goto fail;
        dbid = pg_quote_ident(dbc, db->name);
        r = reconcile_privileges(dbc, db, &priv_changed, &err);
        if (r < 0)
                goto fail;
        results_add(res, "privileges", db->name, priv_changed ? RES_CHANGED : RES_UNCHANGED,
                    priv_changed ? "connect, usage and select granted to the group roles only" : NULL);

        /* Application roles: the diff. */
        for (size_t i = 0; i < db->n_roles; i++) {
                const doc_role *dr = &db->roles[i];
                live_role *lr = live_find(&l, dr->name);
                _cleanup_free_ char *id = pg_quote_ident(c, dr->name);
                bool rw = dr->access == DOC_ACCESS_READ_WRITE;
                const char *want_setting = rw ? "role=" ROLE_OWNER : "";
                strbuf why = {};

                if (!lr) {
                        create[n_create++] = dr;
                        if (rw)
                                strbuf_printf(&dbsql, "ALTER ROLE %s IN DATABASE %s SET role = " ROLE_OWNER ";\n", id, dbid);
                        continue;
                }
                if (!lr->in_rw && !lr->in_ro) {
                        /* Same name, not ours: never take over someone else's role (postgres, a DBA). */
                        results_add(res, "role", role_label(label, sizeof(label), db, dr->name), RES_FAILED,
                                    "a role of that name exists in the cluster and is not managed by infrastream; "
                                    "refusing to take it over");
                        continue;
                }
                if (!lr->login) {
                        strbuf_printf(&sql, "ALTER ROLE %s LOGIN;\n", id);
                        strbuf_append(&why, "login enabled");
                }
                if (!streq_ptr(lr->verifier, dr->scram_verifier ? dr->scram_verifier : "")) {
                        _cleanup_erase_ char *pw = dr->scram_verifier ? pg_quote_literal(c, dr->scram_verifier) : NULL;
                        strbuf_printf(&sql, "ALTER ROLE %s PASSWORD %s;\n", id, pw ? pw : "NULL");
                        strbuf_printf(&why, "%spassword changed", why.len ? ", " : "");
                }
                if (rw && !lr->in_rw)
                        strbuf_printf(&sql, "GRANT " ROLE_READWRITE " TO %s;\n", id);
                if (rw && lr->in_ro)
                        strbuf_printf(&sql, "REVOKE " ROLE_READONLY " FROM %s;\n", id);
                if (!rw && !lr->in_ro)
                        strbuf_printf(&sql, "GRANT " ROLE_READONLY " TO %s;\n", id);
                if (!rw && lr->in_rw)
                        strbuf_printf(&sql, "REVOKE " ROLE_READWRITE " FROM %s;\n", id);
                if (rw != lr->in_rw || rw == lr->in_ro)
                        strbuf_printf(&why, "%saccess now %s", why.len ? ", " : "", doc_access_to_string(dr->access));
                if (!streq(lr->db_setting, want_setting)) {
                        if (rw)
                                strbuf_printf(&dbsql, "ALTER ROLE %s IN DATABASE %s SET role = " ROLE_OWNER ";\n", id, dbid);
                        else
                                strbuf_printf(&dbsql, "ALTER ROLE %s IN DATABASE %s RESET ALL;\n", id, dbid);
                        if (!why.len)
                                strbuf_append(&why, "session settings repaired");
                }
                if (why.len)
                        results_add(res, "role", role_label(label, sizeof(label), db, dr->name), RES_CHANGED, "%s", why.s);
                else
                        results_add(res, "role", role_label(label, sizeof(label), db, dr->name), RES_UNCHANGED, NULL);
                strbuf_done(&why);
        }
        if (sql.len) {
                r = exec_batch(c, &sql, &err);
                if (r < 0)
                        goto fail;
        }
        if (n_create > 0) {
                r = n_create >= ROLES_BATCH_MIN ? create_roles_parallel(cfg, db, &p, create, n_create, &err) : 0;
                if (n_create < ROLES_BATCH_MIN) {
                        strbuf b = {};
                        for (size_t i = 0; i < n_create; i++)
                                create_role_sql(c, &b, create[i]);
                        r = exec_batch(c, &b, &err);
                        erase_strbuf(&b);
                }
                if (r < 0)
                        goto fail;
                for (size_t i = 0; i < n_create; i++)
                        results_add(res, "role", role_label(label, sizeof(label), db, create[i]->name), RES_CREATED, "%s", doc_access_to_string(create[i]->access));
        }
        if (db->replication && db->replication->role == DOC_REPLICA_PRIMARY && db->replication->verifier) {
                r = reconcile_replication_role(c, db, res, &err);
                if (r < 0)
                        goto fail;
        }
        failpoint("after-roles");
        if (dbsql.len) {
                r = exec_batch(dbc, &dbsql, &err);
                if (r < 0)
                        goto fail;
        }

        /* Revocation: roles in our groups that the document no longer has. Sessions end, what the
         * role owned goes to the owner role (data stays), then the role goes. */
        for (size_t i = 0; i < l.n; i++) {
                const live_role *lr = &l.roles[i];
                _cleanup_free_ char *id = NULL, *lit = NULL, *q = NULL;

                if (!is_app_role(lr) || (!lr->in_rw && !lr->in_ro) || doc_find(db, lr->name))
                        continue;
                id = pg_quote_ident(dbc, lr->name);
                lit = pg_quote_literal(dbc, lr->name);
                q = xasprintf("BEGIN;\n"
                              "ALTER ROLE %1$s NOLOGIN;\n"
                              "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %2$s;\n"
                              "REASSIGN OWNED BY %1$s TO " ROLE_OWNER ";\n"
                              "DROP OWNED BY %1$s;\n"
                              "DROP ROLE %1$s;\n"
                              "COMMIT;\n",
                              id, lit);
                r = pg_send(dbc, q, &err);
                if (r >= 0)
                        r = pg_wait(dbc, &err);
                if (r < 0) {
                        (void) pg_exec(dbc, "ROLLBACK", NULL, 0, NULL, NULL);
                        results_add(res, "role", role_label(label, sizeof(label), db, lr->name), RES_FAILED, "revocation failed: %s", err);
                        free(err);
                        err = NULL;
                        continue;
                }
                results_add(res, "role", role_label(label, sizeof(label), db, lr->name), RES_REMOVED,
                            "revoked: sessions ended, role dropped, its objects now owned by " ROLE_OWNER);
        }
        erase_strbuf(&sql);
        erase_strbuf(&dbsql);
        free(dbid);
        live_done(&l);
        cluster_paths_done(&p);
        return 0;
fail:
        results_add(res, "roles", db->name, RES_FAILED, "%s", err ? err : strerror(-r));
        free(dbid);
        erase_strbuf(&sql);
        erase_strbuf(&dbsql);
        live_done(&l);
        cluster_paths_done(&p);
        return r < 0 ? r : -EIO;
}
