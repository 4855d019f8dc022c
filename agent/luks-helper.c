/* infrastream-luks-helper: the agent's hands for LUKS2 (luks-volume.h), in a unit of its own so the
 * agent never holds CAP_SYS_ADMIN, device-mapper or a block device. infrastream-luks.socket
 * (Accept=yes, root only) starts one per connection: it reads one request (wire_luks_request: inspect
 * the device, or unlock it with the keys the agent fetched from the controller), answers
 * (wire_luks_response or {"error": ...}), and exits. It runs in the host's mount namespace: its
 * mount of the data root is everyone's. One log line per request; never a key. */
#include <getopt.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "fileio.h"
#include "jsondec.h"
#include "log.h"
#include "luks-volume.h"
#include "macro.h"
#include "systemd.h"
#include "wire.h"

#define REQUEST_TIMEOUT_SEC 30 /* for the request to arrive; the work itself takes what it takes */

static void usage(FILE *f) {
        fputs("Usage: infrastream-luks-helper\n"
              "\n"
              "Opens, formats and mounts the agent's LUKS2 data device (data-device in agent.conf) for\n"
              "infrastream-agent, which holds none of the privileges that needs. Started by\n"
              "infrastream-luks.socket for each connection (one request on fd 3); not run by hand.\n"
              "\n"
              "  --version       print the version\n",
              f);
}

/* Answer, then read what the client still sends (a request refused unread or half read) up to its
 * end: closing with unread data resets the connection, and the client would lose the answer. */
static int reply(int fd, json_object *o) {
        const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        int r = write_all(fd, text, strlen(text));
        char sink[4096];

        json_object_put(o);
        if (r >= 0)
                (void) shutdown(fd, SHUT_WR);
        for (size_t total = 0; total < 16 * WIRE_MAX_SIZE;) {
                ssize_t n = read(fd, sink, sizeof(sink));
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                total += (size_t) n;
        }
        return r;
}

static int reply_error(int fd, const char *msg) {
        json_object *o = jsonenc_checked(json_object_new_object());

        jsonenc_add(o, "error", jsonenc_string(msg));
        return reply(fd, o);
}

static int serve(int fd) {
        struct timeval tv = { .tv_sec = REQUEST_TIMEOUT_SEC };
        struct ucred cred;
        socklen_t len = sizeof(cred);
        _cleanup_free_ char *buf = xmalloc(WIRE_MAX_SIZE), *err = NULL;
        wire_luks_request req = {};
        wire_luks_response resp = {};
        ssize_t n;
        int r;

        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
                log_error("cannot read the peer's credentials: %m");
                return -errno;
        }
        /* The socket is 0600 root's; this holds even if someone loosens it. */
        if (cred.uid != 0) {
                log_warning("refused a request from uid %u (pid %d): only root may use this helper", (unsigned) cred.uid,
                            (int) cred.pid);
                return reply_error(fd, "only root may use the LUKS2 helper");
        }
        n = read_to_eof(fd, buf, WIRE_MAX_SIZE);
        if (n < 0) {
                err = xasprintf("cannot read the request: %s",
                                n == -EFBIG ? "larger than 1 MiB" : n == -EAGAIN ? "timed out" : strerror((int) -n));
                r = (int) n;
        } else {
                r = wire_luks_request_decode(buf, (size_t) n, &req, &err);
                if (r < 0) {
                        char *e = xasprintf("bad request: %s", err);
                        free(err);
                        err = e;
                }
        }
        explicit_bzero(buf, WIRE_MAX_SIZE);
        if (r >= 0) {
                if (req.op == WIRE_LUKS_INSPECT)
                        r = luks_volume_inspect(req.device, req.mount_point, &resp, &err);
                else
                        r = luks_volume_unlock(req.device, req.mount_point, req.keys, req.n_keys, &resp, &err);
        }
        if (r < 0) {
                if (req.device)
                        log_error("%s %s: %s", req.op == WIRE_LUKS_INSPECT ? "inspect" : "unlock", req.device, err);
                else
                        log_error("%s", err);
                r = reply_error(fd, err);
        } else {
                /* Inspecting is what status does: quiet. */
                if (req.op == WIRE_LUKS_UNLOCK)
                        log_info("unlock %s: %s%zu database%s with a keyslot, %s at %s", req.device,
                                 resp.formatted ? "formatted, " : "", resp.n_keyslots, resp.n_keyslots == 1 ? "" : "s",
                                 resp.mounted ? "mounted" : "not mounted", req.mount_point);
                r = reply(fd, wire_luks_response_to_json(&resp));
        }
        wire_luks_request_done(&req);
        wire_luks_response_done(&resp);
        return r;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'v' },
                {},
        };
        int c, fd;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        usage(stdout);
                        return 0;
                case 'v':
                        printf("infrastream-luks-helper %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        if (optind < argc) {
                fprintf(stderr, "infrastream-luks-helper: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        fd = systemd_accepted_connection();
        if (fd < 0) {
                fprintf(stderr, "infrastream-luks-helper: no connection to serve: it is started by "
                                "infrastream-luks.socket (Accept=yes), one connection on fd 3\n");
                return 2;
        }
        /* Keys pass through this process: no core dump, no ptrace by other root processes' peers. */
        (void) prctl(PR_SET_DUMPABLE, 0);
        umask(0077);
        /* A refusal delivered is a request served: the unit instance did its job. */
        return serve(fd) < 0 ? 1 : 0;
}
