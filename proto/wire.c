/* The agent ↔ controller messages other than the document, and the agent ↔ LUKS2 helper ones:
 * enrollment tokens and their derivations, and each message's encoder and strict decoder (jsondec.c
 * does the JSON). */
#include <arpa/inet.h>
#include <assert.h>
#include <inttypes.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "jsondec.h"
#include "wire.h"
#include "x509.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free);

#define WIRE_MAX_CPUS 65536

static const char *const role_names[] = { "database", "application" };
static const char *const outcome_names[] = { "done", "failed", "unchanged" };
static const char *const luks_op_names[] = { "inspect", "unlock" };
static const char *const luks_content_names[] = { "empty", "luks", "other" };

#define LUKS_KEY_B64_LEN (4 * ((WIRE_LUKS_KEY_SIZE + 2) / 3))
#define LUKS_TEXT_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* ---- tokens -------------------------------------------------------------------------------- */

static bool is_base64url(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

bool wire_token_parse(const char *token, char id[WIRE_TOKEN_ID_LEN + 1], char secret[WIRE_TOKEN_SECRET_LEN + 1]) {
        if (!token || strlen(token) != WIRE_TOKEN_ID_LEN + 1 + WIRE_TOKEN_SECRET_LEN ||
            token[WIRE_TOKEN_ID_LEN] != '.')
                return false;
        for (size_t i = 0; i < WIRE_TOKEN_ID_LEN; i++)
                if (!((token[i] >= '0' && token[i] <= '9') || (token[i] >= 'a' && token[i] <= 'f')))
                        return false;
        for (size_t i = WIRE_TOKEN_ID_LEN + 1; token[i]; i++)
                if (!is_base64url(token[i]))
                        return false;
        if (id) {
                memcpy(id, token, WIRE_TOKEN_ID_LEN);
                id[WIRE_TOKEN_ID_LEN] = '\0';
        }
        if (secret) {
                memcpy(secret, token + WIRE_TOKEN_ID_LEN + 1, WIRE_TOKEN_SECRET_LEN);
                secret[WIRE_TOKEN_SECRET_LEN] = '\0';
        }
        return true;
}

/* SHA-256(label || '\0' || secret): separate labels keep the verifier the controller stores
 * from ever being usable as the CA binding key, and the other way round. */
static void labelled_sha256(const char *label, const char *secret, unsigned char ret[32]) {
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned int len = 0;

        /* SHA-256 in the default provider only fails on allocation failure. */
        if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
            EVP_DigestUpdate(ctx, label, strlen(label) + 1) != 1 ||
            EVP_DigestUpdate(ctx, secret, strlen(secret)) != 1 || EVP_DigestFinal_ex(ctx, ret, &len) != 1 ||
            len != 32)
                jsonenc_oom();
}

static void hex(const unsigned char *b, size_t n, char *ret) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                ret[2 * i] = digits[b[i] >> 4];
                ret[2 * i + 1] = digits[b[i] & 15];
        }
        ret[2 * n] = '\0';
}

void wire_token_verifier(const char *secret, char ret_hex[65]) {
        unsigned char md[32];

        labelled_sha256("infrastream-token", secret, md);
        hex(md, sizeof(md), ret_hex);
        explicit_bzero(md, sizeof(md));
}

void wire_token_binding_key(const char *secret, unsigned char ret[32]) {
        labelled_sha256("infrastream-ca-binding", secret, ret);
}

void wire_ca_binding(const unsigned char key[32], const char *ca_pem, char ret_hex[65]) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int len = 0;

        if (!HMAC(EVP_sha256(), key, 32, (const unsigned char *) ca_pem, strlen(ca_pem), mac, &len) || len != 32)
                jsonenc_oom();
        hex(mac, 32, ret_hex);
}

/* ---- value checks -------------------------------------------------------------------------- */

