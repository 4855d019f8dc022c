/* Enrollment: check the facts, then — in one store transaction — consume the token (if it may
 * enroll this name: a new one, or the host it was made to replace), issue the host's certificate
 * and record the host. */
#include <arpa/inet.h>

#include "enrollment.h"
#include "https-server.h"
#include "tokens.h"
#include "x509.h"

static int fail(int status, int r, int *ret_status, char **ret_error, char *msg) {
        *ret_status = status;
        if (ret_error)
                *ret_error = msg;
        else
                free(msg);
        return r;
}

/* For messages: a value from the network, printable and bounded. */
static char *shown(const char *s) {
        char *p = xstrndup(strempty(s), 64);

        for (char *q = p; *q; q++)
                if (*q < 0x20 || *q > 0x7e || *q == '\'')
                        *q = '?';
        return p;
}

/* "ADDR:PORT" or "[ADDR6]:PORT" → the address (without brackets), its family and the port. */
static int parse_endpoint(const char *s, char **ret_addr, int *ret_family, unsigned *ret_port) {
        _cleanup_free_ char *addr = NULL;
        const char *colon = strrchr(s, ':');
        unsigned char buf[sizeof(struct in6_addr)];
        unsigned long port = 0;
        size_t n;
        int family;

        if (!colon || colon == s || !colon[1] || colon[1] == '0')
                return -EINVAL;
        for (const char *p = colon + 1; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                port = port * 10 + (unsigned long) (*p - '0');
                if (port > 65535)
                        return -EINVAL;
        }
        n = (size_t) (colon - s);
        if (s[0] == '[') {
                if (n < 3 || s[n - 1] != ']')
                        return -EINVAL;
                addr = xstrndup(s + 1, n - 2);
                family = AF_INET6;
        } else {
                addr = xstrndup(s, n);
                family = AF_INET;
        }
        if (inet_pton(family, addr, buf) != 1)
                return -EINVAL;
        *ret_addr = TAKE_PTR(addr);
        *ret_family = family;
        *ret_port = (unsigned) port;
        return 0;
}

static bool unspecified(const char *addr, int family) {
        unsigned char buf[sizeof(struct in6_addr)] = {}, zero[sizeof(struct in6_addr)] = {};

        return inet_pton(family, addr, buf) == 1 &&
               memcmp(buf, zero, family == AF_INET ? sizeof(struct in_addr) : sizeof(struct in6_addr)) == 0;
}

/* The decoder (wire.c) checks the same; this is the transaction's own guard, for callers that
 * build a request themselves. */
static int check_facts(const wire_facts *f, char **ret_endpoint, int *ret_status, char **ret_error) {
        _cleanup_free_ char *addr = NULL;
        unsigned char buf[sizeof(struct in6_addr)];
        unsigned port;
        int family;

        if (!f->name || !x509_host_label_valid(f->name)) {
                _cleanup_free_ char *p = shown(f->name);
                return fail(400, -EINVAL, ret_status, ret_error,
                            xasprintf("facts.name: '%s' is not a host name (a DNS label: at most 63 lower-case "
                                      "letters, digits and '-', starting and ending with a letter or digit)",
                                      p));
        }
        if (f->n_addresses < 1 || f->n_addresses > WIRE_MAX_ADDRESSES)
                return fail(400, -EINVAL, ret_status, ret_error,
                            xasprintf("facts.addresses: must list between 1 and %d addresses", WIRE_MAX_ADDRESSES));
        for (size_t i = 0; i < f->n_addresses; i++) {
                _cleanup_free_ char *p = shown(f->addresses[i]);

                if (inet_pton(AF_INET, f->addresses[i], buf) != 1 && inet_pton(AF_INET6, f->addresses[i], buf) != 1)
                        return fail(400, -EINVAL, ret_status, ret_error,
                                    xasprintf("facts.addresses[%zu]: '%s' is not an IPv4 or IPv6 address", i, p));
                for (size_t j = 0; j < i; j++)
                        if (streq(f->addresses[j], f->addresses[i]))
                                return fail(400, -EINVAL, ret_status, ret_error,
                                            xasprintf("facts.addresses[%zu]: '%s' is listed twice", i, p));
        }
        if (f->cpus < 1 || f->cpus > 65536)
                return fail(400, -EINVAL, ret_status, ret_error,
                            xstrdup("facts.cpus: must be between 1 and 65536"));
        if (f->memory_bytes < 1)
                return fail(400, -EINVAL, ret_status, ret_error, xstrdup("facts.memoryBytes: must be at least 1"));
        if (!f->endpoint || parse_endpoint(f->endpoint, &addr, &family, &port) < 0) {
                _cleanup_free_ char *p = shown(f->endpoint);
                return fail(400, -EINVAL, ret_status, ret_error,
                            xasprintf("facts.endpoint: '%s' is not ADDRESS:PORT (IPv4 or [IPv6] address, port "
                                      "1-65535)",
                                      p));
        }
        if (unspecified(addr, family)) {
                /* The agent listens on every address: the controller reaches it on its first. */
                const char *first = f->addresses[0];
                *ret_endpoint = strchr(first, ':') ? xasprintf("[%s]:%u", first, port) : xasprintf("%s:%u", first, port);
        } else
                *ret_endpoint = xstrdup(f->endpoint);
        return 0;
}

