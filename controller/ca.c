/* The CA: creation (key claimed with O_EXCL, never replaced), loading with mode and key checks,
 * signing of database hosts' certificate requests for the names their document gives them, and
 * the mutual-TLS identities (the controller's, and each host's at enrollment). */
#include <ctype.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca.h"
#include "fileio.h"
#include "https-server.h"
#include "macro.h"
#include "x509.h"

/* The CA's own certificate excludes every IP address: it only ever certifies DNS names, so a
 * certificate naming an address, should one ever exist, does not verify. */
#define CA_EXCLUDED_IPS "excluded;IP:0.0.0.0/0.0.0.0,excluded;IP:::/::"

DEFINE_TRIVIAL_CLEANUP_FUNC(BASIC_CONSTRAINTS *, BASIC_CONSTRAINTS_free);

static void free_extensions(STACK_OF(X509_EXTENSION) **exts) {
        sk_X509_EXTENSION_pop_free(*exts, X509_EXTENSION_free);
}

struct ca {
        char *cert_path;
        char *domain;
        X509 *cert;
        EVP_PKEY *key;
};

static void set_error(char **ret_error, char *msg) {
        if (ret_error)
                *ret_error = msg;
        else
                free(msg);
}

void ca_free(ca *c) {
        if (!c)
                return;
        free(c->cert_path);
        free(c->domain);
        X509_free(c->cert);
        EVP_PKEY_free(c->key); /* OpenSSL clears private key material when it frees it */
        free(c);
}

const char *ca_domain(const ca *c) {
        return c->domain;
}

const char *ca_cert_path(const ca *c) {
        return c->cert_path;
}

/* A name from a request, safe to quote in a message: printable ASCII only, bounded. */
static char *printable(const char *s) {
        char *p = xstrndup(s, 80);
        for (char *q = p; *q; q++)
                if (!isprint((unsigned char) *q) || *q == '\'')
                        *q = '?';
        return p;
}

/* what: "CA key" or "controller key", for the messages. */
static int read_key(const char *path, const char *what, bool check_mode, EVP_PKEY **ret, char **ret_error) {
        _cleanup_free_ char *pem = NULL, *err = NULL;
        struct stat st;
        size_t size = 0;
        int r;

        if (lstat(path, &st) < 0) {
                r = -errno;
                set_error(ret_error, r == -ENOENT ? xasprintf("there is no %s %s (run 'infrastream-controller "
                                                              "init' to create %s)",
                                                              what, path, streq(what, "CA key") ? "the CA" : "it")
                                                  : xasprintf("cannot read the %s %s: %s", what, path, strerror(-r)));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                set_error(ret_error, xasprintf("the %s %s is not a regular file", what, path));
                return -EBADMSG;
        }
        if (check_mode && (st.st_mode & 077) != 0) {
                set_error(ret_error, xasprintf("the %s %s is accessible to other users (mode %04o); it must be 0600",
                                               what, path, (unsigned) (st.st_mode & 07777)));
                return -EPERM;
        }
        r = read_full_file(path, X509_PEM_MAX, &pem, &size);
        if (r < 0) {
                set_error(ret_error, xasprintf("cannot read the %s %s: %s", what, path, strerror(-r)));
                return r;
        }
        r = x509_key_from_pem(pem, size, ret, &err);
        explicit_bzero(pem, size);
        if (r < 0) {
                set_error(ret_error, xasprintf("the %s %s: %s", what, path, err));
                return r;
        }
        if (!EVP_PKEY_is_a(*ret, "EC")) {
                EVP_PKEY_free(TAKE_PTR(*ret));
                set_error(ret_error, xasprintf("the %s %s is not an EC key", what, path));
                return -EBADMSG;
        }
        return 0;
}

/* Claim the key's name with O_EXCL first: a CA key may already be trusted by every agent, and
 * write_file_atomic()'s rename would replace it. A racing second init stops here too. */
static int generate_key(const char *path, EVP_PKEY **ret) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_close_ int fd = -1;
        char *pem;
        size_t size = 0;
        int r;

        fd = open_new_secret_file(path);
        if (fd < 0)
                return fd;

        key = x509_generate_ec_key();
        pem = key ? x509_key_to_pem(key, &size) : NULL;
        if (!pem) {
                r = -EIO;
                goto fail;
        }
        r = write_file_atomic(path, pem, size, 0600);
        explicit_bzero(pem, size);
        free(pem);
        if (r < 0)
                goto fail;
        *ret = TAKE_PTR(key);
        return 0;
