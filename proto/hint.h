/* "Did you mean" hints for names users type: manifests, config files, command lines. */
#pragma once

#include <stddef.h>

/* Levenshtein distance (ASCII case folded), or max + 1 once it is certainly larger than max. */
size_t edit_distance(const char *a, const char *b, size_t max);
/* The candidate closest to word, or NULL when none is close enough to be a useful hint. */
const char *closest_word(const char *word, const char *const *candidates, size_t n);
