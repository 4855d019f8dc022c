/* Sizes with binary units, as operators write them in configuration: 512MiB, 16GiB, 16G. */
#pragma once

#include <stdint.h>

/* "16GiB", "16G", "512MiB", "4096K", or a plain number of bytes. 0, junk or overflow: -EINVAL
 * or -ERANGE. */
int parse_size(const char *s, uint64_t *ret);
