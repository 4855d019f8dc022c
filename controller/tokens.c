/* Enrollment tokens: random id and secret, the secret kept only as its verifier, and the checks
 * a presented token goes through before anything is issued for it. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "ca.h"
#include "tokens.h"
#include "wire.h"
#include "x509.h"

static void set_error(char **ret_error, char *msg) {
        if (ret_error)
                *ret_error = msg;
        else
                free(msg);
}

int tokens_parse_ttl(const char *s, int64_t *ret, char **ret_error) {
        int64_t v;

        if (ca_parse_lifetime(s, &v) < 0 || v > TOKENS_TTL_MAX) {
                set_error(ret_error, xasprintf("--ttl must be a number followed by s, m, h or d, between 1s and %dd; "
                                               "not '%.64s'",
                                               TOKENS_TTL_MAX / 86400, s));
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

int tokens_check_role(const char *role, char **ret_error) {
        if (streq(role, "database") || streq(role, "application"))
                return 0;
        set_error(ret_error, xasprintf("'%.64s' is not a role; expected 'database' or 'application'", role));
        return -EINVAL;
}

static bool is_lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool label_key_valid(const char *s, size_t n) {
        if (n == 0 || n > TOKENS_LABEL_MAX_LEN || !is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_lower_alnum(s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
                        return false;
        return true;
}

static bool label_value_valid(const char *s, size_t n) {
        if (n == 0 || n > TOKENS_LABEL_MAX_LEN)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_lower_alnum(s[i]) && !(s[i] >= 'A' && s[i] <= 'Z') && s[i] != '-' && s[i] != '_' &&
                    s[i] != '.')
                        return false;
        return true;
}

static bool dns_label_valid(const char *s, size_t n) {
        if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_lower_alnum(s[i]) && s[i] != '-')
                        return false;
        return true;
}

int tokens_parse_labels(const char *s, char **ret, char **ret_error) {
        _cleanup_free_ char *copy = xstrdup(s);
        const char *keys[TOKENS_LABELS_MAX];
        size_t n = 0;

        /* Printed back in messages: bounded, and only what passed the character checks. */
        for (char *item = *copy ? copy : NULL, *next; item; item = next) {
                char *eq;
                size_t klen;

                next = strchr(item, ',');
                if (next)
                        *next++ = '\0';
                eq = strchr(item, '=');
                if (!eq) {
                        set_error(ret_error, xasprintf("label %zu: expected KEY=VALUE", n + 1));
                        return -EINVAL;
                }
                *eq = '\0';
                klen = strlen(item);
                if (!label_key_valid(item, klen)) {
                        set_error(ret_error, xasprintf("label %zu: the key must be 1-%d lower-case letters, digits, "
                                                       "'-', '_' or '.', starting and ending with a letter or digit",
                                                       n + 1, TOKENS_LABEL_MAX_LEN));
                        return -EINVAL;
                }
                if (!label_value_valid(eq + 1, strlen(eq + 1))) {
                        set_error(ret_error, xasprintf("label '%s': the value must be 1-%d letters, digits, '-', '_' "
                                                       "or '.'",
                                                       item, TOKENS_LABEL_MAX_LEN));
                        return -EINVAL;
                }
                if (streq(item, "environment") && !dns_label_valid(eq + 1, strlen(eq + 1))) {
                        set_error(ret_error, xasprintf("label 'environment': '%s' must be a lower-case DNS label "
                                                       "(placement matches it against the manifests' "
                                                       "metadata.environment)",
                                                       eq + 1));
                        return -EINVAL;
                }
                for (size_t i = 0; i < n; i++)
                        if (streq(keys[i], item)) {
                                set_error(ret_error, xasprintf("label '%s' is given twice", item));
                                return -EINVAL;
                        }
                if (n == TOKENS_LABELS_MAX) {
                        set_error(ret_error, xasprintf("at most %d labels", TOKENS_LABELS_MAX));
                        return -EINVAL;
                }
                keys[n++] = item; /* the key alone: '=' was cut */
        }
        /* Every item was checked; the input had no spaces or empty items to drop, so it is its
         * own normal form. */
        *ret = xstrdup(s);
        return 0;
}

void tokens_split_labels(const char *s, char ***ret_keys, char ***ret_values, size_t *ret_n) {
        char **k = NULL, **v = NULL;
        size_t n = 0;

        for (const char *p = s; p && *p;) {
                const char *end = strchrnul(p, ','), *eq = memchr(p, '=', (size_t) (end - p));

                if (eq) {
                        k = xrealloc(k, (n + 1) * sizeof(char *));
                        v = xrealloc(v, (n + 1) * sizeof(char *));
                        k[n] = xstrndup(p, (size_t) (eq - p));
                        v[n++] = xstrndup(eq + 1, (size_t) (end - eq - 1));
                }
                p = *end ? end + 1 : end;
        }
        *ret_keys = k;
        *ret_values = v;
        *ret_n = n;
}

