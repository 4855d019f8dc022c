/* The mutual-TLS transport for real: a CA with a name constraint, controller and host identities
 * and a foreign CA are made with OpenSSL (mtls-fixture.c); the https-server runs its event loop in
 * a thread on 127.0.0.1 and the https-client calls it. Identities, refusals (no certificate,
 * foreign CA, wrong peer name), limits, routing, deferred replies, the Unix socket's peer
 * credentials and many concurrent calls. */
#include "unit.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/ssl.h>

#include "fileio.h"
#include "https-client.h"
#include "https-server.h"
#include "mtls-fixture.h"
#include "wire.h"
#include "x509.h"

#define DOMAIN "example.test"
#define MAX_BODY 4096

DEFINE_TRIVIAL_CLEANUP_FUNC(SSL_CTX *, SSL_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

static char dir[64];
static char *ca_pem, *ca_file, *foreign_ca_pem;
static identity controller, host, foreign_controller, foreign_host;

/* ---- the server under test ----------------------------------------------------------------- */

typedef struct server {
        test_server t;
        char *socket_path;
        https_request *pending; /* held by /v1/later until the timer answers it */
} server;

/* {"peer": <identity or null>, "address": ..., "uid": <peer uid or -1>, "size": <body bytes>} */
static void on_echo(https_request *r, void *userdata) {
        json_object *o = json_object_new_object();
        const char *peer = https_request_peer_name(r), *q = https_request_query(r, "token-id");
        size_t size = 0;
        uid_t uid;

        (void) userdata;
        (void) https_request_body(r, &size);
        json_object_object_add(o, "peer", peer ? json_object_new_string(peer) : NULL);
        json_object_object_add(o, "address", json_object_new_string(https_request_peer_address(r)));
        json_object_object_add(o, "uid", json_object_new_int(https_request_peer_cred(r, &uid, NULL, NULL) ? (int) uid : -1));
        json_object_object_add(o, "size", json_object_new_int64((int64_t) size));
        json_object_object_add(o, "path", json_object_new_string(https_request_path(r)));
        if (q)
                json_object_object_add(o, "query", json_object_new_string(q));
        https_reply_json(r, 200, o);
}

static void on_big(https_request *r, void *userdata) {
        json_object *o = json_object_new_object();
        _cleanup_free_ char *s = xmalloc(100001);

        (void) userdata;
        memset(s, 'x', 100000);
        s[100000] = '\0';
        json_object_object_add(o, "data", json_object_new_string(s));
        https_reply_json(r, 200, o);
}

static void on_refuse(https_request *r, void *userdata) {
        (void) userdata;
        https_reply_error(r, 409, "revision %d is not newer than the applied revision %d", 5, 7);
}

static void answer_later(evutil_socket_t fd, short what, void *arg) {
        server *s = arg;
        https_request *r = TAKE_PTR(s->pending);

        (void) fd;
        (void) what;
        if (r)
                https_reply_json(r, 200, json_object_new_string("later"));
}

static void on_later(https_request *r, void *userdata) {
        server *s = userdata;
        struct timeval tv = { 0, 100000 };

        https_request_hold(r);
        s->pending = r;
        event_base_once(s->t.base, -1, EV_TIMEOUT, answer_later, s, &tv);
}

/* Held, then answered before the handler returns: still exactly one answer, nothing freed twice. */
static void on_hold_and_answer(https_request *r, void *userdata) {
        (void) userdata;
        https_request_hold(r);
        https_reply_error(r, 503, "shutting down");
}

/* No answer at all is a bug the server covers with a 500. */
static void on_forget(https_request *r, void *userdata) {
        (void) r;
        (void) userdata;
}

static void on_never(https_request *r, void *userdata) {
        (void) userdata;
        https_request_hold(r); /* answered by nobody: the client times out, the server frees it */
}

static server *server_start(const identity *id, bool require_client_cert) {
        server *s = xcalloc(1, sizeof(server));
        _cleanup_free_ char *err = NULL;
        https_limits limits = { .max_body = MAX_BODY, .max_headers = 8192, .timeout_seconds = 10 };

        test_server_init(&s->t, id, ca_file, require_client_cert, &limits);
        https_server_route(s->t.https, "POST", "/v1/echo", on_echo, s);
        https_server_route(s->t.https, "GET", "/v1/echo", on_echo, s);
        https_server_route(s->t.https, "GET", "/v1/big", on_big, s);
        https_server_route(s->t.https, "POST", "/v1/refuse", on_refuse, s);
        https_server_route(s->t.https, "GET", "/v1/later", on_later, s);
        https_server_route(s->t.https, "GET", "/v1/never", on_never, s);
        https_server_route(s->t.https, "GET", "/v1/hold-and-answer", on_hold_and_answer, s);
        https_server_route(s->t.https, "GET", "/v1/forget", on_forget, s);
        s->socket_path = xasprintf("%s/agent.sock", dir);
        assert_int_equal(https_server_listen_unix(s->t.https, s->socket_path, 0660, (gid_t) -1, &err), 0);
        test_server_run(&s->t);
        return s;
}

static void server_stop(server *s) {
        struct stat st;

        test_server_stop(&s->t);
        /* The socket file goes with the server. */
        assert_int_equal(lstat(s->socket_path, &st), -1);
        free(s->socket_path);
        free(s);
}

static char *url(const server *s, const char *path) {
        return test_server_url(&s->t, path);
}

/* ---- fixtures ------------------------------------------------------------------------------ */

static int setup(void **state) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = x509_generate_ec_key(), *foreign_key = x509_generate_ec_key();
        _cleanup_(X509_freep) X509 *ca = NULL, *foreign = NULL;

        (void) state;
        fixture_init();
        strcpy(dir, "/tmp/test-https.XXXXXX");
        assert_non_null(mkdtemp(dir));
        ca = fixture_make_cert(ca_key, "Infrastream CA " DOMAIN, DOMAIN, NULL, NULL);
        foreign = fixture_make_cert(foreign_key, "Infrastream CA " DOMAIN, DOMAIN, NULL, NULL);
        ca_pem = x509_cert_to_pem(ca);
        foreign_ca_pem = x509_cert_to_pem(foreign);
        ca_file = xasprintf("%s/ca.crt", dir);
        fixture_write_pem(ca_file, ca, NULL);
        controller = fixture_issue(dir, "controller." DOMAIN, ca, ca_key, "controller");
        host = fixture_issue(dir, "db1.hosts." DOMAIN, ca, ca_key, "db1");
        /* Same names, another CA: only the trust anchor tells them apart. */
        foreign_controller = fixture_issue(dir, "controller." DOMAIN, foreign, foreign_key, "foreign-controller");
        foreign_host = fixture_issue(dir, "db1.hosts." DOMAIN, foreign, foreign_key, "foreign-db1");
        return 0;
}

