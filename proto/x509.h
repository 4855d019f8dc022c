/* X.509 helpers shared by the controller's CA and the agent's TLS reconciler: the DNS name rules,
 * PEM in and out, subject alternative names, verification, fingerprints and times. Certificates
 * and requests cross the wire in the next issue, so both sides read them with the same code.
 * OpenSSL errors become text here. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "macro.h"

#define X509_PEM_MAX (64u * 1024u) /* a certificate, request or key file; anything larger is not one */
#define X509_CN_MAX 64             /* RFC 5280 ub-common-name: longer host names go in subjectAltName only */

DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_REQ *, X509_REQ_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free_all);
DEFINE_TRIVIAL_CLEANUP_FUNC(GENERAL_NAMES *, GENERAL_NAMES_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509_NAME *, X509_NAME_free);

/* Free a list of n names as the functions below return it. */
void x509_names_free(char **v, size_t n);

/* "what: <OpenSSL's reason>", emptying the error queue so the next call starts clean. */
char *x509_openssl_error(const char *what);

/* A host name we certify: 1–253 bytes of dot-separated labels (1–63 letters, digits or '-', not
 * starting or ending with '-'), no trailing dot, no wildcard. */
bool x509_dns_name_valid(const char *s);
/* A host's name: one DNS label of lower-case letters, digits and '-' (names compare byte for byte
 * everywhere else): what <host>.hosts.<domain> is made of. */
bool x509_host_label_valid(const char *s);
/* name is domain or below it (case-insensitive): what a permitted DNS name constraint allows. */
bool x509_name_in_domain(const char *name, const char *domain);

/* Exactly one PEM certificate / certificate request in text; -EBADMSG with a message otherwise. */
int x509_cert_from_pem(const char *pem, X509 **ret, char **ret_error);
int x509_req_from_pem(const char *pem, X509_REQ **ret, char **ret_error);
/* A PEM private key (no passphrase: a daemon never prompts). The caller wipes pem. */
int x509_key_from_pem(const char *pem, size_t size, EVP_PKEY **ret, char **ret_error);
/* The same from a file, whose text is wiped once parsed. -errno with "cannot read <path>: ..." when
 * it cannot be read; x509_key_from_pem()'s errors (-EBADMSG: not a key) otherwise. */
int x509_key_from_file(const char *path, EVP_PKEY **ret, char **ret_error);
/* PEM text (malloc'd, NUL-terminated). The key's text is a secret: erase it (explicit_bzero with
 * *ret_size) before freeing. */
char *x509_cert_to_pem(X509 *x);
char *x509_req_to_pem(X509_REQ *r);
char *x509_key_to_pem(EVP_PKEY *k, size_t *ret_size);

/* A new EC P-256 key (named curve): the widest client support. NULL on failure. */
EVP_PKEY *x509_generate_ec_key(void);
/* Set a random positive 127-bit serial (RFC 5280: unpredictable, at most 20 octets). */
int x509_set_random_serial(X509 *x);

/* A GENERAL_NAMES of DNS entries, built as ASN.1 rather than from a config string, so no name
 * can smuggle in another entry. */
GENERAL_NAMES *x509_dns_general_names(const char *const *names, size_t n);
/* The DNS names of a subjectAltName extension among exts (NULL: none). A non-DNS entry (IP,
 * e-mail, URI, ...) is refused with -EBADMSG: we only ever certify host names. The message is a
 * predicate ("asks for an IP address ..."): the caller names the subject ("CSR ", "certificate "). */
int x509_exts_dns_names(const STACK_OF(X509_EXTENSION) *exts, char ***ret, size_t *ret_n, char **ret_error);
/* The same for a certificate's own subjectAltName. */
int x509_cert_dns_names(X509 *x, char ***ret, size_t *ret_n, char **ret_error);
/* Every name in names is a DNS subjectAltName of x (exact, no wildcards); *ret_missing (optional)
 * points at the first that is not. */
bool x509_cert_covers(X509 *x, const char *const *names, size_t n, const char **ret_missing);

/* Verify cert against the single trust anchor ca, now, for TLS server use (strict X.509 checks,
 * name constraints included). -EKEYEXPIRED when it has expired, -EKEYREJECTED otherwise, with
 * OpenSSL's reason in *ret_error. */
int x509_verify_server_cert(X509 *cert, X509 *ca, char **ret_error);

/* Seconds since the epoch of an ASN.1 time. */
int x509_time_to_unix(const ASN1_TIME *t, time_t *ret);
int x509_validity(X509 *x, time_t *ret_not_before, time_t *ret_not_after);
/* "2027-02-24 10:00:00 UTC" */
void x509_format_time(time_t t, char buf[32]);
/* Lower-case hex SHA-256 of the DER certificate, and of the DER public key. */
int x509_cert_fingerprint(X509 *x, char ret[65]);
int x509_key_fingerprint(EVP_PKEY *k, char ret[65]);
/* The serial as upper-case hex (malloc'd), as openssl x509 -serial prints it. */
char *x509_serial_hex(X509 *x);
/* The subject as one line (RFC 2253 order), malloc'd. */
char *x509_subject_line(X509 *x);
/* The CA's domain: the single permitted DNS subtree of its name constraints (malloc'd).
 * -EBADMSG when there is not exactly one valid one. */
int x509_ca_domain(X509 *ca, char **ret);
