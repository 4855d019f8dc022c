/* The HTTPS server both daemons run (controller serve, agent): libevent's evhttp over OpenSSL
 * bufferevents, TLS 1.3 only, and — for the agent's local socket — plain HTTP over a Unix socket
 * whose peers are checked with SO_PEERCRED. The only file that talks to libevent's HTTP layer.
 *
 * Identities on the mutual-TLS channel are DNS names in the CA's domain:
 *   the controller     controller.<domain>           (serverAuth + clientAuth)
 *   an enrolled host   <host>.hosts.<domain>         (serverAuth + clientAuth)
 * A peer is identified by the first DNS subjectAltName of a certificate that verified against
 * the CA (chain, validity, name constraints, EKU). */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "macro.h"

struct event_base;

#define MTLS_CONTROLLER_LABEL "controller" /* controller.<domain> */
#define MTLS_HOSTS_LABEL "hosts"           /* <host>.hosts.<domain> */

/* "controller.<domain>" / "<host>.hosts.<domain>", malloc'd. */
char *mtls_controller_name(const char *domain);
char *mtls_host_name(const char *host, const char *domain);

/* A server context: our certificate and key (PEM files), TLS 1.3 only. With ca_file, a client
 * certificate that verifies against it is required (the handshake fails otherwise); without, no
 * client certificate is asked for (the controller's enrollment endpoint: the token authenticates).
 * Errors name the file and OpenSSL's reason. */
int mtls_server_ctx(const char *cert_file, const char *key_file, const char *ca_file, bool require_client_cert,
                    SSL_CTX **ret, char **ret_error);

typedef struct https_server https_server;
typedef struct https_request https_request;

typedef struct https_limits {
        size_t max_body;          /* bytes; larger bodies get 413 before they are read whole */
        size_t max_headers;       /* bytes of all headers; larger get 431 (libevent: 400) */
        int timeout_seconds;      /* read/write timeout of a connection */
        unsigned max_connections; /* concurrent connections; more wait in the backlog */
} https_limits;

/* A handler runs on the event loop thread. It must answer the request exactly once, either
 * before it returns or later (https_request_hold(), then reply from the loop thread). */
typedef void (*https_handler)(https_request *req, void *userdata);

/* ctx may be NULL for a server that only listens on Unix sockets. The server takes a reference
 * on ctx (SSL_CTX_up_ref); the caller keeps its own. Sets SIGPIPE to be ignored (process-wide):
 * a client that hangs up must fail its connection, not kill the daemon. */
https_server *https_server_new(struct event_base *base, SSL_CTX *ctx, const https_limits *limits);
/* Closes listeners and connections; requests still held are dropped unanswered. libevent finishes
 * closing TLS connections in the loop: run it once more (event_base_loop(base, EVLOOP_NONBLOCK))
 * before event_base_free(), or their buffers leak. */
void https_server_free(https_server *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(https_server *, https_server_free);

/* Listen with TLS on "ADDR:PORT" ("10.0.0.1:7443", "[fd00::1]:7443", "0.0.0.0:7443"). Port 0
 * picks a free one; *ret_port (optional) gets the port. -EADDRINUSE etc. with a message. */
int https_server_listen(https_server *s, const char *addr_port, int *ret_port, char **ret_error);
/* Listen with plain HTTP on a Unix socket: the file is created with mode (e.g. 0660) and group
 * gid ((gid_t) -1: unchanged); a stale socket file is replaced. Every connection's peer is read
 * with SO_PEERCRED; the handler sees it through https_request_peer_cred(). */
int https_server_listen_unix(https_server *s, const char *path, mode_t mode, gid_t gid, char **ret_error);
/* Serve on an already-listening socket (systemd socket activation), which the server then owns:
 * TCP with TLS, a Unix stream socket in plain HTTP (peer credentials as above). The socket's file,
 * mode and owner are whoever made it; it is not removed when the server is freed. */
int https_server_adopt(https_server *s, int fd, char **ret_error);

/* Exact path match; other methods on a known path get 405 with Allow, unknown paths 404. */
void https_server_route(https_server *s, const char *method, const char *path, https_handler h, void *userdata);

/* Request accessors (valid until the reply). */
const char *https_request_method(https_request *r);
const char *https_request_path(https_request *r);        /* without the query */
const char *https_request_query(https_request *r, const char *key); /* decoded, or NULL */
const char *https_request_body(https_request *r, size_t *ret_size); /* NUL-terminated copy */
/* The verified client certificate's identity (first DNS subjectAltName), or NULL when the peer
 * presented none (or this is the Unix socket). */
const char *https_request_peer_name(https_request *r);
/* That certificate itself (borrowed: valid until the reply, never freed by the caller), or NULL
 * as above. */
X509 *https_request_peer_cert(https_request *r);
/* "10.0.0.2:51234", or "unix" */
const char *https_request_peer_address(https_request *r);
/* For Unix socket connections: the peer's credentials. false on TCP. */
bool https_request_peer_cred(https_request *r, uid_t *ret_uid, gid_t *ret_gid, pid_t *ret_pid);

/* Keep the request past the handler's return (an answer that needs a worker thread). */
void https_request_hold(https_request *r);
/* Answer: JSON body (the reference to o is taken), Content-Type application/json; o NULL: no body (204). */
void https_reply_json(https_request *r, int status, json_object *o);
/* Answer with {"error": "<message>"} and log "METHOD PATH from PEER: STATUS message" to stderr.
 * The message must carry no secret. */
void https_reply_error(https_request *r, int status, const char *fmt, ...) _printf_(3, 4);
