/* libFuzzer target for the desired-state decoder, the first code an agent runs on bytes from the
 * network: it must never crash, and whatever it accepts must re-encode to a fixed point. */
#include <stdint.h>
#include <stdio.h>

#include "document.h"
#include "macro.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(doc_document_freep) doc_document *d = NULL, *again = NULL;
        _cleanup_free_ char *error = NULL, *json = NULL, *json2 = NULL;
        doc_signature sig;
        bool has_sig;
        char hash[65];
        size_t n, n2;

        if (doc_decode((const char *) data, size, &d, &sig, &has_sig, &error) < 0)
                return 0;

        /* Accepted input must encode to something the decoder accepts again, and that must
         * encode to the very same bytes: otherwise hashes and signatures would not be stable. */
        json = doc_encode(d, &n);
        if (doc_decode(json, n, &again, NULL, NULL, &error) < 0) {
                fprintf(stderr, "re-encoded document rejected: %s\n%s", error, json);
                abort();
        }
        json2 = doc_encode(again, &n2);
        if (n != n2 || memcmp(json, json2, n) != 0) {
                fprintf(stderr, "encoding is not canonical:\n%s\n---\n%s", json, json2);
                abort();
        }
        doc_content_hash(d, hash);
        return 0;
}
