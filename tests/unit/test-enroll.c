/* Unit tests for enrollment on the controller's side: token options (lifetime, role, labels),
 * token creation (format, only a verifier stored), the order of a presented token's checks, the
 * enrollment transaction (issued identity, recorded host, every refusal with its HTTP status and
 * nothing changed), re-enrollment only with a token made for that host (--replace), two
 * enrollments racing for one name, and enrolled hosts joining the inventory. */
#include "unit.h"

#include <ftw.h>
#include <pthread.h>
#include <regex.h>
#include <stdbool.h>
#include <sys/stat.h>

#include "ca.h"
#include "enrollment.h"
#include "fileio.h"
#include "inventory.h"
#include "store.h"
#include "tokens.h"
#include "wire.h"
#include "x509.h"

#define DOMAIN "infrastream.internal"
#define SIGNING_PEM "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAtest\n-----END PUBLIC KEY-----\n"

typedef struct fixture {
        char dir[64];
        store *s;
        ca *ca;
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup(void **state) {
        fixture *f = xcalloc(1, sizeof(fixture));

        strcpy(f->dir, "/tmp/test-enroll.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_int_equal(store_open(f->dir, true, false, &f->s, NULL), 0);
        assert_int_equal(ca_create(f->dir, DOMAIN, NULL), 1);
        assert_int_equal(ca_load(f->dir, &f->ca, NULL), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture *f = *state;

        ca_free(f->ca);
        store_close(f->s);
        nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

static bool matches(const char *re_text, const char *s) {
        regex_t re;
        int r;

        assert_int_equal(regcomp(&re, re_text, REG_EXTENDED | REG_NOSUB), 0);
        r = regexec(&re, s, 0, NULL, 0);
        regfree(&re);
        return r == 0;
}

static void contains(const char *s, const char *want) {
        if (!s || !strstr(s, want))
                fail_msg("'%s' does not contain '%s'", strempty(s), want);
}

static void test_options(void **state) {
        _cleanup_free_ char *err = NULL, *out = NULL;
        int64_t v = 0;

        assert_int_equal(tokens_parse_ttl("1h", &v, NULL), 0);
        assert_int_equal(v, 3600);
        assert_int_equal(tokens_parse_ttl("7d", &v, NULL), 0);
        assert_int_equal(tokens_parse_ttl("8d", &v, &err), -EINVAL);
        contains(err, "between 1s and 7d; not '8d'");
        free(TAKE_PTR(err));
        assert_int_equal(tokens_parse_ttl("1y", &v, NULL), -EINVAL);
        assert_int_equal(tokens_parse_ttl("0s", &v, NULL), -EINVAL);

        assert_int_equal(tokens_check_role("database", NULL), 0);
        assert_int_equal(tokens_check_role("application", NULL), 0);
        assert_int_equal(tokens_check_role("Database", &err), -EINVAL);
        contains(err, "'Database' is not a role; expected 'database' or 'application'");
        free(TAKE_PTR(err));

        assert_int_equal(tokens_parse_labels("", &out, NULL), 0);
        assert_string_equal(out, "");
        free(TAKE_PTR(out));
        assert_int_equal(tokens_parse_labels("environment=production,zone=eu-1,rack.id=R_7", &out, NULL), 0);
        assert_string_equal(out, "environment=production,zone=eu-1,rack.id=R_7");
        free(TAKE_PTR(out));
        static const struct {
                const char *in, *want;
        } bad[] = {
                { "zone", "label 1: expected KEY=VALUE" },
                { "a=b,", "label 2: expected KEY=VALUE" },
                { "a=b,,c=d", "label 2: expected KEY=VALUE" },
                { "Zone=a", "label 1: the key must be" },
                { "-a=b", "label 1: the key must be" },
                { "=b", "label 1: the key must be" },
                { "a=", "label 'a': the value must be" },
                { "a=b c", "label 'a': the value must be" },
                { "a=b=c", "label 'a': the value must be" },
                { "a=b,a=c", "label 'a' is given twice" },
                { "environment=Prod", "label 'environment': 'Prod' must be a lower-case DNS label" },
                { "environment=a_b", "must be a lower-case DNS label" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(tokens_parse_labels(bad[i].in, &out, &err), -EINVAL);
                contains(err, bad[i].want);
                free(TAKE_PTR(err));
        }
        {
                _cleanup_free_ char *many = xstrdup("");
                for (int i = 0; i <= TOKENS_LABELS_MAX; i++) {
                        char *m = xasprintf("%s%sk%d=v", many, i ? "," : "", i);
                        free(many);
                        many = m;
                }
                assert_int_equal(tokens_parse_labels(many, &out, &err), -EINVAL);
                contains(err, "at most 32 labels");
        }
}

static char *db_bytes(const fixture *f) {
        _cleanup_free_ char *path = xasprintf("%s/%s", f->dir, STORE_FILE), *wal = xasprintf("%s-wal", path);
        char *a = NULL, *b = NULL, *all;
        size_t na = 0, nb = 0;

        assert_int_equal(read_full_file(path, 64u << 20, &a, &na), 0);
        if (read_full_file(wal, 64u << 20, &b, &nb) < 0)
                nb = 0;
        all = xmalloc(na + nb + 1);
        memcpy_safe(all, a, na);
        memcpy_safe(all + na, b, nb);
        all[na + nb] = '\0';
        /* SQLite pages hold NULs: make it one searchable string. */
        for (size_t i = 0; i < na + nb; i++)
                if (!all[i])
                        all[i] = '\n';
        free(a);
        free(b);
        return all;
}

static void test_create(void **state) {
        fixture *f = *state;
        _cleanup_erase_ char *token = NULL, *token2 = NULL;
        _cleanup_free_ char *bytes = NULL;
        char id[WIRE_TOKEN_ID_LEN + 1], secret[WIRE_TOKEN_SECRET_LEN + 1], verifier[65];
        unsigned char key[32];
        stored_token t = {}, got = {};

        assert_int_equal(tokens_create(f->s, "application", "environment=development", NULL, 3600, 1000, &token, &t, NULL), 0);
        assert_true(matches("^[0-9a-f]{8}\\.[A-Za-z0-9_-]{32}$", token));
        assert_true(wire_token_parse(token, id, secret));
        assert_string_equal(t.id, id);
        assert_int_equal(t.expires, 4600);
        assert_int_equal(store_load_token(f->s, id, &got), 0);
        wire_token_verifier(secret, verifier);
        assert_string_equal(got.verifier, verifier);
        wire_token_binding_key(secret, key);
        assert_memory_equal(got.binding_key, key, 32);
        assert_string_equal(got.role, "application");
        assert_string_equal(got.labels, "environment=development");
        assert_int_equal(got.created, 1000);
        assert_int_equal(got.expires, 4600);
        assert_int_equal(got.used_at, 0);
        stored_token_done(&got);
        stored_token_done(&t);

        /* Two tokens differ in id and secret. */
        assert_int_equal(tokens_create(f->s, "database", "", NULL, 60, 1000, &token2, NULL, NULL), 0);
        assert_int_not_equal(strncmp(token, token2, 8), 0);
        assert_string_not_equal(token + 9, token2 + 9);

        /* The store holds the verifier, never the secret. */
        bytes = db_bytes(f);
        assert_non_null(strstr(bytes, verifier));
        assert_null(strstr(bytes, secret));
        assert_null(strstr(bytes, token2 + 9));
}

static void test_check(void **state) {
        fixture *f = *state;
        _cleanup_erase_ char *token = NULL, *expired = NULL, *wrong = NULL;
        _cleanup_free_ char *err = NULL;
        stored_token t = {};

        assert_int_equal(tokens_create(f->s, "database", "environment=development", NULL, 3600, 1000, &token, NULL, NULL), 0);
        assert_int_equal(tokens_create(f->s, "database", "", NULL, 60, 1000, &expired, NULL, NULL), 0);

        assert_int_equal(tokens_check(f->s, "not-a-token", 1000, &t, &err), -EBADMSG);
        contains(err, "is not an enrollment token");
        free(TAKE_PTR(err));
        assert_int_equal(tokens_check(f->s, "00000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 1000, &t, &err), -ENOENT);
        assert_string_equal(err, "unknown enrollment token '00000000'");
        free(TAKE_PTR(err));

        /* The wrong secret is refused before anything else is said about the token. */
        wrong = xstrdup(token);
        wrong[9] = wrong[9] == 'A' ? 'B' : 'A';
        assert_int_equal(tokens_check(f->s, wrong, 1000, &t, &err), -EACCES);
        assert_non_null(strstr(err, "wrong secret"));
        assert_null(strstr(err, wrong + 9));
        assert_null(strstr(err, token + 9));
        free(TAKE_PTR(err));
        wrong[9] = expired[9] == 'A' ? 'B' : 'A';
        memcpy(wrong, expired, 9);
        memcpy(wrong + 10, expired + 10, WIRE_TOKEN_SECRET_LEN - 1);
        assert_int_equal(tokens_check(f->s, wrong, 5000, &t, &err), -EACCES);
        free(TAKE_PTR(err));

        /* Expired at exactly created + ttl. */
        assert_int_equal(tokens_check(f->s, expired, 1059, &t, NULL), 0);
        assert_string_equal(t.role, "database");
        stored_token_done(&t);
        assert_int_equal(tokens_check(f->s, expired, 1060, &t, &err), -ETIME);
        contains(err, "expired at 1970-01-01 00:17:40 UTC; create a new one with 'infrastream-controller token create'");
        free(TAKE_PTR(err));

        /* Consumed once; then used. */
        assert_int_equal(tokens_consume(f->s, token, "db1", 2000, &t, NULL), 0);
        assert_string_equal(t.labels, "environment=development");
        assert_string_equal(t.used_by, "db1");
        stored_token_done(&t);
        assert_int_equal(tokens_consume(f->s, token, "db2", 2001, &t, &err), -EALREADY);
        contains(err, "was already used (by host 'db1' at 1970-01-01 00:33:20 UTC)");
        assert_null(strstr(err, token + 9));
        free(TAKE_PTR(err));
}

/* A CSR as agentctl makes one; the names it asks for do not matter. */
static char *make_csr(const char *cn) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        _cleanup_(X509_NAME_freep) X509_NAME *name = X509_NAME_new();
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = x509_generate_ec_key();
        char *pem;

        assert_non_null(req);
        assert_non_null(key);
        if (cn)
                assert_int_equal(
                        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0), 1);
        assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
        assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
        assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
        pem = x509_req_to_pem(req);
        assert_non_null(pem);
        return pem;
}

static char *addresses[] = { "10.99.0.2", "fd00::2" };

static wire_enroll_request request(const char *token, const char *csr, const char *name) {
        return (wire_enroll_request) {
                .token = (char *) token,
                .csr = (char *) csr,
                .facts = { .name = (char *) name, .addresses = addresses, .n_addresses = 2, .cpus = 4,
                           .memory_bytes = 8ULL << 30, .endpoint = "10.99.0.2:7444" },
        };
}

static void refused(fixture *f, const wire_enroll_request *req, int64_t now, int want_r, int want_status,
                    const char *want) {
        _cleanup_free_ char *err = NULL;
        wire_enroll_response resp = {};
        int status = 0;

        assert_int_equal(enroll_host(f->s, f->ca, SIGNING_PEM, req, now, &resp, NULL, &status, &err), want_r);
        assert_int_equal(status, want_status);
        contains(err, want);
        assert_null(resp.certificate);
        if (req->token && strlen(req->token) > 9)
                assert_null(strstr(err, req->token + 9));
}

static void test_enroll(void **state) {
        fixture *f = *state;
        _cleanup_erase_ char *token = NULL;
        _cleanup_free_ char *csr = make_csr("controller." DOMAIN), *err = NULL, *ca_pem = ca_cert_pem(f->ca);
        _cleanup_(X509_freep) X509 *cert = NULL, *ca_cert = NULL;
        wire_enroll_request req;
        wire_enroll_response resp = {};
        stored_host h = {};
        stored_token t = {};
        char **names = NULL, fp[65], id[9];
        size_t n = 0;
        bool replaced = true;
        int status = 0;

        assert_int_equal(tokens_create(f->s, "database", "environment=development,zone=a", NULL, 3600, 1000, &token, NULL,
                                       NULL),
                         0);
        req = request(token, csr, "db1");
        req.facts.endpoint = "0.0.0.0:7444";
        if (enroll_host(f->s, f->ca, SIGNING_PEM, &req, 1500, &resp, &replaced, &status, &err) < 0)
                fail_msg("enrollment refused (%d): %s", status, err);
        assert_false(replaced);
        assert_string_equal(resp.host, "db1");
        assert_string_equal(resp.role, "database");
        assert_string_equal(resp.ca, ca_pem);
        assert_string_equal(resp.signing_key, SIGNING_PEM);
        assert_string_equal(resp.controller, "controller." DOMAIN);

        /* The identity is the controller's choice, whatever the request asked for. */
        assert_int_equal(x509_cert_from_pem(resp.certificate, &cert, NULL), 0);
        assert_int_equal(x509_cert_dns_names(cert, &names, &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_string_equal(names[0], "db1.hosts." DOMAIN);
        x509_names_free(names, n);
        assert_int_equal(x509_cert_from_pem(ca_pem, &ca_cert, NULL), 0);
        assert_int_equal(x509_verify_server_cert(cert, ca_cert, NULL), 0);
        assert_int_equal(X509_check_purpose(cert, X509_PURPOSE_SSL_CLIENT, 0), 1);
        assert_int_equal(X509_check_purpose(cert, X509_PURPOSE_SSL_SERVER, 0), 1);
        assert_int_equal(x509_cert_fingerprint(cert, fp), 0);

        /* Recorded: the facts, the token's role and labels, the certificate's fingerprint; an
         * endpoint on every address is recorded on the first. */
        assert_int_equal(store_load_host(f->s, "db1", &h), 0);
        assert_string_equal(h.role, "database");
        assert_string_equal(h.labels, "environment=development,zone=a");
        assert_int_equal(h.n_addresses, 2);
        assert_string_equal(h.addresses[1], "fd00::2");
        assert_int_equal(h.cpus, 4);
        assert_true(h.memory_bytes == 8ULL << 30);
        assert_string_equal(h.endpoint, "10.99.0.2:7444");
        assert_string_equal(h.cert_fingerprint, fp);
        assert_int_equal(h.enrolled_at, 1500);
        stored_host_done(&h);
        assert_true(wire_token_parse(token, id, NULL));
        assert_int_equal(store_load_token(f->s, id, &t), 0);
        assert_int_equal(t.used_at, 1500);
        assert_string_equal(t.used_by, "db1");
        stored_token_done(&t);
        wire_enroll_response_done(&resp);

        /* The token is spent. */
        refused(f, &req, 1600, -EALREADY, 410, "was already used (by host 'db1'");
}

static void test_enroll_refusals(void **state) {
        fixture *f = *state;
        _cleanup_erase_ char *token = NULL, *short_lived = NULL, *wrong = NULL, *other = NULL;
        _cleanup_free_ char *csr = make_csr(NULL), *bad_csr = xstrdup(csr);
        wire_enroll_request req;
        stored_host h = {}, *all = NULL;
        stored_token t = {};
        char id[9], *bad_addr[] = { "10.99.0.300" }, *dup_addr[] = { "10.0.0.1", "10.0.0.1" };
        size_t n = 0;

        assert_int_equal(tokens_create(f->s, "application", "", NULL, 3600, 1000, &token, NULL, NULL), 0);
        assert_int_equal(tokens_create(f->s, "application", "", NULL, 60, 1000, &short_lived, NULL, NULL), 0);

        /* Facts: 400, before the token is even looked at. */
        req = request(token, csr, "DB1");
        refused(f, &req, 1000, -EINVAL, 400, "facts.name: 'DB1' is not a host name");
        req = request(token, csr, "db1.example");
        refused(f, &req, 1000, -EINVAL, 400, "facts.name: 'db1.example' is not a host name");
        req = request(token, csr, "app1");
        req.facts.addresses = bad_addr;
        req.facts.n_addresses = 1;
        refused(f, &req, 1000, -EINVAL, 400, "facts.addresses[0]: '10.99.0.300' is not an IPv4 or IPv6 address");
        req.facts.addresses = dup_addr;
        req.facts.n_addresses = 2;
        refused(f, &req, 1000, -EINVAL, 400, "facts.addresses[1]: '10.0.0.1' is listed twice");
        req = request(token, csr, "app1");
        req.facts.n_addresses = 0;
        refused(f, &req, 1000, -EINVAL, 400, "facts.addresses: must list between 1 and 64 addresses");
        static const char *const bad_endpoints[] = { "10.99.0.2", "10.99.0.2:0", "10.99.0.2:65536", "fd00::2:7444",
                                                     "[10.0.0.1]:7444", "host:7444", "" };
        for (size_t i = 0; i < ELEMENTSOF(bad_endpoints); i++) {
                req = request(token, csr, "app1");
                req.facts.endpoint = (char *) bad_endpoints[i];
                refused(f, &req, 1000, -EINVAL, 400, "facts.endpoint: ");
        }
        req = request(token, csr, "app1");
        req.facts.cpus = 0;
        refused(f, &req, 1000, -EINVAL, 400, "facts.cpus: must be between 1 and 65536");

        /* Tokens: 400 malformed, 401 unknown or wrong secret, 410 expired. */
        req = request("bogus", csr, "app1");
        refused(f, &req, 1000, -EBADMSG, 400, "is not an enrollment token");
        req = request("00000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", csr, "app1");
        refused(f, &req, 1000, -ENOENT, 401, "unknown enrollment token '00000000'");
        wrong = xstrdup(token);
        wrong[20] = wrong[20] == 'x' ? 'y' : 'x';
        req = request(wrong, csr, "app1");
        refused(f, &req, 1000, -EACCES, 401, "wrong secret");
        req = request(short_lived, csr, "app1");
        refused(f, &req, 1060, -ETIME, 410, "expired at");

        /* A CSR that does not verify: 400, and the token is not spent by the refusal. */
        bad_csr[strlen(bad_csr) - 30] ^= 0x01;
        req = request(token, bad_csr, "app1");
        refused(f, &req, 1000, -EBADMSG, 400, "CSR");
        req = request(token, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "app1");
        refused(f, &req, 1000, -EBADMSG, 400, "CSR: not a PEM certificate request");

        /* Nothing changed by any of it. */
        assert_int_equal(store_load_hosts(f->s, &all, &n), 0);
        assert_int_equal(n, 0);
        stored_hosts_free(all, n);
        assert_true(wire_token_parse(token, id, NULL));
        assert_int_equal(store_load_token(f->s, id, &t), 0);
        assert_int_equal(t.used_at, 0);
        stored_token_done(&t);

        /* The same token still enrolls. */
        {
                _cleanup_free_ char *err = NULL;
                wire_enroll_response resp = {};
                bool replaced = true;
                int status = 0;

                req = request(token, csr, "app1");
                assert_int_equal(enroll_host(f->s, f->ca, SIGNING_PEM, &req, 1100, &resp, &replaced, &status, &err), 0);
                assert_false(replaced);
                wire_enroll_response_done(&resp);
        }

        /* Another plain token cannot take the enrolled name over (409), and is not spent by trying. */
        assert_int_equal(tokens_create(f->s, "database", "environment=production", NULL, 3600, 1000, &other, NULL, NULL),
                         0);
        req = request(other, csr, "app1");
        refused(f, &req, 1200, -EEXIST, 409,
                "host 'app1' is already enrolled; re-enrolling it needs a token made with 'infrastream-controller token "
                "create --replace app1'");
        assert_int_equal(store_load_host(f->s, "app1", &h), 0);
        assert_string_equal(h.role, "application");
        assert_int_equal(h.enrolled_at, 1100);
        stored_host_done(&h);
        assert_true(wire_token_parse(other, id, NULL));
        assert_int_equal(store_load_token(f->s, id, &t), 0);
        assert_int_equal(t.used_at, 0);
        assert_null(t.replaces);
        stored_token_done(&t);
        /* That token still enrolls a name nobody has. */
        req = request(other, csr, "db2");
        {
                _cleanup_free_ char *err = NULL;
                wire_enroll_response resp = {};
                bool replaced = true;
                int status = 0;

                if (enroll_host(f->s, f->ca, SIGNING_PEM, &req, 1300, &resp, &replaced, &status, &err) < 0)
                        fail_msg("enrollment refused (%d): %s", status, err);
                assert_false(replaced);
                wire_enroll_response_done(&resp);
        }
}

/* token create --replace: only for an enrolled host; such a token re-enrolls that host, and only
 * it; its refusals spend nothing. */
static void test_enroll_replace(void **state) {
        fixture *f = *state;
        _cleanup_erase_ char *first = NULL, *again = NULL, *spent = NULL;
        _cleanup_free_ char *csr = make_csr(NULL), *err = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        wire_enroll_request req;
        wire_enroll_response resp = {};
        stored_host h = {};
        stored_token t = {};
        char id[9], fp[65];
        bool replaced = false;
        int status = 0;

        /* Not a host name, or not enrolled: no token. */
        assert_int_equal(tokens_check_replace(f->s, "DB1", NULL, &err), -EINVAL);
        contains(err, "--replace: 'DB1' is not a host name");
        free(TAKE_PTR(err));
        assert_int_equal(tokens_check_replace(f->s, "db9", NULL, &err), -ENOENT);
        assert_string_equal(err, "host 'db9' is not enrolled: a plain token enrolls a new host");
        free(TAKE_PTR(err));

        assert_int_equal(tokens_create(f->s, "database", "environment=production", NULL, 3600, 1000, &first, NULL, NULL),
                         0);
        req = request(first, csr, "db1");
        assert_int_equal(enroll_host(f->s, f->ca, SIGNING_PEM, &req, 1100, &resp, &replaced, &status, &err), 0);
        wire_enroll_response_done(&resp);
        assert_int_equal(tokens_check_replace(f->s, "db1", &h, NULL), 0);
        assert_string_equal(h.role, "database");
        assert_string_equal(h.labels, "environment=production");
        stored_host_done(&h);

        assert_int_equal(tokens_create(f->s, "database", "environment=production", "db1", 3600, 1000, &again, &t, NULL),
                         0);
        assert_string_equal(t.replaces, "db1");
        stored_token_done(&t);
        assert_true(wire_token_parse(again, id, NULL));
        assert_int_equal(store_load_token(f->s, id, &t), 0);
        assert_string_equal(t.replaces, "db1");
        stored_token_done(&t);

        /* For another name, enrolled or not: 403, nothing spent, nothing recorded. */
        req = request(again, csr, "db2");
        refused(f, &req, 1200, -EPERM, 403, "this token may only re-enroll host 'db1', not 'db2'");
        assert_int_equal(store_load_host(f->s, "db2", &h), -ENOENT);
        assert_int_equal(store_load_token(f->s, id, &t), 0);
        assert_int_equal(t.used_at, 0);
        stored_token_done(&t);
        /* The token's checks come first: a used --replace token is 410 whatever the name. */
        assert_int_equal(tokens_create(f->s, "database", "", "db1", 3600, 1000, &spent, NULL, NULL), 0);
        req = request(spent, csr, "db1");
        assert_int_equal(enroll_host(f->s, f->ca, SIGNING_PEM, &req, 1250, &resp, &replaced, &status, &err), 0);
        wire_enroll_response_done(&resp);
        req = request(spent, csr, "db2");
        refused(f, &req, 1260, -EALREADY, 410, "was already used (by host 'db1'");

        /* For db1: its enrollment is replaced, with a new certificate. */
        req = request(again, csr, "db1");
        req.facts.cpus = 9;
        if (enroll_host(f->s, f->ca, SIGNING_PEM, &req, 1300, &resp, &replaced, &status, &err) < 0)
                fail_msg("re-enrollment refused (%d): %s", status, err);
        assert_true(replaced);
        assert_int_equal(x509_cert_from_pem(resp.certificate, &cert, NULL), 0);
        assert_int_equal(x509_cert_fingerprint(cert, fp), 0);
        wire_enroll_response_done(&resp);
        assert_int_equal(store_load_host(f->s, "db1", &h), 0);
        assert_int_equal(h.cpus, 9);
        assert_int_equal(h.enrolled_at, 1300);
        assert_string_equal(h.cert_fingerprint, fp);
        assert_string_equal(h.labels, "environment=production");
        stored_host_done(&h);
        assert_int_equal(store_load_token(f->s, id, &t), 0);
        assert_int_equal(t.used_at, 1300);
        assert_string_equal(t.used_by, "db1");
        stored_token_done(&t);
        /* Once. */
        refused(f, &req, 1400, -EALREADY, 410, "was already used (by host 'db1'");
}

/* Two enrollments of the same new name at once, with two good tokens, on two connections (as two
 * requests, or two controllers, would be): exactly one wins, the other is told the name is taken. */
typedef struct racer {
        const char *dir, *token, *csr;
        pthread_barrier_t *start;
        int r, status;
        bool replaced;
        char *error;
        char *certificate;
} racer;

static void *race(void *userdata) {
        racer *x = userdata;
        wire_enroll_request req = request(x->token, x->csr, "db7");
        wire_enroll_response resp = {};
        store *s = NULL;
        ca *c = NULL;

        x->r = store_open(x->dir, false, false, &s, NULL);
        if (x->r >= 0)
                x->r = ca_load(x->dir, &c, NULL);
        pthread_barrier_wait(x->start);
        if (x->r >= 0)
                x->r = enroll_host(s, c, SIGNING_PEM, &req, 1500, &resp, &x->replaced, &x->status, &x->error);
        x->certificate = TAKE_PTR(resp.certificate);
        wire_enroll_response_done(&resp);
        ca_free(c);
        store_close(s);
        return NULL;
}

static void test_enroll_race(void **state) {
        fixture *f = *state;
        _cleanup_erase_ char *t1 = NULL, *t2 = NULL;
        _cleanup_free_ char *csr = make_csr(NULL);
        _cleanup_(X509_freep) X509 *cert = NULL;
        pthread_barrier_t start;
        pthread_t threads[2];
        racer x[2];
        stored_host h = {};
        stored_token t = {};
        char fp[65], id[9];
        int winner;

        assert_int_equal(tokens_create(f->s, "database", "", NULL, 3600, 1000, &t1, NULL, NULL), 0);
        assert_int_equal(tokens_create(f->s, "application", "", NULL, 3600, 1000, &t2, NULL, NULL), 0);
        assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
        for (int i = 0; i < 2; i++) {
                x[i] = (racer) { .dir = f->dir, .token = i ? t2 : t1, .csr = csr, .start = &start, .r = -1 };
                assert_int_equal(pthread_create(&threads[i], NULL, race, &x[i]), 0);
        }
        for (int i = 0; i < 2; i++)
                assert_int_equal(pthread_join(threads[i], NULL), 0);
        pthread_barrier_destroy(&start);

        if ((x[0].r == 0) == (x[1].r == 0))
                fail_msg("not exactly one winner: %d (%d: %s), %d (%d: %s)", x[0].r, x[0].status, strempty(x[0].error),
                         x[1].r, x[1].status, strempty(x[1].error));
        winner = x[0].r == 0 ? 0 : 1;
        assert_false(x[winner].replaced);
        assert_int_equal(x[!winner].r, -EEXIST);
        assert_int_equal(x[!winner].status, 409);
        contains(x[!winner].error, "host 'db7' is already enrolled; re-enrolling it needs a token made with "
                                   "'infrastream-controller token create --replace db7'");
        /* The host is the winner's, certificate and role; the loser's token is unused. */
        assert_int_equal(store_load_host(f->s, "db7", &h), 0);
        assert_string_equal(h.role, winner == 0 ? "database" : "application");
        assert_int_equal(x509_cert_from_pem(x[winner].certificate, &cert, NULL), 0);
        assert_int_equal(x509_cert_fingerprint(cert, fp), 0);
        assert_string_equal(h.cert_fingerprint, fp);
        stored_host_done(&h);
        assert_true(wire_token_parse(winner == 0 ? t2 : t1, id, NULL));
        assert_int_equal(store_load_token(f->s, id, &t), 0);
        assert_int_equal(t.used_at, 0);
        stored_token_done(&t);
        for (int i = 0; i < 2; i++) {
                free(x[i].error);
                free(x[i].certificate);
        }
}

static void test_host_csr(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *csr = make_csr("db9." DOMAIN), *pem = NULL, *err = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        time_t nb, na, now = time(NULL);

        assert_int_equal(ca_sign_host_csr(f->ca, csr, "db1", CA_HOST_LIFETIME, &pem, &err), 0);
        assert_int_equal(x509_cert_from_pem(pem, &x, NULL), 0);
        assert_int_equal(x509_validity(x, &nb, &na), 0);
        assert_true(na >= now + CA_HOST_LIFETIME - 5 && na <= now + CA_HOST_LIFETIME + 5);
        assert_int_equal(ca_sign_host_csr(f->ca, csr, "Db1", CA_HOST_LIFETIME, &pem, &err), -EINVAL);
        free(TAKE_PTR(err));
        assert_int_equal(ca_sign_host_csr(f->ca, csr, "a.b", CA_HOST_LIFETIME, &pem, &err), -EINVAL);
        free(TAKE_PTR(err));
        assert_int_equal(ca_sign_host_csr(f->ca, csr, "", CA_HOST_LIFETIME, &pem, &err), -EINVAL);
}

static void test_inventory_add(void **state) {
        static const char yaml[] = "hosts:\n"
                                   "  - {name: db1, role: database, addresses: [10.0.0.1], cpus: 2, labels: {environment: dev}}\n"
                                   "  - {name: db3, role: database, addresses: [10.0.0.3], cpus: 2}\n";
        const char *addrs[] = { "10.0.0.2", "fd00::2" }, *keys[] = { "zone", "environment" },
                   *values[] = { "a", "production" };
        inventory inv;
        diag_list diags;
        inv_host h = { .name = "db2", .addresses = addrs, .n_addresses = 2, .role = DOC_HOST_DATABASE, .cpus = 4,
                       .memory_bytes = 1 << 30, .label_keys = keys, .label_values = values, .n_labels = 2,
                       .loc = { "(enrolled)", 0, 0 } };

        inventory_init(&inv);
        diag_list_init(&diags);
        assert_int_equal(inventory_load_buffer(&inv, "hosts.yaml", yaml, strlen(yaml), &diags), 0);
        assert_int_equal(inventory_add_host(&inv, &h), 0);
        h.name = "app0";
        h.role = DOC_HOST_APPLICATION;
        h.n_labels = 0;
        assert_int_equal(inventory_add_host(&inv, &h), 0);
        h.name = "zz";
        assert_int_equal(inventory_add_host(&inv, &h), 0);
        h.name = "db1";
        assert_int_equal(inventory_add_host(&inv, &h), -EEXIST);
        assert_int_equal(inv.n, 5);
        assert_string_equal(inv.hosts[0].name, "app0");
        assert_string_equal(inv.hosts[1].name, "db1");
        assert_string_equal(inv.hosts[2].name, "db2");
        assert_string_equal(inv.hosts[3].name, "db3");
        assert_string_equal(inv.hosts[4].name, "zz");
        assert_int_equal(inventory_find(&inv, "db2"), 2);
        assert_int_equal(inventory_find(&inv, "zz"), 4);
        assert_int_equal(inv.hosts[1].cpus, 2); /* the file's db1, untouched */
        /* Copies: the caller's strings may go. */
        assert_ptr_not_equal(inv.hosts[2].name, "db2");
        assert_int_equal(inv.hosts[2].n_addresses, 2);
        assert_string_equal(inv.hosts[2].addresses[1], "fd00::2");
        assert_ptr_not_equal(inv.hosts[2].addresses, addrs);
        assert_int_equal(inv.hosts[2].n_labels, 2);
        assert_string_equal(inv.hosts[2].environment, "production");
        assert_null(inv.hosts[0].environment);
        assert_int_equal(inv.hosts[0].role, DOC_HOST_APPLICATION);
        diag_list_done(&diags);
        inventory_done(&inv);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_options), T(test_create), T(test_check), T(test_enroll),
                T(test_enroll_refusals), T(test_enroll_replace), T(test_enroll_race), T(test_host_csr),
                cmocka_unit_test(test_inventory_add),
        };

        return cmocka_run_group_tests_name("enroll", tests, NULL, NULL);
}
