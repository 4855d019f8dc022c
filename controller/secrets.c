/* Secrets: random passwords sealed with AES-256-GCM under the master key, each bound to its grant
 * by the AAD, with the SCRAM verifier stored beside it; and the databases' backup repository
 * passphrases and data keys, sealed alike and bound to their database. The master key and every
 * plaintext are wiped from memory on every path. */
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <time.h>

#include "fileio.h"
#include "macro.h"
#include "scram.h"
#include "secrets.h"

/* Stored form: version (1 byte) || nonce (12) || ciphertext || GCM tag (16). */
#define SEAL_VERSION 1
#define NONCE_SIZE 12
#define TAG_SIZE 16
#define SEAL_OVERHEAD (1 + NONCE_SIZE + TAG_SIZE)
#define PASSWORD_MAX 1024
#define AAD_LABEL "infrastream secret v1"
#define PASSPHRASE_AAD_LABEL "infrastream backup passphrase v1"
#define DATA_KEY_AAD_LABEL "infrastream data key v1"
#define KEY_ID_META "master_key_id"
#define KEY_ID_LABEL "infrastream master key id"

struct secrets {
        store *store;
        unsigned char key[SECRETS_MASTER_KEY_SIZE];
        char key_id[17];      /* hex of the first 8 bytes of HMAC-SHA256(key, KEY_ID_LABEL) */
};

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_CIPHER_CTX *, EVP_CIPHER_CTX_free)

int secrets_create_master_key(const char *state_dir) {
        _cleanup_free_ char *tmp = xasprintf(".#%s.%ld.tmp", SECRETS_MASTER_KEY_FILE, (long) getpid());
        _cleanup_close_ int dirfd = -1, fd = -1;
        unsigned char key[SECRETS_MASTER_KEY_SIZE];
        struct stat st;
        int r;

        dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dirfd < 0)
                return -errno;
        if (fstatat(dirfd, SECRETS_MASTER_KEY_FILE, &st, AT_SYMLINK_NOFOLLOW) == 0)
                return 0;
        if (errno != ENOENT)
                return -errno;

        /* The mode is set at creation, before the key is written. */
        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;
        if (RAND_bytes(key, sizeof(key)) != 1) {
                ERR_clear_error();
                r = -EIO;
                goto fail;
        }
        r = write_all(fd, key, sizeof(key));
        OPENSSL_cleanse(key, sizeof(key));
        if (r < 0)
                goto fail;
        if (fchmod(fd, 0600) < 0 || fsync(fd) < 0) {
                r = -errno;
                goto fail;
        }
        /* linkat() fails when the name exists, where renameat() would replace it: every secret in
         * the store is sealed with this key, so not even a concurrent init may swap it. */
        if (linkat(dirfd, tmp, dirfd, SECRETS_MASTER_KEY_FILE, 0) < 0) {
                r = errno == EEXIST ? 0 : -errno;
                goto fail;
        }
        (void) unlinkat(dirfd, tmp, 0);
        (void) fsync(dirfd);
        return 1;
fail:
        (void) unlinkat(dirfd, tmp, 0);
        return r;
}

static int read_master_key(const char *path, unsigned char key[SECRETS_MASTER_KEY_SIZE], char **ret_error) {
        _cleanup_close_ int fd = -1;
        struct stat st;
        size_t off = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
        if (fd < 0) {
                int r = -errno;
                *ret_error = r == -ENOENT
                        ? xasprintf("there is no master key %s (run 'infrastream-controller init' to create it)", path)
                        : xasprintf("cannot open the master key %s: %s", path, strerror(-r));
                return r;
        }
        if (fstat(fd, &st) < 0) {
                int r = -errno;
                *ret_error = xasprintf("cannot read the master key %s: %s", path, strerror(-r));
                return r;
        }
        if (!S_ISREG(st.st_mode)) {
                *ret_error = xasprintf("the master key %s is not a regular file", path);
                return -EBADMSG;
        }
        if ((st.st_mode & 077) != 0) {
                *ret_error = xasprintf("the master key %s is accessible to other users (mode %04o); it must be 0600",
                                       path, (unsigned) (st.st_mode & 07777));
                return -EPERM;
        }
        if (st.st_size != SECRETS_MASTER_KEY_SIZE) {
                *ret_error = xasprintf("the master key %s has %lld bytes, not %d", path, (long long) st.st_size,
                                       SECRETS_MASTER_KEY_SIZE);
                return -EBADMSG;
        }
        /* Straight into the caller's buffer: no copy of the key is left in freed memory. */
        while (off < SECRETS_MASTER_KEY_SIZE) {
                ssize_t n = read(fd, key + off, SECRETS_MASTER_KEY_SIZE - off);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int r = n < 0 ? -errno : -EBADMSG;
                        *ret_error = xasprintf("cannot read the master key %s: %s", path,
                                               n < 0 ? strerror(-r) : "file shrank while reading");
                        return r;
                }
                off += (size_t) n;
        }
        return 0;
}

