/* The agent's data keys against a fake controller: a real https-server on 127.0.0.1 (mutual TLS,
 * the host certificate required) answers POST /v1/data-keys with keys it seals to the host
 * certificate's public key, or with what a broken or hostile controller would send; the agent's
 * state directory holds a real enrollment (CA, host certificate, EC P-256 host.key,
 * enrollment.json). Also the status report, which shares the client. */
#include "unit.h"

#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "datakeys.h"
#include "enroll.h"
#include "fileio.h"
#include "https-server.h"
#include "jsondec.h"
#include "keywrap.h"
#include "mtls-fixture.h"
#include "report.h"
#include "wire.h"
#include "x509.h"

#define DOMAIN "example.test"
#define ORDERS "acme/eu/prod/shop/orders"
#define LEDGER "acme/eu/prod/billing/ledger"
#define CARTS "acme/eu/prod/shop/carts"
#define EXTRA "acme/eu/prod/shop/returns"
#define REFUSAL "host 'db1' has no encrypted database placed on it"
#define BLOB_SIZE (4 + 65 + 12 + KEYWRAP_KEY_SIZE + 16) /* a P-256 wrapped key */

static const char *const databases[] = { ORDERS, LEDGER, CARTS }; /* not sorted: LEDGER sorts first */

static char dir[64];
static char *state_dir, *ca_file;
static X509 *ca;
static EVP_PKEY *host_public, *stranger; /* the host certificate's key; a key of nobody here */
static identity controller;
static agent_config cfg;

/* ---- the fake controller ------------------------------------------------------------------- */

typedef enum answer {
        ANSWER_GOOD,
        ANSWER_FLIPPED,       /* one byte of the first key's blob changed */
        ANSWER_OTHER_CONTEXT, /* the first key sealed under the second database's name */
        ANSWER_OTHER_KEY,     /* every key sealed to a key that is not the host's */
        ANSWER_OTHER_HOST,    /* the answer names db2 */
        ANSWER_MISSING,       /* the last database left out */
        ANSWER_EXTRA,         /* one database more than asked for */
        ANSWER_REFUSED,       /* 403 with {"error"} */
} answer;

typedef struct fake_controller {
        test_server t;
        answer answer;
        /* What the agent sent, read by the test after the call returned. */
        char *peer;
        wire_data_keys_request request;
        char *first_blob; /* the first wrapped key sent */
} fake_controller;

/* The data key the controller keeps for database: anything fixed per database will do. */
static bool database_key(const char *database, unsigned char ret[KEYWRAP_KEY_SIZE]) {
        unsigned size = 0;

        return EVP_Digest(database, strlen(database), ret, &size, EVP_sha256(), NULL) == 1 && size == KEYWRAP_KEY_SIZE;
}

/* Change one byte of the ciphertext, keeping the base64 canonical: tampering, not garbling. */
static bool flip_byte(char **b64) {
        unsigned char blob[BLOB_SIZE + 3];
        char out[2 * BLOB_SIZE];

        /* BLOB_SIZE is a multiple of 3: no padding to account for. */
        if (strlen(*b64) != 4 * BLOB_SIZE / 3 ||
            EVP_DecodeBlock(blob, (const unsigned char *) *b64, (int) strlen(*b64)) != BLOB_SIZE)
                return false;
        blob[4 + 65 + 12] ^= 0x01;
        EVP_EncodeBlock((unsigned char *) out, blob, BLOB_SIZE);
        free(*b64);
        *b64 = xstrdup(out);
        return true;
}

