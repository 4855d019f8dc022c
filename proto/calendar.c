/* OnCalendar= expressions: parser with precise errors, the normalized form, next elapse in UTC.
 * Semantics follow systemd's src/shared/calendarspec.c (as shipped in v252); the code is our own. */
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <strings.h>

#include "calendar.h"
#include "macro.h"

#define MIN_YEAR 1970
#define MAX_YEAR 2199                   /* systemd's limit; it also bounds the search for "*-02-30" */
#define USEC_PER_SEC 1000000
#define USEC_PER_MINUTE (60 * (int64_t) USEC_PER_SEC)
#define USEC_PER_DAY (24 * 60 * USEC_PER_MINUTE)
#define WEEKDAYS_ALL 0x7fu
#define STEP_ZERO (-1)                  /* an explicit "/0", reported once the field is known */
#define ECHO_MAX 80                     /* bytes of the whole input quoted back in a message */
#define TOKEN_MAX 20                    /* bytes of one offending token quoted back */
#define ECHO_SIZE(max) (4 * (max) + 4)  /* every byte may become \xNN, then "..." and NUL */

enum field {
        FIELD_YEAR,
        FIELD_MONTH,
        FIELD_DAY,
        FIELD_HOUR,
        FIELD_MINUTE,
        FIELD_SECOND,                   /* in µs, so that "05.250000" is just a number */
        _FIELD_MAX,
};

static const struct {
        const char *name;
        int min, max;
        int unit;                       /* the value of "1", which is also the step of "a..b" */
        int width;                      /* zero padding in the normalized form */
} fields[_FIELD_MAX] = {
        [FIELD_YEAR]   = { "year",   MIN_YEAR, MAX_YEAR,               1,            4 },
        [FIELD_MONTH]  = { "month",  1,        12,                     1,            2 },
        [FIELD_DAY]    = { "day",    1,        31,                     1,            2 },
        [FIELD_HOUR]   = { "hour",   0,        23,                     1,            2 },
        [FIELD_MINUTE] = { "minute", 0,        59,                     1,            2 },
        [FIELD_SECOND] = { "second", 0,        60 * USEC_PER_SEC - 1,  USEC_PER_SEC, 2 },
};

/* One element of a comma list: 'start' alone, or every 'repeat' from 'start' on, up to 'stop'. */
struct item {
        int start;
        int stop;                       /* < 0: up to the end of the field */
        int repeat;                     /* 0: 'start' only */
};

struct chain {
        struct item *items;             /* sorted, no duplicates */
        size_t n;                       /* 0 means '*': any value */
};

struct calendar_spec {
        unsigned weekdays;              /* bit 0 = Monday … bit 6 = Sunday; 0: any day */
        bool end_of_month;              /* day items count back from the month's last day ('~') */
        bool utc;                       /* " UTC" was written; it is printed back and changes nothing else */
        struct chain chain[_FIELD_MAX];
};

static const char *const weekday_names[7][2] = {
        { "Mon", "Monday" },
        { "Tue", "Tuesday" },
        { "Wed", "Wednesday" },
        { "Thu", "Thursday" },
        { "Fri", "Friday" },
        { "Sat", "Saturday" },
        { "Sun", "Sunday" },
};

/* Shortcuts are spelled out as the expressions they stand for and parsed like user input, so they
 * cannot drift from the grammar. Misspellings systemd keeps for compatibility are accepted but never
 * suggested. */
static const struct {
        const char *name;
        const char *expansion;
        bool suggest;
} shortcuts[] = {
        { "minutely",      "*-*-* *:*:00",              true  },
        { "hourly",        "*-*-* *:00:00",             true  },
        { "daily",         "*-*-* 00:00:00",            true  },
        { "weekly",        "Mon *-*-* 00:00:00",        true  },
        { "monthly",       "*-*-01 00:00:00",           true  },
        { "yearly",        "*-01-01 00:00:00",          true  },
        { "annually",      "*-01-01 00:00:00",          true  },
        { "anually",       "*-01-01 00:00:00",          false },
        { "quarterly",     "*-01,04,07,10-01 00:00:00", true  },
        { "semiannually",  "*-01,07-01 00:00:00",       true  },
        { "semi-annually", "*-01,07-01 00:00:00",       false },
        { "biannually",    "*-01,07-01 00:00:00",       false },
        { "bi-annually",   "*-01,07-01 00:00:00",       false },
};

struct parser {
        const char *expr;               /* the input as the user wrote it, quoted in messages */
        char **ret_error;
};

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