/* The HTTP status of a tokens_consume() refusal. */
static int token_status(int r) {
        switch (r) {
        case -EBADMSG:
                return 400;
        case -ENOENT:
        case -EACCES:
                return 401;
        case -EPERM:
                return 403;
        case -EEXIST:
                return 409;
        case -EALREADY:
        case -ETIME:
                return 410;
        default:
                return 500;
        }
}

int enroll_host(store *s, const ca *c, const char *signing_key_pem, const wire_enroll_request *req, int64_t now,
                wire_enroll_response *ret, bool *ret_replaced, int *ret_status, char **ret_error) {
        _cleanup_free_ char *endpoint = NULL, *cert_pem = NULL, *err = NULL, *ca_pem = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL;
        stored_token token = {};
        stored_host h = {};
        char fingerprint[65];
        bool replaced = false;
        int r, status = 500;

        r = check_facts(&req->facts, &endpoint, ret_status, ret_error);
        if (r < 0)
                return r;
        if (!req->csr || !*req->csr)
                return fail(400, -EINVAL, ret_status, ret_error, xstrdup("csr: missing"));
        ca_pem = ca_cert_pem(c);
        if (!ca_pem)
                return fail(500, -EIO, ret_status, ret_error, xstrdup("cannot encode the CA certificate"));

        r = store_begin(s);
        if (r < 0)
                return fail(500, r, ret_status, ret_error,
                            xasprintf("cannot begin a transaction in the state store: %s", strerror(-r)));
        /* Nothing is issued before the token is known good, and good for this name: the name rule
         * is checked under the transaction's write lock, so a second enrollment of the same name
         * waits for this one and then sees its host. */
        r = tokens_consume(s, req->token, req->facts.name, now, &token, &err);
        if (r < 0) {
                status = token_status(r);
                goto fail;
        }
        replaced = r > 0;
        r = ca_sign_host_csr(c, req->csr, req->facts.name, CA_HOST_LIFETIME, &cert_pem, &err);
        if (r < 0) {
                status = r == -EBADMSG || r == -EPERM || r == -EINVAL ? 400 : 500;
                goto fail;
        }
        r = x509_cert_from_pem(cert_pem, &cert, NULL);
        if (r >= 0)
                r = x509_cert_fingerprint(cert, fingerprint);
        if (r < 0) {
                err = xstrdup("cannot read back the issued certificate");
                goto fail;
        }
        h = (stored_host) {
                .name = req->facts.name,
                .role = token.role,
                .addresses = req->facts.addresses,
                .n_addresses = req->facts.n_addresses,
                .cpus = req->facts.cpus,
                .memory_bytes = req->facts.memory_bytes,
                .labels = token.labels,
                .endpoint = endpoint,
                .cert_fingerprint = fingerprint,
                .enrolled_at = now,
        };
        /* Only a token made for this host may overwrite it: the store refuses a plain token's insert
         * over an enrolled name even if the rule above were ever bypassed. */
        r = store_save_host(s, &h, token.replaces != NULL);
        if (r == -EEXIST) {
                status = 409;
                err = tokens_enrolled_error(req->facts.name);
                goto fail;
        }
        if (r >= 0)
                r = store_commit(s);
        if (r < 0) {
                err = xasprintf("cannot record host '%s' in the state store: %s", req->facts.name, strerror(-r));
                goto fail;
        }
        *ret = (wire_enroll_response) {
                .host = xstrdup(req->facts.name),
                .role = xstrdup(token.role),
                .certificate = TAKE_PTR(cert_pem),
                .ca = TAKE_PTR(ca_pem),
                .signing_key = xstrdup(signing_key_pem),
                .controller = mtls_controller_name(ca_domain(c)),
        };
        stored_token_done(&token);
        if (ret_replaced)
                *ret_replaced = replaced;
        return 0;
fail:
        store_rollback(s);
        stored_token_done(&token);
        return fail(status, r, ret_status, ret_error, TAKE_PTR(err));
}
