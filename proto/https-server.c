/* The daemons' HTTP server: libevent's evhttp over OpenSSL bufferevents (TLS 1.3, verified
 * client certificates) and plain HTTP on a Unix socket for local tools; routes, limits, the
 * peer's identity and JSON replies. The only file that talks to libevent's HTTP layer. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/queue.h>
#include <sys/un.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "https-server.h"
#include "wire.h"
#include "x509.h"

#define LISTEN_BACKLOG 128

DEFINE_TRIVIAL_CLEANUP_FUNC(SSL_CTX *, SSL_CTX_free);

typedef struct route {
        char *method, *path;
        https_handler handler;
        void *userdata;
} route;

struct https_server {
        struct event_base *base;
        SSL_CTX *ctx;
        https_limits limits;
        struct evhttp *tls;     /* TCP listeners, TLS bufferevents */
        struct evhttp *local;   /* Unix socket listeners, plain */
        route *routes;
        size_t n_routes;
        char **unix_paths;      /* removed again on free */
        size_t n_unix_paths;
        https_request *held;    /* requests waiting for a deferred reply */
};

struct https_request {
        https_server *server;
        struct evhttp_request *req;  /* NULL once the connection went away under a held request */
        bool local, held, replied, in_handler;
        char *path;
        struct evkeyvalq query;
        char *body;
        size_t body_size;
        char *peer_name;
        bool peer_name_done;
        char peer_address[INET6_ADDRSTRLEN + 8];
        https_request *held_prev, *held_next;
};

/* ---- identities and contexts --------------------------------------------------------------- */

char *mtls_controller_name(const char *domain) {
        return xasprintf("%s.%s", MTLS_CONTROLLER_LABEL, domain);
}

char *mtls_host_name(const char *host, const char *domain) {
        return xasprintf("%s.%s.%s", host, MTLS_HOSTS_LABEL, domain);
}

int mtls_server_ctx(const char *cert_file, const char *key_file, const char *ca_file, bool require_client_cert,
                    SSL_CTX **ret, char **ret_error) {
        _cleanup_(SSL_CTX_freep) SSL_CTX *ctx = NULL;
        _cleanup_free_ char *what = NULL;

        ERR_clear_error();
        ctx = SSL_CTX_new(TLS_server_method());
        if (!ctx) {
                *ret_error = x509_openssl_error("cannot create a TLS context");
                return -ENOMEM;
        }
        if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
            SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
                *ret_error = x509_openssl_error("cannot restrict TLS to version 1.3");
                return -EIO;
        }
        if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
                what = xasprintf("%s", cert_file);
                *ret_error = x509_openssl_error(what);
                return -EINVAL;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
                if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
                        what = xasprintf("%s does not belong to %s", key_file, cert_file);
                else
                        what = xasprintf("%s", key_file);
                *ret_error = x509_openssl_error(what);
                return -EINVAL;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
                what = xasprintf("%s does not belong to %s", key_file, cert_file);
                *ret_error = x509_openssl_error(what);
                return -EINVAL;
        }
        /* Resumed sessions carry the verified peer; the id context ties them to this server. */
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *) "infrastream", 11);

        if (ca_file) {
                X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);
                STACK_OF(X509_NAME) *names;

                if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
                        what = xasprintf("%s", ca_file);
                        *ret_error = x509_openssl_error(what);
                        return -EINVAL;
                }
                /* Only this CA: the names it tells clients to pick a certificate by. */
                names = SSL_load_client_CA_file(ca_file);
                if (names)
                        SSL_CTX_set_client_CA_list(ctx, names);
                X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_X509_STRICT);
                X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_CLIENT);
                SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (require_client_cert ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
                                   NULL);
        } else if (require_client_cert) {
                *ret_error = xstrdup("a client certificate can only be required with a CA to verify it");
                return -EINVAL;
        } else
                SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);

        *ret = TAKE_PTR(ctx);
        return 0;
}

/* ---- requests ------------------------------------------------------------------------------ */