static bool is_letter(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static size_t span_letters(const char *s) {
        size_t n = 0;

        while (is_letter(s[n]))
                n++;
        return n;
}

/* What may follow a number list: the separators of date and time. ',' continues the list itself. */
static bool is_chain_end(char c) {
        return c == 0 || c == ' ' || c == '-' || c == '~' || c == ':';
}

/* Copies at most 'max' bytes of user input into 'buf' with anything unprintable as \xNN, so a
 * message never carries control characters into a terminal or a log. */
static void echo(char *buf, size_t size, const char *s, size_t n, size_t max) {
        size_t k = 0;

        for (size_t i = 0; i < n && i < max; i++) {
                unsigned char ch = s[i];

                if (ch >= 0x20 && ch < 0x7f)
                        buf[k++] = ch;
                else
                        k += snprintf(buf + k, size - k, "\\x%02x", ch);
        }
        if (n > max)
                k += snprintf(buf + k, size - k, "...");
        buf[k] = 0;
}

#define ECHO_TOKEN(buf, s, n) echo((buf), sizeof(buf), (s), (n), TOKEN_MAX)

/* "the end", or the rest of the input quoted: for "expected … at %s". */
static void describe_rest(char *buf, size_t size, const char *p) {
        char tok[ECHO_SIZE(TOKEN_MAX)];

        if (!*p) {
                snprintf(buf, size, "the end");
                return;
        }
        ECHO_TOKEN(tok, p, strlen(p));
        snprintf(buf, size, "'%s'", tok);
}

_printf_(2, 3)
static int fail(const struct parser *ps, const char *fmt, ...) {
        char quoted[ECHO_SIZE(ECHO_MAX)], msg[512];
        va_list ap;

        if (!ps->ret_error)
                return -EINVAL;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);

        echo(quoted, sizeof quoted, ps->expr, strlen(ps->expr), ECHO_MAX);
        *ps->ret_error = xasprintf("'%s': %s", quoted, msg);
        return -EINVAL;
}

static int unexpected(const struct parser *ps, const char *p) {
        char tok[ECHO_SIZE(TOKEN_MAX)];

        if (p[strspn(p, " ")] == 0)
                return fail(ps, "unexpected trailing whitespace");

        ECHO_TOKEN(tok, p, strlen(p));
        if (p[0] == '.' && is_digit(p[1]))
                return fail(ps, "unexpected '%s'; only seconds may have a fractional part", tok);
        if ((p[0] == 'T' || p[0] == 't') && (is_digit(p[1]) || p[1] == '*'))
                return fail(ps, "unexpected '%s'; separate the date and the time with a space", tok);
        return fail(ps, "unexpected '%s'", tok);
}

/* A field value as the user would write it: seconds with their fraction, and "~" for days counted
 * back from the end of the month. */
static const char *format_value(char *buf, size_t size, enum field f, int v, bool eom) {
        int unit = fields[f].unit;

        if (v % unit != 0)
                snprintf(buf, size, "%s%d.%06d", eom ? "~" : "", v / unit, v % unit);
        else
                snprintf(buf, size, "%s%d", eom ? "~" : "", v / unit);
        return buf;
}

/* Case-insensitive optimal string alignment distance: one edit per typo, transpositions included. */
static size_t edit_distance(const char *a, size_t n, const char *b) {
        size_t m = strlen(b), d[TOKEN_MAX + 1][TOKEN_MAX + 1];

        if (n > TOKEN_MAX || m > TOKEN_MAX)
                return SIZE_MAX;

        for (size_t i = 0; i <= n; i++)
                d[i][0] = i;
        for (size_t j = 0; j <= m; j++)
                d[0][j] = j;

        for (size_t i = 1; i <= n; i++)
                for (size_t j = 1; j <= m; j++) {
                        size_t cost = strncasecmp(a + i - 1, b + j - 1, 1) != 0, best;

                        best = d[i - 1][j - 1] + cost;
                        if (d[i - 1][j] + 1 < best)
                                best = d[i - 1][j] + 1;
                        if (d[i][j - 1] + 1 < best)
                                best = d[i][j - 1] + 1;
                        if (i > 1 && j > 1 && strncasecmp(a + i - 1, b + j - 2, 1) == 0 &&
                            strncasecmp(a + i - 2, b + j - 1, 1) == 0 && d[i - 2][j - 2] + 1 < best)
                                best = d[i - 2][j - 2] + 1;
                        d[i][j] = best;
                }

        return d[n][m];
}

static void consider(const char *word, size_t n, const char *candidate, const char **best, size_t *best_d) {
        size_t d = edit_distance(word, n, candidate);

        /* One typo in a short name, two in a longer one; more is guessing. */
        if (d <= (strlen(candidate) <= 4 ? 1u : 2u) && d < *best_d) {
                *best = candidate;
                *best_d = d;
        }
}

/* The name the user most likely meant, or NULL; sets *ret_is_weekday to say which kind it is. */
static const char *suggest(const char *word, size_t n, bool with_shortcuts, bool *ret_is_weekday) {
        const char *best = NULL;
        size_t best_d = SIZE_MAX;

        if (with_shortcuts)
                for (size_t i = 0; i < ELEMENTSOF(shortcuts); i++)
                        if (shortcuts[i].suggest)
                                consider(word, n, shortcuts[i].name, &best, &best_d);
        *ret_is_weekday = false;
        for (size_t d = 0; d < 7; d++)
                for (size_t k = 0; k < 2; k++) {
                        const char *before = best;

                        consider(word, n, weekday_names[d][k], &best, &best_d);
                        if (best != before)
                                *ret_is_weekday = true;
                }

        return best;
}

static int weekday_lookup(const char *s, size_t n) {
        for (int d = 0; d < 7; d++)
                for (int k = 0; k < 2; k++)
                        if (strlen(weekday_names[d][k]) == n && strncasecmp(s, weekday_names[d][k], n) == 0)
                                return d;
        return -1;
}