int secrets_open(store *s, const char *state_dir, secrets **ret, char **ret_error) {
        _cleanup_free_ char *path = xasprintf("%s/%s", state_dir, SECRETS_MASTER_KEY_FILE), *recorded = NULL,
                            *error = NULL;
        _cleanup_(secrets_closep) secrets *x = xcalloc(1, sizeof(secrets));
        unsigned char mac[32];
        size_t n = 0;
        int r;

        x->store = s;
        r = read_master_key(path, x->key, &error);
        if (r < 0) {
                if (ret_error)
                        *ret_error = TAKE_PTR(error);
                return r;
        }
        /* A key check value: the store remembers which key sealed its secrets, so a restored
         * state.db with another master.key fails here, clearly, not one decryption at a time. */
        if (!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, x->key, sizeof(x->key),
                       (const unsigned char *) KEY_ID_LABEL, strlen(KEY_ID_LABEL), mac, sizeof(mac), &n) ||
            n != sizeof(mac)) {
                ERR_clear_error();
                if (ret_error)
                        *ret_error = xasprintf("cannot derive the master key's id: OpenSSL failed");
                return -EIO;
        }
        for (size_t i = 0; i < 8; i++)
                snprintf(x->key_id + 2 * i, 3, "%02x", mac[i]);
        r = store_get_meta(s, KEY_ID_META, &recorded);
        if (r >= 0) {
                if (!streq(recorded, x->key_id)) {
                        if (ret_error)
                                *ret_error = xasprintf("the master key %s (id %s) is not the key the state store's "
                                                       "secrets are sealed with (id %s)",
                                                       path, x->key_id, recorded);
                        return -EKEYREJECTED;
                }
        } else if (r != -ENOENT) {
                if (ret_error)
                        *ret_error = xasprintf("cannot read the state store: %s", strerror(-r));
                return r;
        }
        *ret = TAKE_PTR(x);
        return 0;
}

void secrets_close(secrets *x) {
        if (!x)
                return;
        OPENSSL_cleanse(x->key, sizeof(x->key));
        free(x);
}

/* What a ciphertext belongs to: "label\0application\0database" for a grant's password,
 * "label\0database" for a database's passphrase or data key. Keys hold no NUL and the labels
 * differ, so the encoding is unambiguous: no row opens as another, nor a password as a passphrase
 * or a passphrase as a data key. */
typedef struct aad {
        unsigned char *data;
        size_t size;
} aad;

static aad make_aad(const char *label, const char *first, const char *second) {
        const char *const parts[] = { label, first, second };
        size_t n = 0, total = 0;
        aad a;

        for (size_t i = 0; i < ELEMENTSOF(parts) && parts[i]; i++)
                total += strlen(parts[i]) + 1;
        a.data = xmalloc(total);
        for (size_t i = 0; i < ELEMENTSOF(parts) && parts[i]; i++) {
                size_t len = strlen(parts[i]) + 1;
                memcpy(a.data + n, parts[i], len);
                n += len;
        }
        a.size = total - 1; /* without the last NUL */
        return a;
}

static aad grant_aad(const char *application_key, const char *database_key) {
        return make_aad(AAD_LABEL, application_key, database_key);
}

static aad passphrase_aad(const char *database_key) {
        return make_aad(PASSPHRASE_AAD_LABEL, database_key, NULL);
}

static aad data_key_aad(const char *database_key) {
        return make_aad(DATA_KEY_AAD_LABEL, database_key, NULL);
}

static void aad_done(aad *a) {
        free(a->data);
}