static bool is_ip_address(const char *s) {
        unsigned char buf[sizeof(struct in6_addr)];

        return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

int wire_endpoint_parse(const char *s, bool allow_port_zero, struct sockaddr_storage *ret, socklen_t *ret_len) {
        _cleanup_free_ char *addr = NULL;
        struct sockaddr_storage sa = {};
        const char *colon, *p;
        unsigned long port = 0;
        size_t n;

        if (!s)
                return -EINVAL;
        colon = strrchr(s, ':');
        if (!colon || colon == s || !colon[1] || (colon[1] == '0' && colon[2]))
                return -EINVAL;
        for (p = colon + 1; *p; p++) {
                if (*p < '0' || *p > '9' || port > 65535)
                        return -EINVAL;
                port = port * 10 + (unsigned long) (*p - '0');
        }
        if (port > 65535 || (port == 0 && !allow_port_zero))
                return -EINVAL;
        n = (size_t) (colon - s);
        if (s[0] == '[') {
                /* IPv6 only inside brackets, so the port cannot be mistaken for a group. */
                struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &sa;

                if (n < 3 || s[n - 1] != ']')
                        return -EINVAL;
                addr = xstrndup(s + 1, n - 2);
                if (inet_pton(AF_INET6, addr, &in6->sin6_addr) != 1)
                        return -EINVAL;
                in6->sin6_family = AF_INET6;
                in6->sin6_port = htons((uint16_t) port);
                *ret_len = sizeof(*in6);
        } else {
                struct sockaddr_in *in = (struct sockaddr_in *) &sa;

                addr = xstrndup(s, n);
                if (inet_pton(AF_INET, addr, &in->sin_addr) != 1)
                        return -EINVAL;
                in->sin_family = AF_INET;
                in->sin_port = htons((uint16_t) port);
                *ret_len = sizeof(*in);
        }
        *ret = sa;
        return 0;
}

bool wire_endpoint_valid(const char *s) {
        struct sockaddr_storage sa;
        socklen_t len;

        return wire_endpoint_parse(s, false, &sa, &len) >= 0;
}

/* A host name as enrolled: one lower-case DNS label. */
static bool is_host_label(const char *s) {
        if (!x509_dns_name_valid(s) || strchr(s, '.'))
                return false;
        for (; *s; s++)
                if (*s >= 'A' && *s <= 'Z')
                        return false;
        return true;
}

static int field_host(jsondec *d, json_object *o, const char *key, char **ret) {
        _cleanup_free_ char *e = NULL;
        int r;

        r = jsondec_field_string(d, o, key, JSONDEC_NAME, false, ret);
        if (r < 0 || is_host_label(*ret))
                return r;
        e = jsondec_echo(*ret);
        return jsondec_fail_at(d, key, "'%s' is not a host name (a DNS label: lower-case letters, digits and '-')",
                               e);
}

/* PEM of the given type: checked for shape here, parsed by whoever uses it (x509.c). */
static int field_pem(jsondec *d, json_object *o, const char *key, const char *type, const char *noun,
                     char **ret) {
        _cleanup_free_ char *begin = xasprintf("-----BEGIN %s-----", type);
        int r;

        r = jsondec_field_string(d, o, key, JSONDEC_PEM, false, ret);
        if (r < 0)
                return r;
        if (strncmp(*ret, begin, strlen(begin)) != 0 || !strstr(*ret, "-----END "))
                return jsondec_fail_at(d, key, "is not %s in PEM form", noun);
        return 0;
}

/* "org/ou/env/project/db": exactly five host-name labels joined by '/', the key the controller
 * keeps a database's data key under and the context it is wrapped for. */
static bool is_database_key(const char *s) {
        size_t n_labels = 0;

        for (const char *p = s;; p++) {
                const char *end = strchrnul(p, '/');
                char label[64];

                if (end == p || (size_t) (end - p) >= sizeof(label))
                        return false;
                memcpy(label, p, (size_t) (end - p));
                label[end - p] = '\0';
                if (!is_host_label(label) || ++n_labels > 5)
                        return false;
                if (!*end)
                        return n_labels == 5;
                p = end;
        }
}

static int fail_database_key(jsondec *d, const char *key) {
        _cleanup_free_ char *e = jsondec_echo(key);

        return jsondec_fail(d, "'%s' is not a database key (five DNS labels joined by '/': org/ou/env/project/db)",
                            e);
}

/* Database keys strictly increasing in byte order: one entry per database, in one order. The
 * failure is at the current path, the later of the two. */
static int check_database_order(jsondec *d, const char *prev, const char *cur) {
        _cleanup_free_ char *e = NULL;
        int cmp = strcmp(prev, cur);

        if (cmp < 0)
                return 0;
        e = jsondec_echo(cur);
        if (cmp == 0)
                return jsondec_fail(d, "duplicate database '%s'", e);
        return jsondec_fail(d, "'%s' is out of order: database keys must be sorted", e);
}

/* Standard base64 with its padding (RFC 4648 section 4): the form keywrap_seal() writes. Only
 * keywrap_open() says whether it is a wrapped key. */
static bool is_padded_base64(const char *s) {
        size_t n = strlen(s), pad = 0;

        if (n == 0 || n % 4 != 0)
                return false;
        while (pad < 2 && s[n - 1 - pad] == '=')
                pad++;
        for (size_t i = 0; i < n - pad; i++)
                if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
                      s[i] == '+' || s[i] == '/'))
                        return false;
        return true;
}

/* An absolute path in its one spelling: '/', then components that are neither empty nor "." nor
 * "..", no trailing '/'. The helper opens and mounts exactly what it names, so "/dev/../dev/vdb"
 * and "/dev/vdb/" are refused rather than resolved. */
static bool is_normalised_path(const char *s) {
        if (s[0] != '/')
                return false;
        for (const char *p = s + 1;; p++) {
                const char *end = strchrnul(p, '/');
                size_t n = (size_t) (end - p);

                if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                if (!*end)
                        return true;
                p = end;
        }
}

static int field_path(jsondec *d, json_object *o, const char *key, char **ret) {
        _cleanup_free_ char *e = NULL;
        int r;

        r = jsondec_field_string(d, o, key, JSONDEC_TEXT, false, ret);
        if (r < 0 || is_normalised_path(*ret))
                return r;
        if (streq(*ret, "/"))
                return jsondec_fail_at(d, key, "must not be '/'");
        e = jsondec_echo(*ret);
        return jsondec_fail_at(d, key, "'%s' is not an absolute, normalised path (no empty, '.' or '..' components, no trailing '/')",
                               e);
}

