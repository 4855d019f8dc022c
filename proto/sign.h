/* Ed25519 signing and verification of desired-state documents (OpenSSL EVP). */
#pragma once

#include <stddef.h>

#include "document.h"

/* Generate an Ed25519 key pair; the private key is written PEM (PKCS#8) 0600, atomically, and
 * never replaced if it exists (-EEXIST). */
int sign_generate_key(const char *private_key_path);
/* Write the public key (PEM SubjectPublicKeyInfo) for a private key file. */
int sign_export_public_key(const char *private_key_path, const char *public_key_path);

/* Sign a document: returns the envelope JSON (canonical content plus a "signature" member). */
int sign_document(const doc_document *d, const char *private_key_path, char **ret_json,
                  size_t *ret_size, char **ret_error);

/* Decode and verify a signed document against a trusted public key (PEM file).
 * -EBADMSG malformed, -EKEYREJECTED signature missing/invalid/wrong key. */
int verify_document(const char *json, size_t size, const char *public_key_path,
                    doc_document **ret, char **ret_error);