fail:
        (void) unlink(path);
        return r;
}

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value) {
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
        int ok = e && X509_add_ext(x, e, -1) == 1;

        X509_EXTENSION_free(e);
        return ok ? 0 : -EIO;
}

/* cn NULL: an empty subject (the names are in subjectAltName alone). */
static int set_subject_cn(X509 *x, const char *cn, bool also_issuer) {
        _cleanup_(X509_NAME_freep) X509_NAME *name = X509_NAME_new();

        if (!name ||
            (cn && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) cn, -1, -1, 0) != 1) ||
            X509_set_subject_name(x, name) != 1 || (also_issuer && X509_set_issuer_name(x, name) != 1))
                return -EIO;
        return 0;
}

static int make_ca_cert(EVP_PKEY *key, const char *domain, X509 **ret, char **ret_error) {
        _cleanup_(X509_freep) X509 *x = X509_new();
        _cleanup_free_ char *cn = NULL, *nc = NULL;
        char fp[65];
        X509V3_CTX ctx;
        int r;

        r = x509_key_fingerprint(key, fp);
        if (r < 0 || !x)
                goto fail;
        cn = xasprintf("Infrastream CA %.8s", fp);
        nc = xasprintf("critical,permitted;DNS:%s," CA_EXCLUDED_IPS, domain);
        if (X509_set_version(x, X509_VERSION_3) != 1 || x509_set_random_serial(x) < 0 ||
            !X509_gmtime_adj(X509_getm_notBefore(x), -CA_BACKDATE_MAX) ||
            !X509_time_adj_ex(X509_getm_notAfter(x), CA_LIFETIME_DAYS, 0, NULL) || X509_set_pubkey(x, key) != 1 ||
            set_subject_cn(x, cn, true) < 0)
                goto fail;
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") < 0 ||
            add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign") < 0 ||
            add_ext(x, &ctx, NID_subject_key_identifier, "hash") < 0 ||
            add_ext(x, &ctx, NID_name_constraints, nc) < 0)
                goto fail;
        if (X509_sign(x, key, EVP_sha256()) <= 0)
                goto fail;
        *ret = TAKE_PTR(x);
        return 0;
fail:
        set_error(ret_error, x509_openssl_error("cannot build the CA certificate"));
        return -EIO;
}

int ca_create(const char *state_dir, const char *domain, char **ret_error) {
        _cleanup_free_ char *key_path = xasprintf("%s/%s", state_dir, CA_KEY_FILE),
                            *cert_path = xasprintf("%s/%s", state_dir, CA_CERT_FILE), *pem = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        struct stat st;
        bool have_key, have_cert;
        int r;

        if (!x509_dns_name_valid(domain)) {
                _cleanup_free_ char *p = printable(domain);
                set_error(ret_error, xasprintf("'%s' is not a DNS domain (dot-separated labels of letters, digits "
                                               "and '-')",
                                               p));
                return -EINVAL;
        }
        have_key = lstat(key_path, &st) == 0 && st.st_size > 0;
        have_cert = lstat(cert_path, &st) == 0;
        if (have_key && have_cert)
                return 0;
        if (have_cert) {
                set_error(ret_error, xasprintf("%s exists but its key %s does not: the CA's key is lost; move %s "
                                               "away to create a new CA (every agent must then trust the new one)",
                                               cert_path, key_path, cert_path));
                return -ENOKEY;
        }
        r = have_key ? -EEXIST : generate_key(key_path, &key);
        if (r == -EEXIST)
                /* A crash between key and certificate, or a racing init: certify the key there is. */
                r = read_key(key_path, "CA key", true, &key, ret_error);
        else if (r < 0)
                set_error(ret_error, xasprintf("cannot create the CA key %s: %s", key_path, strerror(-r)));
        if (r < 0)
                return r;
        r = make_ca_cert(key, domain, &cert, ret_error);
        if (r < 0)
                return r;
        pem = x509_cert_to_pem(cert);
        if (!pem) {
                set_error(ret_error, xasprintf("cannot encode the CA certificate"));
                return -EIO;
        }
        r = write_file_atomic(cert_path, pem, strlen(pem), 0644);
        if (r < 0) {
                set_error(ret_error, xasprintf("cannot write %s: %s", cert_path, strerror(-r)));
                return r;
        }
        return 1;
}