static int seal(const secrets *x, const aad *ad, const void *plain, size_t n_plain, unsigned char **ret,
                size_t *ret_size) {
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        size_t size = SEAL_OVERHEAD + n_plain;
        _cleanup_free_ unsigned char *out = xmalloc(size);
        unsigned char *nonce = out + 1, *ct = out + 1 + NONCE_SIZE, *tag = ct + n_plain;
        int len = 0, fin = 0;

        out[0] = SEAL_VERSION;
        /* A random 96-bit nonce per secret: one key seals at most a few thousand secrets, far below
         * GCM's random-nonce limit. */
        if (!ctx || RAND_bytes(nonce, NONCE_SIZE) != 1 ||
            EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_SIZE, NULL) != 1 ||
            EVP_EncryptInit_ex(ctx, NULL, NULL, x->key, nonce) != 1 ||
            EVP_EncryptUpdate(ctx, NULL, &len, ad->data, (int) ad->size) != 1 ||
            EVP_EncryptUpdate(ctx, ct, &len, (const unsigned char *) plain, (int) n_plain) != 1 ||
            EVP_EncryptFinal_ex(ctx, ct + len, &fin) != 1 || (size_t) (len + fin) != n_plain ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_SIZE, tag) != 1) {
                ERR_clear_error();
                return -EIO;
        }
        *ret = TAKE_PTR(out);
        *ret_size = size;
        return 0;
}

static bool printable_ascii(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] > 0x7e)
                        return false;
        return n > 0;
}

/* Decrypt and authenticate in (size > SEAL_OVERHEAD bytes, the version checked by the caller) into
 * plain, which has room for size - SEAL_OVERHEAD bytes. */
static int open_sealed(const secrets *x, const aad *ad, const unsigned char *in, size_t size, unsigned char *plain) {
        _cleanup_(EVP_CIPHER_CTX_freep) EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
        size_t n_plain = size - SEAL_OVERHEAD;
        unsigned char tag[TAG_SIZE];
        int len = 0, fin = 0, ok;

        memcpy(tag, in + size - TAG_SIZE, TAG_SIZE);
        if (!ctx || EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_SIZE, NULL) != 1 ||
            EVP_DecryptInit_ex(ctx, NULL, NULL, x->key, in + 1) != 1 ||
            EVP_DecryptUpdate(ctx, NULL, &len, ad->data, (int) ad->size) != 1 ||
            EVP_DecryptUpdate(ctx, plain, &len, in + 1 + NONCE_SIZE, (int) n_plain) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_SIZE, tag) != 1) {
                ERR_clear_error();
                explicit_bzero(plain, n_plain);
                return -EIO;
        }
        ok = EVP_DecryptFinal_ex(ctx, plain + len, &fin);
        ERR_clear_error();
        /* GCM hands out plaintext before the tag is checked: an unauthenticated one is wiped. */
        if (ok != 1 || (size_t) (len + fin) != n_plain) {
                explicit_bzero(plain, n_plain);
                return ok != 1 ? -EKEYREJECTED : -EBADMSG;
        }
        return 0;
}

static int unseal(const secrets *x, const aad *ad, const unsigned char *in, size_t size, char **ret) {
        _cleanup_erase_ char *plain = NULL;
        size_t n_plain;
        int r;

        if (size <= SEAL_OVERHEAD || size > SEAL_OVERHEAD + PASSWORD_MAX || in[0] != SEAL_VERSION)
                return -EBADMSG;
        n_plain = size - SEAL_OVERHEAD;
        /* Zeroed, so erase_and_free() wipes it all even after a partial decryption (it measures
         * with strlen(), which may stop early on a garbage NUL: the failures wipe n_plain bytes). */
        plain = xcalloc(1, n_plain + 1);
        r = open_sealed(x, ad, in, size, (unsigned char *) plain);
        if (r < 0)
                return r;
        if (!printable_ascii(plain, n_plain)) {
                explicit_bzero(plain, n_plain);
                return -EBADMSG;
        }
        *ret = TAKE_PTR(plain);
        return 0;
}

/* A data key is 32 bytes of anything: only its size is checked besides the tag. */
static int unseal_data_key(const secrets *x, const aad *ad, const unsigned char *in, size_t size,
                           uint8_t ret_key[SECRETS_DATA_KEY_SIZE]) {
        uint8_t key[SECRETS_DATA_KEY_SIZE];
        int r;

        if (size != SEAL_OVERHEAD + sizeof(key) || in[0] != SEAL_VERSION)
                return -EBADMSG;
        r = open_sealed(x, ad, in, size, key);
        if (r >= 0)
                memcpy(ret_key, key, sizeof(key));
        explicit_bzero(key, sizeof(key));
        return r;
}

