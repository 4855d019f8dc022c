/* Data keys wrapped to a host's enrolled key (the format and derivation are in keywrap.h). Every
 * buffer that held a secret — shared secrets, derived keys, the key itself — is wiped here. */
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/kdf.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "keywrap.h"
#include "macro.h"
#include "x509.h"

#define LABEL "infrastream data key v1"
#define NONCE_SIZE 12
#define TAG_SIZE 16
#define HEADER_SIZE 4
#define P256_POINT_SIZE 65
#define X25519_SIZE 32
#define RSA_ENC_MIN (KEYWRAP_RSA_BITS_MIN / 8)
#define RSA_ENC_MAX (KEYWRAP_RSA_BITS_MAX / 8)
#define BLOB_MAX (HEADER_SIZE + RSA_ENC_MAX + NONCE_SIZE + KEYWRAP_KEY_SIZE + TAG_SIZE)
#define B64_MAX (4 * ((BLOB_MAX + 2) / 3))

static const char rejected[] = "the wrapped key does not open with this host's key (another host's, or tampered)";

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY_CTX *, EVP_PKEY_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_KDF *, EVP_KDF_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_KDF_CTX *, EVP_KDF_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIGNUM *, BN_clear_free);

static void openssl_freep(unsigned char **p) {
        OPENSSL_free(*p);
}

/* A buffer that held a secret of a known size. */
typedef struct {
        unsigned char *p;
        size_t n;
} secret_buf;

static void secret_buf_done(secret_buf *s) {
        if (s->p) {
                explicit_bzero(s->p, s->n);
                free(s->p);
        }
}

static int fail(char **ret_error, int r, char *msg) {
        if (ret_error)
                *ret_error = msg;
        else
                free(msg);
        return r;
}

static int context_check(const char *context, char **ret_error) {
        size_t n = context ? strnlen(context, KEYWRAP_CONTEXT_MAX + 1) : 0;

        /* An empty context would let one wrapped key stand for any database. */
        if (n == 0 || n > KEYWRAP_CONTEXT_MAX)
                return fail(ret_error, -EINVAL,
                            xasprintf("the key-wrap context must be 1 to %d bytes", KEYWRAP_CONTEXT_MAX));
        return 0;
}

/* Which algorithm a key calls for; -EOPNOTSUPP with a message for any other kind of key. */
static int key_alg(EVP_PKEY *k, char **ret_error) {
        char group[64];
        int bits, nid;

        switch (EVP_PKEY_get_base_id(k)) {
        case EVP_PKEY_EC:
                if (EVP_PKEY_get_group_name(k, group, sizeof(group), NULL) != 1) {
                        ERR_clear_error();
                        return fail(ret_error, -EOPNOTSUPP, xstrdup("an EC key without a named curve cannot receive wrapped keys"));
                }
                nid = OBJ_sn2nid(group);
                if (nid == NID_undef)
                        nid = EC_curve_nist2nid(group);
                if (nid != NID_X9_62_prime256v1)
                        return fail(ret_error, -EOPNOTSUPP,
                                    xasprintf("an EC key on curve '%s' cannot receive wrapped keys (P-256 only)", group));
                return KEYWRAP_ALG_P256;
        case EVP_PKEY_X25519:
                return KEYWRAP_ALG_X25519;
        case EVP_PKEY_RSA:
                bits = EVP_PKEY_get_bits(k);
                if (bits < KEYWRAP_RSA_BITS_MIN || bits > KEYWRAP_RSA_BITS_MAX)
                        return fail(ret_error, -EOPNOTSUPP,
                                    xasprintf("an RSA key of %d bits cannot receive wrapped keys (%d to %d bits)", bits,
                                              KEYWRAP_RSA_BITS_MIN, KEYWRAP_RSA_BITS_MAX));
                return KEYWRAP_ALG_RSA_OAEP_SHA256;
        default:
                return fail(ret_error, -EOPNOTSUPP,
                            xasprintf("a key of type %s cannot receive wrapped keys (EC P-256, X25519 or RSA only)",
                                      strempty(OBJ_nid2sn(EVP_PKEY_get_base_id(k)))));
        }
}