/* A LUKS key: WIRE_LUKS_KEY_SIZE bytes as padded standard base64 in its one spelling (the unused
 * low bits zero), so a key has exactly one text. s is n bytes without NUL (the lexer saw to it). */
static bool luks_key_decode(const char *s, size_t n, uint8_t ret[WIRE_LUKS_KEY_SIZE]) {
        unsigned char buf[LUKS_KEY_B64_LEN / 4 * 3];
        char again[LUKS_KEY_B64_LEN + 1];
        bool ok;

        /* Re-encoding refuses the other spellings: a second '=', non-zero unused bits. */
        if (n != LUKS_KEY_B64_LEN || !is_padded_base64(s))
                return false;
        ok = EVP_DecodeBlock(buf, (const unsigned char *) s, (int) n) == (int) sizeof(buf) &&
             EVP_EncodeBlock((unsigned char *) again, buf, WIRE_LUKS_KEY_SIZE) == (int) n &&
             CRYPTO_memcmp(again, s, n) == 0;
        if (ok)
                memcpy(ret, buf, WIRE_LUKS_KEY_SIZE);
        explicit_bzero(buf, sizeof(buf));
        explicit_bzero(again, sizeof(again));
        return ok;
}

/* ---- lifetimes ----------------------------------------------------------------------------- */

void wire_ca_done(wire_ca *m) {
        free(m->ca);
        free(m->binding);
        *m = (wire_ca) {};
}

void wire_facts_done(wire_facts *f) {
        free(f->name);
        strv_free_n(f->addresses, f->n_addresses);
        free(f->endpoint);
        *f = (wire_facts) {};
}

void wire_enroll_request_done(wire_enroll_request *m) {
        erase_and_free(m->token);
        free(m->csr);
        wire_facts_done(&m->facts);
        *m = (wire_enroll_request) {};
}

void wire_enroll_response_done(wire_enroll_response *m) {
        free(m->host);
        free(m->role);
        free(m->certificate);
        free(m->ca);
        free(m->signing_key);
        free(m->controller);
        *m = (wire_enroll_response) {};
}

void wire_push_response_done(wire_push_response *m) {
        free(m->host);
        free(m->outcome);
        json_object_put(m->results);
        for (size_t i = 0; i < m->n_csrs; i++) {
                free(m->csrs[i].database);
                free(m->csrs[i].csr);
        }
        free(m->csrs);
        wire_report_done(&m->status);
        *m = (wire_push_response) {};
}

void wire_report_done(wire_report *m) {
        free(m->host);
        free(m->commit);
        free(m->last_error);
        json_object_put(m->status);
        *m = (wire_report) {};
}

void wire_data_keys_request_done(wire_data_keys_request *m) {
        free(m->host);
        strv_free_n(m->databases, m->n_databases);
        *m = (wire_data_keys_request) {};
}

void wire_data_keys_response_done(wire_data_keys_response *m) {
        free(m->host);
        for (size_t i = 0; i < m->n_keys; i++) {
                free(m->keys[i].database);
                free(m->keys[i].wrapped_key);
        }
        free(m->keys);
        *m = (wire_data_keys_response) {};
}

void wire_luks_request_done(wire_luks_request *m) {
        free(m->device);
        free(m->mount_point);
        for (size_t i = 0; i < m->n_keys; i++)
                free(m->keys[i].database);
        if (m->keys)
                explicit_bzero(m->keys, m->n_keys * sizeof(*m->keys));
        free(m->keys);
        *m = (wire_luks_request) {};
}

void wire_luks_response_done(wire_luks_response *m) {
        free(m->what);
        strv_free_n(m->keyslots, m->n_keyslots);
        *m = (wire_luks_response) {};
}

/* ---- encoders ------------------------------------------------------------------------------ */

json_object *wire_ca_to_json(const wire_ca *m) {
        json_object *o = jsonenc_checked(json_object_new_object());

        jsonenc_add(o, "ca", jsonenc_string(m->ca));
        jsonenc_add(o, "binding", jsonenc_string(m->binding));
        return o;
}

json_object *wire_enroll_request_to_json(const wire_enroll_request *m) {
        json_object *o = jsonenc_checked(json_object_new_object());
        json_object *f = jsonenc_checked(json_object_new_object());

        jsonenc_add(o, "token", jsonenc_string(m->token));
        jsonenc_add(o, "csr", jsonenc_string(m->csr));
        jsonenc_add(f, "name", jsonenc_string(m->facts.name));
        jsonenc_add(f, "addresses", jsonenc_strv(m->facts.addresses, m->facts.n_addresses));
        jsonenc_add(f, "cpus", json_object_new_int(m->facts.cpus));
        jsonenc_add(f, "memoryBytes", json_object_new_uint64(m->facts.memory_bytes));
        jsonenc_add(f, "endpoint", jsonenc_string(m->facts.endpoint));
        jsonenc_add(o, "facts", f);
        return o;
}