static int teardown(void **state) {
        (void) state;
        identity_done(&controller);
        identity_done(&host);
        identity_done(&foreign_controller);
        identity_done(&foreign_host);
        free(ca_pem);
        free(foreign_ca_pem);
        free(ca_file);
        fixture_remove_tree(dir);
        return 0;
}

static const https_client_tls *as_controller(void) {
        static https_client_tls tls;

        tls = (https_client_tls) { .ca_pem = ca_pem, .cert_file = controller.cert, .key_file = controller.key };
        return &tls;
}

static json_object *parse(const https_call *c) {
        json_object *o;

        assert_non_null(c->response);
        o = json_tokener_parse(c->response);
        assert_non_null(o);
        return o;
}

static const char *get_string(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !v)
                return NULL;
        return json_object_get_string(v);
}

static void call(const https_client_tls *tls, https_call *c, const server *s, const char *method, const char *path,
                 const char *peer_name, const char *body) {
        static char *u;

        free(u);
        u = url(s, path);
        *c = (https_call) {
                .method = method,
                .url = u,
                .peer_name = peer_name,
                .body = body,
                .body_size = body ? strlen(body) : 0,
                .timeout_ms = 5000,
        };
        (void) https_perform(tls, c);
        if (getenv("TEST_HTTPS_DEBUG"))
                fprintf(stderr, "%s %s: %ld %s\n", method, path, c->status, strempty(c->error));
}

/* ---- tests --------------------------------------------------------------------------------- */

