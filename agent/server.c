/* The daemon's engine. The event loop (main thread) owns the listeners and answers requests;
 * everything that changes the host runs on one worker thread, one job at a time: a pushed
 * document, or a pass over the stored one. A push is checked in full on the loop thread (peer,
 * signature, host, revision) before it is queued, so a bad request changes nothing and is
 * answered at once; the worker's result comes back through an event. */
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "apply.h"
#include "document.h"
#include "encryption.h"
#include "enroll.h"
#include "fileio.h"
#include "https-server.h"
#include "log.h"
#include "macro.h"
#include "report.h"
#include "schedule.h"
#include "server.h"
#include "sign.h"
#include "state.h"
#include "status.h"
#include "strbuf.h"
#include "systemd.h"
#include "tls.h"
#include "wire.h"
#include "x509.h"

#define LAST_ERROR_MAX 4096 /* the report's lastError has a limit; the log keeps the whole text */

typedef struct push_job {
        https_request *req;     /* held until the worker is done */
        char *json;             /* the signed document (application hosts': with passwords) */
        size_t size;
        uint64_t revision;
        char **databases;       /* the document's, for the CSRs the answer carries */
        size_t n_databases, n_apps;
        bool with_status;       /* ?status=1: the answer carries the status and is the report */
        int status;             /* out: HTTP status */
        json_object *reply;     /* out: 200's body */
        char *error;            /* out: the other statuses' message */
        struct push_job *next;
} push_job;

struct agent_server {
        struct event_base *base;
        agent_config cfg;       /* the loop thread's; the worker has its own copy */
        long interval;
        bool key_wait;          /* the worker's: the last apply left a database waiting for its key */
        https_server *tls, *local;
        int passed_tls, passed_local; /* listening sockets systemd passed (socket activation), or -1 */
        char *tls_sig, *local_sig;
        char *controller_name;  /* the only client allowed to push */
        char *tls_error, *local_error; /* why a listener is not running */
        unsigned held;          /* requests waiting for the worker */
        bool relisten;          /* rebuild listeners once nothing is held */
        struct event *done_ev;
        pthread_t worker;
        bool worker_started;

        pthread_mutex_t lock;   /* protects everything below */
        pthread_cond_t wake;
        agent_config *next_cfg; /* taken by the worker before its next job */
        push_job *queued;       /* at most one push waits; a newer one supersedes it */
        push_job *running;      /* the push being applied */
        bool applying;
        bool pass_now;
        bool stopping;
        bool worker_done;
        push_job *done;         /* answered by the loop thread */
        char *last_error;       /* the worker's: a stored document it could not apply */
        char *listen_error;     /* the loop thread's: a listener that could not start */
};

static void push_job_free(push_job *j) {
        if (!j)
                return;
        if (j->json) {
                explicit_bzero(j->json, j->size);
                free(j->json);
        }
        for (size_t i = 0; i < j->n_databases; i++)
                free(j->databases[i]);
        free(j->databases);
        json_object_put(j->reply);
        free(j->error);
        free(j);
}

static time_t now_monotonic(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec;
}

/* Kinds whose name starts with a database's: they get DATABASE= in the journal. */
static char *result_database(const res_item *it) {
        if (streq(it->kind, "app") || streq(it->kind, "ca") || streq(it->kind, "clusters"))
                return NULL;
        return xstrndup(it->name, strcspn(it->name, "/"));
}

static void log_results(const results *res, uint64_t revision) {
        for (size_t i = 0; i < res->n; i++) {
                const res_item *it = &res->items[i];
                _cleanup_free_ char *db = NULL;
                if (it->state == RES_UNCHANGED)
                        continue;
                db = result_database(it);
                log_full(it->state == RES_FAILED ? LOG_ERR : LOG_NOTICE, db, revision, "%s %s: %s%s%s", it->kind,
                         it->name, res_state_to_string(it->state), it->detail ? ": " : "", strempty(it->detail));
        }
}

static void notify_status(uint64_t revision, size_t n_databases, size_t n_apps, bool failed) {
        _cleanup_free_ char *s = NULL;
        if (failed)
                s = xasprintf("STATUS=revision %llu applied with failures; see agentctl status",
                              (unsigned long long) revision);
        else if (n_apps > 0)
                s = xasprintf("STATUS=converged: revision %llu applied, %zu database%s, %zu app%s",
                              (unsigned long long) revision, n_databases, n_databases == 1 ? "" : "s", n_apps,
                              n_apps == 1 ? "" : "s");
        else
                s = xasprintf("STATUS=converged: revision %llu applied, %zu database%s", (unsigned long long) revision,
                              n_databases, n_databases == 1 ? "" : "s");
        systemd_notify(s);
}