static const char *method_name(enum evhttp_cmd_type cmd) {
        switch (cmd) {
        case EVHTTP_REQ_GET:
                return "GET";
        case EVHTTP_REQ_POST:
                return "POST";
        case EVHTTP_REQ_HEAD:
                return "HEAD";
        case EVHTTP_REQ_PUT:
                return "PUT";
        case EVHTTP_REQ_DELETE:
                return "DELETE";
        case EVHTTP_REQ_OPTIONS:
                return "OPTIONS";
        case EVHTTP_REQ_TRACE:
                return "TRACE";
        case EVHTTP_REQ_CONNECT:
                return "CONNECT";
        case EVHTTP_REQ_PATCH:
                return "PATCH";
        default:
                return "?";
        }
}

const char *https_request_method(https_request *r) {
        return r->req ? method_name(evhttp_request_get_command(r->req)) : "?";
}

const char *https_request_path(https_request *r) {
        return r->path;
}

const char *https_request_query(https_request *r, const char *key) {
        return evhttp_find_header(&r->query, key);
}

const char *https_request_body(https_request *r, size_t *ret_size) {
        if (ret_size)
                *ret_size = r->body_size;
        return r->body;
}

static struct bufferevent *request_bev(https_request *r) {
        struct evhttp_connection *evcon = r->req ? evhttp_request_get_connection(r->req) : NULL;

        return evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
}

X509 *https_request_peer_cert(https_request *r) {
        struct bufferevent *bev;
        X509 *peer;
        SSL *ssl;

        if (r->local || !(bev = request_bev(r)) || !(ssl = bufferevent_openssl_get_ssl(bev)))
                return NULL;
        /* The handshake refused certificates that do not verify when one is required; where one
         * is optional, a failed verification must not pass for an identity either. */
        peer = SSL_get0_peer_certificate(ssl);
        if (!peer || SSL_get_verify_result(ssl) != X509_V_OK)
                return NULL;
        return peer;
}

const char *https_request_peer_name(https_request *r) {
        _cleanup_free_ char *error = NULL;
        char **names = NULL;
        size_t n = 0;
        X509 *peer;

        if (r->peer_name_done)
                return r->peer_name;
        r->peer_name_done = true;
        peer = https_request_peer_cert(r);
        if (!peer)
                return NULL;
        if (x509_cert_dns_names(peer, &names, &n, &error) < 0 || n == 0) {
                x509_names_free(names, n);
                return NULL;
        }
        r->peer_name = xstrdup(names[0]);
        x509_names_free(names, n);
        return r->peer_name;
}

const char *https_request_peer_address(https_request *r) {
        return r->peer_address;
}

bool https_request_peer_cred(https_request *r, uid_t *ret_uid, gid_t *ret_gid, pid_t *ret_pid) {
        struct ucred cred = {};
        socklen_t len = sizeof(cred);
        struct bufferevent *bev;
        evutil_socket_t fd;

        if (!r->local || !(bev = request_bev(r)) || (fd = bufferevent_getfd(bev)) < 0)
                return false;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred))
                return false;
        if (ret_uid)
                *ret_uid = cred.uid;
        if (ret_gid)
                *ret_gid = cred.gid;
        if (ret_pid)
                *ret_pid = cred.pid;
        return true;
}

static void request_free(https_request *r) {
        if (!r)
                return;
        if (r->held) {
                if (r->held_prev)
                        r->held_prev->held_next = r->held_next;
                else
                        r->server->held = r->held_next;
                if (r->held_next)
                        r->held_next->held_prev = r->held_prev;
        }
        evhttp_clear_headers(&r->query);
        free(r->path);
        /* Bodies carry secrets (enrollment tokens, application hosts' passwords): wipe our copy. */
        if (r->body)
                explicit_bzero(r->body, r->body_size);
        free(r->body);
        free(r->peer_name);
        free(r);
}

/* A held request whose client went away: libevent frees the evhttp_request with the
 * connection, so forget it; the eventual reply is dropped. */
static void on_connection_close(struct evhttp_connection *evcon, void *arg) {
        https_request *r = arg;

        (void) evcon;
        r->req = NULL;
}

