/* The desired-state document's JSON wire form: canonical encoder, content hash, and the strict
 * decoder every agent runs on untrusted input before anything privileged happens. */
#include <arpa/inet.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "document.h"
#include "jsondec.h"
#include "macro.h"

/* Deterministic output: json-c keeps insertion order, so emitting members in a fixed order with
 * fixed flags gives the same bytes for the same document. Slashes stay unescaped so CIDR
 * addresses and the apiVersion read naturally. sign.c re-serialises envelopes with these flags. */
#define DOC_JSON_FLAGS (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE)


static const char *const access_names[] = {
        [DOC_ACCESS_READ_ONLY] = "read-only",
        [DOC_ACCESS_READ_WRITE] = "read-write",
};

static const char *const replication_role_names[] = {
        [DOC_REPLICA_PRIMARY] = "primary",
        [DOC_REPLICA_STANDBY] = "standby",
};

/* Members of a replicated database: a primary and at most 15 standbys. */
#define DOC_MEMBERS_MIN 2
#define DOC_MEMBERS_MAX 16

static const char *const host_role_names[] = {
        [DOC_HOST_DATABASE] = "database",
        [DOC_HOST_APPLICATION] = "application",
};

const char *doc_access_to_string(doc_access a) {
        if ((size_t) a >= ELEMENTSOF(access_names))
                return NULL;
        return access_names[a];
}

const char *doc_host_role_to_string(doc_host_role r) {
        if ((size_t) r >= ELEMENTSOF(host_role_names))
                return NULL;
        return host_role_names[r];
}

static void identity_done(doc_identity *id) {
        free(id->organization);
        free(id->organizational_unit);
        free(id->environment);
        free(id->project);
}

static void replication_free(doc_replication *rep) {
        if (!rep)
                return;
        free(rep->primary);
        for (size_t i = 0; i < rep->n_members; i++) {
                free(rep->members[i].host);
                free(rep->members[i].address);
        }
        free(rep->members);
        free(rep->verifier);
        erase_and_free(rep->password);
        free(rep);
}

static void database_done(doc_database *db) {
        free(db->name);
        identity_done(&db->identity);
        free(db->hostname);
        strv_free_n(db->tls_names, db->n_tls_names);
        free(db->tls_certificate);
        free(db->backup.schedule);
        erase_and_free(db->backup.passphrase);
        for (size_t i = 0; i < db->n_roles; i++) {
                doc_role *r = &db->roles[i];

                free(r->name);
                free(r->application);
                strv_free_n(r->clients, r->n_clients);
                erase_and_free(r->scram_verifier);
        }
        free(db->roles);
        strv_free_n(db->allow, db->n_allow);
        replication_free(db->replication);
}

static void app_done(doc_app *a) {
        free(a->name);
        identity_done(&a->identity);
        free(a->unit);
        for (size_t i = 0; i < a->n_env; i++) {
                doc_env *e = &a->env[i];

                free(e->name);
                free(e->database);
                free(e->db_hostname);
                free(e->db_address);
                strv_free_n(e->db_addresses, e->n_db_addresses);
                free(e->role);
                erase_and_free(e->password);
        }
        free(a->env);
}

void doc_document_free(doc_document *d) {
        if (!d)
                return;
        free(d->host);
        free(d->commit);
        for (size_t i = 0; i < d->n_databases; i++)
                database_done(&d->databases[i]);
        free(d->databases);
        for (size_t i = 0; i < d->n_apps; i++)
                app_done(&d->apps[i]);
        free(d->apps);
        free(d);
}

void doc_document_freep(doc_document **d) {
        doc_document_free(*d);
}

/* ---- encoding ------------------------------------------------------------------------------ */

static json_object *encode_identity(const doc_identity *id) {
        json_object *o = jsonenc_checked(json_object_new_object());

        jsonenc_add(o, "organization", jsonenc_string(id->organization));
        jsonenc_add(o, "organizationalUnit", jsonenc_string(id->organizational_unit));
        jsonenc_add(o, "environment", jsonenc_string(id->environment));
        jsonenc_add(o, "project", jsonenc_string(id->project));
        return o;
}

