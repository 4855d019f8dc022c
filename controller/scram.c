/* SCRAM-SHA-256 verifiers with OpenSSL: PBKDF2 for the salted password, HMAC and SHA-256 for
 * the keys, base64 as PostgreSQL writes it. */
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>

#include "macro.h"
#include "scram.h"

#define SCRAM_PREFIX "SCRAM-SHA-256$"
#define SALT_MAX 64
#define B64_SIZE(n) (4 * (((n) + 2) / 3) + 1)

static bool printable_ascii(const char *s) {
        if (!s || !*s)
                return false;
        for (; *s; s++)
                if (*s < 0x20 || *s > 0x7e)
                        return false;
        return true;
}

static int hmac_sha256(const unsigned char *key, size_t key_size, const char *data, unsigned char out[SCRAM_KEY_SIZE]) {
        size_t n = 0;

        if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, key_size, (const unsigned char *) data, strlen(data),
                       out, SCRAM_KEY_SIZE, &n) ||
            n != SCRAM_KEY_SIZE)
                return -EIO;
        return 0;
}

/* StoredKey and ServerKey for one password, salt and iteration count. */
static int scram_keys(const char *password, const unsigned char *salt, size_t salt_size, int iterations,
                      unsigned char stored_key[SCRAM_KEY_SIZE], unsigned char server_key[SCRAM_KEY_SIZE]) {
        /* The salted password and the client key are password equivalents: wiped on every path. */
        unsigned char salted[SCRAM_KEY_SIZE], client_key[SCRAM_KEY_SIZE];
        unsigned int n = 0;
        int r = -EIO;

        if (PKCS5_PBKDF2_HMAC(password, (int) strlen(password), salt, (int) salt_size, iterations, EVP_sha256(),
                              SCRAM_KEY_SIZE, salted) != 1)
                goto done;
        if (hmac_sha256(salted, sizeof(salted), "Client Key", client_key) < 0 ||
            hmac_sha256(salted, sizeof(salted), "Server Key", server_key) < 0)
                goto done;
        if (EVP_Digest(client_key, sizeof(client_key), stored_key, &n, EVP_sha256(), NULL) != 1 || n != SCRAM_KEY_SIZE)
                goto done;
        r = 0;
done:
        if (r < 0)
                ERR_clear_error();
        OPENSSL_cleanse(salted, sizeof(salted));
        OPENSSL_cleanse(client_key, sizeof(client_key));
        return r;
}

int scram_verifier_with_salt(const char *password, const unsigned char *salt, size_t salt_size, char **ret) {
        unsigned char stored_key[SCRAM_KEY_SIZE], server_key[SCRAM_KEY_SIZE];
        char b64_salt[B64_SIZE(SALT_MAX)], b64_stored[B64_SIZE(SCRAM_KEY_SIZE)], b64_server[B64_SIZE(SCRAM_KEY_SIZE)];
        int r;

        if (!printable_ascii(password) || !salt || salt_size == 0 || salt_size > SALT_MAX)
                return -EINVAL;
        r = scram_keys(password, salt, salt_size, SCRAM_ITERATIONS, stored_key, server_key);
        if (r < 0)
                return r;
        EVP_EncodeBlock((unsigned char *) b64_salt, salt, (int) salt_size);
        EVP_EncodeBlock((unsigned char *) b64_stored, stored_key, SCRAM_KEY_SIZE);
        EVP_EncodeBlock((unsigned char *) b64_server, server_key, SCRAM_KEY_SIZE);
        *ret = xasprintf(SCRAM_PREFIX "%d:%s$%s:%s", SCRAM_ITERATIONS, b64_salt, b64_stored, b64_server);
        return 0;
}

int scram_verifier(const char *password, char **ret) {
        unsigned char salt[SCRAM_SALT_SIZE];

        if (!printable_ascii(password))
                return -EINVAL;
        if (RAND_bytes(salt, sizeof(salt)) != 1) {
                ERR_clear_error();
                return -EIO;
        }
        return scram_verifier_with_salt(password, salt, sizeof(salt), ret);
}

/* Decode one base64 field of at most max bytes; -EINVAL when it is not canonical base64. */
static int b64_decode(const char *s, size_t len, unsigned char *out, size_t max, size_t *ret_size) {
        unsigned char buf[B64_SIZE(SALT_MAX)];
        int n;
        size_t pad = 0;

        if (len == 0 || len % 4 != 0 || len / 4 * 3 > sizeof(buf))
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                char ch = s[i];
                if (ch == '=') {
                        if (i < len - 2)
                                return -EINVAL;
                        pad++;
                } else if (pad > 0 || !((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                                        (ch >= '0' && ch <= '9') || ch == '+' || ch == '/'))
                        return -EINVAL;
        }
        n = EVP_DecodeBlock(buf, (const unsigned char *) s, (int) len);
        if (n < 0 || (size_t) n < pad || (size_t) n - pad > max)
                return -EINVAL;
        memcpy(out, buf, (size_t) n - pad);
        *ret_size = (size_t) n - pad;
        return 0;
}

int scram_verifier_check(const char *verifier, const char *password) {
        unsigned char salt[SALT_MAX], want_stored[SCRAM_KEY_SIZE], want_server[SCRAM_KEY_SIZE];
        unsigned char stored_key[SCRAM_KEY_SIZE], server_key[SCRAM_KEY_SIZE];
        const char *p, *salt_end, *stored_end;
        size_t salt_size, n1, n2;
        char *end;
        long iterations;
        int r, diff;

        if (!verifier || !printable_ascii(password) || strncmp(verifier, SCRAM_PREFIX, strlen(SCRAM_PREFIX)) != 0)
                return -EINVAL;
        p = verifier + strlen(SCRAM_PREFIX);
        if (*p < '1' || *p > '9')
                return -EINVAL;
        errno = 0;
        iterations = strtol(p, &end, 10);
        /* Bounded so a hostile verifier cannot make us spin: PostgreSQL caps it at INT_MAX. */
        if (errno != 0 || *end != ':' || iterations > 10 * 1000 * 1000)
                return -EINVAL;
        p = end + 1;
        salt_end = strchr(p, '$');
        if (!salt_end)
                return -EINVAL;
        stored_end = strchr(salt_end + 1, ':');
        if (!stored_end)
                return -EINVAL;
        if (b64_decode(p, (size_t) (salt_end - p), salt, sizeof(salt), &salt_size) < 0 ||
            b64_decode(salt_end + 1, (size_t) (stored_end - salt_end - 1), want_stored, sizeof(want_stored), &n1) < 0 ||
            b64_decode(stored_end + 1, strlen(stored_end + 1), want_server, sizeof(want_server), &n2) < 0 ||
            n1 != SCRAM_KEY_SIZE || n2 != SCRAM_KEY_SIZE)
                return -EINVAL;
        r = scram_keys(password, salt, salt_size, (int) iterations, stored_key, server_key);
        if (r < 0)
                return r;
        diff = CRYPTO_memcmp(stored_key, want_stored, SCRAM_KEY_SIZE) |
               CRYPTO_memcmp(server_key, want_server, SCRAM_KEY_SIZE);
        return diff == 0 ? 0 : -EKEYREJECTED;
}