static bool has_private(EVP_PKEY *k, int alg) {
        _cleanup_(BN_clear_freep) BIGNUM *bn = NULL;
        size_t n = 0;
        bool r;

        switch (alg) {
        case KEYWRAP_ALG_P256:
                r = EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1;
                break;
        case KEYWRAP_ALG_X25519:
                r = EVP_PKEY_get_raw_private_key(k, NULL, &n) == 1 && n == X25519_SIZE;
                break;
        default:
                r = EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_D, &bn) == 1;
                break;
        }
        ERR_clear_error();
        return r;
}

/* ECDH: 32 bytes for both curves. The peer key is checked by EVP_PKEY_derive_set_peer (point on
 * the curve) and X25519's all-zero output is refused by OpenSSL. */
static int ecdh(EVP_PKEY *priv, EVP_PKEY *peer, unsigned char z[32]) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, priv, NULL);
        size_t n = 32;

        if (!c || EVP_PKEY_derive_init(c) != 1 || EVP_PKEY_derive_set_peer(c, peer) != 1 ||
            EVP_PKEY_derive(c, z, &n) != 1 || n != 32) {
                explicit_bzero(z, 32);
                return -EIO;
        }
        return 0;
}

static EVP_PKEY_CTX *rsa_ctx(EVP_PKEY *k, bool encrypt) {
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k, NULL);
        unsigned char *label;

        if (!c || (encrypt ? EVP_PKEY_encrypt_init(c) : EVP_PKEY_decrypt_init(c)) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) != 1 || EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) != 1)
                return NULL;
        /* set0: OpenSSL takes the label on success only. */
        label = OPENSSL_memdup(LABEL, strlen(LABEL));
        if (!label)
                return NULL;
        if (EVP_PKEY_CTX_set0_rsa_oaep_label(c, label, (int) strlen(LABEL)) != 1) {
                OPENSSL_free(label);
                return NULL;
        }
        return TAKE_PTR(c);
}

/* K = HKDF-SHA256(Z, salt = enc || SPKI(recipient), info = LABEL 0x00 || context). */
static int derive_key(const unsigned char *z, size_t z_size, const unsigned char *enc, size_t enc_size, EVP_PKEY *recipient,
                      const char *context, unsigned char k[32]) {
        _cleanup_(EVP_KDF_freep) EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
        _cleanup_(EVP_KDF_CTX_freep) EVP_KDF_CTX *kc = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
        _cleanup_(openssl_freep) unsigned char *spki = NULL;
        _cleanup_free_ unsigned char *salt = NULL, *info = NULL;
        size_t label_size = strlen(LABEL) + 1, context_size = strlen(context);
        char digest[] = "SHA256";
        int spki_size;

        spki_size = i2d_PUBKEY(recipient, &spki);
        if (!kc || spki_size <= 0)
                return -EIO;
        salt = xmalloc(enc_size + (size_t) spki_size);
        memcpy(salt, enc, enc_size);
        memcpy(salt + enc_size, spki, (size_t) spki_size);
        info = xmalloc(label_size + context_size);
        memcpy(info, LABEL, label_size); /* the NUL included: the label cannot run into the context */
        memcpy(info + label_size, context, context_size);

        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
                OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) z, z_size),
                OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, salt, enc_size + (size_t) spki_size),
                OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, label_size + context_size),
                OSSL_PARAM_construct_end(),
        };
        if (EVP_KDF_derive(kc, k, 32, params) != 1) {
                explicit_bzero(k, 32);
                return -EIO;
        }
        return 0;
}

/* AES-256-GCM over the key, AAD = the blob's header up to the ciphertext || context. Seals when
 * tag is to be written, opens (checking the tag) otherwise; 0 or -EBADMSG (tag mismatch). */