static const char *shortcut_lookup(const char *s, size_t n) {
        for (size_t i = 0; i < ELEMENTSOF(shortcuts); i++)
                if (strlen(shortcuts[i].name) == n && strncasecmp(s, shortcuts[i].name, n) == 0)
                        return shortcuts[i].expansion;
        return NULL;
}

static int unknown_weekday(const struct parser *ps, const char *s, size_t n) {
        char tok[ECHO_SIZE(TOKEN_MAX)];
        const char *guess;
        bool is_weekday;

        ECHO_TOKEN(tok, s, n);
        guess = suggest(s, n, false, &is_weekday);
        if (guess)
                return fail(ps, "unknown weekday '%s'; did you mean '%s'?", tok, guess);
        return fail(ps, "unknown weekday '%s'", tok);
}

static bool is_leap_year(int y) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m) {
        static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

        return m == 2 && is_leap_year(y) ? 29 : days[m - 1];
}

/* Days from 1970-01-01 to January 1st of 'y' (y >= 1970). */
static int64_t days_before_year(int y) {
        int64_t leaps = (y - 1) / 4 - (y - 1) / 100 + (y - 1) / 400;

        return 365 * (int64_t) (y - MIN_YEAR) + leaps - (1969 / 4 - 1969 / 100 + 1969 / 400);
}

static int64_t days_since_epoch(int y, int m, int d) {
        int64_t days = days_before_year(y);

        for (int i = 1; i < m; i++)
                days += days_in_month(y, i);
        return days + d - 1;
}

/* A broken-down UTC time: year, month, day, hour, minute, µs within the minute. */
struct stamp {
        int v[_FIELD_MAX];
};

static void stamp_from_usec(int64_t t, struct stamp *ret) {
        int64_t days = t / USEC_PER_DAY, rem = t % USEC_PER_DAY;
        int y, m = 1;

        /* 366 days a year undershoots, so only a step or two forward remains. */
        y = MIN_YEAR + (int) (days / 366);
        while (days_before_year(y + 1) <= days)
                y++;
        days -= days_before_year(y);
        while (days >= days_in_month(y, m)) {
                days -= days_in_month(y, m);
                m++;
        }

        *ret = (struct stamp) { .v = {
                [FIELD_YEAR] = y,
                [FIELD_MONTH] = m,
                [FIELD_DAY] = (int) days + 1,
                [FIELD_HOUR] = (int) (rem / (60 * USEC_PER_MINUTE)),
                [FIELD_MINUTE] = (int) (rem / USEC_PER_MINUTE % 60),
                [FIELD_SECOND] = (int) (rem % USEC_PER_MINUTE),
        } };
}

static int64_t stamp_to_usec(const struct stamp *s) {
        int64_t days = days_since_epoch(s->v[FIELD_YEAR], s->v[FIELD_MONTH], s->v[FIELD_DAY]);

        return days * USEC_PER_DAY + (s->v[FIELD_HOUR] * 60 + s->v[FIELD_MINUTE]) * USEC_PER_MINUTE +
               s->v[FIELD_SECOND];
}

static int stamp_max(const struct stamp *s, enum field f) {
        if (f == FIELD_DAY)
                return days_in_month(s->v[FIELD_YEAR], s->v[FIELD_MONTH]);
        return fields[f].max;
}

static void stamp_reset_below(struct stamp *s, enum field f) {
        for (int i = f + 1; i < _FIELD_MAX; i++)
                s->v[i] = fields[i].min;
}

/* Moves to the start of the next year/month/day/hour/minute, carrying upwards. */
static void stamp_bump(struct stamp *s, enum field f) {
        stamp_reset_below(s, f);
        for (;;) {
                s->v[f]++;
                if (f == FIELD_YEAR || s->v[f] <= stamp_max(s, f))
                        return;
                s->v[f] = fields[f].min;
                f--;
        }
}

static int stamp_weekday(const struct stamp *s) {
        /* 1970-01-01 was a Thursday; Monday is 0. */
        return (int) ((days_since_epoch(s->v[FIELD_YEAR], s->v[FIELD_MONTH], s->v[FIELD_DAY]) + 3) % 7);
}

static void chain_free(struct chain *c) {
        free(c->items);
        *c = (struct chain) {};
}

static struct chain chain_take(struct chain *c) {
        struct chain t = *c;

        *c = (struct chain) {};
        return t;
}

static void chain_const(struct chain *c, int v) {
        chain_free(c);
        c->items = xmalloc(sizeof *c->items);
        c->items[0] = (struct item) { .start = v, .stop = -1 };
        c->n = 1;
}

/* Reads a decimal number in the field's unit. Seconds may carry a fraction, which is rounded to
 * whole microseconds on the seventh digit, as systemd does. */
