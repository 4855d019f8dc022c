/* libFuzzer target for wire.c's message decoders (agent <-> controller, agent <-> LUKS helper)
 * over jsondec.c: every input goes through each decoder; none may crash or leak, and whatever one
 * accepts must encode to something it accepts again, the same bytes the second time round. */
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "macro.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *text(json_object *o) {
        char *s = xstrdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));

        json_object_put(o);
        return s;
}

/* Decode json with decode, encode the result with encode, and check the fixed point. */
#define ROUND_TRIP(type, decode, encode, done, json, size)                                                \
        do {                                                                                          \
                type m = {}, m2 = {};                                                                 \
                _cleanup_free_ char *err_ = NULL, *a = NULL, *b = NULL;                              \
                                                                                                      \
                if (decode(json, size, &m, &err_) < 0)                                                \
                        break;                                                                        \
                a = text(encode(&m));                                                                 \
                if (decode(a, strlen(a), &m2, &err_) < 0) {                                           \
                        fprintf(stderr, #type ": re-encoded message rejected: %s\n%s\n", err_, a);    \
                        abort();                                                                      \
                }                                                                                     \
                b = text(encode(&m2));                                                                \
                if (!streq(a, b)) {                                                                   \
                        fprintf(stderr, #type ": encoding is not a fixed point:\n%s\n%s\n", a, b);    \
                        abort();                                                                      \
                }                                                                                     \
                done(&m);                                                                             \
                done(&m2);                                                                            \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const char *json = (const char *) data;
        _cleanup_free_ char *error = NULL, *message = NULL;
        wire_report report = {};
        wire_luks_request luks = {};

        ROUND_TRIP(wire_ca, wire_ca_decode, wire_ca_to_json, wire_ca_done, json, size);
        ROUND_TRIP(wire_enroll_request, wire_enroll_request_decode, wire_enroll_request_to_json,
                   wire_enroll_request_done, json, size);
        ROUND_TRIP(wire_enroll_response, wire_enroll_response_decode, wire_enroll_response_to_json,
                   wire_enroll_response_done, json, size);
        ROUND_TRIP(wire_push_response, wire_push_response_decode, wire_push_response_to_json,
                   wire_push_response_done, json, size);
        ROUND_TRIP(wire_data_keys_request, wire_data_keys_request_decode, wire_data_keys_request_to_json,
                   wire_data_keys_request_done, json, size);
        ROUND_TRIP(wire_data_keys_response, wire_data_keys_response_decode, wire_data_keys_response_to_json,
                   wire_data_keys_response_done, json, size);
        ROUND_TRIP(wire_luks_response, wire_luks_response_decode, wire_luks_response_to_json,
                   wire_luks_response_done, json, size);

        /* The LUKS request's encoder writes text itself (the keys stay out of json-c). */
        if (wire_luks_request_decode(json, size, &luks, &error) >= 0) {
                _cleanup_free_ char *a = wire_luks_request_text(&luks), *b = NULL;
                wire_luks_request luks2 = {};

                if (wire_luks_request_decode(a, strlen(a), &luks2, &error) < 0) {
                        fprintf(stderr, "re-encoded LUKS request rejected: %s\n%s\n", error, a);
                        abort();
                }
                b = wire_luks_request_text(&luks2);
                if (!streq(a, b)) {
                        fprintf(stderr, "LUKS request encoding is not a fixed point:\n%s\n%s\n", a, b);
                        abort();
                }
                wire_luks_request_done(&luks2);
                wire_luks_request_done(&luks);
        }
        free(TAKE_PTR(error));

        /* The report has no encoder of ours: the kept object must read back the same. */
        if (wire_report_decode(json, size, &report, &error) >= 0) {
                _cleanup_free_ char *again = xstrdup(json_object_to_json_string(report.status));
                wire_report r2 = {};

                if (wire_report_decode(again, strlen(again), &r2, &error) < 0) {
                        fprintf(stderr, "re-encoded report rejected: %s\n%s\n", error, again);
                        abort();
                }
                if (r2.revision != report.revision || r2.failed != report.failed ||
                    !streq_ptr(r2.host, report.host) || !streq_ptr(r2.commit, report.commit) ||
                    !streq_ptr(r2.last_error, report.last_error))
                        abort();
                wire_report_done(&r2);
                wire_report_done(&report);
        }
        free(TAKE_PTR(error));
        message = wire_error_message(json, size);
        return 0;
}