int ca_load(const char *state_dir, ca **ret, char **ret_error) {
        _cleanup_free_ char *key_path = xasprintf("%s/%s", state_dir, CA_KEY_FILE), *pem = NULL, *err = NULL;
        _cleanup_(ca_freep) ca *c = xcalloc(1, sizeof(ca));
        int r;

        c->cert_path = xasprintf("%s/%s", state_dir, CA_CERT_FILE);
        r = read_key(key_path, "CA key", true, &c->key, ret_error);
        if (r < 0)
                return r;
        r = read_full_file(c->cert_path, X509_PEM_MAX, &pem, NULL);
        if (r < 0) {
                set_error(ret_error, xasprintf("cannot read the CA certificate %s: %s", c->cert_path, strerror(-r)));
                return r;
        }
        r = x509_cert_from_pem(pem, &c->cert, &err);
        if (r < 0) {
                set_error(ret_error, xasprintf("the CA certificate %s: %s", c->cert_path, err));
                return r;
        }
        if (X509_check_private_key(c->cert, c->key) != 1) {
                ERR_clear_error();
                set_error(ret_error, xasprintf("the CA certificate %s does not belong to the key %s", c->cert_path,
                                               key_path));
                return -EKEYREJECTED;
        }
        if (x509_ca_domain(c->cert, &c->domain) < 0) {
                set_error(ret_error, xasprintf("the CA certificate %s has no single permitted DNS name constraint",
                                               c->cert_path));
                return -EBADMSG;
        }
        *ret = TAKE_PTR(c);
        return 0;
}

int ca_describe(const ca *c, char **ret_subject, char ret_fingerprint[65], time_t *ret_not_before,
                time_t *ret_not_after) {
        int r = x509_cert_fingerprint(c->cert, ret_fingerprint);
        if (r >= 0)
                r = x509_validity(c->cert, ret_not_before, ret_not_after);
        if (r < 0)
                return r;
        *ret_subject = x509_subject_line(c->cert);
        return 0;
}

int ca_parse_lifetime(const char *s, int64_t *ret) {
        int64_t v = 0, unit;
        const char *p = s;

        if (!isdigit((unsigned char) *p))
                return -EINVAL;
        for (; isdigit((unsigned char) *p); p++) {
                v = v * 10 + (*p - '0');
                if (v > CA_CERT_LIFETIME_MAX)
                        return -ERANGE;
        }
        switch (*p) {
        case 's':
                unit = 1;
                break;
        case 'm':
                unit = 60;
                break;
        case 'h':
                unit = 3600;
                break;
        case 'd':
                unit = 86400;
                break;
        default:
                return -EINVAL;
        }
        if (p[1] != '\0')
                return -EINVAL;
        if (v == 0 || v > CA_CERT_LIFETIME_MAX / unit)
                return -ERANGE;
        *ret = v * unit;
        return 0;
}

/* What a request asks for: the key is acceptable for a TLS server certificate. */
static int check_key(EVP_PKEY *k, char **ret_error) {
        char group[64] = "";

        if (EVP_PKEY_is_a(k, "EC")) {
                if (EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) == 1 &&
                    (streq(group, "prime256v1") || streq(group, "P-256") || streq(group, "secp384r1") ||
                     streq(group, "P-384")))
                        return 0;
                ERR_clear_error();
                set_error(ret_error, xasprintf("CSR has an EC key on curve '%s'; P-256 or P-384 is required",
                                               *group ? group : "unknown"));
                return -EBADMSG;
        }
        if (EVP_PKEY_is_a(k, "RSA")) {
                if (EVP_PKEY_get_bits(k) >= 2048)
                        return 0;
                set_error(ret_error, xasprintf("CSR has a %d-bit RSA key; at least 2048 bits are required",
                                               EVP_PKEY_get_bits(k)));
                return -EBADMSG;
        }
        set_error(ret_error, xasprintf("CSR has a %s key; EC P-256/P-384 or RSA is required",
                                       strempty(EVP_PKEY_get0_type_name(k))));
        return -EBADMSG;
}

/* The request's commonName entries join its subjectAltNames, once each. */
static int add_common_names(X509_REQ *req, char ***names, size_t *n, char **ret_error) {
        X509_NAME *subject = X509_REQ_get_subject_name(req);

        for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
                unsigned char *utf8 = NULL;
                int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
                bool dup = false;

                if (len < 0 || memchr(utf8, '\0', (size_t) len)) {
                        OPENSSL_free(utf8);
                        ERR_clear_error();
                        set_error(ret_error, xstrdup("CSR has a commonName that is not a string"));
                        return -EBADMSG;
                }
                for (size_t j = 0; j < *n; j++)
                        dup |= strlen((*names)[j]) == (size_t) len &&
                               strncasecmp((*names)[j], (const char *) utf8, (size_t) len) == 0;
                if (!dup) {
                        *names = xrealloc(*names, (*n + 1) * sizeof(char *));
                        (*names)[(*n)++] = xstrndup((const char *) utf8, (size_t) len);
                }
                OPENSSL_free(utf8);
        }
        return 0;
}

