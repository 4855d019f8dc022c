/* Unit tests for the agent <-> controller messages: tokens and their derivations (known
 * answers), each message's round trip, and every refusal of the strict decoders with its exact
 * message — the table below, and the bad-input corpus under tests/fuzz/corpus/wire with the
 * messages tests/fuzz/corpus/wire.expect gives. */
#include "unit.h"

#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>

#include <json-c/json.h>

#include "fileio.h"
#include "wire.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

#define CERT "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIQ\n-----END CERTIFICATE-----\n"
#define CSR "-----BEGIN CERTIFICATE REQUEST-----\nMIIBDzCBtwIBADAA\n-----END CERTIFICATE REQUEST-----\n"
#define PUBKEY "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n"
#define SECRET "AbCdEfGhIjKlMnOpQrStUvWxYz012-_9"
#define TOKEN "0a1b2c3d." SECRET

/* ---- tokens -------------------------------------------------------------------------------- */

static void test_token_parse(void **state) {
        char id[WIRE_TOKEN_ID_LEN + 1], secret[WIRE_TOKEN_SECRET_LEN + 1];
        static const char *const bad[] = {
                "", "0a1b2c3d", "0a1b2c3d.", "0a1b2c3d" SECRET, "0A1B2C3D." SECRET, "0a1b2c3g." SECRET,
                "0a1b2c3." SECRET "x", "0a1b2c3d." SECRET "x", "0a1b2c3d.AbCdEfGhIjKlMnOpQrStUvWxYz012+/9",
                "0a1b2c3d.AbCdEfGhIjKlMnOpQrStUvWxYz012-_=", " 0a1b2c3d." SECRET,
        };

        (void) state;
        assert_true(wire_token_parse(TOKEN, id, secret));
        assert_string_equal(id, "0a1b2c3d");
        assert_string_equal(secret, SECRET);
        assert_true(wire_token_parse(TOKEN, NULL, NULL));
        assert_false(wire_token_parse(NULL, id, secret));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_false(wire_token_parse(bad[i], id, secret));
}

/* Values computed independently (Python hashlib/hmac) from the definitions in wire.h. */
static void test_token_derivations(void **state) {
        unsigned char key[32];
        char hex[65], key_hex[65];

        (void) state;
        wire_token_verifier(SECRET, hex);
        assert_string_equal(hex, "b66309f87c798ee787e7ed704c2d9b312d6872e62e4ef27351c5c46eac8796d7");
        wire_token_binding_key(SECRET, key);
        for (size_t i = 0; i < 32; i++)
                snprintf(key_hex + 2 * i, 3, "%02x", key[i]);
        assert_string_equal(key_hex, "4575290d12ba0987da56f5a1847029cae928d818789425dd3a6bbbd156737389");
        wire_ca_binding(key, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", hex);
        assert_string_equal(hex, "7117ce6c7458c0e9a5965733a07a5b5c87e9a8fd5c5f78a62806d89dcb0bfd72");
        /* Another CA, another binding. */
        wire_ca_binding(key, "-----BEGIN CERTIFICATE-----\nAAAB\n-----END CERTIFICATE-----\n", hex);
        assert_string_not_equal(hex, "7117ce6c7458c0e9a5965733a07a5b5c87e9a8fd5c5f78a62806d89dcb0bfd72");
}

static void test_endpoint(void **state) {
        static const char *const good[] = { "10.0.0.1:7443", "0.0.0.0:1", "[fd00::1]:65535", "[::]:7443" };
        static const char *const bad[] = {
                "", ":7443", "10.0.0.1", "10.0.0.1:", "10.0.0.1:0", "10.0.0.1:65536", "10.0.0.1:07443",
                "fd00::1:7443", "[fd00::1]", "[10.0.0.1]:7443", "host.example:7443", "10.0.0.1:74a3",
                "10.0.0.1:99999999999999999999",
        };
        struct sockaddr_storage sa;
        socklen_t len;

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(good); i++)
                assert_true(wire_endpoint_valid(good[i]));
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_false(wire_endpoint_valid(bad[i]));
        assert_int_equal(wire_endpoint_parse("127.0.0.1:0", true, &sa, &len), 0);
        assert_int_equal(sa.ss_family, AF_INET);
        assert_int_equal(wire_endpoint_parse("[::1]:80", false, &sa, &len), 0);
        assert_int_equal(sa.ss_family, AF_INET6);
        assert_int_equal(len, sizeof(struct sockaddr_in6));
}

/* ---- round trips --------------------------------------------------------------------------- */

static char *text(json_object *o) {
        char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));

        json_object_put(o);
        return s;
}

static void test_ca_round_trip(void **state) {
        wire_ca m = { .ca = CERT, .binding = "" }, d = {};
        _cleanup_free_ char *json = text(wire_ca_to_json(&m)), *err = NULL;

        (void) state;
        assert_int_equal(wire_ca_decode(json, strlen(json), &d, &err), 0);
        assert_string_equal(d.ca, CERT);
        assert_string_equal(d.binding, "");
        wire_ca_done(&d);
        assert_null(d.ca);
}

static void test_enroll_round_trip(void **state) {
        char *addresses[] = { "10.99.0.2", "fd00::2" };
        wire_enroll_request m = {
                .token = TOKEN,
                .csr = CSR,
                .facts = { .name = "db1", .addresses = addresses, .n_addresses = 2, .cpus = 4,
                           .memory_bytes = UINT64_C(17179869184), .endpoint = "10.99.0.2:7443" },
        }, d = {};
        wire_enroll_response resp = {
                .host = "db1", .role = "database", .certificate = CERT, .ca = CERT, .signing_key = PUBKEY,
                .controller = "controller.infrastream.internal",
        }, dr = {};
        _cleanup_free_ char *json = text(wire_enroll_request_to_json(&m)), *json2 = NULL, *err = NULL;

        (void) state;
        assert_int_equal(wire_enroll_request_decode(json, strlen(json), &d, &err), 0);
        assert_string_equal(d.token, TOKEN);
        assert_string_equal(d.csr, CSR);
        assert_string_equal(d.facts.name, "db1");
        assert_int_equal(d.facts.n_addresses, 2);
        assert_string_equal(d.facts.addresses[1], "fd00::2");
        assert_int_equal(d.facts.cpus, 4);
        assert_true(d.facts.memory_bytes == UINT64_C(17179869184));
        assert_string_equal(d.facts.endpoint, "10.99.0.2:7443");
        wire_enroll_request_done(&d);

        json2 = text(wire_enroll_response_to_json(&resp));
        assert_int_equal(wire_enroll_response_decode(json2, strlen(json2), &dr, &err), 0);
        assert_string_equal(dr.host, "db1");
        assert_string_equal(dr.role, "database");
        assert_string_equal(dr.certificate, CERT);
        assert_string_equal(dr.ca, CERT);
        assert_string_equal(dr.signing_key, PUBKEY);
        assert_string_equal(dr.controller, "controller.infrastream.internal");
        wire_enroll_response_done(&dr);
}