/* Runs on the loop's thread: no cmocka assertions here, failures answer 500. */
static void on_data_keys(https_request *r, void *userdata) {
        fake_controller *f = userdata;
        _cleanup_(wire_data_keys_response_done) wire_data_keys_response m = {};
        _cleanup_free_ char *err = NULL;
        const char *body, *peer = https_request_peer_name(r);
        size_t size = 0;

        f->peer = peer ? xstrdup(peer) : NULL;
        body = https_request_body(r, &size);
        if (wire_data_keys_request_decode(body, size, &f->request, &err) < 0) {
                https_reply_error(r, 400, "%s", err);
                return;
        }
        if (f->answer == ANSWER_REFUSED) {
                https_reply_error(r, 403, REFUSAL);
                return;
        }
        m.host = xstrdup(f->answer == ANSWER_OTHER_HOST ? "db2" : f->request.host);
        m.n_keys = f->request.n_databases + (f->answer == ANSWER_EXTRA) - (f->answer == ANSWER_MISSING);
        m.keys = xcalloc(m.n_keys, sizeof(wire_data_key));
        for (size_t i = 0; i < m.n_keys; i++) {
                const char *database = i < f->request.n_databases ? f->request.databases[i] : EXTRA;
                const char *context = f->answer == ANSWER_OTHER_CONTEXT && i == 0 ? f->request.databases[1] : database;
                EVP_PKEY *recipient = f->answer == ANSWER_OTHER_KEY ? stranger : host_public;
                unsigned char key[KEYWRAP_KEY_SIZE];
                bool ok;

                m.keys[i].database = xstrdup(database);
                ok = database_key(database, key) &&
                     keywrap_seal(recipient, context, key, &m.keys[i].wrapped_key, &err) >= 0;
                explicit_bzero(key, sizeof(key));
                if (!ok || (f->answer == ANSWER_FLIPPED && i == 0 && !flip_byte(&m.keys[i].wrapped_key))) {
                        https_reply_error(r, 500, "cannot seal the key of '%s': %s", database, strempty(err));
                        return;
                }
        }
        f->first_blob = m.n_keys > 0 ? xstrdup(m.keys[0].wrapped_key) : NULL;
        https_reply_json(r, 200, wire_data_keys_response_to_json(&m));
}

static void on_report(https_request *r, void *userdata) {
        fake_controller *f = userdata;

        if (f->answer == ANSWER_REFUSED)
                https_reply_error(r, 403, REFUSAL);
        else
                https_reply_json(r, 204, NULL);
}

static fake_controller *controller_start(answer a) {
        fake_controller *f = xcalloc(1, sizeof(fake_controller));

        f->answer = a;
        test_server_init(&f->t, &controller, ca_file, true, NULL);
        https_server_route(f->t.https, "POST", "/v1/data-keys", on_data_keys, f);
        https_server_route(f->t.https, "POST", "/v1/report", on_report, f);
        test_server_run(&f->t);
        return f;
}

static void controller_stop(fake_controller *f) {
        test_server_stop(&f->t);
        free(f->peer);
        free(f->first_blob);
        wire_data_keys_request_done(&f->request);
        free(f);
}

/* ---- the agent's side ---------------------------------------------------------------------- */

/* enrollment.json as agent_enroll() writes it, naming the controller at url. */
static void enroll(const char *url) {
        _cleanup_free_ char *path = enrollment_file(&cfg, ENROLL_FILE), *text = NULL;
        char fp[65];

        assert_int_equal(x509_cert_fingerprint(ca, fp), 0);
        text = xasprintf("{\n  \"controller\": \"%s\",\n  \"controllerName\": \"controller." DOMAIN "\",\n"
                         "  \"host\": \"db1\",\n  \"role\": \"database\",\n  \"enrolledAt\": %lld,\n"
                         "  \"caFingerprint\": \"%s\"\n}\n",
                         url, (long long) time(NULL), fp);
        assert_true(write_file_atomic(path, text, strlen(text), 0644) >= 0);
}

/* Enrolled with f, ask it for n databases. */
static int fetch(const fake_controller *f, const char *const *dbs, size_t n, datakeys *ret, char **ret_error) {
        _cleanup_free_ char *url = test_server_url(&f->t, "");

        enroll(url);
        return datakeys_fetch(&cfg, dbs, n, ret, ret_error);
}

