/* The agent's side of the LUKS2 helper (luks-client.h). */
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fileio.h"
#include "luks-client.h"
#include "macro.h"

static int unreachable(const char *path, int r, char **ret_error) {
        *ret_error = xasprintf("cannot reach the LUKS2 helper at %s: %s (is infrastream-luks.socket running? "
                               "systemctl status infrastream-luks.socket)",
                               path, strerror(-r));
        return r;
}

int luks_client_call(const char *socket_path, const wire_luks_request *req, wire_luks_response *ret,
                     char **ret_error) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct timeval tv = { .tv_sec = LUKS_CLIENT_TIMEOUT_SEC };
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *answer = NULL, *msg = NULL;
        char *text;
        ssize_t n;
        int r;

        if (strlen(socket_path) >= sizeof(sa.sun_path)) {
                *ret_error = xasprintf("luks-helper %s: longer than a socket path may be", socket_path);
                return -ENAMETOOLONG;
        }
        strcpy(sa.sun_path, socket_path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return unreachable(socket_path, -errno, ret_error);
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return unreachable(socket_path, -errno, ret_error);

        text = wire_luks_request_text(req);
        r = write_all(fd, text, strlen(text));
        explicit_bzero(text, strlen(text));
        free(text);
        if (r >= 0 && shutdown(fd, SHUT_WR) < 0)
                r = -errno;
        if (r < 0) {
                *ret_error = xasprintf("cannot send the request to the LUKS2 helper at %s: %s", socket_path, strerror(-r));
                return r;
        }

        answer = xmalloc(WIRE_MAX_SIZE);
        n = read_to_eof(fd, answer, WIRE_MAX_SIZE);
        if (n < 0) {
                *ret_error = xasprintf("no answer from the LUKS2 helper at %s: %s", socket_path,
                                       n == -EAGAIN ? "timed out" : strerror((int) -n));
                return (int) n;
        }
        if (n == 0) {
                *ret_error = xasprintf("the LUKS2 helper at %s closed the connection without an answer "
                                       "(journalctl -u 'infrastream-luks@*' says why)",
                                       socket_path);
                return -EPROTO;
        }
        if (wire_error_decode(answer, (size_t) n, &msg, NULL) >= 0) {
                *ret_error = TAKE_PTR(msg);
                return -EIO;
        }
        r = wire_luks_response_decode(answer, (size_t) n, ret, &msg);
        if (r < 0) {
                *ret_error = xasprintf("the LUKS2 helper's answer is malformed: %s", msg);
                return -EPROTO;
        }
        return 0;
}
