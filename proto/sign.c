/* Ed25519 keys, signed envelopes and their verification; the only file that talks to OpenSSL's
 * signature API. OpenSSL errors become text here and travel back through ret_error. */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include <json-c/json.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "fileio.h"
#include "macro.h"
#include "sign.h"
#include "x509.h"

/* Must match document.c, so an envelope reads like the document it wraps. */
#define SIGN_JSON_FLAGS (JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE)

#define KEY_FILE_MAX (64u * 1024u)

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_MD_CTX *, EVP_MD_CTX_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

/* json-c signals allocation failure with NULL or -1; like xmalloc(), we do not limp on. */
static json_object *checked(json_object *o) {
        if (!o) {
                fputs("fatal: out of memory\n", stderr);
                abort();
        }
        return o;
}

static void add(json_object *o, const char *key, json_object *v) {
        if (json_object_object_add(o, key, checked(v)) < 0)
                checked(NULL);
}

static void set_error(char **ret_error, char *msg) {
        if (ret_error)
                *ret_error = msg;
        else
                free(msg);
}

static void hex(const unsigned char *p, size_t n, char *ret) {
        for (size_t i = 0; i < n; i++)
                snprintf(ret + 2 * i, 3, "%02x", p[i]);
}

static int sha256_hex(const void *data, size_t size, char ret[65]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;

        if (EVP_Digest(data, size, md, &len, EVP_sha256(), NULL) != 1 || len != 32)
                return -ENOMEM;
        hex(md, 32, ret);
        return 0;
}

/* The key id names a key in messages and envelopes: the first 16 hex digits of the SHA-256 of
 * the raw 32-byte public key, the same whether computed from the private or public half. */
static int key_id(EVP_PKEY *pkey, char ret[17]) {
        unsigned char raw[32];
        size_t len = sizeof(raw);
        char full[65];
        int r;

        if (EVP_PKEY_get_raw_public_key(pkey, raw, &len) != 1 || len != sizeof(raw))
                return -EINVAL;
        r = sha256_hex(raw, len, full);
        if (r < 0)
                return r;
        memcpy(ret, full, 16);
        ret[16] = '\0';
        return 0;
}

/* A daemon must never stop to ask for a passphrase on a terminal: encrypted keys just fail. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata) {
        return -1;
}

/* Parsing a PEM key (OpenSSL 3's decoders) costs more than signing or verifying with it, once
 * per document: the last key of each kind is kept, found by the SHA-256 of the file's bytes, so
 * a file that changed is parsed (and checked) again. The agent verifies on two threads. */
static struct {
        unsigned char digest[SHA256_DIGEST_LENGTH];
        EVP_PKEY *pkey;
} key_cache[2]; /* [private] */
static pthread_mutex_t key_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static EVP_PKEY *key_cache_get(bool private, const unsigned char *digest) {
        EVP_PKEY *pkey = NULL;

        pthread_mutex_lock(&key_cache_lock);
        if (key_cache[private].pkey && memcmp(key_cache[private].digest, digest, SHA256_DIGEST_LENGTH) == 0 &&
            EVP_PKEY_up_ref(key_cache[private].pkey) == 1)
                pkey = key_cache[private].pkey;
        pthread_mutex_unlock(&key_cache_lock);
        return pkey;
}

static void key_cache_put(bool private, const unsigned char *digest, EVP_PKEY *pkey) {
        if (EVP_PKEY_up_ref(pkey) != 1)
                return;
        pthread_mutex_lock(&key_cache_lock);
        EVP_PKEY_free(key_cache[private].pkey);
        memcpy(key_cache[private].digest, digest, SHA256_DIGEST_LENGTH);
        key_cache[private].pkey = pkey;
        pthread_mutex_unlock(&key_cache_lock);
}