void https_request_hold(https_request *r) {
        struct evhttp_connection *evcon;

        if (r->held)
                return;
        r->held = true;
        r->held_next = r->server->held;
        if (r->held_next)
                r->held_next->held_prev = r;
        r->server->held = r;
        evcon = r->req ? evhttp_request_get_connection(r->req) : NULL;
        if (evcon)
                evhttp_connection_set_closecb(evcon, on_connection_close, r);
}

static void send_reply(https_request *r, int status, struct evbuffer *body) {
        if (r->replied)
                return;
        r->replied = true;
        if (r->req) {
                struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);

                if (evcon && r->held)
                        evhttp_connection_set_closecb(evcon, NULL, NULL);
                evhttp_add_header(evhttp_request_get_output_headers(r->req), "Content-Type", "application/json");
                evhttp_send_reply(r->req, status, NULL, body);
        }
        /* A held request is finished by its reply; one answered inside its handler is freed by
         * the dispatcher once the handler returns. */
        if (r->held && !r->in_handler)
                request_free(r);
}

void https_reply_json(https_request *r, int status, json_object *o) {
        struct evbuffer *buf = evbuffer_new();
        size_t len = 0;
        const char *s;

        if (!buf)
                abort();
        /* No object (204 No Content): no body at all, not json-c's "null". */
        s = o ? json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len)
              : NULL;
        if (s) {
                evbuffer_add(buf, s, len);
                evbuffer_add(buf, "\n", 1);
        }
        json_object_put(o);
        send_reply(r, status, buf);
        evbuffer_free(buf);
}

/* Who to name in a log line: the verified identity, the local user, or the address. */
static char *peer_label(https_request *r) {
        const char *name = https_request_peer_name(r);
        uid_t uid;

        if (name)
                return xstrdup(name);
        if (https_request_peer_cred(r, &uid, NULL, NULL))
                return xasprintf("unix (uid %u)", (unsigned) uid);
        return xstrdup(r->peer_address);
}

_printf_(3, 0) static void reply_errorv(https_request *r, int status, const char *fmt, va_list ap) {
        _cleanup_free_ char *msg = NULL, *peer = peer_label(r);
        json_object *o;

        if (vasprintf(&msg, fmt, ap) < 0)
                abort();
        fprintf(stderr, "%s %s from %s: %d %s\n", https_request_method(r), strempty(r->path), peer, status, msg);
        o = json_object_new_object();
        if (!o || json_object_object_add(o, "error", json_object_new_string(msg)) < 0)
                abort();
        https_reply_json(r, status, o);
}

void https_reply_error(https_request *r, int status, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        reply_errorv(r, status, fmt, ap);
        va_end(ap);
}

static void reply_error_internal(https_request *r, int status, const char *fmt, ...) _printf_(3, 4);
static void reply_error_internal(https_request *r, int status, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        reply_errorv(r, status, fmt, ap);
        va_end(ap);
}

static void format_peer_address(https_request *r) {
        struct evhttp_connection *evcon = evhttp_request_get_connection(r->req);
        char *host = NULL;
        ev_uint16_t port = 0;

        if (r->local || !evcon) {
                snprintf(r->peer_address, sizeof(r->peer_address), "unix");
                return;
        }
        evhttp_connection_get_peer(evcon, &host, &port);
        if (host && strchr(host, ':'))
                snprintf(r->peer_address, sizeof(r->peer_address), "[%s]:%u", host, port);
        else
                snprintf(r->peer_address, sizeof(r->peer_address), "%s:%u", host ? host : "?", port);
}

