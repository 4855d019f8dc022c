/* The messages between agents and the controller, besides the desired-state document itself
 * (document.h). JSON; every decoder is strict like doc_decode(): unknown fields, wrong types,
 * out-of-range values and oversized input are errors with a message naming the field
 * ("facts.cpus: must be between 1 and 65536"). proto/README.md documents each one.
 *
 *   agent → controller   GET  /v1/ca?token-id=ID      → wire_ca
 *                        POST /v1/enroll  wire_enroll_request → wire_enroll_response
 *                        POST /v1/report  wire_report (mTLS, host certificate) → 204
 *                        POST /v1/data-keys  wire_data_keys_request (mTLS, host certificate)
 *                                            → wire_data_keys_response
 *   controller → agent   POST /v1/desired-state  signed document → wire_push_response
 *                        GET  /v1/status  → wire_report (the same status the agent reports)
 *   any error            {"error": "message"} with a 4xx/5xx status
 *
 * And one local exchange, between the agent and its LUKS2 helper (agent/luks-helper.c) over a Unix
 * socket only root reaches: wire_luks_request → wire_luks_response, or {"error": "message"}. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "document.h"

#define WIRE_MAX_SIZE (1024u * 1024u)  /* any message but a document */
#define WIRE_TOKEN_ID_LEN 8            /* hex */
#define WIRE_TOKEN_SECRET_LEN 32       /* base64url characters */
#define WIRE_MAX_ADDRESSES 64

/* Enrollment tokens: "<id>.<secret>", id 8 lower-case hex digits, secret 32 base64url characters.
 * The controller stores SHA-256("infrastream-token\0" || secret) to check it and
 * binding_key = SHA-256("infrastream-ca-binding\0" || secret) to bind its CA certificate to the
 * token, so an agent without --ca-fingerprint still knows the CA before it sends the secret. */
bool wire_token_parse(const char *token, char id[WIRE_TOKEN_ID_LEN + 1], char secret[WIRE_TOKEN_SECRET_LEN + 1]);
void wire_token_verifier(const char *secret, char ret_hex[65]);
void wire_token_binding_key(const char *secret, unsigned char ret[32]);
/* hex HMAC-SHA256(binding_key, ca_pem) */
void wire_ca_binding(const unsigned char key[32], const char *ca_pem, char ret_hex[65]);

/* "ADDR:PORT" with an IPv4 address or a bracketed IPv6 one ("[fd00::1]:7443"), port 1-65535:
 * the form of facts.endpoint and of the agent's listen setting. */
bool wire_endpoint_valid(const char *s);
/* The same as a socket address; allow_port_zero for listeners ("pick a free port"). */
int wire_endpoint_parse(const char *s, bool allow_port_zero, struct sockaddr_storage *ret, socklen_t *ret_len);

/* GET /v1/ca */
typedef struct wire_ca {
        char *ca;             /* PEM */
        char *binding;        /* hex HMAC, "" when no token id was given or it is unknown */
} wire_ca;

typedef struct wire_facts {
        char *name;           /* host name, DNS label */
        char **addresses;     /* IPv4/IPv6 textual, at least one */
        size_t n_addresses;
        int cpus;
        uint64_t memory_bytes;
        char *endpoint;       /* "ADDR:PORT" the agent's HTTPS listener answers on */
} wire_facts;

typedef struct wire_enroll_request {
        char *token;
        char *csr;            /* PEM, the host key's request */
        wire_facts facts;
} wire_enroll_request;

typedef struct wire_enroll_response {
        char *host;           /* the enrolled name */
        char *role;           /* "database" / "application" (the token's) */
        char *certificate;    /* PEM: <host>.hosts.<domain>, serverAuth + clientAuth */
        char *ca;             /* PEM */
        char *signing_key;    /* PEM Ed25519 public key that signs documents */
        char *controller;     /* the controller's identity, controller.<domain> */
} wire_enroll_response;

/* One database's certificate request, in a push response. */
typedef struct wire_csr {
        char *database;
        char *csr;            /* PEM */
} wire_csr;

/* The status an agent reports (POST /v1/report) and answers (GET /v1/status). The controller
 * reads these fields; the rest of the object ("databases", "apps", ...) is kept as JSON. */
typedef struct wire_report {
        char *host;
        uint64_t revision;    /* applied, 0 when none */
        char *commit;
        bool failed;          /* anything failed or drifted */
        char *last_error;     /* or NULL */
        json_object *status;  /* the whole object */
} wire_report;

/* POST /v1/desired-state, 200: the apply's outcome. */
typedef struct wire_push_response {
        char *host;
        uint64_t revision;
        char *outcome;        /* "done" / "failed" / "unchanged" */
        json_object *results; /* array as results_to_json() writes it (kept as JSON: the agent's type) */
        wire_csr *csrs;
        size_t n_csrs;
        wire_report status;   /* asked for with ?status=1: the status after the apply, which then is
                               * the host's report (no POST /v1/report follows); status.status NULL
                               * when absent. The encoder writes only status.status. */
} wire_push_response;

/* POST /v1/data-keys: the wrapped data keys of databases placed on the asking host, to unlock their
 * encrypted storage (first provisioning and after every reboot: the host never stores them).
 * Request: {"host": "db1", "databases": ["org/ou/env/project/db", ...]}: 1..WIRE_MAX_DATA_KEYS
 * distinct database keys, sorted. Response: {"host": "db1", "keys": [{"database": "org/ou/env/
 * project/db", "wrappedKey": "<keywrap.h base64>"}, ...]}: one per requested database, same order.
 * A database key is five DNS labels joined by '/'; a wrapped key is checked for form only
 * (base64, at most WIRE_WRAPPED_KEY_MAX characters): only keywrap_open() can say more. */
