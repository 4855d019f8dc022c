/* The daemon's log: structured journal entries (MESSAGE=, PRIORITY=, DATABASE=, REVISION=) when
 * stderr is the journal, otherwise one plain line per message on stderr. No secret ever. */
#pragma once

#include <stdint.h>
#include <syslog.h>

#include "macro.h"

/* database may be NULL, revision 0: the field is left out. */
void log_full(int priority, const char *database, uint64_t revision, const char *fmt, ...) _printf_(4, 5);
#define log_error(...) log_full(LOG_ERR, NULL, 0, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, NULL, 0, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, NULL, 0, __VA_ARGS__)