static json_object *encode_role(const doc_role *r) {
        json_object *o = jsonenc_checked(json_object_new_object());

        jsonenc_add(o, "name", jsonenc_string(r->name));
        jsonenc_add(o, "application", jsonenc_string(r->application));
        jsonenc_add(o, "access", jsonenc_string(doc_access_to_string(r->access)));
        jsonenc_add(o, "clients", jsonenc_strv(r->clients, r->n_clients));
        if (r->scram_verifier)
                jsonenc_add(o, "scramVerifier", jsonenc_string(r->scram_verifier));
        return o;
}

static json_object *encode_replication(const doc_replication *rep) {
        json_object *o = jsonenc_checked(json_object_new_object());
        json_object *members = jsonenc_checked(json_object_new_array_ext((int) rep->n_members));

        jsonenc_add(o, "role", jsonenc_string(replication_role_names[rep->role]));
        jsonenc_add(o, "primary", jsonenc_string(rep->primary));
        for (size_t i = 0; i < rep->n_members; i++) {
                json_object *m = jsonenc_checked(json_object_new_object());

                jsonenc_add(m, "host", jsonenc_string(rep->members[i].host));
                jsonenc_add(m, "address", jsonenc_string(rep->members[i].address));
                jsonenc_append(members, m);
        }
        jsonenc_add(o, "members", members);
        if (rep->verifier)
                jsonenc_add(o, "verifier", jsonenc_string(rep->verifier));
        if (rep->password)
                jsonenc_add(o, "password", jsonenc_string(rep->password));
        return o;
}

static json_object *encode_database(const doc_database *db) {
        json_object *o = jsonenc_checked(json_object_new_object()), *backup, *roles;

        jsonenc_add(o, "name", jsonenc_string(db->name));
        jsonenc_add(o, "identity", encode_identity(&db->identity));
        jsonenc_add(o, "hostname", jsonenc_string(db->hostname));
        jsonenc_add(o, "postgresVersion", json_object_new_int(db->postgres_version));
        jsonenc_add(o, "cpuCount", json_object_new_int(db->cpu_count));
        jsonenc_add(o, "clusterSize", json_object_new_int(db->cluster_size));
        jsonenc_add(o, "port", json_object_new_int(db->port));
        jsonenc_add(o, "tlsNames", jsonenc_strv(db->tls_names, db->n_tls_names));
        if (db->tls_certificate)
                jsonenc_add(o, "tlsCertificate", jsonenc_string(db->tls_certificate));

        backup = jsonenc_checked(json_object_new_object());
        jsonenc_add(backup, "enabled", json_object_new_boolean(db->backup.enabled));
        jsonenc_add(backup, "schedule", jsonenc_string(db->backup.schedule));
        jsonenc_add(backup, "retentionDays", json_object_new_int(db->backup.retention_days));
        if (db->backup.passphrase)
                jsonenc_add(backup, "passphrase", jsonenc_string(db->backup.passphrase));
        jsonenc_add(o, "backup", backup);

        roles = jsonenc_checked(json_object_new_array_ext((int) db->n_roles));
        for (size_t i = 0; i < db->n_roles; i++)
                jsonenc_append(roles, encode_role(&db->roles[i]));
        jsonenc_add(o, "roles", roles);
        jsonenc_add(o, "allow", jsonenc_strv(db->allow, db->n_allow));
        /* Only with clusterSize > 1: a single database's document keeps its bytes. */
        if (db->replication)
                jsonenc_add(o, "replication", encode_replication(db->replication));
        return o;
}

static json_object *encode_env(const doc_env *e) {
        json_object *o = jsonenc_checked(json_object_new_object());

        jsonenc_add(o, "name", jsonenc_string(e->name));
        jsonenc_add(o, "database", jsonenc_string(e->database));
        jsonenc_add(o, "dbHostname", jsonenc_string(e->db_hostname));
        jsonenc_add(o, "dbAddress", jsonenc_string(e->db_address));
        if (e->n_db_addresses > 0)
                jsonenc_add(o, "dbAddresses", jsonenc_strv(e->db_addresses, e->n_db_addresses));
        jsonenc_add(o, "port", json_object_new_int(e->port));
        jsonenc_add(o, "role", jsonenc_string(e->role));
        jsonenc_add(o, "access", jsonenc_string(doc_access_to_string(e->access)));
        if (e->password)
                jsonenc_add(o, "password", jsonenc_string(e->password));
        return o;
}