static void test_names(void **state) {
        _cleanup_free_ char *c = mtls_controller_name(DOMAIN), *h = mtls_host_name("db1", DOMAIN);

        (void) state;
        assert_string_equal(c, "controller." DOMAIN);
        assert_string_equal(h, "db1.hosts." DOMAIN);
}

static void test_mutual_tls_identities(void **state) {
        server *s = server_start(&host, true);
        https_client_tls tls = *as_controller();
        _cleanup_(json_object_putp) json_object *o = NULL, *o2 = NULL;
        https_call c;

        (void) state;
        call(&tls, &c, s, "POST", "/v1/echo?token-id=abc%20d", "db1.hosts." DOMAIN, "{\"x\": 1}");
        assert_null(c.error);
        assert_int_equal(c.status, 200);
        o = parse(&c);
        assert_string_equal(get_string(o, "peer"), "controller." DOMAIN);
        assert_string_equal(get_string(o, "path"), "/v1/echo");
        assert_string_equal(get_string(o, "query"), "abc d");
        assert_int_equal(json_object_get_int(json_object_object_get(o, "size")), 8);
        assert_int_equal(json_object_get_int(json_object_object_get(o, "uid")), -1);
        assert_true(strncmp(get_string(o, "address"), "127.0.0.1:", 10) == 0);
        https_call_done(&c);

        /* The host's identity as a client, e.g. its reports. */
        tls.cert_file = host.cert;
        tls.key_file = host.key;
        call(&tls, &c, s, "GET", "/v1/echo", "db1.hosts." DOMAIN, NULL);
        assert_int_equal(c.status, 200);
        o2 = parse(&c);
        assert_string_equal(get_string(o2, "peer"), "db1.hosts." DOMAIN);
        https_call_done(&c);

        /* Without peer_name any certificate from the CA is accepted. */
        call(&tls, &c, s, "GET", "/v1/echo", NULL, NULL);
        assert_int_equal(c.status, 200);
        https_call_done(&c);
        server_stop(s);
}

/* A client that offers TLS 1.2 at most, with a good certificate: true when the handshake works. */
static bool tls12_handshake(int port) {
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        _cleanup_free_ char *target = xasprintf("127.0.0.1:%d", port);
        BIO *bio;
        SSL *ssl = NULL;
        bool ok;

        assert_non_null(ctx);
        assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION), 1);
        assert_int_equal(SSL_CTX_use_certificate_file(ctx, controller.cert, SSL_FILETYPE_PEM), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, controller.key, SSL_FILETYPE_PEM), 1);
        bio = BIO_new_ssl_connect(ctx);
        assert_non_null(bio);
        BIO_get_ssl(bio, &ssl);
        BIO_set_conn_hostname(bio, target);
        ok = BIO_do_connect(bio) == 1 && BIO_do_handshake(bio) == 1;
        BIO_free_all(bio);
        return ok;
}