/* A refusal: r, a message containing want, and nothing returned. */
static void assert_refused(int r, int want_r, const datakeys *k, char **err, const char *want) {
        if (r != want_r || !*err || !strstr(*err, want))
                fail_msg("got %d (%s), want %d with '%s'", r, strempty(*err), want_r, want);
        assert_null(k->keys);
        assert_int_equal(k->n, 0);
        free(*err);
        *err = NULL;
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_good_answer(void **state) {
        fake_controller *f = controller_start(ANSWER_GOOD);
        datakeys k = {};
        char *err = NULL;
        unsigned char want[KEYWRAP_KEY_SIZE];

        (void) state;
        if (fetch(f, databases, ELEMENTSOF(databases), &k, &err) < 0)
                fail_msg("%s", err);
        assert_null(err);
        /* Asked as this host, with its certificate, for the databases sorted. */
        assert_string_equal(f->peer, "db1.hosts." DOMAIN);
        assert_string_equal(f->request.host, "db1");
        assert_int_equal(f->request.n_databases, 3);
        assert_string_equal(f->request.databases[0], LEDGER);
        assert_string_equal(f->request.databases[1], CARTS);
        assert_string_equal(f->request.databases[2], ORDERS);
        /* Returned in the order asked, each the key the controller sealed. */
        assert_int_equal(k.n, ELEMENTSOF(databases));
        for (size_t i = 0; i < k.n; i++) {
                assert_string_equal(k.keys[i].database, databases[i]);
                assert_true(database_key(databases[i], want));
                assert_memory_equal(k.keys[i].key, want, KEYWRAP_KEY_SIZE);
                assert_ptr_equal(datakeys_find(&k, databases[i]), &k.keys[i]);
        }
        assert_null(datakeys_find(&k, EXTRA));
        datakeys_done(&k);
        assert_null(k.keys);
        assert_int_equal(k.n, 0);
        controller_stop(f);

        /* One database alone is a request too. */
        f = controller_start(ANSWER_GOOD);
        assert_int_equal(fetch(f, &databases[2], 1, &k, &err), 0);
        assert_int_equal(k.n, 1);
        assert_true(database_key(CARTS, want));
        assert_memory_equal(datakeys_find(&k, CARTS)->key, want, KEYWRAP_KEY_SIZE);
        datakeys_done(&k);
        controller_stop(f);
}

/* The wrapped key is not in msg, not even a part of it. */
static void assert_no_blob(const char *msg, const char *blob) {
        char part[17];

        assert_non_null(blob);
        for (size_t i = 0; i + 16 <= strlen(blob); i += 16) {
                memcpy(part, blob + i, 16);
                part[16] = '\0';
                assert_null(strstr(msg, part));
        }
}

/* Keys that do not open, and answers to another request: refused whole, with a message that
 * names the controller and never quotes a wrapped key. */
static void test_refusals(void **state) {
        static const struct {
                answer answer;
                int r;
                const char *message;
        } cases[] = {
                /* The first key in the controller's order (sorted) is LEDGER's. */
                { ANSWER_FLIPPED, -EKEYREJECTED, "database '" LEDGER "': " },
                { ANSWER_OTHER_CONTEXT, -EKEYREJECTED, "database '" LEDGER "': " },
                { ANSWER_OTHER_KEY, -EKEYREJECTED, "does not open with this host's key" },
                { ANSWER_OTHER_HOST, -EPROTO, "answered with the data keys of host 'db2', not of this host 'db1'" },
                { ANSWER_MISSING, -EPROTO, "sent no data key for database '" ORDERS "'" },
                { ANSWER_EXTRA, -EPROTO, "sent a data key for database '" EXTRA "', which was not asked for" },
                { ANSWER_REFUSED, -EPROTO, "data keys request to the controller at https://127.0.0.1:" },
                { ANSWER_REFUSED, -EPROTO, ": refused with 403: " REFUSAL },
        };
        datakeys k = {};
        char *err = NULL;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                fake_controller *f = controller_start(cases[i].answer);
                _cleanup_free_ char *url = test_server_url(&f->t, "");
                int r = fetch(f, databases, ELEMENTSOF(databases), &k, &err);

                fprintf(stderr, "# %s\n", strempty(err));
                assert_non_null(err);
                assert_non_null(strstr(err, url));
                if (f->first_blob)
                        assert_no_blob(err, f->first_blob);
                assert_refused(r, cases[i].r, &k, &err, cases[i].message);
                controller_stop(f);
        }
}

static void test_controller_down(void **state) {
        datakeys k = {};
        char *err = NULL;
        int r;

        (void) state;
        enroll("https://127.0.0.1:1");
        r = datakeys_fetch(&cfg, databases, ELEMENTSOF(databases), &k, &err);
        fprintf(stderr, "# %s\n", strempty(err));
        assert_refused(r, -EHOSTUNREACH, &k, &err, "data keys request to the controller at https://127.0.0.1:1: ");
}

