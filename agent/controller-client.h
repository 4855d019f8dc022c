/* Requests from this host to its enrolled controller: POST <controller-url><path> over mutual TLS
 * with the host certificate, trusting the enrolled CA alone. What the status reports and the data
 * keys share; each caller builds its body and decodes the answer. */
#pragma once

#include <stddef.h>

#include "config.h"
#include "enroll.h"

typedef struct controller_client {
        enrollment enrollment;
        char *ca_pem;    /* the enrolled CA (ca.crt): the only trust anchor */
        char *cert_file; /* host.crt and host.key: our identity, <host>.hosts.<domain> */
        char *key_file;
} controller_client;

/* Load the enrollment and the CA. -ENOENT (with a message) when this host is not enrolled; other
 * errors name the file. */
int controller_client_open(const agent_config *cfg, controller_client *ret, char **ret_error);
void controller_client_done(controller_client *c);

/* POST body (JSON) to path ("/v1/report") and take a 2xx answer: its body in *ret_response
 * (malloc'd and NUL-terminated, NULL when there is none) and its size in *ret_size, both optional.
 * Messages read
 * "<what> to the controller at <url>: ...":
 *   -EHOSTUNREACH the controller did not answer (connection, TLS handshake, timeout): the cause
 *   -EPROTO       it answered with another status (the status and its {"error"} message), or an
 *                 answer larger than WIRE_MAX_SIZE */
int controller_post(const controller_client *c, const char *what, const char *path, const char *body, size_t size,
                    long timeout_ms, char **ret_response, size_t *ret_size, char **ret_error);