static int parse_number(const struct parser *ps, const char **p, bool usec, int *ret) {
        char tok[ECHO_SIZE(TOKEN_MAX)];
        const char *s = *p, *e = *p;
        int64_t v = 0;

        if (!is_digit(*e)) {
                char rest[ECHO_SIZE(TOKEN_MAX) + 16];

                describe_rest(rest, sizeof rest, e);
                return fail(ps, "expected a number at %s", rest);
        }

        /* Saturate rather than overflow: anything past INT_MAX is refused below anyway. */
        for (; is_digit(*e); e++)
                v = v > INT_MAX ? v : v * 10 + (*e - '0');

        if (usec) {
                v *= USEC_PER_SEC;

                /* One '.' is a decimal point, two are a range. */
                if (e[0] == '.' && e[1] != '.') {
                        int64_t frac = 0;
                        int digits = 0;

                        e++;
                        if (!is_digit(*e)) {
                                ECHO_TOKEN(tok, s, (size_t) (e - s));
                                return fail(ps, "expected digits after the decimal point in '%s'", tok);
                        }
                        for (; is_digit(*e); e++, digits++)
                                if (digits < 6)
                                        frac = frac * 10 + (*e - '0');
                                else if (digits == 6 && *e >= '5')
                                        frac++;
                        for (; digits < 6; digits++)
                                frac *= 10;
                        v += frac;
                }
        }

        if (v > INT_MAX) {
                ECHO_TOKEN(tok, s, (size_t) (e - s));
                return fail(ps, "number '%s' is too large", tok);
        }

        *p = e;
        *ret = (int) v;
        return 0;
}

static int parse_item(const struct parser *ps, const char **p, bool usec, struct item *ret) {
        struct item it = { .stop = -1 };
        const char *e = *p;
        int r;

        r = parse_number(ps, &e, usec, &it.start);
        if (r < 0)
                return r;

        if (e[0] == '.' && e[1] == '.') {
                e += 2;
                r = parse_number(ps, &e, usec, &it.stop);
                if (r < 0)
                        return r;
                it.repeat = usec ? USEC_PER_SEC : 1;
        }

        if (*e == '/') {
                e++;
                r = parse_number(ps, &e, usec, &it.repeat);
                if (r < 0)
                        return r;
                if (it.repeat == 0)
                        it.repeat = STEP_ZERO;
        } else if (usec && it.stop >= 0 && it.start + USEC_PER_SEC > it.stop) {
                /* A seconds range steps by whole seconds unless told otherwise; systemd refuses one
                 * that would not get to its second value rather than reading it as a single one. */
                char a[32], b[32];

                return fail(ps, it.stop < it.start ? "second range %s..%s runs backwards" :
                                "second range %s..%s spans less than its step of one second",
                            format_value(a, sizeof a, FIELD_SECOND, it.start, false),
                            format_value(b, sizeof b, FIELD_SECOND, it.stop, false));
        }

        *p = e;
        *ret = it;
        return 0;
}

/* Reads '*' or a comma list of items. Which field it is gets decided by what follows, so checking
 * the values is left to chain_finish(). */
static int parse_chain(const struct parser *ps, const char **p, bool usec, struct chain *ret) {
        _cleanup_free_ struct item *items = NULL;
        const char *e = *p;
        size_t n = 0;
        int r;

        if (*e == '*') {
                e++;
                if (*e == '/' || *e == '.')
                        return fail(ps, "'*' cannot take a range or a step; write the start instead, "
                                        "e.g. '0/15' for every 15 from 0");
                if (*e == ',')
                        return fail(ps, "'*' cannot be part of a list");
                if (!is_chain_end(*e))
                        return unexpected(ps, e);

                /* For seconds '*' means every whole second, not every microsecond. */
                if (usec) {
                        items = xmalloc(sizeof *items);
                        items[n++] = (struct item) { .start = 0, .stop = -1, .repeat = USEC_PER_SEC };
                }

                *p = e;
                *ret = (struct chain) { .items = TAKE_PTR(items), .n = n };
                return 0;
        }

        for (;;) {
                struct item it;

                r = parse_item(ps, &e, usec, &it);
                if (r < 0)
                        return r;

                items = xrealloc(items, (n + 1) * sizeof *items);
                items[n++] = it;

                if (*e != ',')
                        break;
                e++;
        }

        if (!is_chain_end(*e))
                return unexpected(ps, e);

        *p = e;
        *ret = (struct chain) { .items = TAKE_PTR(items), .n = n };
        return 0;
}

static int item_compare(const void *a, const void *b) {
        const struct item *x = a, *y = b;

        if (x->start != y->start)
                return x->start < y->start ? -1 : 1;
        if (x->stop != y->stop)
                return x->stop < y->stop ? -1 : 1;
        if (x->repeat != y->repeat)
                return x->repeat < y->repeat ? -1 : 1;
        return 0;
}

static int fix_year(int y) {
        /* Two-digit years, as systemd reads them: 12 → 2012, 89 → 1989. */
        if (y >= 0 && y < 70)
                return y + 2000;
        if (y >= 70 && y < 100)
                return y + 1900;
        return y;
}

/* Settles a parsed chain as field 'f' in systemd's order, which decides what is valid: normalize
 * ("*:1..99/50" is "*:01..51/50"), sort and drop duplicates, then check each item in sorted order. */
