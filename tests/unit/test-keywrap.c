/* Unit tests for wrapped data keys: the round trip for each kind of host key, refusal of another
 * host's key, of every changed byte, of another context and of malformed text, fresh output on
 * every seal, and a blob made by an independent implementation of the format in keywrap.h
 * (Python's cryptography package) that must open here. */
#include "unit.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include "keywrap.h"
#include "x509.h"

#define CONTEXT "acme/payments/prod/ledger/accounts-db"
#define REJECTED "the wrapped key does not open with this host's key (another host's, or tampered)"

typedef struct {
        EVP_PKEY *p256, *p256_other, *x25519, *x25519_other, *rsa, *rsa_other;
} keys;

static const unsigned char data_key[KEYWRAP_KEY_SIZE] = {
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
        0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87, 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0xff,
};

static int setup(void **state) {
        keys *k = xcalloc(1, sizeof(*k));

        k->p256 = x509_generate_ec_key(); /* what agent/enroll.c makes for host.key */
        k->p256_other = x509_generate_ec_key();
        k->x25519 = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
        k->x25519_other = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
        k->rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
        k->rsa_other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
        if (!k->p256 || !k->p256_other || !k->x25519 || !k->x25519_other || !k->rsa || !k->rsa_other)
                return -1;
        *state = k;
        return 0;
}

static int teardown(void **state) {
        keys *k = *state;

        EVP_PKEY_free(k->p256);
        EVP_PKEY_free(k->p256_other);
        EVP_PKEY_free(k->x25519);
        EVP_PKEY_free(k->x25519_other);
        EVP_PKEY_free(k->rsa);
        EVP_PKEY_free(k->rsa_other);
        free(k);
        return 0;
}

/* The public half only, as the controller holds it (from the host's certificate). */
static EVP_PKEY *public_only(EVP_PKEY *k) {
        unsigned char *der = NULL;
        const unsigned char *p;
        int n = i2d_PUBKEY(k, &der);
        EVP_PKEY *pub;

        assert_true(n > 0);
        p = der;
        pub = d2i_PUBKEY(NULL, &p, n);
        OPENSSL_free(der);
        assert_non_null(pub);
        return pub;
}

static char *seal(EVP_PKEY *k, const char *context) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = public_only(k);
        char *b64 = NULL, *error = NULL;

        assert_int_equal(keywrap_seal(pub, context, data_key, &b64, &error), 0);
        assert_null(error);
        assert_non_null(b64);
        return b64;
}

/* Opening must fail with r and message, and leave ret_key as it was. */
static void open_fails(EVP_PKEY *k, const char *context, const char *b64, int r, const char *message) {
        _cleanup_free_ char *error = NULL;
        unsigned char out[KEYWRAP_KEY_SIZE];

        memset(out, 0xaa, sizeof(out));
        assert_int_equal(keywrap_open(k, context, b64, out, &error), r);
        assert_non_null(error);
        if (message)
                assert_string_equal(error, message);
        for (size_t i = 0; i < sizeof(out); i++)
                assert_int_equal(out[i], 0xaa);
}

static void round_trip(EVP_PKEY *k, int alg, size_t enc_size) {
        _cleanup_free_ char *b64 = seal(k, CONTEXT), *error = NULL;
        unsigned char out[KEYWRAP_KEY_SIZE], blob[4096];
        int n;

        assert_int_equal(keywrap_open(k, CONTEXT, b64, out, &error), 0);
        assert_null(error);
        assert_memory_equal(out, data_key, sizeof(out));

        /* The documented layout. */
        n = EVP_DecodeBlock(blob, (const unsigned char *) b64, (int) strlen(b64));
        assert_true(n > 4);
        assert_int_equal(blob[0], KEYWRAP_VERSION);
        assert_int_equal(blob[1], alg);
        assert_int_equal((size_t) blob[2] << 8 | blob[3], enc_size);
        assert_int_equal(strlen(b64), 4 * ((4 + enc_size + 12 + 32 + 16 + 2) / 3));
        /* The data key does not appear in the blob. */
        assert_null(memmem(blob, (size_t) n, data_key, 8));
}

