/* Unit tests for the controller's CA: creation as init does it (modes, never replacing a key, the
 * certificate's constraints), signing (names, key usage, lifetime, a chain that verifies with
 * X509_verify_cert and X509_check_host) and every refusal: foreign names, CA requests, altered
 * requests, names outside the CA's domain, non-DNS names, weak keys, lifetimes. The mutual-TLS
 * identities: the controller's certificate (created once, kept) and a host's, named by the
 * controller whatever its request asks for. */
#include "unit.h"

#include <ftw.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509_vfy.h>

#include "ca.h"
#include "fileio.h"
#include "x509.h"

#define DB_NAME "accounts-db.login-svc.development.retail-banking.fincorp.infrastream.internal"
#define SHORT_NAME "db1.infrastream.internal"

DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE *, X509_STORE_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE_CTX *, X509_STORE_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BASIC_CONSTRAINTS *, BASIC_CONSTRAINTS_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(NAME_CONSTRAINTS *, NAME_CONSTRAINTS_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_BIT_STRING *, ASN1_BIT_STRING_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EXTENDED_KEY_USAGE *, EXTENDED_KEY_USAGE_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(AUTHORITY_KEYID *, AUTHORITY_KEYID_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(ASN1_OCTET_STRING *, ASN1_OCTET_STRING_free);

typedef struct fixture {
        char dir[64];
        ca *ca;
        X509 *ca_cert;
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static char *path_in(const char *dir, const char *name) {
        return xasprintf("%s/%s", dir, name);
}

static X509 *load_cert_file(const char *path) {
        _cleanup_free_ char *pem = NULL;
        X509 *x = NULL;

        assert_int_equal(read_full_file(path, X509_PEM_MAX, &pem, NULL), 0);
        assert_int_equal(x509_cert_from_pem(pem, &x, NULL), 0);
        return x;
}

static int setup(void **state) {
        fixture *f = xcalloc(1, sizeof(fixture));
        _cleanup_free_ char *err = NULL, *crt = NULL;

        strcpy(f->dir, "/tmp/test-ca.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        assert_int_equal(ca_create(f->dir, "infrastream.internal", &err), 1);
        assert_int_equal(ca_load(f->dir, &f->ca, &err), 0);
        crt = path_in(f->dir, CA_CERT_FILE);
        f->ca_cert = load_cert_file(crt);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture *f = *state;

        ca_free(f->ca);
        X509_free(f->ca_cert);
        nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

/* A certificate request as a host (or an attacker) would make one. */
typedef struct req_spec {
        const char *const *san;       /* DNS names */
        size_t n_san;
        const char *cn;               /* NULL: empty subject */
        const char *ip;               /* an IP subjectAltName as well */
        bool ca;                      /* basicConstraints CA:TRUE */
        EVP_PKEY *key;                /* NULL: a new P-256 key */
} req_spec;

static char *make_csr(const req_spec *s) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        _cleanup_(X509_NAME_freep) X509_NAME *name = X509_NAME_new();
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *own = s->key ? NULL : x509_generate_ec_key();
        EVP_PKEY *key = s->key ? s->key : own;
        STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
        char *pem;

        assert_non_null(req);
        assert_non_null(key);
        if (s->cn)
                assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) s->cn, -1,
                                                            -1, 0),
                                 1);
        assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
        assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
        if (s->n_san || s->ip) {
                GENERAL_NAMES *gens = x509_dns_general_names(s->san, s->n_san);
                assert_non_null(gens);
                if (s->ip) {
                        GENERAL_NAME *g = a2i_GENERAL_NAME(NULL, NULL, NULL, GEN_IPADD, s->ip, 0);
                        assert_non_null(g);
                        sk_GENERAL_NAME_push(gens, g);
                }
                assert_int_equal(X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT), 1);
                GENERAL_NAMES_free(gens);
        }
        if (s->ca) {
                X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
                assert_non_null(e);
                sk_X509_EXTENSION_push(exts, e);
        }
        if (sk_X509_EXTENSION_num(exts) > 0)
                assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
        pem = x509_req_to_pem(req);
        assert_non_null(pem);
        return pem;
}

static X509 *sign_ok(fixture *f, const char *csr, const char *const *allowed, size_t n, int64_t lifetime) {
        _cleanup_free_ char *pem = NULL, *err = NULL;
        X509 *x = NULL;
        int r = ca_sign_csr(f->ca, csr, allowed, n, "host 'db1'", lifetime, &pem, &err);

        if (r < 0)
                fail_msg("signing refused: %s", err);
        assert_int_equal(x509_cert_from_pem(pem, &x, NULL), 0);
        return x;
}