static void test_push_response_round_trip(void **state) {
        wire_csr csrs[] = { { .database = "accounts-db", .csr = CSR }, { .database = "billing-db", .csr = CSR } };
        _cleanup_(json_object_putp) json_object *results = json_tokener_parse("[{\"kind\": \"role\", \"name\": \"auth-api\"}]");
        wire_push_response m = {
                .host = "db1", .revision = 42, .outcome = "done", .results = results, .csrs = csrs, .n_csrs = 2,
        }, d = {};
        _cleanup_free_ char *json = text(wire_push_response_to_json(&m)), *again = NULL, *err = NULL;

        (void) state;
        assert_int_equal(wire_push_response_decode(json, strlen(json), &d, &err), 0);
        assert_string_equal(d.host, "db1");
        assert_true(d.revision == 42);
        assert_string_equal(d.outcome, "done");
        assert_int_equal(json_object_array_length(d.results), 1);
        assert_int_equal(d.n_csrs, 2);
        assert_string_equal(d.csrs[1].database, "billing-db");
        assert_string_equal(d.csrs[1].csr, CSR);
        /* The encoding is a fixed point. */
        again = text(wire_push_response_to_json(&d));
        assert_string_equal(again, json);
        wire_push_response_done(&d);

        /* No results given: an empty array, never null. */
        m.results = NULL;
        m.n_csrs = 0;
        free(again);
        again = text(wire_push_response_to_json(&m));
        assert_non_null(strstr(again, "\"results\":[]"));
        assert_int_equal(wire_push_response_decode(again, strlen(again), &d, &err), 0);
        assert_int_equal(d.n_csrs, 0);
        wire_push_response_done(&d);
}

#define DB_A "fincorp/retail-banking/development/login-svc/accounts-db"
#define DB_B "fincorp/retail-banking/development/payments/billing-db"
#define WRAPPED "AQEAQR9A/JLaJBaUdQl57mz1gvLV19KOGDNd4Fq8VNBW+g9TAoYMZSvwjVYCUqpedCEFRv==" /* form only */

static void test_data_keys_round_trip(void **state) {
        char *databases[] = { DB_A, DB_B };
        wire_data_key keys[] = { { .database = DB_A, .wrapped_key = WRAPPED }, { .database = DB_B, .wrapped_key = "AAAA" } };
        wire_data_keys_request m = { .host = "db1", .databases = databases, .n_databases = 2 }, d = {};
        wire_data_keys_response resp = { .host = "db1", .keys = keys, .n_keys = 2 }, dr = {};
        _cleanup_free_ char *json = text(wire_data_keys_request_to_json(&m)), *json2 = NULL, *again = NULL, *err = NULL;

        (void) state;
        assert_int_equal(wire_data_keys_request_decode(json, strlen(json), &d, &err), 0);
        assert_string_equal(d.host, "db1");
        assert_int_equal(d.n_databases, 2);
        assert_string_equal(d.databases[0], DB_A);
        assert_string_equal(d.databases[1], DB_B);
        again = text(wire_data_keys_request_to_json(&d));
        assert_string_equal(again, json);
        wire_data_keys_request_done(&d);
        assert_null(d.databases);

        json2 = text(wire_data_keys_response_to_json(&resp));
        assert_int_equal(wire_data_keys_response_decode(json2, strlen(json2), &dr, &err), 0);
        assert_string_equal(dr.host, "db1");
        assert_int_equal(dr.n_keys, 2);
        assert_string_equal(dr.keys[0].database, DB_A);
        assert_string_equal(dr.keys[0].wrapped_key, WRAPPED);
        assert_string_equal(dr.keys[1].wrapped_key, "AAAA");
        free(again);
        again = text(wire_data_keys_response_to_json(&dr));
        assert_string_equal(again, json2);
        wire_data_keys_response_done(&dr);

        /* No keys is an answer too (the encoder writes an empty array, never null). */
        resp.n_keys = 0;
        free(json2);
        json2 = text(wire_data_keys_response_to_json(&resp));
        assert_non_null(strstr(json2, "\"keys\":[]"));
        assert_int_equal(wire_data_keys_response_decode(json2, strlen(json2), &dr, &err), 0);
        assert_int_equal(dr.n_keys, 0);
        wire_data_keys_response_done(&dr);
}

/* The limits exactly: WIRE_MAX_DATA_KEYS entries and a WIRE_WRAPPED_KEY_MAX-character key pass,
 * one more does not. */
static void test_data_keys_limits(void **state) {
        char *databases[WIRE_MAX_DATA_KEYS + 1];
        wire_data_key keys[WIRE_MAX_DATA_KEYS + 1];
        _cleanup_free_ char *big = xmalloc(WIRE_WRAPPED_KEY_MAX + 5), *err = NULL;
        _cleanup_free_ char *want = xasprintf("keys[0].wrappedKey: longer than %d bytes", WIRE_WRAPPED_KEY_MAX);
        wire_data_keys_request m = { .host = "db1", .databases = databases }, d = {};
        wire_data_keys_response resp = { .host = "db1", .keys = keys }, dr = {};

        (void) state;
        for (size_t i = 0; i <= WIRE_MAX_DATA_KEYS; i++) {
                databases[i] = xasprintf("org/ou/env/project/db%03zu", i);
                keys[i] = (wire_data_key) { .database = databases[i], .wrapped_key = "AAAA" };
        }
        for (size_t n = WIRE_MAX_DATA_KEYS; n <= WIRE_MAX_DATA_KEYS + 1; n++) {
                _cleanup_free_ char *json = NULL, *json2 = NULL;
                int want_r = n <= WIRE_MAX_DATA_KEYS ? 0 : -EBADMSG;

                m.n_databases = resp.n_keys = n;
                json = text(wire_data_keys_request_to_json(&m));
                json2 = text(wire_data_keys_response_to_json(&resp));
                free(TAKE_PTR(err));
                assert_int_equal(wire_data_keys_request_decode(json, strlen(json), &d, &err), want_r);
                wire_data_keys_request_done(&d);
                if (want_r < 0)
                        assert_string_equal(err, "databases: must list between 1 and 256 databases");
                free(TAKE_PTR(err));
                assert_int_equal(wire_data_keys_response_decode(json2, strlen(json2), &dr, &err), want_r);
                wire_data_keys_response_done(&dr);
                if (want_r < 0)
                        assert_string_equal(err, "keys: must list at most 256 keys");
        }

        /* WIRE_WRAPPED_KEY_MAX characters pass; four more are still base64, but too long. */
        resp.n_keys = 1;
        keys[0].wrapped_key = big;
        for (size_t extra = 0; extra <= 4; extra += 4) {
                _cleanup_free_ char *json = NULL;

                memset(big, 'A', WIRE_WRAPPED_KEY_MAX + extra);
                big[WIRE_WRAPPED_KEY_MAX + extra] = '\0';
                json = text(wire_data_keys_response_to_json(&resp));
                free(TAKE_PTR(err));
                assert_int_equal(wire_data_keys_response_decode(json, strlen(json), &dr, &err), extra ? -EBADMSG : 0);
                wire_data_keys_response_done(&dr);
                if (extra)
                        assert_string_equal(err, want);
        }
        for (size_t i = 0; i <= WIRE_MAX_DATA_KEYS; i++)
                free(databases[i]);
}

