/* X.509 helpers for both sides of the CA: parsing, printing, names, verification. Nothing here
 * reads or writes files; callers own their paths and modes. */
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509_vfy.h>

#include "fileio.h"
#include "x509.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE *, X509_STORE_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_STORE_CTX *, X509_STORE_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(NAME_CONSTRAINTS *, NAME_CONSTRAINTS_free);

void x509_names_free(char **v, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

char *x509_openssl_error(const char *what) {
        unsigned long e = ERR_peek_last_error();
        char buf[256];

        if (e == 0)
                snprintf(buf, sizeof(buf), "unknown error");
        else
                ERR_error_string_n(e, buf, sizeof(buf));
        ERR_clear_error();
        return xasprintf("%s: %s", what, buf);
}

static void set_error(char **ret_error, char *msg) {
        if (ret_error)
                *ret_error = msg;
        else
                free(msg);
}

bool x509_dns_name_valid(const char *s) {
        size_t n = strlen(s), label = 0;

        if (n == 0 || n > 253)
                return false;
        for (size_t i = 0; i <= n; i++) {
                char c = s[i];
                if (c == '.' || c == '\0') {
                        /* Empty labels (leading, trailing or double dots) are not host names. */
                        if (label == 0 || label > 63 || s[i - 1] == '-')
                                return false;
                        label = 0;
                        continue;
                }
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
                        return false;
                if (c == '-' && label == 0)
                        return false;
                label++;
        }
        return true;
}

bool x509_name_in_domain(const char *name, const char *domain) {
        size_t n = strlen(name), d = strlen(domain);

        if (n == d)
                return strcasecmp(name, domain) == 0;
        /* A label boundary: "evilinfrastream.internal" is not below "infrastream.internal". */
        return n > d && name[n - d - 1] == '.' && strcasecmp(name + n - d, domain) == 0;
}

/* Read one PEM object with reader, then make sure nothing but whitespace follows it: a file with
 * two certificates is a mistake we want to hear about, not silently half-used. */
static int read_one(const char *pem, void *(*reader)(BIO *), const char *what, void **ret, char **ret_error) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        void *obj;
        char c;

        bio = BIO_new_mem_buf(pem, -1);
        if (!bio) {
                set_error(ret_error, x509_openssl_error("cannot allocate a BIO"));
                return -ENOMEM;
        }
        obj = reader(bio);
        if (!obj) {
                ERR_clear_error();
                set_error(ret_error, xasprintf("not a PEM %s", what));
                return -EBADMSG;
        }
        while (BIO_read(bio, &c, 1) == 1)
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
                        *ret = obj;
                        set_error(ret_error, xasprintf("more than one PEM block where one %s was expected", what));
                        return -E2BIG;
                }
        *ret = obj;
        return 0;
}

static void *read_cert(BIO *b) {
        return PEM_read_bio_X509(b, NULL, NULL, NULL);
}
static void *read_req(BIO *b) {
        return PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
}

int x509_cert_from_pem(const char *pem, X509 **ret, char **ret_error) {
        void *obj = NULL;
        int r = read_one(pem, read_cert, "certificate", &obj, ret_error);

        if (r < 0) {
                X509_free(obj);
                return r == -E2BIG ? -EBADMSG : r;
        }
        *ret = obj;
        return 0;
}

int x509_req_from_pem(const char *pem, X509_REQ **ret, char **ret_error) {
        void *obj = NULL;
        int r = read_one(pem, read_req, "certificate request", &obj, ret_error);

        if (r < 0) {
                X509_REQ_free(obj);
                return r == -E2BIG ? -EBADMSG : r;
        }
        *ret = obj;
        return 0;
}

/* A daemon must never stop to ask for a passphrase on a terminal: encrypted keys just fail. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata) {
        return -1;
}

int x509_key_from_pem(const char *pem, size_t size, EVP_PKEY **ret, char **ret_error) {
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        EVP_PKEY *k;

        if (size > X509_PEM_MAX) {
                set_error(ret_error, xstrdup("larger than any PEM private key"));
                return -EFBIG;
        }
        bio = BIO_new_mem_buf(pem, (int) size);
        if (!bio) {
                set_error(ret_error, x509_openssl_error("cannot allocate a BIO"));
                return -ENOMEM;
        }
        k = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
        if (!k) {
                set_error(ret_error, x509_openssl_error("not a PEM private key"));
                return -EBADMSG;
        }
        *ret = k;
        return 0;
}

int x509_key_from_file(const char *path, EVP_PKEY **ret, char **ret_error) {
        _cleanup_free_ char *pem = NULL;
        size_t size = 0;
        int r;

        r = read_full_file(path, X509_PEM_MAX, &pem, &size);
        if (r < 0) {
                set_error(ret_error, xasprintf("cannot read %s: %s", path, strerror(-r)));
                return r;
        }
        r = x509_key_from_pem(pem, size, ret, ret_error);
        explicit_bzero(pem, size);
        return r;
}

/* Copy what a PEM writer left in a memory BIO into a malloc'd string. */
static char *bio_to_string(BIO *bio, size_t *ret_size) {
        char *data, *s;
        long len = BIO_get_mem_data(bio, &data);

        if (len <= 0)
                return NULL;
        s = xmalloc((size_t) len + 1);
        memcpy(s, data, (size_t) len);
        s[len] = '\0';
        if (ret_size)
                *ret_size = (size_t) len;
        return s;
}

