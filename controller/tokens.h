/* One-time enrollment tokens: the options of 'token create' (lifetime, role, labels, the host it
 * may re-enroll), creation
 * (the secret is shown once and stored only as its verifier and CA-binding key), and the check
 * of a token an agent presents. Token format and derivations: proto/wire.h. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define TOKENS_TTL_DEFAULT 3600          /* 1 hour */
#define TOKENS_TTL_MAX (7 * 86400)       /* a token is for a host being set up now, not next month */
#define TOKENS_ROLE_DEFAULT "database"
#define TOKENS_LABELS_MAX 32
#define TOKENS_LABEL_MAX_LEN 63          /* a key or a value */

/* "30m", "1h", "2d" (ca_parse_lifetime()'s syntax), 1 second .. TOKENS_TTL_MAX. */
int tokens_parse_ttl(const char *s, int64_t *ret, char **ret_error);
/* "database" or "application". */
int tokens_check_role(const char *role, char **ret_error);
/* "k=v,k=v" → the same, checked: keys 1–63 lower-case letters, digits, '-', '_', '.', starting and
 * ending with a letter or digit; values 1–63 letters, digits, '-', '_', '.'; no key twice; at most
 * TOKENS_LABELS_MAX; the 'environment' label must be a lower-case DNS label (placement matches it
 * against manifests' metadata.environment). "" is no labels. *ret gets the normalised text. */
int tokens_parse_labels(const char *s, char **ret, char **ret_error);
/* Split labels as stored (already checked) into parallel arrays; free with tokens_labels_free(). */
void tokens_split_labels(const char *s, char ***ret_keys, char ***ret_values, size_t *ret_n);
void tokens_labels_free(char **keys, char **values, size_t n);

/* 'token create --replace HOST': HOST must be a host name that is enrolled now. -EINVAL not a host
 * name, -ENOENT not enrolled (a plain token enrolls it); *ret (optional) gets the host's record,
 * whose role and labels are the token's unless given. */
int tokens_check_replace(store *s, const char *host, stored_host *ret, char **ret_error);

/* Create a token valid for ttl seconds from now, record it (its verifier and binding key, not the
 * secret) and return "<id>.<secret>" in *ret_token (erase_and_free() it) and what was stored in
 * *ret (optional). role, labels and replaces (NULL: a token for a new host) must have been checked. */
int tokens_create(store *s, const char *role, const char *labels, const char *replaces, int64_t ttl, int64_t now,
                  char **ret_token, stored_token *ret, char **ret_error);

/* Check a presented token and return its record. In order: -EBADMSG not of the token's form,
 * -ENOENT unknown id, -EACCES wrong secret (compared in constant time), -EALREADY used,
 * -ETIME expired. Messages name the token's id, never its secret. */
int tokens_check(store *s, const char *token, int64_t now, stored_token *ret, char **ret_error);
/* tokens_check(), then the name rule, then mark it used by host — inside the caller's transaction,
 * which must hold the write lock (store_begin()) so that no other enrollment changes the hosts
 * between the rule and the caller recording the host. The rule: a token without 'replaces'
 * enrolls only a name not enrolled yet (-EEXIST otherwise), one with it only that name (-EPERM for
 * another). Neither refusal marks the token used. 0: host is a new name; 1: host is enrolled and
 * the token replaces its enrollment. */
int tokens_consume(store *s, const char *token, const char *host, int64_t now, stored_token *ret, char **ret_error);
/* The -EEXIST message: host is enrolled, and says how to make a token that may replace it. */
char *tokens_enrolled_error(const char *host);
