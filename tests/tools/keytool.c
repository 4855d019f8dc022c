/* Test tool: open a wrapped data key (keywrap.h) the way an agent does, with the host's private
 * key under the database's context, and print the SHA-256 of what it opened, never the key
 * itself: tests compare hashes, and can grep logs and stores for them. Never installed.
 *
 *   keytool open --key HOST.KEY --context ORG/OU/ENV/PROJECT/DB < WRAPPED
 *       print the lower-case hex SHA-256 of the opened key; exit 1 (the reason on stderr) when
 *       it does not open
 *   keytool absent --key HOST.KEY --context ORG/OU/ENV/PROJECT/DB FILE... < WRAPPED
 *       exit 0 when no FILE holds the opened key (its bytes, hex in either case, base64 or
 *       base64url), 1 naming the first that does
 */
#include <stdint.h>
#include <stdio.h>

#include <openssl/evp.h>

#include "fileio.h"
#include "keywrap.h"
#include "macro.h"
#include "wire.h"
#include "x509.h"

/* The wrapped key from stdin, without the newline a shell pipeline adds. */
static char *read_wrapped(void) {
        size_t cap = WIRE_WRAPPED_KEY_MAX + 2, n;
        char *buf = xmalloc(cap + 1);

        n = fread(buf, 1, cap, stdin);
        if (n == cap) {
                free(buf);
                return NULL;
        }
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                n--;
        buf[n] = '\0';
        return buf;
}

/* The key wrapped on stdin, opened with the private key in key_path under context. */
static int unwrap(const char *key_path, const char *context, unsigned char ret_key[KEYWRAP_KEY_SIZE]) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *k = NULL;
        _cleanup_free_ char *wrapped = read_wrapped(), *err = NULL;
        int r;

        if (!wrapped) {
                fprintf(stderr, "keytool: stdin: more than %d characters, not a wrapped key\n", WIRE_WRAPPED_KEY_MAX);
                return -E2BIG;
        }
        r = x509_key_from_file(key_path, &k, &err);
        if (r < 0) {
                fprintf(stderr, "keytool: %s\n", err ? err : strerror(-r));
                return r;
        }
        r = keywrap_open(k, context, wrapped, ret_key, &err);
        if (r < 0)
                fprintf(stderr, "keytool: open: %s\n", err ? err : strerror(-r));
        return r;
}

static int print_hash(const unsigned char key[KEYWRAP_KEY_SIZE]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int len = 0;

        if (EVP_Digest(key, KEYWRAP_KEY_SIZE, md, &len, EVP_sha256(), NULL) != 1 || len != 32) {
                fputs("keytool: SHA-256 failed\n", stderr);
                return 1;
        }
        for (unsigned int i = 0; i < len; i++)
                printf("%02x", md[i]);
        putchar('\n');
        return 0;
}

/* Every spelling of the key a leak could take: raw, hex, base64 and base64url (the first 43
 * characters: the same with or without padding). */
static int check_absent(const unsigned char key[KEYWRAP_KEY_SIZE], char **files, int n) {
        char forms[5][2 * KEYWRAP_KEY_SIZE + 1] = {};
        size_t lens[5] = { 2 * KEYWRAP_KEY_SIZE, 2 * KEYWRAP_KEY_SIZE, 43, 43, 0 };
        int found = -1;

        for (size_t i = 0; i < KEYWRAP_KEY_SIZE; i++) {
                snprintf(forms[0] + 2 * i, 3, "%02x", key[i]);
                snprintf(forms[1] + 2 * i, 3, "%02X", key[i]);
        }
        EVP_EncodeBlock((unsigned char *) forms[2], key, KEYWRAP_KEY_SIZE);
        for (size_t i = 0; i < 43; i++)
                forms[3][i] = forms[2][i] == '+' ? '-' : forms[2][i] == '/' ? '_' : forms[2][i];
        memcpy(forms[4], key, KEYWRAP_KEY_SIZE);
        lens[4] = KEYWRAP_KEY_SIZE;

        for (int f = 0; f < n && found < 0; f++) {
                _cleanup_free_ char *data = NULL;
                size_t size = 0;
                int r = read_full_file(files[f], 1024u * 1024u * 1024u, &data, &size);

                if (r < 0) {
                        fprintf(stderr, "keytool: %s: %s\n", files[f], strerror(-r));
                        found = f;
                        break;
                }
                for (size_t i = 0; i < ELEMENTSOF(forms) && found < 0; i++)
                        if (memmem(data, size, forms[i], lens[i]))
                                found = f;
                explicit_bzero(data, size);
        }
        explicit_bzero(forms, sizeof(forms));
        if (found >= 0) {
                fprintf(stderr, "keytool: %s holds the key\n", files[found]);
                return 1;
        }
        return 0;
}

int main(int argc, char **argv) {
        unsigned char key[KEYWRAP_KEY_SIZE];
        int r;

        if (argc < 6 || !streq(argv[2], "--key") || !streq(argv[4], "--context") ||
            !(streq(argv[1], "open") ? argc == 6 : streq(argv[1], "absent") && argc > 6)) {
                fputs("usage: keytool open --key HOST.KEY --context ORG/OU/ENV/PROJECT/DB < WRAPPED\n"
                      "       keytool absent --key HOST.KEY --context ORG/OU/ENV/PROJECT/DB FILE... < WRAPPED\n",
                      stderr);
                return 2;
        }
        if (unwrap(argv[3], argv[5], key) < 0)
                return 1;
        r = streq(argv[1], "open") ? print_hash(key) : check_absent(key, argv + 6, argc - 6);
        explicit_bzero(key, sizeof(key));
        return r;
}