char *x509_cert_to_pem(X509 *x) {
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_mem());

        if (!bio || PEM_write_bio_X509(bio, x) != 1) {
                ERR_clear_error();
                return NULL;
        }
        return bio_to_string(bio, NULL);
}

char *x509_req_to_pem(X509_REQ *r) {
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_mem());

        if (!bio || PEM_write_bio_X509_REQ(bio, r) != 1) {
                ERR_clear_error();
                return NULL;
        }
        return bio_to_string(bio, NULL);
}

char *x509_key_to_pem(EVP_PKEY *k, size_t *ret_size) {
        /* Secure-heap memory BIO: OpenSSL's own copy of the PEM text is wiped when it is freed. */
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_secmem());

        if (!bio || PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) != 1) {
                ERR_clear_error();
                return NULL;
        }
        return bio_to_string(bio, ret_size);
}

EVP_PKEY *x509_generate_ec_key(void) {
        EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        if (!k)
                ERR_clear_error();
        return k;
}

int x509_set_random_serial(X509 *x) {
        _cleanup_(BN_freep) BIGNUM *bn = BN_new();
        ASN1_INTEGER *serial;
        int ok;

        /* 127 random bits: positive and at most 16 octets in DER; zero is astronomically unlikely
         * and still refused. */
        if (!bn || BN_rand(bn, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 || BN_is_zero(bn)) {
                ERR_clear_error();
                return -EIO;
        }
        serial = BN_to_ASN1_INTEGER(bn, NULL);
        ok = serial && X509_set_serialNumber(x, serial) == 1;
        ASN1_INTEGER_free(serial);
        if (!ok) {
                ERR_clear_error();
                return -EIO;
        }
        return 0;
}

GENERAL_NAMES *x509_dns_general_names(const char *const *names, size_t n) {
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();

        if (!gens)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                ASN1_IA5STRING *s = ASN1_IA5STRING_new();
                GENERAL_NAME *g = GENERAL_NAME_new();

                if (!s || !g || ASN1_STRING_set(s, names[i], (int) strlen(names[i])) != 1) {
                        ASN1_IA5STRING_free(s);
                        GENERAL_NAME_free(g);
                        ERR_clear_error();
                        return NULL;
                }
                GENERAL_NAME_set0_value(g, GEN_DNS, s);
                if (sk_GENERAL_NAME_push(gens, g) <= 0) {
                        GENERAL_NAME_free(g);
                        ERR_clear_error();
                        return NULL;
                }
        }
        return TAKE_PTR(gens);
}

static const char *general_name_kind(int type) {
        switch (type) {
        case GEN_EMAIL:
                return "an e-mail address";
        case GEN_URI:
                return "a URI";
        case GEN_IPADD:
                return "an IP address";
        case GEN_DIRNAME:
                return "a directory name";
        case GEN_RID:
                return "a registered ID";
        default:
                return "an unsupported name";
        }
}

/* Append the DNS names of one GENERAL_NAMES to v. */
static int add_dns_names(const GENERAL_NAMES *gens, char ***v, size_t *n, char **ret_error) {
        for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
                const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
                const ASN1_IA5STRING *s;
                int len;

                if (g->type != GEN_DNS) {
                        set_error(ret_error, xasprintf("asks for %s as a subject alternative name; only DNS names "
                                                       "are certified",
                                                       general_name_kind(g->type)));
                        return -EBADMSG;
                }
                s = g->d.dNSName;
                len = ASN1_STRING_length(s);
                /* An embedded NUL would make the C string say less than the certificate does. */
                if (len <= 0 || len > 253 || memchr(ASN1_STRING_get0_data(s), '\0', (size_t) len)) {
                        set_error(ret_error, xstrdup("has an empty, over-long or NUL-carrying DNS name"));
                        return -EBADMSG;
                }
                *v = xrealloc(*v, (*n + 1) * sizeof(char *));
                (*v)[(*n)++] = xstrndup((const char *) ASN1_STRING_get0_data(s), (size_t) len);
        }
        return 0;
}