int agent_converge(const agent_config *cfg, converge_info *ret_info, char **ret_error) {
        _cleanup_free_ char *path = xasprintf("%s/desired.json", cfg->state_dir), *key = agent_trust_key(cfg),
                            *err = NULL;
        _cleanup_(doc_document_freep) doc_document *d = NULL;
        _cleanup_erase_ char *json = NULL;
        results res = {};
        apply_outcome outcome = APPLY_DONE;
        size_t size;
        int r;

        r = read_full_file(path, DOC_MAX_SIZE, &json, &size);
        if (r == -ENOENT)
                return r;
        if (r < 0) {
                *ret_error = xasprintf("cannot read %s: %s", path, strerror(-r));
                return r;
        }
        r = agent_apply(cfg, json, size, key, &res, &outcome, &err);
        if (r < 0) {
                *ret_error = xasprintf("%s: rejected: %s", path, err ? err : strerror(-r));
                results_done(&res);
                return r;
        }
        /* Only counted for the status line: agent_apply() checked this text already. */
        if (doc_decode(json, size, &d, NULL, NULL, NULL) >= 0) {
                log_results(&res, d->revision);
                if (ret_info)
                        *ret_info = (converge_info) { d->revision, d->n_databases, d->n_apps,
                                                      encryption_waiting(&res) };
        }
        results_done(&res);
        return outcome == APPLY_DONE ? 0 : 1;
}

/* --- the worker ------------------------------------------------------------------------------ */

static void set_last_error(agent_server *s, const char *e) {
        pthread_mutex_lock(&s->lock);
        free(s->last_error);
        s->last_error = e ? xstrndup(e, LAST_ERROR_MAX) : NULL;
        pthread_mutex_unlock(&s->lock);
}

static void set_listen_error(agent_server *s, const char *e) {
        pthread_mutex_lock(&s->lock);
        free(s->listen_error);
        s->listen_error = e ? xstrndup(e, LAST_ERROR_MAX) : NULL;
        pthread_mutex_unlock(&s->lock);
}

/* What only the daemon knows, for the status object; *ret_buf holds the copied error. */
static void snapshot(agent_server *s, status_daemon *ret, char **ret_buf) {
        pthread_mutex_lock(&s->lock);
        *ret_buf = s->listen_error ? xstrdup(s->listen_error) : s->last_error ? xstrdup(s->last_error) : NULL;
        *ret = (status_daemon) { .last_error = *ret_buf, .applying = s->applying };
        pthread_mutex_unlock(&s->lock);
}

static int apply_status(int r) {
        switch (r) {
        case -EBADMSG:
        case -EINVAL:
                return 400;
        case -EKEYREJECTED:
        case -EXDEV:
                return 403;
        case -ESTALE:
                return 409;
        case -E2BIG:
        case -EFBIG:
                return 413;
        case -ENOKEY:
                return 503;
        default:
                return 500;
        }
}

/* The certificate requests waiting for the controller's CA, one per database that has one. */
static void collect_csrs(const agent_config *cfg, const push_job *j, wire_push_response *m) {
        for (size_t i = 0; i < j->n_databases; i++) {
                _cleanup_free_ char *pem = NULL;
                tls_paths p = {};
                tls_paths_init(&p, cfg, j->databases[i]);
                if (read_full_file(p.csr, X509_PEM_MAX, &pem, NULL) >= 0) {
                        m->csrs = xrealloc(m->csrs, (m->n_csrs + 1) * sizeof(wire_csr));
                        m->csrs[m->n_csrs++] = (wire_csr) { .database = xstrdup(j->databases[i]), .csr = TAKE_PTR(pem) };
                }
                tls_paths_done(&p);
        }
}

