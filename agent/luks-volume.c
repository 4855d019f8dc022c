/* The LUKS2 data volume (luks-volume.h): what the helper does with data-device. */
#include <stdio.h>
#include <sys/mount.h>
#include <unistd.h>

#include "fileio.h"
#include "luks-volume.h"
#include "luks.h"
#include "macro.h"
#include "proc.h"

/* The source of the filesystem mounted exactly at path, from /proc/self/mountinfo, or NULL. The
 * kernel lists canonical paths: "/srv/data/" or a symlink would never match as written. */
static char *mount_source_at(const char *given) {
        _cleanup_fclose_ FILE *f = fopen("/proc/self/mountinfo", "re");
        _cleanup_free_ char *line = NULL, *path = realpath(given, NULL);
        char *source = NULL;
        size_t alloc = 0;

        if (!f || !path)
                return NULL;
        while (getline(&line, &alloc, f) > 0) {
                char mnt[4096], src[4096];
                const char *sep = strstr(line, " - ");

                /* id parent major:minor root mount-point options ... - fstype source options */
                if (!sep || sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 || sscanf(sep + 3, "%*s %4095s", src) != 1)
                        continue;
                if (streq(mnt, path)) { /* the last one mounted there wins */
                        free(source);
                        source = xstrdup(src);
                }
        }
        return source;
}

bool luks_volume_is_mounted(const char *mount_point) {
        _cleanup_free_ char *src = mount_source_at(mount_point);

        return src && streq(src, LUKS_VOLUME_PATH);
}

int luks_volume_inspect(const char *device, const char *mount_point, wire_luks_response *ret, char **ret_error) {
        wire_luks_response m = {
                .device_mapper = luks_dm_available(),
                .active = access(LUKS_VOLUME_PATH, F_OK) == 0,
                .mounted = luks_volume_is_mounted(mount_point),
        };
        luks_content content = LUKS_CONTENT_LUKS;
        const char *what = "a LUKS2 header";
        int r;

        /* Open, the device is held by device-mapper (probing opens it O_EXCL): it is the volume. */
        if (!m.active && !m.mounted) {
                r = luks_probe(device, &content, &what, ret_error);
                if (r < 0)
                        return r;
        }
        m.content = content == LUKS_CONTENT_EMPTY ? WIRE_LUKS_EMPTY
                    : content == LUKS_CONTENT_LUKS ? WIRE_LUKS_LUKS
                                                   : WIRE_LUKS_OTHER;
        m.what = what ? xstrdup(what) : NULL;
        if (m.content == WIRE_LUKS_LUKS) {
                r = luks_list_keyslots(device, &m.keyslots, &m.n_keyslots, ret_error);
                if (r < 0) {
                        wire_luks_response_done(&m);
                        return r;
                }
        }
        *ret = m;
        return 0;
}

static int run_mkfs(const char *dev, char **ret_error) {
        const char *argv[] = { "/sbin/mkfs.ext4", "-q", "-L", "infrastream", dev, NULL };
        proc_result pr = {};
        char line[256];
        int r;

        r = proc_run(argv, NULL, NULL, NULL, &pr);
        if (r < 0)
                *ret_error = xasprintf("cannot run %s: %s", argv[0], strerror(-r));
        else if (pr.exit_status != 0) {
                *ret_error = xasprintf("mkfs.ext4 %s failed: %s", dev, proc_last_line(&pr, line, sizeof(line)));
                r = -EIO;
        }
        proc_result_done(&pr);
        return r;
}

/* Open the volume with the first key that has a keyslot, give it a filesystem when its header says
 * it has none, mount it. */
