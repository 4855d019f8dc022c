/* The controller's HTTPS endpoint: routes, the identity checks of reports and data key requests,
 * signals and systemd notification. HTTP and TLS are https-server.c's; enrollment is enroll.c's,
 * key wrapping keywrap.c's. */
#include <signal.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <systemd/sd-daemon.h>

#include "ca.h"
#include "enrollment.h"
#include "fileio.h"
#include "https-server.h"
#include "keywrap.h"
#include "secrets.h"
#include "serve.h"
#include "store.h"
#include "wire.h"
#include "x509.h"

_Static_assert(SECRETS_DATA_KEY_SIZE == KEYWRAP_KEY_SIZE, "a data key is what keywrap wraps");

typedef struct server {
        const char *state_dir;
        store *store;
        ca *ca;
        char *ca_pem;
        char *signing_pub;   /* PEM */
        struct event_base *base;
        char *where;         /* "ADDR:PORT" */
        unsigned long enrolled, reports;
} server;

/* systemctl status shows what the controller has done since it started. */
static void notify_status(const server *srv) {
        (void) sd_notifyf(0, "STATUS=listening on %s; %lu host%s enrolled, %lu report%s received since start",
                          srv->where, srv->enrolled, srv->enrolled == 1 ? "" : "s", srv->reports,
                          srv->reports == 1 ? "" : "s");
}

static bool token_id_valid(const char *s) {
        size_t n = 0;

        for (; s[n]; n++)
                if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
                        return false;
        return n == WIRE_TOKEN_ID_LEN;
}

/* GET /v1/ca[?token-id=ID]: the CA certificate, and its binding to the token when the id names
 * one. Used or expired tokens get their binding too: it proves only what the agent's secret
 * already proves, and an unknown id gets "" so ids cannot be told apart from the answer's shape. */
static void handle_ca(https_request *r, void *userdata) {
        server *srv = userdata;
        const char *id = https_request_query(r, "token-id");
        char binding[65] = "";
        stored_token t = {};
        wire_ca m;
        int k;

        if (id && !token_id_valid(id)) {
                https_reply_error(r, 400, "token-id: expected %d lower-case hexadecimal digits", WIRE_TOKEN_ID_LEN);
                return;
        }
        if (id) {
                k = store_load_token(srv->store, id, &t);
                if (k >= 0)
                        wire_ca_binding(t.binding_key, srv->ca_pem, binding);
                stored_token_done(&t);
                if (k < 0 && k != -ENOENT) {
                        https_reply_error(r, 500, "cannot read the state store: %s", strerror(-k));
                        return;
                }
        }
        m = (wire_ca) { .ca = srv->ca_pem, .binding = binding };
        https_reply_json(r, 200, wire_ca_to_json(&m));
}

static void handle_enroll(https_request *r, void *userdata) {
        server *srv = userdata;
        _cleanup_free_ char *err = NULL;
        wire_enroll_request req = {};
        wire_enroll_response resp = {};
        const char *body;
        size_t size = 0;
        bool replaced = false;
        int status = 500, k;

        body = https_request_body(r, &size);
        k = wire_enroll_request_decode(body ? body : "", body ? size : 0, &req, &err);
        /* The body is this request's own copy and holds the token's secret: wipe it now. */
        if (body)
                explicit_bzero((char *) body, size);
        if (k < 0) {
                https_reply_error(r, k == -E2BIG ? 413 : 400, "%s", err ? err : "malformed enrollment request");
                return;
        }
        k = enroll_host(srv->store, srv->ca, srv->signing_pub, &req, (int64_t) time(NULL), &resp, &replaced, &status,
                        &err);
        if (k < 0)
                https_reply_error(r, status, "enrollment of host '%s' refused: %s", strempty(req.facts.name), err);
        else {
                _cleanup_free_ char *identity = mtls_host_name(resp.host, ca_domain(srv->ca));
                char id[WIRE_TOKEN_ID_LEN + 1] = "";

                /* The token's id (public) says who let it in; replacing a host is worth an audit trail. */
                (void) wire_token_parse(req.token, id, NULL);
                fprintf(stderr, "enrolled host '%s' (%s) from %s as %s with token '%s'%s\n", resp.host, resp.role,
                        https_request_peer_address(r), identity, id,
                        replaced ? ", replacing its earlier enrollment" : "");
                https_reply_json(r, 200, wire_enroll_response_to_json(&resp));
                srv->enrolled++;
                notify_status(srv);
        }
        wire_enroll_request_done(&req);
        wire_enroll_response_done(&resp);
}