static bool run_push(agent_server *s, const agent_config *cfg, push_job *j) {
        _cleanup_free_ char *key = agent_trust_key(cfg), *err = NULL;
        wire_push_response m = {};
        results res = {};
        apply_outcome outcome = APPLY_DONE;
        int r;

        r = agent_apply(cfg, j->json, j->size, key, &res, &outcome, &err);
        explicit_bzero(j->json, j->size);
        if (r < 0) {
                j->status = apply_status(r);
                j->error = err ? TAKE_PTR(err) : xstrdup(strerror(-r));
                log_full(LOG_WARNING, NULL, j->revision, "pushed revision %llu rejected: %s",
                         (unsigned long long) j->revision, j->error);
                if (j->status == 500)
                        set_last_error(s, j->error);
                results_done(&res);
                return false;
        }
        log_full(LOG_INFO, NULL, j->revision, "revision %llu pushed by the controller: %s",
                 (unsigned long long) j->revision, outcome == APPLY_DONE ? "applied" : "applied with failures");
        log_results(&res, j->revision);
        s->key_wait = encryption_waiting(&res);
        set_last_error(s, NULL);
        notify_status(j->revision, j->n_databases, j->n_apps, outcome == APPLY_FAILED);
        m.host = cfg->host;
        m.revision = j->revision;
        m.outcome = outcome == APPLY_FAILED ? "failed" : results_changed(&res) ? "done" : "unchanged";
        m.results = results_to_json(&res);
        collect_csrs(cfg, j, &m);
        if (j->with_status) {
                _cleanup_free_ char *last = NULL;
                status_daemon d = {};

                snapshot(s, &d, &last);
                d.applying = false; /* this apply is over */
                m.status.status = status_build(cfg, &d);
        }
        j->reply = wire_push_response_to_json(&m);
        j->status = 200;
        m.host = NULL;
        m.outcome = NULL;
        wire_push_response_done(&m);
        results_done(&res);
        return true;
}

static void run_pass(agent_server *s, const agent_config *cfg) {
        _cleanup_free_ char *err = NULL;
        converge_info info = {};
        int r = agent_converge(cfg, &info, &err);

        if (r == -ENOENT) {
                systemd_notify("STATUS=waiting for a first document");
                set_last_error(s, NULL);
                return;
        }
        if (r < 0) {
                log_error("infrastream-agent: %s", err);
                systemd_notify("STATUS=the stored document was rejected; see the log");
                set_last_error(s, err);
                return;
        }
        set_last_error(s, NULL);
        s->key_wait = info.waiting;
        notify_status(info.revision, info.n_databases, info.n_apps, r > 0);
}

static void report(agent_server *s, const agent_config *cfg, report_log *rlog) {
        _cleanup_free_ char *err = NULL, *last = NULL;
        status_daemon d = {};
        json_object *st;
        int r;

        if (access(cfg->state_dir, F_OK) < 0)
                return;
        snapshot(s, &d, &last);
        st = status_build(cfg, &d);
        r = report_send(cfg, st, &err);
        json_object_put(st);
        report_log_result(rlog, r, err);
}

/* Jobs in order of urgency: a queued push, a pass that is due (or asked for), a report that is
 * due; otherwise sleep until the next is due or something arrives. */