json_object *wire_enroll_response_to_json(const wire_enroll_response *m) {
        json_object *o = jsonenc_checked(json_object_new_object());

        jsonenc_add(o, "host", jsonenc_string(m->host));
        jsonenc_add(o, "role", jsonenc_string(m->role));
        jsonenc_add(o, "certificate", jsonenc_string(m->certificate));
        jsonenc_add(o, "ca", jsonenc_string(m->ca));
        jsonenc_add(o, "signingKey", jsonenc_string(m->signing_key));
        jsonenc_add(o, "controller", jsonenc_string(m->controller));
        return o;
}

json_object *wire_push_response_to_json(const wire_push_response *m) {
        json_object *o = jsonenc_checked(json_object_new_object());
        json_object *csrs = jsonenc_checked(json_object_new_array_ext((int) m->n_csrs));

        jsonenc_add(o, "host", jsonenc_string(m->host));
        jsonenc_add(o, "revision", json_object_new_uint64(m->revision));
        jsonenc_add(o, "outcome", jsonenc_string(m->outcome));
        jsonenc_add(o, "results", m->results ? json_object_get(m->results) : json_object_new_array());
        for (size_t i = 0; i < m->n_csrs; i++) {
                json_object *c = jsonenc_checked(json_object_new_object());

                jsonenc_add(c, "database", jsonenc_string(m->csrs[i].database));
                jsonenc_add(c, "csr", jsonenc_string(m->csrs[i].csr));
                jsonenc_append(csrs, c);
        }
        jsonenc_add(o, "csrs", csrs);
        if (m->status.status)
                jsonenc_add(o, "status", json_object_get(m->status.status));
        return o;
}

json_object *wire_data_keys_request_to_json(const wire_data_keys_request *m) {
        json_object *o = jsonenc_checked(json_object_new_object());

        jsonenc_add(o, "host", jsonenc_string(m->host));
        jsonenc_add(o, "databases", jsonenc_strv(m->databases, m->n_databases));
        return o;
}

json_object *wire_data_keys_response_to_json(const wire_data_keys_response *m) {
        json_object *o = jsonenc_checked(json_object_new_object());
        json_object *keys = jsonenc_checked(json_object_new_array_ext((int) m->n_keys));

        jsonenc_add(o, "host", jsonenc_string(m->host));
        for (size_t i = 0; i < m->n_keys; i++) {
                json_object *k = jsonenc_checked(json_object_new_object());

                jsonenc_add(k, "database", jsonenc_string(m->keys[i].database));
                jsonenc_add(k, "wrappedKey", jsonenc_string(m->keys[i].wrapped_key));
                jsonenc_append(keys, k);
        }
        jsonenc_add(o, "keys", keys);
        return o;
}

static const char *luks_text(json_object *o, size_t *ret_len) {
        const char *s = json_object_to_json_string_length(o, LUKS_TEXT_FLAGS, ret_len);

        if (!s)
                jsonenc_oom();
        return s;
}

/* The keys never enter json-c: its print buffers grow by realloc() and are freed unwiped, so a
 * key serialised there would stay behind in freed memory. json-c writes and escapes the rest (op,
 * paths, database keys); each key goes from its bytes to base64 straight into the one buffer
 * returned, sized beforehand. That buffer is the only copy of the keys made here: the caller's to
 * wipe. */
char *wire_luks_request_text(const wire_luks_request *m) {
        static const char keys_start[] = ",\"keys\":[", entry_start[] = "{\"database\":", entry_key[] = ",\"key\":\"",
                          entry_end[] = "\"}", end[] = "]}";
        _cleanup_(json_object_putp) json_object *head = jsonenc_checked(json_object_new_object());
        _cleanup_(json_object_putp) json_object *databases = NULL;
        const char *h, *db;
        size_t head_len, db_len, size;
        char *text, *p;

        jsonenc_add(head, "op", jsonenc_string(luks_op_names[m->op]));
        jsonenc_add(head, "device", jsonenc_string(m->device));
        jsonenc_add(head, "mountPoint", jsonenc_string(m->mount_point));
        h = luks_text(head, &head_len);
        if (m->op != WIRE_LUKS_UNLOCK)
                return xstrdup(h);

        databases = jsonenc_checked(json_object_new_array_ext((int) m->n_keys));
        for (size_t i = 0; i < m->n_keys; i++)
                jsonenc_append(databases, jsonenc_string(m->keys[i].database));
        /* The head without its '}', then the keys. */
        size = head_len - 1 + strlen(keys_start) + strlen(end) + 1;
        for (size_t i = 0; i < m->n_keys; i++) {
                (void) luks_text(json_object_array_get_idx(databases, i), &db_len);
                size += (i > 0) + strlen(entry_start) + db_len + strlen(entry_key) + LUKS_KEY_B64_LEN + strlen(entry_end);
        }
        text = p = xmalloc(size);
        p = mempcpy(p, h, head_len - 1);
        p = stpcpy(p, keys_start);
        for (size_t i = 0; i < m->n_keys; i++) {
                db = luks_text(json_object_array_get_idx(databases, i), &db_len);
                if (i > 0)
                        *p++ = ',';
                p = stpcpy(p, entry_start);
                p = mempcpy(p, db, db_len);
                p = stpcpy(p, entry_key);
                /* Writes its NUL after the 44 characters, where entry_end goes next. */
                p += EVP_EncodeBlock((unsigned char *) p, m->keys[i].key, WIRE_LUKS_KEY_SIZE);
                p = stpcpy(p, entry_end);
        }
        p = stpcpy(p, end);
        assert((size_t) (p - text) + 1 == size);
        return text;
}

