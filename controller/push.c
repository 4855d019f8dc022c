/* apply after compile: one transaction records placements, secrets and every changed document;
 * then rounds of concurrent HTTPS requests (POST the signed document, GET the status after a
 * refusal) until each host has applied its recorded revision, failed, or run out of time. A
 * certificate request in an agent's answer is signed, the host's document re-rendered with the
 * certificate and pushed again. */
#include <stdarg.h>
#include <time.h>

#include "ca.h"
#include "https-client.h"
#include "https-server.h"
#include "push.h"
#include "sign.h"
#include "wire.h"
#include "x509.h"

#define SIGNING_KEY_FILE "signing-key.pem"

typedef enum step {
        STEP_NONE,            /* done: converged, current or failed */
        STEP_PUSH,            /* POST /v1/desired-state */
        STEP_STATUS,          /* GET /v1/status: what the agent has, after a 409 or a failed report */
} step;

/* The resource outcomes of an agent's answers, added up over a host's pushes. */
enum { N_COUNTED = 4 };
static const char *const COUNTED[N_COUNTED] = { "created", "changed", "removed", "failed" };

typedef struct target {
        size_t h;             /* inventory index */
        push_result *res;
        const stored_host *sh;
        char *peer;           /* <host>.hosts.<domain> */
        char *url;            /* of the current step */
        char *body;           /* the signed document: it carries passwords or backup passphrases */
        step next;
        char *refusal;        /* the agent's 409 message, for the status step */
        unsigned csr_rounds;
        bool held;            /* reported as waiting for a primary's host */
        unsigned counts[N_COUNTED];
        double deadline;      /* CLOCK_MONOTONIC seconds */
} target;

typedef struct apply_ctx {
        compilation *c;
        const push_options *o;
        ca *authority;
        char *key_path;
        const char *commit;
        target *t;
        size_t n;
} apply_ctx;

static double now_monotonic(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static void progress(const apply_ctx *a, const char *fmt, ...) _printf_(2, 3);
static void progress(const apply_ctx *a, const char *fmt, ...) {
        va_list ap;

        if (!a->o->progress)
                return;
        va_start(ap, fmt);
        vfprintf(a->o->progress, fmt, ap);
        va_end(ap);
        fputc('\n', a->o->progress);
        fflush(a->o->progress);
}

static void target_set_body(target *t, char *body) {
        erase_and_free(t->body);
        t->body = body;
}

static void fail(const apply_ctx *a, target *t, const char *fmt, ...) _printf_(3, 4);
static void fail(const apply_ctx *a, target *t, const char *fmt, ...) {
        va_list ap;

        free(t->res->detail);
        va_start(ap, fmt);
        if (vasprintf(&t->res->detail, fmt, ap) < 0)
                abort();
        va_end(ap);
        t->res->status = PUSH_FAILED;
        t->next = STEP_NONE;
        target_set_body(t, NULL);
        progress(a, "%s: revision %llu failed: %s", t->res->host, (unsigned long long) t->res->revision,
                 t->res->detail);
}

/* "(2 created, 1 changed)", "(no changes)" */
static char *format_counts(const unsigned counts[N_COUNTED]) {
        char buf[128] = "(";
        size_t n = 1;

        for (size_t i = 0; i < N_COUNTED; i++)
                if (counts[i])
                        n += (size_t) snprintf(buf + n, sizeof(buf) - n, "%s%u %s", n > 1 ? ", " : "", counts[i],
                                               COUNTED[i]);
        if (n == 1)
                return xstrdup("(no changes)");
        snprintf(buf + n, sizeof(buf) - n, ")");
        return xstrdup(buf);
}

/* Add one answer's results to the host's counts; the failed ones as "kind name: detail; ...". */
static char *tally_results(json_object *results, unsigned counts[N_COUNTED], unsigned this_push[N_COUNTED]) {
        _cleanup_free_ char *failed = NULL;
        size_t n_failed = 0, n = json_object_is_type(results, json_type_array) ? json_object_array_length(results) : 0;

        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(results, i), *v;
                const char *state = json_object_object_get_ex(o, "state", &v) ? json_object_get_string(v) : "";

                for (size_t k = 0; k < N_COUNTED; k++)
                        if (streq(state, COUNTED[k])) {
                                counts[k]++;
                                this_push[k]++;
                        }
                if (!streq(state, "failed"))
                        continue;
                /* Three are enough to act on; the agent's status has them all. */
                if (++n_failed <= 3) {
                        const char *kind = json_object_object_get_ex(o, "kind", &v) ? json_object_get_string(v) : "?";
                        const char *name = json_object_object_get_ex(o, "name", &v) ? json_object_get_string(v) : "?";
                        const char *detail = json_object_object_get_ex(o, "detail", &v) ? json_object_get_string(v) : NULL;
                        char *next = xasprintf("%s%s%s %s%s%s", strempty(failed), failed ? "; " : "", kind, name,
                                               detail ? ": " : "", strempty(detail));
                        free(failed);
                        failed = next;
                }
        }
        if (n_failed > 3) {
                char *next = xasprintf("%s; and %zu more (agentctl status on the host)", failed, n_failed - 3);
                free(failed);
                failed = next;
        }
        return TAKE_PTR(failed);
}

