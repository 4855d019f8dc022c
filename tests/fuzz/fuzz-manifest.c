/* libFuzzer target for the manifest front half: YAML tree, Database/Application model and
 * resolution. Any file in a manifests repository reaches this code, so no input may crash,
 * leak or run away. A line "#%%" splits the input into two files, so that duplicates and
 * references across files are reached too. */
#include <stdint.h>
#include <stdio.h>

#include "diag.h"
#include "discover.h"
#include "manifest.h"
#include "resolve.h"

#define FILE_SPLIT "\n#%%\n"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static FILE *devnull;
        const char *text = (const char *) data, *split;
        manifest_set s;
        diag_list d;

        /* The loader refuses bigger files before parsing. */
        if (size > DISCOVER_MAX_FILE_SIZE)
                return 0;
        if (!devnull)
                devnull = fopen("/dev/null", "we");

        manifest_set_init(&s);
        diag_list_init(&d);
        split = memmem(text, size, FILE_SPLIT, strlen(FILE_SPLIT));
        if (split) {
                size_t first = (size_t) (split - text) + 1, rest = strlen(FILE_SPLIT) - 1;
                manifest_load_buffer(&s, "a/first.yaml", text, first, &d);
                manifest_load_buffer(&s, "b/second.yaml", text + first + rest, size - first - rest, &d);
        } else
                manifest_load_buffer(&s, "manifest.yaml", text, size, &d);
        resolve_manifests(&s, &d);
        diag_sort(&d);
        if (devnull)
                diag_print(&d, devnull, true);
        manifest_set_done(&s);
        diag_list_done(&d);
        return 0;
}