/* 32 bytes from the CSPRNG as base64url without padding: 43 characters of [A-Za-z0-9_-], safe in
 * a connection string and SASLprep's identity. */
static int generate_password(char **ret) {
        unsigned char raw[SECRETS_PASSWORD_BYTES];
        char b64[4 * ((SECRETS_PASSWORD_BYTES + 2) / 3) + 1];
        size_t len = 0;
        int n;

        if (RAND_bytes(raw, sizeof(raw)) != 1) {
                ERR_clear_error();
                return -EIO;
        }
        n = EVP_EncodeBlock((unsigned char *) b64, raw, sizeof(raw));
        for (int i = 0; i < n && b64[i] != '='; i++)
                b64[len++] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
        *ret = xstrndup(b64, len);
        OPENSSL_cleanse(raw, sizeof(raw));
        OPENSSL_cleanse(b64, sizeof(b64));
        return 0;
}

int secrets_ensure(secrets *x, const char *application_key, const char *database_key, char **ret_verifier) {
        _cleanup_(stored_secret_done) stored_secret old = {};
        _cleanup_erase_ char *password = NULL;
        _cleanup_free_ char *verifier = NULL;
        _cleanup_free_ unsigned char *sealed = NULL;
        _cleanup_(aad_done) aad ad = {};
        size_t size = 0;
        int r;

        r = store_load_secret(x->store, application_key, database_key, &old);
        if (r >= 0) {
                *ret_verifier = TAKE_PTR(old.verifier);
                return 0;
        }
        if (r != -ENOENT)
                return r;

        r = generate_password(&password);
        if (r >= 0)
                r = scram_verifier(password, &verifier);
        if (r >= 0) {
                ad = grant_aad(application_key, database_key);
                r = seal(x, &ad, password, strlen(password), &sealed, &size);
        }
        if (r < 0)
                return r;
        r = store_insert_secret(x->store, &(stored_secret) {
                                                  .application_key = (char *) application_key,
                                                  .database_key = (char *) database_key,
                                                  .ciphertext = sealed,
                                                  .ciphertext_size = size,
                                                  .verifier = verifier,
                                                  .created = (int64_t) time(NULL),
                                          });
        /* Recorded with every secret, not once: it must be in the same transaction as the first. */
        if (r >= 0)
                r = store_set_meta(x->store, KEY_ID_META, x->key_id);
        if (r < 0)
                return r;
        *ret_verifier = TAKE_PTR(verifier);
        return 1;
}

int secrets_lookup_verifier(store *s, const char *application_key, const char *database_key, char **ret_verifier) {
        _cleanup_(stored_secret_done) stored_secret old = {};
        int r;

        r = store_load_secret(s, application_key, database_key, &old);
        if (r < 0)
                return r;
        *ret_verifier = TAKE_PTR(old.verifier);
        return 0;
}

int secrets_get_password(secrets *x, const char *application_key, const char *database_key, char **ret_password) {
        _cleanup_(stored_secret_done) stored_secret old = {};
        _cleanup_(aad_done) aad ad = grant_aad(application_key, database_key);
        int r;

        r = store_load_secret(x->store, application_key, database_key, &old);
        if (r < 0)
                return r;
        return unseal(x, &ad, old.ciphertext, old.ciphertext_size, ret_password);
}

/* Seal a new secret of database_key and insert its row with insert() (a passphrase's or a data
 * key's: the same columns), recording the master key's id with it: the same transaction as the
 * first secret. */
static int insert_sealed(secrets *x, int (*insert)(store *s, const stored_passphrase *row), const aad *ad,
                         const char *database_key, const void *plain, size_t n_plain) {
        _cleanup_free_ unsigned char *sealed = NULL;
        size_t size = 0;
        int r;

        r = seal(x, ad, plain, n_plain, &sealed, &size);
        if (r >= 0)
                r = insert(x->store, &(stored_passphrase) {
                                             .database_key = (char *) database_key,
                                             .ciphertext = sealed,
                                             .ciphertext_size = size,
                                             .created = (int64_t) time(NULL),
                                     });
        if (r >= 0)
                r = store_set_meta(x->store, KEY_ID_META, x->key_id);
        return r;
}

