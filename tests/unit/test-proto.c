/* Unit tests for the wire contract: canonical encoding, the strict decoder's refusals (with their
 * exact messages, which operators read), and Ed25519 signing and verification. */
#include "unit.h"

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "document.h"
#include "fileio.h"
#include "sign.h"
#include "strbuf.h"

/* ---- fixtures ------------------------------------------------------------------------------ */

#define DB_HOSTNAME "accounts-db.login-svc.development.retail-banking.fincorp.infrastream.internal"

static char **strv(size_t n, ...) {
        char **l = xcalloc(n, sizeof(char *));
        va_list ap;

        va_start(ap, n);
        for (size_t i = 0; i < n; i++)
                l[i] = xstrdup(va_arg(ap, const char *));
        va_end(ap);
        return l;
}

static doc_identity identity(void) {
        return (doc_identity) {
                .organization = xstrdup("fincorp"),
                .organizational_unit = xstrdup("retail-banking"),
                .environment = xstrdup("development"),
                .project = xstrdup("login-svc"),
        };
}

static void fill_database(doc_database *db, const char *name) {
        db->name = xstrdup(name);
        db->identity = identity();
        db->hostname = xstrdup(DB_HOSTNAME);
        db->postgres_version = 15;
        db->cpu_count = 4;
        db->cluster_size = 1;
        db->port = 5432;
        db->tls_names = strv(1, DB_HOSTNAME);
        db->n_tls_names = 1;
        db->backup = (doc_backup) { .enabled = true, .schedule = xstrdup("daily"), .retention_days = 7 };
        db->n_roles = 2;
        db->roles = xcalloc(2, sizeof(doc_role));
        db->roles[0] = (doc_role) {
                .name = xstrdup("auth-api"),
                .application = xstrdup("auth-api"),
                .access = DOC_ACCESS_READ_WRITE,
                .clients = strv(1, "10.99.0.3/32"),
                .n_clients = 1,
                .scram_verifier = xstrdup("SCRAM-SHA-256$4096:c2FsdHNhbHQ=$c3RvcmVk:c2VydmVy"),
        };
        db->roles[1] = (doc_role) {
                .name = xstrdup("reporting"),
                .application = xstrdup("reporting"),
                .access = DOC_ACCESS_READ_ONLY,
                .clients = strv(1, "10.99.0.7/32"),
                .n_clients = 1,
        };
        db->allow = strv(2, "10.99.0.3/32", "10.99.0.7/32");
        db->n_allow = 2;
}

/* One database with two roles and one application with one env entry: every kind of object. */
static doc_document *make_doc(void) {
        doc_document *d = xcalloc(1, sizeof(doc_document));
        doc_app *a;

        d->host = xstrdup("db1");
        d->role = DOC_HOST_DATABASE;
        d->revision = 1;
        d->commit = xstrdup("5f1e2d3c4b5a69788796a5b4c3d2e1f001122334");
        d->n_databases = 1;
        d->databases = xcalloc(1, sizeof(doc_database));
        fill_database(&d->databases[0], "accounts-db");

        d->n_apps = 1;
        d->apps = a = xcalloc(1, sizeof(doc_app));
        a->name = xstrdup("auth-api");
        a->identity = identity();
        a->unit = xstrdup("auth-api.service");
        a->n_env = 1;
        a->env = xcalloc(1, sizeof(doc_env));
        a->env[0] = (doc_env) {
                .name = xstrdup("DATABASE_CONNECTION_STRING"),
                .database = xstrdup("accounts-db"),
                .db_hostname = xstrdup(DB_HOSTNAME),
                .db_address = xstrdup("10.99.0.2"),
                .port = 5432,
                .role = xstrdup("auth-api"),
                .access = DOC_ACCESS_READ_WRITE,
                .password = xstrdup("correct horse battery staple"),
        };
        return d;
}

static char *encode(const doc_document *d) {
        return doc_encode(d, NULL);
}

/* in with the first occurrence of from replaced by to; the fixture must contain from. */
static char *mutate(const char *in, const char *from, const char *to) {
        const char *p = strstr(in, from);

        assert_non_null(p);
        return xasprintf("%.*s%s%s", (int) (p - in), in, to, p + strlen(from));
}

static void assert_rejected(const char *json, size_t size, int expected_r, const char *expected_error) {
        doc_document *d = NULL;
        char *error = NULL;
        int r;

        r = doc_decode(json, size, &d, NULL, NULL, &error);
        if (!error || !streq(error, expected_error))
                print_error("expected error: %s\n     got error: %s\n", expected_error, strempty(error));
        assert_int_equal(r, expected_r);
        assert_null(d);
        assert_non_null(error);
        assert_string_equal(error, expected_error);
        free(error);
}

/* Decode the fixture's encoding with one substitution and expect exactly this -EBADMSG message. */
static void assert_mutation_rejected(const char *from, const char *to, const char *expected_error) {
        _cleanup_(doc_document_freep) doc_document *d = make_doc();
        _cleanup_free_ char *good = encode(d), *bad = mutate(good, from, to);

        assert_rejected(bad, strlen(bad), -EBADMSG, expected_error);
}

/* The fixture with the value at a JSON pointer replaced (value_json "null" gives JSON null). */
static void assert_pointer_rejected(const char *pointer, const char *value_json, const char *expected_error) {
        _cleanup_(doc_document_freep) doc_document *d = make_doc();
        _cleanup_free_ char *good = encode(d), *bad = NULL;
        json_object *root = json_tokener_parse(good);

        assert_non_null(root);
        assert_int_equal(json_pointer_set(&root, pointer, json_tokener_parse(value_json)), 0);
        bad = xstrdup(json_object_to_json_string(root));
        json_object_put(root);
        assert_rejected(bad, strlen(bad), -EBADMSG, expected_error);
}

/* The same, for a lexical error: the offset is where from was found, plus delta. */
static void assert_mutation_rejected_at(const char *from, const char *to, size_t delta, const char *reason) {
        _cleanup_(doc_document_freep) doc_document *d = make_doc();
        _cleanup_free_ char *good = encode(d), *bad = mutate(good, from, to), *expected = NULL;

        expected = xasprintf("malformed JSON at offset %zu: %s", (size_t) (strstr(good, from) - good) + delta, reason);
        assert_rejected(bad, strlen(bad), -EBADMSG, expected);
}