json_object *wire_luks_response_to_json(const wire_luks_response *m) {
        json_object *o = jsonenc_checked(json_object_new_object());

        jsonenc_add(o, "deviceMapper", json_object_new_boolean(m->device_mapper));
        jsonenc_add(o, "content", jsonenc_string(luks_content_names[m->content]));
        if (m->what)
                jsonenc_add(o, "what", jsonenc_string(m->what));
        else if (json_object_object_add(o, "what", NULL) < 0)
                jsonenc_oom();
        jsonenc_add(o, "active", json_object_new_boolean(m->active));
        jsonenc_add(o, "mounted", json_object_new_boolean(m->mounted));
        jsonenc_add(o, "keyslots", jsonenc_strv(m->keyslots, m->n_keyslots));
        jsonenc_add(o, "formatted", json_object_new_boolean(m->formatted));
        return o;
}

/* ---- decoders ------------------------------------------------------------------------------ */

typedef int (*message_decoder)(jsondec *d, json_object *root, void *ret);

/* Parse, decode into *ret (zeroed first), check for duplicate keys; on failure free what was
 * decoded with done() and hand the message out. */
static int decode_message(const char *json, size_t size, message_decoder decode, void (*done)(void *),
                          void *ret, char **ret_error) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        jsondec d = { .what = "message" };
        int r;

        r = jsondec_parse(&d, json, size, WIRE_MAX_SIZE, &root);
        if (r >= 0)
                r = decode(&d, root, ret);
        if (r >= 0)
                r = jsondec_check_duplicates(&d, root);
        if (r < 0) {
                done(ret);
                if (ret_error)
                        *ret_error = TAKE_PTR(d.error);
        }
        jsondec_done(&d);
        return r;
}

/* done_<name>() and wire_<name>_decode() for a message whose decode_<name>() fills a wire_<name>:
 * the result reaches the caller only when all of it decoded. */
#define DEFINE_WIRE_DECODER(name)                                                                      \
        static void done_##name(void *m) {                                                             \
                wire_##name##_done(m);                                                                 \
        }                                                                                              \
        int wire_##name##_decode(const char *json, size_t size, wire_##name *ret, char **ret_error) {   \
                wire_##name m = {};                                                                    \
                int r = decode_message(json, size, decode_##name, done_##name, &m, ret_error);         \
                                                                                                       \
                if (r >= 0)                                                                            \
                        *ret = m;                                                                      \
                return r;                                                                              \
        }

static int decode_ca(jsondec *d, json_object *o, void *ret) {
        static const char *const known[] = { "ca", "binding" };
        wire_ca *m = ret;
        int r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = field_pem(d, o, "ca", "CERTIFICATE", "a certificate", &m->ca)) < 0 ||
            (r = jsondec_field_string(d, o, "binding", JSONDEC_OPTIONAL_TEXT, false, &m->binding)) < 0)
                return r;
        if (m->binding[0] && !is_lower_hex(m->binding, 64))
                return jsondec_fail_at(d, "binding", "must be empty or 64 lower-case hexadecimal digits");
        return 0;
}

DEFINE_WIRE_DECODER(ca)

static int decode_facts(jsondec *d, json_object *o, void *ret) {
        static const char *const known[] = { "name", "addresses", "cpus", "memoryBytes", "endpoint" };
        _cleanup_free_ char *e = NULL;
        wire_facts *f = ret;
        int r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = field_host(d, o, "name", &f->name)) < 0 ||
            (r = jsondec_field_strv(d, o, "addresses", JSONDEC_TEXT, &f->addresses, &f->n_addresses)) < 0)
                return r;
        if (f->n_addresses < 1 || f->n_addresses > WIRE_MAX_ADDRESSES)
                return jsondec_fail_at(d, "addresses", "must list between 1 and %d addresses", WIRE_MAX_ADDRESSES);
        for (size_t i = 0; i < f->n_addresses; i++)
                if (!is_ip_address(f->addresses[i])) {
                        size_t mark = jsondec_push(d, "addresses"), m2 = jsondec_push_index(d, i);

                        e = jsondec_echo(f->addresses[i]);
                        r = jsondec_fail(d, "'%s' is not an IPv4 or IPv6 address", e);
                        jsondec_pop(d, m2);
                        jsondec_pop(d, mark);
                        return r;
                }
        if ((r = jsondec_field_int(d, o, "cpus", 1, WIRE_MAX_CPUS, &f->cpus)) < 0 ||
            (r = jsondec_field_uint64(d, o, "memoryBytes", 1, INT64_MAX, &f->memory_bytes)) < 0 ||
            (r = jsondec_field_string(d, o, "endpoint", JSONDEC_TEXT, false, &f->endpoint)) < 0)
                return r;
        if (!wire_endpoint_valid(f->endpoint)) {
                e = jsondec_echo(f->endpoint);
                return jsondec_fail_at(d, "endpoint", "'%s' is not ADDRESS:PORT (IPv4 or [IPv6] address, port 1-65535)",
                                       e);
        }
        return 0;
}

