/* Mutual-TLS fixtures for the unit tests (mtls-fixture.h). */
#include "unit.h"

#include <ftw.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mtls-fixture.h"
#include "x509.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(SSL_CTX *, SSL_CTX_free);

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value) {
        X509V3_CTX ctx;
        X509_EXTENSION *e;

        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
        e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
}

X509 *fixture_make_cert(EVP_PKEY *key, const char *name, const char *domain, X509 *issuer, EVP_PKEY *issuer_key) {
        X509 *x = X509_new();
        X509_NAME *subject;
        _cleanup_free_ char *san = NULL, *permitted = NULL;

        assert_non_null(x);
        assert_int_equal(X509_set_version(x, 2), 1);
        assert_int_equal(x509_set_random_serial(x), 0);
        assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -60));
        assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
        assert_int_equal(X509_set_pubkey(x, key), 1);
        subject = X509_get_subject_name(x);
        assert_int_equal(X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *) name, -1,
                                                    -1, 0),
                         1);
        assert_int_equal(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : subject), 1);
        add_ext(x, issuer, NID_subject_key_identifier, "hash");
        if (!issuer) {
                permitted = xasprintf("critical,permitted;DNS:%s", domain);
                add_ext(x, NULL, NID_basic_constraints, "critical,CA:TRUE");
                add_ext(x, NULL, NID_key_usage, "critical,keyCertSign,cRLSign");
                add_ext(x, NULL, NID_name_constraints, permitted);
        } else {
                san = xasprintf("DNS:%s", name);
                add_ext(x, issuer, NID_authority_key_identifier, "keyid:always");
                add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
                add_ext(x, issuer, NID_key_usage, "critical,digitalSignature");
                add_ext(x, issuer, NID_ext_key_usage, "serverAuth,clientAuth");
                add_ext(x, issuer, NID_subject_alt_name, san);
        }
        assert_true(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
        return x;
}

void fixture_write_pem(const char *path, X509 *x, EVP_PKEY *k) {
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        if (x)
                assert_int_equal(PEM_write_X509(f, x), 1);
        if (k)
                assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
        assert_int_equal(fclose(f), 0);
}

identity fixture_issue(const char *dir, const char *name, X509 *ca, EVP_PKEY *ca_key, const char *tag) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = x509_generate_ec_key();
        _cleanup_(X509_freep) X509 *x = NULL;
        identity id = {
                .cert = xasprintf("%s/%s.crt", dir, tag),
                .key = xasprintf("%s/%s.key", dir, tag),
        };

        assert_non_null(k);
        x = fixture_make_cert(k, name, NULL, ca, ca_key);
        fixture_write_pem(id.cert, x, NULL);
        fixture_write_pem(id.key, NULL, k);
        return id;
}

void identity_done(identity *id) {
        free(id->cert);
        free(id->key);
        *id = (identity) {};
}

void fixture_init(void) {
        assert_int_equal(evthread_use_pthreads(), 0);
        setenv("https_proxy", "http://127.0.0.1:9", 1);
        setenv("HTTPS_PROXY", "http://127.0.0.1:9", 1);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) flag, (void) ftw;
        return remove(path);
}

void fixture_remove_tree(const char *dir) {
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void *run_loop(void *arg) {
        test_server *s = arg;

        event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
        return NULL;
}

void test_server_init(test_server *s, const identity *id, const char *ca_file, bool require_client_cert,
                      const https_limits *limits) {
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = NULL;
        _cleanup_free_ char *err = NULL;

        *s = (test_server) {};
        if (mtls_server_ctx(id->cert, id->key, ca_file, require_client_cert, &ctx, &err) < 0)
                fail_msg("%s", err);
        s->base = event_base_new();
        assert_non_null(s->base);
        s->https = https_server_new(s->base, ctx, limits);
        assert_non_null(s->https);
        if (https_server_listen(s->https, "127.0.0.1:0", &s->port, &err) < 0)
                fail_msg("%s", err);
        assert_true(s->port > 0);
}

void test_server_run(test_server *s) {
        assert_int_equal(pthread_create(&s->thread, NULL, run_loop, s), 0);
}

void test_server_stop(test_server *s) {
        event_base_loopbreak(s->base);
        assert_int_equal(pthread_join(s->thread, NULL), 0);
        https_server_free(s->https);
        /* Closing connections finishes in the loop (libevent's deferred callbacks and finalizers). */
        event_base_loop(s->base, EVLOOP_NONBLOCK);
        event_base_free(s->base);
        *s = (test_server) {};
}

char *test_server_url(const test_server *s, const char *path) {
        return xasprintf("https://127.0.0.1:%d%s", s->port, path);
}