/* Every requested name must be a host name the document gives this holder, inside the CA's
 * domain. Names are compared without regard to case; the certificate carries the allowed
 * spelling. */
static int check_names(const ca *c, char **names, size_t n, const char *const *allowed, size_t n_allowed,
                       const char *holder, char **ret_error) {
        if (n == 0) {
                set_error(ret_error, xstrdup("CSR asks for no DNS name (neither subjectAltName nor commonName)"));
                return -EBADMSG;
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *p = printable(names[i]);
                const char *match = NULL;

                if (names[i][0] == '*') {
                        set_error(ret_error, xasprintf("CSR asks for the wildcard '%s'; wildcard certificates are not "
                                                       "issued",
                                                       p));
                        return -EPERM;
                }
                if (!x509_dns_name_valid(names[i])) {
                        set_error(ret_error, xasprintf("CSR asks for '%s', which is not a DNS host name", p));
                        return -EPERM;
                }
                for (size_t j = 0; j < n_allowed && !match; j++)
                        if (strcasecmp(names[i], allowed[j]) == 0)
                                match = allowed[j];
                if (!match) {
                        if (holder)
                                set_error(ret_error, xasprintf("CSR asks for '%s' which the document does not give %s",
                                                               p, holder));
                        else
                                set_error(ret_error, xasprintf("CSR asks for '%s' which is not among the allowed names",
                                                               p));
                        return -EPERM;
                }
                if (!x509_name_in_domain(names[i], c->domain)) {
                        set_error(ret_error, xasprintf("CSR asks for '%s' which is outside the CA's domain '%s'", p,
                                                       c->domain));
                        return -EPERM;
                }
                free(names[i]);
                names[i] = xstrdup(match);
        }
        return 0;
}

/* eku: "serverAuth" (a database's server certificate) or "serverAuth,clientAuth" (an identity on
 * the controller's mutual-TLS channel). */
static int build_cert(const ca *c, EVP_PKEY *pub, char **names, size_t n, const char *eku, int64_t lifetime,
                      X509 **ret, char **ret_error) {
        _cleanup_(X509_freep) X509 *x = X509_new();
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = NULL;
        int64_t backdate = lifetime / 10 < CA_BACKDATE_MAX ? lifetime / 10 : CA_BACKDATE_MAX;
        time_t now = time(NULL), ca_not_before, ca_not_after;
        const char *cn = NULL;
        X509V3_CTX ctx;

        /* A commonName holds at most 64 characters (RFC 5280 ub-common-name) and our host names
         * are often longer: the first name that fits, else an empty subject with a critical
         * subjectAltName (RFC 5280 4.2.1.6). Clients match the subjectAltName either way. */
        for (size_t i = 0; i < n && !cn; i++)
                if (strlen(names[i]) <= X509_CN_MAX)
                        cn = names[i];

        if (x509_validity(c->cert, &ca_not_before, &ca_not_after) < 0) {
                set_error(ret_error, xstrdup("the CA certificate's validity does not parse"));
                return -EBADMSG;
        }
        if ((int64_t) now + lifetime > (int64_t) ca_not_after) {
                char when[32];
                x509_format_time(ca_not_after, when);
                set_error(ret_error, xasprintf("the certificate would outlive the CA certificate (it expires %s)", when));
                return -ERANGE;
        }
        gens = x509_dns_general_names((const char *const *) names, n);
        /* Short lifetimes get a proportionally short backdate: a 30-second test certificate that
         * started 5 minutes ago would be due for renewal the moment it arrives. */
        if (!x || !gens || X509_set_version(x, X509_VERSION_3) != 1 || x509_set_random_serial(x) < 0 ||
            !X509_time_adj_ex(X509_getm_notBefore(x), 0, -(long) backdate, &now) ||
            !X509_time_adj_ex(X509_getm_notAfter(x), 0, (long) lifetime, &now) ||
            X509_set_issuer_name(x, X509_get_subject_name(c->cert)) != 1 || set_subject_cn(x, cn, false) < 0 ||
            X509_set_pubkey(x, pub) != 1)
                goto fail;
        X509V3_set_ctx(&ctx, c->cert, x, NULL, NULL, 0);
        if (add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
            add_ext(x, &ctx, NID_key_usage,
                    EVP_PKEY_is_a(pub, "RSA") ? "critical,digitalSignature,keyEncipherment"
                                              : "critical,digitalSignature") < 0 ||
            add_ext(x, &ctx, NID_ext_key_usage, eku) < 0 ||
            add_ext(x, &ctx, NID_subject_key_identifier, "hash") < 0 ||
            add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always") < 0 ||
            X509_add1_ext_i2d(x, NID_subject_alt_name, gens, !cn, X509V3_ADD_DEFAULT) != 1)
                goto fail;
        if (X509_sign(x, c->key, EVP_sha256()) <= 0)
                goto fail;
        *ret = TAKE_PTR(x);
        return 0;
fail:
        set_error(ret_error, x509_openssl_error("cannot build the certificate"));
        return -EIO;
}