static void *worker_main(void *userdata) {
        agent_server *s = userdata;
        agent_config cfg = {};
        report_log rlog = {};
        schedule_runner backups = {};
        time_t next_pass = 0, next_report = 0, next_schedule = 0;
        bool ready = false;

        pthread_mutex_lock(&s->lock);
        for (;;) {
                bool applied = false, answered = false;
                push_job *j = NULL;
                time_t now;

                if (s->next_cfg) {
                        agent_config_done(&cfg);
                        cfg = *s->next_cfg;
                        free(s->next_cfg);
                        s->next_cfg = NULL;
                }
                if (s->stopping)
                        break;
                now = now_monotonic();
                if (s->queued) {
                        j = s->running = TAKE_PTR(s->queued);
                        s->applying = true;
                        pthread_mutex_unlock(&s->lock);
                        /* An answer with the status is this apply's report: the controller
                         * records it (one TLS handshake fewer for both). */
                        answered = run_push(s, &cfg, j) && j->with_status;
                        pthread_mutex_lock(&s->lock);
                        s->running = NULL;
                        s->applying = false;
                        j->next = s->done;
                        s->done = j;
                        event_active(s->done_ev, EV_READ, 0);
                        applied = true;
                } else if (s->pass_now || now >= next_pass) {
                        s->pass_now = false;
                        s->applying = true;
                        pthread_mutex_unlock(&s->lock);
                        run_pass(s, &cfg);
                        pthread_mutex_lock(&s->lock);
                        s->applying = false;
                        applied = true;
                } else if (now >= next_report) {
                        pthread_mutex_unlock(&s->lock);
                        report(s, &cfg, &rlog);
                        pthread_mutex_lock(&s->lock);
                        next_report = now_monotonic() + cfg.report_interval;
                } else if (cfg.backend == SERVICE_DIRECT && now >= next_schedule) {
                        /* Without systemd the backup timers are ours; the backups run as children. */
                        long wait;
                        pthread_mutex_unlock(&s->lock);
                        wait = schedule_tick(&backups, &cfg, s->interval);
                        pthread_mutex_lock(&s->lock);
                        next_schedule = now_monotonic() + wait;
                } else {
                        struct timespec until;
                        time_t due = next_pass < next_report ? next_pass : next_report;
                        if (cfg.backend == SERVICE_DIRECT && next_schedule < due)
                                due = next_schedule;
                        clock_gettime(CLOCK_MONOTONIC, &until);
                        until.tv_sec += due - now;
                        (void) pthread_cond_timedwait(&s->wake, &s->lock, &until);
                }
                if (!applied)
                        continue;
                pthread_mutex_unlock(&s->lock);
                if (!ready) {
                        /* Ready once the stored document is converged (or there is none). */
                        systemd_notify("READY=1");
                        ready = true;
                }
                if (!answered)
                        report(s, &cfg, &rlog);
                pthread_mutex_lock(&s->lock);
                /* Locked databases wait for the controller: ask again soon, not in a minute. */
                next_pass = now_monotonic() +
                            (s->key_wait && s->interval > ENCRYPTION_RETRY_SECONDS ? ENCRYPTION_RETRY_SECONDS : s->interval);
                next_report = now_monotonic() + cfg.report_interval;
        }
        s->worker_done = true;
        event_active(s->done_ev, EV_READ, 0);
        pthread_mutex_unlock(&s->lock);
        report_log_done(&rlog);
        schedule_runner_done(&backups);
        agent_config_done(&cfg);
        return NULL;
}

/* --- the loop thread: answers ------------------------------------------------------------------ */

static void relisten(agent_server *s);

static void on_done(evutil_socket_t fd _unused_, short what _unused_, void *userdata) {
        agent_server *s = userdata;
        push_job *list, *fifo = NULL;
        bool exited;

        pthread_mutex_lock(&s->lock);
        list = TAKE_PTR(s->done);
        exited = s->worker_done;
        pthread_mutex_unlock(&s->lock);
        while (list) {
                push_job *n = list->next;
                list->next = fifo;
                fifo = list;
                list = n;
        }
        while (fifo) {
                push_job *n = fifo->next;
                if (fifo->status == 200)
                        https_reply_json(fifo->req, 200, TAKE_PTR(fifo->reply));
                else
                        https_reply_error(fifo->req, fifo->status, "%s", fifo->error);
                s->held--;
                push_job_free(fifo);
                fifo = n;
        }
        if (s->relisten && s->held == 0)
                relisten(s);
        if (exited && s->worker_started) {
                pthread_join(s->worker, NULL);
                s->worker_started = false;
                event_base_loopexit(s->base, NULL);
        }
}

static bool refuse_when_stopping(agent_server *s, https_request *req) {
        bool stopping;
        pthread_mutex_lock(&s->lock);
        stopping = s->stopping;
        pthread_mutex_unlock(&s->lock);
        if (stopping)
                https_reply_error(req, 503, "the agent is shutting down");
        return stopping;
}

