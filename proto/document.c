/* The desired-state document's JSON wire form: canonical encoder, content hash, and the strict
 * decoder every agent runs on untrusted input before anything privileged happens. */
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "document.h"
#include "macro.h"

/* Deterministic output: json-c keeps insertion order, so emitting members in a fixed order with
 * fixed flags gives the same bytes for the same document. Slashes stay unescaped so CIDR
 * addresses and the apiVersion read naturally. sign.c re-serialises envelopes with these flags. */
#define DOC_JSON_FLAGS (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Documents nest six levels (root, databases, database, roles, role, clients); anything much
 * deeper is hostile, and a low limit bounds the recursion of the checks below. */
#define DOC_JSON_DEPTH 16

#define DOC_HOSTNAME_MAX 253 /* RFC 1035 presentation form */
#define DOC_TEXT_MAX 1024    /* every other string; generous for schedules, verifiers, passwords */
#define DOC_ECHO_MAX 64      /* how much of an offending value a message quotes */

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free);

static const char *const access_names[] = {
        [DOC_ACCESS_READ_ONLY] = "read-only",
        [DOC_ACCESS_READ_WRITE] = "read-write",
};

static const char *const host_role_names[] = {
        [DOC_HOST_DATABASE] = "database",
        [DOC_HOST_APPLICATION] = "application",
};

const char *doc_access_to_string(doc_access a) {
        if ((size_t) a >= ELEMENTSOF(access_names))
                return NULL;
        return access_names[a];
}

const char *doc_host_role_to_string(doc_host_role r) {
        if ((size_t) r >= ELEMENTSOF(host_role_names))
                return NULL;
        return host_role_names[r];
}

static void strv_free(char **l, size_t n) {
        if (!l)
                return;
        for (size_t i = 0; i < n; i++)
                free(l[i]);
        free(l);
}

static void identity_done(doc_identity *id) {
        free(id->organization);
        free(id->organizational_unit);
        free(id->environment);
        free(id->project);
}

static void database_done(doc_database *db) {
        free(db->name);
        identity_done(&db->identity);
        free(db->hostname);
        strv_free(db->tls_names, db->n_tls_names);
        free(db->backup.schedule);
        for (size_t i = 0; i < db->n_roles; i++) {
                doc_role *r = &db->roles[i];

                free(r->name);
                free(r->application);
                strv_free(r->clients, r->n_clients);
                erase_and_free(r->scram_verifier);
        }
        free(db->roles);
        strv_free(db->allow, db->n_allow);
}

static void app_done(doc_app *a) {
        free(a->name);
        identity_done(&a->identity);
        free(a->unit);
        for (size_t i = 0; i < a->n_env; i++) {
                doc_env *e = &a->env[i];

                free(e->name);
                free(e->database);
                free(e->db_hostname);
                free(e->db_address);
                free(e->role);
                erase_and_free(e->password);
        }
        free(a->env);
}

void doc_document_free(doc_document *d) {
        if (!d)
                return;
        free(d->host);
        free(d->commit);
        for (size_t i = 0; i < d->n_databases; i++)
                database_done(&d->databases[i]);
        free(d->databases);
        for (size_t i = 0; i < d->n_apps; i++)
                app_done(&d->apps[i]);
        free(d->apps);
        free(d);
}

void doc_document_freep(doc_document **d) {
        doc_document_free(*d);
}

/* ---- encoding ------------------------------------------------------------------------------ */

/* json-c reports allocation failure by returning NULL; like xmalloc(), we do not limp on. */
static _Noreturn void oom(void) {
        fputs("fatal: out of memory\n", stderr);
        abort();
}

static json_object *checked(json_object *o) {
        if (!o)
                oom();
        return o;
}

static void add(json_object *o, const char *key, json_object *v) {
        /* Keys are string literals and each is added once: skip json-c's copy and lookup. */
        if (json_object_object_add_ex(o, key, checked(v),
                                      JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY) < 0)
                oom();
}

static json_object *new_string(const char *s) {
        return checked(json_object_new_string(strempty(s)));
}

static json_object *new_strv(char *const *l, size_t n) {
        json_object *a = checked(json_object_new_array_ext((int) n));

        for (size_t i = 0; i < n; i++)
                if (json_object_array_add(a, new_string(l[i])) < 0)
                        oom();
        return a;
}

static void append(json_object *a, json_object *v) {
        if (json_object_array_add(a, v) < 0)
                oom();
}

static json_object *encode_identity(const doc_identity *id) {
        json_object *o = checked(json_object_new_object());

        add(o, "organization", new_string(id->organization));
        add(o, "organizationalUnit", new_string(id->organizational_unit));
        add(o, "environment", new_string(id->environment));
        add(o, "project", new_string(id->project));
        return o;
}

static json_object *encode_role(const doc_role *r) {
        json_object *o = checked(json_object_new_object());

        add(o, "name", new_string(r->name));
        add(o, "application", new_string(r->application));
        add(o, "access", new_string(doc_access_to_string(r->access)));
        add(o, "clients", new_strv(r->clients, r->n_clients));
        if (r->scram_verifier)
                add(o, "scramVerifier", new_string(r->scram_verifier));
        return o;
}