static void dispatch(https_server *s, struct evhttp_request *req, bool local) {
        https_request *r = xcalloc(1, sizeof(https_request));
        const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        const char *method = method_name(evhttp_request_get_command(req)), *path, *q;
        _cleanup_free_ char *allow = NULL;
        const route *match = NULL;
        bool path_known = false;

        r->server = s;
        r->req = req;
        r->local = local;
        TAILQ_INIT(&r->query);
        format_peer_address(r);
        path = uri ? evhttp_uri_get_path(uri) : NULL;
        r->path = xstrdup(path && *path ? path : "/");
        q = uri ? evhttp_uri_get_query(uri) : NULL;
        if (q && evhttp_parse_query_str(q, &r->query) < 0) {
                reply_error_internal(r, 400, "malformed query string");
                goto finish;
        }
        r->body_size = evbuffer_get_length(in);
        r->body = xmalloc(r->body_size + 1);
        if (r->body_size > 0)
                evbuffer_copyout(in, r->body, r->body_size);
        r->body[r->body_size] = '\0';

        for (size_t i = 0; i < s->n_routes; i++) {
                const route *rt = &s->routes[i];
                char *a;

                if (!streq(rt->path, r->path))
                        continue;
                path_known = true;
                if (streq(rt->method, method)) {
                        match = rt;
                        break;
                }
                a = allow ? xasprintf("%s, %s", allow, rt->method) : xstrdup(rt->method);
                free(allow);
                allow = a;
        }
        if (!match) {
                if (path_known) {
                        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", allow);
                        reply_error_internal(r, 405, "method %s not allowed on %s (allowed: %s)", method, r->path,
                                             allow);
                } else
                        reply_error_internal(r, 404, "no such path");
                goto finish;
        }

        r->in_handler = true;
        match->handler(r, match->userdata);
        r->in_handler = false;
        if (r->held && !r->replied)
                return; /* freed by its reply */
        if (!r->replied)
                reply_error_internal(r, 500, "the handler gave no answer");
finish:
        request_free(r);
}

static void on_request_tls(struct evhttp_request *req, void *arg) {
        dispatch(arg, req, false);
}

static void on_request_local(struct evhttp_request *req, void *arg) {
        dispatch(arg, req, true);
}

/* Failed handshakes never reach a handler: say here which peer failed and why. */
static void on_ssl_info(const SSL *ssl, int where, int ret) {
        struct bufferevent *bev = SSL_get_app_data(ssl);
        struct sockaddr_storage sa;
        socklen_t len = sizeof(sa);
        char addr[INET6_ADDRSTRLEN] = "?";
        const char *alert;
        long verify;
        int fd;

        if (!(where & SSL_CB_ALERT) || !streq(SSL_alert_type_string(ret), "F"))
                return;
        fd = bev ? bufferevent_getfd(bev) : -1;
        if (fd >= 0 && getpeername(fd, (struct sockaddr *) &sa, &len) == 0) {
                if (sa.ss_family == AF_INET)
                        inet_ntop(AF_INET, &((struct sockaddr_in *) &sa)->sin_addr, addr, sizeof(addr));
                else if (sa.ss_family == AF_INET6)
                        inet_ntop(AF_INET6, &((struct sockaddr_in6 *) &sa)->sin6_addr, addr, sizeof(addr));
        }
        /* OpenSSL 3.0 has no text for TLS 1.3's certificate_required (116). */
        alert = (ret & 0xff) == 116 ? "no client certificate" : SSL_alert_desc_string_long(ret);
        if (where & SSL_CB_READ) {
                fprintf(stderr, "TLS handshake with %s failed: the client sent '%s'\n", addr, alert);
                return;
        }
        verify = SSL_get_verify_result(ssl);
        fprintf(stderr, "TLS handshake with %s failed: %s%s%s\n", addr, alert, verify != X509_V_OK ? ": " : "",
                verify != X509_V_OK ? X509_verify_cert_error_string(verify) : "");
}

static struct bufferevent *on_new_connection(struct event_base *base, void *arg) {
        https_server *s = arg;
        struct bufferevent *bev;
        SSL *ssl = SSL_new(s->ctx);

        if (!ssl)
                return NULL;
        SSL_set_info_callback(ssl, on_ssl_info);
        /* evhttp sets the socket later; the bufferevent frees the SSL. */
        bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
        if (!bev) {
                SSL_free(ssl);
                return NULL;
        }
        SSL_set_app_data(ssl, bev);
        /* Clients that just close after their answer are not an error worth a warning. */
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        return bev;
}

/* ---- server -------------------------------------------------------------------------------- */

static struct evhttp *new_evhttp(https_server *s, bool local) {
        struct evhttp *h = evhttp_new(s->base);