/* ca_sign_csr refuses with r and a message containing want. */
static void refused(fixture *f, const char *csr, const char *const *allowed, size_t n, const char *holder, int r,
                    const char *want) {
        _cleanup_free_ char *pem = NULL, *err = NULL;

        assert_int_equal(ca_sign_csr(f->ca, csr, allowed, n, holder, CA_CERT_LIFETIME_DEFAULT, &pem, &err), r);
        assert_null(pem);
        assert_non_null(err);
        if (!strstr(err, want))
                fail_msg("message '%s' does not contain '%s'", err, want);
}

static int verify_chain(X509 *leaf, X509 *ca_cert) {
        _cleanup_(X509_STORE_freep) X509_STORE *store = X509_STORE_new();
        _cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = X509_STORE_CTX_new();

        assert_int_equal(X509_STORE_add_cert(store, ca_cert), 1);
        assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, NULL), 1);
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
        X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_X509_STRICT);
        if (X509_verify_cert(ctx) == 1)
                return 0;
        return X509_STORE_CTX_get_error(ctx);
}

static void test_create(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *key = path_in(f->dir, CA_KEY_FILE), *crt = path_in(f->dir, CA_CERT_FILE),
                            *before = NULL, *after = NULL, *err = NULL, *kpem = NULL, *subject = NULL, *cn = NULL;
        _cleanup_(BASIC_CONSTRAINTS_freep) BASIC_CONSTRAINTS *bc = NULL;
        _cleanup_(NAME_CONSTRAINTS_freep) NAME_CONSTRAINTS *nc = NULL;
        _cleanup_(ASN1_BIT_STRING_freep) ASN1_BIT_STRING *ku = NULL;
        _cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *ski = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        time_t nb, na, now = time(NULL);
        char fp[65], key_fp[65], group[32];
        size_t ksize;
        struct stat st;
        int crit = -1;

        assert_int_equal(stat(key, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(stat(crt, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        assert_string_equal(ca_domain(f->ca), "infrastream.internal");

        /* init again: both kept, byte for byte. */
        assert_int_equal(read_full_file(key, X509_PEM_MAX, &before, NULL), 0);
        assert_int_equal(ca_create(f->dir, "infrastream.internal", &err), 0);
        assert_int_equal(read_full_file(key, X509_PEM_MAX, &after, NULL), 0);
        assert_string_equal(before, after);

        /* The key: PKCS#8 PEM, EC P-256. */
        assert_non_null(strstr(before, "-----BEGIN PRIVATE KEY-----"));
        assert_int_equal(read_full_file(key, X509_PEM_MAX, &kpem, &ksize), 0);
        assert_int_equal(x509_key_from_pem(kpem, ksize, &pkey, NULL), 0);
        explicit_bzero(kpem, ksize);
        assert_int_equal(EVP_PKEY_get_utf8_string_param(pkey, "group", group, sizeof(group), NULL), 1);
        assert_string_equal(group, "prime256v1");

        /* Self-signed, version 3, 10 years, CN from the key's fingerprint. */
        assert_int_equal(X509_get_version(f->ca_cert), X509_VERSION_3);
        assert_int_equal(X509_verify(f->ca_cert, X509_get0_pubkey(f->ca_cert)), 1);
        assert_int_equal(X509_NAME_cmp(X509_get_subject_name(f->ca_cert), X509_get_issuer_name(f->ca_cert)), 0);
        assert_int_equal(x509_validity(f->ca_cert, &nb, &na), 0);
        assert_true(nb <= now && nb >= now - CA_BACKDATE_MAX - 5);
        assert_true(na >= now + (time_t) CA_LIFETIME_DAYS * 86400 - 5 && na <= now + (time_t) CA_LIFETIME_DAYS * 86400 + 5);
        assert_int_equal(x509_key_fingerprint(pkey, key_fp), 0);
        cn = xasprintf("CN=Infrastream CA %.8s", key_fp);
        subject = x509_subject_line(f->ca_cert);
        assert_string_equal(subject, cn);
        /* A random serial: positive, 8 to 16 octets (127 random bits). */
        assert_true(ASN1_STRING_length(X509_get0_serialNumber(f->ca_cert)) <= 16);
        assert_true(ASN1_STRING_length(X509_get0_serialNumber(f->ca_cert)) >= 8);
        assert_int_equal(ASN1_STRING_type(X509_get0_serialNumber(f->ca_cert)), V_ASN1_INTEGER);

        /* basicConstraints critical CA:TRUE pathlen:0 */
        bc = X509_get_ext_d2i(f->ca_cert, NID_basic_constraints, &crit, NULL);
        assert_non_null(bc);
        assert_int_equal(crit, 1);
        assert_true(bc->ca);
        assert_non_null(bc->pathlen);
        assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
        /* keyUsage critical keyCertSign + cRLSign, nothing else */
        ku = X509_get_ext_d2i(f->ca_cert, NID_key_usage, &crit, NULL);
        assert_non_null(ku);
        assert_int_equal(crit, 1);
        assert_int_equal(X509_get_key_usage(f->ca_cert), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
        /* subjectKeyIdentifier */
        ski = X509_get_ext_d2i(f->ca_cert, NID_subject_key_identifier, &crit, NULL);
        assert_non_null(ski);
        assert_int_equal(crit, 0);
        /* nameConstraints critical: permitted DNS:infrastream.internal; every IP excluded */
        nc = X509_get_ext_d2i(f->ca_cert, NID_name_constraints, &crit, NULL);
        assert_non_null(nc);
        assert_int_equal(crit, 1);
        assert_int_equal(sk_GENERAL_SUBTREE_num(nc->permittedSubtrees), 1);
        {
                GENERAL_SUBTREE *t = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, 0);
                assert_int_equal(t->base->type, GEN_DNS);
                assert_memory_equal(ASN1_STRING_get0_data(t->base->d.dNSName), "infrastream.internal", 20);
                assert_int_equal(ASN1_STRING_length(t->base->d.dNSName), 20);
        }
        assert_int_equal(sk_GENERAL_SUBTREE_num(nc->excludedSubtrees), 2);
        for (int i = 0; i < 2; i++)
                assert_int_equal(sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, i)->base->type, GEN_IPADD);

        /* ca show's data */
        {
                _cleanup_free_ char *s = NULL;
                time_t b, a;
                assert_int_equal(ca_describe(f->ca, &s, fp, &b, &a), 0);
                assert_string_equal(s, cn);
                assert_int_equal(strlen(fp), 64);
                assert_int_equal(a, na);
        }
}

static void test_create_other_domain_and_errors(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *err = NULL, *d2 = xasprintf("%s/two", f->dir), *d3 = xasprintf("%s/three", f->dir),
                            *key = NULL, *crt = NULL;
        ca *c = NULL;

        assert_int_equal(mkdir(d2, 0700), 0);
        assert_int_equal(ca_create(d2, "corp.example", &err), 1);
        assert_int_equal(ca_load(d2, &c, &err), 0);
        assert_string_equal(ca_domain(c), "corp.example");
        ca_free(c);
        c = NULL;

        /* A key readable by others is refused. */
        key = path_in(d2, CA_KEY_FILE);
        assert_int_equal(chmod(key, 0640), 0);
        assert_int_equal(ca_load(d2, &c, &err), -EPERM);
        assert_non_null(strstr(err, "accessible to other users (mode 0640)"));
        free(TAKE_PTR(err));

        /* A certificate whose key is lost is never silently replaced by a new CA. */
        assert_int_equal(unlink(key), 0);
        assert_int_equal(ca_create(d2, "corp.example", &err), -ENOKEY);
        assert_non_null(strstr(err, "the CA's key is lost"));
        free(TAKE_PTR(err));

        /* A crash between key and certificate: the next init certifies the key there is. */
        assert_int_equal(mkdir(d3, 0700), 0);
        assert_int_equal(ca_create(d3, "infrastream.internal", &err), 1);
        crt = path_in(d3, CA_CERT_FILE);
        assert_int_equal(unlink(crt), 0);
        assert_int_equal(ca_create(d3, "infrastream.internal", &err), 1);
        assert_int_equal(ca_load(d3, &c, &err), 0);
        ca_free(c);
        c = NULL;

        /* No CA at all, and domains that are not DNS names. */
        assert_int_equal(ca_load(d2, &c, &err), -ENOENT);
        assert_non_null(strstr(err, "run 'infrastream-controller init'"));
        free(TAKE_PTR(err));
        assert_int_equal(ca_create(d2, "bad domain", &err), -EINVAL);
        free(TAKE_PTR(err));
        assert_int_equal(ca_create(d2, "*.example", &err), -EINVAL);
        free(TAKE_PTR(err));
        assert_int_equal(ca_create(d2, "trailing.", &err), -EINVAL);
}

static void test_sign(void **state) {
        fixture *f = *state;
        static const char *const names[] = { DB_NAME, "accounts-db-ro.infrastream.internal" };
        static const char *const allowed[] = { "accounts-db-ro.infrastream.internal", "spare.infrastream.internal",
                                               DB_NAME };
        req_spec spec = { .san = names, .n_san = 2 };
        _cleanup_free_ char *csr = make_csr(&spec);
        _cleanup_(X509_freep) X509 *x = sign_ok(f, csr, allowed, 3, CA_CERT_LIFETIME_DEFAULT), *y = NULL;
        _cleanup_(BASIC_CONSTRAINTS_freep) BASIC_CONSTRAINTS *bc = NULL;
        _cleanup_(EXTENDED_KEY_USAGE_freep) EXTENDED_KEY_USAGE *eku = NULL;
        _cleanup_(AUTHORITY_KEYID_freep) AUTHORITY_KEYID *aki = NULL;
        _cleanup_(ASN1_OCTET_STRING_freep) ASN1_OCTET_STRING *ski = NULL, *leaf_ski = NULL;
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *san = NULL;
        _cleanup_(ASN1_BIT_STRING_freep) ASN1_BIT_STRING *ku = NULL;
        _cleanup_free_ char *subject = NULL, *s1 = NULL, *s2 = NULL;
        char **got = NULL;
        size_t n_got = 0;
        time_t nb, na, now = time(NULL);
        int crit = -1;

        /* The names, exactly and in order; none of the others allowed. The first is longer than a
         * commonName may be: empty subject, critical subjectAltName. */
        assert_int_equal(x509_cert_dns_names(x, &got, &n_got, NULL), 0);
        assert_int_equal(n_got, 2);
        assert_string_equal(got[0], DB_NAME);
        assert_string_equal(got[1], "accounts-db-ro.infrastream.internal");
        x509_names_free(got, n_got);
        subject = x509_subject_line(x);
        assert_string_equal(subject, "CN=accounts-db-ro.infrastream.internal");
        san = X509_get_ext_d2i(x, NID_subject_alt_name, &crit, NULL);
        assert_non_null(san);
        assert_int_equal(crit, 0);

        /* Issuer, version, signature algorithm. */
        assert_int_equal(X509_get_version(x), X509_VERSION_3);
        assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(x), X509_get_subject_name(f->ca_cert)), 0);
        assert_int_equal(X509_get_signature_nid(x), NID_ecdsa_with_SHA256);
        assert_int_equal(X509_verify(x, X509_get0_pubkey(f->ca_cert)), 1);

        /* Lifetime: now - 5 min .. now + 90 days. */
        assert_int_equal(x509_validity(x, &nb, &na), 0);
        assert_true(nb >= now - CA_BACKDATE_MAX - 5 && nb <= now - CA_BACKDATE_MAX + 5);
        assert_true(na >= now + CA_CERT_LIFETIME_DEFAULT - 5 && na <= now + CA_CERT_LIFETIME_DEFAULT + 5);

        /* CA:FALSE (critical), KU digitalSignature (critical), EKU serverAuth only. */
        bc = X509_get_ext_d2i(x, NID_basic_constraints, &crit, NULL);
        assert_non_null(bc);
        assert_int_equal(crit, 1);
        assert_false(bc->ca);
        assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
        ku = X509_get_ext_d2i(x, NID_key_usage, &crit, NULL);
        assert_non_null(ku);
        assert_int_equal(crit, 1);
        eku = X509_get_ext_d2i(x, NID_ext_key_usage, &crit, NULL);
        assert_non_null(eku);
        assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
        assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_server_auth);

        /* AKI names the CA's SKI; the leaf has its own SKI. */
        aki = X509_get_ext_d2i(x, NID_authority_key_identifier, &crit, NULL);
        ski = X509_get_ext_d2i(f->ca_cert, NID_subject_key_identifier, NULL, NULL);
        leaf_ski = X509_get_ext_d2i(x, NID_subject_key_identifier, NULL, NULL);
        assert_non_null(aki);
        assert_non_null(aki->keyid);
        assert_non_null(leaf_ski);
        assert_int_equal(ASN1_OCTET_STRING_cmp(aki->keyid, ski), 0);

        /* The chain verifies as a TLS client checks it, for each name and no other. */
        assert_int_equal(verify_chain(x, f->ca_cert), 0);
        assert_int_equal(X509_check_host(x, DB_NAME, 0, 0, NULL), 1);
        assert_int_equal(X509_check_host(x, "accounts-db-ro.infrastream.internal", 0, 0, NULL), 1);
        assert_int_equal(X509_check_host(x, "spare.infrastream.internal", 0, 0, NULL), 0);

        /* Serials are random: the same request signed twice gets two serials. */
        y = sign_ok(f, csr, allowed, 3, CA_CERT_LIFETIME_DEFAULT);
        s1 = x509_serial_hex(x);
        s2 = x509_serial_hex(y);
        assert_string_not_equal(s1, s2);
        assert_true(ASN1_STRING_length(X509_get0_serialNumber(x)) <= 16);
        assert_true(ASN1_STRING_length(X509_get0_serialNumber(x)) >= 8);
}