static int open_and_mount(const char *device, const char *mount_point, const wire_luks_key *keys, size_t n_keys,
                          char **ret_error) {
        luks_content content;
        const char *what;
        int r = -ENOKEY;

        for (size_t i = 0; i < n_keys; i++) {
                int ks = luks_find_keyslot(device, keys[i].database, NULL);
                if (ks < 0)
                        continue;
                free(*ret_error);
                *ret_error = NULL;
                r = luks_open(device, LUKS_VOLUME_NAME, ks, keys[i].key, ret_error);
                if (r >= 0)
                        break;
        }
        if (r == -ENOKEY)
                *ret_error = xasprintf("%s has no keyslot for any database in the document", device);
        if (r < 0)
                return r;
        /* A volume formatted here reads as noise until it has a filesystem: its header says so. */
        r = luks_mkfs_pending(device, ret_error);
        if (r < 0)
                return r;
        if (r > 0) {
                r = run_mkfs(LUKS_VOLUME_PATH, ret_error);
                if (r >= 0)
                        r = luks_clear_mkfs_pending(device, ret_error);
                if (r < 0)
                        return r;
        } else if ((r = luks_probe(LUKS_VOLUME_PATH, &content, &what, ret_error)) < 0)
                return r;
        else if (!what || !streq(what, "an ext4 filesystem")) {
                *ret_error = xasprintf("%s holds %s, not the ext4 filesystem the agent makes: refusing to mount it",
                                       LUKS_VOLUME_PATH, what ? what : "unrecognised data");
                return -EMEDIUMTYPE;
        }
        r = mkdir_root(mount_point);
        if (r >= 0 && mount(LUKS_VOLUME_PATH, mount_point, "ext4", MS_NOSUID | MS_NODEV, NULL) < 0)
                r = -errno;
        if (r < 0)
                *ret_error = xasprintf("cannot mount %s at %s: %s", LUKS_VOLUME_PATH, mount_point, strerror(-r));
        return r;
}

int luks_volume_unlock(const char *device, const char *mount_point, const wire_luks_key *keys, size_t n_keys,
                       wire_luks_response *ret, char **ret_error) {
        const wire_luks_key *opener = NULL;
        bool formatted = false;
        int r;

        if (n_keys == 0) {
                *ret_error = xasprintf("%s: no key to open it with", device);
                return -ENOKEY;
        }
        if (!luks_volume_is_mounted(mount_point)) {
                luks_content content = LUKS_CONTENT_LUKS;
                const char *what = NULL;

                if (!luks_dm_available()) {
                        *ret_error = xasprintf("cannot use %s: %s", device, LUKS_NO_DM_REASON);
                        return -ENODEV;
                }
                if (access(LUKS_VOLUME_PATH, F_OK) < 0) {
                        r = luks_probe(device, &content, &what, ret_error);
                        if (r < 0)
                                return r;
                }
                if (content == LUKS_CONTENT_OTHER) {
                        *ret_error = xasprintf("%s holds %s: refusing to format it (nothing was written)", device, what);
                        return -EEXIST;
                }
                if (content == LUKS_CONTENT_EMPTY) {
                        r = luks_format(device, keys[0].key, NULL, ret_error);
                        if (r >= 0)
                                r = luks_tag_keyslot(device, 0, keys[0].database, ret_error);
                        if (r < 0)
                                return r;
                        formatted = true;
                }
                r = open_and_mount(device, mount_point, keys, n_keys, ret_error);
                if (r < 0)
                        return r;
        }
        /* Every database's key opens the volume: add the keyslots that are missing. */
        for (size_t i = 0; i < n_keys; i++)
                if (luks_find_keyslot(device, keys[i].database, NULL) >= 0) {
                        opener = &keys[i];
                        break;
                }
        for (size_t i = 0; i < n_keys; i++) {
                if (luks_find_keyslot(device, keys[i].database, NULL) >= 0)
                        continue;
                if (!opener) {
                        *ret_error = xasprintf("%s: no key of this host's databases opens it", device);
                        return -ENOKEY;
                }
                r = luks_add_key(device, luks_find_keyslot(device, opener->database, NULL), opener->key, keys[i].key,
                                 keys[i].database, NULL, ret_error);
                if (r < 0)
                        return r;
        }
        r = luks_volume_inspect(device, mount_point, ret, ret_error);
        if (r >= 0)
                ret->formatted = formatted;
        return r;
}