#define MNT "/var/lib/infrastream/data"
#define KEY_ZERO "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" /* 32 zero bytes */

static void test_luks_round_trip(void **state) {
        wire_luks_key keys[] = { { .database = DB_A }, { .database = DB_B } };
        wire_luks_request m = { .op = WIRE_LUKS_UNLOCK, .device = "/dev/vdb", .mount_point = MNT, .keys = keys, .n_keys = 2 },
                          d = {};
        char *keyslots[] = { DB_A, DB_B };
        wire_luks_response resp = {
                .device_mapper = true, .content = WIRE_LUKS_LUKS, .what = "a LUKS2 volume", .active = true,
                .mounted = true, .keyslots = keyslots, .n_keyslots = 2, .formatted = false,
        }, dr = {};
        _cleanup_free_ char *json = NULL, *json2 = NULL, *again = NULL, *err = NULL;

        (void) state;
        for (size_t i = 0; i < WIRE_LUKS_KEY_SIZE; i++)
                keys[1].key[i] = (uint8_t) (0xff - i);
        json = wire_luks_request_text(&m);
        assert_string_equal(json, "{\"op\":\"unlock\",\"device\":\"/dev/vdb\",\"mountPoint\":\"" MNT "\",\"keys\":["
                                  "{\"database\":\"" DB_A "\",\"key\":\"" KEY_ZERO "\"},"
                                  "{\"database\":\"" DB_B "\",\"key\":\"//79/Pv6+fj39vX08/Lx8O/u7ezr6uno5+bl5OPi4eA=\"}]}");
        assert_int_equal(wire_luks_request_decode(json, strlen(json), &d, &err), 0);
        assert_int_equal(d.op, WIRE_LUKS_UNLOCK);
        assert_string_equal(d.device, "/dev/vdb");
        assert_string_equal(d.mount_point, MNT);
        assert_int_equal(d.n_keys, 2);
        assert_string_equal(d.keys[0].database, DB_A);
        assert_memory_equal(d.keys[0].key, keys[0].key, WIRE_LUKS_KEY_SIZE);
        assert_memory_equal(d.keys[1].key, keys[1].key, WIRE_LUKS_KEY_SIZE);
        again = wire_luks_request_text(&d);
        assert_string_equal(again, json);
        wire_luks_request_done(&d);
        assert_null(d.keys);

        /* inspect carries no keys, whatever the structure holds. */
        m.op = WIRE_LUKS_INSPECT;
        free(again);
        again = wire_luks_request_text(&m);
        assert_string_equal(again, "{\"op\":\"inspect\",\"device\":\"/dev/vdb\",\"mountPoint\":\"" MNT "\"}");
        assert_int_equal(wire_luks_request_decode(again, strlen(again), &d, &err), 0);
        assert_int_equal(d.op, WIRE_LUKS_INSPECT);
        assert_int_equal(d.n_keys, 0);
        wire_luks_request_done(&d);

        json2 = text(wire_luks_response_to_json(&resp));
        assert_int_equal(wire_luks_response_decode(json2, strlen(json2), &dr, &err), 0);
        assert_true(dr.device_mapper);
        assert_int_equal(dr.content, WIRE_LUKS_LUKS);
        assert_string_equal(dr.what, "a LUKS2 volume");
        assert_true(dr.active && dr.mounted && !dr.formatted);
        assert_int_equal(dr.n_keyslots, 2);
        assert_string_equal(dr.keyslots[1], DB_B);
        free(again);
        again = text(wire_luks_response_to_json(&dr));
        assert_string_equal(again, json2);
        wire_luks_response_done(&dr);

        /* An empty device: what is null, no keyslots (an empty array, never null). */
        resp = (wire_luks_response) { .content = WIRE_LUKS_EMPTY };
        free(json2);
        json2 = text(wire_luks_response_to_json(&resp));
        assert_string_equal(json2, "{\"deviceMapper\":false,\"content\":\"empty\",\"what\":null,\"active\":false,"
                                   "\"mounted\":false,\"keyslots\":[],\"formatted\":false}");
        assert_int_equal(wire_luks_response_decode(json2, strlen(json2), &dr, &err), 0);
        assert_null(dr.what);
        assert_int_equal(dr.n_keyslots, 0);
        wire_luks_response_done(&dr);
}

/* WIRE_MAX_DATA_KEYS keys pass, one more does not. */
static void test_luks_limits(void **state) {
        wire_luks_key keys[WIRE_MAX_DATA_KEYS + 1] = {};
        wire_luks_request m = { .op = WIRE_LUKS_UNLOCK, .device = "/dev/vdb", .mount_point = MNT, .keys = keys }, d = {};

        (void) state;
        for (size_t i = 0; i <= WIRE_MAX_DATA_KEYS; i++)
                keys[i].database = xasprintf("org/ou/env/project/db%03zu", i);
        for (size_t n = WIRE_MAX_DATA_KEYS; n <= WIRE_MAX_DATA_KEYS + 1; n++) {
                _cleanup_free_ char *json = NULL, *err = NULL;
                int want_r = n <= WIRE_MAX_DATA_KEYS ? 0 : -EBADMSG;

                m.n_keys = n;
                json = wire_luks_request_text(&m);
                assert_int_equal(wire_luks_request_decode(json, strlen(json), &d, &err), want_r);
                wire_luks_request_done(&d);
                if (want_r < 0)
                        assert_string_equal(err, "keys: must list between 1 and 256 keys");
                explicit_bzero(json, strlen(json));
        }
        for (size_t i = 0; i <= WIRE_MAX_DATA_KEYS; i++)
                free(keys[i].database);
}

