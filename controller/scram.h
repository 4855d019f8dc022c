/* SCRAM-SHA-256 verifiers (RFC 5802, RFC 7677) in PostgreSQL's pg_authid.rolpassword format:
 * what a database host needs to authenticate a role without ever holding its password. */
#pragma once

#include <stddef.h>

#define SCRAM_ITERATIONS 4096 /* PostgreSQL's default scram_iterations */
#define SCRAM_SALT_SIZE 16    /* bytes, as PostgreSQL generates them */
#define SCRAM_KEY_SIZE 32     /* SHA-256 output */

/* "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>", each part base64 (with padding), for a
 * fresh random salt. The password must be non-empty printable ASCII (0x20-0x7e): on those,
 * SASLprep is the identity, so the verifier is exactly the one PostgreSQL computes. Anything
 * else gives -EINVAL (the password is never echoed back). -EIO when OpenSSL fails. */
int scram_verifier(const char *password, char **ret);

/* The same with a given salt (1 to 64 bytes), for deterministic tests and for checking. */
int scram_verifier_with_salt(const char *password, const unsigned char *salt, size_t salt_size, char **ret);

/* 0 when verifier is password's verifier (compared in constant time), -EKEYREJECTED when it is
 * another password's, -EINVAL when verifier is not in the format above or password not printable
 * ASCII. */
int scram_verifier_check(const char *verifier, const char *password);