static void test_sign_cn_and_short_lifetime(void **state) {
        fixture *f = *state;
        static const char *const allowed[] = { SHORT_NAME };
        req_spec spec = { .cn = SHORT_NAME };
        _cleanup_free_ char *csr = make_csr(&spec), *subject = NULL;
        _cleanup_(X509_freep) X509 *x = sign_ok(f, csr, allowed, 1, 30);
        char **got = NULL;
        size_t n_got = 0;
        time_t nb, na, now = time(NULL);

        /* A commonName alone is a requested name too: it becomes the subjectAltName. */
        assert_int_equal(x509_cert_dns_names(x, &got, &n_got, NULL), 0);
        assert_int_equal(n_got, 1);
        assert_string_equal(got[0], SHORT_NAME);
        x509_names_free(got, n_got);
        subject = x509_subject_line(x);
        assert_string_equal(subject, "CN=" SHORT_NAME);
        /* 30 seconds: backdated by a tenth, so renewal is not due on arrival. */
        assert_int_equal(x509_validity(x, &nb, &na), 0);
        assert_true(nb >= now - 3 - 2 && nb <= now - 3 + 2);
        assert_true(na >= now + 30 - 2 && na <= now + 30 + 2);
        assert_int_equal(verify_chain(x, f->ca_cert), 0);
}