static void test_report(void **state) {
        static const char json[] =
                "{\"host\": \"db1\", \"role\": \"database\", \"revision\": 7, \"commit\": \"5f1e2d3c\", "
                "\"failed\": true, \"lastError\": \"database 'accounts-db': initdb failed:\\nno space\", "
                "\"databases\": [{\"name\": \"accounts-db\", \"state\": \"failed\"}], \"apps\": []}";
        static const char fresh[] = "{\"host\": \"app1\", \"revision\": 0, \"commit\": null, \"failed\": false, "
                                    "\"lastError\": null}";
        _cleanup_free_ char *err = NULL;
        wire_report r = {};
        json_object *dbs;

        (void) state;
        assert_int_equal(wire_report_decode(json, strlen(json), &r, &err), 0);
        assert_string_equal(r.host, "db1");
        assert_true(r.revision == 7);
        assert_string_equal(r.commit, "5f1e2d3c");
        assert_true(r.failed);
        assert_string_equal(r.last_error, "database 'accounts-db': initdb failed:\nno space");
        /* The rest is kept whole. */
        assert_true(json_object_object_get_ex(r.status, "databases", &dbs));
        assert_int_equal(json_object_array_length(dbs), 1);
        wire_report_done(&r);

        assert_int_equal(wire_report_decode(fresh, strlen(fresh), &r, &err), 0);
        assert_null(r.commit);
        assert_null(r.last_error);
        assert_false(r.failed);
        wire_report_done(&r);
}

static void test_error_message(void **state) {
        _cleanup_free_ char *m = NULL;
        static const char *const not_errors[] = {
                "", "<html>413</html>", "{}", "{\"error\": 5}", "{\"error\": \"\"}", "{\"error\": \"x\", \"y\": 1}",
                "{\"error\": \"x\", \"error\": \"y\"}",
        };

        (void) state;
        m = wire_error_message("{\"error\": \"no such path\"}\n", 26);
        assert_string_equal(m, "no such path");
        for (size_t i = 0; i < ELEMENTSOF(not_errors); i++)
                assert_null(wire_error_message(not_errors[i], strlen(not_errors[i])));
        assert_null(wire_error_message(NULL, 0));
}

/* ---- refusals ------------------------------------------------------------------------------ */

typedef enum kind {
        CA, ENROLL_REQUEST, ENROLL_RESPONSE, PUSH_RESPONSE, REPORT, DATA_KEYS_REQUEST, DATA_KEYS_RESPONSE, LUKS_REQUEST,
        LUKS_RESPONSE, ERROR
} kind;

/* Decode json as kind: 0 or the error (malloc'd) in *ret_error; nothing leaks either way. */
static int decode_as(kind k, const char *json, size_t size, char **ret_error) {
        wire_ca ca = {};
        wire_enroll_request req = {};
        wire_enroll_response resp = {};
        wire_push_response push = {};
        wire_report report = {};
        wire_data_keys_request keys_req = {};
        wire_data_keys_response keys_resp = {};
        wire_luks_request luks_req = {};
        wire_luks_response luks_resp = {};
        char *msg = NULL;
        int r;

        switch (k) {
        case CA:
                r = wire_ca_decode(json, size, &ca, ret_error);
                wire_ca_done(&ca);
                return r;
        case ENROLL_REQUEST:
                r = wire_enroll_request_decode(json, size, &req, ret_error);
                wire_enroll_request_done(&req);
                return r;
        case ENROLL_RESPONSE:
                r = wire_enroll_response_decode(json, size, &resp, ret_error);
                wire_enroll_response_done(&resp);
                return r;
        case PUSH_RESPONSE:
                r = wire_push_response_decode(json, size, &push, ret_error);
                wire_push_response_done(&push);
                return r;
        case REPORT:
                r = wire_report_decode(json, size, &report, ret_error);
                wire_report_done(&report);
                return r;
        case DATA_KEYS_REQUEST:
                r = wire_data_keys_request_decode(json, size, &keys_req, ret_error);
                wire_data_keys_request_done(&keys_req);
                return r;
        case DATA_KEYS_RESPONSE:
                r = wire_data_keys_response_decode(json, size, &keys_resp, ret_error);
                wire_data_keys_response_done(&keys_resp);
                return r;
        case LUKS_REQUEST:
                r = wire_luks_request_decode(json, size, &luks_req, ret_error);
                wire_luks_request_done(&luks_req);
                return r;
        case LUKS_RESPONSE:
                r = wire_luks_response_decode(json, size, &luks_resp, ret_error);
                wire_luks_response_done(&luks_resp);
                return r;
        case ERROR:
                r = wire_error_decode(json, size, &msg, ret_error);
                if (r >= 0)
                        free(msg);
                return r;
        }
        return -EINVAL;
}

static void expect_refusal(kind k, const char *json, const char *message) {
        _cleanup_free_ char *err = NULL;
        int r = decode_as(k, json, strlen(json), &err);

        if (r >= 0)
                fail_msg("accepted: %s", json);
        if (!err || !streq(err, message))
                fail_msg("%s\n  got:  %s\n  want: %s", json, strempty(err), message);
}

#define FACTS "\"facts\": {\"name\": \"db1\", \"addresses\": [\"10.0.0.2\"], \"cpus\": 2, \"memoryBytes\": 1024, \"endpoint\": \"10.0.0.2:7443\"}"
#define CSR_JSON "\"-----BEGIN CERTIFICATE REQUEST-----\\nx\\n-----END CERTIFICATE REQUEST-----\\n\""
#define CERT_JSON "\"-----BEGIN CERTIFICATE-----\\nx\\n-----END CERTIFICATE-----\\n\""
#define LUKS_PATHS "\"device\": \"/dev/vdb\", \"mountPoint\": \"" MNT "\""
#define LUKS_KEY(db, key) "{\"database\": \"" db "\", \"key\": \"" key "\"}"
#define LUKS_STATE "\"deviceMapper\": true, \"content\": \"luks\", \"what\": null, \"active\": true, \"mounted\": true"
#define NOT_PATH "is not an absolute, normalised path (no empty, '.' or '..' components, no trailing '/')"
#define NOT_KEY "keys[0].key: is not base64 of 32 bytes (standard alphabet, padded)"
#define NOT_DB "is not a database key (five DNS labels joined by '/': org/ou/env/project/db)"