static json_object *encode_app(const doc_app *a) {
        json_object *o = jsonenc_checked(json_object_new_object()), *env;

        jsonenc_add(o, "name", jsonenc_string(a->name));
        jsonenc_add(o, "identity", encode_identity(&a->identity));
        jsonenc_add(o, "unit", jsonenc_string(a->unit));
        env = jsonenc_checked(json_object_new_array_ext((int) a->n_env));
        for (size_t i = 0; i < a->n_env; i++)
                jsonenc_append(env, encode_env(&a->env[i]));
        jsonenc_add(o, "env", env);
        return o;
}

char *doc_encode(const doc_document *d, size_t *ret_size) {
        _cleanup_(json_object_putp) json_object *root = jsonenc_checked(json_object_new_object());
        json_object *dbs, *apps;
        const char *s;
        size_t len;
        char *buf;

        jsonenc_add(root, "apiVersion", jsonenc_string(DOC_API_VERSION));
        jsonenc_add(root, "kind", jsonenc_string(DOC_KIND));
        jsonenc_add(root, "host", jsonenc_string(d->host));
        jsonenc_add(root, "role", jsonenc_string(doc_host_role_to_string(d->role)));
        /* uint64 so an out-of-range revision shows as itself (and is refused by the decoder)
         * rather than as a negative number. */
        jsonenc_add(root, "revision", json_object_new_uint64(d->revision));
        jsonenc_add(root, "commit", jsonenc_string(d->commit));

        dbs = jsonenc_checked(json_object_new_array_ext((int) d->n_databases));
        for (size_t i = 0; i < d->n_databases; i++)
                jsonenc_append(dbs, encode_database(&d->databases[i]));
        jsonenc_add(root, "databases", dbs);

        apps = jsonenc_checked(json_object_new_array_ext((int) d->n_apps));
        for (size_t i = 0; i < d->n_apps; i++)
                jsonenc_append(apps, encode_app(&d->apps[i]));
        jsonenc_add(root, "applications", apps);

        s = json_object_to_json_string_length(root, DOC_JSON_FLAGS, &len);
        if (!s)
                jsonenc_oom();
        buf = xmalloc(len + 2);
        memcpy(buf, s, len);
        buf[len] = '\n';
        buf[len + 1] = '\0';
        if (ret_size)
                *ret_size = len + 1;
        return buf;
}

void doc_content_hash(const doc_document *d, char ret_hex[65]) {
        /* A shallow copy with the bookkeeping fields blanked: a new revision or commit alone is
         * not a change of desired state. The caller's document is never touched. */
        doc_document copy = *d;
        _cleanup_erase_ char *json = NULL; /* holds passwords */
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        size_t size;

        copy.revision = 0;
        copy.commit = (char *) "";
        json = doc_encode(&copy, &size);
        /* SHA-256 in the default provider only fails on allocation failure. */
        if (EVP_Digest(json, size, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
                jsonenc_oom();
        for (unsigned i = 0; i < md_len; i++)
                snprintf(ret_hex + 2 * i, 3, "%02x", md[i]);
}

/* ---- strict decoding ----------------------------------------------------------------------- */

static int decode_identity(jsondec *d, json_object *o, void *elem) {
        static const char *const known[] = { "organization", "organizationalUnit", "environment", "project" };
        doc_identity *id = elem;
        int r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = jsondec_field_string(d, o, "organization", JSONDEC_NAME, false, &id->organization)) < 0 ||
            (r = jsondec_field_string(d, o, "organizationalUnit", JSONDEC_NAME, false, &id->organizational_unit)) < 0 ||
            (r = jsondec_field_string(d, o, "environment", JSONDEC_NAME, false, &id->environment)) < 0 ||
            (r = jsondec_field_string(d, o, "project", JSONDEC_NAME, false, &id->project)) < 0)
                return r;
        return 0;
}