/* Parse a request and check what every request must satisfy, whatever it is issued for: proof of
 * possession, an acceptable key, no CA. */
static int read_request(const char *csr_pem, X509_REQ **ret_req, STACK_OF(X509_EXTENSION) **ret_exts,
                        char **ret_error) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_(free_extensions) STACK_OF(X509_EXTENSION) *exts = NULL;
        _cleanup_free_ char *err = NULL;
        EVP_PKEY *pub;
        int r;

        r = x509_req_from_pem(csr_pem, &req, &err);
        if (r < 0) {
                set_error(ret_error, xasprintf("CSR: %s", err));
                return r;
        }
        pub = X509_REQ_get0_pubkey(req);
        if (!pub) {
                set_error(ret_error, x509_openssl_error("CSR has no usable public key"));
                return -EBADMSG;
        }
        /* Proof of possession: whoever made the request holds the key it asks to have certified,
         * and nobody changed a byte of it since. */
        if (X509_REQ_verify(req, pub) != 1) {
                ERR_clear_error();
                set_error(ret_error, xstrdup("CSR signature does not verify with its own key: the request was "
                                             "altered or not made with that key"));
                return -EBADMSG;
        }
        r = check_key(pub, ret_error);
        if (r < 0)
                return r;
        exts = X509_REQ_get_extensions(req);
        for (int i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
                X509_EXTENSION *e = sk_X509_EXTENSION_value(exts, i);
                _cleanup_(BASIC_CONSTRAINTS_freep) BASIC_CONSTRAINTS *bc = NULL;

                if (OBJ_obj2nid(X509_EXTENSION_get_object(e)) != NID_basic_constraints)
                        continue;
                bc = X509V3_EXT_d2i(e);
                if (!bc || bc->ca) {
                        ERR_clear_error();
                        set_error(ret_error, xstrdup("CSR asks for a CA certificate (basicConstraints CA:TRUE); only "
                                                     "server certificates are issued"));
                        return -EPERM;
                }
        }
        *ret_req = TAKE_PTR(req);
        *ret_exts = TAKE_PTR(exts);
        return 0;
}

/* Build, then verify as a peer will: a CA that issues something its own name constraints reject
 * would only move the error to a client. */
static int issue(const ca *c, EVP_PKEY *pub, char **names, size_t n, const char *eku, int64_t lifetime,
                 char **ret_cert_pem, char **ret_error) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        r = build_cert(c, pub, names, n, eku, lifetime, &cert, ret_error);
        if (r < 0)
                return r;
        r = x509_verify_server_cert(cert, c->cert, &err);
        if (r < 0) {
                set_error(ret_error, xasprintf("the issued certificate does not verify: %s", err));
                return r;
        }
        *ret_cert_pem = x509_cert_to_pem(cert);
        if (!*ret_cert_pem) {
                set_error(ret_error, xstrdup("cannot encode the certificate"));
                return -EIO;
        }
        return 0;
}

