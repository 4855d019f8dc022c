/* Strict JSON decoding with field paths, shared by the document and the wire messages: the first
 * code that runs on bytes from the network, so it refuses everything outside RFC 8259. */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>

#include "jsondec.h"

#define HOSTNAME_MAX 253    /* RFC 1035 presentation form */
#define NAME_MAX_LEN 63     /* DOC_NAME_MAX */
#define TEXT_MAX 1024       /* schedules, verifiers, passwords, messages */
#define PEM_MAX (64 * 1024) /* a certificate chain or a request, with room */
#define MESSAGE_MAX (16 * 1024)

DEFINE_TRIVIAL_CLEANUP_FUNC(json_tokener *, json_tokener_free);

/* ---- encoding helpers ---------------------------------------------------------------------- */

_Noreturn void jsonenc_oom(void) {
        fputs("fatal: out of memory\n", stderr);
        abort();
}

json_object *jsonenc_checked(json_object *o) {
        if (!o)
                jsonenc_oom();
        return o;
}

void jsonenc_add(json_object *o, const char *key, json_object *v) {
        /* Keys are string literals and each is added once: skip json-c's copy and lookup. */
        if (json_object_object_add_ex(o, key, jsonenc_checked(v),
                                      JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY) < 0)
                jsonenc_oom();
}

void jsonenc_append(json_object *a, json_object *v) {
        if (json_object_array_add(a, jsonenc_checked(v)) < 0)
                jsonenc_oom();
}

json_object *jsonenc_string(const char *s) {
        return jsonenc_checked(json_object_new_string(strempty(s)));
}

json_object *jsonenc_strv(char *const *l, size_t n) {
        json_object *a = jsonenc_checked(json_object_new_array_ext((int) n));

        for (size_t i = 0; i < n; i++)
                jsonenc_append(a, jsonenc_string(l[i]));
        return a;
}

void strv_free_n(char **l, size_t n) {
        if (!l)
                return;
        for (size_t i = 0; i < n; i++)
                free(l[i]);
        free(l);
}

bool is_lower_hex(const char *s, size_t n) {
        if (strlen(s) != n)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(s[i] >= '0' && s[i] <= '9') && !(s[i] >= 'a' && s[i] <= 'f'))
                        return false;
        return true;
}

/* ---- strict lexical pass ------------------------------------------------------------------- */