int secrets_ensure_backup_passphrase(secrets *x, const char *database_key, char **ret_passphrase) {
        _cleanup_(stored_passphrase_done) stored_passphrase old = {};
        _cleanup_(aad_done) aad ad = passphrase_aad(database_key);
        _cleanup_erase_ char *passphrase = NULL;
        int r;

        r = store_load_backup_passphrase(x->store, database_key, &old);
        if (r >= 0)
                return unseal(x, &ad, old.ciphertext, old.ciphertext_size, ret_passphrase);
        if (r != -ENOENT)
                return r;

        /* The same generator as the grants' passwords: 43 characters of base64url, what the
         * document's passphrase rule wants and pgBackRest's configuration file takes unquoted. */
        r = generate_password(&passphrase);
        if (r >= 0)
                r = insert_sealed(x, store_insert_backup_passphrase, &ad, database_key, passphrase,
                                  strlen(passphrase));
        if (r < 0)
                return r;
        *ret_passphrase = TAKE_PTR(passphrase);
        return 1;
}

int secrets_unseal_backup_passphrase(secrets *x, const stored_passphrase *p, char **ret_passphrase) {
        _cleanup_(aad_done) aad ad = passphrase_aad(p->database_key);

        return unseal(x, &ad, p->ciphertext, p->ciphertext_size, ret_passphrase);
}

int secrets_get_backup_passphrase(secrets *x, const char *database_key, char **ret_passphrase) {
        _cleanup_(stored_passphrase_done) stored_passphrase old = {};
        int r;

        r = store_load_backup_passphrase(x->store, database_key, &old);
        if (r < 0)
                return r;
        return secrets_unseal_backup_passphrase(x, &old, ret_passphrase);
}

int secrets_get_data_key(secrets *x, const char *database_key, uint8_t ret_key[SECRETS_DATA_KEY_SIZE]) {
        _cleanup_(stored_passphrase_done) stored_data_key row = {};
        _cleanup_(aad_done) aad ad = data_key_aad(database_key);
        int r;

        r = store_load_data_key(x->store, database_key, &row);
        if (r < 0)
                return r;
        return unseal_data_key(x, &ad, row.ciphertext, row.ciphertext_size, ret_key);
}

int secrets_ensure_data_key(secrets *x, const char *database_key, uint8_t ret_key[SECRETS_DATA_KEY_SIZE]) {
        _cleanup_(aad_done) aad ad = data_key_aad(database_key);
        uint8_t key[SECRETS_DATA_KEY_SIZE];
        int r;

        /* An existing one is opened, not just found: a row that no longer opens is an error here,
         * never replaced by a new key (the data encrypted with the old one would be lost). */
        r = secrets_get_data_key(x, database_key, key);
        if (r >= 0) {
                if (ret_key)
                        memcpy(ret_key, key, sizeof(key));
                explicit_bzero(key, sizeof(key));
                return 0;
        }
        if (r != -ENOENT)
                return r;

        r = RAND_bytes(key, sizeof(key)) == 1 ? 0 : -EIO;
        ERR_clear_error();
        if (r >= 0)
                r = insert_sealed(x, store_insert_data_key, &ad, database_key, key, sizeof(key));
        if (r >= 0 && ret_key)
                memcpy(ret_key, key, sizeof(key));
        explicit_bzero(key, sizeof(key));
        return r < 0 ? r : 1;
}

static int ref_cmp(const void *a, const void *b) {
        const secret_ref *x = a, *y = b;
        int r = strcmp(x->application_key, y->application_key);
        return r ? r : strcmp(x->database_key, y->database_key);
}

int secrets_prune(secrets *x, const secret_ref *live, size_t n, size_t *ret_removed) {
        _cleanup_free_ secret_ref *sorted = xmalloc((n + 1) * sizeof(secret_ref));
        stored_secret *all = NULL;
        size_t n_all = 0, removed = 0;
        int r;

        if (n > 0)
                memcpy(sorted, live, n * sizeof(secret_ref));
        qsort_safe(sorted, n, sizeof(secret_ref), ref_cmp);
        r = store_load_secrets(x->store, &all, &n_all);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_all && r >= 0; i++) {
                secret_ref key = { all[i].application_key, all[i].database_key };
                if (n > 0 && bsearch(&key, sorted, n, sizeof(secret_ref), ref_cmp))
                        continue;
                r = store_delete_secret(x->store, key.application_key, key.database_key);
                if (r >= 0)
                        removed++;
        }
        stored_secrets_free(all, n_all);
        if (r < 0)
                return r;
        if (ret_removed)
                *ret_removed = removed;
        return 0;
}