static int chain_finish(const struct parser *ps, struct chain *c, enum field f, bool eom) {
        const char *name = fields[f].name;
        int min = fields[f].min, max = fields[f].max;
        char a[32], b[32], lo[32], hi[32];
        size_t k = 0;

        for (size_t i = 0; i < c->n; i++) {
                struct item *it = &c->items[i];

                if (it->repeat == STEP_ZERO)
                        return fail(ps, "%s step must be positive", name);

                if (f == FIELD_YEAR) {
                        it->start = fix_year(it->start);
                        if (it->stop >= 0)
                                it->stop = fix_year(it->stop);
                }

                /* Trim 'stop' to the last value actually reached; a range reaching only its start
                 * is that single value. */
                if (it->stop > it->start && it->repeat > 0)
                        it->stop -= (it->stop - it->start) % it->repeat;
                if (it->stop == it->start) {
                        it->stop = -1;
                        it->repeat = 0;
                }
        }

        if (c->n > 1) {
                qsort(c->items, c->n, sizeof *c->items, item_compare);
                for (size_t i = 1; i < c->n; i++)
                        if (item_compare(&c->items[k], &c->items[i]) != 0)
                                c->items[++k] = c->items[i];
                c->n = k + 1;
        }

        format_value(lo, sizeof lo, f, min, eom);
        for (size_t i = 0; i < c->n; i++) {
                const struct item *it = &c->items[i];
                const char *why = "";

                /* Counted back from the end, ~28 is the furthest day every month has. systemd
                 * then lowers that limit by 3 more for each further item of the sorted list (its
                 * check recurses with the lowered value); we must refuse what it refuses. */
                if (eom) {
                        max = fields[f].max - 3 * (int) (i + 1);
                        why = i == 0 ? " (counted back from the end of the month)" :
                                       " (systemd lowers the limit by 3 for each further item of a '~' list)";
                        if (max < min)
                                return fail(ps, "too many days counted back from the end of the month%s",
                                            why);
                }
                format_value(hi, sizeof hi, f, max, eom);

                if (it->start < min || it->start > max)
                        return fail(ps, "%s %s is out of range %s..%s%s", name,
                                    format_value(a, sizeof a, f, it->start, eom), lo, hi, why);

                if (it->repeat > max - min)
                        return fail(ps, "%s step %s is too large (at most %s)", name,
                                    format_value(a, sizeof a, f, it->repeat, false),
                                    format_value(b, sizeof b, f, max - min, false));

                if (it->stop >= 0) {
                        if (it->stop > max)
                                return fail(ps, "%s %s is out of range %s..%s%s", name,
                                            format_value(a, sizeof a, f, it->stop, eom), lo, hi, why);
                        /* After the trimming above, only a reversed range can get here. */
                        if (it->start + it->repeat > it->stop)
                                return fail(ps, "%s range %s..%s runs backwards", name,
                                            format_value(a, sizeof a, f, it->start, eom),
                                            format_value(b, sizeof b, f, it->stop, eom));
                } else if (it->repeat > 0 &&
                           (eom ? it->start - it->repeat < min : it->start + it->repeat > max))
                        /* systemd wants an open repetition to fire at least twice. */
                        return fail(ps, "%s %s/%s never repeats within %s..%s", name,
                                    format_value(a, sizeof a, f, it->start, eom),
                                    format_value(b, sizeof b, f, it->repeat, false), lo, hi);
        }

        return 0;
}

static int parse_weekdays(const struct parser *ps, const char **p, calendar_spec *c) {
        const char *e = *p;
        int range_from = -1;            /* left end of the range being read, kept until a ',' */
        unsigned bits = 0;

        for (;;) {
                size_t n = span_letters(e);
                int d;

                if (n == 0) {
                        char rest[ECHO_SIZE(TOKEN_MAX) + 16];

                        describe_rest(rest, sizeof rest, e);
                        return fail(ps, "expected a weekday at %s", rest);
                }

                d = weekday_lookup(e, n);
                if (d < 0)
                        return unknown_weekday(ps, e, n);
                e += n;

                if (*e != 0 && *e != ' ' && *e != ',' && *e != '.' && *e != '-')
                        return unexpected(ps, e);

                if (range_from >= 0) {
                        if (range_from > d)
                                return fail(ps, "weekday range %s..%s runs backwards; weeks start on Monday",
                                            weekday_names[range_from][0], weekday_names[d][0]);
                        for (int i = range_from; i <= d; i++)
                                bits |= 1u << i;
                } else
                        bits |= 1u << d;

                if (*e == 0 || *e == ' ')
                        break;

                if (*e == ',') {
                        range_from = -1;
                        e++;
                } else {
                        if (range_from >= 0) {
                                char tok[ECHO_SIZE(TOKEN_MAX)];

                                ECHO_TOKEN(tok, e, strlen(e));
                                return fail(ps, "unexpected '%s' after a weekday range", tok);
                        }
                        /* "Mon-Fri" is systemd's older spelling of "Mon..Fri". */
                        if (*e == '.' && e[1] != '.')
                                return unexpected(ps, e);
                        range_from = d;
                        e += *e == '.' ? 2 : 1;
                }

                /* A trailing ',' is fine, a range without an end is not. */
                if (*e == 0 || *e == ' ') {
                        if (range_from >= 0)
                                return fail(ps, "weekday range %s.. has no end",
                                            weekday_names[range_from][0]);
                        break;
                }
        }

        c->weekdays = bits;
        *p = e + strspn(e, " ");
        return 0;
}