static int decode_role(jsondec *d, json_object *o, void *elem) {
        static const char *const known[] = { "name", "application", "access", "clients", "scramVerifier" };
        doc_role *role = elem;
        int access = 0, r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = jsondec_field_string(d, o, "name", JSONDEC_NAME, false, &role->name)) < 0 ||
            (r = jsondec_field_string(d, o, "application", JSONDEC_NAME, false, &role->application)) < 0 ||
            (r = jsondec_field_choice(d, o, "access", access_names, ELEMENTSOF(access_names), &access)) < 0 ||
            (r = jsondec_field_strv(d, o, "clients", JSONDEC_TEXT, &role->clients, &role->n_clients)) < 0 ||
            (r = jsondec_field_string(d, o, "scramVerifier", JSONDEC_TEXT, true, &role->scram_verifier)) < 0)
                return r;
        role->access = (doc_access) access;
        return 0;
}

/* The repository passphrase goes into pgBackRest's configuration file as it is: a character set
 * that needs no quoting there or anywhere else, and a length no guessable passphrase has. */
static bool passphrase_valid(const char *s) {
        size_t n = strlen(s);

        if (n < DOC_PASSPHRASE_MIN || n > DOC_PASSPHRASE_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
                      s[i] == '-' || s[i] == '_'))
                        return false;
        return true;
}

static int decode_backup(jsondec *d, json_object *o, void *elem) {
        static const char *const known[] = { "enabled", "schedule", "retentionDays", "passphrase" };
        doc_backup *b = elem;
        int r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = jsondec_field_bool(d, o, "enabled", &b->enabled)) < 0 ||
            (r = jsondec_field_string(d, o, "schedule", JSONDEC_TEXT, false, &b->schedule)) < 0 ||
            (r = jsondec_field_int(d, o, "retentionDays", 1, 3650, &b->retention_days)) < 0 ||
            (r = jsondec_field_string(d, o, "passphrase", JSONDEC_TEXT, true, &b->passphrase)) < 0)
                return r;
        /* A secret: the messages never quote it. Absent with backups enabled is the agent's to
         * report (the controller records documents without it, and they must decode). */
        if (b->passphrase && !passphrase_valid(b->passphrase))
                return jsondec_fail_at(d, "passphrase", "must be %d to %d characters of A-Z, a-z, 0-9, '-' and '_'",
                                       DOC_PASSPHRASE_MIN, DOC_PASSPHRASE_MAX);
        if (b->passphrase && !b->enabled)
                return jsondec_fail_at(d, "passphrase", "must be absent when backups are disabled");
        return 0;
}

#define PEM_CERT_BEGIN "-----BEGIN CERTIFICATE-----\n"
#define PEM_CERT_END "-----END CERTIFICATE-----\n"

/* tlsCertificate: exactly one PEM certificate block as OpenSSL writes it (base64 lines of at most
 * 64 characters, '\n' line ends), nothing around it, so the field has one spelling and carries
 * nothing else. Whether it is a valid certificate for this host is the agent's to check. */
static bool pem_certificate_valid(const char *s) {
        size_t len = strlen(s), nb = strlen(PEM_CERT_BEGIN), ne = strlen(PEM_CERT_END);
        const char *p, *end;

        if (len <= nb + ne || memcmp(s, PEM_CERT_BEGIN, nb) != 0 || memcmp(s + len - ne, PEM_CERT_END, ne) != 0)
                return false;
        end = s + len - ne;
        for (p = s + nb; p < end;) {
                const char *nl = memchr(p, '\n', (size_t) (end - p));
                size_t n = nl ? (size_t) (nl - p) : 0;

                if (n == 0 || n > 64)
                        return false;
                for (size_t i = 0; i < n; i++) {
                        char c = p[i];
                        /* '=' pads the last line only, at its end. */
                        if (c == '=' && nl + 1 == end && i + 2 >= n && (i + 1 == n || p[i + 1] == '='))
                                continue;
                        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
                              c == '/'))
                                return false;
                }
                p = nl + 1;
        }
        return true;
}