static void on_push(https_request *req, void *userdata) {
        agent_server *s = userdata;
        _cleanup_(doc_document_freep) doc_document *d = NULL;
        _cleanup_free_ char *key = NULL, *err = NULL;
        const char *peer = https_request_peer_name(req), *body;
        applied_state applied = {};
        push_job *j, *superseded;
        size_t size = 0;
        int r;

        if (refuse_when_stopping(s, req))
                return;
        if (!peer || !s->controller_name || !streq(peer, s->controller_name)) {
                https_reply_error(req, 403, "client certificate %s is not the controller (%s)", peer ? peer : "(none)",
                                  strempty(s->controller_name));
                return;
        }
        body = https_request_body(req, &size);
        key = agent_trust_key(&s->cfg);
        if (!key) {
                https_reply_error(req, 503, "no document-signing key: enroll again or set trust-key");
                return;
        }
        /* Everything the worker would refuse is refused here, before the request waits. */
        r = verify_document(body ? body : "", size, key, &d, &err);
        if (r < 0) {
                https_reply_error(req, r == -EKEYREJECTED ? 403 : r == -E2BIG ? 413 : r == -EBADMSG ? 400 : 500, "%s",
                                  err ? err : strerror(-r));
                return;
        }
        if (!streq(d->host, s->cfg.host)) {
                https_reply_error(req, 403, "the document is for host '%s', this agent is '%s'", d->host, s->cfg.host);
                return;
        }
        r = state_load_applied(&s->cfg, &applied, &err);
        if (r < 0) {
                https_reply_error(req, 500, "%s", err);
                return;
        }
        if (applied.content_hash[0] && d->revision <= applied.revision) {
                https_reply_error(req, 409, "revision %llu is not newer than the applied revision %llu",
                                  (unsigned long long) d->revision, (unsigned long long) applied.revision);
                applied_state_done(&applied);
                return;
        }
        applied_state_done(&applied);

        pthread_mutex_lock(&s->lock);
        if (s->running && d->revision <= s->running->revision) {
                uint64_t rev = s->running->revision;
                pthread_mutex_unlock(&s->lock);
                https_reply_error(req, 409, "revision %llu is not newer than revision %llu being applied",
                                  (unsigned long long) d->revision, (unsigned long long) rev);
                return;
        }
        if (s->queued && d->revision <= s->queued->revision) {
                uint64_t rev = s->queued->revision;
                pthread_mutex_unlock(&s->lock);
                https_reply_error(req, 409, "revision %llu is not newer than revision %llu already queued",
                                  (unsigned long long) d->revision, (unsigned long long) rev);
                return;
        }
        j = xcalloc(1, sizeof(*j));
        j->req = req;
        j->json = xmalloc(size + 1);
        memcpy_safe(j->json, body, size);
        j->json[size] = '\0';
        j->size = size;
        j->with_status = streq_ptr(https_request_query(req, "status"), "1");
        j->revision = d->revision;
        j->n_databases = d->n_databases;
        j->n_apps = d->n_apps;
        j->databases = d->n_databases ? xcalloc(d->n_databases, sizeof(char *)) : NULL;
        for (size_t i = 0; i < d->n_databases; i++)
                j->databases[i] = xstrdup(d->databases[i].name);
        superseded = s->queued;
        s->queued = j;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);

        https_request_hold(req);
        s->held++;
        if (superseded) {
                https_reply_error(superseded->req, 409, "superseded by revision %llu while queued",
                                  (unsigned long long) d->revision);
                s->held--;
                push_job_free(superseded);
        }
}

static void reply_status(agent_server *s, https_request *req) {
        _cleanup_free_ char *last = NULL;
        status_daemon d = {};

        snapshot(s, &d, &last);
        https_reply_json(req, 200, status_build(&s->cfg, &d));
}

static void on_status_tls(https_request *req, void *userdata) {
        agent_server *s = userdata;
        const char *peer = https_request_peer_name(req);

        if (refuse_when_stopping(s, req))
                return;
        if (!peer || !s->controller_name || !streq(peer, s->controller_name)) {
                https_reply_error(req, 403, "client certificate %s is not the controller (%s)", peer ? peer : "(none)",
                                  strempty(s->controller_name));
                return;
        }
        reply_status(s, req);
}

static int group_gid(const char *name, gid_t *ret) {
        struct group gr, *res = NULL;
        char buf[4096];
        if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) != 0 || !res)
                return -ESRCH;
        *ret = gr.gr_gid;
        return 0;
}

/* The group database decides membership: a process that only carries the group as a
 * supplementary one (the socket file lets it connect) is not enough. */
static bool uid_in_group(uid_t uid, gid_t gid, gid_t group) {
        struct passwd pw, *res = NULL;
        char buf[4096];
        gid_t groups[256];
        int n = ELEMENTSOF(groups);

        if (gid == group)
                return true;
        if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) != 0 || !res)
                return false;
        if (pw.pw_gid == group)
                return true;
        if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
                return false;
        for (int i = 0; i < n; i++)
                if (groups[i] == group)
                        return true;
        return false;
}

static void on_status_local(https_request *req, void *userdata) {
        agent_server *s = userdata;
        uid_t uid;
        gid_t gid, group;
        pid_t pid;

        if (refuse_when_stopping(s, req))
                return;
        if (!https_request_peer_cred(req, &uid, &gid, &pid)) {
                https_reply_error(req, 403, "the peer's credentials are unknown");
                return;
        }
        if (uid != 0 && !(s->cfg.socket_group && group_gid(s->cfg.socket_group, &group) >= 0 &&
                          uid_in_group(uid, gid, group))) {
                https_reply_error(req, 403, "uid %u is neither root nor in group %s", (unsigned) uid,
                                  s->cfg.socket_group ? s->cfg.socket_group : "(socket-group is not set)");
                return;
        }
        reply_status(s, req);
}

