/* agentctl enroll: trust the controller's CA only after it is checked (fingerprint or token
 * binding), send the token only to that CA's controller, keep the host key on the host. */
#include <ctype.h>
#include <json-c/json.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "enroll.h"
#include "fileio.h"
#include "https-client.h"
#include "https-server.h"
#include "macro.h"
#include "postgres.h"
#include "state.h"
#include "wire.h"
#include "x509.h"

#define ENROLL_TIMEOUT_MS 30000

static void free_extensions(STACK_OF(X509_EXTENSION) **exts) {
        sk_X509_EXTENSION_pop_free(*exts, X509_EXTENSION_free);
}

void enrollment_done(enrollment *e) {
        free(e->controller_url);
        free(e->controller_name);
        free(e->host);
        free(e->role);
        free(e->ca_fingerprint);
        *e = (enrollment) {};
}

char *enrollment_file(const agent_config *cfg, const char *file) {
        return xasprintf("%s/%s", cfg->state_dir, file);
}

static const char *json_str(json_object *o, const char *key) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

int enrollment_load(const agent_config *cfg, enrollment *ret, char **ret_error) {
        _cleanup_free_ char *path = enrollment_file(cfg, ENROLL_FILE), *text = NULL;
        json_object *o, *v;
        enrollment e = {};
        const char *url, *name, *host, *role, *fp;
        int r;

        r = read_full_file(path, 64 * 1024, &text, NULL);
        if (r == -ENOENT) {
                *ret_error = xasprintf("this host is not enrolled (%s is missing): run 'agentctl enroll'", path);
                return r;
        }
        if (r < 0) {
                *ret_error = xasprintf("cannot read %s: %s", path, strerror(-r));
                return r;
        }
        o = json_tokener_parse(text);
        url = o ? json_str(o, "controller") : NULL;
        name = o ? json_str(o, "controllerName") : NULL;
        host = o ? json_str(o, "host") : NULL;
        role = o ? json_str(o, "role") : NULL;
        fp = o ? json_str(o, "caFingerprint") : NULL;
        if (!url || !name || !host || !role || !fp || !json_object_object_get_ex(o, "enrolledAt", &v) ||
            !json_object_is_type(v, json_type_int)) {
                json_object_put(o);
                *ret_error = xasprintf("%s is damaged; enroll again with 'agentctl enroll --force'", path);
                return -EBADMSG;
        }
        e = (enrollment) {
                .controller_url = xstrdup(url),
                .controller_name = xstrdup(name),
                .host = xstrdup(host),
                .role = xstrdup(role),
                .enrolled_at = json_object_get_int64(v),
                .ca_fingerprint = xstrdup(fp),
        };
        json_object_put(o);
        *ret = e;
        return 0;
}

char *agent_trust_key(const agent_config *cfg) {
        char *path;

        if (cfg->trust_key)
                return xstrdup(cfg->trust_key);
        path = enrollment_file(cfg, ENROLL_SIGNING_KEY);
        if (access(path, F_OK) == 0)
                return path;
        free(path);
        return NULL;
}

bool enroll_parse_fingerprint(const char *s, char ret[65]) {
        size_t n = 0;

        if (strncasecmp(s, "sha256:", 7) == 0)
                s += 7;
        for (; *s; s++) {
                if (*s == ':')
                        continue;
                if (!isxdigit((unsigned char) *s) || n == 64)
                        return false;
                ret[n++] = (char) tolower((unsigned char) *s);
        }
        ret[n] = '\0';
        return n == 64;
}

/* "ab:cd:..." for people comparing it with what `infrastream-controller ca show` printed. */
static void format_fingerprint(const char *hex, char ret[100]) {
        size_t n = 0;
        for (size_t i = 0; hex[i] && i < 64; i += 2) {
                if (i)
                        ret[n++] = ':';
                ret[n++] = hex[i];
                ret[n++] = hex[i + 1];
        }
        ret[n] = '\0';
}