static bool address_valid(const char *s) {
        unsigned char buf[16];
        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int decode_member(jsondec *d, json_object *o, void *elem) {
        static const char *const known[] = { "host", "address" };
        doc_member *m = elem;
        int r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = jsondec_field_string(d, o, "host", JSONDEC_HOSTNAME, false, &m->host)) < 0 ||
            (r = jsondec_field_string(d, o, "address", JSONDEC_TEXT, false, &m->address)) < 0)
                return r;
        if (!address_valid(m->address)) {
                _cleanup_free_ char *e = jsondec_echo(m->address);
                return jsondec_fail_at(d, "address", "'%s' is not an IPv4 or IPv6 address", e);
        }
        return 0;
}

#define SCRAM_PREFIX "SCRAM-SHA-256$"

static int decode_replication(jsondec *d, json_object *o, void *elem) {
        static const char *const known[] = { "role", "primary", "members", "verifier", "password" };
        doc_replication *rep = elem;
        bool primary_listed = false;
        int role = 0, r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = jsondec_field_choice(d, o, "role", replication_role_names, ELEMENTSOF(replication_role_names), &role)) < 0 ||
            (r = jsondec_field_string(d, o, "primary", JSONDEC_HOSTNAME, false, &rep->primary)) < 0 ||
            (r = jsondec_field_objects(d, o, "members", sizeof(doc_member), -1, decode_member,
                               (void **) &rep->members, &rep->n_members)) < 0 ||
            (r = jsondec_field_string(d, o, "verifier", JSONDEC_TEXT, true, &rep->verifier)) < 0 ||
            (r = jsondec_field_string(d, o, "password", JSONDEC_TEXT, true, &rep->password)) < 0)
                return r;
        rep->role = (doc_replication_role) role;

        if (rep->n_members < DOC_MEMBERS_MIN || rep->n_members > DOC_MEMBERS_MAX)
                return jsondec_fail_at(d, "members", "must list between %d and %d members", DOC_MEMBERS_MIN,
                                       DOC_MEMBERS_MAX);
        /* Sorted by host, each host once: one spelling per member list, and no host twice. */
        for (size_t i = 0; i < rep->n_members; i++) {
                primary_listed = primary_listed || streq(rep->members[i].host, rep->primary);
                if (i > 0 && strcmp(rep->members[i - 1].host, rep->members[i].host) >= 0) {
                        _cleanup_free_ char *e = jsondec_echo(rep->members[i].host);
                        size_t mark = jsondec_push(d, "members");

                        jsondec_push_index(d, i);
                        r = streq(rep->members[i - 1].host, rep->members[i].host)
                                ? jsondec_fail_at(d, "host", "duplicate host '%s'", e)
                                : jsondec_fail_at(d, "host", "'%s' is out of order: members must be sorted by host", e);
                        jsondec_pop(d, mark);
                        return r;
                }
        }
        if (!primary_listed) {
                _cleanup_free_ char *e = jsondec_echo(rep->primary);
                return jsondec_fail_at(d, "primary", "'%s' is not one of members", e);
        }

        /* The primary keeps the replication role's verifier; only standbys connect, with the
         * password. Neither is ever quoted here. A standby's document without the password is the
         * agent's to report: the controller records documents without it (compile_stored_body())
         * and they must decode. */
        if (rep->role == DOC_REPLICA_PRIMARY) {
                if (!rep->verifier)
                        return jsondec_fail_at(d, "verifier", "missing (required when role is primary)");
                if (rep->password)
                        return jsondec_fail_at(d, "password", "must be absent when role is primary");
        } else {
                if (rep->verifier)
                        return jsondec_fail_at(d, "verifier", "must be absent when role is standby");
        }
        if (rep->verifier && strncmp(rep->verifier, SCRAM_PREFIX, strlen(SCRAM_PREFIX)) != 0)
                return jsondec_fail_at(d, "verifier", "must be a SCRAM-SHA-256 verifier");
        /* It goes into primary_conninfo as it is: the passphrases' character set needs no quoting. */
        if (rep->password && !passphrase_valid(rep->password))
                return jsondec_fail_at(d, "password", "must be %d to %d characters of A-Z, a-z, 0-9, '-' and '_'",
                                       DOC_PASSPHRASE_MIN, DOC_PASSPHRASE_MAX);
        return 0;
}