#define WIRE_MAX_DATA_KEYS 256
#define WIRE_WRAPPED_KEY_MAX 4096

typedef struct wire_data_keys_request {
        char *host;
        char **databases;
        size_t n_databases;
} wire_data_keys_request;

typedef struct wire_data_key {
        char *database;
        char *wrapped_key;
} wire_data_key;

typedef struct wire_data_keys_response {
        char *host;
        wire_data_key *keys;
        size_t n_keys;
} wire_data_keys_response;

/* The agent ↔ infrastream-luks-helper (one request per connection on /run/infrastream-luks.sock):
 * the helper holds CAP_SYS_ADMIN and the block devices, the agent holds neither.
 * Request: {"op": "inspect" | "unlock", "device": "/dev/vdb", "mountPoint": "/var/lib/infrastream/data",
 *           "keys": [{"database": "org/ou/env/project/db", "key": "<base64 of 32 bytes>"}, ...]}
 *   device and mountPoint: absolute, normalised paths (no "//", "/./", "/../", trailing '/');
 *   keys: only with "unlock", 1..WIRE_MAX_DATA_KEYS, sorted, distinct databases; each key exactly
 *   WIRE_LUKS_KEY_SIZE bytes once decoded. A key is never echoed in an error.
 * Response: {"deviceMapper": true, "content": "empty" | "luks" | "other", "what": "an ext4 filesystem"
 *            | null, "active": bool, "mounted": bool, "keyslots": ["org/ou/env/project/db", ...],
 *            "formatted": bool}
 *   the device as found after the request (unlock: after formatting, opening, mounting and adding
 *   keyslots); keyslots: the databases whose keyslot the header names, sorted; formatted: this
 *   request formatted the device. Or {"error": "..."} (wire_error_decode). */
#define WIRE_LUKS_KEY_SIZE 32

typedef enum wire_luks_op {
        WIRE_LUKS_INSPECT,
        WIRE_LUKS_UNLOCK,
} wire_luks_op;

typedef enum wire_luks_content {
        WIRE_LUKS_EMPTY,
        WIRE_LUKS_LUKS,
        WIRE_LUKS_OTHER,
} wire_luks_content;

typedef struct wire_luks_key {
        char *database;
        uint8_t key[WIRE_LUKS_KEY_SIZE];
} wire_luks_key;

typedef struct wire_luks_request {
        wire_luks_op op;
        char *device;
        char *mount_point;
        wire_luks_key *keys;
        size_t n_keys;
} wire_luks_request;

typedef struct wire_luks_response {
        bool device_mapper;
        wire_luks_content content;
        char *what;            /* NULL for null */
        bool active, mounted, formatted;
        char **keyslots;
        size_t n_keyslots;
} wire_luks_response;

void wire_ca_done(wire_ca *m);
void wire_facts_done(wire_facts *f);
void wire_enroll_request_done(wire_enroll_request *m);
void wire_enroll_response_done(wire_enroll_response *m);
void wire_push_response_done(wire_push_response *m);
void wire_report_done(wire_report *m);
void wire_data_keys_request_done(wire_data_keys_request *m);
void wire_data_keys_response_done(wire_data_keys_response *m);
/* Wipes the keys (explicit_bzero) before freeing. */
void wire_luks_request_done(wire_luks_request *m);
void wire_luks_response_done(wire_luks_response *m);

/* Encoders return a new json_object (or a string with _text). */
json_object *wire_ca_to_json(const wire_ca *m);
json_object *wire_enroll_request_to_json(const wire_enroll_request *m);
json_object *wire_enroll_response_to_json(const wire_enroll_response *m);
json_object *wire_push_response_to_json(const wire_push_response *m);
json_object *wire_data_keys_request_to_json(const wire_data_keys_request *m);
json_object *wire_data_keys_response_to_json(const wire_data_keys_response *m);
/* The request as text in a buffer of its own (the keys are in it: explicit_bzero and free it after
 * use; they never pass through json-c, so this buffer is the only copy made). */
char *wire_luks_request_text(const wire_luks_request *m);
json_object *wire_luks_response_to_json(const wire_luks_response *m);

/* Decoders: 0, or -EBADMSG / -E2BIG with *ret_error naming the field. */
int wire_ca_decode(const char *json, size_t size, wire_ca *ret, char **ret_error);
int wire_enroll_request_decode(const char *json, size_t size, wire_enroll_request *ret, char **ret_error);
int wire_enroll_response_decode(const char *json, size_t size, wire_enroll_response *ret, char **ret_error);
int wire_push_response_decode(const char *json, size_t size, wire_push_response *ret, char **ret_error);
int wire_report_decode(const char *json, size_t size, wire_report *ret, char **ret_error);
int wire_data_keys_request_decode(const char *json, size_t size, wire_data_keys_request *ret, char **ret_error);
int wire_data_keys_response_decode(const char *json, size_t size, wire_data_keys_response *ret, char **ret_error);
int wire_luks_request_decode(const char *json, size_t size, wire_luks_request *ret, char **ret_error);
int wire_luks_response_decode(const char *json, size_t size, wire_luks_response *ret, char **ret_error);
/* {"error": "..."} → the message, or NULL when the body is not one. */
char *wire_error_message(const char *json, size_t size);
int wire_error_decode(const char *json, size_t size, char **ret_message, char **ret_error);