        if (!h)
                return NULL;
        if (s->limits.max_body > 0)
                evhttp_set_max_body_size(h, (ev_ssize_t) s->limits.max_body);
        if (s->limits.max_headers > 0)
                evhttp_set_max_headers_size(h, (ev_ssize_t) s->limits.max_headers);
        if (s->limits.timeout_seconds > 0)
                evhttp_set_timeout(h, s->limits.timeout_seconds);
        evhttp_set_allowed_methods(h, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                              EVHTTP_REQ_HEAD | EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
        evhttp_set_gencb(h, local ? on_request_local : on_request_tls, s);
        if (!local)
                evhttp_set_bevcb(h, on_new_connection, s);
        return h;
}

https_server *https_server_new(struct event_base *base, SSL_CTX *ctx, const https_limits *limits) {
        https_server *s = xcalloc(1, sizeof(https_server));

        /* OpenSSL writes to the socket with write(): a client that left must be an error on
         * its connection, not the death of the daemon. */
        signal(SIGPIPE, SIG_IGN);

        s->base = base;
        if (limits)
                s->limits = *limits;
        if (ctx) {
                SSL_CTX_up_ref(ctx);
                s->ctx = ctx;
                s->tls = new_evhttp(s, false);
                if (!s->tls) {
                        https_server_free(s);
                        return NULL;
                }
        }
        return s;
}

void https_server_free(https_server *s) {
        if (!s)
                return;
        /* Requests still held are never answered now: their connections go with evhttp. */
        while (s->held) {
                https_request *r = s->held;
                struct evhttp_connection *evcon = r->req ? evhttp_request_get_connection(r->req) : NULL;

                if (evcon)
                        evhttp_connection_set_closecb(evcon, NULL, NULL);
                request_free(r);
        }
        if (s->tls)
                evhttp_free(s->tls);
        if (s->local)
                evhttp_free(s->local);
        for (size_t i = 0; i < s->n_unix_paths; i++) {
                (void) unlink(s->unix_paths[i]);
                free(s->unix_paths[i]);
        }
        free(s->unix_paths);
        for (size_t i = 0; i < s->n_routes; i++) {
                free(s->routes[i].method);
                free(s->routes[i].path);
        }
        free(s->routes);
        SSL_CTX_free(s->ctx);
        free(s);
}

void https_server_route(https_server *s, const char *method, const char *path, https_handler h, void *userdata) {
        s->routes = xrealloc(s->routes, (s->n_routes + 1) * sizeof(route));
        s->routes[s->n_routes++] = (route) {
                .method = xstrdup(method),
                .path = xstrdup(path),
                .handler = h,
                .userdata = userdata,
        };
}

int https_server_listen(https_server *s, const char *addr_port, int *ret_port, char **ret_error) {
        struct sockaddr_storage sa = {};
        socklen_t len = sizeof(sa), sl = sizeof(sa);
        struct evconnlistener *l;
        int r;

        if (!s->tls) {
                *ret_error = xstrdup("this server has no TLS context to listen with");
                return -EINVAL;
        }
        if (wire_endpoint_parse(addr_port, true, &sa, &len) < 0) {
                *ret_error = xasprintf("'%s' is not ADDRESS:PORT", addr_port);
                return -EINVAL;
        }
        l = evconnlistener_new_bind(s->base, NULL, NULL,
                                    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
                                    LISTEN_BACKLOG, (struct sockaddr *) &sa, (int) len);
        if (!l) {
                r = -errno;
                if (r == 0)
                        r = -EIO;
                *ret_error = xasprintf("cannot listen on %s: %s", addr_port, strerror(-r));
                return r;
        }
        if (!evhttp_bind_listener(s->tls, l)) {
                evconnlistener_free(l);
                *ret_error = xasprintf("cannot listen on %s", addr_port);
                return -EIO;
        }
        if (ret_port) {
                if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *) &sa, &sl) < 0) {
                        r = -errno;
                        *ret_error = xasprintf("cannot read the port of %s: %s", addr_port, strerror(-r));
                        return r;
                }
                *ret_port = ntohs(sa.ss_family == AF_INET ? ((struct sockaddr_in *) &sa)->sin_port
                                                          : ((struct sockaddr_in6 *) &sa)->sin6_port);
        }
        return 0;
}