/* POST /v1/report: only a host may report for itself, proven by the certificate it enrolled with. */
static void handle_report(https_request *r, void *userdata) {
        server *srv = userdata;
        _cleanup_free_ char *err = NULL, *expected = NULL;
        const char *peer = https_request_peer_name(r), *body, *status_json;
        wire_report m = {};
        size_t size = 0;
        int k;

        if (!peer) {
                https_reply_error(r, 403, "a report needs the host's client certificate (the one it enrolled with)");
                return;
        }
        body = https_request_body(r, &size);
        k = wire_report_decode(body ? body : "", body ? size : 0, &m, &err);
        if (k < 0) {
                https_reply_error(r, k == -E2BIG ? 413 : 400, "%s", err ? err : "malformed report");
                return;
        }
        expected = mtls_host_name(m.host, ca_domain(srv->ca));
        if (strcasecmp(peer, expected) != 0) {
                https_reply_error(r, 403, "client certificate '%s' may not report for host '%s' (that needs '%s')", peer,
                                  m.host, expected);
                goto done;
        }
        status_json = json_object_to_json_string_ext(m.status, JSON_C_TO_STRING_PLAIN);
        k = store_record_report(srv->store, m.host, m.revision, m.commit, m.failed, status_json, (int64_t) time(NULL));
        if (k == -ENOENT)
                https_reply_error(r, 403, "host '%s' is not enrolled", m.host);
        else if (k < 0)
                https_reply_error(r, 500, "cannot record the report of host '%s': %s", m.host, strerror(-k));
        else {
                https_reply_json(r, 204, NULL);
                srv->reports++;
                notify_status(srv);
        }
done:
        wire_report_done(&m);
}

/* Why a stored data key did not open, for a 500: no key material in it. */
static const char *data_key_error(int r) {
        switch (r) {
        case -EKEYREJECTED:
                return "it does not decrypt with the master key (another key, or a row tampered with or moved from "
                       "another database)";
        case -EBADMSG:
                return "the stored ciphertext is malformed";
        default:
                return strerror(-r);
        }
}

/* The request's checks that need no secret: the host is the body's, enrolled with the very
 * certificate presented (one replaced by `agentctl enroll --force` is worth nothing here), and
 * every database is placed on it. 0, or the status with a reply sent. */
static int check_data_keys_request(server *srv, https_request *r, X509 *cert, const char *peer,
                                   const wire_data_keys_request *m) {
        _cleanup_free_ char *expected = mtls_host_name(m->host, ca_domain(srv->ca));
        _cleanup_(stored_host_done) stored_host host = {};
        char fingerprint[65];
        int k;

        if (strcasecmp(peer, expected) != 0) {
                https_reply_error(r, 403, "client certificate '%s' may not ask for the data keys of host '%s' (that needs '%s')",
                                  peer, m->host, expected);
                return 403;
        }
        k = store_load_host(srv->store, m->host, &host);
        if (k == -ENOENT) {
                https_reply_error(r, 403, "host '%s' is not enrolled", m->host);
                return 403;
        }
        if (k < 0) {
                https_reply_error(r, 500, "cannot read the state store: %s", strerror(-k));
                return 500;
        }
        if (x509_cert_fingerprint(cert, fingerprint) < 0 || !streq(fingerprint, host.cert_fingerprint)) {
                https_reply_error(r, 403, "the certificate presented is not the one host '%s' last enrolled with", m->host);
                return 403;
        }
        for (size_t i = 0; i < m->n_databases; i++) {
                k = store_database_placed_on(srv->store, m->databases[i], m->host);
                if (k < 0) {
                        https_reply_error(r, 500, "cannot read the state store: %s", strerror(-k));
                        return 500;
                }
                if (k == 0) {
                        https_reply_error(r, 403, "database '%s' is not placed on host '%s'", m->databases[i], m->host);
                        return 403;
                }
        }
        return 0;
}

/* Each requested database's data key, opened with the master key: every missing one is a 404
 * before any that does not open is a 500. 0, or the status with a reply sent; keys is wiped by
 * the caller either way. */