/* "@SECONDS": one fixed instant, in UTC by definition. */
static int parse_timestamp(const struct parser *ps, const char **p, calendar_spec *c) {
        const char *s = *p + 1, *e = s;
        struct stamp st;
        int64_t v = 0, end = days_before_year(MAX_YEAR + 1) * 24 * 3600;

        if (!is_digit(*e)) {
                char rest[ECHO_SIZE(TOKEN_MAX) + 16];

                describe_rest(rest, sizeof rest, e);
                return fail(ps, "expected seconds since the epoch after '@' at %s", rest);
        }
        for (; is_digit(*e); e++)
                v = v >= end ? v : v * 10 + (*e - '0');
        if (v >= end) {
                char tok[ECHO_SIZE(TOKEN_MAX)];

                ECHO_TOKEN(tok, s, (size_t) (e - s));
                return fail(ps, "timestamp @%s is out of range: it must fall in the years %d..%d",
                            tok, MIN_YEAR, MAX_YEAR);
        }

        stamp_from_usec(v * USEC_PER_SEC, &st);
        for (int f = 0; f < _FIELD_MAX; f++)
                chain_const(&c->chain[f], st.v[f]);
        c->utc = true;
        *p = e;
        return 0;
}

/* "[YEAR-]MONTH-DAY" or "MONTH~DAY" …; leaves *p alone if what is there is a time. */
static int parse_date(const struct parser *ps, const char **p, calendar_spec *c) {
        _cleanup_(chain_free) struct chain first = {}, second = {}, third = {};
        const char *e = *p;
        int r;

        if (*e == 0)
                return 0;

        r = parse_chain(ps, &e, false, &first);
        if (r < 0)
                return r;

        /* Nothing more, or a ':': that was an hour, not a year or month. */
        if (*e == 0 || *e == ':')
                return 0;

        if (*e == '~')
                c->end_of_month = true;
        else if (*e != '-')
                return unexpected(ps, e);
        e++;

        r = parse_chain(ps, &e, false, &second);
        if (r < 0)
                return r;

        if (*e == 0 || *e == ' ') {
                c->chain[FIELD_MONTH] = chain_take(&first);
                c->chain[FIELD_DAY] = chain_take(&second);
        } else {
                if (c->end_of_month)
                        return fail(ps, "'~' can only separate the month from the day");
                if (*e == '~')
                        c->end_of_month = true;
                else if (*e != '-')
                        return unexpected(ps, e);
                e++;

                r = parse_chain(ps, &e, false, &third);
                if (r < 0)
                        return r;
                if (*e != 0 && *e != ' ')
                        return unexpected(ps, e);

                c->chain[FIELD_YEAR] = chain_take(&first);
                c->chain[FIELD_MONTH] = chain_take(&second);
                c->chain[FIELD_DAY] = chain_take(&third);
        }

        /* "~*" is every day; systemd drops the '~' then, and so do we. */
        if (c->chain[FIELD_DAY].n == 0)
                c->end_of_month = false;

        for (enum field f = FIELD_YEAR; f <= FIELD_DAY; f++) {
                r = chain_finish(ps, &c->chain[f], f, f == FIELD_DAY && c->end_of_month);
                if (r < 0)
                        return r;
        }

        *p = e + strspn(e, " ");
        return 0;
}

/* "HOUR:MINUTE[:SECOND]"; nothing at all means 00:00:00. */
static int parse_time(const struct parser *ps, const char **p, calendar_spec *c) {
        _cleanup_(chain_free) struct chain hour = {}, minute = {}, second = {};
        const char *e = *p;
        int r;

        if (*e == 0) {
                chain_const(&hour, 0);
                chain_const(&minute, 0);
                chain_const(&second, 0);
        } else {
                r = parse_chain(ps, &e, false, &hour);
                if (r < 0)
                        return r;
                if (*e == 0)
                        return fail(ps, "expected ':' and minutes after the hour (HH:MM or HH:MM:SS)");
                if (*e != ':')
                        return unexpected(ps, e);
                e++;

                r = parse_chain(ps, &e, false, &minute);
                if (r < 0)
                        return r;
                if (*e == ':') {
                        e++;
                        r = parse_chain(ps, &e, true, &second);
                        if (r < 0)
                                return r;
                } else
                        chain_const(&second, 0);
                if (*e != 0)
                        return unexpected(ps, e);
        }

        c->chain[FIELD_HOUR] = chain_take(&hour);
        c->chain[FIELD_MINUTE] = chain_take(&minute);
        c->chain[FIELD_SECOND] = chain_take(&second);
        for (enum field f = FIELD_HOUR; f <= FIELD_SECOND; f++) {
                r = chain_finish(ps, &c->chain[f], f, false);
                if (r < 0)
                        return r;
        }

        *p = e;
        return 0;
}

/* Gives a single unknown word, or a shortcut with something after it, a better message than the
 * grammar's "expected a number". */