static char *request_failure(const char *what, const https_call *c) {
        _cleanup_free_ char *msg = NULL;

        if (c->error)
                return xasprintf("cannot reach the controller at %s: %s", what, c->error);
        msg = c->response ? wire_error_message(c->response, c->response_size) : NULL;
        return xasprintf("the controller answered %ld to %s%s%s", c->status, what, msg ? ": " : "", strempty(msg));
}

static X509_REQ *make_csr(EVP_PKEY *key, const char *identity, char **ret_error) {
        X509_REQ *req = X509_REQ_new();
        _cleanup_(X509_NAME_freep) X509_NAME *subject = X509_NAME_new();
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = x509_dns_general_names(&identity, 1);
        _cleanup_(free_extensions) STACK_OF(X509_EXTENSION) *exts = NULL;

        if (!req || !subject || !gens || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
            (strlen(identity) <= X509_CN_MAX &&
             X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *) identity, -1, -1, 0) != 1) ||
            X509_REQ_set_subject_name(req, subject) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
            X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1 ||
            X509_REQ_add_extensions(req, exts) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0) {
                X509_REQ_free(req);
                *ret_error = x509_openssl_error("cannot build the certificate request");
                return NULL;
        }
        return req;
}

static int check_signing_key(const char *pem, char **ret_error) {
        _cleanup_(BIO_free_allp) BIO *bio = BIO_new_mem_buf(pem, -1);
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;

        if (!k || EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
                ERR_clear_error();
                *ret_error = xstrdup("the controller's answer: signingKey is not a PEM Ed25519 public key");
                return -EBADMSG;
        }
        return 0;
}

/* The controller's answer, checked before anything is stored: its CA is the one we checked, the
 * certificate is for our key and our name and verifies against that CA. */
static int check_response(const wire_enroll_response *m, const agent_config *cfg, X509 *ca, EVP_PKEY *key,
                          const char *identity, const char *controller_name, char **ret_error) {
        _cleanup_(X509_freep) X509 *cert = NULL, *ca2 = NULL;
        _cleanup_free_ char *err = NULL;
        char fp1[65], fp2[65];
        int r;

        if (!streq(m->host, cfg->host)) {
                *ret_error = xasprintf("the controller enrolled this host as '%s', but its configured name is '%s'",
                                       m->host, cfg->host);
                return -EBADMSG;
        }
        if (!streq(m->controller, controller_name)) {
                *ret_error = xasprintf("the controller calls itself '%s', but its CA's controller is '%s'",
                                       m->controller, controller_name);
                return -EBADMSG;
        }
        if (x509_cert_from_pem(m->ca, &ca2, &err) < 0 || x509_cert_fingerprint(ca2, fp2) < 0 ||
            x509_cert_fingerprint(ca, fp1) < 0 || !streq(fp1, fp2)) {
                *ret_error = xstrdup("the controller's answer carries another CA certificate than the one checked");
                return -EBADMSG;
        }
        r = x509_cert_from_pem(m->certificate, &cert, &err);
        if (r < 0) {
                *ret_error = xasprintf("the controller's answer: certificate: %s", err);
                return r;
        }
        if (X509_check_private_key(cert, key) != 1) {
                ERR_clear_error();
                *ret_error = xstrdup("the controller issued a certificate for another key than this host's");
                return -EBADMSG;
        }
        if (!x509_cert_covers(cert, &identity, 1, NULL)) {
                *ret_error = xasprintf("the certificate the controller issued does not name '%s'", identity);
                return -EBADMSG;
        }
        r = x509_verify_server_cert(cert, ca, &err);
        if (r < 0) {
                *ret_error = xasprintf("the certificate the controller issued does not verify against its CA: %s", err);
                return r;
        }
        return check_signing_key(m->signing_key, ret_error);
}

static int store(const agent_config *cfg, const char *name, const char *data, size_t size, mode_t mode,
                 char **ret_error) {
        _cleanup_free_ char *path = enrollment_file(cfg, name);
        int r = write_file_atomic(path, data, size, mode);
        if (r < 0) {
                *ret_error = xasprintf("cannot write %s: %s", path, strerror(-r));
                return r;
        }
        return 0;
}