static void test_refuse_foreign_names(void **state) {
        fixture *f = *state;
        static const char *const names[] = { SHORT_NAME, "x.evil" };
        static const char *const allowed[] = { SHORT_NAME };
        static const char *const mine[] = { SHORT_NAME };
        req_spec spec = { .san = names, .n_san = 2 }, cn_spec = { .san = mine, .n_san = 1, .cn = "other.infrastream.internal" };
        _cleanup_free_ char *csr = make_csr(&spec), *cn_csr = make_csr(&cn_spec);

        refused(f, csr, allowed, 1, "host 'db1'", -EPERM, "CSR asks for 'x.evil' which the document does not give host 'db1'");
        refused(f, csr, allowed, 1, NULL, -EPERM, "CSR asks for 'x.evil' which is not among the allowed names");
        /* A foreign commonName is a foreign name too, even next to allowed subjectAltNames. */
        refused(f, cn_csr, allowed, 1, "host 'db1'", -EPERM,
                "CSR asks for 'other.infrastream.internal' which the document does not give host 'db1'");
        /* Nothing allowed at all. */
        refused(f, csr, NULL, 0, "host 'db1'", -EPERM, "which the document does not give host 'db1'");
}

static void test_refuse_ca_request(void **state) {
        fixture *f = *state;
        static const char *const names[] = { SHORT_NAME };
        req_spec spec = { .san = names, .n_san = 1, .ca = true };
        _cleanup_free_ char *csr = make_csr(&spec);

        refused(f, csr, names, 1, "host 'db1'", -EPERM,
                "CSR asks for a CA certificate (basicConstraints CA:TRUE); only server certificates are issued");
}

