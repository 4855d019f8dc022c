/* The secret store: one random password per (application, database) grant, kept AES-256-GCM
 * encrypted under the controller's master key in the state store, with its SCRAM verifier beside
 * it; and one backup repository passphrase and one data key (disk encryption) per database, kept
 * alike. Nothing here prints or logs a secret. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define SECRETS_MASTER_KEY_FILE "master.key"
#define SECRETS_MASTER_KEY_SIZE 32
#define SECRETS_PASSWORD_BYTES 32  /* from the CSPRNG; 43 characters once base64url-encoded */
#define SECRETS_DATA_KEY_SIZE 32   /* KEYWRAP_KEY_SIZE: what keywrap_seal() hands to the host */

typedef struct secrets secrets;

/* The keys secrets are stored under: "org/ou/env/project/name" for both sides. */
typedef struct secret_ref {
        const char *application_key;
        const char *database_key;
} secret_ref;

/* Create <state_dir>/master.key: 32 random bytes, mode 0600, never replacing an existing file.
 * Returns 1 when created, 0 when one exists (kept as it is), -errno on failure. */
int secrets_create_master_key(const char *state_dir);

/* Load the master key and check it is the one the store's secrets were encrypted with. The store
 * stays the caller's. Errors carry a message in *ret_error: -ENOENT no master key (run init),
 * -EPERM key readable by others, -EBADMSG wrong size, -EKEYREJECTED another key than the store's. */
int secrets_open(store *s, const char *state_dir, secrets **ret, char **ret_error);
void secrets_close(secrets *x);
static inline void secrets_closep(secrets **x) {
        secrets_close(*x);
}

/* The verifier of the grant's password, creating the password on first use. Afterwards the same
 * verifier every time, so a re-render is byte-identical. Writes go through the caller's
 * transaction. Returns 1 when created, 0 when it existed. */
int secrets_ensure(secrets *x, const char *application_key, const char *database_key, char **ret_verifier);

/* The stored verifier, or -ENOENT; read-only and needs no master key (plan). */
int secrets_lookup_verifier(store *s, const char *application_key, const char *database_key, char **ret_verifier);

/* The grant's password in the clear; free it with erase_and_free(). -ENOENT when there is none,
 * -EKEYREJECTED when it does not decrypt (another master key, or a row that was tampered with or
 * moved to another grant), -EBADMSG when the stored ciphertext is malformed. */
int secrets_get_password(secrets *x, const char *application_key, const char *database_key, char **ret_password);

/* Delete every secret whose grant is not in live (n entries, any order): the grant was removed.
 * Through the caller's transaction. *ret_removed (optional) counts them. */
int secrets_prune(secrets *x, const secret_ref *live, size_t n, size_t *ret_removed);

/* Find the secret of application app on database db by their names. project
 * ("org/ou/env/project") narrows the search; without it the pair must be unique. -ENOENT when
 * there is none, -ENOTUNIQ when several projects have one (*ret_error lists them). */
int secrets_find(store *s, const char *app, const char *db, const char *project, char **ret_application_key,
                 char **ret_database_key, char **ret_error);

/* The database's pgBackRest repository passphrase in the clear (free it with erase_and_free()),
 * creating it on first use (through the caller's transaction): 1 when created, 0 when it existed.
 * Never changed nor deleted afterwards: the repository it encrypts would become unreadable, and
 * the repository outlives the database. Errors as secrets_get_password(). */
int secrets_ensure_backup_passphrase(secrets *x, const char *database_key, char **ret_passphrase);
/* The same without creating: -ENOENT when the database has none. */
int secrets_get_backup_passphrase(secrets *x, const char *database_key, char **ret_passphrase);
/* One row of store_load_backup_passphrases(), opened. */
int secrets_unseal_backup_passphrase(secrets *x, const stored_passphrase *p, char **ret_passphrase);
/* Find a database's passphrase by the database's name, as secrets_find(): project narrows the
 * search; -ENOENT when there is none, -ENOTUNIQ when several projects have one. */
int secrets_find_backup_passphrase(store *s, const char *db, const char *project, char **ret_database_key,
                                   char **ret_error);

/* The database's data key (its storage's encryption, handed to the host it is placed on wrapped
 * to that host's key), creating it from the CSPRNG on first use (through the caller's
 * transaction): 1 when created, 0 when it existed. ret_key may be NULL (only make sure there is
 * one); the caller wipes it with explicit_bzero(). Never changed nor deleted afterwards: the data
 * it encrypts outlives the database's removal from the manifests. Errors as
 * secrets_get_data_key(): an existing key that does not open is never replaced. */
int secrets_ensure_data_key(secrets *x, const char *database_key, uint8_t ret_key[SECRETS_DATA_KEY_SIZE]);
/* The same without creating: -ENOENT when the database has none, -EKEYREJECTED when it does not
 * decrypt (another master key, or a row tampered with or moved to another database), -EBADMSG
 * when the stored ciphertext is malformed. ret_key is written only on success. */
int secrets_get_data_key(secrets *x, const char *database_key, uint8_t ret_key[SECRETS_DATA_KEY_SIZE]);