static json_object *encode_database(const doc_database *db) {
        json_object *o = checked(json_object_new_object()), *backup, *roles;

        add(o, "name", new_string(db->name));
        add(o, "identity", encode_identity(&db->identity));
        add(o, "hostname", new_string(db->hostname));
        add(o, "postgresVersion", json_object_new_int(db->postgres_version));
        add(o, "cpuCount", json_object_new_int(db->cpu_count));
        add(o, "clusterSize", json_object_new_int(db->cluster_size));
        add(o, "port", json_object_new_int(db->port));
        add(o, "tlsNames", new_strv(db->tls_names, db->n_tls_names));

        backup = checked(json_object_new_object());
        add(backup, "enabled", json_object_new_boolean(db->backup.enabled));
        add(backup, "schedule", new_string(db->backup.schedule));
        add(backup, "retentionDays", json_object_new_int(db->backup.retention_days));
        add(o, "backup", backup);

        roles = checked(json_object_new_array_ext((int) db->n_roles));
        for (size_t i = 0; i < db->n_roles; i++)
                append(roles, encode_role(&db->roles[i]));
        add(o, "roles", roles);
        add(o, "allow", new_strv(db->allow, db->n_allow));
        return o;
}

static json_object *encode_env(const doc_env *e) {
        json_object *o = checked(json_object_new_object());

        add(o, "name", new_string(e->name));
        add(o, "database", new_string(e->database));
        add(o, "dbHostname", new_string(e->db_hostname));
        add(o, "dbAddress", new_string(e->db_address));
        add(o, "port", json_object_new_int(e->port));
        add(o, "role", new_string(e->role));
        add(o, "access", new_string(doc_access_to_string(e->access)));
        if (e->password)
                add(o, "password", new_string(e->password));
        return o;
}

static json_object *encode_app(const doc_app *a) {
        json_object *o = checked(json_object_new_object()), *env;

        add(o, "name", new_string(a->name));
        add(o, "identity", encode_identity(&a->identity));
        add(o, "unit", new_string(a->unit));
        env = checked(json_object_new_array_ext((int) a->n_env));
        for (size_t i = 0; i < a->n_env; i++)
                append(env, encode_env(&a->env[i]));
        add(o, "env", env);
        return o;
}

char *doc_encode(const doc_document *d, size_t *ret_size) {
        _cleanup_(json_object_putp) json_object *root = checked(json_object_new_object());
        json_object *dbs, *apps;
        const char *s;
        size_t len;
        char *buf;

        add(root, "apiVersion", new_string(DOC_API_VERSION));
        add(root, "kind", new_string(DOC_KIND));
        add(root, "host", new_string(d->host));
        add(root, "role", new_string(doc_host_role_to_string(d->role)));
        /* uint64 so an out-of-range revision shows as itself (and is refused by the decoder)
         * rather than as a negative number. */
        add(root, "revision", json_object_new_uint64(d->revision));
        add(root, "commit", new_string(d->commit));

        dbs = checked(json_object_new_array_ext((int) d->n_databases));
        for (size_t i = 0; i < d->n_databases; i++)
                append(dbs, encode_database(&d->databases[i]));
        add(root, "databases", dbs);

        apps = checked(json_object_new_array_ext((int) d->n_apps));
        for (size_t i = 0; i < d->n_apps; i++)
                append(apps, encode_app(&d->apps[i]));
        add(root, "applications", apps);

        s = json_object_to_json_string_length(root, DOC_JSON_FLAGS, &len);
        if (!s)
                oom();
        buf = xmalloc(len + 2);
        memcpy(buf, s, len);
        buf[len] = '\n';
        buf[len + 1] = '\0';
        if (ret_size)
                *ret_size = len + 1;
        return buf;
}