int https_server_listen_unix(https_server *s, const char *path, mode_t mode, gid_t gid, char **ret_error) {
        _cleanup_close_ int fd = -1;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct evconnlistener *l;
        struct stat st;
        mode_t old;
        int r;

        if (strlen(path) >= sizeof(sa.sun_path)) {
                *ret_error = xasprintf("socket path %s is too long", path);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, path);
        if (!s->local) {
                s->local = new_evhttp(s, true);
                if (!s->local) {
                        *ret_error = xstrdup("cannot create the HTTP server");
                        return -ENOMEM;
                }
        }
        /* Replace a stale socket, never anything else that happens to have the name. */
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode)) {
                        *ret_error = xasprintf("%s exists and is not a socket", path);
                        return -EEXIST;
                }
                if (unlink(path) < 0) {
                        r = -errno;
                        *ret_error = xasprintf("cannot remove the stale socket %s: %s", path, strerror(-r));
                        return r;
                }
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
                r = -errno;
                *ret_error = xasprintf("cannot create a Unix socket: %s", strerror(-r));
                return r;
        }
        /* The file is born with at most mode: no window in which anyone else can connect. */
        old = umask(~mode & 0777);
        r = bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 ? -errno : 0;
        umask(old);
        if (r < 0) {
                *ret_error = xasprintf("cannot bind %s: %s", path, strerror(-r));
                return r;
        }
        if (chmod(path, mode) < 0 || (gid != (gid_t) -1 && chown(path, (uid_t) -1, gid) < 0)) {
                r = -errno;
                (void) unlink(path);
                *ret_error = xasprintf("cannot set the owner and mode of %s: %s", path, strerror(-r));
                return r;
        }
        l = evconnlistener_new(s->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, LISTEN_BACKLOG,
                               fd);
        if (!l) {
                r = errno > 0 ? -errno : -EIO;
                (void) unlink(path);
                *ret_error = xasprintf("cannot listen on %s: %s", path, strerror(-r));
                return r;
        }
        TAKE_FD(fd);
        if (!evhttp_bind_listener(s->local, l)) {
                evconnlistener_free(l);
                (void) unlink(path);
                *ret_error = xasprintf("cannot serve on %s", path);
                return -EIO;
        }
        s->unix_paths = xrealloc(s->unix_paths, (s->n_unix_paths + 1) * sizeof(char *));
        s->unix_paths[s->n_unix_paths++] = xstrdup(path);
        return 0;
}

int https_server_adopt(https_server *s, int fd, char **ret_error) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof(sa);
        int type = 0, listening = 0;
        socklen_t tl = sizeof(type), ll = sizeof(listening);
        struct evhttp *http;

        if (getsockname(fd, (struct sockaddr *) &sa, &len) < 0 ||
            (sa.ss_family != AF_INET && sa.ss_family != AF_INET6 && sa.ss_family != AF_UNIX) ||
            getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM ||
            getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) < 0 || !listening) {
                *ret_error = xasprintf("file descriptor %d is not a listening TCP or Unix stream socket", fd);
                return -ENOTSOCK;
        }
        /* TCP is served with TLS, a Unix socket in plain HTTP with the peer's credentials. */
        if (sa.ss_family != AF_UNIX) {
                if (!s->tls) {
                        *ret_error = xstrdup("this server has no TLS context to serve with");
                        return -EINVAL;
                }
                http = s->tls;
        } else {
                if (!s->local)
                        s->local = new_evhttp(s, true);
                if (!s->local) {
                        *ret_error = xstrdup("cannot create the HTTP server");
                        return -ENOMEM;
                }
                http = s->local;
        }
        if (evutil_make_socket_nonblocking(fd) < 0 || !evhttp_accept_socket_with_handle(http, fd)) {
                *ret_error = xasprintf("cannot serve on file descriptor %d", fd);
                return -EIO;
        }
        return 0;
}