/* Flip one byte of the DER request at offset from the end and encode it as PEM again. */
static char *tamper(const char *pem, size_t from_end) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL, *bad = NULL;
        unsigned char *der = NULL;
        const unsigned char *p;
        char *out;
        int n;

        assert_int_equal(x509_req_from_pem(pem, &req, NULL), 0);
        n = i2d_X509_REQ(req, &der);
        assert_true(n > (int) from_end);
        der[n - (int) from_end] ^= 0x01;
        p = der;
        bad = d2i_X509_REQ(NULL, &p, n);
        OPENSSL_free(der);
        if (!bad) {
                ERR_clear_error();
                return NULL;
        }
        out = x509_req_to_pem(bad);
        assert_non_null(out);
        return out;
}

static void test_refuse_bad_signature(void **state) {
        fixture *f = *state;
        static const char *const names[] = { SHORT_NAME };
        req_spec spec = { .san = names, .n_san = 1 };
        _cleanup_free_ char *csr = make_csr(&spec), *bad_sig = NULL, *bad_body = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        unsigned char *der = NULL;
        int n, name_at;

        /* The last byte of the DER is inside the signature value. */
        bad_sig = tamper(csr, 1);
        assert_non_null(bad_sig);
        refused(f, bad_sig, names, 1, NULL, -EBADMSG, "CSR signature does not verify with its own key");

        /* A changed name in the signed part: "db1" becomes "db0". */
        assert_int_equal(x509_req_from_pem(csr, &req, NULL), 0);
        n = i2d_X509_REQ(req, &der);
        name_at = -1;
        for (int i = 0; i + 3 <= n; i++)
                if (memcmp(der + i, "db1", 3) == 0)
                        name_at = i;
        assert_true(name_at > 0);
        OPENSSL_free(der);
        bad_body = tamper(csr, (size_t) (n - name_at - 2));
        assert_non_null(bad_body);
        assert_non_null(strstr(bad_body, "-----BEGIN CERTIFICATE REQUEST-----"));
        refused(f, bad_body, (const char *const[]) { "db0.infrastream.internal" }, 1, NULL, -EBADMSG,
                "CSR signature does not verify");

        /* Not a request at all. */
        refused(f, "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", names, 1, NULL,
                -EBADMSG, "CSR: not a PEM certificate request");
        refused(f, "", names, 1, NULL, -EBADMSG, "CSR: not a PEM certificate request");
}

