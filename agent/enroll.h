/* Enrollment: this host gets its identity (<host>.hosts.<domain>) from the controller's CA with a
 * one-time token, and learns the controller's identity and document-signing key. The files live
 * in the state directory; enrollment.json is written last and is what "enrolled" means. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#define ENROLL_HOST_KEY "host.key"         /* EC P-256, 0600, generated here, never leaves the host */
#define ENROLL_HOST_CERT "host.crt"        /* issued by the controller's CA */
#define ENROLL_CA "ca.crt"                 /* the controller's CA: trust anchor for both directions */
#define ENROLL_SIGNING_KEY "signing-key.pub" /* Ed25519 key that signs desired-state documents */
#define ENROLL_FILE "enrollment.json"

typedef struct enrollment {
        char *controller_url;   /* "https://10.0.0.1:7443" */
        char *controller_name;  /* "controller.<domain>": the only client allowed to push */
        char *host;             /* the enrolled name */
        char *role;             /* "database" / "application" */
        int64_t enrolled_at;    /* seconds since the epoch */
        char *ca_fingerprint;   /* hex SHA-256 of the CA certificate (DER) */
} enrollment;

typedef struct enroll_options {
        const char *controller_url;
        const char *token;          /* "<id>.<secret>": a secret, never printed */
        const char *ca_fingerprint; /* expected CA fingerprint, or NULL: the token binding decides */
        bool force;                 /* replace an existing enrollment */
        long timeout_ms;            /* per request; 0: 30 s */
} enroll_options;

void enrollment_done(enrollment *e);
/* "<state-dir>/<file>", malloc'd. */
char *enrollment_file(const agent_config *cfg, const char *file);
/* -ENOENT (with a message) when this host is not enrolled. */
int enrollment_load(const agent_config *cfg, enrollment *ret, char **ret_error);

/* The key documents are verified with: the configuration's trust-key when set, else the enrolled
 * signing-key.pub when it exists, else NULL. malloc'd. */
char *agent_trust_key(const agent_config *cfg);

/* "sha256:AB:CD:..." / "abcd..." → 64 lower-case hex digits; false when it is not a SHA-256. */
bool enroll_parse_fingerprint(const char *s, char ret[65]);

/* The whole flow: fetch the CA and check it (fingerprint or token binding) before the secret is
 * sent; a new host key and its request; the controller's answer checked (certificate for our key
 * and name, from that CA) and stored. Nothing is written unless every step succeeded. */
int agent_enroll(const agent_config *cfg, const enroll_options *o, enrollment *ret, char **ret_error);
