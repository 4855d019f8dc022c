/* Test tool: make signed desired-state documents the controller would never produce (names
 * only a hand-written document can have, tampered signatures) and SCRAM verifiers for known
 * passwords. Never installed.
 *
 *   doctool sign KEY IN OUT        decode IN strictly, sign it with KEY, write OUT
 *   doctool verifier PASSWORD      print PASSWORD's SCRAM-SHA-256 verifier
 */
#include <stdio.h>

#include "document.h"
#include "fileio.h"
#include "macro.h"
#include "scram.h"
#include "sign.h"

int main(int argc, char **argv) {
        if (argc == 5 && streq(argv[1], "sign")) {
                _cleanup_free_ char *in = NULL, *out = NULL, *err = NULL;
                _cleanup_(doc_document_freep) doc_document *d = NULL;
                size_t size;
                int r = read_full_file(argv[3], DOC_MAX_SIZE, &in, &size);

                if (r < 0) {
                        fprintf(stderr, "doctool: %s: %s\n", argv[3], strerror(-r));
                        return 1;
                }
                if (doc_decode(in, size, &d, NULL, NULL, &err) < 0) {
                        fprintf(stderr, "doctool: %s: %s\n", argv[3], err);
                        return 1;
                }
                if (sign_document(d, argv[2], &out, &size, &err) < 0) {
                        fprintf(stderr, "doctool: sign: %s\n", err ? err : "failed");
                        return 1;
                }
                r = write_file_atomic(argv[4], out, size, 0600);
                if (r < 0) {
                        fprintf(stderr, "doctool: %s: %s\n", argv[4], strerror(-r));
                        return 1;
                }
                return 0;
        }
        if (argc == 3 && streq(argv[1], "verifier")) {
                _cleanup_free_ char *v = NULL;
                if (scram_verifier(argv[2], &v) < 0) {
                        fputs("doctool: cannot compute the verifier\n", stderr);
                        return 1;
                }
                puts(v);
                return 0;
        }
        fputs("usage: doctool sign KEY IN OUT | doctool verifier PASSWORD\n", stderr);
        return 2;
}
