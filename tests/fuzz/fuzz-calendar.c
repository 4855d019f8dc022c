/* libFuzzer target for OnCalendar= expressions, which come from manifests: the parser must never
 * crash, and the normalized form of whatever it accepts must parse to the same schedule. */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include "calendar.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(calendar_spec_freep) calendar_spec *c = NULL, *again = NULL;
        _cleanup_free_ char *expr = NULL, *error = NULL, *s = NULL, *s2 = NULL;
        /* A fixed instant keeps runs reproducible; 2023-11-14 22:13:20 UTC. */
        const int64_t after = INT64_C(1700000000) * 1000000;
        int64_t next = 0, next2 = 0;
        int r, r2;

        if (size > CALENDAR_EXPR_MAX + 16)
                return 0;
        expr = xstrndup((const char *) data, size);

        if (calendar_spec_parse(expr, &c, &error) < 0) {
                if (!error || !*error)
                        abort();
                return 0;
        }
        if (error)
                abort();

        s = calendar_spec_to_string(c);

        /* Normalizing lengthens ("1:2" → "*-*-* 01:02:00"); a form past the input limit is
         * refused like any other over-long input, so there is nothing to compare. */
        if (strlen(s) > CALENDAR_EXPR_MAX)
                return 0;

        if (calendar_spec_parse(s, &again, &error) < 0) {
                fprintf(stderr, "normalized form of '%s' refused: %s\n", expr, error);
                abort();
        }
        s2 = calendar_spec_to_string(again);
        if (!streq(s, s2)) {
                fprintf(stderr, "normalized form is not a fixed point: '%s' → '%s' → '%s'\n",
                        expr, s, s2);
                abort();
        }

        /* Same schedule, not just the same text. */
        r = calendar_spec_next(c, after, &next);
        r2 = calendar_spec_next(again, after, &next2);
        if (r != r2 || (r == 0 && (next != next2 || next <= after)) || (r < 0 && r != -ENOENT)) {
                fprintf(stderr, "'%s': next %d/%" PRId64 " vs %d/%" PRId64 "\n", expr, r, next, r2, next2);
                abort();
        }
        return 0;
}