void tokens_labels_free(char **keys, char **values, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(keys[i]);
                free(values[i]);
        }
        free(keys);
        free(values);
}

/* 24 random bytes are 32 base64url characters, without padding. */
static int random_secret(char ret[WIRE_TOKEN_SECRET_LEN + 1]) {
        unsigned char raw[24], b64[33];

        if (RAND_bytes(raw, sizeof(raw)) != 1)
                return -EIO;
        if (EVP_EncodeBlock(b64, raw, sizeof(raw)) != WIRE_TOKEN_SECRET_LEN) {
                explicit_bzero(raw, sizeof(raw));
                return -EIO;
        }
        for (size_t i = 0; i < WIRE_TOKEN_SECRET_LEN; i++)
                ret[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char) b64[i];
        ret[WIRE_TOKEN_SECRET_LEN] = '\0';
        explicit_bzero(raw, sizeof(raw));
        explicit_bzero(b64, sizeof(b64));
        return 0;
}

static int random_id(char ret[WIRE_TOKEN_ID_LEN + 1]) {
        static const char digits[] = "0123456789abcdef";
        unsigned char raw[WIRE_TOKEN_ID_LEN / 2];

        if (RAND_bytes(raw, sizeof(raw)) != 1)
                return -EIO;
        for (size_t i = 0; i < sizeof(raw); i++) {
                ret[2 * i] = digits[raw[i] >> 4];
                ret[2 * i + 1] = digits[raw[i] & 15];
        }
        ret[WIRE_TOKEN_ID_LEN] = '\0';
        return 0;
}

int tokens_check_replace(store *s, const char *host, stored_host *ret, char **ret_error) {
        stored_host h = {};
        int r;

        if (!x509_host_label_valid(host)) {
                set_error(ret_error, xasprintf("--replace: '%.64s' is not a host name (a DNS label: at most 63 "
                                               "lower-case letters, digits and '-')",
                                               host));
                return -EINVAL;
        }
        r = store_load_host(s, host, &h);
        if (r == -ENOENT)
                set_error(ret_error, xasprintf("host '%s' is not enrolled: a plain token enrolls a new host", host));
        else if (r < 0)
                set_error(ret_error, xasprintf("cannot read host '%s' from the state store: %s", host, strerror(-r)));
        if (r < 0)
                return r;
        if (ret)
                *ret = h;
        else
                stored_host_done(&h);
        return 0;
}

int tokens_create(store *s, const char *role, const char *labels, const char *replaces, int64_t ttl, int64_t now,
                  char **ret_token, stored_token *ret, char **ret_error) {
        char id[WIRE_TOKEN_ID_LEN + 1], secret[WIRE_TOKEN_SECRET_LEN + 1], verifier[65];
        stored_token t = {};
        int r = -EEXIST;

        /* 32 bits of id: a collision with an earlier token is possible over the years, and is
         * simply another draw. */
        for (int attempt = 0; attempt < 8 && r == -EEXIST; attempt++) {
                r = random_id(id);
                if (r >= 0)
                        r = random_secret(secret);
                if (r < 0) {
                        set_error(ret_error, xstrdup("cannot draw random bytes for the token"));
                        break;
                }
                wire_token_verifier(secret, verifier);
                t = (stored_token) {
                        .id = id,
                        .verifier = verifier,
                        .role = (char *) role,
                        .labels = (char *) strempty(labels),
                        .created = now,
                        .expires = now + ttl,
                        .replaces = (char *) replaces,
                };
                wire_token_binding_key(secret, t.binding_key);
                r = store_insert_token(s, &t);
                explicit_bzero(t.binding_key, sizeof(t.binding_key));
                if (r < 0 && r != -EEXIST)
                        set_error(ret_error, xasprintf("cannot record the token in the state store: %s", strerror(-r)));
        }
        if (r == -EEXIST)
                set_error(ret_error, xstrdup("cannot find an unused token id"));
        if (r >= 0) {
                *ret_token = xasprintf("%s.%s", id, secret);
                if (ret) {
                        *ret = (stored_token) {
                                .id = xstrdup(id),
                                .verifier = xstrdup(verifier),
                                .role = xstrdup(role),
                                .labels = xstrdup(strempty(labels)),
                                .created = now,
                                .expires = now + ttl,
                                .replaces = replaces ? xstrdup(replaces) : NULL,
                        };
                        wire_token_binding_key(secret, ret->binding_key);
                }
        }
        explicit_bzero(secret, sizeof(secret));
        explicit_bzero(verifier, sizeof(verifier));
        return r < 0 ? r : 0;
}

