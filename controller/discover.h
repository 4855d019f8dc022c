/* Finding manifest files: every *.yaml / *.yml below the repository root, .git skipped. */
#pragma once

#include <stddef.h>

#include "diag.h"

#define DISCOVER_MAX_FILES 100000
#define DISCOVER_MAX_FILE_SIZE (4u * 1024u * 1024u)

typedef struct file_list {
        char **paths;        /* relative to the root, sorted */
        size_t n, alloc;
} file_list;

/* Returns 0, or -errno when the root cannot be read; problems with single entries go to diags. */
int discover_yaml_files(const char *root, file_list *ret, diag_list *diags);
void file_list_done(file_list *l);