static void test_refusals(void **state) {
        static const struct {
                kind kind;
                const char *json, *message;
        } cases[] = {
                { CA, "{\"ca\": " CERT_JSON ", \"binding\": \"\", \"x\": 1}", "message: unknown field 'x'" },
                { CA, "{\"ca\": " CERT_JSON "}", "binding: missing" },
                { CA, "{\"ca\": 5, \"binding\": \"\"}", "ca: expected a string" },
                { CA, "{\"ca\": \"\", \"binding\": \"\"}", "ca: must not be empty" },
                { CA, "{\"ca\": \"-----BEGIN CERTIFICATE-----\", \"binding\": \"\"}", "ca: is not a certificate in PEM form" },
                { CA, "{\"ca\": \"-----BEGIN CERTIFICATE-----\\u0007\", \"binding\": \"\"}",
                  "ca: must not contain control characters" },
                { CA, "{\"ca\": " CERT_JSON ", \"binding\": \"00\"}", "binding: must be empty or 64 lower-case hexadecimal digits" },
                { CA, "{\"ca\": " CERT_JSON ", \"binding\": \"\", \"binding\": \"\"}", "message: duplicate field" },
                { CA, "[]", "message: expected an object" },
                { CA, "{\"ca\": 'x'}", "malformed JSON at offset 7: unexpected character" },
                { CA, "{\"ca\": \"\\ud800\"}", "malformed JSON at offset 8: unpaired surrogate in string" },
                { CA, "{\"ca\": \"x\\u0000\"}", "malformed JSON at offset 9: NUL character in string" },
                { CA, "{\"ca\": 1.}", "malformed JSON at offset 7: invalid number" },
                { CA, "{\"ca\": \"x\"", "malformed JSON: unexpected end of input" },
                { ENROLL_REQUEST, "{\"token\": \"" TOKEN "\", \"csr\": " CSR_JSON ", " FACTS ", \"role\": \"database\"}",
                  "message: unknown field 'role'" },
                { ENROLL_REQUEST, "{\"token\": \"0a1b2c3d.tooshort\", \"csr\": " CSR_JSON ", " FACTS "}",
                  "token: is not an enrollment token (ID.SECRET: 8 hexadecimal digits, '.', 32 base64url characters)" },
                { ENROLL_REQUEST, "{\"token\": \"" TOKEN "\", \"csr\": " CERT_JSON ", " FACTS "}",
                  "csr: is not a certificate request in PEM form" },
                { ENROLL_REQUEST, "{\"token\": \"" TOKEN "\", \"csr\": " CSR_JSON "}", "facts: missing" },
                { ENROLL_REQUEST, "{\"token\": \"" TOKEN "\", \"csr\": " CSR_JSON ", \"facts\": []}", "facts: expected an object" },
                { ENROLL_REQUEST, "{\"token\": \"" TOKEN "\", \"csr\": " CSR_JSON ", \"facts\": {\"name\": \"db.1\", "
                                  "\"addresses\": [\"10.0.0.2\"], \"cpus\": 2, \"memoryBytes\": 1, \"endpoint\": \"10.0.0.2:1\"}}",
                  "facts.name: 'db.1' is not a host name (a DNS label: lower-case letters, digits and '-')" },
                { ENROLL_REQUEST, "{\"token\": \"" TOKEN "\", \"csr\": " CSR_JSON ", \"facts\": {\"name\": \"db1\", "
                                  "\"addresses\": [\"10.0.0.2\", \"10.0.0.256\"], \"cpus\": 2, \"memoryBytes\": 1, \"endpoint\": \"10.0.0.2:1\"}}",
                  "facts.addresses[1]: '10.0.0.256' is not an IPv4 or IPv6 address" },
                { ENROLL_REQUEST, "{\"token\": \"" TOKEN "\", \"csr\": " CSR_JSON ", \"facts\": {\"name\": \"db1\", "
                                  "\"addresses\": [5], \"cpus\": 2, \"memoryBytes\": 1, \"endpoint\": \"10.0.0.2:1\"}}",
                  "facts.addresses[0]: expected a string" },
                { ENROLL_REQUEST, "{\"token\": \"" TOKEN "\", \"csr\": " CSR_JSON ", \"facts\": {\"name\": \"db1\", "
                                  "\"addresses\": [\"10.0.0.2\"], \"cpus\": 65537, \"memoryBytes\": 1, \"endpoint\": \"10.0.0.2:1\"}}",
                  "facts.cpus: must be an integer between 1 and 65536" },
                { ENROLL_REQUEST, "{\"token\": \"" TOKEN "\", \"csr\": " CSR_JSON ", \"facts\": {\"name\": \"db1\", "
                                  "\"addresses\": [\"10.0.0.2\"], \"cpus\": 2, \"memoryBytes\": 0, \"endpoint\": \"10.0.0.2:1\"}}",
                  "facts.memoryBytes: must be an integer between 1 and 9223372036854775807" },
                { ENROLL_REQUEST, "{\"token\": \"" TOKEN "\", \"csr\": " CSR_JSON ", \"facts\": {\"name\": \"db1\", "
                                  "\"addresses\": [\"10.0.0.2\"], \"cpus\": 2, \"memoryBytes\": 1, \"endpoint\": \"10.0.0.2\"}}",
                  "facts.endpoint: '10.0.0.2' is not ADDRESS:PORT (IPv4 or [IPv6] address, port 1-65535)" },
                { ENROLL_REQUEST, "{\"token\": \"" TOKEN "\", \"csr\": " CSR_JSON ", \"facts\": {\"name\": \"db1\", "
                                  "\"addresses\": [\"10.0.0.2\"], \"cpus\": 2, \"memoryBytes\": 1}}",
                  "facts.endpoint: missing" },
                { ENROLL_RESPONSE, "{\"host\": \"db1\", \"role\": \"database\", \"certificate\": " CERT_JSON ", \"ca\": " CERT_JSON ", "
                                   "\"signingKey\": " CERT_JSON ", \"controller\": \"controller.example\"}",
                  "signingKey: is not a public key in PEM form" },
                { ENROLL_RESPONSE, "{\"host\": \"db1\", \"role\": \"primary\", \"certificate\": " CERT_JSON "}",
                  "role: expected 'database' or 'application', got 'primary'" },
                { ENROLL_RESPONSE, "{\"host\": \"db1\", \"role\": \"database\", \"certificate\": " CSR_JSON "}",
                  "certificate: is not a certificate in PEM form" },
                { PUSH_RESPONSE, "{\"host\": \"db1\", \"revision\": -1}", "revision: must be an integer between 0 and 9223372036854775807" },
                { PUSH_RESPONSE, "{\"host\": \"db1\", \"revision\": 1, \"outcome\": \"done\", \"results\": null, \"csrs\": []}",
                  "results: expected an array" },
                { PUSH_RESPONSE, "{\"host\": \"db1\", \"revision\": 1, \"outcome\": \"done\", \"results\": [], \"csrs\": [{\"database\": \"a\"}]}",
                  "csrs[0].csr: missing" },
                { PUSH_RESPONSE, "{\"host\": \"db1\", \"revision\": 1, \"outcome\": \"done\", \"results\": [], \"csrs\": "
                                 "[{\"database\": \"a\", \"csr\": " CSR_JSON "}, {\"database\": \"a\", \"csr\": " CSR_JSON "}]}",
                  "csrs[1].name: duplicate name 'a'" },
                { PUSH_RESPONSE, "{\"host\": \"db1\", \"revision\": 1, \"outcome\": \"done\", \"results\": [{\"a\": 1, \"a\": 2}], \"csrs\": []}",
                  "results[0]: duplicate field" },
                { REPORT, "{\"revision\": 1}", "host: missing" },
                { REPORT, "{\"host\": \"db1\", \"revision\": \"1\"}", "revision: must be an integer between 0 and 9223372036854775807" },
                { REPORT, "{\"host\": \"db1\", \"revision\": 1, \"commit\": 5}", "commit: expected a string" },
                { REPORT, "{\"host\": \"db1\", \"revision\": 1, \"commit\": null}", "failed: missing" },
                { REPORT, "{\"host\": \"db1\", \"revision\": 1, \"commit\": null, \"failed\": 0}", "failed: expected a boolean" },
                { REPORT, "{\"host\": \"db1\", \"revision\": 1, \"commit\": null, \"failed\": false}", "lastError: missing" },
                { REPORT, "{\"host\": \"db1\", \"revision\": 1, \"commit\": null, \"failed\": false, \"lastError\": \"\"}",
                  "lastError: must not be empty" },
                { REPORT, "{\"host\": \"db1\", \"revision\": 1, \"commit\": null, \"failed\": false, \"lastError\": null, "
                          "\"databases\": [{\"x\\u0001\": 1, \"x\\u0001\": 2}]}",
                  "databases[0]: duplicate field" },
                { DATA_KEYS_REQUEST, "{\"host\": \"db1\"}", "databases: missing" },
                { DATA_KEYS_REQUEST, "{\"host\": \"db1\", \"databases\": [\"" DB_A "\"], \"keys\": []}",
                  "message: unknown field 'keys'" },
                { DATA_KEYS_REQUEST, "{\"host\": \"db.1\", \"databases\": [\"" DB_A "\"]}",
                  "host: 'db.1' is not a host name (a DNS label: lower-case letters, digits and '-')" },
                { DATA_KEYS_REQUEST, "{\"host\": \"db1\", \"databases\": \"" DB_A "\"}", "databases: expected an array" },
                { DATA_KEYS_REQUEST, "{\"host\": \"db1\", \"databases\": [5]}", "databases[0]: expected a string" },
                { DATA_KEYS_REQUEST, "{\"host\": \"db1\", \"databases\": []}", "databases: must list between 1 and 256 databases" },
                { DATA_KEYS_REQUEST, "{\"host\": \"db1\", \"databases\": [\"a/b/c/d/e/f\"]}",
                  "databases[0]: 'a/b/c/d/e/f' is not a database key (five DNS labels joined by '/': org/ou/env/project/db)" },
                { DATA_KEYS_REQUEST, "{\"host\": \"db1\", \"databases\": [\"a/b/c/d/\"]}",
                  "databases[0]: 'a/b/c/d/' is not a database key (five DNS labels joined by '/': org/ou/env/project/db)" },
                { DATA_KEYS_REQUEST, "{\"host\": \"db1\", \"databases\": [\"/a/b/c/d\"]}",
                  "databases[0]: '/a/b/c/d' is not a database key (five DNS labels joined by '/': org/ou/env/project/db)" },
                { DATA_KEYS_REQUEST, "{\"host\": \"db1\", \"databases\": [\"a/b//c/d\"]}",
                  "databases[0]: 'a/b//c/d' is not a database key (five DNS labels joined by '/': org/ou/env/project/db)" },
                { DATA_KEYS_REQUEST, "{\"host\": \"db1\", \"databases\": [\"a/b/c/d/-e\"]}",
                  "databases[0]: 'a/b/c/d/-e' is not a database key (five DNS labels joined by '/': org/ou/env/project/db)" },
                { DATA_KEYS_REQUEST, "{\"host\": \"db1\", \"databases\": [\"a/b/c/d/e.f\"]}",
                  "databases[0]: 'a/b/c/d/e.f' is not a database key (five DNS labels joined by '/': org/ou/env/project/db)" },
                { DATA_KEYS_REQUEST, "{\"host\": \"db1\", \"databases\": [\"a/b/c/d/e\", \"a/b/c/d/e\"]}",
                  "databases[1]: duplicate database 'a/b/c/d/e'" },
                { DATA_KEYS_REQUEST, "{\"host\": \"db1\", \"databases\": [\"a/b/c/d/f\", \"a/b/c/d/e\"]}",
                  "databases[1]: 'a/b/c/d/e' is out of order: database keys must be sorted" },
                { DATA_KEYS_RESPONSE, "{\"host\": \"db1\", \"keys\": null}", "keys: expected an array" },
                { DATA_KEYS_RESPONSE, "{\"host\": \"db1\", \"keys\": [{\"database\": \"" DB_A "\"}]}",
                  "keys[0].wrappedKey: missing" },
                { DATA_KEYS_RESPONSE, "{\"host\": \"db1\", \"keys\": [{\"database\": \"accounts-db\", \"wrappedKey\": \"AAAA\"}]}",
                  "keys[0].database: 'accounts-db' is not a database key (five DNS labels joined by '/': org/ou/env/project/db)" },
                { DATA_KEYS_RESPONSE, "{\"host\": \"db1\", \"keys\": [{\"database\": \"" DB_A "\", \"wrappedKey\": \"AAA\"}]}",
                  "keys[0].wrappedKey: is not base64 (standard alphabet, padded, one line)" },
                { DATA_KEYS_RESPONSE, "{\"host\": \"db1\", \"keys\": [{\"database\": \"" DB_A "\", \"wrappedKey\": \"AA==AA==\"}]}",
                  "keys[0].wrappedKey: is not base64 (standard alphabet, padded, one line)" },
                { DATA_KEYS_RESPONSE, "{\"host\": \"db1\", \"keys\": [{\"database\": \"" DB_A "\", \"wrappedKey\": \"A===\"}]}",
                  "keys[0].wrappedKey: is not base64 (standard alphabet, padded, one line)" },
                { DATA_KEYS_RESPONSE, "{\"host\": \"db1\", \"keys\": [{\"database\": \"" DB_A "\", \"wrappedKey\": \"AAAA\\nAAAA\"}]}",
                  "keys[0].wrappedKey: is not base64 (standard alphabet, padded, one line)" },
                { DATA_KEYS_RESPONSE, "{\"host\": \"db1\", \"keys\": [{\"database\": \"" DB_A "\", \"wrappedKey\": \"AAAA\"}, "
                                      "{\"database\": \"" DB_A "\", \"wrappedKey\": \"AAAA\"}]}",
                  "keys[1].database: duplicate database '" DB_A "'" },
                { LUKS_REQUEST, "{\"op\": \"format\", " LUKS_PATHS "}", "op: expected 'inspect' or 'unlock', got 'format'" },
                { LUKS_REQUEST, "{" LUKS_PATHS "}", "op: missing" },
                { LUKS_REQUEST, "{\"op\": \"inspect\", " LUKS_PATHS ", \"force\": true}", "message: unknown field 'force'" },
                { LUKS_REQUEST, "{\"op\": \"inspect\", \"mountPoint\": \"" MNT "\"}", "device: missing" },
                { LUKS_REQUEST, "{\"op\": \"inspect\", \"device\": \"/dev/vdb\"}", "mountPoint: missing" },
                { LUKS_REQUEST, "{\"op\": \"inspect\", \"device\": \"\", \"mountPoint\": \"" MNT "\"}", "device: must not be empty" },
                { LUKS_REQUEST, "{\"op\": \"inspect\", \"device\": \"vdb\", \"mountPoint\": \"" MNT "\"}", "device: 'vdb' " NOT_PATH },
                { LUKS_REQUEST, "{\"op\": \"inspect\", \"device\": \"/dev//vdb\", \"mountPoint\": \"" MNT "\"}",
                  "device: '/dev//vdb' " NOT_PATH },
                { LUKS_REQUEST, "{\"op\": \"inspect\", \"device\": \"/dev/./vdb\", \"mountPoint\": \"" MNT "\"}",
                  "device: '/dev/./vdb' " NOT_PATH },
                { LUKS_REQUEST, "{\"op\": \"inspect\", \"device\": \"/dev/vdb/..\", \"mountPoint\": \"" MNT "\"}",
                  "device: '/dev/vdb/..' " NOT_PATH },
                { LUKS_REQUEST, "{\"op\": \"inspect\", \"device\": \"/\", \"mountPoint\": \"" MNT "\"}", "device: must not be '/'" },
                { LUKS_REQUEST, "{\"op\": \"inspect\", \"device\": \"/dev/vdb\", \"mountPoint\": \"/\"}", "mountPoint: must not be '/'" },
                { LUKS_REQUEST, "{\"op\": \"inspect\", \"device\": \"/dev/vdb\", \"mountPoint\": \"//srv\"}",
                  "mountPoint: '//srv' " NOT_PATH },
                { LUKS_REQUEST, "{\"op\": \"inspect\", \"device\": \"/dev/vdb\", \"mountPoint\": \"/srv/\"}",
                  "mountPoint: '/srv/' " NOT_PATH },
                { LUKS_REQUEST, "{\"op\": \"inspect\", \"device\": \"/dev/vdb\", \"mountPoint\": \"/srv\\u0001\"}",
                  "mountPoint: must not contain control characters" },
                { LUKS_REQUEST, "{\"op\": \"inspect\", " LUKS_PATHS ", \"keys\": []}", "keys: only an unlock request carries keys" },
                { LUKS_REQUEST, "{\"op\": \"inspect\", " LUKS_PATHS ", \"keys\": null}", "keys: only an unlock request carries keys" },
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS "}", "keys: missing" },
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": {}}", "keys: expected an array" },
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": []}", "keys: must list between 1 and 256 keys" },
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [{\"database\": \"" DB_A "\"}]}", "keys[0].key: missing" },
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [{\"database\": \"" DB_A "\", \"key\": 5}]}",
                  "keys[0].key: expected a string" },
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [{\"database\": \"" DB_A "\", \"key\": \"" KEY_ZERO "\", "
                                "\"slot\": 1}]}",
                  "keys[0]: unknown field 'slot'" },
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [" LUKS_KEY("accounts-db", KEY_ZERO) "]}",
                  "keys[0].database: 'accounts-db' " NOT_DB },
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [" LUKS_KEY(DB_A, "") "]}", NOT_KEY },
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [" LUKS_KEY(DB_A, "AAAA") "]}", NOT_KEY },
                /* 31 and 33 bytes: also 44 characters. */
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [" LUKS_KEY(DB_A, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==") "]}",
                  NOT_KEY },
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [" LUKS_KEY(DB_A, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") "]}",
                  NOT_KEY },
                /* Unpadded, non-zero unused bits, base64url, a blank. */
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [" LUKS_KEY(DB_A, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") "]}",
                  NOT_KEY },
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [" LUKS_KEY(DB_A, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=") "]}",
                  NOT_KEY },
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [" LUKS_KEY(DB_A, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA_=") "]}",
                  NOT_KEY },
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [" LUKS_KEY(DB_A, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA A=") "]}",
                  NOT_KEY },
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [" LUKS_KEY(DB_B, KEY_ZERO) ", " LUKS_KEY(DB_A, KEY_ZERO) "]}",
                  "keys[1].database: '" DB_A "' is out of order: database keys must be sorted" },
                { LUKS_REQUEST, "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [" LUKS_KEY(DB_A, KEY_ZERO) ", " LUKS_KEY(DB_A, KEY_ZERO) "]}",
                  "keys[1].database: duplicate database '" DB_A "'" },
                { LUKS_RESPONSE, "{" LUKS_STATE ", \"keyslots\": [], \"formatted\": false, \"uuid\": \"x\"}", "message: unknown field 'uuid'" },
                { LUKS_RESPONSE, "{" LUKS_STATE ", \"keyslots\": []}", "formatted: missing" },
                { LUKS_RESPONSE, "{\"deviceMapper\": 1}", "deviceMapper: expected a boolean" },
                { LUKS_RESPONSE, "{\"deviceMapper\": true, \"content\": \"ext4\"}", "content: expected 'empty', 'luks' or 'other', got 'ext4'" },
                { LUKS_RESPONSE, "{\"deviceMapper\": true, \"content\": \"other\"}", "what: missing" },
                { LUKS_RESPONSE, "{\"deviceMapper\": true, \"content\": \"other\", \"what\": \"\"}", "what: must not be empty" },
                { LUKS_RESPONSE, "{\"deviceMapper\": true, \"content\": \"other\", \"what\": false}", "what: expected a string" },
                { LUKS_RESPONSE, "{" LUKS_STATE ", \"keyslots\": null, \"formatted\": false}", "keyslots: expected an array" },
                { LUKS_RESPONSE, "{" LUKS_STATE ", \"keyslots\": [\"a/b/c/d\"], \"formatted\": false}", "keyslots[0]: 'a/b/c/d' " NOT_DB },
                { LUKS_RESPONSE, "{" LUKS_STATE ", \"keyslots\": [\"" DB_B "\", \"" DB_A "\"], \"formatted\": false}",
                  "keyslots[1]: '" DB_A "' is out of order: database keys must be sorted" },
                { LUKS_RESPONSE, "{" LUKS_STATE ", \"keyslots\": [\"" DB_A "\", \"" DB_A "\"], \"formatted\": false}",
                  "keyslots[1]: duplicate database '" DB_A "'" },
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                expect_refusal(cases[i].kind, cases[i].json, cases[i].message);
}

