/* LUKS2 through libcryptsetup: the only file that includes its header. Probing a device (or a
 * file-backed image) for what it already holds, formatting one that holds nothing, checking a
 * header and a key, and opening/closing the dm-crypt mapping. No policy here: encryption.c
 * decides what to do with a device. Keys are never copied, logged or put in an error message. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LUKS_KEY_SIZE 32                 /* the controller's data key, used as the keyslot passphrase */
#define LUKS_CIPHER "aes"
#define LUKS_CIPHER_MODE "xts-plain64"
#define LUKS_VOLUME_KEY_BITS 512         /* AES-256 in XTS mode: two 256-bit keys */
#define LUKS_PBKDF "argon2id"
#define LUKS_PROBE_SIZE (64u * 1024u + 4096u) /* covers btrfs's superblock at 64 KiB */
#define LUKS_MIN_SIZE (32u * 1024u * 1024u) /* 16 MiB of LUKS2 header and keyslots, then data */
#define LUKS_DM_CONTROL "/dev/mapper/control"
#define LUKS_NO_DM_REASON "no " LUKS_DM_CONTROL " (device-mapper missing in this kernel)"

typedef enum luks_content {
        LUKS_CONTENT_EMPTY,   /* all zeros where signatures live: may be formatted */
        LUKS_CONTENT_LUKS,    /* a LUKS header (version 1 or 2, or a damaged one) */
        LUKS_CONTENT_OTHER,   /* a filesystem, partition table, other signature or unknown data */
} luks_content;

/* Argon2id cost, used exactly as given (no benchmark). NULL everywhere means libcryptsetup's LUKS2
 * defaults (benchmarked to about 2 s, up to 1 GiB): tests pass small values to stay fast. */
typedef struct luks_pbkdf_cost {
        uint32_t iterations;   /* Argon2 time cost, at least 4 */
        uint32_t memory_kb;
        uint32_t threads;
} luks_pbkdf_cost;

typedef struct luks_info {
        char type[8];          /* "LUKS2" */
        char cipher[32];       /* "aes" */
        char cipher_mode[32];  /* "xts-plain64" */
        int volume_key_bits;
        char uuid[40];
        int n_keyslots;        /* active ones */
        char pbkdf[16];        /* of the first active keyslot: "argon2id" */
} luks_info;

/* What path holds, read-only and without libblkid: a LUKS header (libcryptsetup's own loader),
 * else a known signature in the first LUKS_PROBE_SIZE bytes (ext2/3/4, xfs, btrfs, f2fs, swap,
 * LVM2, md RAID, GPT/MBR, iso9660), else any non-zero byte there ("unrecognised data": refusing
 * is the safe answer). *ret_what is a static phrase for messages ("an ext4 filesystem", "a LUKS2
 * header"), NULL when empty. A block device that is mounted or held (O_EXCL fails) is -EBUSY. */
int luks_probe(const char *path, luks_content *ret, const char **ret_what, char **ret_error);

/* Format path as LUKS2 (aes-xts-plain64, 512-bit random volume key, one argon2id keyslot opened
 * by key) only when luks_probe() finds it empty; otherwise -EEXIST with a message naming what is
 * there, and nothing is written. Smaller than LUKS_MIN_SIZE: -ENOSPC. A failure after the header
 * was written wipes the header again. */
int luks_format(const char *path, const uint8_t key[LUKS_KEY_SIZE], const luks_pbkdf_cost *cost,
                char **ret_error);

/* Read the header. -EINVAL with a message when path holds no LUKS header. */
int luks_inspect(const char *path, luks_info *ret, char **ret_error);

/* The header is what luks_format() writes: LUKS2, aes-xts-plain64, 512 bits, every active
 * keyslot argon2id. -EBADMSG naming the first difference. */
int luks_verify(const char *path, char **ret_error);

/* key opens a keyslot, checked without activation (no device-mapper needed). Returns the keyslot
 * number; -EPERM when no keyslot accepts the key. */
int luks_check_key(const char *path, const uint8_t key[LUKS_KEY_SIZE], char **ret_error);

/* Keyslots belong to databases: a LUKS2 token of type LUKS_TOKEN_TYPE names the database
 * ("org/ou/env/project/db") whose key opens the keyslot, so the agent tries the right keyslot
 * with the right key (each try costs a full Argon2id run) and knows which databases still need one. */
#define LUKS_TOKEN_TYPE "infrastream-database"
#define LUKS_ANY_KEYSLOT (-1) /* libcryptsetup's CRYPT_ANY_SLOT */

/* Record that keyslot belongs to database. */
int luks_tag_keyslot(const char *path, int keyslot, const char *database, char **ret_error);
/* The keyslot of database: >= 0, -ENOENT (with a message) when it has none. */
int luks_find_keyslot(const char *path, const char *database, char **ret_error);
/* The databases that have a keyslot, sorted, each once (a malloc'd array of malloc'd strings). */
int luks_list_keyslots(const char *path, char ***ret, size_t *ret_n, char **ret_error);
/* Add a keyslot opened by new_key for database; key must open keyslot (LUKS_ANY_KEYSLOT: any,
 * each tried at the cost of an Argon2id run). Returns the new keyslot, named for database (a
 * keyslot that cannot be named is destroyed again); -EPERM when key does not open; cost as
 * luks_format(). */
int luks_add_key(const char *path, int keyslot, const uint8_t key[LUKS_KEY_SIZE], const uint8_t new_key[LUKS_KEY_SIZE],
                 const char *database, const luks_pbkdf_cost *cost, char **ret_error);

/* A volume formatted here has no filesystem until the agent makes one, and its data area reads as
 * noise through dm-crypt (the zeros underneath decrypt to random bytes), which no probe can tell
 * from someone's data. So luks_format() records "filesystem pending" in the header (a LUKS2 token
 * of type LUKS_MKFS_TOKEN_TYPE) and luks_clear_mkfs_pending() removes it once mkfs succeeded: a
 * crash in between leaves a volume that still says it may be given a filesystem. */
#define LUKS_MKFS_TOKEN_TYPE "infrastream-mkfs-pending"
/* 1 pending, 0 not, <0 error. */
int luks_mkfs_pending(const char *path, char **ret_error);
int luks_clear_mkfs_pending(const char *path, char **ret_error);

/* Device-mapper works: /dev/mapper/control opens (or is missing while the kernel has the driver).
 * Not a mere existence check: libdevmapper creates the node even on kernels without the driver. */
bool luks_dm_available(void);

/* Activate path as /dev/mapper/<name> with key, tried on keyslot (or LUKS_ANY_KEYSLOT): 1 when activated, 0 when <name> is already active
 * on this very header (same UUID), -EEXIST when <name> is something else, -ENODEV with
 * LUKS_NO_DM_REASON without device-mapper, -EPERM for a wrong key. */
int luks_open(const char *path, const char *name, int keyslot, const uint8_t key[LUKS_KEY_SIZE], char **ret_error);

/* Deactivate /dev/mapper/<name>: 1 when closed, 0 when it was not active. */
int luks_close(const char *name, char **ret_error);