int x509_exts_dns_names(const STACK_OF(X509_EXTENSION) *exts, char ***ret, size_t *ret_n, char **ret_error) {
        char **v = NULL;
        size_t n = 0;

        for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
                X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
                GENERAL_NAMES *gens;
                int r;

                if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) != NID_subject_alt_name)
                        continue;
                gens = X509V3_EXT_d2i(e);
                if (!gens) {
                        ERR_clear_error();
                        x509_names_free(v, n);
                        set_error(ret_error, xstrdup("has a subjectAltName extension that does not parse"));
                        return -EBADMSG;
                }
                r = add_dns_names(gens, &v, &n, ret_error);
                GENERAL_NAMES_free(gens);
                if (r < 0) {
                        x509_names_free(v, n);
                        return r;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int x509_cert_dns_names(X509 *x, char ***ret, size_t *ret_n, char **ret_error) {
        return x509_exts_dns_names(X509_get0_extensions(x), ret, ret_n, ret_error);
}

bool x509_cert_covers(X509 *x, const char *const *names, size_t n, const char **ret_missing) {
        for (size_t i = 0; i < n; i++)
                /* NO_PARTIAL_WILDCARDS and no CN fallback: the SAN must name the host exactly. */
                if (X509_check_host(x, names[i], 0, X509_CHECK_FLAG_NO_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT,
                                    NULL) != 1) {
                        ERR_clear_error();
                        if (ret_missing)
                                *ret_missing = names[i];
                        return false;
                }
        return true;
}

int x509_verify_server_cert(X509 *cert, X509 *ca, char **ret_error) {
        _cleanup_(X509_STORE_freep) X509_STORE *store = X509_STORE_new();
        _cleanup_(X509_STORE_CTX_freep) X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        int err;

        if (!store || !ctx || X509_STORE_add_cert(store, ca) != 1 || X509_STORE_CTX_init(ctx, store, cert, NULL) != 1) {
                set_error(ret_error, x509_openssl_error("cannot set up certificate verification"));
                return -ENOMEM;
        }
        X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
        X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx), X509_V_FLAG_X509_STRICT);
        if (X509_verify_cert(ctx) == 1)
                return 0;
        ERR_clear_error();
        err = X509_STORE_CTX_get_error(ctx);
        set_error(ret_error, xstrdup(X509_verify_cert_error_string(err)));
        return err == X509_V_ERR_CERT_HAS_EXPIRED ? -EKEYEXPIRED : -EKEYREJECTED;
}

int x509_time_to_unix(const ASN1_TIME *t, time_t *ret) {
        struct tm tm = {};

        if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
                ERR_clear_error();
                return -EBADMSG;
        }
        *ret = timegm(&tm);
        return 0;
}

int x509_validity(X509 *x, time_t *ret_not_before, time_t *ret_not_after) {
        int r = x509_time_to_unix(X509_get0_notBefore(x), ret_not_before);
        return r < 0 ? r : x509_time_to_unix(X509_get0_notAfter(x), ret_not_after);
}

void x509_format_time(time_t t, char buf[32]) {
        struct tm tm;

        if (!gmtime_r(&t, &tm) || strftime(buf, 32, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
                snprintf(buf, 32, "@%lld", (long long) t);
}

static void hex(const unsigned char *p, size_t n, char *ret) {
        for (size_t i = 0; i < n; i++)
                snprintf(ret + 2 * i, 3, "%02x", p[i]);
}

int x509_cert_fingerprint(X509 *x, char ret[65]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;

        if (X509_digest(x, EVP_sha256(), md, &len) != 1 || len != 32) {
                ERR_clear_error();
                return -EIO;
        }
        hex(md, 32, ret);
        return 0;
}

int x509_key_fingerprint(EVP_PKEY *k, char ret[65]) {
        unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        int n = i2d_PUBKEY(k, &der), ok;

        if (n <= 0) {
                ERR_clear_error();
                return -EIO;
        }
        ok = EVP_Digest(der, (size_t) n, md, &len, EVP_sha256(), NULL) == 1 && len == 32;
        OPENSSL_free(der);
        if (!ok) {
                ERR_clear_error();
                return -EIO;
        }
        hex(md, 32, ret);
        return 0;
}

char *x509_serial_hex(X509 *x) {
        _cleanup_(BN_freep) BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        char *h, *s;

        if (!bn || !(h = BN_bn2hex(bn))) {
                ERR_clear_error();
                return xstrdup("?");
        }
        s = xstrdup(h);
        OPENSSL_free(h);
        return s;
}

char *x509_subject_line(X509 *x) {
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new(BIO_s_mem());
        char *s;

        if (!bio || X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) < 0) {
                ERR_clear_error();
                return xstrdup("?");
        }
        s = bio_to_string(bio, NULL);
        return s ? s : xstrdup("");
}

int x509_ca_domain(X509 *ca, char **ret) {
        _cleanup_(NAME_CONSTRAINTS_freep) NAME_CONSTRAINTS *nc = X509_get_ext_d2i(ca, NID_name_constraints, NULL, NULL);

        if (!nc || sk_GENERAL_SUBTREE_num(nc->permittedSubtrees) != 1)
                return -EBADMSG;
        {
                GENERAL_SUBTREE *t = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, 0);
                const ASN1_IA5STRING *s;
                if (t->base->type != GEN_DNS)
                        return -EBADMSG;
                s = t->base->d.dNSName;
                *ret = xstrndup((const char *) ASN1_STRING_get0_data(s), (size_t) ASN1_STRING_length(s));
        }
        return x509_dns_name_valid(*ret) ? 0 : -EBADMSG;
}

bool x509_host_label_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
                        return false;
        return true;
}
