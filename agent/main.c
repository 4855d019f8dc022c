/* infrastream-agent: the daemon. At start it re-applies the last accepted document (so a crash or
 * reboot at any step converges), then re-applies it periodically to repair drift. The network
 * listener for new documents arrives with enrollment; until then documents come through
 * `agentctl apply --local`. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "apply.h"
#include "config.h"
#include "document.h"
#include "fileio.h"
#include "macro.h"
#include "systemd.h"

static void usage(FILE *f) {
        fputs("Usage: infrastream-agent [--config FILE] [--interval SECONDS] [--once]\n"
              "\n"
              "Converges this host to the last accepted desired-state document: at start (resuming\n"
              "an apply a crash or reboot interrupted) and then every --interval seconds (default 60),\n"
              "repairing drift. SIGHUP re-reads the configuration and applies at once; SIGTERM finishes\n"
              "the current step and exits. --once applies and exits.\n"
              "\n"
              "  --config FILE   agent configuration (default " AGENT_CONFIG_DEFAULT ")\n"
              "  --version       print the version\n",
              f);
}

/* One convergence pass. Quiet when nothing changed; one line per resource that did. */
static int converge(const agent_config *cfg) {
        _cleanup_free_ char *path = xasprintf("%s/desired.json", cfg->state_dir), *json = NULL, *err = NULL;
        results res = {};
        apply_outcome outcome = APPLY_DONE;
        size_t size;
        int r;

        r = read_full_file(path, DOC_MAX_SIZE, &json, &size);
        if (r == -ENOENT) {
                systemd_notify("STATUS=waiting for a first document");
                return 0;
        }
        if (r < 0) {
                fprintf(stderr, "infrastream-agent: cannot read %s: %s\n", path, strerror(-r));
                return r;
        }
        r = agent_apply(cfg, json, size, cfg->trust_key, &res, &outcome, &err);
        explicit_bzero(json, size);
        if (r < 0) {
                fprintf(stderr, "infrastream-agent: %s: rejected: %s\n", path, err ? err : strerror(-r));
                systemd_notify("STATUS=the stored document was rejected; see the log");
                results_done(&res);
                return r;
        }
        for (size_t i = 0; i < res.n; i++) {
                const res_item *it = &res.items[i];
                if (it->state == RES_UNCHANGED)
                        continue;
                fprintf(stderr, "%s %s: %s%s%s\n", it->kind, it->name, res_state_to_string(it->state),
                        it->detail ? ": " : "", it->detail ? it->detail : "");
        }
        systemd_notify(outcome == APPLY_DONE ? "STATUS=converged" : "STATUS=some resources failed; see agentctl status");
        results_done(&res);
        return outcome == APPLY_DONE ? 0 : 1;
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
        sigset_t mask;
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
                r = converge(&cfg);
                agent_config_done(&cfg);
                return r == 0 ? 0 : 1;
        }

        /* Signals are taken synchronously between passes: a pass is never cut in half. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);

        (void) converge(&cfg);
        systemd_notify("READY=1");
        for (;;) {
                struct timespec ts = { .tv_sec = interval };
                siginfo_t si;
                int sig = sigtimedwait(&mask, &si, &ts);

                if (sig == SIGTERM || sig == SIGINT) {
                        systemd_notify("STOPPING=1");
                        break;
                }
                if (sig == SIGHUP) {
                        _cleanup_free_ char *err = NULL;
                        agent_config next = {};
                        systemd_notify("RELOADING=1");
                        if (agent_config_load(config, &next, &err) < 0)
                                fprintf(stderr, "infrastream-agent: keeping the old configuration: %s\n", err);
                        else {
                                agent_config_done(&cfg);
                                cfg = next;
                        }
                        systemd_notify("READY=1");
                }
                (void) converge(&cfg);
        }
        agent_config_done(&cfg);
        return 0;
}