/* --- listeners ------------------------------------------------------------------------------- */

static void sig_file(strbuf *b, const agent_config *cfg, const char *name) {
        _cleanup_free_ char *p = enrollment_file(cfg, name);
        struct stat st;
        if (stat(p, &st) < 0)
                strbuf_printf(b, "|%s:-", name);
        else
                strbuf_printf(b, "|%s:%llu:%llu:%lld:%lld.%ld", name, (unsigned long long) st.st_dev,
                              (unsigned long long) st.st_ino, (long long) st.st_size, (long long) st.st_mtim.tv_sec,
                              (long) st.st_mtim.tv_nsec);
}

/* What the HTTPS listener depends on: its address, and the files of the enrollment. */
static char *tls_signature(const agent_config *cfg) {
        strbuf b = {};
        strbuf_printf(&b, "%s", strempty(cfg->listen));
        sig_file(&b, cfg, ENROLL_FILE);
        sig_file(&b, cfg, ENROLL_HOST_CERT);
        sig_file(&b, cfg, ENROLL_HOST_KEY);
        sig_file(&b, cfg, ENROLL_CA);
        return strbuf_steal(&b);
}

static char *local_signature(const agent_config *cfg) {
        return xasprintf("%s|%s", cfg->socket_path, strempty(cfg->socket_group));
}

/* Socket activation: serve on the socket systemd passed for this listener when it is the one
 * agent.conf asks for (1), else 0 and the caller binds its own (a socket unit that disagrees with
 * agent.conf is named in the log, once per listener rebuild). The passed socket is kept for later
 * rebuilds (a reload, a renewed certificate): the server gets a duplicate. */
static int use_passed(https_server *server, int fd, bool matches, const char *want, const char *key, char **ret_error) {
        int dup, r;

        if (fd < 0)
                return 0;
        if (!matches) {
                log_warning("infrastream-agent: the socket systemd passed is not %s ('%s' in agent.conf): "
                            "not used; listening on %s itself",
                            want, key, want);
                return 0;
        }
        dup = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dup < 0) {
                r = -errno;
                *ret_error = xasprintf("cannot use the socket systemd passed: %s", strerror(-r));
                return r;
        }
        r = https_server_adopt(server, dup, ret_error);
        if (r < 0) {
                close(dup);
                return r;
        }
        return 1;
}

static int use_passed_tls(agent_server *s, char **ret_error) {
        struct sockaddr_storage sa;
        socklen_t len = sizeof(sa);
        bool matches;

        if (s->passed_tls < 0)
                return 0;
        matches = wire_endpoint_parse(s->cfg.listen, false, &sa, &len) >= 0 &&
                  systemd_socket_is_tcp(s->passed_tls, (struct sockaddr *) &sa, len);
        return use_passed(s->tls, s->passed_tls, matches, s->cfg.listen, "listen", ret_error);
}

/* Sort what systemd passed: the first Unix socket is agentctl's, the first TCP one the
 * controller's; anything else is closed with a warning. */
static void take_passed_sockets(agent_server *s) {
        int n = systemd_listen_fds();

        for (int fd = 3; fd < 3 + n; fd++) {
                if (s->passed_local < 0 && systemd_socket_is_unix(fd, NULL))
                        s->passed_local = fd;
                else if (s->passed_tls < 0 && systemd_socket_is_tcp(fd, NULL, 0))
                        s->passed_tls = fd;
                else {
                        log_warning("infrastream-agent: ignoring file descriptor %d from systemd: the agent takes one "
                                    "listening Unix stream socket (agentctl's) and one TCP one (the controller's)",
                                    fd);
                        close(fd);
                }
        }
}

