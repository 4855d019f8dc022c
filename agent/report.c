/* POST /v1/report: the same status `agentctl status --json` prints, to the enrolled controller. */
#include "controller-client.h"
#include "log.h"
#include "macro.h"
#include "report.h"

#define REPORT_TIMEOUT_MS 30000

int report_send(const agent_config *cfg, json_object *status, char **ret_error) {
        _cleanup_(controller_client_done) controller_client c = {};
        _cleanup_free_ char *err = NULL;
        const char *body;
        int r;

        r = controller_client_open(cfg, &c, &err);
        if (r == -ENOENT)
                return r;
        if (r < 0) {
                *ret_error = TAKE_PTR(err);
                return r;
        }
        body = json_object_to_json_string_ext(status, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        return controller_post(&c, "report", "/v1/report", body, strlen(body), REPORT_TIMEOUT_MS, NULL, NULL, ret_error);
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
