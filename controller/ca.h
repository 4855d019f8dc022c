/* The controller's certificate authority: an EC P-256 key (ca.key, 0600, never leaves the state
 * directory, never replaced) and a self-signed certificate (ca.crt) whose name constraints keep
 * it to one DNS domain. It signs the server certificates database hosts request, for the names
 * their document gives them and nothing else, and the identities of the mutual-TLS channel: the
 * controller's (controller.<domain>) and each enrolled host's (<host>.hosts.<domain>). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CA_KEY_FILE "ca.key"
#define CA_CERT_FILE "ca.crt"
#define CA_LIFETIME_DAYS 3650                       /* the CA certificate: 10 years */
#define CA_CERT_LIFETIME_DEFAULT (90 * 86400)       /* a server certificate: 90 days */
#define CA_CERT_LIFETIME_MAX (397 * 86400)          /* what browsers accept; no server needs more */
#define CA_BACKDATE_MAX 300                         /* notBefore allows 5 minutes of clock skew */
#define CA_CONTROLLER_KEY_FILE "controller.key"
#define CA_CONTROLLER_CERT_FILE "controller.crt"
#define CA_CONTROLLER_LIFETIME (365 * 86400)        /* controller.<domain>: 1 year */
#define CA_HOST_LIFETIME (365 * 86400)              /* <host>.hosts.<domain>, issued at enrollment: 1 year */

typedef struct ca ca;

/* Create <state_dir>/ca.key and ca.crt for domain (name constraint: DNS names at or below it).
 * Returns 1 when something was created, 0 when both exist (kept as they are: agents may trust
 * them), -errno with a message otherwise. A ca.crt without its key is an error, never replaced. */
int ca_create(const char *state_dir, const char *domain, char **ret_error);

/* Load the CA of a state directory: the key must be 0600 (not readable by others) and belong to
 * the certificate; the domain is read back from the certificate's name constraints, so the
 * certificate is the one record of it. -ENOENT when there is no CA (run init). */
int ca_load(const char *state_dir, ca **ret, char **ret_error);
void ca_free(ca *c);
static inline void ca_freep(ca **c) {
        ca_free(*c);
}

const char *ca_domain(const ca *c);
const char *ca_cert_path(const ca *c);
/* subject, SHA-256 fingerprint of the certificate (hex), validity. */
int ca_describe(const ca *c, char **ret_subject, char ret_fingerprint[65], time_t *ret_not_before,
                time_t *ret_not_after);

/* Issue a server certificate for a PEM certificate request. The request's signature must verify
 * with its own key (EC P-256/P-384 or RSA >= 2048); it may ask only for DNS names (subjectAltName
 * and commonName), each of them in allowed (the names the document gives holder, e.g. "host
 * 'db1'") and inside the CA's domain; a request for a CA certificate is refused. The certificate
 * has a random 128-bit serial, notBefore now - min(5 min, lifetime/10), notAfter now + lifetime,
 * the requested names as subjectAltName (the first as CN), EKU serverAuth, KU digitalSignature,
 * CA:FALSE, SKI/AKI, ECDSA-SHA256. Refusals return -EPERM (names) or -EBADMSG (request) with a
 * message naming the reason. */
int ca_sign_csr(const ca *c, const char *csr_pem, const char *const *allowed, size_t n_allowed, const char *holder,
                int64_t lifetime_seconds, char **ret_cert_pem, char **ret_error);

/* Issue a host's identity on the mutual-TLS channel for its enrollment request: subjectAltName
 * <host>.hosts.<domain> (mtls_host_name()), EKU serverAuth + clientAuth, otherwise as above. The
 * request must pass the same checks (signature, key, no CA); the names it asks for are ignored:
 * the controller names the host. host must be one lower-case DNS label (-EINVAL otherwise). */
int ca_sign_host_csr(const ca *c, const char *csr_pem, const char *host, int64_t lifetime_seconds,
                     char **ret_cert_pem, char **ret_error);

/* Create the controller's own identity in state_dir: an EC P-256 key (controller.key, 0600) and a
 * certificate for controller.<domain> (controller.crt, 0644; EKU serverAuth + clientAuth, 1 year),
 * the server certificate of 'serve' and the client certificate of pushes. Like ca_create(): 1 when
 * created, 0 when both exist (kept as they are), a certificate without its key is an error. */
int ca_create_controller_cert(const ca *c, const char *state_dir, char **ret_error);

/* The CA certificate as PEM, malloc'd. */
char *ca_cert_pem(const ca *c);

/* "90d", "12h", "30m", "300s" -> seconds (1 .. CA_CERT_LIFETIME_MAX). */
int ca_parse_lifetime(const char *s, int64_t *ret);