static int listen_tls(agent_server *s, char **ret_error) {
        _cleanup_free_ char *err = NULL, *cert = enrollment_file(&s->cfg, ENROLL_HOST_CERT),
                            *key = enrollment_file(&s->cfg, ENROLL_HOST_KEY), *ca = enrollment_file(&s->cfg, ENROLL_CA);
        https_limits limits = {
                .max_body = AGENT_MAX_BODY,
                .max_headers = AGENT_MAX_HEADERS,
                .timeout_seconds = AGENT_TIMEOUT_SECONDS,
                .max_connections = 64,
        };
        enrollment e = {};
        SSL_CTX *ctx = NULL;
        int r, port = 0;

        r = enrollment_load(&s->cfg, &e, &err);
        if (r == -ENOENT) {
                log_info("not enrolled: no HTTPS listener until 'agentctl enroll' and a reload");
                return 0;
        }
        if (r < 0) {
                *ret_error = TAKE_PTR(err);
                return r;
        }
        if (!s->cfg.listen) {
                *ret_error = xasprintf("%s: set 'listen' (or 'addresses'): the controller pushes to it", s->cfg.path);
                enrollment_done(&e);
                return -EINVAL;
        }
        r = mtls_server_ctx(cert, key, ca, true, &ctx, ret_error);
        if (r < 0) {
                enrollment_done(&e);
                return r;
        }
        s->tls = https_server_new(s->base, ctx, &limits);
        SSL_CTX_free(ctx);
        https_server_route(s->tls, "POST", "/v1/desired-state", on_push, s);
        https_server_route(s->tls, "GET", "/v1/status", on_status_tls, s);
        r = use_passed_tls(s, &err);
        if (r == 0)
                r = https_server_listen(s->tls, s->cfg.listen, &port, &err);
        if (r < 0) {
                *ret_error = xasprintf("cannot listen on %s: %s", s->cfg.listen, err ? err : strerror(-r));
                https_server_free(TAKE_PTR(s->tls));
                enrollment_done(&e);
                return r;
        }
        free(s->controller_name);
        s->controller_name = TAKE_PTR(e.controller_name);
        log_info("listening on %s for %s%s", s->cfg.listen, s->controller_name,
                 r > 0 ? " (socket from systemd)" : "");
        enrollment_done(&e);
        return 0;
}

static int listen_local(agent_server *s, char **ret_error) {
        _cleanup_free_ char *copy = xstrdup(s->cfg.socket_path), *err = NULL;
        const char *dir;
        https_limits limits = {
                .max_body = 64 * 1024,
                .max_headers = AGENT_MAX_HEADERS,
                .timeout_seconds = AGENT_TIMEOUT_SECONDS,
                .max_connections = 16,
        };
        gid_t gid = (gid_t) -1;
        int r;

        if (s->cfg.socket_group && group_gid(s->cfg.socket_group, &gid) < 0) {
                *ret_error = xasprintf("socket-group: no group '%s' on this host", s->cfg.socket_group);
                return -ESRCH;
        }
        /* A directory we create is searchable by all (whatever our umask): the socket's own mode
         * and group decide who gets in. An existing one is the administrator's. */
        dir = dirname(copy);
        if (access(dir, F_OK) < 0) {
                r = mkdir_p(dir, 0755);
                if (r < 0 || chmod(dir, 0755) < 0) {
                        r = r < 0 ? r : -errno;
                        *ret_error = xasprintf("cannot create %s: %s", dir, strerror(-r));
                        return r;
                }
        }
        s->local = https_server_new(s->base, NULL, &limits);
        https_server_route(s->local, "GET", "/v1/status", on_status_local, s);
        r = use_passed(s->local, s->passed_local, systemd_socket_is_unix(s->passed_local, s->cfg.socket_path),
                       s->cfg.socket_path, "socket", &err);
        if (r > 0) {
                log_info("listening on %s (socket from systemd: its unit sets mode and group)", s->cfg.socket_path);
                return 0;
        }
        if (r == 0)
                r = https_server_listen_unix(s->local, s->cfg.socket_path, 0660, gid, &err);
        if (r < 0) {
                *ret_error = xasprintf("cannot listen on %s: %s", s->cfg.socket_path, err ? err : strerror(-r));
                https_server_free(TAKE_PTR(s->local));
                return r;
        }
        return 0;
}

/* Rebuild the listeners whose settings changed. Failures are logged and shown in the status:
 * the agent keeps converging what it has. */
