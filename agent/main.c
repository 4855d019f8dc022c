/* infrastream-agent: the daemon. At start it re-applies the last accepted document (so a crash or
 * reboot at any step converges), then re-applies it periodically to repair drift. Once enrolled
 * it takes documents the controller pushes over mutual TLS and reports its status back; agentctl
 * reads the status over a local socket. The event loop runs here; applies run on the server's
 * worker thread (server.c). */
#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "server.h"
#include "systemd.h"

static void usage(FILE *f) {
        fputs("Usage: infrastream-agent [--config FILE] [--interval SECONDS] [--once]\n"
              "\n"
              "Converges this host to the last accepted desired-state document: at start (resuming\n"
              "an apply a crash or reboot interrupted) and then every --interval seconds (default 60),\n"
              "repairing drift. Once enrolled (agentctl enroll) it takes the documents the controller\n"
              "pushes on the configured listen address and reports its status. SIGHUP re-reads the\n"
              "configuration and applies at once; SIGTERM finishes the current step and exits. --once\n"
              "applies and exits.\n"
              "\n"
              "  --config FILE   agent configuration (default " AGENT_CONFIG_DEFAULT ")\n"
              "  --version       print the version\n",
              f);
}

/* --once: one pass, the way the daemon's worker runs it. */
static int converge_once(const agent_config *cfg) {
        _cleanup_free_ char *err = NULL;
        int r = agent_converge(cfg, NULL, &err);

        if (r == -ENOENT)
                return 0;
        if (r < 0)
                log_error("infrastream-agent: %s", err);
        return r;
}

typedef struct daemon_ctx {
        const char *config;
        agent_server *server;
        bool stopping;
} daemon_ctx;

static void on_term(evutil_socket_t sig _unused_, short what _unused_, void *userdata) {
        daemon_ctx *d = userdata;
        if (d->stopping)
                return;
        d->stopping = true;
        systemd_notify("STOPPING=1");
        agent_server_stop(d->server);
}

static void on_hup(evutil_socket_t sig _unused_, short what _unused_, void *userdata) {
        daemon_ctx *d = userdata;
        _cleanup_free_ char *err = NULL;
        agent_config next = {};

        if (d->stopping)
                return;
        systemd_notify("RELOADING=1");
        if (agent_config_load(d->config, &next, &err) < 0)
                log_error("infrastream-agent: keeping the old configuration: %s", err);
        else {
                agent_server_reload(d->server, &next);
                agent_config_done(&next);
        }
        systemd_notify("READY=1");
}

static void on_watchdog(evutil_socket_t fd _unused_, short what _unused_, void *userdata _unused_) {
        systemd_notify("WATCHDOG=1");
}

/* The event loop until SIGTERM has let the current apply finish. */
static int run_daemon(const char *config, const agent_config *cfg, long interval) {
        _cleanup_free_ char *err = NULL;
        struct event_base *base;
        struct event *term, *intr, *hup, *watchdog = NULL;
        daemon_ctx d = { .config = config };
        uint64_t wd = systemd_watchdog_usec();
        int r;

        /* A peer that hangs up must not kill us while we answer it. */
        signal(SIGPIPE, SIG_IGN);
        if (evthread_use_pthreads() < 0 || !(base = event_base_new())) {
                log_error("infrastream-agent: cannot set up the event loop");
                return 1;
        }
        d.server = agent_server_new(base, cfg, interval);
        term = evsignal_new(base, SIGTERM, on_term, &d);
        intr = evsignal_new(base, SIGINT, on_term, &d);
        hup = evsignal_new(base, SIGHUP, on_hup, &d);
        if (!term || !intr || !hup || evsignal_add(term, NULL) < 0 || evsignal_add(intr, NULL) < 0 ||
            evsignal_add(hup, NULL) < 0) {
                log_error("infrastream-agent: cannot watch signals");
                return 1;
        }
        if (wd > 0) {
                /* Pinged from the loop: it proves requests are still answered; a long apply on the
                 * worker is no reason to be killed. */
                struct timeval tv = { .tv_sec = (time_t) (wd / 2 / 1000000), .tv_usec = (suseconds_t) (wd / 2 % 1000000) };
                watchdog = event_new(base, -1, EV_PERSIST, on_watchdog, NULL);
                if (!watchdog || event_add(watchdog, &tv) < 0) {
                        log_error("infrastream-agent: cannot set up the watchdog timer");
                        return 1;
                }
        }
        r = agent_server_start(d.server, &err);
        if (r < 0) {
                log_error("infrastream-agent: %s", err);
                agent_server_free(d.server);
                event_base_free(base);
                return 1;
        }
        r = event_base_dispatch(base);
        agent_server_free(d.server);
        if (watchdog)
                event_free(watchdog);
        event_free(term);
        event_free(intr);
        event_free(hup);
        event_base_free(base);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "config", required_argument, NULL, 'c' }, { "interval", required_argument, NULL, 'i' },
                { "once", no_argument, NULL, 'o' },         { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'v' },      {},
        };
        const char *config = AGENT_CONFIG_DEFAULT;
        agent_config cfg = {};
        bool once = false;
        long interval = 60;
        int c, r;

        umask(077);
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        config = optarg;
                        break;
                case 'i': {
                        char *end;
                        interval = strtol(optarg, &end, 10);
                        if (*end || interval < 1 || interval > 86400) {
                                fprintf(stderr, "infrastream-agent: --interval takes seconds from 1 to 86400, not '%s'\n",
                                        optarg);
                                return 2;
                        }
                        break;
                }
                case 'o':
                        once = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                case 'v':
                        printf("infrastream-agent %s\n", PACKAGE_VERSION);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        {
                _cleanup_free_ char *err = NULL;
                if (agent_config_load(config, &cfg, &err) < 0) {
                        fprintf(stderr, "infrastream-agent: %s\n", err);
                        return 2;
                }
        }
        if (once) {
                r = converge_once(&cfg);
                agent_config_done(&cfg);
                return r == 0 ? 0 : 1;
        }
        r = run_daemon(config, &cfg, interval);
        agent_config_done(&cfg);
        return r;
}