static void test_refuse_outside_domain(void **state) {
        fixture *f = *state;
        static const char *const outside[] = { "db.example.com" };
        static const char *const lookalike[] = { "evilinfrastream.internal" };
        static const char *const apex[] = { "infrastream.internal" };
        req_spec a = { .san = outside, .n_san = 1 }, b = { .san = lookalike, .n_san = 1 }, c = { .san = apex, .n_san = 1 };
        _cleanup_free_ char *csr_a = make_csr(&a), *csr_b = make_csr(&b), *csr_c = make_csr(&c);
        _cleanup_(X509_freep) X509 *x = NULL;

        /* Allowed by the caller, but outside the CA's name constraints: refused here, not later by
         * every client. */
        refused(f, csr_a, outside, 1, "host 'db1'", -EPERM,
                "CSR asks for 'db.example.com' which is outside the CA's domain 'infrastream.internal'");
        refused(f, csr_b, lookalike, 1, "host 'db1'", -EPERM,
                "CSR asks for 'evilinfrastream.internal' which is outside the CA's domain 'infrastream.internal'");
        /* The domain itself is inside its own constraint. */
        x = sign_ok(f, csr_c, apex, 1, 3600);
        assert_int_equal(verify_chain(x, f->ca_cert), 0);
}

static void test_refuse_other_requests(void **state) {
        fixture *f = *state;
        static const char *const names[] = { SHORT_NAME };
        static const char *const wild[] = { "*.infrastream.internal" };
        req_spec ip = { .san = names, .n_san = 1, .ip = "10.99.0.2" }, w = { .san = wild, .n_san = 1 }, none = {};
        _cleanup_free_ char *csr_ip = make_csr(&ip), *csr_w = make_csr(&w), *csr_none = make_csr(&none), *pem = NULL,
                            *err = NULL, *csr_ok = NULL, *csr_rsa = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *rsa = EVP_RSA_gen(1024);
        req_spec weak = { .san = names, .n_san = 1, .key = rsa }, ok_spec = { .san = names, .n_san = 1 };

        refused(f, csr_ip, names, 1, NULL, -EBADMSG,
                "CSR asks for an IP address as a subject alternative name; only DNS names are certified");
        refused(f, csr_w, wild, 1, NULL, -EPERM, "wildcard certificates are not issued");
        refused(f, csr_none, names, 1, NULL, -EBADMSG, "CSR asks for no DNS name");
        assert_non_null(rsa);
        csr_rsa = make_csr(&weak);
        refused(f, csr_rsa, names, 1, NULL, -EBADMSG, "CSR has a 1024-bit RSA key; at least 2048 bits are required");

        csr_ok = make_csr(&ok_spec);
        assert_int_equal(ca_sign_csr(f->ca, csr_ok, names, 1, NULL, 0, &pem, &err), -ERANGE);
        free(TAKE_PTR(err));
        assert_int_equal(ca_sign_csr(f->ca, csr_ok, names, 1, NULL, CA_CERT_LIFETIME_MAX + 1, &pem, &err), -ERANGE);
        assert_null(pem);
}

/* The EKU of x as a list of NIDs. */
static void eku_nids(X509 *x, int *ret, int *ret_n) {
        _cleanup_(EXTENDED_KEY_USAGE_freep) EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);

        assert_non_null(eku);
        *ret_n = sk_ASN1_OBJECT_num(eku);
        for (int i = 0; i < *ret_n && i < 4; i++)
                ret[i] = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i));
}