static void relisten(agent_server *s) {
        _cleanup_free_ char *tsig = tls_signature(&s->cfg), *lsig = local_signature(&s->cfg);

        s->relisten = false;
        if (!streq_ptr(tsig, s->tls_sig)) {
                if (s->tls)
                        https_server_free(TAKE_PTR(s->tls));
                free(s->controller_name);
                s->controller_name = NULL;
                free(s->tls_error);
                s->tls_error = NULL;
                if (listen_tls(s, &s->tls_error) < 0)
                        log_error("infrastream-agent: %s", s->tls_error);
                free(s->tls_sig);
                s->tls_sig = TAKE_PTR(tsig);
        }
        if (!streq_ptr(lsig, s->local_sig)) {
                if (s->local)
                        https_server_free(TAKE_PTR(s->local));
                free(s->local_error);
                s->local_error = NULL;
                if (listen_local(s, &s->local_error) < 0)
                        log_error("infrastream-agent: %s", s->local_error);
                free(s->local_sig);
                s->local_sig = TAKE_PTR(lsig);
        }
        set_listen_error(s, s->tls_error ? s->tls_error : s->local_error);
}

/* --- lifecycle ------------------------------------------------------------------------------- */

agent_server *agent_server_new(struct event_base *base, const agent_config *cfg, long interval) {
        agent_server *s = xcalloc(1, sizeof(*s));
        pthread_condattr_t attr;

        s->base = base;
        s->passed_tls = s->passed_local = -1;
        agent_config_copy(cfg, &s->cfg);
        s->interval = interval;
        pthread_mutex_init(&s->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&s->wake, &attr);
        pthread_condattr_destroy(&attr);
        s->done_ev = event_new(base, -1, 0, on_done, s);
        if (!s->done_ev)
                abort();
        return s;
}

int agent_server_start(agent_server *s, char **ret_error) {
        sigset_t all, old;
        int r;

        /* Without the socket there is no agentctl status: fatal. Without the HTTPS listener (a
         * certificate gone bad, the address taken) the host still converges what it has, and
         * says why in its status. */
        take_passed_sockets(s);
        s->local_sig = local_signature(&s->cfg);
        r = listen_local(s, ret_error);
        if (r < 0)
                return r;
        s->tls_sig = tls_signature(&s->cfg);
        if (listen_tls(s, &s->tls_error) < 0) {
                log_error("infrastream-agent: %s", s->tls_error);
                set_listen_error(s, s->tls_error);
        }

        s->next_cfg = xmalloc(sizeof(agent_config));
        agent_config_copy(&s->cfg, s->next_cfg);
        /* Signals are the loop thread's: the worker never takes one (its children get a clean mask). */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        r = -pthread_create(&s->worker, NULL, worker_main, s);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r < 0) {
                *ret_error = xasprintf("cannot start the worker thread: %s", strerror(-r));
                return r;
        }
        s->worker_started = true;
        return 0;
}

void agent_server_reload(agent_server *s, const agent_config *cfg) {
        agent_config *copy = xmalloc(sizeof(agent_config));

        agent_config_done(&s->cfg);
        agent_config_copy(cfg, &s->cfg);
        agent_config_copy(cfg, copy);
        pthread_mutex_lock(&s->lock);
        if (s->next_cfg) {
                agent_config_done(s->next_cfg);
                free(s->next_cfg);
        }
        s->next_cfg = copy;
        s->pass_now = true;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        /* A request in flight is answered by the listener it came through. */
        s->relisten = true;
        if (s->held == 0)
                relisten(s);
}

void agent_server_stop(agent_server *s) {
        push_job *queued;

        pthread_mutex_lock(&s->lock);
        s->stopping = true;
        queued = TAKE_PTR(s->queued);
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        if (queued) {
                https_reply_error(queued->req, 503, "the agent is shutting down");
                s->held--;
                push_job_free(queued);
        }
        if (!s->worker_started)
                event_base_loopexit(s->base, NULL);
}

void agent_server_free(agent_server *s) {
        if (!s)
                return;
        if (s->worker_started) {
                agent_server_stop(s);
                pthread_join(s->worker, NULL);
        }
        https_server_freep(&s->tls);
        https_server_freep(&s->local);
        if (s->passed_tls >= 0)
                close(s->passed_tls);
        if (s->passed_local >= 0)
                close(s->passed_local);
        event_free(s->done_ev);
        if (s->next_cfg) {
                agent_config_done(s->next_cfg);
                free(s->next_cfg);
        }
        for (push_job *j = s->done; j;) {
                push_job *n = j->next;
                push_job_free(j);
                j = n;
        }
        push_job_free(s->queued);
        free(s->tls_sig);
        free(s->local_sig);
        free(s->controller_name);
        free(s->last_error);
        free(s->listen_error);
        free(s->tls_error);
        free(s->local_error);
        agent_config_done(&s->cfg);
        pthread_cond_destroy(&s->wake);
        pthread_mutex_destroy(&s->lock);
        free(s);
}