static int gcm(bool seal, const unsigned char k[32], const unsigned char *aad, size_t aad_size, const char *context,
               const unsigned char nonce[NONCE_SIZE], const unsigned char *in, unsigned char *out, unsigned char tag[TAG_SIZE]) {
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
        int n;

        if (!c || EVP_CipherInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL, seal) != 1 ||
            EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, NONCE_SIZE, NULL) != 1 ||
            EVP_CipherInit_ex(c, NULL, NULL, k, nonce, seal) != 1 || EVP_CipherUpdate(c, NULL, &n, aad, (int) aad_size) != 1 ||
            EVP_CipherUpdate(c, NULL, &n, (const unsigned char *) context, (int) strlen(context)) != 1 ||
            EVP_CipherUpdate(c, out, &n, in, KEYWRAP_KEY_SIZE) != 1 || n != KEYWRAP_KEY_SIZE)
                return -EIO;
        if (!seal && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_SIZE, tag) != 1)
                return -EIO;
        if (EVP_CipherFinal_ex(c, out + n, &n) != 1)
                return -EBADMSG;
        if (seal && EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_SIZE, tag) != 1)
                return -EIO;
        return 0;
}

static size_t enc_size_for(int alg, EVP_PKEY *k) {
        switch (alg) {
        case KEYWRAP_ALG_P256:
                return P256_POINT_SIZE;
        case KEYWRAP_ALG_X25519:
                return X25519_SIZE;
        default:
                return (size_t) EVP_PKEY_get_size(k);
        }
}

/* The ephemeral half: enc into the blob, Z out. */
static int encapsulate(int alg, EVP_PKEY *recipient, unsigned char *enc, size_t enc_size, unsigned char z[32],
                       char **ret_error) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *eph = NULL;
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *c = NULL;
        _cleanup_(openssl_freep) unsigned char *point = NULL;
        size_t n;

        switch (alg) {
        case KEYWRAP_ALG_P256:
                eph = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                if (!eph)
                        return fail(ret_error, -EIO, x509_openssl_error("cannot generate an ephemeral P-256 key"));
                /* Uncompressed: the one encoding we accept, so enc has one spelling. */
                if (EVP_PKEY_set_utf8_string_param(eph, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                                                   OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) != 1 ||
                    EVP_PKEY_get1_encoded_public_key(eph, &point) != enc_size || point[0] != 0x04)
                        return fail(ret_error, -EIO, x509_openssl_error("cannot encode the ephemeral P-256 key"));
                memcpy(enc, point, enc_size);
                break;
        case KEYWRAP_ALG_X25519:
                eph = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
                n = enc_size;
                if (!eph || EVP_PKEY_get_raw_public_key(eph, enc, &n) != 1 || n != enc_size)
                        return fail(ret_error, -EIO, x509_openssl_error("cannot generate an ephemeral X25519 key"));
                break;
        default:
                if (RAND_bytes(z, 32) != 1)
                        return fail(ret_error, -EIO, x509_openssl_error("cannot draw a random secret"));
                c = rsa_ctx(recipient, true);
                n = enc_size;
                if (!c || EVP_PKEY_encrypt(c, enc, &n, z, 32) != 1 || n != enc_size) {
                        explicit_bzero(z, 32);
                        return fail(ret_error, -EIO, x509_openssl_error("cannot encrypt with the host's RSA key"));
                }
                return 0;
        }
        if (ecdh(eph, recipient, z) < 0)
                return fail(ret_error, -EIO, x509_openssl_error("cannot agree a key with the host's key"));
        return 0;
}