int tokens_check(store *s, const char *token, int64_t now, stored_token *ret, char **ret_error) {
        char id[WIRE_TOKEN_ID_LEN + 1], secret[WIRE_TOKEN_SECRET_LEN + 1], verifier[65], when[32];
        stored_token t = {};
        bool match;
        int r;

        if (!wire_token_parse(token, id, secret)) {
                set_error(ret_error, xstrdup("the token is not an enrollment token (ID.SECRET: 8 hexadecimal digits, "
                                             "'.', 32 base64url characters)"));
                return -EBADMSG;
        }
        wire_token_verifier(secret, verifier);
        explicit_bzero(secret, sizeof(secret));
        r = store_load_token(s, id, &t);
        if (r == -ENOENT) {
                set_error(ret_error, xasprintf("unknown enrollment token '%s'", id));
                return r;
        }
        if (r < 0) {
                set_error(ret_error, xasprintf("cannot read enrollment token '%s' from the state store: %s", id,
                                               strerror(-r)));
                return r;
        }
        /* The secret first: without it, nobody learns whether the token was used or has expired. */
        match = strlen(t.verifier) == 64 && CRYPTO_memcmp(t.verifier, verifier, 64) == 0;
        explicit_bzero(verifier, sizeof(verifier));
        if (!match) {
                set_error(ret_error, xasprintf("enrollment token '%s': wrong secret", id));
                r = -EACCES;
        } else if (t.used_at != 0) {
                x509_format_time((time_t) t.used_at, when);
                set_error(ret_error, xasprintf("enrollment token '%s' was already used (by host '%s' at %s); a token "
                                               "enrolls one host once: create a new one with "
                                               "'infrastream-controller token create'",
                                               id, strempty(t.used_by), when));
                r = -EALREADY;
        } else if (now >= t.expires) {
                x509_format_time((time_t) t.expires, when);
                set_error(ret_error, xasprintf("enrollment token '%s' expired at %s; create a new one with "
                                               "'infrastream-controller token create'",
                                               id, when));
                r = -ETIME;
        }
        if (r < 0 || !ret) {
                stored_token_done(&t);
                return r;
        }
        *ret = t;
        return 0;
}

char *tokens_enrolled_error(const char *host) {
        return xasprintf("host '%s' is already enrolled; re-enrolling it needs a token made with "
                         "'infrastream-controller token create --replace %s'",
                         host, host);
}

/* Whether t may enroll host: 1 it replaces host's enrollment, 0 host is a new name. */
static int name_rule(store *s, const stored_token *t, const char *host, char **ret_error) {
        stored_host h = {};
        int r;

        /* A token made to replace one host must not become a way to take over another. */
        if (t->replaces && !streq(t->replaces, host)) {
                set_error(ret_error, xasprintf("this token may only re-enroll host '%s', not '%s'", t->replaces, host));
                return -EPERM;
        }
        r = store_load_host(s, host, &h);
        if (r == -ENOENT)
                return 0; /* a new name; for a --replace token, one no longer enrolled: nothing to take over */
        if (r < 0) {
                set_error(ret_error, xasprintf("cannot read host '%s' from the state store: %s", host, strerror(-r)));
                return r;
        }
        stored_host_done(&h);
        if (!t->replaces) {
                set_error(ret_error, tokens_enrolled_error(host));
                return -EEXIST;
        }
        return 1;
}

int tokens_consume(store *s, const char *token, const char *host, int64_t now, stored_token *ret, char **ret_error) {
        stored_token t = {};
        bool enrolled;
        int r;

        r = tokens_check(s, token, now, &t, ret_error);
        if (r < 0)
                return r;
        /* Only after the secret: nobody without a good token learns which names are enrolled. */
        r = name_rule(s, &t, host, ret_error);
        if (r < 0) {
                stored_token_done(&t);
                return r;
        }
        enrolled = r > 0;
        r = store_use_token(s, t.id, host, now);
        if (r == -EALREADY)
                /* Used between the check and now: another enrollment with the same token won. */
                set_error(ret_error, xasprintf("enrollment token '%s' was already used; a token enrolls one host "
                                               "once: create a new one with 'infrastream-controller token create'",
                                               t.id));
        else if (r < 0)
                set_error(ret_error, xasprintf("cannot mark enrollment token '%s' used: %s", t.id, strerror(-r)));
        if (r < 0) {
                stored_token_done(&t);
                return r;
        }
        t.used_at = now;
        free(t.used_by);
        t.used_by = xstrdup(host);
        if (ret)
                *ret = t;
        else
                stored_token_done(&t);
        return enrolled ? 1 : 0;
}