static void test_round_trip(void **state) {
        keys *k = *state;

        round_trip(k->p256, KEYWRAP_ALG_P256, 65);
        round_trip(k->x25519, KEYWRAP_ALG_X25519, 32);
        round_trip(k->rsa, KEYWRAP_ALG_RSA_OAEP_SHA256, 256);
}

/* A host key read back from PEM, as the agent reads host.key. */
static void test_host_key_pem(void **state) {
        keys *k = *state;
        size_t size;
        char *pem = x509_key_to_pem(k->p256, &size);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *loaded = NULL;
        _cleanup_free_ char *b64 = seal(k->p256, CONTEXT), *error = NULL;
        unsigned char out[KEYWRAP_KEY_SIZE];

        assert_non_null(pem);
        assert_int_equal(x509_key_from_pem(pem, size, &loaded, &error), 0);
        explicit_bzero(pem, size);
        free(pem);
        assert_int_equal(keywrap_open(loaded, CONTEXT, b64, out, &error), 0);
        assert_memory_equal(out, data_key, sizeof(out));
}

static void test_wrong_key(void **state) {
        keys *k = *state;
        EVP_PKEY *const all[] = { k->p256, k->x25519, k->rsa };
        EVP_PKEY *const other[] = { k->p256_other, k->x25519_other, k->rsa_other };

        for (size_t i = 0; i < ELEMENTSOF(all); i++) {
                _cleanup_free_ char *b64 = seal(all[i], CONTEXT);

                /* Another host's key of the same kind, and keys of the other kinds. */
                open_fails(other[i], CONTEXT, b64, -EKEYREJECTED, REJECTED);
                for (size_t j = 0; j < ELEMENTSOF(all); j++)
                        if (j != i)
                                open_fails(all[j], CONTEXT, b64, -EKEYREJECTED, REJECTED);
        }
}

/* Every byte of the blob changed in turn (three ways), and every character of the text replaced:
 * refused each time, never a key handed out. */
static void tamper(EVP_PKEY *k) {
        _cleanup_free_ char *b64 = seal(k, CONTEXT);
        static const unsigned char flips[] = { 0x01, 0x80, 0xff };
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
        size_t len = strlen(b64), size;
        unsigned char blob[4096];
        char text[8192];

        size = (size_t) EVP_DecodeBlock(blob, (const unsigned char *) b64, (int) len) - (b64[len - 1] == '=') -
               (b64[len - 2] == '=');
        for (size_t i = 0; i < size; i++)
                for (size_t f = 0; f < ELEMENTSOF(flips); f++) {
                        int r;
                        _cleanup_free_ char *error = NULL;
                        unsigned char out[KEYWRAP_KEY_SIZE];

                        blob[i] ^= flips[f];
                        EVP_EncodeBlock((unsigned char *) text, blob, (int) size);
                        blob[i] ^= flips[f];
                        r = keywrap_open(k, CONTEXT, text, out, &error);
                        if (r != -EKEYREJECTED && r != -EBADMSG)
                                fail_msg("byte %zu ^ 0x%02x: keywrap_open returned %d", i, flips[f], r);
                        /* Past the header, the structure is intact: only the key can tell. */
                        if (i >= 4 && !(i == 4 && EVP_PKEY_get_base_id(k) == EVP_PKEY_EC))
                                assert_int_equal(r, -EKEYREJECTED);
                }
        /* Three other characters per position (a neighbour, one far off, padding): the whole
         * alphabet everywhere costs seconds of RSA for nothing more. */
        for (size_t i = 0; i < len; i++) {
                size_t at = (size_t) (strchr(alphabet, b64[i]) - alphabet);
                const char others[] = { alphabet[(at + 1) % 64], alphabet[(at + 32) % 64], '=' };

                for (size_t j = 0; j < ELEMENTSOF(others); j++) {
                        unsigned char out[KEYWRAP_KEY_SIZE];
                        _cleanup_free_ char *error = NULL;

                        if (others[j] == b64[i])
                                continue;
                        memcpy(text, b64, len + 1);
                        text[i] = others[j];
                        assert_int_not_equal(keywrap_open(k, CONTEXT, text, out, &error), 0);
                }
        }
}

static void test_tamper(void **state) {
        keys *k = *state;

        tamper(k->p256);
        tamper(k->x25519);
        tamper(k->rsa);
}

