/* The agent's side of mutual TLS towards its controller (controller-client.h): the enrolled files
 * in, one checked answer out. */
#include "controller-client.h"
#include "fileio.h"
#include "https-client.h"
#include "macro.h"
#include "wire.h"
#include "x509.h"

int controller_client_open(const agent_config *cfg, controller_client *ret, char **ret_error) {
        _cleanup_free_ char *ca_path = enrollment_file(cfg, ENROLL_CA), *ca = NULL;
        enrollment e = {};
        int r;

        r = enrollment_load(cfg, &e, ret_error);
        if (r < 0)
                return r;
        r = read_full_file(ca_path, X509_PEM_MAX, &ca, NULL);
        if (r < 0) {
                *ret_error = xasprintf("cannot read %s: %s", ca_path, strerror(-r));
                enrollment_done(&e);
                return r;
        }
        *ret = (controller_client) {
                .enrollment = e,
                .ca_pem = TAKE_PTR(ca),
                .cert_file = enrollment_file(cfg, ENROLL_HOST_CERT),
                .key_file = enrollment_file(cfg, ENROLL_HOST_KEY),
        };
        return 0;
}

void controller_client_done(controller_client *c) {
        enrollment_done(&c->enrollment);
        free(c->ca_pem);
        free(c->cert_file);
        free(c->key_file);
        *c = (controller_client) {};
}

int controller_post(const controller_client *c, const char *what, const char *path, const char *body, size_t size,
                    long timeout_ms, char **ret_response, size_t *ret_size, char **ret_error) {
        _cleanup_free_ char *url = xasprintf("%s%s", c->enrollment.controller_url, path);
        https_client_tls tls = { .ca_pem = c->ca_pem, .cert_file = c->cert_file, .key_file = c->key_file };
        https_call call = {
                .method = "POST",
                .url = url,
                .peer_name = c->enrollment.controller_name,
                .body = body,
                .body_size = size,
                .timeout_ms = timeout_ms,
                .max_response = WIRE_MAX_SIZE,
        };
        int r;

        r = https_perform(&tls, &call);
        if (r < 0) {
                *ret_error = xasprintf("%s to the controller at %s: %s", what, c->enrollment.controller_url,
                                       call.error ? call.error : strerror(-r));
                /* Too large is an answer, just not one of ours. */
                r = r == -EFBIG ? -EPROTO : -EHOSTUNREACH;
        } else if (call.status < 200 || call.status > 299) {
                _cleanup_free_ char *msg = call.response ? wire_error_message(call.response, call.response_size) : NULL;
                *ret_error = xasprintf("%s to the controller at %s: refused with %ld%s%s", what,
                                       c->enrollment.controller_url, call.status, msg ? ": " : "", strempty(msg));
                r = -EPROTO;
        } else {
                if (ret_size)
                        *ret_size = call.response_size;
                if (ret_response)
                        *ret_response = TAKE_PTR(call.response);
                r = 0;
        }
        https_call_done(&call);
        return r;
}