static int decode_database(jsondec *d, json_object *o, void *elem) {
        static const char *const known[] = {
                "name", "identity", "hostname", "postgresVersion", "cpuCount", "clusterSize",
                "port", "tlsNames", "tlsCertificate", "backup", "roles", "allow", "replication",
        };
        doc_database *db = elem;
        json_object *v;
        int r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = jsondec_field_string(d, o, "name", JSONDEC_NAME, false, &db->name)) < 0 ||
            (r = jsondec_field_object(d, o, "identity", false, decode_identity, &db->identity)) < 0 ||
            (r = jsondec_field_string(d, o, "hostname", JSONDEC_HOSTNAME, false, &db->hostname)) < 0 ||
            (r = jsondec_field_int(d, o, "postgresVersion", 10, 99, &db->postgres_version)) < 0 ||
            (r = jsondec_field_int(d, o, "cpuCount", 1, 256, &db->cpu_count)) < 0 ||
            (r = jsondec_field_int(d, o, "clusterSize", 1, 9, &db->cluster_size)) < 0 ||
            (r = jsondec_field_int(d, o, "port", 1, 65535, &db->port)) < 0 ||
            (r = jsondec_field_strv(d, o, "tlsNames", JSONDEC_HOSTNAME, &db->tls_names, &db->n_tls_names)) < 0 ||
            (r = jsondec_field_string(d, o, "tlsCertificate", JSONDEC_PEM, true, &db->tls_certificate)) < 0)
                return r;
        if (db->tls_certificate && !pem_certificate_valid(db->tls_certificate))
                return jsondec_fail_at(d, "tlsCertificate",
                                       "must be one PEM certificate: \"-----BEGIN CERTIFICATE-----\", lines of "
                                       "base64, \"-----END CERTIFICATE-----\", each line ending in \\n");
        if ((r = jsondec_field_object(d, o, "backup", false, decode_backup, &db->backup)) < 0 ||
            (r = jsondec_field_objects(d, o, "roles", sizeof(doc_role), offsetof(doc_role, name), decode_role,
                               (void **) &db->roles, &db->n_roles)) < 0 ||
            (r = jsondec_field_strv(d, o, "allow", JSONDEC_TEXT, &db->allow, &db->n_allow)) < 0)
                return r;
        if (jsondec_member(d, o, "replication", true, &v) > 0) {
                db->replication = xcalloc(1, sizeof(doc_replication));
                r = jsondec_field_object(d, o, "replication", false, decode_replication, db->replication);
                if (r < 0)
                        return r;
                if (db->cluster_size == 1)
                        return jsondec_fail_at(d, "replication", "must be absent when clusterSize is 1");
                if (db->replication->n_members > (size_t) db->cluster_size)
                        return jsondec_fail_at(d, "replication", "lists %zu members, more than clusterSize %d",
                                               db->replication->n_members, db->cluster_size);
        }
        return 0;
}

static int decode_env(jsondec *d, json_object *o, void *elem) {
        static const char *const known[] = {
                "name", "database", "dbHostname", "dbAddress", "dbAddresses", "port", "role", "access", "password",
        };
        doc_env *e = elem;
        json_object *v;
        int access = 0, r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = jsondec_field_string(d, o, "name", JSONDEC_TEXT, false, &e->name)) < 0 ||
            (r = jsondec_field_string(d, o, "database", JSONDEC_NAME, false, &e->database)) < 0 ||
            (r = jsondec_field_string(d, o, "dbHostname", JSONDEC_HOSTNAME, false, &e->db_hostname)) < 0 ||
            (r = jsondec_field_string(d, o, "dbAddress", JSONDEC_TEXT, false, &e->db_address)) < 0 ||
            (r = jsondec_field_int(d, o, "port", 1, 65535, &e->port)) < 0 ||
            (r = jsondec_field_string(d, o, "role", JSONDEC_NAME, false, &e->role)) < 0 ||
            (r = jsondec_field_choice(d, o, "access", access_names, ELEMENTSOF(access_names), &access)) < 0 ||
            (r = jsondec_field_string(d, o, "password", JSONDEC_TEXT, true, &e->password)) < 0)
                return r;
        e->access = (doc_access) access;
        if (jsondec_member(d, o, "dbAddresses", true, &v) > 0) {
                r = jsondec_field_strv(d, o, "dbAddresses", JSONDEC_TEXT, &e->db_addresses, &e->n_db_addresses);
                if (r < 0)
                        return r;
                if (e->n_db_addresses < DOC_MEMBERS_MIN || e->n_db_addresses > DOC_MEMBERS_MAX)
                        return jsondec_fail_at(d, "dbAddresses", "must list between %d and %d addresses",
                                               DOC_MEMBERS_MIN, DOC_MEMBERS_MAX);
                for (size_t i = 0; i < e->n_db_addresses; i++) {
                        size_t mark;

                        if (address_valid(e->db_addresses[i]))
                                continue;
                        mark = jsondec_push(d, "dbAddresses");
                        jsondec_push_index(d, i);
                        {
                                _cleanup_free_ char *echo = jsondec_echo(e->db_addresses[i]);
                                r = jsondec_fail(d, "'%s' is not an IPv4 or IPv6 address", echo);
                        }
                        jsondec_pop(d, mark);
                        return r;
                }
                /* The primary first: dbAddress is where read-write connections go. */
                if (!streq(e->db_addresses[0], e->db_address))
                        return jsondec_fail_at(d, "dbAddresses", "must start with dbAddress (the primary's)");
        }
        return 0;
}