static int open_data_keys(server *srv, https_request *r, const wire_data_keys_request *m,
                          uint8_t (*keys)[SECRETS_DATA_KEY_SIZE]) {
        _cleanup_(secrets_closep) secrets *x = NULL;
        _cleanup_free_ char *err = NULL;
        size_t broken = SIZE_MAX;
        int k, broken_r = 0;

        /* Opened per request: the master key stays in memory only while it is needed. */
        k = secrets_open(srv->store, srv->state_dir, &x, &err);
        if (k < 0) {
                https_reply_error(r, 500, "%s", err ? err : strerror(-k));
                return 500;
        }
        for (size_t i = 0; i < m->n_databases; i++) {
                k = secrets_get_data_key(x, m->databases[i], keys[i]);
                if (k == -ENOENT) {
                        https_reply_error(r, 404, "database '%s' has no data key yet: run infrastream-controller apply",
                                          m->databases[i]);
                        return 404;
                }
                if (k < 0 && broken == SIZE_MAX) {
                        broken = i;
                        broken_r = k;
                }
        }
        if (broken != SIZE_MAX) {
                https_reply_error(r, 500, "cannot open the data key of database '%s': %s", m->databases[broken],
                                  data_key_error(broken_r));
                return 500;
        }
        return 0;
}

/* POST /v1/data-keys: the data keys of databases placed on the asking host, each wrapped to the
 * public key of the certificate it presents, under the database's key as context. Neither a key
 * nor a wrapped key is ever logged. */
static void handle_data_keys(https_request *r, void *userdata) {
        server *srv = userdata;
        X509 *cert = https_request_peer_cert(r);
        const char *peer = https_request_peer_name(r), *body;
        _cleanup_free_ char *err = NULL;
        uint8_t (*keys)[SECRETS_DATA_KEY_SIZE] = NULL;
        wire_data_keys_request m = {};
        wire_data_keys_response resp = {};
        size_t size = 0;
        int k;

        if (!cert || !peer) {
                https_reply_error(r, 403, "a data key request needs the host's client certificate (the one it enrolled with)");
                return;
        }
        body = https_request_body(r, &size);
        k = wire_data_keys_request_decode(body ? body : "", body ? size : 0, &m, &err);
        if (k < 0) {
                https_reply_error(r, k == -E2BIG ? 413 : 400, "%s", err ? err : "malformed data key request");
                return;
        }
        keys = xcalloc(m.n_databases, sizeof(*keys));
        if (check_data_keys_request(srv, r, cert, peer, &m) != 0 || open_data_keys(srv, r, &m, keys) != 0)
                goto done;

        resp = (wire_data_keys_response) { .host = xstrdup(m.host), .keys = xcalloc(m.n_databases, sizeof(wire_data_key)) };
        for (size_t i = 0; i < m.n_databases; i++) {
                wire_data_key *dk = &resp.keys[resp.n_keys++];

                dk->database = xstrdup(m.databases[i]);
                k = keywrap_seal(X509_get0_pubkey(cert), m.databases[i], keys[i], &dk->wrapped_key, &err);
                if (k < 0) {
                        https_reply_error(r, 500, "cannot wrap the data key of database '%s' to host '%s': %s",
                                          m.databases[i], m.host, err);
                        goto done;
                }
        }
        fprintf(stderr, "data keys for host '%s': %zu database%s, to %s\n", m.host, resp.n_keys,
                resp.n_keys == 1 ? "" : "s", https_request_peer_address(r));
        https_reply_json(r, 200, wire_data_keys_response_to_json(&resp));
done:
        explicit_bzero(keys, m.n_databases * sizeof(*keys));
        free(keys);
        wire_data_keys_request_done(&m);
        wire_data_keys_response_done(&resp);
}