static int load_key(const char *path, bool private, EVP_PKEY **ret, char **ret_error) {
        _cleanup_erase_ char *pem = NULL;
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        unsigned char digest[SHA256_DIGEST_LENGTH];
        bool hashed;
        size_t size;
        int r;

        r = read_full_file(path, KEY_FILE_MAX, &pem, &size);
        if (r < 0) {
                set_error(ret_error, xasprintf("cannot read %s key '%s': %s", private ? "private" : "public",
                                               path, strerror(-r)));
                return r;
        }
        hashed = EVP_Digest(pem, size, digest, NULL, EVP_sha256(), NULL) == 1;
        if (hashed && (pkey = key_cache_get(private, digest))) {
                explicit_bzero(pem, size);
                *ret = TAKE_PTR(pkey);
                return 0;
        }
        bio = BIO_new_mem_buf(pem, (int) size);
        if (!bio) {
                set_error(ret_error, x509_openssl_error("cannot allocate a BIO"));
                return -ENOMEM;
        }
        pkey = private ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
                       : PEM_read_bio_PUBKEY(bio, NULL, no_passphrase, NULL);
        /* _cleanup_erase_ stops at the first NUL; the file may hold any bytes. */
        explicit_bzero(pem, size);
        if (!pkey) {
                _cleanup_free_ char *what = xasprintf("cannot parse %s key '%s'", private ? "private" : "public", path);
                set_error(ret_error, x509_openssl_error(what));
                return -EINVAL;
        }
        if (!EVP_PKEY_is_a(pkey, "ED25519")) {
                set_error(ret_error, xasprintf("%s key '%s' is not an Ed25519 key", private ? "private" : "public", path));
                return -EINVAL;
        }
        if (hashed)
                key_cache_put(private, digest, pkey);
        *ret = TAKE_PTR(pkey);
        return 0;
}

/* Write what a PEM writer produced into a memory BIO to path. */
static int write_bio(BIO *bio, const char *path, mode_t mode) {
        char *data;
        long len;

        len = BIO_get_mem_data(bio, &data);
        if (len <= 0)
                return -EIO;
        return write_file_atomic(path, data, (size_t) len, mode);
}

int sign_generate_key(const char *private_key_path) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        /* Claim the name with O_EXCL first: a key may already be trusted by every agent, and
         * write_file_atomic()'s rename would replace it. A racing second run stops here too. */
        fd = open_new_secret_file(private_key_path);
        if (fd < 0)
                return fd;

        pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        /* Secure-heap memory BIO: the PEM text is wiped when the BIO is freed. */
        bio = BIO_new(BIO_s_secmem());
        if (!pkey || !bio || PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
                /* No ret_error here to carry OpenSSL's text; the errno is all the caller gets. */
                ERR_clear_error();
                r = -EIO;
                goto fail;
        }
        r = write_bio(bio, private_key_path, 0600);
        if (r < 0)
                goto fail;
        return 0;
fail:
        (void) unlink(private_key_path);
        return r;
}

int sign_export_public_key(const char *private_key_path, const char *public_key_path) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        _cleanup_(BIO_free_allp) BIO *bio = NULL;
        _cleanup_free_ char *error = NULL;
        int r;

        r = load_key(private_key_path, true, &pkey, &error);
        if (r < 0)
                return r;
        bio = BIO_new(BIO_s_mem());
        if (!bio || PEM_write_bio_PUBKEY(bio, pkey) != 1) {
                ERR_clear_error();
                return -EIO;
        }
        r = write_bio(bio, public_key_path, 0644);
        return r < 0 ? r : 0;
}