/* "https://HOST[:PORT]" and nothing after it but slashes: we add the paths. */
static bool valid_controller_url(const char *u) {
        const char *rest;

        if (strncmp(u, "https://", 8) != 0 || !u[8] || u[8] == '/')
                return false;
        rest = u + 8 + strcspn(u + 8, "/?#@ ");
        return strspn(rest, "/") == strlen(rest);
}

/* The endpoint the controller pushes to: the listen address, or this host's first address when
 * the listener takes every address (0.0.0.0, [::]). */
static char *endpoint(const agent_config *cfg) {
        _cleanup_free_ char *addr = NULL;
        int port;

        if (agent_parse_listen(cfg->listen, &addr, &port) < 0)
                return NULL;
        if (!streq(addr, "0.0.0.0") && !streq(addr, "::"))
                return xstrdup(cfg->listen);
        return strchr(cfg->addresses[0], ':') ? xasprintf("[%s]:%d", cfg->addresses[0], port)
                                              : xasprintf("%s:%d", cfg->addresses[0], port);
}

int agent_enroll(const agent_config *cfg, const enroll_options *o, enrollment *ret, char **ret_error) {
        _cleanup_free_ char *url = NULL, *ca_url = NULL, *enroll_url = NULL, *domain = NULL, *controller_name = NULL,
                            *identity = NULL, *csr_pem = NULL, *err = NULL, *json_path = NULL, *ep = NULL;
        _cleanup_(X509_freep) X509 *ca = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        wire_ca wca = {};
        wire_enroll_response resp = {};
        wire_enroll_request ereq = {};
        https_call call = {};
        json_object *body = NULL, *ej = NULL;
        char id[WIRE_TOKEN_ID_LEN + 1], secret[WIRE_TOKEN_SECRET_LEN + 1], fp[65], want[65], binding[65];
        char *key_pem = NULL, *text;
        size_t key_size = 0;
        unsigned char bkey[32];
        long timeout = o->timeout_ms > 0 ? o->timeout_ms : ENROLL_TIMEOUT_MS;
        int r;

        if (!wire_token_parse(o->token, id, secret)) {
                *ret_error = xstrdup("--token: not an enrollment token (ID.SECRET as 'infrastream-controller token "
                                     "create' printed it)");
                r = -EINVAL;
                goto finish;
        }
        if (o->ca_fingerprint && !enroll_parse_fingerprint(o->ca_fingerprint, want)) {
                *ret_error = xasprintf("--ca-fingerprint: '%.100s' is not a SHA-256 fingerprint (64 hex digits, "
                                       "optionally 'sha256:' and ':' separators)",
                                       o->ca_fingerprint);
                r = -EINVAL;
                goto finish;
        }
        if (!valid_controller_url(o->controller_url)) {
                *ret_error = xasprintf("--controller: expected https://ADDRESS:PORT, not '%.200s'", o->controller_url);
                r = -EINVAL;
                goto finish;
        }
        if (cfg->n_addresses == 0 || !cfg->listen) {
                *ret_error = xasprintf("%s: 'addresses' must be set: the controller places databases by them and "
                                       "pushes to this host's listener",
                                       cfg->path);
                r = -EINVAL;
                goto finish;
        }
        json_path = enrollment_file(cfg, ENROLL_FILE);
        if (!o->force && access(json_path, F_OK) == 0) {
                enrollment e = {};
                if (enrollment_load(cfg, &e, &err) >= 0) {
                        *ret_error = xasprintf("already enrolled as '%s' with %s (%s); use --force to enroll again "
                                               "(a new key and certificate), with a token made by "
                                               "'infrastream-controller token create --replace %s'",
                                               e.host, e.controller_name, e.controller_url, e.host);
                        enrollment_done(&e);
                } else
                        *ret_error = xasprintf("already enrolled (%s exists); use --force to enroll again", json_path);
                r = -EEXIST;
                goto finish;
        }
        url = xstrdup(o->controller_url);
        while (url[strlen(url) - 1] == '/')
                url[strlen(url) - 1] = '\0';

        /* 1. The CA, fetched without trust: checked below before the secret leaves this host. */
        ca_url = xasprintf("%s/v1/ca?token-id=%s", url, id);
        {
                https_client_tls tls = { .insecure = true };
                call = (https_call) { .method = "GET", .url = ca_url, .timeout_ms = timeout, .max_response = WIRE_MAX_SIZE };
                r = https_perform(&tls, &call);
        }
        if (r < 0 || call.status != 200) {
                *ret_error = request_failure(url, &call);
                r = r < 0 ? r : -EPROTO;
                goto finish;
        }
        r = wire_ca_decode(call.response, call.response_size, &wca, &err);
        if (r < 0) {
                *ret_error = xasprintf("the controller's CA answer is malformed: %s", err);
                goto finish;
        }
        r = x509_cert_from_pem(wca.ca, &ca, &err);
        if (r < 0 || x509_cert_fingerprint(ca, fp) < 0) {
                *ret_error = xasprintf("the controller's CA certificate is unusable: %s", strempty(err));
                r = r < 0 ? r : -EBADMSG;
                goto finish;
        }
        if (o->ca_fingerprint) {
                if (!streq(fp, want)) {
                        char a[100], b[100];
                        format_fingerprint(fp, a);
                        format_fingerprint(want, b);
                        *ret_error = xasprintf("CA fingerprint mismatch: the controller at %s has CA sha256:%s, "
                                               "--ca-fingerprint expects sha256:%s; nothing was sent",
                                               url, a, b);
                        r = -EKEYREJECTED;
                        goto finish;
                }
        } else {
                wire_token_binding_key(secret, bkey);
                wire_ca_binding(bkey, wca.ca, binding);
                explicit_bzero(bkey, sizeof(bkey));
                if (strlen(wca.binding) != 64 || CRYPTO_memcmp(binding, wca.binding, 64) != 0) {
                        *ret_error = xstrdup(
                                *wca.binding ? "the controller's CA is not bound to this token: wrong controller or token; "
                                               "nothing was sent (pass --ca-fingerprint to trust a CA by its fingerprint)"
                                             : "the controller's CA is not bound to this token: wrong controller or token "
                                               "(it knows no unused token with this ID); nothing was sent");
                        r = -EKEYREJECTED;
                        goto finish;
                }
        }
        r = x509_ca_domain(ca, &domain);
        if (r < 0) {
                *ret_error = xstrdup("the controller's CA certificate has no single DNS name constraint (its domain)");
                goto finish;
        }
        controller_name = mtls_controller_name(domain);
        identity = mtls_host_name(cfg->host, domain);
        if (!x509_dns_name_valid(identity)) {
                *ret_error = xasprintf("host '%s' gives no valid identity in domain '%s'", cfg->host, domain);
                r = -EINVAL;
                goto finish;
        }

        /* 2. A key of our own and its request: the controller only ever sees the public key. */
        key = x509_generate_ec_key();
        if (!key) {
                *ret_error = xstrdup("cannot generate the host key");
                r = -EIO;
                goto finish;
        }
        req = make_csr(key, identity, ret_error);
        if (!req) {
                r = -EIO;
                goto finish;
        }
        csr_pem = x509_req_to_pem(req);
        ep = endpoint(cfg);
        if (!csr_pem || !ep) {
                *ret_error = xstrdup(!csr_pem ? "cannot encode the certificate request" : "listen: not ADDRESS:PORT");
                r = -EIO;
                goto finish;
        }
        ereq = (wire_enroll_request) {
                .token = (char *) o->token,
                .csr = csr_pem,
                .facts = {
                        .name = cfg->host,
                        .addresses = cfg->addresses,
                        .n_addresses = cfg->n_addresses,
                        .cpus = host_cpus(cfg),
                        .memory_bytes = host_memory_bytes(cfg),
                        .endpoint = ep,
                },
        };
        body = wire_enroll_request_to_json(&ereq);
        ereq = (wire_enroll_request) {};
        text = (char *) json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        enroll_url = xasprintf("%s/v1/enroll", url);
        https_call_done(&call);
        {
                _cleanup_free_ char *ca_pem = x509_cert_to_pem(ca);
                https_client_tls tls = { .ca_pem = ca_pem };
                call = (https_call) {
                        .method = "POST",
                        .url = enroll_url,
                        .peer_name = controller_name,
                        .body = text,
                        .body_size = strlen(text),
                        .timeout_ms = timeout,
                        .max_response = WIRE_MAX_SIZE,
                };
                r = https_perform(&tls, &call);
        }
        /* The serialized request held the token's secret. */
        explicit_bzero(text, strlen(text));
        json_object_put(body);
        body = NULL;
        if (r < 0 || call.status != 200) {
                *ret_error = request_failure(url, &call);
                r = r < 0 ? r : -EPROTO;
                goto finish;
        }
        r = wire_enroll_response_decode(call.response, call.response_size, &resp, &err);
        if (r < 0) {
                *ret_error = xasprintf("the controller's enrollment answer is malformed: %s", err);
                goto finish;
        }
        r = check_response(&resp, cfg, ca, key, identity, controller_name, ret_error);
        if (r < 0)
                goto finish;

        /* 3. Stored: the key first (0600 from its creation), enrollment.json last. */
        r = state_prepare(cfg, ret_error);
        if (r < 0)
                goto finish;
        key_pem = x509_key_to_pem(key, &key_size);
        if (!key_pem) {
                *ret_error = xstrdup("cannot encode the host key");
                r = -EIO;
                goto finish;
        }
        r = store(cfg, ENROLL_HOST_KEY, key_pem, key_size, 0600, ret_error);
        explicit_bzero(key_pem, key_size);
        free(key_pem);
        if (r < 0)
                goto finish;
        r = store(cfg, ENROLL_HOST_CERT, resp.certificate, strlen(resp.certificate), 0644, ret_error);
        if (r >= 0)
                r = store(cfg, ENROLL_CA, resp.ca, strlen(resp.ca), 0644, ret_error);
        if (r >= 0)
                r = store(cfg, ENROLL_SIGNING_KEY, resp.signing_key, strlen(resp.signing_key), 0644, ret_error);
        if (r < 0)
                goto finish;
        *ret = (enrollment) {
                .controller_url = xstrdup(url),
                .controller_name = xstrdup(controller_name),
                .host = xstrdup(resp.host),
                .role = xstrdup(resp.role),
                .enrolled_at = (int64_t) time(NULL),
                .ca_fingerprint = xstrdup(fp),
        };
        ej = json_object_new_object();
        json_object_object_add(ej, "controller", json_object_new_string(ret->controller_url));
        json_object_object_add(ej, "controllerName", json_object_new_string(ret->controller_name));
        json_object_object_add(ej, "host", json_object_new_string(ret->host));
        json_object_object_add(ej, "role", json_object_new_string(ret->role));
        json_object_object_add(ej, "enrolledAt", json_object_new_int64(ret->enrolled_at));
        json_object_object_add(ej, "caFingerprint", json_object_new_string(ret->ca_fingerprint));
        {
                const char *s = json_object_to_json_string_ext(ej, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
                _cleanup_free_ char *line = xasprintf("%s\n", s);
                r = store(cfg, ENROLL_FILE, line, strlen(line), 0644, ret_error);
        }
        json_object_put(ej);
        if (r < 0)
                enrollment_done(ret);

finish:
        explicit_bzero(secret, sizeof(secret));
        json_object_put(body);
        https_call_done(&call);
        wire_ca_done(&wca);
        wire_enroll_response_done(&resp);
        return r;
}