static int decode_app(jsondec *d, json_object *o, void *elem) {
        static const char *const known[] = { "name", "identity", "unit", "env" };
        doc_app *a = elem;
        int r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = jsondec_field_string(d, o, "name", JSONDEC_NAME, false, &a->name)) < 0 ||
            (r = jsondec_field_object(d, o, "identity", false, decode_identity, &a->identity)) < 0 ||
            (r = jsondec_field_string(d, o, "unit", JSONDEC_TEXT, false, &a->unit)) < 0 ||
            (r = jsondec_field_objects(d, o, "env", sizeof(doc_env), offsetof(doc_env, name), decode_env,
                               (void **) &a->env, &a->n_env)) < 0)
                return r;
        return 0;
}

static int decode_signature(jsondec *d, json_object *o, void *elem) {
        static const char *const known[] = { "algorithm", "keyId", "sha256", "value" };
        static const char *const algorithms[] = { "ed25519" };
        _cleanup_free_ char *key_id = NULL, *sha = NULL, *value = NULL;
        unsigned char raw[66]; /* 88 base64 characters decode to 66 bytes, padding included */
        char again[89];
        doc_signature *sig = elem;
        int algorithm, r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = jsondec_field_choice(d, o, "algorithm", algorithms, ELEMENTSOF(algorithms), &algorithm)) < 0 ||
            (r = jsondec_field_string(d, o, "keyId", JSONDEC_TEXT, false, &key_id)) < 0 ||
            (r = jsondec_field_string(d, o, "sha256", JSONDEC_TEXT, false, &sha)) < 0 ||
            (r = jsondec_field_string(d, o, "value", JSONDEC_TEXT, false, &value)) < 0)
                return r;

        /* Lower-case hex and padded base64 only, so an envelope has one spelling. */
        if (!is_lower_hex(key_id, 16))
                return jsondec_fail_at(d, "keyId", "must be 16 lower-case hexadecimal digits");
        if (!is_lower_hex(sha, 64))
                return jsondec_fail_at(d, "sha256", "must be 64 lower-case hexadecimal digits");
        /* EVP_DecodeBlock() skips surrounding blanks and ignores the padding bits; encoding the
         * result again and comparing admits exactly the canonical spelling. */
        if (strlen(value) != 88 || EVP_DecodeBlock(raw, (const unsigned char *) value, 88) != 66 ||
            EVP_EncodeBlock((unsigned char *) again, raw, 64) != 88 || !streq(again, value))
                return jsondec_fail_at(d, "value", "must be the base64 encoding of a 64-byte Ed25519 signature");
        memcpy(sig->key_id, key_id, sizeof(sig->key_id));
        memcpy(sig->sha256, sha, sizeof(sig->sha256));
        memcpy(sig->sig, raw, sizeof(sig->sig));
        return 0;
}