static int sign_target(apply_ctx *a, target *t, char **ret_error) {
        char *body = NULL;
        size_t size;
        int r;

        r = sign_document(a->c->rr.docs[t->h], a->key_path, &body, &size, ret_error);
        if (r < 0)
                return r;
        target_set_body(t, body);
        return 0;
}

static void set_step(target *t, step s) {
        const char *endpoint = t->sh->endpoint;

        t->next = s;
        free(t->url);
        /* ?status=1: the answer carries the agent's status, recorded as its report (the agent
         * then sends none for this apply). */
        t->url = xasprintf("https://%s%s", endpoint, s == STEP_PUSH ? "/v1/desired-state?status=1" : "/v1/status");
}

static doc_database *find_database(doc_document *d, const char *name) {
        for (size_t i = 0; i < d->n_databases; i++)
                if (streq(d->databases[i].name, name))
                        return &d->databases[i];
        return NULL;
}

/* Sign the requests, record the certificates and the host's re-rendered document (one
 * transaction), and sign that for the next push. */
static int certificate_round(apply_ctx *a, target *t, const wire_push_response *pr, char **ret_error) {
        compilation *c = a->c;
        doc_document *d = c->rr.docs[t->h];
        _cleanup_free_ char *holder = xasprintf("host '%s'", d->host);
        int r;

        r = store_begin(c->store);
        if (r < 0) {
                *ret_error = xasprintf("cannot record its certificates: %s", strerror(-r));
                return r;
        }
        for (size_t i = 0; i < pr->n_csrs; i++) {
                const doc_database *db = find_database(d, pr->csrs[i].database);
                _cleanup_free_ char *pem = NULL, *err = NULL;
                _cleanup_(X509_freep) X509 *cert = NULL;
                time_t not_before, not_after;

                if (!db) {
                        *ret_error = xasprintf("asks for a certificate for database '%s', which its document does not have",
                                               pr->csrs[i].database);
                        r = -EPERM;
                        goto fail;
                }
                r = ca_sign_csr(a->authority, pr->csrs[i].csr, (const char *const *) db->tls_names, db->n_tls_names,
                                holder, CA_CERT_LIFETIME_DEFAULT, &pem, &err);
                if (r < 0) {
                        *ret_error = xasprintf("certificate request for database '%s' refused: %s", db->name, err);
                        goto fail;
                }
                r = x509_cert_from_pem(pem, &cert, &err);
                if (r >= 0)
                        r = x509_validity(cert, &not_before, &not_after);
                if (r >= 0)
                        r = store_save_cert(c->store, &(stored_cert) { .host = d->host, .database = db->name,
                                                                        .certificate = pem, .not_after = not_after });
                if (r < 0) {
                        *ret_error = xasprintf("cannot record the certificate of database '%s': %s", db->name,
                                               err ? err : strerror(-r));
                        goto fail;
                }
        }
        r = compile_attach_certificates(c, (long) t->h, (int64_t) time(NULL));
        if (r >= 0)
                r = compile_stamp_document(c, t->h, a->commit);
        if (r == 0) {
                /* The certificates left the document as it was: the agent would be asked again. */
                *ret_error = xstrdup("the certificates issued for its requests do not name every TLS name of its "
                                     "document");
                r = -EPROTO;
                goto fail;
        }
        if (r < 0) {
                *ret_error = xasprintf("cannot record its new document: %s", strerror(-r));
                goto fail;
        }
        r = sign_target(a, t, ret_error);
        if (r < 0)
                goto fail;
        r = store_commit(c->store);
        if (r < 0) {
                *ret_error = xasprintf("cannot record its certificates: %s", strerror(-r));
                goto fail;
        }
        t->res->revision = d->revision;
        t->res->changed = true;
        return (int) pr->n_csrs;
fail:
        store_rollback(c->store);
        return r;
}

