/* Edit distance and nearest-candidate lookup for error hints. */
#include <ctype.h>

#include "hint.h"
#include "macro.h"

size_t edit_distance(const char *a, const char *b, size_t max) {
        size_t la = strlen(a), lb = strlen(b);
        size_t row[64 + 1];

        if (la > 64 || lb > 64)
                return max + 1;
        if ((la > lb ? la - lb : lb - la) > max)
                return max + 1;
        for (size_t j = 0; j <= lb; j++)
                row[j] = j;
        for (size_t i = 1; i <= la; i++) {
                size_t prev = row[0], best;
                row[0] = i;
                best = row[0];
                for (size_t j = 1; j <= lb; j++) {
                        size_t cur = row[j];
                        size_t cost = tolower((unsigned char) a[i - 1]) == tolower((unsigned char) b[j - 1]) ? 0 : 1;
                        size_t v = prev + cost;
                        if (row[j] + 1 < v)
                                v = row[j] + 1;
                        if (row[j - 1] + 1 < v)
                                v = row[j - 1] + 1;
                        row[j] = v;
                        prev = cur;
                        if (v < best)
                                best = v;
                }
                if (best > max)
                        return max + 1;
        }
        return row[lb];
}

const char *closest_word(const char *word, const char *const *candidates, size_t n) {
        size_t len = strlen(word);
        /* A hint must be closer than a third of the word, or it is noise. */
        size_t max = len < 4 ? 1 : len / 3 + 1;
        const char *best = NULL;
        size_t best_d = max + 1;

        for (size_t i = 0; i < n; i++) {
                size_t d = edit_distance(word, candidates[i], max);
                if (d < best_d) {
                        best_d = d;
                        best = candidates[i];
                }
        }
        return best;
}
