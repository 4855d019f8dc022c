/* Strict JSON for untrusted input, shared by the desired-state document (document.c) and the
 * agent ↔ controller messages (wire.c): one RFC 8259 reading (json-c plus a lexical re-check
 * that also finds duplicate keys), field-by-field decoding that names the path of the value at
 * fault ("databases[0].roles[1].name: missing"), and the few json-c construction helpers the
 * encoders share. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* Our messages nest at most about six levels; much deeper is hostile, and a low limit bounds
 * the recursion of the checks. */
#define JSONDEC_MAX_DEPTH 16
#define JSONDEC_ECHO_MAX 64 /* how much of an offending value a message quotes */

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

typedef struct jsondec {
        const char *what;   /* "document", "message": names the root in messages */
        char path[256];     /* schema names and indices only, so a fixed buffer is enough */
        size_t len;
        char *error;        /* the first failure, "path: why" */
        uint32_t *counts;   /* members of each object in the text, in order of their '{' */
        size_t n_counts;
} jsondec;

void jsondec_done(jsondec *d);

/* Size limit, NUL bytes, json-c's parse, then the strict lexical pass. 0 and the tree, or
 * -E2BIG/-EBADMSG with d->error set ("message is too large: ...", "malformed JSON at offset
 * 12: ..."). */
int jsondec_parse(jsondec *d, const char *json, size_t size, size_t max_size, json_object **ret);
/* After decoding: an object with fewer members than its text had a duplicate key. */
int jsondec_check_duplicates(jsondec *d, json_object *root);

/* UTF-8 (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF). */
size_t utf8_char_len(const unsigned char *s, size_t n);
bool utf8_is_valid(const char *s, size_t n);

size_t jsondec_push(jsondec *d, const char *key);
size_t jsondec_push_index(jsondec *d, size_t idx);
void jsondec_pop(jsondec *d, size_t mark);
/* Records "path: message" (the first one only) and returns -EBADMSG. */
int jsondec_fail(jsondec *d, const char *fmt, ...) _printf_(2, 3);
/* Same, one level down the path. */
int jsondec_fail_at(jsondec *d, const char *key, const char *fmt, ...) _printf_(3, 4);
/* An offending value, cut to JSONDEC_ECHO_MAX bytes on a character boundary. */
char *jsondec_echo(const char *s);

int jsondec_expect_type(jsondec *d, json_object *v, json_type t);
/* Every member of o must be one of known (a field we would ignore is one the sender meant
 * something by). */
int jsondec_check_fields(jsondec *d, json_object *o, const char *const *known, size_t n_known);
/* 1 and *ret when present, 0 when an optional one is absent, <0 when a required one is missing. */
int jsondec_member(jsondec *d, json_object *o, const char *key, bool optional, json_object **ret);

typedef enum jsondec_string {
        JSONDEC_NAME,          /* an identifier: 1..DOC_NAME_MAX bytes */
        JSONDEC_HOSTNAME,      /* 1..253 bytes */
        JSONDEC_TEXT,          /* 1..1024 bytes */
        JSONDEC_OPTIONAL_TEXT, /* 0..1024 bytes */
        JSONDEC_PEM,           /* 1..64 KiB, lines of printable text */
        JSONDEC_MESSAGE,       /* 1..16 KiB, lines of text: an error message with its output */
        _JSONDEC_STRING_MAX,
} jsondec_string;

/* Strings: no NUL, valid UTF-8, no control characters (PEM, MESSAGE: '\n' and '\r' allowed). */
int jsondec_string_value(jsondec *d, json_object *v, jsondec_string kind, char **ret);
/* With nullable, a JSON null is accepted and leaves *ret NULL. */
int jsondec_field_string(jsondec *d, json_object *o, const char *key, jsondec_string kind, bool optional,
                         char **ret);
int jsondec_field_nullable_string(jsondec *d, json_object *o, const char *key, jsondec_string kind, char **ret);
/* A string that must be one of choices; its index is returned. */
int jsondec_field_choice(jsondec *d, json_object *o, const char *key, const char *const *choices,
                         size_t n_choices, int *ret);
int jsondec_field_int(jsondec *d, json_object *o, const char *key, int lo, int hi, int *ret);
/* lo..max, max at most INT64_MAX. */
int jsondec_field_uint64(jsondec *d, json_object *o, const char *key, uint64_t lo, uint64_t max, uint64_t *ret);
int jsondec_field_bool(jsondec *d, json_object *o, const char *key, bool *ret);
int jsondec_field_strv(jsondec *d, json_object *o, const char *key, jsondec_string kind, char ***ret,
                       size_t *ret_n);

typedef int (*jsondec_element)(jsondec *d, json_object *o, void *elem);
/* A nested object: 1 when decoded, 0 when an optional one is absent. */
int jsondec_field_object(jsondec *d, json_object *o, const char *key, bool optional, jsondec_element decode,
                         void *elem);
/* An array of objects (elem_size each) into *ret; the count grows before each element decodes,
 * so a half-decoded one is freed with its owner. With name_offset >= 0, the elements' names
 * (a char* at that offset) must be strictly increasing in byte order. */
int jsondec_field_objects(jsondec *d, json_object *o, const char *key, size_t elem_size, ssize_t name_offset,
                          jsondec_element decode, void **ret, size_t *ret_n);

void strv_free_n(char **l, size_t n);
/* Exactly n lower-case hexadecimal digits. */
bool is_lower_hex(const char *s, size_t n);

/* ---- encoding: json-c reports allocation failure with NULL; like xmalloc(), we abort ------- */
_Noreturn void jsonenc_oom(void);
json_object *jsonenc_checked(json_object *o);
/* key must be a string literal, added once. */
void jsonenc_add(json_object *o, const char *key, json_object *v);
void jsonenc_append(json_object *a, json_object *v);
json_object *jsonenc_string(const char *s); /* NULL → "" */
json_object *jsonenc_strv(char *const *l, size_t n);
