/* Binary-unit size parsing shared by the inventory and the agent's configuration. */
#include <stdlib.h>

#include "macro.h"
#include "size.h"

int parse_size(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t mult;
        } units[] = {
                { "", 1 },           { "K", 1ULL << 10 }, { "KiB", 1ULL << 10 }, { "M", 1ULL << 20 },
                { "MiB", 1ULL << 20 }, { "G", 1ULL << 30 }, { "GiB", 1ULL << 30 }, { "T", 1ULL << 40 },
                { "TiB", 1ULL << 40 },
        };
        unsigned long long n;
        char *end;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        n = strtoull(s, &end, 10);
        if (errno)
                return -ERANGE;
        if (n == 0)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(end, units[i].suffix)) {
                        if (n > UINT64_MAX / units[i].mult)
                                return -ERANGE;
                        *ret = n * units[i].mult;
                        return 0;
                }
        return -EINVAL;
}