static void sha256_hex(const char *s, char ret[65]) {
        unsigned char md[32];

        assert_int_equal(EVP_Digest(s, strlen(s), md, NULL, EVP_sha256(), NULL), 1);
        for (size_t i = 0; i < 32; i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
}

/* ---- encoding ------------------------------------------------------------------------------ */

static void test_round_trip(void **state) {
        _cleanup_(doc_document_freep) doc_document *d = make_doc(), *back = NULL;
        _cleanup_free_ char *json = NULL, *again = NULL, *error = NULL;
        doc_signature sig;
        bool has_sig = true;
        size_t size, size2;

        json = doc_encode(d, &size);
        assert_int_equal(strlen(json), size);
        assert_int_equal(json[size - 1], '\n');
        assert_int_equal(doc_decode(json, size, &back, &sig, &has_sig, &error), 0);
        assert_null(error);
        assert_false(has_sig);

        assert_string_equal(back->host, "db1");
        assert_int_equal(back->role, DOC_HOST_DATABASE);
        assert_int_equal(back->revision, 1);
        assert_int_equal(back->n_databases, 1);
        assert_int_equal(back->databases[0].n_roles, 2);
        assert_string_equal(back->databases[0].roles[1].name, "reporting");
        assert_int_equal(back->databases[0].roles[1].access, DOC_ACCESS_READ_ONLY);
        assert_null(back->databases[0].roles[1].scram_verifier);
        assert_non_null(back->databases[0].roles[0].scram_verifier);
        assert_true(back->databases[0].backup.enabled);
        assert_int_equal(back->databases[0].backup.retention_days, 7);
        assert_string_equal(back->apps[0].env[0].password, "correct horse battery staple");
        assert_int_equal(back->apps[0].env[0].port, 5432);

        again = doc_encode(back, &size2);
        assert_int_equal(size, size2);
        assert_memory_equal(json, again, size);
}

static void test_canonical_shape(void **state) {
        _cleanup_(doc_document_freep) doc_document *d = make_doc();
        _cleanup_free_ char *json = encode(d);

        /* Fixed key order, two-space indent, unescaped slashes, "key": value spacing. */
        assert_true(strncmp(json,
                            "{\n"
                            "  \"apiVersion\": \"infrastream.io/v1\",\n"
                            "  \"kind\": \"DesiredState\",\n"
                            "  \"host\": \"db1\",\n"
                            "  \"role\": \"database\",\n"
                            "  \"revision\": 1,\n"
                            "  \"commit\": \"5f1e2d3c4b5a69788796a5b4c3d2e1f001122334\",\n"
                            "  \"databases\": [\n"
                            "    {\n"
                            "      \"name\": \"accounts-db\",\n",
                            strlen("{\n  \"apiVersion\"")) == 0);
        assert_non_null(strstr(json, "\"clients\": [\n            \"10.99.0.3/32\"\n          ],\n"
                                     "          \"scramVerifier\": "));
        /* An absent secret is omitted, not written as null. */
        assert_null(strstr(json, "null"));
        assert_string_equal(json + strlen(json) - 3, "\n}\n");
}

static void test_deterministic(void **state) {
        _cleanup_(doc_document_freep) doc_document *a = make_doc(), *b = make_doc();
        _cleanup_free_ char *ja = encode(a), *ja2 = encode(a), *jb = encode(b);

        assert_string_equal(ja, ja2);
        assert_string_equal(ja, jb);
}

static void test_content_hash(void **state) {
        _cleanup_(doc_document_freep) doc_document *d = make_doc();
        _cleanup_free_ char *before = encode(d), *after = NULL;
        char h1[65], h2[65], h3[65], h4[65];
        char *commit;

        doc_content_hash(d, h1);
        assert_int_equal(strlen(h1), 64);
        assert_int_equal(strspn(h1, "0123456789abcdef"), 64);

        /* Bookkeeping changes do not change the content hash... */
        d->revision = 42;
        commit = d->commit;
        d->commit = xstrdup("ffffffffffffffffffffffffffffffffffffffff");
        doc_content_hash(d, h2);
        assert_string_equal(h1, h2);
        free(d->commit);
        d->commit = commit;
        d->revision = 1;

        /* ...and hashing leaves the caller's document alone. */
        after = encode(d);
        assert_string_equal(before, after);

        /* Content changes do. */
        d->databases[0].port = 5433;
        doc_content_hash(d, h3);
        assert_string_not_equal(h1, h3);
        d->databases[0].port = 5432;
        d->databases[0].roles[1].access = DOC_ACCESS_READ_WRITE;
        doc_content_hash(d, h4);
        assert_string_not_equal(h1, h4);
        assert_string_not_equal(h3, h4);
}

static void test_to_string(void **state) {
        assert_string_equal(doc_access_to_string(DOC_ACCESS_READ_ONLY), "read-only");
        assert_string_equal(doc_access_to_string(DOC_ACCESS_READ_WRITE), "read-write");
        assert_null(doc_access_to_string((doc_access) 7));
        assert_string_equal(doc_host_role_to_string(DOC_HOST_DATABASE), "database");
        assert_string_equal(doc_host_role_to_string(DOC_HOST_APPLICATION), "application");
        assert_null(doc_host_role_to_string((doc_host_role) 7));
        doc_document_free(NULL);
}

/* ---- strict decoding ----------------------------------------------------------------------- */

static void test_reject_unknown_fields(void **state) {
        assert_mutation_rejected("\"host\": \"db1\",", "\"host\": \"db1\", \"foo\": 1,",
                                 "document: unknown field 'foo'");
        assert_mutation_rejected("\"port\": 5432,", "\"port\": 5432, \"extra\": true,",
                                 "databases[0]: unknown field 'extra'");
        assert_mutation_rejected("\"access\": \"read-only\"", "\"access\": \"read-only\", \"foo\": []",
                                 "databases[0].roles[1]: unknown field 'foo'");
        assert_mutation_rejected("\"project\": \"login-svc\"", "\"project\": \"login-svc\", \"team\": \"x\"",
                                 "databases[0].identity: unknown field 'team'");
        assert_mutation_rejected("\"retentionDays\": 7", "\"retentionDays\": 7, \"compress\": true",
                                 "databases[0].backup: unknown field 'compress'");
        assert_mutation_rejected("\"unit\": \"auth-api.service\",", "\"unit\": \"auth-api.service\", \"user\": \"x\",",
                                 "applications[0]: unknown field 'user'");
        assert_mutation_rejected("\"dbAddress\": \"10.99.0.2\",", "\"dbAddress\": \"10.99.0.2\", \"sslmode\": \"x\",",
                                 "applications[0].env[0]: unknown field 'sslmode'");
        /* A field name that is itself hostile is shown, but defanged. */
        assert_mutation_rejected("\"host\": \"db1\",", "\"host\": \"db1\", \"a\\u001bb\": 1,",
                                 "document: unknown field 'a?b'");
}

static void test_reject_wrong_types(void **state) {
        assert_mutation_rejected("\"host\": \"db1\"", "\"host\": 1", "host: expected a string");
        assert_mutation_rejected("\"cpuCount\": 4", "\"cpuCount\": \"4\"",
                                 "databases[0].cpuCount: must be an integer between 1 and 256");
        /* json-c makes 5432.0 a double: it is not an integer here. */
        assert_mutation_rejected("\"port\": 5432", "\"port\": 5432.0",
                                 "databases[0].port: must be an integer between 1 and 65535");
        assert_mutation_rejected("\"enabled\": true", "\"enabled\": 1",
                                 "databases[0].backup.enabled: expected a boolean");
        assert_pointer_rejected("/databases", "{}", "databases: expected an array");
        assert_mutation_rejected("\"allow\": [", "\"allow\": [1, ",
                                 "databases[0].allow[0]: expected a string");
        assert_pointer_rejected("/databases/0/identity", "[]", "databases[0].identity: expected an object");
        assert_pointer_rejected("/databases/0/roles/0/scramVerifier", "null",
                                "databases[0].roles[0].scramVerifier: expected a string");
        assert_pointer_rejected("/applications/0/env/0/port", "\"5432\"",
                                "applications[0].env[0].port: must be an integer between 1 and 65535");
        assert_pointer_rejected("/revision", "true", "revision: must be an integer between 0 and 9223372036854775807");
        assert_pointer_rejected("/commit", "{}", "commit: expected a string");
        assert_mutation_rejected("\"access\": \"read-only\"", "\"access\": \"admin\"",
                                 "databases[0].roles[1].access: expected 'read-only' or 'read-write', got 'admin'");
        assert_mutation_rejected("\"role\": \"database\"", "\"role\": \"both\"",
                                 "role: expected 'database' or 'application', got 'both'");
        assert_rejected("[]", 2, -EBADMSG, "document: expected an object");
}

static void test_reject_out_of_range(void **state) {
        assert_mutation_rejected("\"port\": 5432", "\"port\": 0",
                                 "databases[0].port: must be an integer between 1 and 65535");
        assert_mutation_rejected("\"port\": 5432", "\"port\": 65536",
                                 "databases[0].port: must be an integer between 1 and 65535");
        assert_mutation_rejected("\"postgresVersion\": 15", "\"postgresVersion\": 9",
                                 "databases[0].postgresVersion: must be an integer between 10 and 99");
        assert_mutation_rejected("\"cpuCount\": 4", "\"cpuCount\": 257",
                                 "databases[0].cpuCount: must be an integer between 1 and 256");
        assert_mutation_rejected("\"clusterSize\": 1", "\"clusterSize\": 10",
                                 "databases[0].clusterSize: must be an integer between 1 and 9");
        assert_mutation_rejected("\"retentionDays\": 7", "\"retentionDays\": 3651",
                                 "databases[0].backup.retentionDays: must be an integer between 1 and 3650");
        /* json-c saturates huge literals; the range check still sees them. */
        assert_mutation_rejected("\"port\": 5432", "\"port\": 99999999999999999999999",
                                 "databases[0].port: must be an integer between 1 and 65535");
        assert_mutation_rejected("\"revision\": 1", "\"revision\": -1",
                                 "revision: must be an integer between 0 and 9223372036854775807");
        assert_mutation_rejected("\"revision\": 1", "\"revision\": 9223372036854775808",
                                 "revision: must be an integer between 0 and 9223372036854775807");
        assert_mutation_rejected("\"name\": \"accounts-db\"",
                                 "\"name\": \"a123456789012345678901234567890123456789012345678901234567890123\"",
                                 "databases[0].name: longer than 63 bytes");
        assert_mutation_rejected("\"name\": \"accounts-db\"", "\"name\": \"\"",
                                 "databases[0].name: must not be empty");
        assert_mutation_rejected("\"schedule\": \"daily\"", "\"schedule\": \"daily\\n\"",
                                 "databases[0].backup.schedule: must not contain control characters");
        assert_mutation_rejected("\"organization\": \"fincorp\"", "\"organization\": \"fin\\u007fcorp\"",
                                 "databases[0].identity.organization: must not contain control characters");
}

static void test_reject_missing(void **state) {
        assert_mutation_rejected("\"revision\": 1,", "", "revision: missing");
        assert_mutation_rejected("\"cpuCount\": 4,", "", "databases[0].cpuCount: missing");
        assert_mutation_rejected("\"name\": \"reporting\",", "", "databases[0].roles[1].name: missing");
        assert_mutation_rejected("\"dbAddress\": \"10.99.0.2\",", "", "applications[0].env[0].dbAddress: missing");
        assert_mutation_rejected("\"applications\": [", "\"x\": [", "document: unknown field 'x'");
}

static void test_reject_unsorted_and_duplicates(void **state) {
        _cleanup_(doc_document_freep) doc_document *d = make_doc();
        _cleanup_free_ char *json = NULL;
        doc_database *dbs;

        assert_mutation_rejected("\"name\": \"reporting\"", "\"name\": \"aaa\"",
                                 "databases[0].roles[1].name: 'aaa' is out of order: entries must be sorted by name");
        assert_mutation_rejected("\"name\": \"reporting\"", "\"name\": \"auth-api\"",
                                 "databases[0].roles[1].name: duplicate name 'auth-api'");

        /* Two databases of the same name, as a buggy controller might produce them. */
        dbs = xcalloc(2, sizeof(doc_database));
        dbs[0] = d->databases[0];
        fill_database(&dbs[1], "accounts-db");
        free(d->databases);
        d->databases = dbs;
        d->n_databases = 2;
        json = encode(d);
        assert_rejected(json, strlen(json), -EBADMSG, "databases[1].name: duplicate name 'accounts-db'");

        /* json-c would silently keep the second of two equal keys. */
        assert_mutation_rejected("\"port\": 5432,", "\"port\": 5432, \"port\": 5433,", "databases[0]: duplicate field");
        assert_mutation_rejected("\"host\": \"db1\",", "\"host\": \"db1\", \"host\": \"db2\",", "document: duplicate field");
}

static void test_reject_malformed(void **state) {
        _cleanup_(doc_document_freep) doc_document *d = make_doc();
        _cleanup_free_ char *json = encode(d), *big = NULL, *trailing = NULL, *nul = NULL, *expected = NULL;
        size_t n = strlen(json);

        big = xcalloc(DOC_MAX_SIZE + 1, 1);
        assert_rejected(big, DOC_MAX_SIZE + 1, -E2BIG,
                        "document is too large: 67108865 bytes, at most 67108864 are accepted");

        assert_rejected(json, n / 2, -EBADMSG, "malformed JSON: unexpected end of input");
        assert_rejected("", 0, -EBADMSG, "malformed JSON: unexpected end of input");
        assert_rejected(" \n", 2, -EBADMSG, "malformed JSON: unexpected end of input");
        assert_rejected("{\"a\" 1}", 7, -EBADMSG,
                        "malformed JSON at offset 5: object property name separator ':' expected");

        trailing = xasprintf("%s{}", json);
        expected = xasprintf("malformed JSON at offset %zu: unexpected character", n);
        assert_rejected(trailing, n + 2, -EBADMSG, expected);
        nul = xmalloc(n);
        memcpy(nul, json, n);
        nul[10] = '\0';
        assert_rejected(nul, n, -EBADMSG, "malformed JSON at offset 10: NUL byte");

        /* What json-c lets through even in strict mode, and RFC 8259 does not. */
        assert_mutation_rejected_at("\"host\": \"db1\"", "'host': \"db1\"", 0, "unexpected character");
        assert_mutation_rejected_at("\"revision\": 1", "\"revision\": NaN", 12, "unexpected character");
        assert_mutation_rejected_at("\"revision\": 1", "\"revision\": -Infinity", 12, "invalid number");
        assert_mutation_rejected_at("\"revision\": 1", "\"revision\": 1.", 12, "invalid number");
        assert_mutation_rejected_at("\"host\": \"db1\"", "\"host\": /* c */ \"db1\"", 8, "unexpected character");
        assert_mutation_rejected_at("\"host\": \"db1\"", "\"host\": \"d\\ud800\"", 10, "unpaired surrogate in string");
        assert_mutation_rejected_at("\"host\": \"db1\"", "\"host\": \"d\\udc00\"", 10, "unpaired surrogate in string");
        assert_mutation_rejected_at("\"host\": \"db1\"", "\"host\": \"d\\u0000\"", 10, "NUL character in string");
        assert_mutation_rejected_at("\"host\": \"db1\"", "\"host\": \"d\xc0\xaf\"", 10, "invalid UTF-8 in string");
        assert_mutation_rejected_at("\"host\": \"db1\"", "\"host\": \"d\xed\xa0\x80\"", 10, "invalid UTF-8 in string");
        assert_mutation_rejected_at("\"host\": \"db1\"", "\"host\": \"d\tb\"", 10, "control character in string");

        /* Escapes that are fine: a surrogate pair, an escaped slash. */
        {
                _cleanup_free_ char *ok = mutate(json, "\"schedule\": \"daily\"", "\"schedule\": \"\\ud83d\\ude00\\/\"");
                _cleanup_(doc_document_freep) doc_document *back = NULL;
                _cleanup_free_ char *error = NULL;

                assert_int_equal(doc_decode(ok, strlen(ok), &back, NULL, NULL, &error), 0);
                assert_string_equal(back->databases[0].backup.schedule, "\xf0\x9f\x98\x80/");
        }
}

static void test_reject_wrong_version(void **state) {
        assert_mutation_rejected("\"apiVersion\": \"infrastream.io/v1\"", "\"apiVersion\": \"x\"",
                                 "apiVersion: expected 'infrastream.io/v1', got 'x'");
        assert_mutation_rejected("\"apiVersion\": \"infrastream.io/v1\"", "\"apiVersion\": \"infrastream.io/v2\"",
                                 "apiVersion: expected 'infrastream.io/v1', got 'infrastream.io/v2'");
        assert_mutation_rejected("\"kind\": \"DesiredState\"", "\"kind\": \"Foo\"",
                                 "kind: expected 'DesiredState', got 'Foo'");
        assert_mutation_rejected("\"kind\": \"DesiredState\",", "", "kind: missing");
}

static void test_accepts_whitespace_and_any_key_order(void **state) {
        _cleanup_(doc_document_freep) doc_document *d = make_doc(), *back = NULL;
        _cleanup_free_ char *json = encode(d), *moved = NULL, *padded = NULL, *canon = NULL, *error = NULL;

        /* The signature covers the canonical re-encoding, so layout and member order are free. */
        moved = mutate(json, "\"apiVersion\": \"infrastream.io/v1\",\n  \"kind\": \"DesiredState\",",
                       "\"kind\":\"DesiredState\",\"apiVersion\":\"infrastream.io/v1\",");
        padded = xasprintf(" \r\n%s \t\n", moved);
        assert_int_equal(doc_decode(padded, strlen(padded), &back, NULL, NULL, &error), 0);
        canon = encode(back);
        assert_string_equal(canon, json);
}

/* A well-formed PEM block (the decoder checks the form; X.509 is the agent's to check). */
#define CERT_PEM                                                                 \
        "-----BEGIN CERTIFICATE-----\n"                                          \
        "MIIBkTCCATegAwIBAgIQRm9vYmFyYmF6cXV4cXV1eDAKBggqhkjOPQQDAjAfMR0w\n"    \
        "GwYDVQQDDBRpbmZyYXN0cmVhbS5pbnRlcm5hbA==\n"                            \
        "-----END CERTIFICATE-----\n"

/* tlsCertificate: optional, after tlsNames, part of the content; one PEM certificate and nothing
 * else (a key, a second block, CRLF, text around it, over 64 KiB are refused). */
static void test_tls_certificate(void **state) {
        _cleanup_(doc_document_freep) doc_document *d = make_doc(), *back = NULL;
        _cleanup_free_ char *plain = encode(d), *json = NULL, *error = NULL, *expected = NULL;
        const char *form = "databases[0].tlsCertificate: must be one PEM certificate: \"-----BEGIN CERTIFICATE-----\", "
                           "lines of base64, \"-----END CERTIFICATE-----\", each line ending in \\n";
        char h1[65], h2[65];
        strbuf b = {};

        assert_null(strstr(plain, "tlsCertificate"));
        doc_content_hash(d, h1);
        d->databases[0].tls_certificate = xstrdup(CERT_PEM);
        doc_content_hash(d, h2);
        assert_string_not_equal(h1, h2);
        json = encode(d);
        expected = xasprintf("\"tlsNames\": [\n        \"%s\"\n      ],\n      \"tlsCertificate\": "
                             "\"-----BEGIN CERTIFICATE-----\\nMIIB",
                             DB_HOSTNAME);
        assert_non_null(strstr(json, expected));
        assert_int_equal(doc_decode(json, strlen(json), &back, NULL, NULL, &error), 0);
        assert_string_equal(back->databases[0].tls_certificate, CERT_PEM);

#define PEM_JSON "\"tlsNames\": [\"" DB_HOSTNAME "\"], \"tlsCertificate\": "
#define CERT_JSON "\"-----BEGIN CERTIFICATE-----\\nMIIBkTCCATegAwIBAgIQRm9v\\nGwYDVQQDDBRp==\\n-----END CERTIFICATE-----\\n\""
        {
                /* The same mutation with a good value is accepted: the refusals below are the value's. */
                _cleanup_free_ char *ok = mutate(plain, "\"tlsNames\": [\n        \"" DB_HOSTNAME "\"\n      ]",
                                                 PEM_JSON CERT_JSON);
                _cleanup_(doc_document_freep) doc_document *x = NULL;
                _cleanup_free_ char *err = NULL;
                assert_int_equal(doc_decode(ok, strlen(ok), &x, NULL, NULL, &err), 0);
        }
#define TLS_FROM "\"tlsNames\": [\n        \"" DB_HOSTNAME "\"\n      ]"
        assert_mutation_rejected(TLS_FROM, PEM_JSON "null", "databases[0].tlsCertificate: expected a string");
        assert_mutation_rejected(TLS_FROM, PEM_JSON "\"\"", "databases[0].tlsCertificate: must not be empty");
        assert_mutation_rejected(TLS_FROM, PEM_JSON "[]", "databases[0].tlsCertificate: expected a string");
        assert_mutation_rejected(TLS_FROM, PEM_JSON "\"MIIBkTCCATeg\"", form);
        assert_mutation_rejected(TLS_FROM,
                                 PEM_JSON "\"-----BEGIN PRIVATE KEY-----\\nMIIB\\n-----END PRIVATE KEY-----\\n\"", form);
        assert_mutation_rejected(TLS_FROM,
                                 PEM_JSON "\"-----BEGIN CERTIFICATE-----\\r\\nMIIB\\r\\n-----END CERTIFICATE-----\\r\\n\"",
                                 form);
        assert_mutation_rejected(TLS_FROM, PEM_JSON "\"-----BEGIN CERTIFICATE-----\\n-----END CERTIFICATE-----\\n\"",
                                 form);
        assert_mutation_rejected(TLS_FROM,
                                 PEM_JSON "\"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n"
                                          "-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"",
                                 form);
        assert_mutation_rejected(TLS_FROM,
                                 PEM_JSON "\"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\nextra\\n\"",
                                 form);
        assert_mutation_rejected(TLS_FROM,
                                 PEM_JSON "\"-----BEGIN CERTIFICATE-----\\nMI=B\\n-----END CERTIFICATE-----\\n\"", form);
        assert_mutation_rejected(TLS_FROM,
                                 PEM_JSON "\"-----BEGIN CERTIFICATE-----\\nMIIB\\n\\nMIIB\\n-----END CERTIFICATE-----\\n\"",
                                 form);
        assert_mutation_rejected(TLS_FROM,
                                 PEM_JSON "\"-----BEGIN CERTIFICATE-----\\nMIIB\\t\\n-----END CERTIFICATE-----\\n\"",
                                 "databases[0].tlsCertificate: must not contain control characters");
        /* A line longer than 64 characters. */
        strbuf_append(&b, PEM_JSON "\"-----BEGIN CERTIFICATE-----\\n");
        for (int i = 0; i < 65; i++)
                strbuf_append(&b, "A");
        strbuf_append(&b, "\\n-----END CERTIFICATE-----\\n\"");
        assert_mutation_rejected(TLS_FROM, b.s, form);
        strbuf_done(&b);
        /* Bounded: 64 KiB. */
        strbuf_append(&b, PEM_JSON "\"-----BEGIN CERTIFICATE-----\\n");
        for (int i = 0; i < 1100; i++)
                strbuf_append(&b, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\\n");
        strbuf_append(&b, "-----END CERTIFICATE-----\\n\"");
        assert_mutation_rejected(TLS_FROM, b.s, "databases[0].tlsCertificate: longer than 65536 bytes");
        strbuf_done(&b);
#undef TLS_FROM
#undef PEM_JSON
#undef CERT_JSON
}

#define PASSPHRASE "Zm9vYmFyLWJhY2t1cC1wYXNzcGhyYXNlXzAxMjM0NTY"

/* backup.passphrase: optional, last in backup, part of the content; base64url characters of a
 * bounded length, only with backups enabled. The exact messages show no refusal quotes it. */
static void test_backup_passphrase(void **state) {
        _cleanup_(doc_document_freep) doc_document *d = make_doc(), *back = NULL;
        _cleanup_free_ char *plain = encode(d), *json = NULL, *error = NULL, *too_long = NULL;
        const char *form = "databases[0].backup.passphrase: must be 32 to 256 characters of A-Z, a-z, 0-9, '-' and '_'";
        char h1[65], h2[65];

        assert_null(strstr(plain, "passphrase"));
        doc_content_hash(d, h1);
        d->databases[0].backup.passphrase = xstrdup(PASSPHRASE);
        doc_content_hash(d, h2);
        assert_string_not_equal(h1, h2);
        json = encode(d);
        assert_non_null(strstr(json, "\"retentionDays\": 7,\n        \"passphrase\": \"" PASSPHRASE "\"\n      },"));
        assert_int_equal(doc_decode(json, strlen(json), &back, NULL, NULL, &error), 0);
        assert_string_equal(back->databases[0].backup.passphrase, PASSPHRASE);

#define BACKUP_FROM "\"retentionDays\": 7\n"
#define WITH(v) "\"retentionDays\": 7, \"passphrase\": " v "\n"
        {
                /* The longest accepted; the refusals below are the value's. */
                _cleanup_(doc_document_freep) doc_document *x = NULL;
                _cleanup_free_ char *err = NULL, *value = xasprintf("\"%0256d\"", 0), *with = NULL, *ok = NULL;

                with = xasprintf("\"retentionDays\": 7, \"passphrase\": %s\n", value);
                ok = mutate(plain, BACKUP_FROM, with);
                assert_int_equal(doc_decode(ok, strlen(ok), &x, NULL, NULL, &err), 0);
                assert_int_equal(strlen(x->databases[0].backup.passphrase), 256);
                too_long = xasprintf("\"retentionDays\": 7, \"passphrase\": \"%0257d\"\n", 0);
        }
        assert_mutation_rejected(BACKUP_FROM, too_long, form);
        assert_mutation_rejected(BACKUP_FROM, WITH("null"), "databases[0].backup.passphrase: expected a string");
        assert_mutation_rejected(BACKUP_FROM, WITH("42"), "databases[0].backup.passphrase: expected a string");
        assert_mutation_rejected(BACKUP_FROM, WITH("\"\""), "databases[0].backup.passphrase: must not be empty");
        /* 31 characters: too short to be a generated passphrase. */
        assert_mutation_rejected(BACKUP_FROM, WITH("\"Zm9vYmFyLWJhY2t1cC1wYXNzcGhyYXN\""), form);
        /* Characters that would need quoting in pgBackRest's configuration file. */
        assert_mutation_rejected(BACKUP_FROM, WITH("\"Zm9vYmFyLWJhY2t1cC1wYXNzcGhyYXNl 012345\""), form);
        assert_mutation_rejected(BACKUP_FROM, WITH("\"Zm9vYmFyLWJhY2t1cC1wYXNzcGhyYXNl=012345\""), form);
        assert_mutation_rejected(BACKUP_FROM, WITH("\"Zm9vYmFyLWJhY2t1cC1wYXNzcGhyYXNl+012345\""), form);
        assert_mutation_rejected(BACKUP_FROM, WITH("\"Zm9vYmFyLWJhY2t1cC1wYXNzcGhyYXNl\\u00e9012345\""), form);
        assert_mutation_rejected(BACKUP_FROM, WITH("\"Zm9vYmFyLWJhY2t1cC1wYXNzcGhyYXNl\\n012345\""),
                                 "databases[0].backup.passphrase: must not contain control characters");
        /* Only where backups are enabled. */
        {
                _cleanup_free_ char *off = mutate(plain, "\"enabled\": true", "\"enabled\": false"), *bad = NULL;

                bad = mutate(off, BACKUP_FROM, WITH("\"" PASSPHRASE "\""));
                assert_rejected(bad, strlen(bad), -EBADMSG,
                                "databases[0].backup.passphrase: must be absent when backups are disabled");
        }
#undef WITH
#undef BACKUP_FROM
}

/* ---- replication ----------------------------------------------------------------------------- */

#define REPL_VERIFIER "SCRAM-SHA-256$4096:c2FsdHNhbHQ=$c3RvcmVk:c2VydmVy"
#define REPL_PASSWORD "cmVwbGljYXRpb24tcGFzc3dvcmQtMDEyMzQ1Njc4OQ"

/* The fixture as a member of a three-host cluster (db1 primary) seen from host: db1's document
 * has the verifier, a standby's the password; the application's variable lists every member. */
static doc_document *make_replicated_doc(const char *host) {
        doc_document *d = make_doc();
        doc_database *db = &d->databases[0];
        doc_replication *rep = xcalloc(1, sizeof(doc_replication));
        static const char *const hosts[] = { "db1", "db2", "db3" }, *const addrs[] = { "10.99.0.2", "10.99.0.5", "fd00::6" };
        doc_env *e = &d->apps[0].env[0];

        free(d->host);
        d->host = xstrdup(host);
        db->cluster_size = 3;
        rep->role = streq(host, "db1") ? DOC_REPLICA_PRIMARY : DOC_REPLICA_STANDBY;
        rep->primary = xstrdup("db1");
        rep->n_members = 3;
        rep->members = xcalloc(3, sizeof(doc_member));
        for (size_t i = 0; i < 3; i++)
                rep->members[i] = (doc_member) { xstrdup(hosts[i]), xstrdup(addrs[i]) };
        if (rep->role == DOC_REPLICA_PRIMARY)
                rep->verifier = xstrdup(REPL_VERIFIER);
        else
                rep->password = xstrdup(REPL_PASSWORD);
        db->replication = rep;
        e->db_addresses = strv(3, "10.99.0.2", "10.99.0.5", "fd00::6");
        e->n_db_addresses = 3;
        return d;
}

/* host's replicated document, encoded, with from replaced by to: exactly this error. */
static void assert_replicated_rejected(const char *host, const char *from, const char *to, const char *expected) {
        _cleanup_(doc_document_freep) doc_document *d = make_replicated_doc(host);
        _cleanup_free_ char *good = encode(d), *bad = mutate(good, from, to);

        assert_rejected(bad, strlen(bad), -EBADMSG, expected);
}

static void test_replication(void **state) {
        _cleanup_(doc_document_freep) doc_document *single = make_doc(), *p = make_replicated_doc("db1"),
                                                   *st = make_replicated_doc("db2"), *back = NULL, *back2 = NULL;
        _cleanup_free_ char *js = encode(single), *jp = encode(p), *jst = encode(st), *again = NULL, *error = NULL;
        char h1[65], h2[65];

        /* clusterSize 1: nothing new in the document. */
        assert_null(strstr(js, "replication"));
        assert_null(strstr(js, "dbAddresses"));
        assert_non_null(strstr(jp, "\"allow\": [\n        \"10.99.0.3/32\",\n        \"10.99.0.7/32\"\n      ],\n"
                                   "      \"replication\": {\n        \"role\": \"primary\",\n        \"primary\": \"db1\",\n"
                                   "        \"members\": [\n          {\n            \"host\": \"db1\",\n"
                                   "            \"address\": \"10.99.0.2\"\n          },\n"));
        assert_non_null(strstr(jp, "\"verifier\": \"" REPL_VERIFIER "\"\n      }\n    }\n  ],"));
        assert_null(strstr(jp, REPL_PASSWORD));
        assert_non_null(strstr(jst, "\"role\": \"standby\""));
        assert_non_null(strstr(jst, "\"password\": \"" REPL_PASSWORD "\"\n      }\n"));
        assert_null(strstr(jst, "\"verifier\""));
        assert_non_null(strstr(jp, "\"dbAddress\": \"10.99.0.2\",\n          \"dbAddresses\": [\n            \"10.99.0.2\",\n"));

        /* Round trip, canonical. */
        assert_int_equal(doc_decode(jp, strlen(jp), &back, NULL, NULL, &error), 0);
        assert_int_equal(back->databases[0].replication->role, DOC_REPLICA_PRIMARY);
        assert_int_equal(back->databases[0].replication->n_members, 3);
        assert_string_equal(back->databases[0].replication->members[2].address, "fd00::6");
        assert_string_equal(back->databases[0].replication->verifier, REPL_VERIFIER);
        assert_int_equal(back->apps[0].env[0].n_db_addresses, 3);
        again = encode(back);
        assert_string_equal(again, jp);
        assert_int_equal(doc_decode(jst, strlen(jst), &back2, NULL, NULL, &error), 0);
        assert_string_equal(back2->databases[0].replication->password, REPL_PASSWORD);

        /* The content hash covers it. */
        doc_content_hash(p, h1);
        free(p->databases[0].replication->verifier);
        p->databases[0].replication->verifier = xstrdup(REPL_VERIFIER "x");
        doc_content_hash(p, h2);
        assert_string_not_equal(h1, h2);
        doc_content_hash(st, h1);
        st->databases[0].replication->role = DOC_REPLICA_PRIMARY;
        doc_content_hash(st, h2);
        assert_string_not_equal(h1, h2);

        /* Refusals, each naming the field; secrets never quoted. */
        assert_replicated_rejected("db1", "\"role\": \"primary\"", "\"role\": \"leader\"",
                                   "databases[0].replication.role: expected 'primary' or 'standby', got 'leader'");
        assert_replicated_rejected("db1", "\"primary\": \"db1\"", "\"primary\": \"db9\"",
                                   "databases[0].replication.primary: 'db9' is not one of members");
        assert_replicated_rejected("db1", "\"host\": \"db2\"", "\"host\": \"db1\"",
                                   "databases[0].replication.members[1].host: duplicate host 'db1'");
        assert_replicated_rejected("db1", "\"host\": \"db2\"", "\"host\": \"db4\"",
                                   "databases[0].replication.members[2].host: 'db3' is out of order: members must be "
                                   "sorted by host");
        assert_replicated_rejected("db1", "\"address\": \"10.99.0.5\"", "\"address\": \"10.99.0.300\"",
                                   "databases[0].replication.members[1].address: '10.99.0.300' is not an IPv4 or IPv6 "
                                   "address");
        assert_replicated_rejected("db1", "\"address\": \"10.99.0.5\"", "\"address\": \"10.99.0.5/32\"",
                                   "databases[0].replication.members[1].address: '10.99.0.5/32' is not an IPv4 or IPv6 "
                                   "address");
        assert_replicated_rejected("db1", "\"members\": [", "\"members\": [], \"x\": [",
                                   "databases[0].replication: unknown field 'x'");
        assert_replicated_rejected("db1", "\"verifier\": \"" REPL_VERIFIER "\"", "\"password\": \"" REPL_PASSWORD "\"",
                                   "databases[0].replication.verifier: missing (required when role is primary)");
        assert_replicated_rejected("db1", "\"verifier\": \"" REPL_VERIFIER "\"",
                                   "\"verifier\": \"" REPL_VERIFIER "\", \"password\": \"" REPL_PASSWORD "\"",
                                   "databases[0].replication.password: must be absent when role is primary");
        assert_replicated_rejected("db1", "\"verifier\": \"" REPL_VERIFIER "\"", "\"verifier\": \"md5abc\"",
                                   "databases[0].replication.verifier: must be a SCRAM-SHA-256 verifier");
        assert_replicated_rejected("db2", "\"password\": \"" REPL_PASSWORD "\"", "\"verifier\": \"" REPL_VERIFIER "\"",
                                   "databases[0].replication.verifier: must be absent when role is standby");
        assert_replicated_rejected("db2", "\"password\": \"" REPL_PASSWORD "\"", "\"password\": \"short'secret\"",
                                   "databases[0].replication.password: must be 32 to 256 characters of A-Z, a-z, 0-9, "
                                   "'-' and '_'");
        assert_replicated_rejected("db2", "\"role\": \"standby\"", "\"role\": \"primary\"",
                                   "databases[0].replication.verifier: missing (required when role is primary)");
        assert_replicated_rejected("db1", "\"role\": \"primary\"", "\"role\": \"standby\"",
                                   "databases[0].replication.verifier: must be absent when role is standby");
        assert_replicated_rejected("db1", "\"clusterSize\": 3", "\"clusterSize\": 1",
                                   "databases[0].replication: must be absent when clusterSize is 1");
        assert_replicated_rejected("db1", "\"clusterSize\": 3", "\"clusterSize\": 2",
                                   "databases[0].replication: lists 3 members, more than clusterSize 2");
        /* The document's host must be a member, primary exactly when it is the primary. */
        assert_replicated_rejected("db1", "\"host\": \"db1\",\n  \"role\"", "\"host\": \"db7\",\n  \"role\"",
                                   "databases[0].replication.members: must list this document's host");
        assert_replicated_rejected("db2", "\"primary\": \"db1\"", "\"primary\": \"db2\"",
                                   "databases[0].replication.role: must be primary: primary is this document's host");
        {
                /* Two members at least. */
                _cleanup_(doc_document_freep) doc_document *d = make_replicated_doc("db1");
                _cleanup_free_ char *one = NULL;

                d->databases[0].replication->n_members = 1;
                one = encode(d);
                d->databases[0].replication->n_members = 3;
                assert_rejected(one, strlen(one), -EBADMSG,
                                "databases[0].replication.members: must list between 2 and 16 members");
        }
        /* dbAddresses: every member's, the primary's first. */
        assert_replicated_rejected("db1", "\"dbAddresses\": [\n            \"10.99.0.2\",",
                                   "\"dbAddresses\": [\n            \"10.99.0.5\",",
                                   "applications[0].env[0].dbAddresses: must start with dbAddress (the primary's)");
        assert_replicated_rejected("db1", "\"fd00::6\"\n          ]", "\"fd00::zz\"\n          ]",
                                   "applications[0].env[0].dbAddresses[2]: 'fd00::zz' is not an IPv4 or IPv6 address");
        assert_replicated_rejected("db1", "\"dbAddresses\": [\n            \"10.99.0.2\",\n            \"10.99.0.5\",\n"
                                          "            \"fd00::6\"\n          ]",
                                   "\"dbAddresses\": [\"10.99.0.2\"]",
                                   "applications[0].env[0].dbAddresses: must list between 2 and 16 addresses");
}

/* The replication entries of the fuzz corpus (tests/fuzz/corpus/document) decode as they say. */
static void test_replication_corpus(void **state) {
        static const struct {
                const char *file;
                const char *error; /* NULL: valid */
        } cases[] = {
                { "valid-replication-primary", NULL },
                { "valid-replication-standby", NULL },
                { "bad-replication-primary", "databases[0].replication.primary: 'db9' is not one of members" },
        };
        const char *top = getenv("top_srcdir") ? getenv("top_srcdir") : "../..";

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *path = xasprintf("%s/tests/fuzz/corpus/document/%s", top, cases[i].file);
                _cleanup_free_ char *data = NULL, *error = NULL;
                _cleanup_(doc_document_freep) doc_document *d = NULL;
                size_t size = 0;

                assert_int_equal(read_full_file(path, 1u << 20, &data, &size), 0);
                if (!cases[i].error) {
                        assert_int_equal(doc_decode(data, size, &d, NULL, NULL, &error), 0);
                        assert_non_null(d->databases[0].replication);
                } else
                        assert_rejected(data, size, -EBADMSG, cases[i].error);
        }
}

/* ---- signing ------------------------------------------------------------------------------- */

static char tmpdir[] = "/tmp/test-proto.XXXXXX";

static char *tmp_path(const char *name) {
        return xasprintf("%s/%s", tmpdir, name);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup_tmpdir(void **state) {
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmpdir(void **state) {
        return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh key pair under tmpdir; returns the private key path, the public one in *ret_pub. */
static char *make_key(const char *name, char **ret_pub) {
        _cleanup_free_ char *pub_name = xasprintf("%s.pub", name);
        char *key = tmp_path(name);

        assert_int_equal(sign_generate_key(key), 0);
        *ret_pub = tmp_path(pub_name);
        assert_int_equal(sign_export_public_key(key, *ret_pub), 0);
        return key;
}

/* Roots and the parents made for them are 0755 under the units' umask 0077; an existing directory
 * keeps its mode; read_to_eof() and write_all() through a pipe. */
static void test_mkdir_root_and_pipes(void **state) {
        _cleanup_free_ char *kept = xasprintf("%s/kept", tmpdir), *root = xasprintf("%s/kept/a/b/data", tmpdir);
        mode_t old = umask(0077);
        struct stat st;
        char buf[8];
        int p[2];

        (void) state;
        assert_int_equal(mkdir(kept, 0700), 0);
        assert_int_equal(mkdir_root(root), 0);
        assert_int_equal(mkdir_root(root), 0);
        umask(old);
        assert_int_equal(stat(kept, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        for (char *s = root + strlen(kept) + 1; *s; s++)
                if (*s == '/') {
                        *s = '\0';
                        assert_int_equal(stat(root, &st), 0);
                        assert_int_equal(st.st_mode & 07777, 0755);
                        *s = '/';
                }
        assert_int_equal(stat(root, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0755);

        assert_int_equal(pipe(p), 0);
        assert_int_equal(write_all(p[1], "1234567", 7), 0);
        close(p[1]);
        assert_int_equal(read_to_eof(p[0], buf, sizeof(buf)), 7);
        assert_string_equal(buf, "1234567");
        close(p[0]);
        assert_int_equal(pipe(p), 0);
        assert_int_equal(write_all(p[1], "12345678", 8), 0);
        close(p[1]);
        assert_int_equal(read_to_eof(p[0], buf, sizeof(buf)), -EFBIG);
        close(p[0]);
}

static void test_generate_key(void **state) {
        _cleanup_free_ char *key = tmp_path("gen.key"), *pub = tmp_path("gen.pub"), *before = NULL, *after = NULL;
        struct stat st;
        size_t n1, n2;

        assert_int_equal(sign_generate_key(key), 0);
        assert_int_equal(stat(key, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(read_full_file(key, 65536, &before, &n1), 0);
        assert_non_null(strstr(before, "-----BEGIN PRIVATE KEY-----"));

        /* Never replace a key: agents may already trust it. */
        assert_int_equal(sign_generate_key(key), -EEXIST);
        assert_int_equal(read_full_file(key, 65536, &after, &n2), 0);
        assert_int_equal(n1, n2);
        assert_memory_equal(before, after, n1);
        explicit_bzero(before, n1);
        explicit_bzero(after, n2);

        assert_int_equal(sign_export_public_key(key, pub), 0);
        free(after);
        after = NULL;
        assert_int_equal(read_full_file(pub, 65536, &after, &n2), 0);
        assert_non_null(strstr(after, "-----BEGIN PUBLIC KEY-----"));

        assert_int_equal(sign_generate_key("/nonexistent-dir/x.key"), -ENOENT);
}

static void test_sign_verify(void **state) {
        _cleanup_(doc_document_freep) doc_document *d = make_doc(), *back = NULL, *decoded = NULL;
        _cleanup_free_ char *pub = NULL, *key = make_key("a.key", &pub), *json = NULL, *error = NULL,
                            *content = encode(d), *again = NULL;
        doc_signature sig;
        bool has_sig = false;
        char hash[65], hex[65];
        size_t size;

        assert_int_equal(sign_document(d, key, &json, &size, &error), 0);
        assert_null(error);
        assert_int_equal(strlen(json), size);
        assert_non_null(strstr(json, "\"signature\": {\n    \"algorithm\": \"ed25519\",\n    \"keyId\": \""));
        assert_string_equal(json + size - 3, "\n}\n");

        assert_int_equal(verify_document(json, size, pub, &back, &error), 0);
        assert_null(error);
        again = encode(back);
        assert_string_equal(again, content);

        /* The envelope decodes as a document; its sha256 is that of the canonical content. */
        assert_int_equal(doc_decode(json, size, &decoded, &sig, &has_sig, &error), 0);
        assert_true(has_sig);
        assert_int_equal(strlen(sig.key_id), 16);
        sha256_hex(content, hex);
        assert_string_equal(sig.sha256, hex);
        /* The content hash is something else: it ignores revision and commit. */
        doc_content_hash(d, hash);
        assert_string_not_equal(hash, sig.sha256);

        /* Signing is deterministic (Ed25519), so the envelope is too. */
        free(again);
        assert_int_equal(sign_document(d, key, &again, NULL, &error), 0);
        assert_string_equal(again, json);
}

static void assert_verify_rejected(const char *json, const char *pub, int expected_r, const char *expected) {
        doc_document *d = NULL;
        char *error = NULL;

        assert_int_equal(verify_document(json, strlen(json), pub, &d, &error), expected_r);
        assert_null(d);
        assert_non_null(error);
        assert_string_equal(error, expected);
        free(error);
}

static void test_verify_rejects(void **state) {
        _cleanup_(doc_document_freep) doc_document *d = make_doc(), *t = make_doc();
        _cleanup_free_ char *pub = NULL, *key = make_key("b.key", &pub), *pub2 = NULL, *key2 = make_key("c.key", &pub2),
                            *json = NULL, *error = NULL, *tampered = NULL, *forged = NULL, *expected = NULL,
                            *unsigned_json = NULL, *badsig = NULL, *value = NULL, *other = NULL, *tc = NULL;
        doc_signature sig, sig2;
        char sha[65];
        const char *p;

        assert_int_equal(sign_document(d, key, &json, NULL, &error), 0);
        assert_int_equal(doc_decode(json, strlen(json), NULL, &sig, NULL, &error), 0);

        /* One byte of one value changed after signing. */
        tampered = mutate(json, "\"port\": 5432", "\"port\": 5433");
        expected = xasprintf("document content does not match its signed sha256 %s", sig.sha256);
        assert_verify_rejected(tampered, pub, -EKEYREJECTED, expected);

        /* An attacker who also fixes up the sha256 still cannot make the signature verify. */
        t->databases[0].port = 5433;
        tc = encode(t);
        sha256_hex(tc, sha);
        forged = mutate(tampered, sig.sha256, sha);
        assert_verify_rejected(forged, pub, -EKEYREJECTED, "signature does not verify");

        /* A changed signature. */
        p = strstr(json, "\"value\": \"");
        assert_non_null(p);
        value = xstrndup(p + 10, 88);
        value[0] = value[0] == 'A' ? 'B' : 'A';
        badsig = xasprintf("%.*s%s%s", (int) (p + 10 - json), json, value, p + 10 + 88);
        assert_verify_rejected(badsig, pub, -EKEYREJECTED, "signature does not verify");

        /* Signed by a key this host does not trust. */
        assert_int_equal(sign_document(d, key2, &other, NULL, &error), 0);
        assert_int_equal(doc_decode(other, strlen(other), NULL, &sig2, NULL, &error), 0);
        assert_string_not_equal(sig.key_id, sig2.key_id);
        free(expected);
        expected = xasprintf("signature was made with key %s but this host trusts key %s", sig2.key_id, sig.key_id);
        assert_verify_rejected(other, pub, -EKEYREJECTED, expected);
        assert_int_equal(verify_document(other, strlen(other), pub2, NULL, &error), 0);

        /* Plain content is not an envelope. */
        unsigned_json = encode(d);
        assert_verify_rejected(unsigned_json, pub, -EKEYREJECTED, "document is not signed");

        /* Malformed input is reported as such, before any key is looked at. */
        assert_verify_rejected("{", "/nonexistent", -EBADMSG, "malformed JSON: unexpected end of input");

        /* A trusted key that is missing or is not a public key; OpenSSL's words follow ours. */
        assert_verify_rejected(json, "/nonexistent.pub", -ENOENT,
                               "cannot read public key '/nonexistent.pub': No such file or directory");
        free(expected);
        expected = xasprintf("cannot parse public key '%s': ", key);
        assert_int_equal(verify_document(json, strlen(json), key, NULL, &error), -EINVAL);
        assert_non_null(error);
        assert_true(strncmp(error, expected, strlen(expected)) == 0);
}

static void test_signature_member_strict(void **state) {
        _cleanup_(doc_document_freep) doc_document *d = make_doc();
        _cleanup_free_ char *pub = NULL, *key = make_key("d.key", &pub), *json = NULL, *error = NULL, *bad = NULL;
        doc_signature sig;

        assert_int_equal(sign_document(d, key, &json, NULL, &error), 0);
        assert_int_equal(doc_decode(json, strlen(json), NULL, &sig, NULL, &error), 0);

        bad = mutate(json, "\"ed25519\"", "\"rsa\"");
        assert_rejected(bad, strlen(bad), -EBADMSG, "signature.algorithm: expected 'ed25519', got 'rsa'");
        free(bad);
        bad = mutate(json, "\"keyId\": \"", "\"keyId\": \"X");
        assert_rejected(bad, strlen(bad), -EBADMSG, "signature.keyId: must be 16 lower-case hexadecimal digits");
        free(bad);
        bad = mutate(json, sig.sha256, "ABC");
        assert_rejected(bad, strlen(bad), -EBADMSG, "signature.sha256: must be 64 lower-case hexadecimal digits");
        free(bad);
        bad = mutate(json, "==\"", "\"");
        assert_rejected(bad, strlen(bad), -EBADMSG,
                        "signature.value: must be the base64 encoding of a 64-byte Ed25519 signature");
        free(bad);
        bad = mutate(json, "\"algorithm\": \"ed25519\",", "");
        assert_rejected(bad, strlen(bad), -EBADMSG, "signature.algorithm: missing");
        free(bad);
        bad = mutate(json, "\"algorithm\": \"ed25519\",", "\"algorithm\": \"ed25519\", \"x\": 1,");
        assert_rejected(bad, strlen(bad), -EBADMSG, "signature: unknown field 'x'");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_canonical_shape),
                cmocka_unit_test(test_deterministic),
                cmocka_unit_test(test_content_hash),
                cmocka_unit_test(test_to_string),
                cmocka_unit_test(test_reject_unknown_fields),
                cmocka_unit_test(test_reject_wrong_types),
                cmocka_unit_test(test_reject_out_of_range),
                cmocka_unit_test(test_reject_missing),
                cmocka_unit_test(test_reject_unsorted_and_duplicates),
                cmocka_unit_test(test_reject_malformed),
                cmocka_unit_test(test_reject_wrong_version),
                cmocka_unit_test(test_accepts_whitespace_and_any_key_order),
                cmocka_unit_test(test_tls_certificate),
                cmocka_unit_test(test_backup_passphrase),
                cmocka_unit_test(test_replication),
                cmocka_unit_test(test_replication_corpus),
                cmocka_unit_test(test_mkdir_root_and_pipes),
                cmocka_unit_test(test_generate_key),
                cmocka_unit_test(test_sign_verify),
                cmocka_unit_test(test_verify_rejects),
                cmocka_unit_test(test_signature_member_strict),
        };

        return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
