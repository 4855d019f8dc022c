/* One place decides where the daemon's messages go: the journal with fields, or stderr. */
#include <stdarg.h>
#include <stdio.h>

#include "log.h"
#include "systemd.h"

void log_full(int priority, const char *database, uint64_t revision, const char *fmt, ...) {
        static _Atomic int journal = -1; /* both threads log */
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                abort();
        va_end(ap);
        /* Decided once: whether stderr is the journal does not change while we run. */
        if (journal < 0)
                journal = systemd_stderr_is_journal();
        if (journal) {
                _cleanup_free_ char *m = xasprintf("MESSAGE=%s", msg), *p = xasprintf("PRIORITY=%d", priority),
                                    *d = database ? xasprintf("DATABASE=%s", database) : NULL,
                                    *r = revision ? xasprintf("REVISION=%llu", (unsigned long long) revision) : NULL;
                const char *fields[5] = { m, p, "SYSLOG_IDENTIFIER=infrastream-agent" };
                size_t n = 3;
                if (d)
                        fields[n++] = d;
                if (r)
                        fields[n++] = r;
                if (systemd_journal_send(fields, n) >= 0)
                        return;
        }
        fprintf(stderr, "%s\n", msg);
}