int ca_sign_csr(const ca *c, const char *csr_pem, const char *const *allowed, size_t n_allowed, const char *holder,
                int64_t lifetime_seconds, char **ret_cert_pem, char **ret_error) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_(free_extensions) STACK_OF(X509_EXTENSION) *exts = NULL;
        _cleanup_free_ char *err = NULL;
        char **names = NULL;
        size_t n = 0;
        int r;

        if (lifetime_seconds < 1 || lifetime_seconds > CA_CERT_LIFETIME_MAX) {
                set_error(ret_error, xasprintf("the lifetime must be between 1 second and %d days",
                                               CA_CERT_LIFETIME_MAX / 86400));
                return -ERANGE;
        }
        r = read_request(csr_pem, &req, &exts, ret_error);
        if (r < 0)
                return r;
        /* Only the names are taken from the request; every other extension it carries is ignored
         * and the certificate's are our own. */
        r = x509_exts_dns_names(exts, &names, &n, &err);
        if (r < 0) {
                set_error(ret_error, xasprintf("CSR %s", err));
                return r;
        }
        r = add_common_names(req, &names, &n, ret_error);
        if (r >= 0)
                r = check_names(c, names, n, allowed, n_allowed, holder, ret_error);
        if (r >= 0)
                r = issue(c, X509_REQ_get0_pubkey(req), names, n, "serverAuth", lifetime_seconds, ret_cert_pem,
                          ret_error);
        x509_names_free(names, n);
        return r;
}

int ca_sign_host_csr(const ca *c, const char *csr_pem, const char *host, int64_t lifetime_seconds,
                     char **ret_cert_pem, char **ret_error) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_(free_extensions) STACK_OF(X509_EXTENSION) *exts = NULL;
        _cleanup_free_ char *name = NULL;
        int r;

        if (!x509_host_label_valid(host)) {
                _cleanup_free_ char *p = printable(host);
                set_error(ret_error, xasprintf("'%s' is not a host name: use at most 63 lower-case letters, digits "
                                               "and '-', starting and ending with a letter or digit",
                                               p));
                return -EINVAL;
        }
        if (lifetime_seconds < 1 || lifetime_seconds > CA_CERT_LIFETIME_MAX) {
                set_error(ret_error, xasprintf("the lifetime must be between 1 second and %d days",
                                               CA_CERT_LIFETIME_MAX / 86400));
                return -ERANGE;
        }
        r = read_request(csr_pem, &req, &exts, ret_error);
        if (r < 0)
                return r;
        /* The names the request asks for do not matter: the controller names the host, after the
         * name it enrolled with, so a host cannot obtain another's identity or the controller's. */
        name = mtls_host_name(host, c->domain);
        if (!x509_dns_name_valid(name)) {
                set_error(ret_error, xasprintf("'%s' is too long for a DNS name", name));
                return -EINVAL;
        }
        return issue(c, X509_REQ_get0_pubkey(req), &name, 1, "serverAuth,clientAuth", lifetime_seconds, ret_cert_pem,
                     ret_error);
}

char *ca_cert_pem(const ca *c) {
        return x509_cert_to_pem(c->cert);
}

/* The controller's identity: certified like a host, as controller.<domain>. The key is claimed
 * like the CA's (generate_key()): agents may hold connections to it, and init never replaces. */
int ca_create_controller_cert(const ca *c, const char *state_dir, char **ret_error) {
        _cleanup_free_ char *key_path = xasprintf("%s/%s", state_dir, CA_CONTROLLER_KEY_FILE),
                            *cert_path = xasprintf("%s/%s", state_dir, CA_CONTROLLER_CERT_FILE),
                            *name = mtls_controller_name(c->domain), *pem = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        struct stat st;
        bool have_key, have_cert;
        int r;

        have_key = lstat(key_path, &st) == 0 && st.st_size > 0;
        have_cert = lstat(cert_path, &st) == 0;
        if (have_key && have_cert)
                return 0;
        if (have_cert) {
                set_error(ret_error, xasprintf("%s exists but its key %s does not; move %s away to issue a new "
                                               "controller certificate",
                                               cert_path, key_path, cert_path));
                return -ENOKEY;
        }
        r = have_key ? -EEXIST : generate_key(key_path, &key);
        if (r == -EEXIST)
                r = read_key(key_path, "controller key", true, &key, ret_error);
        else if (r < 0)
                set_error(ret_error, xasprintf("cannot create the controller key %s: %s", key_path, strerror(-r)));
        if (r < 0)
                return r;
        r = issue(c, key, &name, 1, "serverAuth,clientAuth", CA_CONTROLLER_LIFETIME, &pem, ret_error);
        if (r < 0)
                return r;
        r = write_file_atomic(cert_path, pem, strlen(pem), 0644);
        if (r < 0) {
                set_error(ret_error, xasprintf("cannot write %s: %s", cert_path, strerror(-r)));
                return r;
        }
        return 1;
}
