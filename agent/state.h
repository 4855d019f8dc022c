/* The agent's state directory: the last accepted document (desired.json), what was applied
 * with which results (applied.json), and the lock that keeps applies one at a time. */
#pragma once

#include <stdint.h>

#include "config.h"
#include "document.h"
#include "results.h"

typedef struct applied_state {
        uint64_t revision;    /* 0: nothing applied yet */
        char content_hash[65];
        char *commit;
        int64_t applied_at;   /* seconds since the epoch */
        results results;
} applied_state;

int state_prepare(const agent_config *cfg, char **ret_error);
/* Exclusive lock on the state directory; returns the fd to close, or -EWOULDBLOCK-ish errors. */
int state_lock(const agent_config *cfg, char **ret_error);
int state_load_applied(const agent_config *cfg, applied_state *ret, char **ret_error);
int state_save_applied(const agent_config *cfg, const applied_state *s, char **ret_error);
void applied_state_done(applied_state *s);
int state_save_desired(const agent_config *cfg, const char *json, size_t size, char **ret_error);
/* The last accepted document (verified when it was accepted), decoded strictly again. -ENOENT
 * with a message when nothing was applied yet. */
int state_load_desired(const agent_config *cfg, doc_document **ret, char **ret_error);