static int check_words(const struct parser *ps, const char *s) {
        size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-");
        char tok[ECHO_SIZE(TOKEN_MAX)];
        const char *guess;
        bool is_weekday;

        if (n == 0)
                return 0;

        ECHO_TOKEN(tok, s, n);
        if (shortcut_lookup(s, n))
                return fail(ps, "'%s' cannot be combined with anything but a trailing ' UTC'", tok);

        if (s[n] != 0 || weekday_lookup(s, span_letters(s)) >= 0)
                return 0;

        guess = suggest(s, n, true, &is_weekday);
        if (guess && is_weekday)
                return fail(ps, "unknown weekday '%s'; did you mean '%s'?", tok, guess);
        if (guess)
                return fail(ps, "not a calendar expression; did you mean '%s'?", guess);
        return fail(ps, "not a calendar expression; expected a shortcut such as 'daily' "
                        "or a form such as 'Mon *-*-* 03:00'");
}

/* systemd would take "daily Europe/Berlin" and run it in that zone; we evaluate in UTC only, so
 * accepting it would shift the schedule silently. Refuse it by name. */
static int check_time_zone(const struct parser *ps, const char *s) {
        const char *w = strrchr(s, ' ');
        char tok[ECHO_SIZE(TOKEN_MAX)];

        if (!w || !is_letter(w[1]))
                return 0;
        w++;

        /* A weekday or shortcut at the end is misplaced, not a zone: the grammar says where. */
        if (weekday_lookup(w, span_letters(w)) >= 0 || shortcut_lookup(w, strlen(w)))
                return 0;

        ECHO_TOKEN(tok, w, strlen(w));
        return fail(ps, "time zone '%s' is not supported; only UTC is (schedules are evaluated in UTC)", tok);
}

static int parse_body(const struct parser *ps, const char *s, calendar_spec *c) {
        const char *expansion = shortcut_lookup(s, strlen(s)), *p = s;
        int r;

        if (expansion)
                return parse_body(ps, expansion, c);

        r = check_words(ps, s);
        if (r < 0)
                return r;

        if (is_letter(*p)) {
                r = parse_weekdays(ps, &p, c);
                if (r < 0)
                        return r;
        }

        if (*p == '@')
                r = parse_timestamp(ps, &p, c);
        else {
                r = parse_date(ps, &p, c);
                if (r >= 0)
                        r = parse_time(ps, &p, c);
        }
        if (r < 0)
                return r;

        if (*p != 0)
                return unexpected(ps, p);

        if (c->weekdays == WEEKDAYS_ALL)
                c->weekdays = 0;
        return 0;
}

int calendar_spec_parse(const char *expr, calendar_spec **ret, char **ret_error) {
        _cleanup_(calendar_spec_freep) calendar_spec *c = NULL;
        _cleanup_free_ char *s = NULL;
        struct parser ps = { .expr = expr, .ret_error = ret_error };
        size_t n;
        int r;

        if (!expr || !*expr) {
                if (ret_error)
                        *ret_error = xstrdup("calendar expression is empty");
                return -EINVAL;
        }

        n = strlen(expr);
        if (n > CALENDAR_EXPR_MAX)
                return fail(&ps, "expression is too long (%zu bytes, at most %d)", n, CALENDAR_EXPR_MAX);
        if (expr[0] == ' ')
                return fail(&ps, "unexpected leading whitespace");

        c = xcalloc(1, sizeof *c);
        s = xstrdup(expr);

        /* Like systemd, " UTC" in any case; a leading space was refused above, so something precedes it. */
        if (n >= 4 && strcasecmp(s + n - 4, " UTC") == 0) {
                s[n - 4] = 0;
                c->utc = true;
        } else {
                r = check_time_zone(&ps, s);
                if (r < 0)
                        return r;
        }

        r = parse_body(&ps, s, c);
        if (r < 0)
                return r;

        if (ret)
                *ret = TAKE_PTR(c);
        return 0;
}

/* The smallest value in from..max that the chain allows. 'last_day' is the month's last day when
 * days count back from it, else 0. */
static int chain_next(const struct chain *c, int from, int max, int last_day, int *ret) {
        int64_t best = INT64_MAX;

        if (c->n == 0) {
                if (from > max)
                        return -ENOENT;
                *ret = from;
                return 0;
        }

        for (size_t i = 0; i < c->n; i++) {
                const struct item *it = &c->items[i];
                int64_t start = it->start, stop = it->stop, v;

                if (last_day > 0) {
                        /* ~1 is the last day. A range ~1..~3 flips into ascending days, so the step
                         * walks forwards, which hits the same days because the range was trimmed to
                         * a whole number of steps. */
                        start = last_day - it->start + 1;
                        if (it->stop >= 0) {
                                stop = start;
                                start = last_day - it->stop + 1;
                        }
                }

                if (start >= from)
                        v = start;
                else if (it->repeat > 0) {
                        v = start + (from - start + it->repeat - 1) / it->repeat * it->repeat;
                        if (stop >= 0 && v > stop)
                                continue;
                } else
                        continue;

                if (v < best)
                        best = v;
        }

        if (best > max)
                return -ENOENT;
        *ret = (int) best;
        return 0;
}

