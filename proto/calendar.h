/* OnCalendar= expressions (systemd.time(7)): parse with a precise user-facing error, print the
 * normalized form, compute the next elapse. Everything is evaluated in UTC, see below. */
#pragma once

#include <stdint.h>

/* Longest expression calendar_spec_parse() accepts, in bytes. Normalizing may lengthen an
 * expression ("1:2" → "*-*-* 01:02:00"), so a normalized form can exceed it. */
#define CALENDAR_EXPR_MAX 256

typedef struct calendar_spec calendar_spec;

/* Parses 'expr' with systemd's grammar: shortcuts (daily, weekly, …), weekday lists and ranges,
 * [YYYY-]MM-DD or MM~DD dates, HH:MM[:SS[.ffffff]] times, '*', lists, 'a..b', 'a/b', 'a..b/c',
 * "@UNIXSECONDS", and an optional trailing " UTC". Any other time zone is refused: we evaluate
 * only in UTC, so a schedule written for another zone would silently run at the wrong hour.
 * Returns 0, or -EINVAL with a malloc'd message in *ret_error ("'Mon 25:00': hour 25 is out of
 * range 0..23") that quotes at most ~100 bytes of the input. 'ret' and 'ret_error' may be NULL,
 * e.g. to validate only. */
int calendar_spec_parse(const char *expr, calendar_spec **ret, char **ret_error);

/* The first elapse strictly after 'after_usec' (µs since the epoch), in UTC — also when the
 * expression carries no " UTC" (systemd would use local time there; our agent runs in UTC).
 * Returns 0, or -ENOENT when the expression never elapses again (a past year, "*-02-30", or
 * nothing before 2200, the last year systemd's grammar allows). */
int calendar_spec_next(const calendar_spec *c, int64_t after_usec, int64_t *ret_next_usec);

/* The normalized form exactly as `systemd-analyze calendar` prints it ("daily" →
 * "*-*-* 00:00:00"); " UTC" is kept if it was written. Returns a malloc'd string. */
char *calendar_spec_to_string(const calendar_spec *c);

void calendar_spec_free(calendar_spec *c);

static inline void calendar_spec_freep(calendar_spec **c) {
        calendar_spec_free(*c);
}