int keywrap_seal(EVP_PKEY *recipient, const char *context, const unsigned char key[KEYWRAP_KEY_SIZE], char **ret_b64,
                 char **ret_error) {
        _cleanup_free_ unsigned char *blob = NULL;
        _cleanup_free_ char *b64 = NULL;
        unsigned char z[32], k[32];
        size_t enc_size, size;
        int alg, r;

        r = context_check(context, ret_error);
        if (r < 0)
                return r;
        if (!recipient || !key)
                return fail(ret_error, -EINVAL, xstrdup("no key to wrap to"));
        alg = key_alg(recipient, ret_error);
        if (alg < 0)
                return alg;
        enc_size = enc_size_for(alg, recipient);
        size = HEADER_SIZE + enc_size + NONCE_SIZE + KEYWRAP_KEY_SIZE + TAG_SIZE;
        blob = xmalloc(size);
        blob[0] = KEYWRAP_VERSION;
        blob[1] = (unsigned char) alg;
        blob[2] = (unsigned char) (enc_size >> 8);
        blob[3] = (unsigned char) enc_size;

        r = encapsulate(alg, recipient, blob + HEADER_SIZE, enc_size, z, ret_error);
        if (r < 0)
                return r;
        unsigned char *nonce = blob + HEADER_SIZE + enc_size, *ct = nonce + NONCE_SIZE, *tag = ct + KEYWRAP_KEY_SIZE;
        if (RAND_bytes(nonce, NONCE_SIZE) != 1) {
                explicit_bzero(z, sizeof(z));
                return fail(ret_error, -EIO, x509_openssl_error("cannot draw a nonce"));
        }
        r = derive_key(z, sizeof(z), blob + HEADER_SIZE, enc_size, recipient, context, k);
        explicit_bzero(z, sizeof(z));
        if (r < 0)
                return fail(ret_error, r, x509_openssl_error("cannot derive the wrapping key"));
        r = gcm(true, k, blob, HEADER_SIZE + enc_size + NONCE_SIZE, context, nonce, key, ct, tag);
        explicit_bzero(k, sizeof(k));
        if (r < 0)
                return fail(ret_error, -EIO, x509_openssl_error("cannot encrypt the data key"));

        b64 = xmalloc(4 * ((size + 2) / 3) + 1);
        EVP_EncodeBlock((unsigned char *) b64, blob, (int) size);
        *ret_b64 = TAKE_PTR(b64);
        return 0;
}

/* Strict base64: the alphabet, '=' only as final padding, and the one canonical spelling (no
 * blanks, unused bits zero), so every change to the text is a change to the blob or refused. */
static int b64_decode(const char *s, unsigned char **ret, size_t *ret_size) {
        _cleanup_free_ unsigned char *out = NULL;
        _cleanup_free_ char *again = NULL;
        size_t n = strnlen(s, B64_MAX + 1), pad = 0;
        int m;

        if (n == 0 || n > B64_MAX || n % 4 != 0)
                return -EBADMSG;
        if (s[n - 1] == '=')
                pad = s[n - 2] == '=' ? 2 : 1;
        for (size_t i = 0; i < n - pad; i++)
                if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
                      s[i] == '+' || s[i] == '/'))
                        return -EBADMSG;
        out = xmalloc(n / 4 * 3);
        m = EVP_DecodeBlock(out, (const unsigned char *) s, (int) n);
        if (m < 0 || (size_t) m != n / 4 * 3)
                return -EBADMSG;
        m -= (int) pad;
        again = xmalloc(n + 1);
        if (EVP_EncodeBlock((unsigned char *) again, out, m) != (int) n || memcmp(again, s, n) != 0)
                return -EBADMSG;
        *ret = TAKE_PTR(out);
        *ret_size = (size_t) m;
        return 0;
}

