/* fscrypt through the kernel's own ioctls (linux/fscrypt.h): the only file that includes it.
 * Support checks, v2 keys in a filesystem's keyring (add, remove, status) and v2 policies on
 * empty directories. No policy decisions here: encryption.c decides which directory gets which
 * key. Keys are raw bytes the caller owns and wipes; copies made here are wiped before return. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FSCRYPT_ID_SIZE 16     /* a v2 key identifier: a hash of the key, safe to log */
#define FSCRYPT_ID_HEX_SIZE 33 /* 32 hex digits and the NUL */

typedef struct fscrypt_key_id {
        uint8_t b[FSCRYPT_ID_SIZE];
} fscrypt_key_id;

typedef enum fscrypt_key_state {
        FSCRYPT_KEY_ABSENT,
        FSCRYPT_KEY_PRESENT,
        FSCRYPT_KEY_INCOMPLETELY_REMOVED, /* removed, but files still open keep it in use */
} fscrypt_key_state;

/* What FS_IOC_REMOVE_ENCRYPTION_KEY achieved (returned as a non-negative value). */
typedef enum fscrypt_removal {
        FSCRYPT_REMOVED,             /* gone: files are locked */
        FSCRYPT_REMOVED_FILES_BUSY,  /* our claim is gone but open files keep the key in use; the
                                      * files are locked once closed and the removal repeated */
        FSCRYPT_REMOVED_OTHER_USERS, /* our claim is gone; other users still hold the key */
} fscrypt_removal;

/* A directory's encryption policy as the kernel reports it. */
typedef struct fscrypt_policy_info {
        uint8_t version; /* 2 (FSCRYPT_POLICY_V2); a v1 policy is reported as an error */
        uint8_t contents_mode, filenames_mode, flags;
        fscrypt_key_id id;
} fscrypt_policy_info;

bool fscrypt_key_id_equal(const fscrypt_key_id *a, const fscrypt_key_id *b);
/* Lower-case hex, as fscryptctl and the kernel's keyring show it. Returns buf. */
char *fscrypt_key_id_to_hex(const fscrypt_key_id *id, char buf[static FSCRYPT_ID_HEX_SIZE]);

/* Whether the filesystem holding dir can encrypt directories: 0 yes, -EOPNOTSUPP with the reason
 * ("dir is on xfs, which has no fscrypt support", "the filesystem of dir has no 'encrypt'
 * feature: ...") and other negative errnos (cannot open dir) with a message. */
int fscrypt_check_support(const char *dir, char **ret_error);

/* dir's policy: 1 and *ret (optional) when encrypted with a v2 policy, 0 when not encrypted,
 * -EOPNOTSUPP when the filesystem cannot encrypt, -EPROTONOSUPPORT for a v1 (or newer) policy we
 * do not manage. Works without the key. */
int fscrypt_get_policy(const char *dir, fscrypt_policy_info *ret, char **ret_error);

/* Add a raw key of 32 or 64 bytes to the keyring of the filesystem holding path (any directory
 * on it; the mount point is the natural one) and return its v2 identifier. Adding a key that is
 * already present is not an error (the kernel counts claims; each add wants a remove). */
int fscrypt_add_key(const char *path, const uint8_t *key, size_t size, fscrypt_key_id *ret_id, char **ret_error);

/* Remove our claim on the key from the filesystem holding path: a fscrypt_removal, -ENOKEY (with
 * a message) when the key was not there. After FSCRYPT_REMOVED, encrypted names and contents
 * under the key are unreadable until it is added again. */
int fscrypt_remove_key(const char *path, const fscrypt_key_id *id, char **ret_error);

/* Whether the filesystem holding path has the key. */
int fscrypt_key_status(const char *path, const fscrypt_key_id *id, fscrypt_key_state *ret, char **ret_error);

/* Encrypt the empty directory dir with a v2 policy for id: AES-256-XTS contents, AES-256-CTS
 * file names, names padded to 32 bytes. The key should be added first. 0 when set, 1 when dir
 * already has exactly this policy; -EEXIST when it is encrypted otherwise (another key, other
 * modes), -ENOTEMPTY when it is unencrypted but holds entries: fscrypt only encrypts new files,
 * so existing data would stay in clear under a directory that claims to be encrypted. */
int fscrypt_set_policy(const char *dir, const fscrypt_key_id *id, char **ret_error);
