/* One apply: verify the signed document, check it is newer, persist it, run the reconcilers
 * in order, record the results. */
#pragma once

#include <stddef.h>

#include "config.h"
#include "results.h"

typedef enum apply_outcome {
        APPLY_DONE,           /* every resource converged */
        APPLY_FAILED,         /* applied, but some resource failed (results say which) */
} apply_outcome;

/* Rejections (bad signature, older revision, wrong host, malformed) return a negative errno
 * with *ret_error set, and change nothing. */
int agent_apply(const agent_config *cfg, const char *json, size_t size, const char *trust_key, results *res,
                apply_outcome *ret_outcome, char **ret_error);