static void test_controller_cert(void **state) {
        fixture *f = *state;
        _cleanup_free_ char *key = path_in(f->dir, CA_CONTROLLER_KEY_FILE), *crt = path_in(f->dir, CA_CONTROLLER_CERT_FILE),
                            *err = NULL, *before_key = NULL, *before_crt = NULL, *after = NULL, *kpem = NULL;
        _cleanup_(X509_freep) X509 *x = NULL, *y = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        time_t nb, na, now = time(NULL);
        char **names = NULL;
        size_t n = 0, ksize = 0;
        int nids[4], n_nids = 0;
        struct stat st;

        assert_int_equal(ca_create_controller_cert(f->ca, f->dir, &err), 1);
        assert_int_equal(stat(key, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(stat(crt, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);

        /* controller.<domain>, serverAuth + clientAuth, 1 year, from this CA, for this key. */
        x = load_cert_file(crt);
        assert_int_equal(x509_cert_dns_names(x, &names, &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_string_equal(names[0], "controller.infrastream.internal");
        x509_names_free(names, n);
        eku_nids(x, nids, &n_nids);
        assert_int_equal(n_nids, 2);
        assert_int_equal(nids[0], NID_server_auth);
        assert_int_equal(nids[1], NID_client_auth);
        assert_int_equal(X509_get_key_usage(x), KU_DIGITAL_SIGNATURE);
        assert_int_equal(x509_validity(x, &nb, &na), 0);
        assert_true(na >= now + CA_CONTROLLER_LIFETIME - 5 && na <= now + CA_CONTROLLER_LIFETIME + 5);
        assert_int_equal(verify_chain(x, f->ca_cert), 0);
        assert_int_equal(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0), 1);
        assert_int_equal(X509_check_host(x, "controller.infrastream.internal", 0, 0, NULL), 1);
        assert_int_equal(read_full_file(key, X509_PEM_MAX, &kpem, &ksize), 0);
        assert_int_equal(x509_key_from_pem(kpem, ksize, &pkey, NULL), 0);
        explicit_bzero(kpem, ksize);
        assert_int_equal(X509_check_private_key(x, pkey), 1);

        /* Again: both kept, byte for byte. */
        assert_int_equal(read_full_file(key, X509_PEM_MAX, &before_key, NULL), 0);
        assert_int_equal(read_full_file(crt, X509_PEM_MAX, &before_crt, NULL), 0);
        assert_int_equal(ca_create_controller_cert(f->ca, f->dir, &err), 0);
        assert_int_equal(read_full_file(key, X509_PEM_MAX, &after, NULL), 0);
        assert_string_equal(before_key, after);
        free(TAKE_PTR(after));
        assert_int_equal(read_full_file(crt, X509_PEM_MAX, &after, NULL), 0);
        assert_string_equal(before_crt, after);
        free(TAKE_PTR(after));

        /* A certificate whose key is gone is an error, never silently replaced. */
        assert_int_equal(rename(key, "/tmp/test-ca-controller-key-moved"), 0);
        assert_int_equal(ca_create_controller_cert(f->ca, f->dir, &err), -ENOKEY);
        assert_non_null(strstr(err, "controller.crt exists but its key"));
        free(TAKE_PTR(err));
        assert_int_equal(rename("/tmp/test-ca-controller-key-moved", key), 0);

        /* A key without its certificate (a crash in between): the key there is gets certified. */
        assert_int_equal(unlink(crt), 0);
        assert_int_equal(ca_create_controller_cert(f->ca, f->dir, &err), 1);
        y = load_cert_file(crt);
        assert_int_equal(X509_check_private_key(y, pkey), 1);
        assert_int_equal(read_full_file(key, X509_PEM_MAX, &after, NULL), 0);
        assert_string_equal(before_key, after);

        /* A key others may read is refused. */
        assert_int_equal(unlink(crt), 0);
        assert_int_equal(chmod(key, 0644), 0);
        assert_int_equal(ca_create_controller_cert(f->ca, f->dir, &err), -EPERM);
        assert_non_null(strstr(err, "the controller key"));
        assert_non_null(strstr(err, "accessible to other users (mode 0644)"));
}

static void test_sign_host_csr(void **state) {
        fixture *f = *state;
        static const char *const asked[] = { "controller.infrastream.internal", "db2.hosts.infrastream.internal" };
        req_spec spec = { .san = asked, .n_san = 2, .cn = "evil.example" }, ca_spec = { .san = asked, .n_san = 1, .ca = true };
        _cleanup_free_ char *csr = make_csr(&spec), *ca_csr = make_csr(&ca_spec), *pem = NULL, *err = NULL,
                            *subject = NULL, *bad = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        char **names = NULL;
        size_t n = 0;
        int nids[4], n_nids = 0;

        /* The names asked for are ignored: the certificate names the enrolled host only. */
        assert_int_equal(ca_sign_host_csr(f->ca, csr, "db1", CA_HOST_LIFETIME, &pem, &err), 0);
        assert_int_equal(x509_cert_from_pem(pem, &x, NULL), 0);
        assert_int_equal(x509_cert_dns_names(x, &names, &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_string_equal(names[0], "db1.hosts.infrastream.internal");
        x509_names_free(names, n);
        subject = x509_subject_line(x);
        assert_string_equal(subject, "CN=db1.hosts.infrastream.internal");
        eku_nids(x, nids, &n_nids);
        assert_int_equal(n_nids, 2);
        assert_int_equal(nids[0], NID_server_auth);
        assert_int_equal(nids[1], NID_client_auth);
        assert_int_equal(verify_chain(x, f->ca_cert), 0);
        assert_int_equal(X509_check_host(x, "controller.infrastream.internal", 0, 0, NULL), 0);
        assert_int_equal(X509_check_host(x, "db2.hosts.infrastream.internal", 0, 0, NULL), 0);
        free(TAKE_PTR(pem));

        /* The request's own checks still hold. */
        assert_int_equal(ca_sign_host_csr(f->ca, ca_csr, "db1", CA_HOST_LIFETIME, &pem, &err), -EPERM);
        assert_non_null(strstr(err, "CSR asks for a CA certificate"));
        free(TAKE_PTR(err));
        bad = tamper(csr, 1);
        assert_non_null(bad);
        assert_int_equal(ca_sign_host_csr(f->ca, bad, "db1", CA_HOST_LIFETIME, &pem, &err), -EBADMSG);
        assert_non_null(strstr(err, "CSR signature does not verify with its own key"));
        free(TAKE_PTR(err));
        assert_int_equal(ca_sign_host_csr(f->ca, csr, "db1.evil", CA_HOST_LIFETIME, &pem, &err), -EINVAL);
        assert_non_null(strstr(err, "'db1.evil' is not a host name"));
        free(TAKE_PTR(err));
        assert_int_equal(ca_sign_host_csr(f->ca, csr, "db1", CA_CERT_LIFETIME_MAX + 1, &pem, &err), -ERANGE);
        assert_null(pem);
}

static void test_parse_lifetime(void **state) {
        int64_t v = 0;

        assert_int_equal(ca_parse_lifetime("90d", &v), 0);
        assert_int_equal(v, 90 * 86400);
        assert_int_equal(ca_parse_lifetime("1h", &v), 0);
        assert_int_equal(v, 3600);
        assert_int_equal(ca_parse_lifetime("30m", &v), 0);
        assert_int_equal(v, 1800);
        assert_int_equal(ca_parse_lifetime("300s", &v), 0);
        assert_int_equal(v, 300);
        assert_int_equal(ca_parse_lifetime("397d", &v), 0);
        assert_int_equal(ca_parse_lifetime("398d", &v), -ERANGE);
        assert_int_equal(ca_parse_lifetime("0s", &v), -ERANGE);
        assert_int_equal(ca_parse_lifetime("99999999999999999999d", &v), -ERANGE);
        assert_int_equal(ca_parse_lifetime("90", &v), -EINVAL);
        assert_int_equal(ca_parse_lifetime("d", &v), -EINVAL);
        assert_int_equal(ca_parse_lifetime("-1d", &v), -EINVAL);
        assert_int_equal(ca_parse_lifetime("1dd", &v), -EINVAL);
        assert_int_equal(ca_parse_lifetime("", &v), -EINVAL);
}

static void test_dns_names(void **state) {
        assert_true(x509_dns_name_valid(DB_NAME));
        assert_true(x509_dns_name_valid("a"));
        assert_true(x509_dns_name_valid("A-1.example"));
        assert_false(x509_dns_name_valid(""));
        assert_false(x509_dns_name_valid("a..b"));
        assert_false(x509_dns_name_valid(".a"));
        assert_false(x509_dns_name_valid("a."));
        assert_false(x509_dns_name_valid("-a.b"));
        assert_false(x509_dns_name_valid("a-.b"));
        assert_false(x509_dns_name_valid("*.a.b"));
        assert_false(x509_dns_name_valid("a b"));
        assert_false(x509_dns_name_valid("a_b.c"));
        assert_true(x509_name_in_domain("a.infrastream.internal", "infrastream.internal"));
        assert_true(x509_name_in_domain("A.Infrastream.Internal", "infrastream.internal"));
        assert_true(x509_name_in_domain("infrastream.internal", "infrastream.internal"));
        assert_false(x509_name_in_domain("evilinfrastream.internal", "infrastream.internal"));
        assert_false(x509_name_in_domain("internal", "infrastream.internal"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_create, setup, teardown),
                cmocka_unit_test_setup_teardown(test_create_other_domain_and_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sign, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sign_cn_and_short_lifetime, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuse_foreign_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuse_ca_request, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuse_bad_signature, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuse_outside_domain, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refuse_other_requests, setup, teardown),
                cmocka_unit_test_setup_teardown(test_controller_cert, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sign_host_csr, setup, teardown),
                cmocka_unit_test(test_parse_lifetime),
                cmocka_unit_test(test_dns_names),
        };
        return cmocka_run_group_tests_name("ca", tests, NULL, NULL);
}
