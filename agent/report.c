/* POST /v1/report: the same status `agentctl status --json` prints, to the enrolled controller. */
#include "enroll.h"
#include "fileio.h"
#include "https-client.h"
#include "log.h"
#include "macro.h"
#include "report.h"
#include "wire.h"
#include "x509.h"

#define REPORT_TIMEOUT_MS 30000

int report_send(const agent_config *cfg, json_object *status, char **ret_error) {
        _cleanup_free_ char *err = NULL, *ca = NULL, *ca_path = enrollment_file(cfg, ENROLL_CA),
                            *cert = enrollment_file(cfg, ENROLL_HOST_CERT), *key = enrollment_file(cfg, ENROLL_HOST_KEY),
                            *url = NULL;
        enrollment e = {};
        https_call call = {};
        const char *body;
        int r;

        r = enrollment_load(cfg, &e, &err);
        if (r == -ENOENT)
                return r;
        if (r < 0) {
                *ret_error = TAKE_PTR(err);
                return r;
        }
        r = read_full_file(ca_path, X509_PEM_MAX, &ca, NULL);
        if (r < 0) {
                *ret_error = xasprintf("cannot read %s: %s", ca_path, strerror(-r));
                enrollment_done(&e);
                return r;
        }
        url = xasprintf("%s/v1/report", e.controller_url);
        body = json_object_to_json_string_ext(status, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        {
                https_client_tls tls = { .ca_pem = ca, .cert_file = cert, .key_file = key };
                call = (https_call) {
                        .method = "POST",
                        .url = url,
                        .peer_name = e.controller_name,
                        .body = body,
                        .body_size = strlen(body),
                        .timeout_ms = REPORT_TIMEOUT_MS,
                        .max_response = WIRE_MAX_SIZE,
                };
                r = https_perform(&tls, &call);
        }
        if (r < 0)
                *ret_error = xasprintf("report to the controller at %s: %s", e.controller_url,
                                       call.error ? call.error : strerror(-r));
        else if (call.status < 200 || call.status > 299) {
                _cleanup_free_ char *msg = call.response ? wire_error_message(call.response, call.response_size) : NULL;
                *ret_error = xasprintf("report to the controller at %s: refused with %ld%s%s", e.controller_url,
                                       call.status, msg ? ": " : "", strempty(msg));
                r = -EPROTO;
        }
        https_call_done(&call);
        enrollment_done(&e);
        return r < 0 ? r : 0;
}

void report_log_result(report_log *l, int r, const char *error) {
        if (r == -ENOENT)
                return; /* not enrolled: nobody to report to */
        if (r >= 0) {
                if (l->failing)
                        log_info("reports reach the controller again");
                l->failing = false;
                free(l->error);
                l->error = NULL;
                return;
        }
        /* Messages carry timings ("after 3 ms"): only the change from working to failing counts. */
        if (l->failing)
                return;
        log_warning("%s (logged once until reports work again)", strempty(error));
        l->failing = true;
        free(l->error);
        l->error = error ? xstrdup(error) : NULL;
}

void report_log_done(report_log *l) {
        free(l->error);
        *l = (report_log) {};
}
