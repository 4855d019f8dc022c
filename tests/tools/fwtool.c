/* Test tool: the firewall reconciler alone, on an unsigned document, timed (bench/firewall).
 * Never installed.
 *
 *   fwtool apply STATE_DIR DOC    converge table inet infrastream (in the current network
 *                                 namespace) to DOC; print the results, "reconcile_ms T" (socket
 *                                 opened, observed, planned, committed; reading and decoding DOC
 *                                 excluded), "kernel_ms T" (its share spent in the kernel
 *                                 committing the batch) and "close_ms T" (closing the socket,
 *                                 which after a deletion waits for the kernel to free what was
 *                                 deleted)
 */
#include <stdio.h>
#include <time.h>

#include "config.h"
#include "document.h"
#include "fileio.h"
#include "firewall.h"
#include "macro.h"
#include "nft.h"
#include "results.h"

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
        _cleanup_free_ char *json = NULL, *err = NULL;
        _cleanup_(doc_document_freep) doc_document *d = NULL;
        agent_config cfg = {};
        results res = {};
        size_t size;
        nft_socket *sock = NULL;
        double t0, t1, t2, kernel;
        int r;

        if (argc != 4 || !streq(argv[1], "apply")) {
                fputs("usage: fwtool apply STATE_DIR DOC\n", stderr);
                return 2;
        }
        r = read_full_file(argv[3], DOC_MAX_SIZE, &json, &size);
        if (r < 0) {
                fprintf(stderr, "fwtool: %s: %s\n", argv[3], strerror(-r));
                return 2;
        }
        if (doc_decode(json, size, &d, NULL, NULL, &err) < 0) {
                fprintf(stderr, "fwtool: %s: %s\n", argv[3], err);
                return 2;
        }
        r = mkdir_p(argv[2], 0700);
        if (r < 0) {
                fprintf(stderr, "fwtool: %s: %s\n", argv[2], strerror(-r));
                return 2;
        }
        cfg.state_dir = argv[2];
        t0 = now_ms();
        r = nft_socket_open(&sock);
        if (r < 0) {
                fprintf(stderr, "fwtool: cannot open a netlink socket: %s\n", strerror(-r));
                return 1;
        }
        r = firewall_reconcile_on(sock, &cfg, d, &res);
        t1 = now_ms();
        kernel = nft_socket_commit_ms(sock);
        nft_socket_close(sock);
        t2 = now_ms();
        results_print(&res, stdout);
        printf("reconcile_ms %.3f\nkernel_ms %.3f\nclose_ms %.3f\n", t1 - t0, kernel, t2 - t1);
        results_done(&res);
        return r < 0 ? 1 : 0;
}
