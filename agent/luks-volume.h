/* The LUKS2 data volume: data-device formatted as LUKS2 (one keyslot per database's key), opened as
 * /dev/mapper/infrastream-data and mounted at data-root. This is the work that needs CAP_SYS_ADMIN,
 * device-mapper and the block device, so only the helper (luks-helper.c, its own unit) does it; the
 * agent asks it over luks-client.h and decides nothing here needs deciding twice: the helper checks
 * again, with the device in front of it, everything that guards data.
 *
 * Nothing here formats a device that holds anything (luks_probe()), gives a filesystem to a
 * volume whose header does not say it still needs one, or mounts anything but the ext4 filesystem
 * made here. Keys are the caller's; nothing keeps, copies or logs one. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "wire.h"

#define LUKS_VOLUME_NAME "infrastream-data"
#define LUKS_VOLUME_PATH "/dev/mapper/" LUKS_VOLUME_NAME

/* The volume is mounted at mount_point, as this process's mount namespace sees it (the last mount
 * there wins). */
bool luks_volume_is_mounted(const char *mount_point);

/* What device holds and whether it is open and mounted: *ret filled, formatted false. Read-only. */
int luks_volume_inspect(const char *device, const char *mount_point, wire_luks_response *ret, char **ret_error);

/* Make device a mounted volume that every one of keys opens:
 *   not mounted: device-mapper must work; an empty device is formatted (keys[0]'s keyslot); the
 *     volume is opened with the first key that has a keyslot, given its filesystem when its header
 *     says it has none yet (mkfs.ext4), and mounted at mount_point (nosuid, nodev);
 *   then every key without a keyslot gets one, opened through a key that has one.
 * On success *ret is the volume as it is now (luks_volume_inspect()), formatted set when this call
 * formatted it. A device holding anything else, a wrong key, a foreign filesystem on the volume:
 * an error naming it, and nothing written. */
int luks_volume_unlock(const char *device, const char *mount_point, const wire_luks_key *keys, size_t n_keys,
                       wire_luks_response *ret, char **ret_error);