/* Split "org/ou/env/project/name" into its project prefix length and name. */
static bool split_key(const char *key, size_t *ret_prefix, const char **ret_name) {
        const char *slash = strrchr(key, '/');
        if (!slash)
                return false;
        *ret_prefix = (size_t) (slash - key);
        *ret_name = slash + 1;
        return true;
}

int secrets_find(store *s, const char *app, const char *db, const char *project, char **ret_application_key,
                 char **ret_database_key, char **ret_error) {
        stored_secret *all = NULL;
        size_t n_all = 0, n_match = 0, first = 0, list_len = 0;
        _cleanup_free_ char *list = NULL;
        int r;

        r = store_load_secrets(s, &all, &n_all);
        if (r < 0) {
                if (ret_error)
                        *ret_error = xasprintf("cannot read the state store: %s", strerror(-r));
                return r;
        }
        for (size_t i = 0; i < n_all; i++) {
                const char *an, *dn;
                size_t ap, dp;

                if (!split_key(all[i].application_key, &ap, &an) || !split_key(all[i].database_key, &dp, &dn) ||
                    !streq(an, app) || !streq(dn, db) || ap != dp ||
                    strncmp(all[i].application_key, all[i].database_key, ap) != 0)
                        continue;
                if (project && (strlen(project) != ap || strncmp(project, all[i].application_key, ap) != 0))
                        continue;
                if (n_match++ == 0)
                        first = i;
                list = xrealloc(list, list_len + ap + 3);
                if (list_len > 0) {
                        memcpy(list + list_len, ", ", 2);
                        list_len += 2;
                }
                memcpy(list + list_len, all[i].application_key, ap);
                list_len += ap;
                list[list_len] = '\0';
        }
        if (n_match == 1) {
                *ret_application_key = TAKE_PTR(all[first].application_key);
                *ret_database_key = TAKE_PTR(all[first].database_key);
                r = 0;
        } else if (n_match == 0) {
                if (ret_error)
                        *ret_error = project ? xasprintf("application '%s' has no secret for database '%s' in project '%s'",
                                                         app, db, project)
                                             : xasprintf("application '%s' has no secret for database '%s'", app, db);
                r = -ENOENT;
        } else {
                if (ret_error)
                        *ret_error = xasprintf("application '%s' has a secret for database '%s' in %zu projects: %s",
                                               app, db, n_match, list);
                r = -ENOTUNIQ;
        }
        stored_secrets_free(all, n_all);
        return r;
}

int secrets_find_backup_passphrase(store *s, const char *db, const char *project, char **ret_database_key,
                                   char **ret_error) {
        stored_passphrase *all = NULL;
        size_t n_all = 0, n_match = 0, first = 0, list_len = 0;
        _cleanup_free_ char *list = NULL;
        int r;

        r = store_load_backup_passphrases(s, &all, &n_all);
        if (r < 0) {
                if (ret_error)
                        *ret_error = xasprintf("cannot read the state store: %s", strerror(-r));
                return r;
        }
        for (size_t i = 0; i < n_all; i++) {
                const char *name;
                size_t prefix;

                if (!split_key(all[i].database_key, &prefix, &name) || !streq(name, db))
                        continue;
                if (project && (strlen(project) != prefix || strncmp(project, all[i].database_key, prefix) != 0))
                        continue;
                if (n_match++ == 0)
                        first = i;
                list = xrealloc(list, list_len + prefix + 3);
                if (list_len > 0) {
                        memcpy(list + list_len, ", ", 2);
                        list_len += 2;
                }
                memcpy(list + list_len, all[i].database_key, prefix);
                list_len += prefix;
                list[list_len] = '\0';
        }
        if (n_match == 1) {
                *ret_database_key = TAKE_PTR(all[first].database_key);
                r = 0;
        } else if (n_match == 0) {
                if (ret_error)
                        *ret_error = project ? xasprintf("database '%s' has no backup passphrase in project '%s'", db, project)
                                             : xasprintf("database '%s' has no backup passphrase", db);
                r = -ENOENT;
        } else {
                if (ret_error)
                        *ret_error = xasprintf("database '%s' has a backup passphrase in %zu projects: %s", db, n_match,
                                               list);
                r = -ENOTUNIQ;
        }
        stored_passphrases_free(all, n_all);
        return r;
}