static void test_not_enrolled(void **state) {
        _cleanup_free_ char *path = enrollment_file(&cfg, ENROLL_FILE);
        datakeys k = {};
        char *err = NULL;
        int r;

        (void) state;
        (void) unlink(path);
        r = datakeys_fetch(&cfg, databases, ELEMENTSOF(databases), &k, &err);
        assert_refused(r, -ENOENT, &k, &err, "encryption keys come from the controller: enroll this host first");
}

static void test_arguments(void **state) {
        const char *twice[] = { ORDERS, LEDGER, ORDERS };
        datakeys k = {};
        char *err = NULL;

        (void) state;
        assert_refused(datakeys_fetch(&cfg, twice, ELEMENTSOF(twice), &k, &err), -EINVAL, &k, &err,
                       "database '" ORDERS "' is asked for twice");
        assert_refused(datakeys_fetch(&cfg, databases, 0, &k, &err), -EINVAL, &k, &err, "not 0");
}

/* The status report goes through the same client: 204 is taken, a refusal is named. */
static void test_report(void **state) {
        fake_controller *f = controller_start(ANSWER_GOOD);
        _cleanup_free_ char *url = test_server_url(&f->t, ""), *want = NULL;
        _cleanup_(json_object_putp) json_object *status = json_object_new_object();
        char *err = NULL;
        int r;

        (void) state;
        enroll(url);
        r = report_send(&cfg, status, &err);
        if (r < 0)
                fail_msg("%s", err);
        controller_stop(f);

        f = controller_start(ANSWER_REFUSED);
        free(url);
        url = test_server_url(&f->t, "");
        enroll(url);
        assert_int_equal(report_send(&cfg, status, &err), -EPROTO);
        want = xasprintf("report to the controller at %s: refused with 403: " REFUSAL, url);
        assert_string_equal(err, want);
        free(err);
        controller_stop(f);
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static int setup(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = x509_generate_ec_key();
        _cleanup_(X509_freep) X509 *host_cert = NULL;
        _cleanup_free_ char *pem = NULL, *err = NULL;
        identity host;

        (void) state;
        fixture_init();
        strcpy(dir, "/tmp/test-datakeys.XXXXXX");
        assert_non_null(mkdtemp(dir));
        state_dir = xasprintf("%s/state", dir);
        assert_int_equal(mkdir(state_dir, 0700), 0);
        cfg = (agent_config) { .host = "db1", .state_dir = state_dir };

        /* The enrollment's files, named as agent_enroll() stores them. */
        assert_non_null(ca_key);
        ca = fixture_make_cert(ca_key, "Infrastream CA " DOMAIN, DOMAIN, NULL, NULL);
        ca_file = enrollment_file(&cfg, ENROLL_CA);
        fixture_write_pem(ca_file, ca, NULL);
        host = fixture_issue(state_dir, "db1.hosts." DOMAIN, ca, ca_key, "host"); /* host.crt, host.key */
        assert_int_equal(chmod(host.key, 0600), 0);
        controller = fixture_issue(dir, "controller." DOMAIN, ca, ca_key, "controller");

        /* The controller seals to what the host certificate says, as the real one does. */
        assert_int_equal(read_full_file(host.cert, X509_PEM_MAX, &pem, NULL), 0);
        assert_int_equal(x509_cert_from_pem(pem, &host_cert, &err), 0);
        host_public = X509_get_pubkey(host_cert);
        assert_non_null(host_public);
        stranger = x509_generate_ec_key();
        assert_non_null(stranger);
        identity_done(&host);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        identity_done(&controller);
        EVP_PKEY_free(host_public);
        EVP_PKEY_free(stranger);
        X509_free(ca);
        free(ca_file);
        free(state_dir);
        fixture_remove_tree(dir);
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good_answer),
                cmocka_unit_test(test_refusals),
                cmocka_unit_test(test_controller_down),
                cmocka_unit_test(test_not_enrolled),
                cmocka_unit_test(test_arguments),
                cmocka_unit_test(test_report),
        };

        if (getenv("TEST_FILTER"))
                cmocka_set_test_filter(getenv("TEST_FILTER"));
        return cmocka_run_group_tests(tests, setup, teardown);
}