int keywrap_open(EVP_PKEY *own_private, const char *context, const char *b64, unsigned char ret_key[KEYWRAP_KEY_SIZE],
                 char **ret_error) {
        _cleanup_free_ unsigned char *blob = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *peer = NULL;
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *c = NULL;
        _cleanup_(secret_buf_done) secret_buf plain = { NULL, 0 };
        unsigned char z[32], k[32], out[KEYWRAP_KEY_SIZE], tag[TAG_SIZE];
        size_t size, enc_size;
        int alg, own_alg, r;

        r = context_check(context, ret_error);
        if (r < 0)
                return r;
        if (!own_private)
                return fail(ret_error, -EINVAL, xstrdup("no key to open the wrapped key with"));
        if (!b64 || b64_decode(b64, &blob, &size) < 0)
                return fail(ret_error, -EBADMSG, xstrdup("the wrapped key is not base64 text"));

        /* The structure first: anything off here is not a wrapped key at all. */
        if (size < HEADER_SIZE)
                return fail(ret_error, -EBADMSG, xstrdup("the wrapped key is truncated"));
        if (blob[0] != KEYWRAP_VERSION)
                return fail(ret_error, -EBADMSG, xasprintf("the wrapped key has unknown version %u", blob[0]));
        alg = blob[1];
        enc_size = (size_t) blob[2] << 8 | blob[3];
        if (size != HEADER_SIZE + enc_size + NONCE_SIZE + KEYWRAP_KEY_SIZE + TAG_SIZE)
                return fail(ret_error, -EBADMSG, xstrdup("the wrapped key has the wrong length (truncated?)"));
        switch (alg) {
        case KEYWRAP_ALG_P256:
                r = enc_size == P256_POINT_SIZE && blob[HEADER_SIZE] == 0x04;
                break;
        case KEYWRAP_ALG_X25519:
                r = enc_size == X25519_SIZE;
                break;
        case KEYWRAP_ALG_RSA_OAEP_SHA256:
                r = enc_size >= RSA_ENC_MIN && enc_size <= RSA_ENC_MAX;
                break;
        default:
                return fail(ret_error, -EBADMSG, xasprintf("the wrapped key has unknown algorithm %u", blob[1]));
        }
        if (!r)
                return fail(ret_error, -EBADMSG, xstrdup("the wrapped key's ephemeral key has the wrong size"));

        own_alg = key_alg(own_private, ret_error);
        if (own_alg < 0)
                return own_alg;
        if (!has_private(own_private, own_alg))
                return fail(ret_error, -EINVAL, xstrdup("cannot open a wrapped key with a public key"));
        /* Sealed to a key of another kind or size: another host's. */
        if (alg != own_alg || enc_size != enc_size_for(own_alg, own_private))
                return fail(ret_error, -EKEYREJECTED, xstrdup(rejected));

        const unsigned char *enc = blob + HEADER_SIZE, *nonce = enc + enc_size, *ct = nonce + NONCE_SIZE;
        memcpy(tag, ct + KEYWRAP_KEY_SIZE, TAG_SIZE);
        switch (alg) {
        case KEYWRAP_ALG_P256: {
                char group[] = "P-256";
                OSSL_PARAM params[] = {
                        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
                        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *) enc, enc_size),
                        OSSL_PARAM_construct_end(),
                };
                c = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
                if (!c || EVP_PKEY_fromdata_init(c) != 1 || EVP_PKEY_fromdata(c, &peer, EVP_PKEY_PUBLIC_KEY, params) != 1)
                        peer = NULL;
                break;
        }
        case KEYWRAP_ALG_X25519:
                peer = EVP_PKEY_new_raw_public_key(EVP_PKEY_X25519, NULL, enc, enc_size);
                break;
        default:
                break;
        }

        if (alg == KEYWRAP_ALG_RSA_OAEP_SHA256) {
                /* A failed OAEP decryption goes on with a random secret and fails at the tag like
                 * any other wrong key: no padding oracle (Manger) in how or when we refuse. */
                plain.n = enc_size;
                plain.p = xmalloc(plain.n);
                size_t n = plain.n;
                c = rsa_ctx(own_private, false);
                if (!c)
                        return fail(ret_error, -EIO, x509_openssl_error("cannot set up RSA-OAEP"));
                bool ok = EVP_PKEY_decrypt(c, plain.p, &n, enc, enc_size) == 1 && n == 32;
                if (RAND_bytes(z, sizeof(z)) != 1)
                        return fail(ret_error, -EIO, x509_openssl_error("cannot draw a random secret"));
                if (ok)
                        memcpy(z, plain.p, sizeof(z));
        } else if (!peer || ecdh(own_private, peer, z) < 0) {
                /* Not a point on the curve (or a low-order X25519 point): changed in transit. */
                ERR_clear_error();
                return fail(ret_error, -EKEYREJECTED, xstrdup(rejected));
        }
        ERR_clear_error();

        r = derive_key(z, sizeof(z), enc, enc_size, own_private, context, k);
        explicit_bzero(z, sizeof(z));
        if (r < 0)
                return fail(ret_error, r, x509_openssl_error("cannot derive the wrapping key"));
        r = gcm(false, k, blob, HEADER_SIZE + enc_size + NONCE_SIZE, context, nonce, ct, out, tag);
        explicit_bzero(k, sizeof(k));
        if (r < 0) {
                explicit_bzero(out, sizeof(out));
                ERR_clear_error();
                if (r == -EBADMSG)
                        return fail(ret_error, -EKEYREJECTED, xstrdup(rejected));
                return fail(ret_error, r, x509_openssl_error("cannot decrypt the data key"));
        }
        memcpy(ret_key, out, KEYWRAP_KEY_SIZE);
        explicit_bzero(out, sizeof(out));
        return 0;
}