/* Whatever is wrong with a key, or around it, the message does not quote it: no eight characters of
 * it in a row. */
static void test_luks_key_never_echoed(void **state) {
        static const char *const keys[] = {
                "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tR=", /* unused bits set */
                "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tQ",  /* unpadded */
                "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3t==", /* 31 bytes */
                "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tQQ", /* 33 bytes */
                "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tQQQ=",
                "S3cr3t-S3cr3t_S3cr3tS3cr3tS3cr3tS3cr3tS3crQ=",
                "S3cr3tS3cr3tS3cr3tS3cr3t S3cr3tS3cr3tS3cr3tQ",
                "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3t\\u0001Q=",
                "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3t\\q",
        };
        /* The key goes between the two halves. */
        static const struct {
                const char *before, *after;
        } forms[] = {
                { "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [{\"database\": \"" DB_A "\", \"key\": \"", "\"}]}" },
                { "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [{\"key\": \"", "\", \"database\": \"x\"}]}" },
                { "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [{\"database\": \"" DB_A "\", \"key\": [\"", "\"]}]}" },
                { "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": [{\"database\": \"" DB_A "\", \"key\": \"", "\", \"k\": 1}]}" },
                { "{\"op\": \"inspect\", " LUKS_PATHS ", \"keys\": [{\"database\": \"" DB_A "\", \"key\": \"", "\"}]}" },
                { "{\"op\": \"unlock\", " LUKS_PATHS ", \"keys\": {\"database\": \"" DB_A "\", \"key\": \"", "\"}}" },
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                for (size_t f = 0; f < ELEMENTSOF(forms); f++) {
                        _cleanup_free_ char *json = xasprintf("%s%s%s", forms[f].before, keys[i], forms[f].after), *err = NULL;

                        if (decode_as(LUKS_REQUEST, json, strlen(json), &err) >= 0)
                                fail_msg("accepted: %s", json);
                        assert_non_null(err);
                        for (size_t at = 0; at + 8 <= strlen(keys[i]); at++)
                                if (memmem(err, strlen(err), keys[i] + at, 8))
                                        fail_msg("%s\n  quotes the key: %s", json, err);
                }
}

static void test_size_limit(void **state) {
        size_t n = WIRE_MAX_SIZE + 1;
        _cleanup_free_ char *big = xmalloc(n + 1), *err = NULL;
        _cleanup_free_ char *want = xasprintf("message is too large: %zu bytes, at most %u are accepted", n, WIRE_MAX_SIZE);

        (void) state;
        memset(big, ' ', n);
        big[n] = '\0';
        big[0] = '{';
        big[n - 1] = '}';
        assert_int_equal(decode_as(REPORT, big, n, &err), -E2BIG);
        assert_string_equal(err, want);
        free(TAKE_PTR(err));
        /* A NUL byte is named as such, not as trailing garbage. */
        assert_int_equal(decode_as(CA, "{}\0{}", 5, &err), -EBADMSG);
        assert_string_equal(err, "malformed JSON at offset 2: NUL byte");
}

/* ---- the bad-input corpus ------------------------------------------------------------------ */

static kind kind_of(const char *file) {
        static const struct {
                const char *prefix;
                kind kind;
        } kinds[] = {
                { "ca", CA }, { "enroll-request", ENROLL_REQUEST }, { "enroll-response", ENROLL_RESPONSE },
                { "push-response", PUSH_RESPONSE }, { "report", REPORT }, { "data-keys-request", DATA_KEYS_REQUEST },
                { "data-keys-response", DATA_KEYS_RESPONSE }, { "luks-request", LUKS_REQUEST },
                { "luks-response", LUKS_RESPONSE }, { "error", ERROR },
        };
        const char *rest = strchr(file, '-') + 1;

        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                size_t n = strlen(kinds[i].prefix);

                if (strncmp(rest, kinds[i].prefix, n) == 0 && (rest[n] == '-' || rest[n] == '.'))
                        return kinds[i].kind;
        }
        fail_msg("%s: name does not say which message it is", file);
        return CA;
}

static void test_corpus(void **state) {
        const char *top = getenv("top_srcdir") ? getenv("top_srcdir") : "../..";
        _cleanup_free_ char *dir = xasprintf("%s/tests/fuzz/corpus/wire", top);
        _cleanup_free_ char *expect_path = xasprintf("%s/tests/fuzz/corpus/wire.expect", top);
        _cleanup_fclose_ FILE *expect = fopen(expect_path, "re");
        _cleanup_free_ char *line = NULL;
        size_t cap = 0, n_bad = 0, n_expected = 0, n_valid = 0;
        DIR *d = opendir(dir);
        struct dirent *de;

        (void) state;
        assert_non_null(d);
        assert_non_null(expect);
        /* Every valid-* decodes; every bad-* is listed in wire.expect. */
        while ((de = readdir(d))) {
                _cleanup_free_ char *path = NULL, *json = NULL, *err = NULL;
                size_t size;

                if (de->d_name[0] == '.')
                        continue;
                path = xasprintf("%s/%s", dir, de->d_name);
                assert_int_equal(read_full_file(path, WIRE_MAX_SIZE, &json, &size), 0);
                if (strncmp(de->d_name, "valid-", 6) == 0) {
                        if (decode_as(kind_of(de->d_name), json, size, &err) < 0)
                                fail_msg("%s: %s", de->d_name, err);
                        n_valid++;
                } else if (strncmp(de->d_name, "bad-", 4) == 0)
                        n_bad++;
                else
                        fail_msg("%s: neither valid-* nor bad-*", de->d_name);
        }
        closedir(d);

        while (getline(&line, &cap, expect) > 0) {
                _cleanup_free_ char *path = NULL, *json = NULL, *err = NULL;
                char *tab;
                size_t size;

                line[strcspn(line, "\n")] = '\0';
                if (line[0] == '#' || line[0] == '\0')
                        continue;
                tab = strchr(line, '\t');
                assert_non_null(tab);
                *tab = '\0';
                path = xasprintf("%s/%s", dir, line);
                if (read_full_file(path, WIRE_MAX_SIZE, &json, &size) < 0)
                        fail_msg("%s: listed in wire.expect but missing", line);
                if (decode_as(kind_of(line), json, size, &err) >= 0)
                        fail_msg("%s: accepted", line);
                if (!streq(strempty(err), tab + 1))
                        fail_msg("%s\n  got:  %s\n  want: %s", line, strempty(err), tab + 1);
                n_expected++;
        }
        assert_true(n_valid > 0);
        assert_int_equal(n_bad, n_expected);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_token_parse),
                cmocka_unit_test(test_token_derivations),
                cmocka_unit_test(test_endpoint),
                cmocka_unit_test(test_ca_round_trip),
                cmocka_unit_test(test_enroll_round_trip),
                cmocka_unit_test(test_push_response_round_trip),
                cmocka_unit_test(test_data_keys_round_trip),
                cmocka_unit_test(test_data_keys_limits),
                cmocka_unit_test(test_luks_round_trip),
                cmocka_unit_test(test_luks_limits),
                cmocka_unit_test(test_report),
                cmocka_unit_test(test_error_message),
                cmocka_unit_test(test_refusals),
                cmocka_unit_test(test_luks_key_never_echoed),
                cmocka_unit_test(test_size_limit),
                cmocka_unit_test(test_corpus),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
