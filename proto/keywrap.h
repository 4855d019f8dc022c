/* Wrapping a database's data key to one host's enrolled key, so the controller can send it and
 * only that host's private key opens it: ECIES (ephemeral ECDH + HKDF-SHA256 + AES-256-GCM) on
 * the recipient key's own curve, or RSA-OAEP-SHA256 as the key exchange when the host key is RSA.
 * The only file that does this; OpenSSL errors become text here.
 *
 * Wire form: one line of standard, padded base64 (RFC 4648 section 4, no line breaks, the one
 * canonical spelling: unused bits zero) of this binary blob, all integers big-endian:
 *
 *   offset        size  field
 *   0             1     version: 1
 *   1             1     algorithm: 1 = ECDH P-256, 2 = ECDH X25519, 3 = RSA-OAEP-SHA256
 *   2             2     L, the length of the next field
 *   4             L     enc: P-256: the ephemeral public key, uncompressed SEC1 point (L = 65);
 *                            X25519: the ephemeral public key (L = 32);
 *                            RSA: OAEP(SHA-256, MGF1-SHA-256, label "infrastream data key v1")
 *                                 of a fresh 32-byte secret (L = the modulus size, 256..2048)
 *   4+L           12    nonce (random)
 *   16+L          32    ciphertext of the data key
 *   48+L          16    GCM tag
 *
 * Derivation: the shared secret Z is the ECDH output (32 bytes) or the RSA-wrapped secret;
 *   K = HKDF-SHA256(IKM = Z, salt = enc || recipient's DER SubjectPublicKeyInfo,
 *                   info = "infrastream data key v1" 0x00 || context)   (32 bytes)
 *   ciphertext, tag = AES-256-GCM(K, nonce, data key, AAD = blob[0 .. 16+L) || context)
 * so a blob opens only with the recipient's key, only under the context it was sealed for
 * ("org/ou/env/project/db": a wrapped key cannot be moved to another database), and any change
 * to any byte (version and algorithm included) is refused. Every seal is new: a fresh ephemeral
 * key (or RSA secret) and a fresh nonce. */
#pragma once

#include <openssl/evp.h>

#define KEYWRAP_KEY_SIZE 32
#define KEYWRAP_VERSION 1
#define KEYWRAP_CONTEXT_MAX 1024 /* bytes; a context is "org/ou/env/project/db" */
#define KEYWRAP_RSA_BITS_MIN 2048
#define KEYWRAP_RSA_BITS_MAX 16384

enum {
        KEYWRAP_ALG_P256 = 1,
        KEYWRAP_ALG_X25519 = 2,
        KEYWRAP_ALG_RSA_OAEP_SHA256 = 3,
};

/* Wrap key to recipient (a public or private EVP_PKEY: EC P-256, X25519, or RSA of 2048 to 16384
 * bits) under context (1..KEYWRAP_CONTEXT_MAX bytes). *ret_b64: the base64 text (malloc'd).
 * -EOPNOTSUPP for another kind of key, -EINVAL for a bad context, with a message. */
int keywrap_seal(EVP_PKEY *recipient, const char *context, const unsigned char key[KEYWRAP_KEY_SIZE],
                 char **ret_b64, char **ret_error);

/* Unwrap b64 with own_private under context into ret_key (written only on success; the caller
 * wipes it with explicit_bzero after use).
 * -EBADMSG: not a wrapped key (bad base64, unknown version or algorithm, wrong lengths);
 * -EKEYREJECTED: it does not open with this key (sealed to another host's key, tampered with, or
 *   sealed under another context) — one message for all of these, so nothing is learnt from it;
 * -EINVAL: own_private has no private part, or context is bad. */
int keywrap_open(EVP_PKEY *own_private, const char *context, const char *b64, unsigned char ret_key[KEYWRAP_KEY_SIZE],
                 char **ret_error);
