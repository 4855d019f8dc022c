/* HTTPS requests with libcurl, the only file that talks to it: one request (agentctl enroll, an
 * agent's status report) or many at once (the controller's push to every host, curl multi).
 *
 * Peer verification: against ca (PEM text; trust store of the system is never used), and the
 * server certificate must name peer_name (a DNS subjectAltName) — not the URL's host, which is
 * usually an IP address. The check is OpenSSL's own (X509_VERIFY_PARAM_set1_host, set through
 * CURLOPT_SSL_CTX_FUNCTION). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct https_client_tls {
        const char *ca_pem;       /* trust anchor (PEM text); NULL only with insecure */
        const char *cert_file;    /* our client certificate and key (PEM files), or NULL */
        const char *key_file;
        bool insecure;            /* no verification at all: only to fetch a CA certificate that the
                                   * caller then checks itself (fingerprint or token binding) */
} https_client_tls;

typedef struct https_call {
        /* in */
        const char *method;       /* "GET", "POST" */
        const char *url;          /* "https://10.0.0.2:7443/v1/desired-state" */
        const char *peer_name;    /* the server's expected identity; NULL: any certificate from ca */
        const char *body;         /* request body (application/json), or NULL */
        size_t body_size;
        long timeout_ms;          /* whole request, connect included */
        size_t max_response;      /* bytes; larger responses fail the call (default 16 MiB) */
        void *userdata;
        /* out */
        long status;              /* HTTP status, 0 when no response */
        char *response;           /* NUL-terminated body (malloc'd), or NULL */
        size_t response_size;
        char *error;              /* transport failure ("connection refused", "timed out after 30 s",
                                   * "certificate verify failed: ..."), NULL when a response came */
        double seconds;           /* time the call took */
} https_call;

void https_call_done(https_call *c); /* frees the outputs */

/* One call. Returns 0 when a response arrived (any status), -EIO etc. with c->error set.
 * Thread-safe (libcurl is initialised once); the first call sets SIGPIPE to be ignored. */
int https_perform(const https_client_tls *tls, https_call *c);

/* Many calls concurrently, at most max_parallel at once; done (optional) runs as each finishes,
 * in completion order, on the calling thread. Returns 0; per-call results are in the calls. */
int https_perform_many(const https_client_tls *tls, https_call *calls, size_t n, size_t max_parallel,
                       void (*done)(https_call *c, void *userdata), void *userdata);