size_t utf8_char_len(const unsigned char *s, size_t n) {
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

bool utf8_is_valid(const char *s, size_t n) {
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
        uint32_t *counts;
        size_t n_counts, alloc_counts;
} lexer;

static int lex_fail(lexer *l, const char *why) {
        l->error = why;
        return -EBADMSG;
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
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
        } stack[JSONDEC_MAX_DEPTH + 1];
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

void jsondec_done(jsondec *d) {
        free(d->error);
        d->error = NULL;
        free(d->counts);
        d->counts = NULL;
        d->n_counts = 0;
}

int jsondec_parse(jsondec *d, const char *json, size_t size, size_t max_size, json_object **ret) {
        _cleanup_(json_tokener_freep) json_tokener *tok = NULL;
        _cleanup_(json_object_putp) json_object *root = NULL;
        lexer lex = { .s = json, .n = size };
        const char *nul;
        int r;

        if (size > max_size) {
                d->error = xasprintf("%s is too large: %zu bytes, at most %zu are accepted", d->what, size,
                                     max_size);
                return -E2BIG;
        }
        /* The tokener would stop at a NUL and call the rest trailing garbage; say what it is. */
        nul = memchr(json, 0, size);
        if (nul) {
                d->error = xasprintf("malformed JSON at offset %zu: NUL byte", (size_t) (nul - json));
                return -EBADMSG;
        }

        tok = json_tokener_new_ex(JSONDEC_MAX_DEPTH);
        if (!tok)
                jsonenc_oom();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        root = json_tokener_parse_ex(tok, json, (int) size);
        if (!root) {
                enum json_tokener_error jerr = json_tokener_get_error(tok);

                if (jerr == json_tokener_continue || jerr == json_tokener_success)
                        d->error = xstrdup("malformed JSON: unexpected end of input");
                else
                        d->error = xasprintf("malformed JSON at offset %zu: %s", json_tokener_get_parse_end(tok),
                                             json_tokener_error_desc(jerr));
                return -EBADMSG;
        }
        for (size_t end = json_tokener_get_parse_end(tok); end < size; end++)
                if (!strchr(" \t\n\r", json[end])) {
                        d->error = xasprintf("malformed JSON at offset %zu: trailing data after the %s", end,
                                             d->what);
                        return -EBADMSG;
                }

        r = lex_strict(&lex);
        if (r < 0) {
                d->error = xasprintf("malformed JSON at offset %zu: %s", lex.i, lex.error);
                free(lex.counts);
                return r;
        }
        free(d->counts);
        d->counts = lex.counts;
        d->n_counts = lex.n_counts;
        *ret = TAKE_PTR(root);
        return 0;
}

/* ---- paths and messages -------------------------------------------------------------------- */

/* Account for what snprintf() wrote; on truncation the path just ends early. */
static void path_grew(jsondec *d, int k) {
        if (k > 0)
                d->len += (size_t) k;
        if (d->len >= sizeof(d->path))
                d->len = sizeof(d->path) - 1;
}

size_t jsondec_push(jsondec *d, const char *key) {
        size_t mark = d->len;

        path_grew(d, snprintf(d->path + d->len, sizeof(d->path) - d->len, "%s%s", d->len > 0 ? "." : "", key));
        return mark;
}

size_t jsondec_push_index(jsondec *d, size_t idx) {
        size_t mark = d->len;

        path_grew(d, snprintf(d->path + d->len, sizeof(d->path) - d->len, "[%zu]", idx));
        return mark;
}

void jsondec_pop(jsondec *d, size_t mark) {
        d->len = mark;
        d->path[mark] = '\0';
}

_printf_(2, 0) static int failv(jsondec *d, const char *fmt, va_list ap) {
        _cleanup_free_ char *msg = NULL;

        if (vasprintf(&msg, fmt, ap) < 0)
                jsonenc_oom();
        /* Keep the first error: it is the one nearest the cause. */
        if (!d->error)
                d->error = xasprintf("%s: %s", d->len > 0 ? d->path : d->what, msg);
        return -EBADMSG;
}

int jsondec_fail(jsondec *d, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = failv(d, fmt, ap);
        va_end(ap);
        return r;
}

int jsondec_fail_at(jsondec *d, const char *key, const char *fmt, ...) {
        size_t mark = jsondec_push(d, key);
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = failv(d, fmt, ap);
        va_end(ap);
        jsondec_pop(d, mark);
        return r;
}

char *jsondec_echo(const char *s) {
        size_t n = strlen(s), cut = 0;

        if (n <= JSONDEC_ECHO_MAX)
                return xstrdup(s);
        while (cut < JSONDEC_ECHO_MAX) {
                size_t l = utf8_char_len((const unsigned char *) s + cut, n - cut);
                if (l == 0 || cut + l > JSONDEC_ECHO_MAX)
                        break;
                cut += l;
        }
        return xasprintf("%.*s...", (int) cut, s);
}

/* Same for a field name we do not know: it may hold anything, so control bytes become '?'. */
static char *echo_key(const char *s) {
        char *e = jsondec_echo(s);

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

/* ---- fields -------------------------------------------------------------------------------- */

int jsondec_expect_type(jsondec *d, json_object *v, json_type t) {
        if (json_object_get_type(v) != t)
                return jsondec_fail(d, "expected %s", type_noun(t));
        return 0;
}

int jsondec_check_fields(jsondec *d, json_object *o, const char *const *known, size_t n_known) {
        int r = jsondec_expect_type(d, o, json_type_object);
        if (r < 0)
                return r;

        json_object_object_foreach(o, key, val) {
                bool ok = false;

                (void) val;
                for (size_t i = 0; i < n_known && !ok; i++)
                        ok = streq(key, known[i]);
                if (!ok) {
                        _cleanup_free_ char *e = echo_key(key);
                        return jsondec_fail(d, "unknown field '%s'", e);
                }
        }
        return 0;
}

int jsondec_member(jsondec *d, json_object *o, const char *key, bool optional, json_object **ret) {
        if (!json_object_object_get_ex(o, key, ret)) {
                if (optional)
                        return 0;
                return jsondec_fail_at(d, key, "missing");
        }
        return 1;
}

static const struct {
        size_t min, max;
        bool lines;
} string_kinds[_JSONDEC_STRING_MAX] = {
        [JSONDEC_NAME] = { 1, NAME_MAX_LEN, false },
        [JSONDEC_HOSTNAME] = { 1, HOSTNAME_MAX, false },
        [JSONDEC_TEXT] = { 1, TEXT_MAX, false },
        [JSONDEC_OPTIONAL_TEXT] = { 0, TEXT_MAX, false },
        [JSONDEC_PEM] = { 1, PEM_MAX, true },
        [JSONDEC_MESSAGE] = { 1, MESSAGE_MAX, true },
};

int jsondec_string_value(jsondec *d, json_object *v, jsondec_string kind, char **ret) {
        size_t len, max = string_kinds[kind].max;
        const char *s;
        int r;

        r = jsondec_expect_type(d, v, json_type_string);
        if (r < 0)
                return r;
        s = json_object_get_string(v);
        len = (size_t) json_object_get_string_len(v);

        if (memchr(s, 0, len))
                return jsondec_fail(d, "must not contain NUL characters");
        if (len < string_kinds[kind].min)
                return jsondec_fail(d, "must not be empty");
        if (len > max)
                return jsondec_fail(d, "longer than %zu bytes", max);
        if (!utf8_is_valid(s, len))
                return jsondec_fail(d, "is not valid UTF-8");
        for (size_t i = 0; i < len; i++)
                if (((unsigned char) s[i] < 0x20 || s[i] == 0x7f) &&
                    !(string_kinds[kind].lines && (s[i] == '\n' || s[i] == '\r')))
                        return jsondec_fail(d, "must not contain control characters");
        *ret = xstrndup(s, len);
        return 0;
}

typedef struct string_target {
        jsondec_string kind;
        char **ret;
} string_target;

static int decode_string_target(jsondec *d, json_object *v, void *elem) {
        string_target *t = elem;

        return jsondec_string_value(d, v, t->kind, t->ret);
}

static int field_string_full(jsondec *d, json_object *o, const char *key, jsondec_string kind, bool optional,
                             bool nullable, char **ret) {
        string_target t = { .kind = kind, .ret = ret };
        json_object *v;
        int r;

        if (nullable && json_object_object_get_ex(o, key, &v) && !v)
                return 0;
        r = jsondec_field_object(d, o, key, optional, decode_string_target, &t);
        return r < 0 ? r : 0;
}

int jsondec_field_string(jsondec *d, json_object *o, const char *key, jsondec_string kind, bool optional,
                         char **ret) {
        return field_string_full(d, o, key, kind, optional, false, ret);
}

int jsondec_field_nullable_string(jsondec *d, json_object *o, const char *key, jsondec_string kind, char **ret) {
        return field_string_full(d, o, key, kind, false, true, ret);
}

int jsondec_field_choice(jsondec *d, json_object *o, const char *key, const char *const *choices,
                         size_t n_choices, int *ret) {
        _cleanup_free_ char *s = NULL, *e = NULL;
        int r;

        r = jsondec_field_string(d, o, key, JSONDEC_TEXT, false, &s);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_choices; i++)
                if (streq(s, choices[i])) {
                        *ret = (int) i;
                        return 0;
                }
        e = jsondec_echo(s);
        if (n_choices == 1)
                return jsondec_fail_at(d, key, "expected '%s', got '%s'", choices[0], e);
        if (n_choices == 2)
                return jsondec_fail_at(d, key, "expected '%s' or '%s', got '%s'", choices[0], choices[1], e);
        return jsondec_fail_at(d, key, "expected '%s', '%s' or '%s', got '%s'", choices[0], choices[1],
                               choices[2], e);
}

/* Only a JSON integer literal is an integer here: json-c turns 1.0 and 1e3 into doubles and "5"
 * into a string. Out-of-range literals saturate, which the range catches; above INT64_MAX json-c
 * keeps a uint64 while get_int64() says INT64_MAX, so both views are compared. */
static int field_integer(jsondec *d, json_object *o, const char *key, int64_t lo, int64_t hi, int64_t *ret) {
        json_object *v;
        int64_t i;
        int r;

        r = jsondec_member(d, o, key, false, &v);
        if (r < 0)
                return r;
        if (json_object_get_type(v) != json_type_int || (i = json_object_get_int64(v)) < lo || i > hi ||
            (i == INT64_MAX && json_object_get_uint64(v) != (uint64_t) INT64_MAX))
                return jsondec_fail_at(d, key, "must be an integer between %" PRId64 " and %" PRId64, lo, hi);
        *ret = i;
        return 0;
}

int jsondec_field_int(jsondec *d, json_object *o, const char *key, int lo, int hi, int *ret) {
        int64_t i;
        int r = field_integer(d, o, key, lo, hi, &i);

        if (r >= 0)
                *ret = (int) i;
        return r;
}

int jsondec_field_uint64(jsondec *d, json_object *o, const char *key, uint64_t lo, uint64_t max, uint64_t *ret) {
        int64_t i;
        int r;

        assert(max <= INT64_MAX);
        r = field_integer(d, o, key, (int64_t) lo, (int64_t) max, &i);
        if (r >= 0)
                *ret = (uint64_t) i;
        return r;
}

int jsondec_field_bool(jsondec *d, json_object *o, const char *key, bool *ret) {
        json_object *v;
        size_t mark;
        int r;

        r = jsondec_member(d, o, key, false, &v);
        if (r < 0)
                return r;
        mark = jsondec_push(d, key);
        r = jsondec_expect_type(d, v, json_type_boolean);
        if (r >= 0)
                *ret = json_object_get_boolean(v);
        jsondec_pop(d, mark);
        return r;
}

/* An array under key, one element (elem_size bytes, zeroed) per item, each filled by each().
 * The array is attached to its owner, counted whole, before filling: a failure halfway is freed
 * with the owner. */
static int field_array(jsondec *d, json_object *o, const char *key, size_t elem_size,
                       int (*each)(jsondec *d, json_object *v, char *elem, void *ctx), void *ctx, void **ret,
                       size_t *ret_n) {
        json_object *v;
        size_t mark, n;
        int r;

        r = jsondec_member(d, o, key, false, &v);
        if (r < 0)
                return r;
        mark = jsondec_push(d, key);
        r = jsondec_expect_type(d, v, json_type_array);
        if (r < 0)
                goto finish;
        n = json_object_array_length(v);
        *ret = xcalloc(n, elem_size);
        *ret_n = n;
        for (size_t i = 0; i < n && r >= 0; i++) {
                size_t m = jsondec_push_index(d, i);

                r = each(d, json_object_array_get_idx(v, i), (char *) *ret + i * elem_size, ctx);
                jsondec_pop(d, m);
        }
finish:
        jsondec_pop(d, mark);
        return r;
}

static int each_string(jsondec *d, json_object *v, char *elem, void *ctx) {
        return jsondec_string_value(d, v, *(jsondec_string *) ctx, (char **) elem);
}

int jsondec_field_strv(jsondec *d, json_object *o, const char *key, jsondec_string kind, char ***ret,
                       size_t *ret_n) {
        return field_array(d, o, key, sizeof(char *), each_string, &kind, (void **) ret, ret_n);
}

int jsondec_field_object(jsondec *d, json_object *o, const char *key, bool optional, jsondec_element decode,
                         void *elem) {
        json_object *v;
        size_t mark;
        int r;

        r = jsondec_member(d, o, key, optional, &v);
        if (r <= 0)
                return r;
        mark = jsondec_push(d, key);
        r = decode(d, v, elem);
        jsondec_pop(d, mark);
        return r < 0 ? r : 1;
}

typedef struct objects_ctx {
        jsondec_element decode;
        size_t elem_size;
        ssize_t name_offset;
        void **array;           /* where field_array() puts the elements */
} objects_ctx;

/* Canonical form requires names strictly increasing in byte order: hashes and signatures then
 * depend on the content only, and duplicates cannot hide. */
static int each_object(jsondec *d, json_object *v, char *elem, void *ctx) {
        const objects_ctx *c = ctx;
        const char *prev, *cur;
        _cleanup_free_ char *e = NULL;
        int r, cmp;

        r = c->decode(d, v, elem);
        if (r < 0 || c->name_offset < 0 || elem == *c->array)
                return r;
        prev = *(char **) (elem - c->elem_size + c->name_offset);
        cur = *(char **) (elem + c->name_offset);
        cmp = strcmp(prev, cur);
        if (cmp < 0)
                return 0;
        e = jsondec_echo(cur);
        if (cmp == 0)
                return jsondec_fail_at(d, "name", "duplicate name '%s'", e);
        return jsondec_fail_at(d, "name", "'%s' is out of order: entries must be sorted by name", e);
}

int jsondec_field_objects(jsondec *d, json_object *o, const char *key, size_t elem_size, ssize_t name_offset,
                          jsondec_element decode, void **ret, size_t *ret_n) {
        objects_ctx c = { .decode = decode, .elem_size = elem_size, .name_offset = name_offset, .array = ret };

        return field_array(d, o, key, elem_size, each_object, &c, ret, ret_n);
}

/* Pre-order walk comparing each object's member count with what the lexer saw in the text;
 * the first object that comes up short had a duplicate key. */
static int check_counts(jsondec *d, json_object *o, size_t *k) {
        int r;

        switch (json_object_get_type(o)) {
        case json_type_object:
                if (*k >= d->n_counts || (size_t) json_object_object_length(o) != d->counts[*k])
                        return jsondec_fail(d, "duplicate field");
                (*k)++;
                json_object_object_foreach(o, key, val) {
                        /* Keys of kept-as-JSON subtrees are the sender's: print them safely. */
                        _cleanup_free_ char *e = echo_key(key);
                        size_t mark = jsondec_push(d, e);

                        r = check_counts(d, val, k);
                        jsondec_pop(d, mark);
                        if (r < 0)
                                return r;
                }
                return 0;
        case json_type_array:
                for (size_t i = 0; i < json_object_array_length(o); i++) {
                        size_t mark = jsondec_push_index(d, i);

                        r = check_counts(d, json_object_array_get_idx(o, i), k);
                        jsondec_pop(d, mark);
                        if (r < 0)
                                return r;
                }
                return 0;
        default:
                return 0;
        }
}

int jsondec_check_duplicates(jsondec *d, json_object *root) {
        size_t k = 0;

        return check_counts(d, root, &k);
}
