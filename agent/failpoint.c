/* Crash injection for the resume tests; a no-op unless INFRASTREAM_FAILPOINT names the step. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include "failpoint.h"
#include "macro.h"

void failpoint(const char *step) {
        const char *want = getenv("INFRASTREAM_FAILPOINT");

        if (!want || !streq(want, step))
                return;
        fprintf(stderr, "failpoint '%s' reached: aborting\n", step);
        fflush(stderr);
        /* SIGKILL, not abort(): no handler, no core dump, nothing flushed — a real crash. */
        raise(SIGKILL);
}