static void converged(const apply_ctx *a, target *t, const char *how) {
        _cleanup_free_ char *counts = format_counts(t->counts);

        free(t->res->detail);
        t->res->detail = t->res->pushes > 1 ? xasprintf("%s in %.1f s, %u pushes %s", how, t->res->seconds,
                                                         t->res->pushes, counts)
                                             : xasprintf("%s in %.1f s %s", how, t->res->seconds, counts);
        t->res->status = PUSH_CONVERGED;
        t->next = STEP_NONE;
        target_set_body(t, NULL);
        (void) a;
}

static void on_push_answer(apply_ctx *a, target *t, https_call *call) {
        _cleanup_(wire_push_response_done) wire_push_response pr = {};
        _cleanup_(stored_host_done) stored_host fresh = {};
        _cleanup_free_ char *err = NULL, *failed = NULL, *counts = NULL;
        unsigned this_push[N_COUNTED] = {};
        const char *host = t->res->host, *status = NULL;
        uint64_t revision = t->res->revision;
        bool outcome_failed;
        int r;

        if (call->status == 409) {
                /* Not newer than what it applied, or superseded: what it has decides. */
                t->refusal = call->response ? wire_error_message(call->response, call->response_size) : NULL;
                set_step(t, STEP_STATUS);
                return;
        }
        if (call->status != 200) {
                _cleanup_free_ char *msg =
                        call->response ? wire_error_message(call->response, call->response_size) : NULL;
                fail(a, t, "the agent answered HTTP %ld%s%s", call->status, msg ? ": " : "", strempty(msg));
                return;
        }
        r = wire_push_response_decode(call->response, call->response_size, &pr, &err);
        if (r < 0) {
                fail(a, t, "the agent's answer is malformed: %s", err ? err : strerror(-r));
                return;
        }
        if (!streq(pr.host, host) || pr.revision != revision) {
                fail(a, t, "the agent answered for host '%s' revision %llu", pr.host, (unsigned long long) pr.revision);
                return;
        }
        outcome_failed = streq(pr.outcome, "failed");
        if (pr.status.status && !streq(pr.status.host, host)) {
                fail(a, t, "the agent's answer carries the status of host '%s'", pr.status.host);
                return;
        }
        /* The status in the answer is the host's report for this apply. An agent that sent none
         * reports after the apply itself (through serve, maybe just now): keep the last report,
         * read again rather than the one apply started with. */
        if (pr.status.status)
                status = json_object_to_json_string_ext(pr.status.status,
                                                        JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        else if (store_load_host(a->c->store, host, &fresh) >= 0)
                status = fresh.status;
        r = store_record_report(a->c->store, host, pr.revision, a->c->rr.docs[t->h]->commit, outcome_failed,
                                status, (int64_t) time(NULL));
        if (r < 0) {
                fail(a, t, "cannot record its answer in the state store: %s", strerror(-r));
                return;
        }
        failed = tally_results(pr.results, t->counts, this_push);
        counts = format_counts(this_push);

        if (pr.n_csrs > 0) {
                /* Also after a failed apply: what failed may be waiting for the certificate. */
                if (++t->csr_rounds > PUSH_CSR_ROUNDS_MAX) {
                        fail(a, t, "still asks for a certificate after %d rounds (database '%s')", PUSH_CSR_ROUNDS_MAX,
                             pr.csrs[0].database);
                        return;
                }
                r = certificate_round(a, t, &pr, &err);
                if (r < 0) {
                        fail(a, t, "%s", err);
                        return;
                }
                progress(a, "%s: revision %llu pushed, %s in %.1f s %s; %d certificate request%s signed, revision %llu next",
                         host, (unsigned long long) revision, outcome_failed ? "failed" : "applied", call->seconds,
                         counts, r, r == 1 ? "" : "s", (unsigned long long) t->res->revision);
                set_step(t, STEP_PUSH);
                return;
        }
        if (outcome_failed) {
                fail(a, t, "the apply failed: %s", failed ? failed : "no resource says why (agentctl status on the host)");
                return;
        }
        progress(a, "%s: revision %llu pushed, applied in %.1f s %s", host, (unsigned long long) revision,
                 call->seconds, counts);
        converged(a, t, "applied");
}

static void on_status_answer(apply_ctx *a, target *t, https_call *call) {
        _cleanup_(wire_report_done) wire_report rep = {};
        _cleanup_free_ char *err = NULL, *refusal = TAKE_PTR(t->refusal);
        uint64_t revision = t->res->revision;
        int r;

        if (call->status != 200) {
                _cleanup_free_ char *msg =
                        call->response ? wire_error_message(call->response, call->response_size) : NULL;
                fail(a, t, "%s%s%sits status answered HTTP %ld%s%s", refusal ? "the agent refused the revision (" : "",
                     strempty(refusal), refusal ? "); " : "", call->status, msg ? ": " : "", strempty(msg));
                return;
        }
        r = wire_report_decode(call->response, call->response_size, &rep, &err);
        if (r < 0) {
                fail(a, t, "the agent's status is malformed: %s", err ? err : strerror(-r));
                return;
        }
        if (!streq(rep.host, t->res->host)) {
                fail(a, t, "the agent's status is for host '%s'", rep.host);
                return;
        }
        r = store_record_report(a->c->store, t->res->host, rep.revision, rep.commit, rep.failed, call->response,
                                (int64_t) time(NULL));
        if (r < 0) {
                fail(a, t, "cannot record its status in the state store: %s", strerror(-r));
                return;
        }
        if (rep.revision == revision && !rep.failed) {
                progress(a, "%s: revision %llu already applied", t->res->host, (unsigned long long) revision);
                converged(a, t, "already applied");
        } else if (rep.revision == revision)
                fail(a, t, "revision %llu is applied, but something failed or drifted: %s", (unsigned long long) revision,
                     rep.last_error ? rep.last_error : "see agentctl status on the host");
        else if (rep.revision > revision)
                fail(a, t, "the agent runs revision %llu, newer than the recorded %llu (was the state store restored "
                           "from an older copy?)",
                     (unsigned long long) rep.revision, (unsigned long long) revision);
        else
                fail(a, t, "the agent refused revision %llu: %s (it runs revision %llu)", (unsigned long long) revision,
                     refusal ? refusal : "no reason given", (unsigned long long) rep.revision);
}

static void on_done(https_call *call, void *userdata) {
        apply_ctx *a = userdata;
        target *t = call->userdata;
        step was = t->next;

        t->res->seconds += call->seconds;
        if (was == STEP_PUSH)
                t->res->pushes++;
        if (call->error) {
                /* Transport: nothing is known of the apply; a rerun pushes the same revision again. */
                fail(a, t, "%s %s: %s", was == STEP_PUSH ? "push to" : "status from", t->sh->endpoint, call->error);
                return;
        }
        if (was == STEP_PUSH)
                on_push_answer(a, t, call);
        else
                on_status_answer(a, t, call);
}

/* When t's document has a standby copy: its primary's host, while that host is still being
 * pushed to; else NULL. A standby clones its primary over TLS through the slot the primary
 * makes: pushed at the same time it finds neither (the primary listens on TCP only once it has
 * its certificate, a round later) and fails where waiting for the primary converges. */
static const char *primary_in_progress(const apply_ctx *a, const target *t) {
        const doc_document *d = a->c->rr.docs[t->h];

        for (size_t i = 0; i < d->n_databases; i++) {
                const doc_replication *rep = d->databases[i].replication;

                if (!rep || rep->role != DOC_REPLICA_STANDBY)
                        continue;
                for (size_t j = 0; j < a->n; j++)
                        if (&a->t[j] != t && a->t[j].next != STEP_NONE && streq(a->t[j].res->host, rep->primary))
                                return rep->primary;
        }
        return NULL;
}

/* Rounds of requests until no host has a next step. Standbys' hosts wait for their primaries'. */
static int run_rounds(apply_ctx *a, const https_client_tls *tls) {
        _cleanup_free_ https_call *calls = xcalloc(a->n + 1, sizeof(https_call));
        bool hold = true;

        for (;;) {
                double now = now_monotonic();
                size_t n = 0, n_held = 0;

                for (size_t i = 0; i < a->n; i++) {
                        target *t = &a->t[i];
                        const char *primary;
                        long ms;

                        if (t->next == STEP_NONE)
                                continue;
                        primary = hold ? primary_in_progress(a, t) : NULL;
                        if (primary) {
                                if (!t->held)
                                        progress(a, "%s: waits for the primary's host %s", t->res->host, primary);
                                t->held = true;
                                n_held++;
                                continue;
                        }
                        ms = (long) ((t->deadline - now) * 1000);
                        if (ms <= 0) {
                                fail(a, t, "no answer within %ld s (--timeout)", a->o->timeout_seconds);
                                continue;
                        }
                        calls[n++] = (https_call) {
                                .method = t->next == STEP_PUSH ? "POST" : "GET",
                                .url = t->url,
                                .peer_name = t->peer,
                                .body = t->next == STEP_PUSH ? t->body : NULL,
                                .body_size = t->next == STEP_PUSH ? strlen(t->body) : 0,
                                .timeout_ms = ms,
                                .userdata = t,
                        };
                }
                if (n == 0 && n_held > 0) {
                        /* Only hosts waiting for each other (never placed so): push them all. */
                        hold = false;
                        continue;
                }
                if (n == 0)
                        return 0;
                https_perform_many(tls, calls, n, a->o->parallel, on_done, a);
                for (size_t i = 0; i < n; i++)
                        https_call_done(&calls[i]);
        }
}

static int host_cmp(const void *key, const void *elem) {
        return strcmp(key, ((const stored_host *) elem)->name);
}

/* Placements, secrets, certificates and every changed document in one transaction. */
static int record(compilation *c, const push_options *o, const char *commit, push_report *ret, char **ret_error) {
        _cleanup_(secrets_closep) secrets *x = NULL;
        const char *what = "record placements";
        int r;

        r = secrets_open(c->store, o->state_dir, &x, ret_error);
        if (r < 0)
                return r;
        r = store_begin(c->store);
        if (r < 0) {
                *ret_error = xasprintf("cannot write the state store: %s", strerror(-r));
                return r;
        }
        r = compile_record_placements(c);
        if (r >= 0) {
                what = "create or read the grants' secrets";
                r = compile_attach_verifiers(c, x);
        }
        if (r >= 0)
                r = compile_prune_secrets(c, x, NULL);
        if (r >= 0)
                r = compile_attach_passwords(c, x);
        if (r >= 0) {
                what = "create or read the databases' backup passphrases";
                r = compile_attach_backup_passphrases(c, x, true);
        }
        if (r >= 0) {
                what = "create or read the databases' data keys";
                r = compile_ensure_data_keys(c, x);
        }
        if (r >= 0) {
                what = "read the issued certificates";
                r = compile_attach_certificates(c, -1, (int64_t) time(NULL));
        }
        if (r >= 0)
                what = "record the documents";
        for (size_t h = 0; h < c->inv.n && r >= 0; h++) {
                r = compile_stamp_document(c, h, commit);
                ret->hosts[h].changed = r > 0;
        }
        if (r >= 0)
                r = store_commit(c->store);
        if (r < 0) {
                store_rollback(c->store);
                *ret_error = xasprintf("cannot %s: %s", what, strerror(-r));
                return r;
        }
        for (size_t h = 0; h < c->inv.n; h++)
                ret->hosts[h].revision = c->rr.docs[h]->revision;
        return 0;
}

/* The TLS material of pushes: the CA (trust anchor, and signer of the agents' requests) and the
 * controller's client certificate. */
static int load_tls(apply_ctx *a, https_client_tls *tls, char **ca_pem, char **cert, char **key, char **ret_error) {
        int r;

        r = ca_load(a->o->state_dir, &a->authority, ret_error);
        if (r < 0)
                return r;
        *ca_pem = ca_cert_pem(a->authority);
        *cert = xasprintf("%s/%s", a->o->state_dir, CA_CONTROLLER_CERT_FILE);
        *key = xasprintf("%s/%s", a->o->state_dir, CA_CONTROLLER_KEY_FILE);
        if (access(*cert, R_OK) < 0 || access(*key, R_OK) < 0) {
                r = -errno;
                *ret_error = xasprintf("cannot read the controller's client certificate %s or its key: %s (run "
                                       "'infrastream-controller init' to create them)",
                                       *cert, strerror(-r));
                return r;
        }
        *tls = (https_client_tls) { .ca_pem = *ca_pem, .cert_file = *cert, .key_file = *key };
        return 0;
}

int push_apply(compilation *c, const push_options *o, push_report *ret, char **ret_error) {
        _cleanup_free_ char *commit = repo_head_commit(o->repo), *ca_pem = NULL, *cert = NULL, *key = NULL;
        _cleanup_free_ target *targets = NULL;
        stored_host *hosts = NULL;
        size_t n_hosts = 0, n_steps = 0;
        https_client_tls tls = {};
        apply_ctx a = { .c = c, .o = o, .commit = commit };
        double deadline;
        int r;

        *ret = (push_report) { .hosts = xcalloc(c->inv.n + 1, sizeof(push_result)), .n = c->inv.n };
        for (size_t h = 0; h < c->inv.n; h++)
                ret->hosts[h].host = c->inv.hosts[h].name;
        if (o->no_record)
                for (size_t h = 0; h < c->inv.n; h++)
                        ret->hosts[h].revision = c->rr.docs[h]->revision;
        else {
                r = record(c, o, commit, ret, ret_error);
                if (r < 0)
                        return r;
        }
        r = store_load_hosts(c->store, &hosts, &n_hosts);
        if (r < 0) {
                *ret_error = xasprintf("cannot read the enrolled hosts: %s", strerror(-r));
                return r;
        }

        /* Who needs what: a push to every enrolled host behind its recorded revision. */
        targets = xcalloc(c->inv.n + 1, sizeof(target));
        a.t = targets;
        a.n = c->inv.n;
        deadline = now_monotonic() + (double) o->timeout_seconds;
        for (size_t h = 0; h < c->inv.n; h++) {
                target *t = &targets[h];
                push_result *res = &ret->hosts[h];

                *t = (target) { .h = h, .res = res, .deadline = deadline };
                if (o->only && !o->only[h]) {
                        res->status = PUSH_CURRENT;
                        continue;
                }
                t->sh = n_hosts ? bsearch(res->host, hosts, n_hosts, sizeof(stored_host), host_cmp) : NULL;
                if (!t->sh) {
                        res->status = PUSH_FAILED;
                        res->detail = xstrdup("not enrolled: run agentctl enroll on it");
                        continue;
                }
                if (t->sh->applied_revision > res->revision) {
                        res->status = PUSH_FAILED;
                        res->detail = xasprintf("it reports revision %llu applied, newer than the recorded %llu (was "
                                                "the state store restored from an older copy?)",
                                                (unsigned long long) t->sh->applied_revision,
                                                (unsigned long long) res->revision);
                        continue;
                }
                if (t->sh->applied_revision == res->revision && !t->sh->failed) {
                        res->status = PUSH_CURRENT;
                        continue;
                }
                /* Behind: push. At its revision but its last report failed: ask it again first. */
                set_step(t, t->sh->applied_revision < res->revision ? STEP_PUSH : STEP_STATUS);
                n_steps++;
        }

        if (n_steps > 0) {
                r = load_tls(&a, &tls, &ca_pem, &cert, &key, ret_error);
                if (r >= 0) {
                        a.key_path = xasprintf("%s/%s", o->state_dir, SIGNING_KEY_FILE);
                        for (size_t h = 0; h < c->inv.n && r >= 0; h++) {
                                target *t = &targets[h];

                                if (t->next == STEP_NONE)
                                        continue;
                                t->peer = mtls_host_name(t->res->host, ca_domain(a.authority));
                                if (t->next == STEP_PUSH)
                                        r = sign_target(&a, t, ret_error);
                        }
                }
                if (r >= 0)
                        r = run_rounds(&a, &tls);
        }

        for (size_t h = 0; h < c->inv.n; h++) {
                target *t = &targets[h];

                /* Changed here or in a certificate round. */
                ret->n_changed += ret->hosts[h].changed;
                ret->n_pushed += ret->hosts[h].pushes > 0;
                ret->n_failed += ret->hosts[h].status == PUSH_FAILED;
                free(t->peer);
                free(t->url);
                free(t->refusal);
                erase_and_free(t->body);
        }
        free(a.key_path);
        ca_free(a.authority);
        stored_hosts_free(hosts, n_hosts);
        if (r < 0)
                return r;
        return ret->n_failed > 0 ? 1 : 0;
}

void push_report_done(push_report *r) {
        for (size_t i = 0; i < r->n; i++)
                free(r->hosts[i].detail);
        free(r->hosts);
        *r = (push_report) {};
}

static void call_done_nothing(https_call *call, void *userdata) {
        (void) call;
        (void) userdata;
}

int push_fetch_status(compilation *c, const push_options *o, const char *host, long timeout_ms, char **ret_status,
                      char **ret_error) {
        _cleanup_(stored_host_done) stored_host sh = {};
        _cleanup_(wire_report_done) wire_report rep = {};
        _cleanup_free_ char *ca_pem = NULL, *cert = NULL, *key = NULL, *url = NULL, *peer = NULL, *err = NULL;
        https_client_tls tls = {};
        apply_ctx a = { .c = c, .o = o };
        https_call call = {};
        int r;

        r = store_load_host(c->store, host, &sh);
        if (r < 0) {
                *ret_error = xasprintf("host '%s' is not enrolled", host);
                return r;
        }
        r = load_tls(&a, &tls, &ca_pem, &cert, &key, ret_error);
        if (r < 0)
                goto finish;
        url = xasprintf("https://%s/v1/status", sh.endpoint);
        peer = mtls_host_name(host, ca_domain(a.authority));
        call = (https_call) { .method = "GET", .url = url, .peer_name = peer, .timeout_ms = timeout_ms };
        https_perform_many(&tls, &call, 1, 1, call_done_nothing, NULL);
        if (call.error || call.status != 200) {
                *ret_error = call.error ? xasprintf("status from %s: %s", sh.endpoint, call.error)
                                        : xasprintf("status from %s: HTTP %ld", sh.endpoint, call.status);
                r = -EIO;
                goto finish;
        }
        r = wire_report_decode(call.response, call.response_size, &rep, &err);
        if (r < 0 || !streq(rep.host, host)) {
                *ret_error = xasprintf("the status of host '%s' is malformed: %s", host, err ? err : "another host's");
                r = r < 0 ? r : -EPROTO;
                goto finish;
        }
        (void) store_record_report(c->store, host, rep.revision, rep.commit, rep.failed, call.response,
                                   (int64_t) time(NULL));
        *ret_status = TAKE_PTR(call.response);
        r = 0;
finish:
        https_call_done(&call);
        ca_free(a.authority);
        return r;
}