static void test_client_refusals(void **state) {
        server *s = server_start(&host, true);
        https_client_tls tls = *as_controller();
        https_call c;

        (void) state;
        /* No client certificate: the handshake fails. */
        tls.cert_file = tls.key_file = NULL;
        call(&tls, &c, s, "GET", "/v1/echo", "db1.hosts." DOMAIN, NULL);
        assert_int_equal(c.status, 0);
        assert_string_equal(c.error, "the server refused the TLS handshake: a client certificate is required");
        assert_null(c.response);
        https_call_done(&c);

        /* A certificate with the right name from another CA. */
        tls.cert_file = foreign_controller.cert;
        tls.key_file = foreign_controller.key;
        call(&tls, &c, s, "GET", "/v1/echo", "db1.hosts." DOMAIN, NULL);
        assert_int_equal(c.status, 0);
        assert_string_equal(c.error, "the server refused the TLS handshake: unknown CA");
        https_call_done(&c);

        /* The server is not who we expect. */
        tls = *as_controller();
        call(&tls, &c, s, "GET", "/v1/echo", "db2.hosts." DOMAIN, NULL);
        assert_int_equal(c.status, 0);
        assert_non_null(c.error);
        assert_string_equal(c.error, "certificate verify failed: the server is not db2.hosts." DOMAIN);
        https_call_done(&c);

        /* A server whose certificate comes from another CA. */
        tls.ca_pem = foreign_ca_pem;
        call(&tls, &c, s, "GET", "/v1/echo", "db1.hosts." DOMAIN, NULL);
        assert_int_equal(c.status, 0);
        assert_non_null(strstr(c.error, "certificate verify failed: "));
        https_call_done(&c);

        /* Insecure fetches work (enrollment's first step) and still see the server. */
        tls = (https_client_tls) { .insecure = true, .cert_file = controller.cert, .key_file = controller.key };
        call(&tls, &c, s, "GET", "/v1/echo", NULL, NULL);
        assert_int_equal(c.status, 200);
        https_call_done(&c);

        /* TLS 1.2 is not spoken at all. */
        assert_false(tls12_handshake(s->t.port));

        /* Nobody listening. */
        c = (https_call) { .method = "GET", .url = "https://127.0.0.1:1/v1/echo", .timeout_ms = 5000 };
        assert_int_equal(https_perform(as_controller(), &c), -ECONNREFUSED);
        assert_int_equal(c.status, 0);
        assert_non_null(c.error);
        https_call_done(&c);

        /* No CA and not insecure: refused before connecting. */
        tls = (https_client_tls) {};
        call(&tls, &c, s, "GET", "/v1/echo", NULL, NULL);
        assert_int_equal(c.status, 0);
        assert_string_equal(c.error, "no CA certificate to verify the server against");
        https_call_done(&c);
        server_stop(s);
}

static void test_optional_client_cert(void **state) {
        server *s = server_start(&controller, false);
        https_client_tls tls = { .ca_pem = ca_pem };
        _cleanup_(json_object_putp) json_object *o = NULL, *o2 = NULL, *o3 = NULL;
        https_call c;

        (void) state;
        call(&tls, &c, s, "GET", "/v1/echo", "controller." DOMAIN, NULL);
        assert_int_equal(c.status, 200);
        o = parse(&c);
        assert_null(get_string(o, "peer"));
        https_call_done(&c);

        tls.cert_file = host.cert;
        tls.key_file = host.key;
        call(&tls, &c, s, "GET", "/v1/echo", "controller." DOMAIN, NULL);
        assert_int_equal(c.status, 200);
        o2 = parse(&c);
        assert_string_equal(get_string(o2, "peer"), "db1.hosts." DOMAIN);
        https_call_done(&c);

        /* Optional does not mean unverified: a foreign certificate is refused. */
        tls.cert_file = foreign_host.cert;
        tls.key_file = foreign_host.key;
        call(&tls, &c, s, "GET", "/v1/echo", "controller." DOMAIN, NULL);
        if (c.status == 200) {
                o3 = parse(&c);
                assert_null(get_string(o3, "peer"));
        } else
                assert_non_null(c.error);
        https_call_done(&c);
        server_stop(s);
}

