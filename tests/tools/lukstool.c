/* Test tool: a LUKS2 header made the way the agent's helper makes one, for tests that cannot let
 * the helper format (it formats only with device-mapper, to open what it formatted). Never
 * installed.
 *
 *   lukstool format IMAGE DATABASE...  LUKS2 on IMAGE (which must be empty) with a random key,
 *                                      keyslot 0 named for the first DATABASE, one more keyslot per
 *                                      further DATABASE (random keys too; cheap Argon2id)
 *
 * Errors: a message on stderr, exit 1 (2: usage). */
#include <stdio.h>
#include <sys/random.h>

#include "luks.h"
#include "macro.h"

static const luks_pbkdf_cost cheap = { .iterations = 4, .memory_kb = 8 * 1024, .threads = 1 };

int main(int argc, char **argv) {
        _cleanup_free_ char *err = NULL;
        uint8_t key[LUKS_KEY_SIZE], more[LUKS_KEY_SIZE];
        int r;

        if (argc < 4 || !streq(argv[1], "format")) {
                fputs("usage: lukstool format IMAGE DATABASE...\n", stderr);
                return 2;
        }
        if (getrandom(key, sizeof(key), 0) != sizeof(key))
                return 1;
        r = luks_format(argv[2], key, &cheap, &err);
        if (r >= 0)
                r = luks_tag_keyslot(argv[2], 0, argv[3], &err);
        for (int i = 4; r >= 0 && i < argc; i++) {
                if (getrandom(more, sizeof(more), 0) != sizeof(more))
                        return 1;
                r = luks_add_key(argv[2], 0, key, more, argv[i], &cheap, &err);
        }
        explicit_bzero(key, sizeof(key));
        explicit_bzero(more, sizeof(more));
        if (r < 0) {
                fprintf(stderr, "lukstool: %s\n", err);
                return 1;
        }
        return 0;
}