static int decode_enroll_request(jsondec *d, json_object *o, void *ret) {
        static const char *const known[] = { "token", "csr", "facts" };
        wire_enroll_request *m = ret;
        int r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = jsondec_field_string(d, o, "token", JSONDEC_TEXT, false, &m->token)) < 0)
                return r;
        /* Never echoed: a mistyped token is still mostly a secret. */
        if (!wire_token_parse(m->token, NULL, NULL))
                return jsondec_fail_at(d, "token", "is not an enrollment token (ID.SECRET: 8 hexadecimal digits, '.', 32 base64url characters)");
        if ((r = field_pem(d, o, "csr", "CERTIFICATE REQUEST", "a certificate request", &m->csr)) < 0 ||
            (r = jsondec_field_object(d, o, "facts", false, decode_facts, &m->facts)) < 0)
                return r;
        return 0;
}

DEFINE_WIRE_DECODER(enroll_request)

static int decode_enroll_response(jsondec *d, json_object *o, void *ret) {
        static const char *const known[] = { "host", "role", "certificate", "ca", "signingKey", "controller" };
        wire_enroll_response *m = ret;
        _cleanup_free_ char *e = NULL;
        int role, r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = field_host(d, o, "host", &m->host)) < 0 ||
            (r = jsondec_field_choice(d, o, "role", role_names, ELEMENTSOF(role_names), &role)) < 0 ||
            (r = field_pem(d, o, "certificate", "CERTIFICATE", "a certificate", &m->certificate)) < 0 ||
            (r = field_pem(d, o, "ca", "CERTIFICATE", "a certificate", &m->ca)) < 0 ||
            (r = field_pem(d, o, "signingKey", "PUBLIC KEY", "a public key", &m->signing_key)) < 0 ||
            (r = jsondec_field_string(d, o, "controller", JSONDEC_HOSTNAME, false, &m->controller)) < 0)
                return r;
        m->role = xstrdup(role_names[role]);
        if (!x509_dns_name_valid(m->controller)) {
                e = jsondec_echo(m->controller);
                return jsondec_fail_at(d, "controller", "'%s' is not a DNS name", e);
        }
        return 0;
}

DEFINE_WIRE_DECODER(enroll_response)

static int decode_csr(jsondec *d, json_object *o, void *elem) {
        static const char *const known[] = { "database", "csr" };
        wire_csr *c = elem;
        int r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = jsondec_field_string(d, o, "database", JSONDEC_NAME, false, &c->database)) < 0 ||
            (r = field_pem(d, o, "csr", "CERTIFICATE REQUEST", "a certificate request", &c->csr)) < 0)
                return r;
        return 0;
}

static int decode_report(jsondec *d, json_object *o, void *ret);

static int decode_push_response(jsondec *d, json_object *o, void *ret) {
        static const char *const known[] = { "host", "revision", "outcome", "results", "csrs", "status" };
        wire_push_response *m = ret;
        json_object *v;
        int outcome, r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = field_host(d, o, "host", &m->host)) < 0 ||
            (r = jsondec_field_uint64(d, o, "revision", 0, INT64_MAX, &m->revision)) < 0 ||
            (r = jsondec_field_choice(d, o, "outcome", outcome_names, ELEMENTSOF(outcome_names), &outcome)) < 0 ||
            (r = jsondec_member(d, o, "results", false, &v)) < 0)
                return r;
        m->outcome = xstrdup(outcome_names[outcome]);
        if (json_object_get_type(v) != json_type_array)
                return jsondec_fail_at(d, "results", "expected an array");
        m->results = json_object_get(v);
        /* Sorted by database name: one request per database, in one order. */
        if ((r = jsondec_field_objects(d, o, "csrs", sizeof(wire_csr), offsetof(wire_csr, database), decode_csr,
                                       (void **) &m->csrs, &m->n_csrs)) < 0)
                return r;
        r = jsondec_field_object(d, o, "status", true, decode_report, &m->status);
        return r < 0 ? r : 0;
}

DEFINE_WIRE_DECODER(push_response)

static int decode_report(jsondec *d, json_object *o, void *ret) {
        wire_report *m = ret;
        int r;

        /* Only the fields the controller acts on are checked; the rest is the agent's status,
         * kept whole for `hosts` and `get`. */
        if ((r = jsondec_expect_type(d, o, json_type_object)) < 0 ||
            (r = field_host(d, o, "host", &m->host)) < 0 ||
            (r = jsondec_field_uint64(d, o, "revision", 0, INT64_MAX, &m->revision)) < 0 ||
            (r = jsondec_field_nullable_string(d, o, "commit", JSONDEC_OPTIONAL_TEXT, &m->commit)) < 0 ||
            (r = jsondec_field_bool(d, o, "failed", &m->failed)) < 0 ||
            (r = jsondec_field_nullable_string(d, o, "lastError", JSONDEC_MESSAGE, &m->last_error)) < 0)
                return r;
        m->status = json_object_get(o);
        return 0;
}