static void test_limits_and_routes(void **state) {
        server *s = server_start(&host, true);
        const https_client_tls *tls = as_controller();
        _cleanup_free_ char *big = xmalloc(MAX_BODY + 2);
        _cleanup_free_ char *msg = NULL;
        https_call c;

        (void) state;
        memset(big, ' ', MAX_BODY + 1);
        big[MAX_BODY + 1] = '\0';
        call(tls, &c, s, "POST", "/v1/echo", "db1.hosts." DOMAIN, big);
        assert_int_equal(c.status, 413);
        https_call_done(&c);

        /* Exactly the limit is fine. */
        big[MAX_BODY] = '\0';
        call(tls, &c, s, "POST", "/v1/echo", "db1.hosts." DOMAIN, big);
        assert_int_equal(c.status, 200);
        https_call_done(&c);

        call(tls, &c, s, "GET", "/v1/nothing", "db1.hosts." DOMAIN, NULL);
        assert_int_equal(c.status, 404);
        msg = wire_error_message(c.response, c.response_size);
        assert_string_equal(msg, "no such path");
        https_call_done(&c);

        call(tls, &c, s, "GET", "/v1/refuse", "db1.hosts." DOMAIN, NULL);
        assert_int_equal(c.status, 405);
        assert_non_null(strstr(c.response, "method GET not allowed on /v1/refuse (allowed: POST)"));
        https_call_done(&c);

        call(tls, &c, s, "POST", "/v1/refuse", "db1.hosts." DOMAIN, "{}");
        assert_int_equal(c.status, 409);
        assert_string_equal(c.response, "{\"error\":\"revision 5 is not newer than the applied revision 7\"}\n");
        https_call_done(&c);

        /* Responses are bounded while they arrive. */
        c = (https_call) { .method = "GET", .peer_name = "db1.hosts." DOMAIN, .max_response = 1000, .timeout_ms = 5000 };
        c.url = url(s, "/v1/big");
        assert_int_equal(https_perform(tls, &c), -EFBIG);
        assert_string_equal(c.error, "response larger than 1000 bytes");
        assert_null(c.response);
        free((char *) c.url);
        https_call_done(&c);

        /* A deferred answer, and one that never comes. */
        call(tls, &c, s, "GET", "/v1/later", "db1.hosts." DOMAIN, NULL);
        assert_int_equal(c.status, 200);
        assert_string_equal(c.response, "\"later\"\n");
        https_call_done(&c);

        call(tls, &c, s, "GET", "/v1/hold-and-answer", "db1.hosts." DOMAIN, NULL);
        assert_int_equal(c.status, 503);
        assert_string_equal(c.response, "{\"error\":\"shutting down\"}\n");
        https_call_done(&c);

        call(tls, &c, s, "GET", "/v1/forget", "db1.hosts." DOMAIN, NULL);
        assert_int_equal(c.status, 500);
        assert_string_equal(c.response, "{\"error\":\"the handler gave no answer\"}\n");
        https_call_done(&c);

        c = (https_call) { .method = "GET", .peer_name = "db1.hosts." DOMAIN, .timeout_ms = 300 };
        c.url = url(s, "/v1/never");
        assert_int_equal(https_perform(tls, &c), -ETIMEDOUT);
        assert_string_equal(c.error, "timed out after 0.3 s");
        free((char *) c.url);
        https_call_done(&c);
        server_stop(s);
}