void doc_content_hash(const doc_document *d, char ret_hex[65]) {
        /* A shallow copy with the bookkeeping fields blanked: a new revision or commit alone is
         * not a change of desired state. The caller's document is never touched. */
        doc_document copy = *d;
        _cleanup_erase_ char *json = NULL; /* holds passwords */
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int md_len = 0;
        size_t size;

        copy.revision = 0;
        copy.commit = (char *) "";
        json = doc_encode(&copy, &size);
        /* SHA-256 in the default provider only fails on allocation failure. */
        if (EVP_Digest(json, size, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
                oom();
        for (unsigned i = 0; i < md_len; i++)
                snprintf(ret_hex + 2 * i, 3, "%02x", md[i]);
}

/* ---- strict lexical pass ------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s, 0 if there is none: overlong forms,
 * surrogates and code points beyond U+10FFFF are refused, as RFC 3629 asks. */
static size_t utf8_char_len(const unsigned char *s, size_t n) {
        uint32_t cp, min;
        size_t len;

        if (n == 0)
                return 0;
        if (s[0] < 0x80)
                return 1;
        if ((s[0] & 0xe0) == 0xc0) {
                len = 2, cp = s[0] & 0x1f, min = 0x80;
        } else if ((s[0] & 0xf0) == 0xe0) {
                len = 3, cp = s[0] & 0x0f, min = 0x800;
        } else if ((s[0] & 0xf8) == 0xf0) {
                len = 4, cp = s[0] & 0x07, min = 0x10000;
        } else
                return 0;
        if (n < len)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                cp = (cp << 6) | (s[i] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return len;
}

static bool utf8_is_valid(const char *s, size_t n) {
        for (size_t i = 0; i < n;) {
                size_t l = utf8_char_len((const unsigned char *) s + i, n - i);
                if (l == 0)
                        return false;
                i += l;
        }
        return true;
}

typedef struct lexer {
        const char *s;
        size_t n, i;
        const char *error;  /* static text; the offset is i */
        uint32_t *counts;   /* members of each object, objects in order of their '{' */
        size_t n_counts, alloc_counts;
} lexer;

static int lex_fail(lexer *l, const char *why) {
        l->error = why;
        return -EBADMSG;
}

static int hex4(const char *s, uint32_t *ret) {
        uint32_t v = 0;

        for (size_t i = 0; i < 4; i++) {
                char c = s[i];

                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (uint32_t) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (uint32_t) (c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (uint32_t) (c - 'A' + 10);
                else
                        return -EBADMSG;
        }
        *ret = v;
        return 0;
}

static int lex_string(lexer *l) {
        l->i++; /* opening quote */
        while (l->i < l->n) {
                unsigned char c = (unsigned char) l->s[l->i];
                uint32_t cp, lo;
                size_t len;

                if (c == '"') {
                        l->i++;
                        return 0;
                }
                if (c < 0x20)
                        return lex_fail(l, "control character in string");
                if (c != '\\') {
                        len = utf8_char_len((const unsigned char *) l->s + l->i, l->n - l->i);
                        if (len == 0)
                                return lex_fail(l, "invalid UTF-8 in string");
                        l->i += len;
                        continue;
                }
                if (l->i + 1 >= l->n)
                        break;
                c = (unsigned char) l->s[l->i + 1];
                if (strchr("\"\\/bfnrt", c) && c != '\0') {
                        l->i += 2;
                        continue;
                }
                if (c != 'u' || l->i + 6 > l->n || hex4(l->s + l->i + 2, &cp) < 0)
                        return lex_fail(l, "invalid escape in string");
                /* A decoded NUL would cut keys short in json-c (which stores them as C strings) and
                 * hide a second copy of a field; no field of ours can contain one anyway. */
                if (cp == 0)
                        return lex_fail(l, "NUL character in string");
                if (cp >= 0xdc00 && cp <= 0xdfff)
                        return lex_fail(l, "unpaired surrogate in string");
                if (cp >= 0xd800 && cp <= 0xdbff) {
                        if (l->i + 12 > l->n || l->s[l->i + 6] != '\\' || l->s[l->i + 7] != 'u' ||
                            hex4(l->s + l->i + 8, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                                return lex_fail(l, "unpaired surrogate in string");
                        l->i += 6;
                }
                l->i += 6;
        }
        return lex_fail(l, "unterminated string");
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? and nothing number-like after it. */
static int lex_number(lexer *l) {
        const char *s = l->s;
        size_t n = l->n, i = l->i;

        if (i < n && s[i] == '-')
                i++;
        if (i < n && s[i] == '0')
                i++;
        else if (i < n && is_digit(s[i]))
                while (i < n && is_digit(s[i]))
                        i++;
        else
                goto fail;
        if (i < n && s[i] == '.') {
                i++;
                if (i >= n || !is_digit(s[i]))
                        goto fail;
                while (i < n && is_digit(s[i]))
                        i++;
        }
        if (i < n && (s[i] == 'e' || s[i] == 'E')) {
                i++;
                if (i < n && (s[i] == '+' || s[i] == '-'))
                        i++;
                if (i >= n || !is_digit(s[i]))
                        goto fail;
                while (i < n && is_digit(s[i]))
                        i++;
        }
        if (i < n && (is_digit(s[i]) || strchr(".eE+-", s[i])))
                goto fail;
        l->i = i;
        return 0;
fail:
        /* l->i stays at the start: the message points at the number, not somewhere inside it. */
        return lex_fail(l, "invalid number");
}

static int lex_literal(lexer *l, const char *word) {
        size_t len = strlen(word);

        if (l->n - l->i < len || memcmp(l->s + l->i, word, len) != 0)
                return lex_fail(l, "unexpected character");
        l->i += len;
        return 0;
}

/* json-c accepts more than RFC 8259 even with JSON_TOKENER_STRICT: single-quoted strings,
 * NaN/Infinity, "1.", raw control characters, lone surrogates, overlong UTF-8, and it keeps the
 * last of duplicate keys without a word. A signed document must have exactly one reading, so
 * this pass re-lexes what the tokener accepted, refuses everything outside RFC 8259, and counts
 * each object's members; comparing those counts with the parsed tree exposes duplicates.
 * The structure was already validated by the tokener; only the token stream is checked. */
static int lex_strict(lexer *l) {
        struct {
                bool object, want_key;
                size_t count;
        } stack[DOC_JSON_DEPTH + 1];
        size_t depth = 0;
        int r;

        while (l->i < l->n) {
                char c = l->s[l->i];

                switch (c) {
                case ' ':
                case '\t':
                case '\n':
                case '\r':
                case ':':
                        l->i++;
                        break;
                case '{':
                case '[':
                        if (depth >= ELEMENTSOF(stack))
                                return lex_fail(l, "nesting too deep");
                        stack[depth].object = c == '{';
                        stack[depth].want_key = c == '{';
                        if (c == '{') {
                                if (l->n_counts == l->alloc_counts) {
                                        l->alloc_counts = l->alloc_counts ? l->alloc_counts * 2 : 64;
                                        l->counts = xrealloc(l->counts, l->alloc_counts * sizeof(uint32_t));
                                }
                                l->counts[l->n_counts] = 0;
                                stack[depth].count = l->n_counts++;
                        }
                        depth++;
                        l->i++;
                        break;
                case '}':
                case ']':
                        if (depth == 0)
                                return lex_fail(l, "unexpected character");
                        depth--;
                        l->i++;
                        break;
                case ',':
                        if (depth > 0 && stack[depth - 1].object)
                                stack[depth - 1].want_key = true;
                        l->i++;
                        break;
                case '"':
                        if (depth > 0 && stack[depth - 1].object && stack[depth - 1].want_key) {
                                l->counts[stack[depth - 1].count]++;
                                stack[depth - 1].want_key = false;
                        }
                        r = lex_string(l);
                        if (r < 0)
                                return r;
                        break;
                case 't':
                case 'f':
                case 'n':
                        r = lex_literal(l, c == 't' ? "true" : c == 'f' ? "false" : "null");
                        if (r < 0)
                                return r;
                        break;
                default:
                        if (c != '-' && !is_digit(c))
                                return lex_fail(l, "unexpected character");
                        r = lex_number(l);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

/* ---- strict decoding ----------------------------------------------------------------------- */

/* The JSON path of the value being decoded, for messages such as
 * "databases[0].roles[1].name: missing". Paths are made of schema field names and indices only
 * (unknown names appear in the message, never in the path), so a fixed buffer is enough. */
typedef struct decoder {
        char path[256];
        size_t len;
        char *error;
} decoder;

/* Account for what snprintf() wrote; on truncation the path just ends early. */
static void path_grew(decoder *d, int k) {
        if (k > 0)
                d->len += (size_t) k;
        if (d->len >= sizeof(d->path))
                d->len = sizeof(d->path) - 1;
}

static size_t path_push(decoder *d, const char *key) {
        size_t mark = d->len;

        path_grew(d, snprintf(d->path + d->len, sizeof(d->path) - d->len, "%s%s", d->len > 0 ? "." : "", key));
        return mark;
}

static size_t path_push_index(decoder *d, size_t idx) {
        size_t mark = d->len;

        path_grew(d, snprintf(d->path + d->len, sizeof(d->path) - d->len, "[%zu]", idx));
        return mark;
}

static void path_pop(decoder *d, size_t mark) {
        d->len = mark;
        d->path[mark] = '\0';
}

_printf_(2, 3) static int fail(decoder *d, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                oom();
        va_end(ap);
        /* Keep the first error: it is the one nearest the cause. */
        if (!d->error)
                d->error = xasprintf("%s: %s", d->len > 0 ? d->path : "document", msg);
        return -EBADMSG;
}

/* Quote at most DOC_ECHO_MAX bytes of an offending (already validated, printable) value, cut
 * on a character boundary so the message stays valid UTF-8. */
static char *echo(const char *s) {
        size_t n = strlen(s), cut = 0;

        if (n <= DOC_ECHO_MAX)
                return xstrdup(s);
        while (cut < DOC_ECHO_MAX) {
                size_t l = utf8_char_len((const unsigned char *) s + cut, n - cut);
                if (l == 0 || cut + l > DOC_ECHO_MAX)
                        break;
                cut += l;
        }
        return xasprintf("%.*s...", (int) cut, s);
}

/* Same for a field name we do not know: it may hold anything, so control bytes become '?'. */
static char *echo_key(const char *s) {
        char *e = echo(s);

        for (char *p = e; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        *p = '?';
        return e;
}

static const char *type_noun(json_type t) {
        switch (t) {
        case json_type_string:
                return "a string";
        case json_type_array:
                return "an array";
        case json_type_object:
                return "an object";
        case json_type_boolean:
                return "a boolean";
        default:
                return "a value of another type";
        }
}

static int expect_type(decoder *d, json_object *v, json_type t) {
        if (json_object_get_type(v) != t)
                return fail(d, "expected %s", type_noun(t));
        return 0;
}

/* Refuse unknown members: a field we would ignore is a field the controller meant something
 * by, and the signature would cover it without the agent honouring it. */
static int check_fields(decoder *d, json_object *o, const char *const *known, size_t n_known) {
        int r = expect_type(d, o, json_type_object);
        if (r < 0)
                return r;

        json_object_object_foreach(o, key, val) {
                bool ok = false;

                (void) val;
                for (size_t i = 0; i < n_known && !ok; i++)
                        ok = streq(key, known[i]);
                if (!ok) {
                        _cleanup_free_ char *e = echo_key(key);
                        return fail(d, "unknown field '%s'", e);
                }
        }
        return 0;
}

/* 1 and *ret set when the member exists, 0 when an optional one is absent, <0 when a required
 * one is missing. A member present as null is returned (as NULL) and fails the type check. */
static int member(decoder *d, json_object *o, const char *key, bool optional, json_object **ret) {
        if (!json_object_object_get_ex(o, key, ret)) {
                size_t mark;
                int r;

                if (optional)
                        return 0;
                mark = path_push(d, key);
                r = fail(d, "missing");
                path_pop(d, mark);
                return r;
        }
        return 1;
}

typedef enum string_kind {
        STRING_NAME,     /* an identifier: 1..DOC_NAME_MAX bytes */
        STRING_HOSTNAME, /* 1..253 bytes */
        STRING_TEXT,     /* 1..DOC_TEXT_MAX bytes */
        STRING_OPTIONAL_TEXT, /* 0..DOC_TEXT_MAX bytes */
} string_kind;

static int decode_string(decoder *d, json_object *v, string_kind kind, char **ret) {
        size_t len, max;
        const char *s;
        int r;

        r = expect_type(d, v, json_type_string);
        if (r < 0)
                return r;
        s = json_object_get_string(v);
        len = (size_t) json_object_get_string_len(v);
        max = kind == STRING_NAME ? DOC_NAME_MAX : kind == STRING_HOSTNAME ? DOC_HOSTNAME_MAX : DOC_TEXT_MAX;

        if (memchr(s, 0, len))
                return fail(d, "must not contain NUL characters");
        if (len == 0 && kind != STRING_OPTIONAL_TEXT)
                return fail(d, "must not be empty");
        if (len > max)
                return fail(d, "longer than %zu bytes", max);
        if (!utf8_is_valid(s, len))
                return fail(d, "is not valid UTF-8");
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                        return fail(d, "must not contain control characters");
        *ret = xstrndup(s, len);
        return 0;
}

static int field_string(decoder *d, json_object *o, const char *key, string_kind kind, bool optional,
                        char **ret) {
        json_object *v;
        size_t mark;
        int r;

        r = member(d, o, key, optional, &v);
        if (r <= 0)
                return r;
        mark = path_push(d, key);
        r = decode_string(d, v, kind, ret);
        path_pop(d, mark);
        return r;
}

/* A string that must be one of a fixed set; its index is returned. */
static int field_choice(decoder *d, json_object *o, const char *key, const char *const *choices,
                        size_t n_choices, int *ret) {
        _cleanup_free_ char *s = NULL, *e = NULL;
        size_t mark;
        int r;

        r = field_string(d, o, key, STRING_TEXT, false, &s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_choices; i++)
                if (streq(s, choices[i])) {
                        *ret = (int) i;
                        return 0;
                }
        e = echo(s);
        mark = path_push(d, key);
        if (n_choices == 1)
                r = fail(d, "expected '%s', got '%s'", choices[0], e);
        else
                r = fail(d, "expected '%s' or '%s', got '%s'", choices[0], choices[1], e);
        path_pop(d, mark);
        return r;
}

static int field_int(decoder *d, json_object *o, const char *key, int lo, int hi, int *ret) {
        json_object *v;
        size_t mark;
        int64_t i;
        int r;

        r = member(d, o, key, false, &v);
        if (r < 0)
                return r;
        mark = path_push(d, key);
        /* json-c turns 1.0 and 1e3 into doubles and "5" into a string; only a JSON integer
         * literal is an integer here. Out-of-range literals saturate, which the range catches. */
        if (json_object_get_type(v) != json_type_int ||
            (i = json_object_get_int64(v)) < lo || i > hi)
                r = fail(d, "must be an integer between %d and %d", lo, hi);
        else
                *ret = (int) i;
        path_pop(d, mark);
        return r;
}

static int field_bool(decoder *d, json_object *o, const char *key, bool *ret) {
        json_object *v;
        size_t mark;
        int r;

        r = member(d, o, key, false, &v);
        if (r < 0)
                return r;
        mark = path_push(d, key);
        r = expect_type(d, v, json_type_boolean);
        if (r >= 0)
                *ret = json_object_get_boolean(v);
        path_pop(d, mark);
        return r;
}

static int field_strv(decoder *d, json_object *o, const char *key, string_kind kind, char ***ret,
                      size_t *ret_n) {
        json_object *v;
        size_t mark, n;
        int r;

        r = member(d, o, key, false, &v);
        if (r < 0)
                return r;
        mark = path_push(d, key);
        r = expect_type(d, v, json_type_array);
        if (r < 0)
                goto finish;
        n = json_object_array_length(v);
        /* Attach to the document before filling: a failure halfway is freed with it. */
        *ret = xcalloc(n, sizeof(char *));
        *ret_n = n;
        for (size_t i = 0; i < n; i++) {
                size_t m = path_push_index(d, i);

                r = decode_string(d, json_object_array_get_idx(v, i), kind, &(*ret)[i]);
                path_pop(d, m);
                if (r < 0)
                        break;
        }
finish:
        path_pop(d, mark);
        return r;
}

typedef int (*element_decoder)(decoder *d, json_object *o, void *elem);

/* A nested object under key: fetch, descend in the path, decode. Returns 1 when decoded, 0 when
 * an optional one is absent. */
static int field_object(decoder *d, json_object *o, const char *key, bool optional, element_decoder decode,
                        void *elem) {
        json_object *v;
        size_t mark;
        int r;

        r = member(d, o, key, optional, &v);
        if (r <= 0)
                return r;
        mark = path_push(d, key);
        r = decode(d, v, elem);
        path_pop(d, mark);
        return r < 0 ? r : 1;
}

static int decode_identity(decoder *d, json_object *o, void *elem) {
        static const char *const known[] = { "organization", "organizationalUnit", "environment", "project" };
        doc_identity *id = elem;
        int r;

        if ((r = check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = field_string(d, o, "organization", STRING_NAME, false, &id->organization)) < 0 ||
            (r = field_string(d, o, "organizationalUnit", STRING_NAME, false, &id->organizational_unit)) < 0 ||
            (r = field_string(d, o, "environment", STRING_NAME, false, &id->environment)) < 0 ||
            (r = field_string(d, o, "project", STRING_NAME, false, &id->project)) < 0)
                return r;
        return 0;
}

/* An array of named objects. Canonical form requires names strictly increasing in byte order:
 * the hash and the signature then depend on the content only, and duplicates cannot hide. */
static int field_objects(decoder *d, json_object *o, const char *key, size_t elem_size, size_t name_offset,
                         element_decoder decode, void **ret, size_t *ret_n) {
        json_object *v;
        size_t mark, n;
        int r;

        r = member(d, o, key, false, &v);
        if (r < 0)
                return r;
        mark = path_push(d, key);
        r = expect_type(d, v, json_type_array);
        if (r < 0)
                goto finish;
        n = json_object_array_length(v);
        *ret = xcalloc(n, elem_size);
        for (size_t i = 0; i < n; i++) {
                char *elem = (char *) *ret + i * elem_size;
                size_t m = path_push_index(d, i);

                /* Counted before decoding so a half-decoded element is freed with the document. */
                *ret_n = i + 1;
                r = decode(d, json_object_array_get_idx(v, i), elem);
                if (r >= 0 && i > 0) {
                        const char *prev = *(char **) (elem - elem_size + name_offset);
                        const char *cur = *(char **) (elem + name_offset);
                        int c = strcmp(prev, cur);

                        if (c >= 0) {
                                _cleanup_free_ char *e = echo(cur);
                                size_t mn = path_push(d, "name");

                                if (c == 0)
                                        r = fail(d, "duplicate name '%s'", e);
                                else
                                        r = fail(d, "'%s' is out of order: entries must be sorted by name", e);
                                path_pop(d, mn);
                        }
                }
                path_pop(d, m);
                if (r < 0)
                        break;
        }
finish:
        path_pop(d, mark);
        return r;
}

static int decode_role(decoder *d, json_object *o, void *elem) {
        static const char *const known[] = { "name", "application", "access", "clients", "scramVerifier" };
        doc_role *role = elem;
        int access = 0, r;

        if ((r = check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = field_string(d, o, "name", STRING_NAME, false, &role->name)) < 0 ||
            (r = field_string(d, o, "application", STRING_NAME, false, &role->application)) < 0 ||
            (r = field_choice(d, o, "access", access_names, ELEMENTSOF(access_names), &access)) < 0 ||
            (r = field_strv(d, o, "clients", STRING_TEXT, &role->clients, &role->n_clients)) < 0 ||
            (r = field_string(d, o, "scramVerifier", STRING_TEXT, true, &role->scram_verifier)) < 0)
                return r;
        role->access = (doc_access) access;
        return 0;
}

static int decode_backup(decoder *d, json_object *o, void *elem) {
        static const char *const known[] = { "enabled", "schedule", "retentionDays" };
        doc_backup *b = elem;
        int r;

        if ((r = check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = field_bool(d, o, "enabled", &b->enabled)) < 0 ||
            (r = field_string(d, o, "schedule", STRING_TEXT, false, &b->schedule)) < 0 ||
            (r = field_int(d, o, "retentionDays", 1, 3650, &b->retention_days)) < 0)
                return r;
        return 0;
}

static int decode_database(decoder *d, json_object *o, void *elem) {
        static const char *const known[] = {
                "name", "identity", "hostname", "postgresVersion", "cpuCount", "clusterSize",
                "port", "tlsNames", "backup", "roles", "allow",
        };
        doc_database *db = elem;
        int r;

        if ((r = check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = field_string(d, o, "name", STRING_NAME, false, &db->name)) < 0 ||
            (r = field_object(d, o, "identity", false, decode_identity, &db->identity)) < 0 ||
            (r = field_string(d, o, "hostname", STRING_HOSTNAME, false, &db->hostname)) < 0 ||
            (r = field_int(d, o, "postgresVersion", 10, 99, &db->postgres_version)) < 0 ||
            (r = field_int(d, o, "cpuCount", 1, 256, &db->cpu_count)) < 0 ||
            (r = field_int(d, o, "clusterSize", 1, 9, &db->cluster_size)) < 0 ||
            (r = field_int(d, o, "port", 1, 65535, &db->port)) < 0 ||
            (r = field_strv(d, o, "tlsNames", STRING_HOSTNAME, &db->tls_names, &db->n_tls_names)) < 0 ||
            (r = field_object(d, o, "backup", false, decode_backup, &db->backup)) < 0 ||
            (r = field_objects(d, o, "roles", sizeof(doc_role), offsetof(doc_role, name), decode_role,
                               (void **) &db->roles, &db->n_roles)) < 0 ||
            (r = field_strv(d, o, "allow", STRING_TEXT, &db->allow, &db->n_allow)) < 0)
                return r;
        return 0;
}

static int decode_env(decoder *d, json_object *o, void *elem) {
        static const char *const known[] = {
                "name", "database", "dbHostname", "dbAddress", "port", "role", "access", "password",
        };
        doc_env *e = elem;
        int access = 0, r;

        if ((r = check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = field_string(d, o, "name", STRING_TEXT, false, &e->name)) < 0 ||
            (r = field_string(d, o, "database", STRING_NAME, false, &e->database)) < 0 ||
            (r = field_string(d, o, "dbHostname", STRING_HOSTNAME, false, &e->db_hostname)) < 0 ||
            (r = field_string(d, o, "dbAddress", STRING_TEXT, false, &e->db_address)) < 0 ||
            (r = field_int(d, o, "port", 1, 65535, &e->port)) < 0 ||
            (r = field_string(d, o, "role", STRING_NAME, false, &e->role)) < 0 ||
            (r = field_choice(d, o, "access", access_names, ELEMENTSOF(access_names), &access)) < 0 ||
            (r = field_string(d, o, "password", STRING_TEXT, true, &e->password)) < 0)
                return r;
        e->access = (doc_access) access;
        return 0;
}

static int decode_app(decoder *d, json_object *o, void *elem) {
        static const char *const known[] = { "name", "identity", "unit", "env" };
        doc_app *a = elem;
        int r;

        if ((r = check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = field_string(d, o, "name", STRING_NAME, false, &a->name)) < 0 ||
            (r = field_object(d, o, "identity", false, decode_identity, &a->identity)) < 0 ||
            (r = field_string(d, o, "unit", STRING_TEXT, false, &a->unit)) < 0 ||
            (r = field_objects(d, o, "env", sizeof(doc_env), offsetof(doc_env, name), decode_env,
                               (void **) &a->env, &a->n_env)) < 0)
                return r;
        return 0;
}

static bool is_lower_hex(const char *s, size_t n) {
        if (strlen(s) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!is_digit(s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
                        return false;
        return true;
}

static int decode_signature(decoder *d, json_object *o, void *elem) {
        static const char *const known[] = { "algorithm", "keyId", "sha256", "value" };
        static const char *const algorithms[] = { "ed25519" };
        _cleanup_free_ char *key_id = NULL, *sha = NULL, *value = NULL;
        unsigned char raw[66]; /* 88 base64 characters decode to 66 bytes, padding included */
        char again[89];
        doc_signature *sig = elem;
        int algorithm, r;

        if ((r = check_fields(d, o, known, ELEMENTSOF(known))) < 0 ||
            (r = field_choice(d, o, "algorithm", algorithms, ELEMENTSOF(algorithms), &algorithm)) < 0 ||
            (r = field_string(d, o, "keyId", STRING_TEXT, false, &key_id)) < 0 ||
            (r = field_string(d, o, "sha256", STRING_TEXT, false, &sha)) < 0 ||
            (r = field_string(d, o, "value", STRING_TEXT, false, &value)) < 0)
                return r;

        /* Lower-case hex and padded base64 only, so an envelope has one spelling. */
        if (!is_lower_hex(key_id, 16)) {
                path_push(d, "keyId");
                return fail(d, "must be 16 lower-case hexadecimal digits");
        }
        if (!is_lower_hex(sha, 64)) {
                path_push(d, "sha256");
                return fail(d, "must be 64 lower-case hexadecimal digits");
        }
        /* EVP_DecodeBlock() skips surrounding blanks and ignores the padding bits; encoding the
         * result again and comparing admits exactly the canonical spelling. */
        if (strlen(value) != 88 || EVP_DecodeBlock(raw, (const unsigned char *) value, 88) != 66 ||
            EVP_EncodeBlock((unsigned char *) again, raw, 64) != 88 || !streq(again, value)) {
                path_push(d, "value");
                return fail(d, "must be the base64 encoding of a 64-byte Ed25519 signature");
        }
        memcpy(sig->key_id, key_id, sizeof(sig->key_id));
        memcpy(sig->sha256, sha, sizeof(sig->sha256));
        memcpy(sig->sig, raw, sizeof(sig->sig));
        return 0;
}

static int decode_document(decoder *d, json_object *root, doc_document *doc, doc_signature *sig,
                           bool *has_sig) {
        static const char *const known[] = {
                "apiVersion", "kind", "host", "role", "revision", "commit", "databases",
                "applications", "signature",
        };
        static const char *const api_versions[] = { DOC_API_VERSION };
        static const char *const kinds[] = { DOC_KIND };
        json_object *v;
        int dummy, role = 0, r;
        size_t mark;
        int64_t rev;

        if ((r = check_fields(d, root, known, ELEMENTSOF(known))) < 0 ||
            (r = field_choice(d, root, "apiVersion", api_versions, 1, &dummy)) < 0 ||
            (r = field_choice(d, root, "kind", kinds, 1, &dummy)) < 0 ||
            (r = field_string(d, root, "host", STRING_HOSTNAME, false, &doc->host)) < 0 ||
            (r = field_choice(d, root, "role", host_role_names, ELEMENTSOF(host_role_names), &role)) < 0)
                return r;
        doc->role = (doc_host_role) role;

        r = member(d, root, "revision", false, &v);
        if (r < 0)
                return r;
        /* Above INT64_MAX json-c stores a uint64 and get_int64() saturates: compare both views. */
        if (json_object_get_type(v) != json_type_int || (rev = json_object_get_int64(v)) < 0 ||
            json_object_get_uint64(v) != (uint64_t) rev) {
                mark = path_push(d, "revision");
                r = fail(d, "must be an integer between 0 and %" PRId64, INT64_MAX);
                path_pop(d, mark);
                return r;
        }
        doc->revision = (uint64_t) rev;

        if ((r = field_string(d, root, "commit", STRING_OPTIONAL_TEXT, false, &doc->commit)) < 0 ||
            (r = field_objects(d, root, "databases", sizeof(doc_database), offsetof(doc_database, name),
                               decode_database, (void **) &doc->databases, &doc->n_databases)) < 0 ||
            (r = field_objects(d, root, "applications", sizeof(doc_app), offsetof(doc_app, name), decode_app,
                               (void **) &doc->apps, &doc->n_apps)) < 0)
                return r;

        r = field_object(d, root, "signature", true, decode_signature, sig);
        if (r < 0)
                return r;
        *has_sig = r > 0;
        return 0;
}

/* Pre-order walk comparing each object's member count with what the lexer saw in the text;
 * the first object that comes up short had a duplicate key. Runs after decode_document(), so
 * every key on the path is a known field name. */
static int check_member_counts(decoder *d, json_object *o, const lexer *l, size_t *k) {
        int r;

        switch (json_object_get_type(o)) {
        case json_type_object:
                if (*k >= l->n_counts || (size_t) json_object_object_length(o) != l->counts[*k])
                        return fail(d, "duplicate field");
                (*k)++;
                json_object_object_foreach(o, key, val) {
                        size_t mark = path_push(d, key);

                        r = check_member_counts(d, val, l, k);
                        path_pop(d, mark);
                        if (r < 0)
                                return r;
                }
                return 0;
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(o); i++) {
                        size_t mark = path_push_index(d, i);

                        r = check_member_counts(d, json_object_array_get_idx(o, i), l, k);
                        path_pop(d, mark);
                        if (r < 0)
                                return r;
                }
                return 0;
        default:
                return 0;
        }
}

int doc_decode(const char *json, size_t size, doc_document **ret, doc_signature *ret_sig,
               bool *ret_has_sig, char **ret_error) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        _cleanup_(json_object_putp) json_object *root = NULL;
        _cleanup_(doc_document_freep) doc_document *doc = NULL;
        _cleanup_free_ char *error = NULL;
        lexer lex = { .s = json, .n = size };
        decoder dec = {};
        doc_signature sig = {};
        bool has_sig = false;
        const char *nul;
        size_t end, k = 0;
        int r;

        if (size > DOC_MAX_SIZE) {
                error = xasprintf("document is too large: %zu bytes, at most %u are accepted", size,
                                  DOC_MAX_SIZE);
                r = -E2BIG;
                goto finish;
        }
        /* The tokener would stop at a NUL and call the rest trailing garbage; say what it is. */
        nul = memchr(json, 0, size);
        if (nul) {
                error = xasprintf("malformed JSON at offset %zu: NUL byte", (size_t) (nul - json));
                r = -EBADMSG;
                goto finish;
        }

        tok = json_tokener_new_ex(DOC_JSON_DEPTH);
        if (!tok)
                oom();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        root = json_tokener_parse_ex(tok, json, (int) size);
        if (!root) {
                enum json_tokener_error jerr = json_tokener_get_error(tok);

                if (jerr == json_tokener_continue || jerr == json_tokener_success)
                        error = xstrdup("malformed JSON: unexpected end of input");
                else
                        error = xasprintf("malformed JSON at offset %zu: %s", json_tokener_get_parse_end(tok),
                                          json_tokener_error_desc(jerr));
                r = -EBADMSG;
                goto finish;
        }
        for (end = json_tokener_get_parse_end(tok); end < size; end++)
                if (!strchr(" \t\n\r", json[end])) {
                        error = xasprintf("malformed JSON at offset %zu: trailing data after the document", end);
                        r = -EBADMSG;
                        goto finish;
                }

        r = lex_strict(&lex);
        if (r < 0) {
                error = xasprintf("malformed JSON at offset %zu: %s", lex.i, lex.error);
                goto finish;
        }

        doc = xcalloc(1, sizeof(doc_document));
        r = decode_document(&dec, root, doc, &sig, &has_sig);
        if (r >= 0)
                r = check_member_counts(&dec, root, &lex, &k);
        if (r < 0) {
                error = TAKE_PTR(dec.error);
                goto finish;
        }

        if (ret_has_sig)
                *ret_has_sig = has_sig;
        if (ret_sig && has_sig)
                *ret_sig = sig;
        if (ret)
                *ret = TAKE_PTR(doc);
        r = 0;
finish:
        free(lex.counts);
        free(dec.error);
        if (r < 0 && ret_error)
                *ret_error = TAKE_PTR(error);
        return r;
}