int calendar_spec_next(const calendar_spec *c, int64_t after_usec, int64_t *ret_next_usec) {
        int64_t end = days_before_year(MAX_YEAR + 1) * USEC_PER_DAY;
        enum field f = FIELD_YEAR;
        struct stamp s;

        if (!c)
                return -EINVAL;
        if (after_usec >= end - 1)
                return -ENOENT;

        /* Strictly after, as systemd; nothing exists before 1970. */
        stamp_from_usec(after_usec < 0 ? 0 : after_usec + 1, &s);

        /* Field by field from the year down: take the next allowed value of each; where a field
         * has none left, move to the start of the next larger unit and check again from the top,
         * since that carry may have changed any coarser field. */
        while (f < _FIELD_MAX) {
                int last_day = f == FIELD_DAY && c->end_of_month ? stamp_max(&s, FIELD_DAY) : 0, v;

                if (s.v[FIELD_YEAR] > MAX_YEAR)
                        return -ENOENT;

                if (chain_next(&c->chain[f], s.v[f], stamp_max(&s, f), last_day, &v) < 0) {
                        if (f == FIELD_YEAR)
                                return -ENOENT;
                        stamp_bump(&s, f - 1);
                        f = FIELD_YEAR;
                        continue;
                }
                if (v != s.v[f]) {
                        s.v[f] = v;
                        stamp_reset_below(&s, f);
                }

                if (f == FIELD_DAY && c->weekdays != 0 && !(c->weekdays & (1u << stamp_weekday(&s)))) {
                        stamp_bump(&s, FIELD_DAY);
                        f = FIELD_YEAR;
                        continue;
                }

                f++;
        }

        if (ret_next_usec)
                *ret_next_usec = stamp_to_usec(&s);
        return 0;
}

struct buf {
        char *s;
        size_t n, size;
};

_printf_(2, 3)
static void buf_printf(struct buf *b, const char *fmt, ...) {
        va_list ap;
        int k;

        for (;;) {
                va_start(ap, fmt);
                k = vsnprintf(b->s + b->n, b->size - b->n, fmt, ap);
                va_end(ap);
                if (k < 0)
                        abort();
                if ((size_t) k < b->size - b->n) {
                        b->n += k;
                        return;
                }
                b->size = 2 * (b->n + k + 1);
                b->s = xrealloc(b->s, b->size);
        }
}

static void print_value(struct buf *b, enum field f, int v, int width) {
        int unit = fields[f].unit;

        buf_printf(b, "%0*d", width, v / unit);
        if (v % unit != 0)
                buf_printf(b, ".%06d", v % unit);
}

static void print_chain(struct buf *b, const struct chain *c, enum field f) {
        int unit = fields[f].unit, width = fields[f].width;

        /* Seconds '*' is the item 0/1. Only alone does it print as '*': systemd 252 prints '*' for
         * "*:*:0/1,5.5" too and so loses the 5.5; later systemd prints the list, and so do we. */
        if (c->n == 0 ||
            (f == FIELD_SECOND && c->n == 1 && c->items[0].start == 0 && c->items[0].stop < 0 &&
             c->items[0].repeat == USEC_PER_SEC)) {
                buf_printf(b, "*");
                return;
        }

        for (size_t i = 0; i < c->n; i++) {
                const struct item *it = &c->items[i];

                if (i > 0)
                        buf_printf(b, ",");
                print_value(b, f, it->start, width);
                if (it->stop >= 0) {
                        buf_printf(b, "..");
                        print_value(b, f, it->stop, width);
                }
                /* A range's own step of one unit goes without saying. */
                if (it->repeat > 0 && !(it->stop >= 0 && it->repeat == unit)) {
                        buf_printf(b, "/");
                        print_value(b, f, it->repeat, 0);
                }
        }
}

char *calendar_spec_to_string(const calendar_spec *c) {
        struct buf b = { .s = xmalloc(64), .size = 64 };
        bool comma = false;

        b.s[0] = 0;
        if (!c)
                return b.s;

        /* Runs of three or more days as "A..C", pairs as "A,B", like systemd. */
        for (int d = 0; d < 7;) {
                int e = d;

                if (!(c->weekdays & (1u << d))) {
                        d++;
                        continue;
                }
                while (e + 1 < 7 && (c->weekdays & (1u << (e + 1))))
                        e++;

                buf_printf(&b, "%s%s", comma ? "," : "", weekday_names[d][0]);
                if (e > d)
                        buf_printf(&b, "%s%s", e > d + 1 ? ".." : ",", weekday_names[e][0]);
                comma = true;
                d = e + 1;
        }
        if (comma)
                buf_printf(&b, " ");

        print_chain(&b, &c->chain[FIELD_YEAR], FIELD_YEAR);
        buf_printf(&b, "-");
        print_chain(&b, &c->chain[FIELD_MONTH], FIELD_MONTH);
        buf_printf(&b, c->end_of_month ? "~" : "-");
        print_chain(&b, &c->chain[FIELD_DAY], FIELD_DAY);
        buf_printf(&b, " ");
        print_chain(&b, &c->chain[FIELD_HOUR], FIELD_HOUR);
        buf_printf(&b, ":");
        print_chain(&b, &c->chain[FIELD_MINUTE], FIELD_MINUTE);
        buf_printf(&b, ":");
        print_chain(&b, &c->chain[FIELD_SECOND], FIELD_SECOND);
        if (c->utc)
                buf_printf(&b, " UTC");

        return b.s;
}

void calendar_spec_free(calendar_spec *c) {
        if (!c)
                return;
        for (int f = 0; f < _FIELD_MAX; f++)
                free(c->chain[f].items);
        free(c);
}