/* Plain HTTP over the Unix socket, as agentctl speaks it. */
static char *unix_get(const char *path, const char *request) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        char buf[4096];
        size_t n = 0;
        ssize_t k;

        assert_true(fd >= 0);
        strcpy(sa.sun_path, path);
        assert_int_equal(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(write(fd, request, strlen(request)), (ssize_t) strlen(request));
        while (n < sizeof(buf) - 1 && (k = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0)
                n += (size_t) k;
        buf[n] = '\0';
        return xstrdup(buf);
}

static void test_unix_socket(void **state) {
        server *s = server_start(&host, true);
        _cleanup_free_ char *resp = NULL, *want = NULL, *resp404 = NULL;
        struct stat st;

        (void) state;
        assert_int_equal(lstat(s->socket_path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0660);

        resp = unix_get(s->socket_path, "GET /v1/echo HTTP/1.0\r\n\r\n");
        assert_true(strncmp(resp, "HTTP/1.0 200", 12) == 0 || strncmp(resp, "HTTP/1.1 200", 12) == 0);
        want = xasprintf("\"uid\":%d", (int) getuid());
        assert_non_null(strstr(resp, want));
        assert_non_null(strstr(resp, "\"peer\":null"));
        assert_non_null(strstr(resp, "\"address\":\"unix\""));

        resp404 = unix_get(s->socket_path, "GET /v1/other HTTP/1.0\r\n\r\n");
        assert_non_null(strstr(resp404, " 404 "));
        assert_non_null(strstr(resp404, "{\"error\":\"no such path\"}"));
        server_stop(s);
}

static void test_stale_socket_and_errors(void **state) {
        struct event_base *base = event_base_new();
        _cleanup_(https_server_freep) https_server *s = NULL;
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = NULL;
        _cleanup_free_ char *path = xasprintf("%s/stale.sock", dir), *file = xasprintf("%s/plain", dir);
        _cleanup_free_ char *err = NULL, *err2 = NULL, *err3 = NULL, *err4 = NULL, *missing = NULL, *err5 = NULL;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct stat st;
        int fd;

        (void) state;
        /* A socket file left by a crashed daemon is replaced. */
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        strcpy(sa.sun_path, path);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        close(fd);
        s = https_server_new(base, NULL, NULL);
        /* The group is set when we may (root); 0600 as asked. */
        assert_int_equal(https_server_listen_unix(s, path, 0600, getuid() == 0 ? 1 : (gid_t) -1, &err), 0);
        assert_int_equal(lstat(path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);
        if (getuid() == 0)
                assert_int_equal(st.st_gid, 1);

        /* Anything else with the name is not touched. */
        assert_true(write_file_atomic(file, "x", 1, 0644) >= 0);
        assert_int_equal(https_server_listen_unix(s, file, 0600, (gid_t) -1, &err2), -EEXIST);
        assert_non_null(strstr(err2, "exists and is not a socket"));

        /* Without a TLS context there is no TCP listener. */
        assert_int_equal(https_server_listen(s, "127.0.0.1:0", NULL, &err3), -EINVAL);
        https_server_free(TAKE_PTR(s));

        assert_int_equal(mtls_server_ctx(host.cert, host.key, ca_file, true, &ctx, &err4), 0);
        s = https_server_new(base, ctx, NULL);
        assert_int_equal(https_server_listen(s, "not-an-address", NULL, &err5), -EINVAL);
        assert_string_equal(err5, "'not-an-address' is not ADDRESS:PORT");
        https_server_free(TAKE_PTR(s));

        missing = xasprintf("%s/missing.crt", dir);
        SSL_CTX_free(TAKE_PTR(ctx));
        free(TAKE_PTR(err4));
        assert_true(mtls_server_ctx(missing, host.key, ca_file, true, &ctx, &err4) < 0);
        assert_non_null(strstr(err4, missing));
        free(TAKE_PTR(err4));
        /* A key that is not the certificate's. */
        assert_true(mtls_server_ctx(host.cert, controller.key, ca_file, true, &ctx, &err4) < 0);
        assert_non_null(strstr(err4, "does not belong to"));
        event_base_free(base);
}

typedef struct tally {
        size_t done, ok;
} tally;

static void on_done(https_call *c, void *userdata) {
        tally *t = userdata;

        t->done++;
        if (c->status == 200 && !c->error)
                t->ok++;
}

static void test_perform_many(void **state) {
        server *s = server_start(&host, true);
        https_call calls[24] = {};
        char *urls[24];
        tally t = {};

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(calls); i++) {
                urls[i] = url(s, i == 5 ? "/v1/nothing" : "/v1/echo");
                calls[i] = (https_call) {
                        .method = "POST",
                        .url = urls[i],
                        /* One call expects another server: it alone fails. */
                        .peer_name = i == 7 ? "db9.hosts." DOMAIN : "db1.hosts." DOMAIN,
                        .body = "{}",
                        .body_size = 2,
                        .timeout_ms = 10000,
                };
        }
        assert_int_equal(https_perform_many(as_controller(), calls, ELEMENTSOF(calls), 8, on_done, &t), 0);
        assert_int_equal(t.done, ELEMENTSOF(calls));
        assert_int_equal(t.ok, ELEMENTSOF(calls) - 2);
        assert_int_equal(calls[5].status, 404);
        assert_int_equal(calls[7].status, 0);
        assert_non_null(calls[7].error);
        for (size_t i = 0; i < ELEMENTSOF(calls); i++) {
                if (i != 5 && i != 7) {
                        assert_int_equal(calls[i].status, 200);
                        assert_non_null(strstr(calls[i].response, "\"peer\":\"controller." DOMAIN "\""));
                        assert_true(calls[i].seconds > 0);
                }
                https_call_done(&calls[i]);
                free(urls[i]);
        }
        server_stop(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_mutual_tls_identities),
                cmocka_unit_test(test_client_refusals),
                cmocka_unit_test(test_optional_client_cert),
                cmocka_unit_test(test_limits_and_routes),
                cmocka_unit_test(test_unix_socket),
                cmocka_unit_test(test_stale_socket_and_errors),
                cmocka_unit_test(test_perform_many),
        };

        if (getenv("TEST_FILTER"))
                cmocka_set_test_filter(getenv("TEST_FILTER"));
        return cmocka_run_group_tests(tests, setup, teardown);
}
