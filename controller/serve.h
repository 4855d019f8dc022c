/* infrastream-controller serve: the controller's HTTPS endpoint for agents — the CA (with the
 * token binding), enrollment, status reports and the databases' data keys — on libevent, until
 * SIGTERM/SIGINT. */
#pragma once

#include <stdint.h>

#define SERVE_MAX_BODY (1024u * 1024u)  /* every request agents send fits in 1 MiB */
#define SERVE_MAX_HEADERS (16u * 1024u)
#define SERVE_TIMEOUT 30                /* seconds a connection may take to send or receive */
#define SERVE_MAX_CONNECTIONS 512

typedef struct serve_options {
        const char *state_dir;
        const char *listen;       /* "ADDR:PORT" */
        const char *signing_pub;  /* the document-signing public key (PEM) enrolled hosts get */
} serve_options;

/* Load the CA, the controller's certificate and the store, listen, notify systemd (READY=1,
 * STATUS=), serve until SIGTERM or SIGINT. Prints "listening on ADDR:PORT" to stderr once it
 * accepts connections. Returns 0 after a clean stop, -errno with a message when it cannot start. */
int serve_run(const serve_options *o, char **ret_error);