DEFINE_WIRE_DECODER(report)

/* key: a list of database keys, each well-formed, strictly increasing (sorted, distinct). */
static int check_database_keys(jsondec *d, const char *key, char *const *l, size_t n) {
        size_t mark = jsondec_push(d, key);
        int r = 0;

        for (size_t i = 0; i < n && r >= 0; i++) {
                size_t at = jsondec_push_index(d, i);

                if (!is_database_key(l[i]))
                        r = fail_database_key(d, l[i]);
                else if (i > 0)
                        r = check_database_order(d, l[i - 1], l[i]);
                jsondec_pop(d, at);
        }
        jsondec_pop(d, mark);
        return r;
}

static int decode_data_keys_request(jsondec *d, json_object *o, void *ret) {
        static const char *const known[] = { "host", "databases" };
        wire_data_keys_request *m = ret;
        int r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = field_host(d, o, "host", &m->host)) < 0 ||
            (r = jsondec_field_strv(d, o, "databases", JSONDEC_TEXT, &m->databases, &m->n_databases)) < 0)
                return r;
        if (m->n_databases < 1 || m->n_databases > WIRE_MAX_DATA_KEYS)
                return jsondec_fail_at(d, "databases", "must list between 1 and %d databases", WIRE_MAX_DATA_KEYS);
        return check_database_keys(d, "databases", m->databases, m->n_databases);
}

DEFINE_WIRE_DECODER(data_keys_request)

/* "keys": n elements of size bytes, each with a database key (a char * at name_offset), sorted and
 * distinct. */
static int check_keys_order(jsondec *d, const void *elems, size_t n, size_t size, size_t name_offset) {
        size_t mark = jsondec_push(d, "keys");
        int r = 0;

        for (size_t i = 1; i < n && r >= 0; i++) {
                size_t at = jsondec_push_index(d, i), field = jsondec_push(d, "database");
                const char *prev = *(char *const *) ((const char *) elems + (i - 1) * size + name_offset),
                           *cur = *(char *const *) ((const char *) elems + i * size + name_offset);

                r = check_database_order(d, prev, cur);
                jsondec_pop(d, field);
                jsondec_pop(d, at);
        }
        jsondec_pop(d, mark);
        return r;
}

/* A required string member that is a database key. */
static int field_database_key(jsondec *d, json_object *o, const char *key, char **ret) {
        size_t mark;
        int r = jsondec_field_string(d, o, key, JSONDEC_TEXT, false, ret);

        if (r < 0 || is_database_key(*ret))
                return r;
        mark = jsondec_push(d, key);
        r = fail_database_key(d, *ret);
        jsondec_pop(d, mark);
        return r;
}

static int decode_data_key(jsondec *d, json_object *o, void *elem) {
        static const char *const known[] = { "database", "wrappedKey" };
        wire_data_key *k = elem;
        int r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = field_database_key(d, o, "database", &k->database)) < 0)
                return r;
        /* Never echoed: what a wrapped key holds is for keywrap_open() alone to read. */
        if ((r = jsondec_field_string(d, o, "wrappedKey", JSONDEC_PEM, false, &k->wrapped_key)) < 0)
                return r;
        if (strlen(k->wrapped_key) > WIRE_WRAPPED_KEY_MAX)
                return jsondec_fail_at(d, "wrappedKey", "longer than %d bytes", WIRE_WRAPPED_KEY_MAX);
        if (!is_padded_base64(k->wrapped_key))
                return jsondec_fail_at(d, "wrappedKey", "is not base64 (standard alphabet, padded, one line)");
        return 0;
}

static int decode_data_keys_response(jsondec *d, json_object *o, void *ret) {
        static const char *const known[] = { "host", "keys" };
        wire_data_keys_response *m = ret;
        int r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = field_host(d, o, "host", &m->host)) < 0 ||
            (r = jsondec_field_objects(d, o, "keys", sizeof(wire_data_key), -1, decode_data_key, (void **) &m->keys,
                                       &m->n_keys)) < 0)
                return r;
        if (m->n_keys > WIRE_MAX_DATA_KEYS)
                return jsondec_fail_at(d, "keys", "must list at most %d keys", WIRE_MAX_DATA_KEYS);
        /* The request's order, which is sorted. */
        return check_keys_order(d, m->keys, m->n_keys, sizeof(wire_data_key), offsetof(wire_data_key, database));
}

DEFINE_WIRE_DECODER(data_keys_response)