int sign_document(const doc_document *d, const char *private_key_path, char **ret_json,
                  size_t *ret_size, char **ret_error) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        _cleanup_(json_object_putp) json_object *envelope = NULL;
        _cleanup_erase_ char *content = NULL; /* holds passwords */
        unsigned char sig[64];
        char id[17], sha[65], value[89];
        json_object *s;
        size_t size, sig_len = sizeof(sig);
        const char *text;
        char *out;
        int r;

        r = load_key(private_key_path, true, &pkey, ret_error);
        if (r < 0)
                return r;

        /* What is signed is exactly doc_encode()'s output; verifiers re-encode the content they
         * decoded and check the signature over those bytes, never over the envelope's text. */
        content = doc_encode(d, &size);
        r = sha256_hex(content, size, sha);
        if (r >= 0)
                r = key_id(pkey, id);
        if (r < 0) {
                set_error(ret_error, x509_openssl_error("cannot hash the document"));
                return r;
        }

        ctx = EVP_MD_CTX_new();
        /* Ed25519 is a one-shot scheme: no digest is named and EVP_DigestSign() takes it all. */
        if (!ctx || EVP_DigestSignInit(ctx, NULL, NULL, NULL, pkey) != 1 ||
            EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *) content, size) != 1 ||
            sig_len != sizeof(sig)) {
                set_error(ret_error, x509_openssl_error("cannot sign the document"));
                return -EIO;
        }
        EVP_EncodeBlock((unsigned char *) value, sig, sizeof(sig));

        /* The envelope is the content object with "signature" appended as the last member. */
        envelope = json_tokener_parse(content);
        if (!envelope) {
                set_error(ret_error, xstrdup("cannot build the envelope: the encoded document does not parse"));
                return -EIO;
        }
        s = checked(json_object_new_object());
        add(s, "algorithm", json_object_new_string("ed25519"));
        add(s, "keyId", json_object_new_string(id));
        add(s, "sha256", json_object_new_string(sha));
        add(s, "value", json_object_new_string(value));
        add(envelope, "signature", s);

        text = json_object_to_json_string_length(envelope, SIGN_JSON_FLAGS, &size);
        if (!text)
                checked(NULL);
        out = xmalloc(size + 2);
        memcpy(out, text, size);
        out[size] = '\n';
        out[size + 1] = '\0';
        *ret_json = out;
        if (ret_size)
                *ret_size = size + 1;
        return 0;
}

int verify_document(const char *json, size_t size, const char *public_key_path,
                    doc_document **ret, char **ret_error) {
        _cleanup_(doc_document_freep) doc_document *d = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *pkey = NULL;
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *ctx = NULL;
        _cleanup_erase_ char *content = NULL; /* holds passwords */
        doc_signature sig = {};
        char trusted[17], sha[65];
        bool has_sig = false;
        size_t content_size;
        int r;

        /* Strict decoding comes first: nothing below looks at input the decoder did not accept. */
        r = doc_decode(json, size, &d, &sig, &has_sig, ret_error);
        if (r < 0)
                return r;
        if (!has_sig) {
                set_error(ret_error, xstrdup("document is not signed"));
                return -EKEYREJECTED;
        }

        r = load_key(public_key_path, false, &pkey, ret_error);
        if (r < 0)
                return r;

        content = doc_encode(d, &content_size);
        r = sha256_hex(content, content_size, sha);
        if (r >= 0)
                r = key_id(pkey, trusted);
        if (r < 0) {
                set_error(ret_error, x509_openssl_error("cannot hash the document"));
                return r;
        }
        /* Both checks only make the message precise; the signature below is what decides. */
        if (!streq(sha, sig.sha256)) {
                set_error(ret_error, xasprintf("document content does not match its signed sha256 %s", sig.sha256));
                return -EKEYREJECTED;
        }
        if (!streq(trusted, sig.key_id)) {
                set_error(ret_error, xasprintf("signature was made with key %s but this host trusts key %s",
                                               sig.key_id, trusted));
                return -EKEYREJECTED;
        }

        ctx = EVP_MD_CTX_new();
        if (!ctx || EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pkey) != 1) {
                set_error(ret_error, x509_openssl_error("cannot set up signature verification"));
                return -ENOMEM;
        }
        r = EVP_DigestVerify(ctx, sig.sig, sizeof(sig.sig), (const unsigned char *) content, content_size);
        if (r != 1) {
                /* 0 is a bad signature; <0 an internal failure, which is no better an answer. */
                ERR_clear_error();
                set_error(ret_error, xstrdup("signature does not verify"));
                return -EKEYREJECTED;
        }

        if (ret)
                *ret = TAKE_PTR(d);
        return 0;
}