/* A host is a member of each replicated database its document carries, and it is the primary
 * exactly when its role says so: an agent never has to guess which of the two to trust. */
static int check_replication_roles(jsondec *d, const doc_document *doc) {
        for (size_t i = 0; i < doc->n_databases; i++) {
                const doc_replication *rep = doc->databases[i].replication;
                bool member = false;
                size_t mark;
                int r = 0;

                if (!rep)
                        continue;
                for (size_t k = 0; k < rep->n_members; k++)
                        member = member || streq(rep->members[k].host, doc->host);
                if (member && (rep->role == DOC_REPLICA_PRIMARY) == streq(rep->primary, doc->host))
                        continue;
                mark = jsondec_push(d, "databases");
                jsondec_push_index(d, i);
                jsondec_push(d, "replication");
                if (!member)
                        r = jsondec_fail_at(d, "members", "must list this document's host");
                else
                        r = jsondec_fail_at(d, "role", rep->role == DOC_REPLICA_PRIMARY
                                                               ? "must be standby: primary is another host"
                                                               : "must be primary: primary is this document's host");
                jsondec_pop(d, mark);
                return r;
        }
        return 0;
}

static int decode_document(jsondec *d, json_object *root, doc_document *doc, doc_signature *sig,
                           bool *has_sig) {
        static const char *const known[] = {
                "apiVersion", "kind", "host", "role", "revision", "commit", "databases",
                "applications", "signature",
        };
        static const char *const api_versions[] = { DOC_API_VERSION };
        static const char *const kinds[] = { DOC_KIND };
        int dummy, role = 0, r;

        if ((r = jsondec_check_fields(d, root, known, ELEMENTSOF(known))) < 0 ||
            (r = jsondec_field_choice(d, root, "apiVersion", api_versions, 1, &dummy)) < 0 ||
            (r = jsondec_field_choice(d, root, "kind", kinds, 1, &dummy)) < 0 ||
            (r = jsondec_field_string(d, root, "host", JSONDEC_HOSTNAME, false, &doc->host)) < 0 ||
            (r = jsondec_field_choice(d, root, "role", host_role_names, ELEMENTSOF(host_role_names), &role)) < 0)
                return r;
        doc->role = (doc_host_role) role;

        if ((r = jsondec_field_uint64(d, root, "revision", 0, INT64_MAX, &doc->revision)) < 0 ||
            (r = jsondec_field_string(d, root, "commit", JSONDEC_OPTIONAL_TEXT, false, &doc->commit)) < 0 ||
            (r = jsondec_field_objects(d, root, "databases", sizeof(doc_database), offsetof(doc_database, name),
                               decode_database, (void **) &doc->databases, &doc->n_databases)) < 0 ||
            (r = jsondec_field_objects(d, root, "applications", sizeof(doc_app), offsetof(doc_app, name), decode_app,
                               (void **) &doc->apps, &doc->n_apps)) < 0)
                return r;
        r = check_replication_roles(d, doc);
        if (r < 0)
                return r;

        r = jsondec_field_object(d, root, "signature", true, decode_signature, sig);
        if (r < 0)
                return r;
        *has_sig = r > 0;
        return 0;
}

int doc_decode(const char *json, size_t size, doc_document **ret, doc_signature *ret_sig,
               bool *ret_has_sig, char **ret_error) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        _cleanup_(doc_document_freep) doc_document *doc = NULL;
        jsondec dec = { .what = "document" };
        doc_signature sig = {};
        bool has_sig = false;
        int r;

        r = jsondec_parse(&dec, json, size, DOC_MAX_SIZE, &root);
        if (r < 0)
                goto finish;

        doc = xcalloc(1, sizeof(doc_document));
        r = decode_document(&dec, root, doc, &sig, &has_sig);
        if (r >= 0)
                r = jsondec_check_duplicates(&dec, root);
        if (r < 0)
                goto finish;

        if (ret_has_sig)
                *ret_has_sig = has_sig;
        if (ret_sig && has_sig)
                *ret_sig = sig;
        if (ret)
                *ret = TAKE_PTR(doc);
finish:
        if (r < 0 && ret_error)
                *ret_error = TAKE_PTR(dec.error);
        jsondec_done(&dec);
        return r;
}
