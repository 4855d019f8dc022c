/* agentctl: the operator's view of one host's agent — apply a document by hand, read status. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "config.h"
#include "document.h"
#include "fileio.h"
#include "macro.h"
#include "state.h"

enum {
        EXIT_RESOURCE_FAILED = 1,
        EXIT_REJECTED = 2,
};

static void usage(FILE *f) {
        fputs("Usage: agentctl [--config FILE] COMMAND [OPTIONS]\n"
              "\n"
              "Commands:\n"
              "  apply --local DOC [--trust-key PUBKEY]   verify a signed desired-state document and apply it\n"
              "  status [--json]                          what this host was told and what it did\n"
              "\n"
              "  --config FILE   agent configuration (default " AGENT_CONFIG_DEFAULT ")\n"
              "  --version       print the version\n",
              f);
}

static int load_config(const char *path, agent_config *cfg) {
        _cleanup_free_ char *err = NULL;
        int r = agent_config_load(path, cfg, &err);
        if (r < 0)
                fprintf(stderr, "agentctl: %s\n", err);
        return r;
}

static int cmd_apply(const char *config, int argc, char **argv) {
        static const struct option opts[] = {
                { "local", required_argument, NULL, 'l' },
                { "trust-key", required_argument, NULL, 'k' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *doc_path = NULL, *trust = NULL;
        _cleanup_free_ char *json = NULL, *err = NULL;
        agent_config cfg = {};
        results res = {};
        apply_outcome outcome = APPLY_DONE;
        size_t size, counts[RES_FAILED + 1] = {};
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'l':
                        doc_path = optarg;
                        break;
                case 'k':
                        trust = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return EXIT_REJECTED;
                }
        }
        if (!doc_path || optind < argc) {
                fputs("agentctl apply: --local DOC is required (documents arrive over the network once the agent "
                      "is enrolled)\n",
                      stderr);
                return EXIT_REJECTED;
        }
        if (load_config(config, &cfg) < 0)
                return EXIT_REJECTED;
        r = read_full_file(doc_path, DOC_MAX_SIZE, &json, &size);
        if (r < 0) {
                fprintf(stderr, "agentctl apply: cannot read %s: %s\n", doc_path,
                        r == -EFBIG ? "larger than the document size limit" : strerror(-r));
                agent_config_done(&cfg);
                return EXIT_REJECTED;
        }
        r = agent_apply(&cfg, json, size, trust ? trust : cfg.trust_key, &res, &outcome, &err);
        if (json)
                explicit_bzero(json, size);
        if (r < 0) {
                fprintf(stderr, "agentctl apply: %s: rejected: %s\n", doc_path, err ? err : strerror(-r));
                results_done(&res);
                agent_config_done(&cfg);
                return EXIT_REJECTED;
        }
        results_print(&res, stdout);
        for (size_t i = 0; i < res.n; i++)
                counts[res.items[i].state]++;
        printf("%s: %zu created, %zu changed, %zu removed, %zu retained, %zu unchanged, %zu failed\n",
               outcome == APPLY_DONE ? "applied" : "applied with failures", counts[RES_CREATED], counts[RES_CHANGED],
               counts[RES_REMOVED], counts[RES_RETAINED], counts[RES_UNCHANGED], counts[RES_FAILED]);
        results_done(&res);
        agent_config_done(&cfg);
        return outcome == APPLY_DONE ? 0 : EXIT_RESOURCE_FAILED;
}

static int cmd_status(const char *config, int argc, char **argv) {
        _cleanup_free_ char *err = NULL;
        agent_config cfg = {};
        applied_state s = {};
        bool json = argc > 1 && streq(argv[1], "--json");
        int r;

        if (load_config(config, &cfg) < 0)
                return EXIT_REJECTED;
        r = state_load_applied(&cfg, &s, &err);
        if (r < 0) {
                fprintf(stderr, "agentctl status: %s\n", err);
                agent_config_done(&cfg);
                return EXIT_REJECTED;
        }
        if (json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "host", json_object_new_string(cfg.host));
                json_object_object_add(o, "revision", json_object_new_int64((int64_t) s.revision));
                json_object_object_add(o, "commit", json_object_new_string(strempty(s.commit)));
                json_object_object_add(o, "appliedAt", json_object_new_int64(s.applied_at));
                json_object_object_add(o, "resources", results_to_json(&s.results));
                puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
        } else {
                char when[64] = "never";
                if (s.applied_at) {
                        time_t t = (time_t) s.applied_at;
                        strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&t));
                }
                printf("host %s: revision %llu applied %s%s%s\n", cfg.host, (unsigned long long) s.revision, when,
                       s.commit && *s.commit ? ", commit " : "", s.commit && *s.commit ? s.commit : "");
                results_print(&s.results, stdout);
        }
        r = results_failed(&s.results) ? EXIT_RESOURCE_FAILED : 0;
        applied_state_done(&s);
        agent_config_done(&cfg);
        return r;
}

int main(int argc, char **argv) {
        const char *config = AGENT_CONFIG_DEFAULT;
        int i = 1;

        umask(077);
        while (i < argc && argv[i][0] == '-') {
                if (streq(argv[i], "--config") && i + 1 < argc) {
                        config = argv[i + 1];
                        i += 2;
                } else if (strncmp(argv[i], "--config=", 9) == 0) {
                        config = argv[i] + 9;
                        i++;
                } else if (streq(argv[i], "--help") || streq(argv[i], "-h")) {
                        usage(stdout);
                        return 0;
                } else if (streq(argv[i], "--version")) {
                        printf("agentctl %s\n", PACKAGE_VERSION);
                        return 0;
                } else {
                        fprintf(stderr, "agentctl: unknown option '%s'\n", argv[i]);
                        usage(stderr);
                        return EXIT_REJECTED;
                }
        }
        if (i >= argc) {
                usage(stderr);
                return EXIT_REJECTED;
        }
        if (streq(argv[i], "apply"))
                return cmd_apply(config, argc - i, argv + i);
        if (streq(argv[i], "status"))
                return cmd_status(config, argc - i, argv + i);
        fprintf(stderr, "agentctl: unknown command '%s'\n", argv[i]);
        usage(stderr);
        return EXIT_REJECTED;
}