static void on_signal(evutil_socket_t sig, short events, void *userdata) {
        server *srv = userdata;

        (void) events;
        fprintf(stderr, "%s received, stopping\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        (void) sd_notify(0, "STOPPING=1\nSTATUS=stopping");
        event_base_loopbreak(srv->base);
}

/* "10.0.0.1:0" with port 7443 → "10.0.0.1:7443". */
static char *with_port(const char *addr_port, int port) {
        const char *colon = strrchr(addr_port, ':');
        return xasprintf("%.*s:%d", colon ? (int) (colon - addr_port) : (int) strlen(addr_port), addr_port, port);
}

int serve_run(const serve_options *o, char **ret_error) {
        _cleanup_free_ char *crt = xasprintf("%s/%s", o->state_dir, CA_CONTROLLER_CERT_FILE),
                            *key = xasprintf("%s/%s", o->state_dir, CA_CONTROLLER_KEY_FILE), *err = NULL,
                            *where = NULL, *name = NULL;
        struct event_base *base = NULL;
        struct event *sigterm = NULL, *sigint = NULL;
        SSL_CTX *ctx = NULL;
        https_server *hs = NULL;
        https_limits limits = { .max_body = SERVE_MAX_BODY, .max_headers = SERVE_MAX_HEADERS,
                                .timeout_seconds = SERVE_TIMEOUT, .max_connections = SERVE_MAX_CONNECTIONS };
        server srv = { .state_dir = o->state_dir };
        int r, port = 0;

        r = ca_load(o->state_dir, &srv.ca, ret_error);
        if (r < 0)
                goto finish;
        srv.ca_pem = ca_cert_pem(srv.ca);
        if (!srv.ca_pem) {
                r = -EIO;
                *ret_error = xstrdup("cannot encode the CA certificate");
                goto finish;
        }
        r = read_full_file(o->signing_pub, 64 * 1024, &srv.signing_pub, NULL);
        if (r < 0) {
                *ret_error = xasprintf("cannot read the signing public key %s: %s%s", o->signing_pub, strerror(-r),
                                       r == -ENOENT ? " (run 'infrastream-controller init')" : "");
                goto finish;
        }
        r = store_open(o->state_dir, false, false, &srv.store, &err);
        if (r < 0) {
                *ret_error = err ? TAKE_PTR(err)
                                 : xasprintf("cannot open the state store in %s: %s%s", o->state_dir, strerror(-r),
                                             r == -ENOENT ? " (run 'infrastream-controller init')" : "");
                goto finish;
        }
        /* Client certificates are asked for and verified against the CA, but not required: an
         * enrolling host has none yet. /v1/report checks for one itself. */
        r = mtls_server_ctx(crt, key, ca_cert_path(srv.ca), false, &ctx, &err);
        if (r < 0) {
                *ret_error = xasprintf("%s%s", err ? err : strerror(-r),
                                       r == -ENOENT ? " (run 'infrastream-controller init' to create it)" : "");
                goto finish;
        }

        /* A peer closing mid-write must not kill the controller. */
        (void) signal(SIGPIPE, SIG_IGN);
        base = event_base_new();
        if (!base) {
                r = -ENOMEM;
                *ret_error = xstrdup("cannot create the event loop");
                goto finish;
        }
        srv.base = base;
        hs = https_server_new(base, ctx, &limits);
        if (!hs) {
                r = -ENOMEM;
                *ret_error = xstrdup("cannot create the HTTPS server");
                goto finish;
        }
        https_server_route(hs, "GET", "/v1/ca", handle_ca, &srv);
        https_server_route(hs, "POST", "/v1/enroll", handle_enroll, &srv);
        https_server_route(hs, "POST", "/v1/report", handle_report, &srv);
        https_server_route(hs, "POST", "/v1/data-keys", handle_data_keys, &srv);
        r = https_server_listen(hs, o->listen, &port, &err);
        if (r < 0) {
                *ret_error = err ? TAKE_PTR(err) : xasprintf("cannot listen on %s: %s", o->listen, strerror(-r));
                goto finish;
        }
        sigterm = evsignal_new(base, SIGTERM, on_signal, &srv);
        sigint = evsignal_new(base, SIGINT, on_signal, &srv);
        if (!sigterm || !sigint || evsignal_add(sigterm, NULL) < 0 || evsignal_add(sigint, NULL) < 0) {
                r = -EIO;
                *ret_error = xstrdup("cannot watch SIGTERM and SIGINT");
                goto finish;
        }

        srv.where = where = with_port(o->listen, port);
        name = mtls_controller_name(ca_domain(srv.ca));
        fprintf(stderr, "listening on %s as %s\n", where, name);
        (void) sd_notifyf(0, "READY=1\nSTATUS=listening on %s as %s", where, name);
        r = event_base_dispatch(base) < 0 ? -EIO : 0;
        if (r < 0)
                *ret_error = xstrdup("the event loop failed");
finish:
        /* The server goes before the loop it runs on, the loop before the store its handlers use. */
        if (hs)
                https_server_free(hs);
        if (sigterm)
                event_free(sigterm);
        if (sigint)
                event_free(sigint);
        if (base)
                event_base_free(base);
        SSL_CTX_free(ctx); /* the server held its own reference */
        store_close(srv.store);
        ca_free(srv.ca);
        free(srv.ca_pem);
        free(srv.signing_pub);
        return r;
}