static void test_wrong_context(void **state) {
        keys *k = *state;
        EVP_PKEY *const all[] = { k->p256, k->x25519, k->rsa };
        static const char *const others[] = {
                "acme/payments/prod/ledger/accounts-db2", "acme/payments/prod/ledger/accounts-d",
                "acme/payments/staging/ledger/accounts-db", "Acme/payments/prod/ledger/accounts-db",
        };

        for (size_t i = 0; i < ELEMENTSOF(all); i++) {
                _cleanup_free_ char *b64 = seal(all[i], CONTEXT);

                for (size_t j = 0; j < ELEMENTSOF(others); j++)
                        open_fails(all[i], others[j], b64, -EKEYREJECTED, REJECTED);
        }
}

static void test_malformed(void **state) {
        keys *k = *state;
        _cleanup_free_ char *b64 = seal(k->p256, CONTEXT);
        size_t len = strlen(b64), size;
        unsigned char blob[4096];
        char text[8192];
        static const char *const bad[] = {
                "", "====", "not base64!", "AAAA", "AQEAQQ==", "AQEAQR==", /* non-canonical padding bits */
                "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                open_fails(k->p256, CONTEXT, bad[i], -EBADMSG, NULL);
        open_fails(k->p256, CONTEXT, NULL, -EBADMSG, "the wrapped key is not base64 text");

        /* Every truncation of the text, and blanks around it (one spelling only). */
        for (size_t n = 0; n < len; n++) {
                memcpy(text, b64, n);
                text[n] = 0;
                open_fails(k->p256, CONTEXT, text, -EBADMSG, NULL);
        }
        snprintf(text, sizeof(text), "%s\n", b64);
        open_fails(k->p256, CONTEXT, text, -EBADMSG, NULL);
        snprintf(text, sizeof(text), " %s", b64);
        open_fails(k->p256, CONTEXT, text, -EBADMSG, NULL);

        /* Every truncation of the blob, and one byte too many. */
        size = (size_t) EVP_DecodeBlock(blob, (const unsigned char *) b64, (int) len) - (b64[len - 1] == '=') -
               (b64[len - 2] == '=');
        for (size_t n = 1; n < size; n++) {
                EVP_EncodeBlock((unsigned char *) text, blob, (int) n);
                open_fails(k->p256, CONTEXT, text, -EBADMSG, NULL);
        }
        blob[size] = 0;
        EVP_EncodeBlock((unsigned char *) text, blob, (int) size + 1);
        open_fails(k->p256, CONTEXT, text, -EBADMSG, "the wrapped key has the wrong length (truncated?)");

        /* Unknown version and algorithm. */
        blob[0] = 2;
        EVP_EncodeBlock((unsigned char *) text, blob, (int) size);
        open_fails(k->p256, CONTEXT, text, -EBADMSG, "the wrapped key has unknown version 2");
        blob[0] = 1;
        blob[1] = 9;
        EVP_EncodeBlock((unsigned char *) text, blob, (int) size);
        open_fails(k->p256, CONTEXT, text, -EBADMSG, "the wrapped key has unknown algorithm 9");
        /* A compressed point: the one encoding we write is uncompressed. */
        blob[1] = KEYWRAP_ALG_P256;
        blob[4] = 0x02;
        EVP_EncodeBlock((unsigned char *) text, blob, (int) size);
        open_fails(k->p256, CONTEXT, text, -EBADMSG, "the wrapped key's ephemeral key has the wrong size");
}

static void test_fresh(void **state) {
        keys *k = *state;
        EVP_PKEY *const all[] = { k->p256, k->x25519, k->rsa };

        for (size_t i = 0; i < ELEMENTSOF(all); i++) {
                _cleanup_free_ char *a = seal(all[i], CONTEXT), *b = seal(all[i], CONTEXT);
                unsigned char blob_a[4096], blob_b[4096];
                size_t n = strlen(a), enc = (size_t) EVP_PKEY_get_size(all[i]);

                assert_string_not_equal(a, b);
                /* Not only somewhere: the ephemeral key (or RSA secret), the nonce and the
                 * ciphertext all differ. */
                EVP_DecodeBlock(blob_a, (const unsigned char *) a, (int) n);
                EVP_DecodeBlock(blob_b, (const unsigned char *) b, (int) n);
                enc = (size_t) blob_a[2] << 8 | blob_a[3];
                assert_memory_not_equal(blob_a + 4, blob_b + 4, enc);
                assert_memory_not_equal(blob_a + 4 + enc, blob_b + 4 + enc, 12);
                assert_memory_not_equal(blob_a + 4 + enc + 12, blob_b + 4 + enc + 12, 32);
        }
}

static void test_refused_keys(void **state) {
        keys *k = *state;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 1024);
        char *b64 = NULL;
        char too_long[KEYWRAP_CONTEXT_MAX + 2];

        struct {
                EVP_PKEY *key;
                const char *message;
        } cases[] = {
                { ed, "a key of type ED25519 cannot receive wrapped keys (EC P-256, X25519 or RSA only)" },
                { p384, "an EC key on curve 'secp384r1' cannot receive wrapped keys (P-256 only)" },
                { rsa1024, "an RSA key of 1024 bits cannot receive wrapped keys (2048 to 16384 bits)" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *error = NULL;

                assert_non_null(cases[i].key);
                assert_int_equal(keywrap_seal(cases[i].key, CONTEXT, data_key, &b64, &error), -EOPNOTSUPP);
                assert_string_equal(error, cases[i].message);
                assert_null(b64);
        }

        memset(too_long, 'a', sizeof(too_long) - 1);
        too_long[sizeof(too_long) - 1] = 0;
        const char *const contexts[] = { NULL, "", too_long };
        for (size_t i = 0; i < ELEMENTSOF(contexts); i++) {
                _cleanup_free_ char *error = NULL;

                assert_int_equal(keywrap_seal(k->p256, contexts[i], data_key, &b64, &error), -EINVAL);
                assert_string_equal(error, "the key-wrap context must be 1 to 1024 bytes");
                assert_null(b64);
        }
        too_long[KEYWRAP_CONTEXT_MAX] = 0; /* exactly the maximum */
        {
                _cleanup_free_ char *wrapped = seal(k->x25519, too_long), *error = NULL;
                unsigned char out[KEYWRAP_KEY_SIZE];

                assert_int_equal(keywrap_open(k->x25519, too_long, wrapped, out, &error), 0);
                assert_memory_equal(out, data_key, sizeof(out));
                open_fails(k->x25519, CONTEXT, wrapped, -EKEYREJECTED, REJECTED);
        }

        /* Opening needs the private key. */
        EVP_PKEY *const all[] = { k->p256, k->x25519, k->rsa };
        for (size_t i = 0; i < ELEMENTSOF(all); i++) {
                _cleanup_free_ char *wrapped = seal(all[i], CONTEXT);
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *pub = public_only(all[i]);

                open_fails(pub, CONTEXT, wrapped, -EINVAL, "cannot open a wrapped key with a public key");
        }
        /* The error is optional. */
        assert_int_equal(keywrap_seal(ed, CONTEXT, data_key, &b64, NULL), -EOPNOTSUPP);
        assert_int_equal(ERR_peek_error(), 0);
}

#include "keywrap-vectors.h"

/* Blobs made by tests/unit/keywrap-vectors.py from the format as keywrap.h documents it. */
static void test_independent_vectors(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(vectors); i++) {
                _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
                _cleanup_free_ char *error = NULL;
                unsigned char out[KEYWRAP_KEY_SIZE];

                assert_int_equal(x509_key_from_pem(vectors[i].key_pem, strlen(vectors[i].key_pem), &key, &error), 0);
                if (keywrap_open(key, vectors[i].context, vectors[i].wrapped, out, &error) != 0)
                        fail_msg("vector %zu (%s): %s", i, vectors[i].name, error);
                assert_memory_equal(out, vectors[i].data_key, sizeof(out));
                open_fails(key, "acme/other", vectors[i].wrapped, -EKEYREJECTED, REJECTED);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_round_trip),     cmocka_unit_test(test_host_key_pem),
                cmocka_unit_test(test_wrong_key),      cmocka_unit_test(test_tamper),
                cmocka_unit_test(test_wrong_context),  cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_fresh),          cmocka_unit_test(test_refused_keys),
                cmocka_unit_test(test_independent_vectors),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