static int decode_luks_key(jsondec *d, json_object *o, void *elem) {
        static const char *const known[] = { "database", "key" };
        wire_luks_key *k = elem;
        json_object *v;
        size_t mark;
        int r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = field_database_key(d, o, "database", &k->database)) < 0)
                return r;
        /* Read in place, not copied out; never echoed, not even its length. */
        if ((r = jsondec_member(d, o, "key", false, &v)) < 0)
                return r;
        mark = jsondec_push(d, "key");
        r = jsondec_expect_type(d, v, json_type_string);
        if (r >= 0 && !luks_key_decode(json_object_get_string(v), (size_t) json_object_get_string_len(v), k->key))
                r = jsondec_fail(d, "is not base64 of %d bytes (standard alphabet, padded)", WIRE_LUKS_KEY_SIZE);
        jsondec_pop(d, mark);
        return r;
}

static int decode_luks_request_fields(jsondec *d, json_object *o, wire_luks_request *m) {
        static const char *const known[] = { "op", "device", "mountPoint", "keys" };
        json_object *v;
        int op, r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = jsondec_field_choice(d, o, "op", luks_op_names, ELEMENTSOF(luks_op_names), &op)) < 0 ||
            (r = field_path(d, o, "device", &m->device)) < 0 ||
            (r = field_path(d, o, "mountPoint", &m->mount_point)) < 0)
                return r;
        m->op = (wire_luks_op) op;
        if (m->op != WIRE_LUKS_UNLOCK) {
                if (json_object_object_get_ex(o, "keys", &v))
                        return jsondec_fail_at(d, "keys", "only an unlock request carries keys");
                return 0;
        }
        if ((r = jsondec_field_objects(d, o, "keys", sizeof(wire_luks_key), -1, decode_luks_key, (void **) &m->keys,
                                       &m->n_keys)) < 0)
                return r;
        if (m->n_keys < 1 || m->n_keys > WIRE_MAX_DATA_KEYS)
                return jsondec_fail_at(d, "keys", "must list between 1 and %d keys", WIRE_MAX_DATA_KEYS);
        return check_keys_order(d, m->keys, m->n_keys, sizeof(wire_luks_key), offsetof(wire_luks_key, database));
}

/* json-c's copies of the keys in the parsed tree are wiped here, decoded or not, as the tree is
 * freed without. Not wiped, as not ours: the text the caller passed, the tokener's scratch buffer
 * (jsondec_parse()), and the first of two members named "key" in one object, which json-c drops
 * while parsing. */
static int decode_luks_request(jsondec *d, json_object *o, void *ret) {
        int r = decode_luks_request_fields(d, o, ret);
        json_object *keys, *key;

        if (json_object_object_get_ex(o, "keys", &keys) && json_object_get_type(keys) == json_type_array)
                for (size_t i = 0; i < json_object_array_length(keys); i++)
                        if (json_object_object_get_ex(json_object_array_get_idx(keys, i), "key", &key) &&
                            json_object_get_type(key) == json_type_string)
                                explicit_bzero((char *) json_object_get_string(key),
                                               (size_t) json_object_get_string_len(key));
        return r;
}

DEFINE_WIRE_DECODER(luks_request)

static int decode_luks_response(jsondec *d, json_object *o, void *ret) {
        static const char *const known[] = { "deviceMapper", "content", "what", "active", "mounted", "keyslots",
                                             "formatted" };
        wire_luks_response *m = ret;
        int content, r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = jsondec_field_bool(d, o, "deviceMapper", &m->device_mapper)) < 0 ||
            (r = jsondec_field_choice(d, o, "content", luks_content_names, ELEMENTSOF(luks_content_names),
                                      &content)) < 0 ||
            (r = jsondec_field_nullable_string(d, o, "what", JSONDEC_TEXT, &m->what)) < 0 ||
            (r = jsondec_field_bool(d, o, "active", &m->active)) < 0 ||
            (r = jsondec_field_bool(d, o, "mounted", &m->mounted)) < 0 ||
            (r = jsondec_field_strv(d, o, "keyslots", JSONDEC_TEXT, &m->keyslots, &m->n_keyslots)) < 0 ||
            (r = jsondec_field_bool(d, o, "formatted", &m->formatted)) < 0)
                return r;
        m->content = (wire_luks_content) content;
        if (m->n_keyslots > WIRE_MAX_DATA_KEYS)
                return jsondec_fail_at(d, "keyslots", "must list at most %d databases", WIRE_MAX_DATA_KEYS);
        return check_database_keys(d, "keyslots", m->keyslots, m->n_keyslots);
}

DEFINE_WIRE_DECODER(luks_response)

static int decode_error(jsondec *d, json_object *o, void *ret) {
        static const char *const known[] = { "error" };
        int r;

        if ((r = jsondec_check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = jsondec_field_string(d, o, "error", JSONDEC_MESSAGE, false, ret)) < 0)
                return r;
        return 0;
}

static void done_error(void *m) {
        char **s = m;

        free(*s);
        *s = NULL;
}

int wire_error_decode(const char *json, size_t size, char **ret_message, char **ret_error) {
        char *msg = NULL;
        int r = decode_message(json, size, decode_error, done_error, &msg, ret_error);

        if (r >= 0)
                *ret_message = msg;
        return r;
}

char *wire_error_message(const char *json, size_t size) {
        char *msg = NULL;

        if (!json || wire_error_decode(json, size, &msg, NULL) < 0)
                return NULL;
        return msg;
}
