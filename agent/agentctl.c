/* agentctl: the operator's view of one host's agent — apply a document by hand, read status. */
#include <getopt.h>
#include <json-c/json.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "backup.h"
#include "config.h"
#include "document.h"
#include "drill.h"
#include "enroll.h"
#include "fileio.h"
#include "macro.h"
#include "state.h"
#include "status.h"
#include "tls.h"
#include "x509.h"

enum {
        EXIT_RESOURCE_FAILED = 1,
        EXIT_REJECTED = 2,
};

static void usage(FILE *f) {
        fputs("Usage: agentctl [--config FILE] COMMAND [OPTIONS]\n"
              "\n"
              "Commands:\n"
              "  apply --local DOC [--trust-key PUBKEY]   verify a signed desired-state document and apply it\n"
              "  enroll --controller URL --token TOKEN [--ca-fingerprint SHA256] [--force]\n"
              "                                           get this host's identity from the controller\n"
              "  status [--json]                          what this host was told and what it did\n"
              "  backup run DB [--type full|diff|incr]     a backup now (diff by default); a restore drill follows\n"
              "                                           a full one (drill-after-full)\n"
              "  backup list DB                           the backups in DB's repository\n"
              "  backup restore DB --target-time T --to DIR\n"
              "                                           point-in-time restore into DIR (absent or empty, never\n"
              "                                           the live data directory); T in UTC unless it says otherwise\n"
              "  backup restore-test DB                   restore drill: restore the latest backup, start and check\n"
              "                                           it, remove it, record the result\n"
              "  tls install --database DB --cert FILE --ca FILE\n"
              "                                           check and install the certificate the controller's CA\n"
              "                                           issued for DB's request; the next apply reloads PostgreSQL\n"
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

/* From the daemon when it runs (it knows what is in flight); from the files when it does not. */
static int cmd_status(const char *config, int argc, char **argv) {
        static const struct option opts[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_free_ char *err = NULL;
        agent_config cfg = {};
        json_object *o = NULL;
        bool json = false, running = true;
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return EXIT_REJECTED;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "agentctl status: unexpected argument '%s'\n", argv[optind]);
                return EXIT_REJECTED;
        }
        if (load_config(config, &cfg) < 0)
                return EXIT_REJECTED;
        r = status_fetch(cfg.socket_path, &o, &err);
        if (r == -ENOENT || r == -ECONNREFUSED) {
                /* No daemon: the same object, from the files (needs read access to the state). */
                if (access(cfg.state_dir, F_OK) == 0 && access(cfg.state_dir, R_OK | X_OK) < 0) {
                        fprintf(stderr, "agentctl status: the agent is not running and %s is not readable: %s\n",
                                cfg.state_dir, strerror(errno));
                        agent_config_done(&cfg);
                        return EXIT_REJECTED;
                }
                running = false;
                o = status_build(&cfg, NULL);
                r = 0;
        }
        if (r < 0) {
                fprintf(stderr, "agentctl status: %s\n", err);
                agent_config_done(&cfg);
                return EXIT_REJECTED;
        }
        if (json)
                puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        else {
                const char *nc = getenv("NO_COLOR");
                if (!running)
                        puts("agent: not running");
                status_print(o, stdout, isatty(STDOUT_FILENO) && !(nc && *nc));
        }
        r = status_failed(o) ? EXIT_RESOURCE_FAILED : 0;
        json_object_put(o);
        agent_config_done(&cfg);
        return r;
}

static int cmd_enroll(const char *config, int argc, char **argv) {
        static const struct option opts[] = {
                { "controller", required_argument, NULL, 'c' },
                { "token", required_argument, NULL, 't' },
                { "ca-fingerprint", required_argument, NULL, 'f' },
                { "force", no_argument, NULL, 'F' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_free_ char *err = NULL;
        _cleanup_erase_ char *token = NULL;
        enroll_options o = {};
        agent_config cfg = {};
        enrollment e = {};
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        o.controller_url = optarg;
                        break;
                case 't':
                        /* Our copy only: the argument is wiped, so ps and /proc/PID/cmdline no
                         * longer show the secret while the enrollment runs. */
                        erase_and_free(token);
                        token = xstrdup(optarg);
                        explicit_bzero(optarg, strlen(optarg));
                        o.token = token;
                        break;
                case 'f':
                        o.ca_fingerprint = optarg;
                        break;
                case 'F':
                        o.force = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return EXIT_REJECTED;
                }
        }
        if (!o.controller_url || !o.token || optind < argc) {
                fputs("agentctl enroll: --controller URL and --token TOKEN are required\n", stderr);
                return EXIT_REJECTED;
        }
        if (load_config(config, &cfg) < 0)
                return EXIT_REJECTED;
        r = agent_enroll(&cfg, &o, &e, &err);
        if (r < 0) {
                fprintf(stderr, "agentctl enroll: %s\n", err ? err : strerror(-r));
                agent_config_done(&cfg);
                return EXIT_REJECTED;
        }
        {
                _cleanup_free_ char *cert = enrollment_file(&cfg, ENROLL_HOST_CERT), *pem = NULL, *xerr = NULL;
                _cleanup_(X509_freep) X509 *x = NULL;
                char **names = NULL, when[32] = "?";
                size_t n = 0;
                time_t nb, na;

                if (read_full_file(cert, X509_PEM_MAX, &pem, NULL) >= 0 && x509_cert_from_pem(pem, &x, &xerr) >= 0 &&
                    x509_validity(x, &nb, &na) >= 0)
                        x509_format_time(na, when);
                if (x)
                        (void) x509_cert_dns_names(x, &names, &n, NULL);
                printf("enrolled as %s (%s host) with %s at %s; certificate expires %s\n", n ? names[0] : e.host, e.role,
                       e.controller_name, e.controller_url, when);
                printf("reload the agent (systemctl reload infrastream-agent) to start its listener on %s\n",
                       strempty(cfg.listen));
                x509_names_free(names, n);
        }
        enrollment_done(&e);
        agent_config_done(&cfg);
        return 0;
}

/* Until the transport carries certificates, an operator (or a test) brings the one the
 * controller's CA issued for the request in <data-root>/<db>/tls/server.csr. */
static int cmd_tls(const char *config, int argc, char **argv) {
        static const struct option opts[] = {
                { "database", required_argument, NULL, 'd' },
                { "cert", required_argument, NULL, 'c' },
                { "ca", required_argument, NULL, 'a' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *database = NULL, *cert_path = NULL, *ca_path = NULL;
        _cleanup_(doc_document_freep) doc_document *d = NULL;
        _cleanup_free_ char *cert = NULL, *ca = NULL, *err = NULL, *summary = NULL;
        _cleanup_close_ int lock = -1;
        const doc_database *db = NULL;
        agent_config cfg = {};
        int c, r;

        if (argc < 2 || !streq(argv[1], "install")) {
                if (argc < 2)
                        fputs("agentctl tls: a subcommand is required (install)\n", stderr);
                else
                        fprintf(stderr, "agentctl tls: unknown subcommand '%s'\n", argv[1]);
                usage(stderr);
                return EXIT_REJECTED;
        }
        optind = 1;
        while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
                switch (c) {
                case 'd':
                        database = optarg;
                        break;
                case 'c':
                        cert_path = optarg;
                        break;
                case 'a':
                        ca_path = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return EXIT_REJECTED;
                }
        }
        if (!database || !cert_path || !ca_path || optind < argc - 1) {
                fputs("agentctl tls install: --database DB, --cert FILE and --ca FILE are required\n", stderr);
                return EXIT_REJECTED;
        }
        if (load_config(config, &cfg) < 0)
                return EXIT_REJECTED;
        r = read_full_file(cert_path, 64 * 1024, &cert, NULL);
        if (r >= 0)
                r = read_full_file(ca_path, 64 * 1024, &ca, NULL);
        if (r < 0) {
                fprintf(stderr, "agentctl tls install: cannot read %s: %s\n", cert ? ca_path : cert_path, strerror(-r));
                agent_config_done(&cfg);
                return EXIT_REJECTED;
        }
        /* One writer at a time: an apply running now finishes before the files change. */
        lock = access(cfg.state_dir, F_OK) < 0 ? -errno : state_lock(&cfg, &err);
        if (lock == -ENOENT && !err)
                err = xasprintf("no document applied yet (%s does not exist): run 'agentctl apply' first",
                                cfg.state_dir);
        if (lock >= 0)
                r = state_load_desired(&cfg, &d, &err);
        for (size_t i = 0; lock >= 0 && r >= 0 && i < d->n_databases; i++)
                if (streq(d->databases[i].name, database))
                        db = &d->databases[i];
        if (lock >= 0 && r >= 0 && !db) {
                err = xasprintf("database '%s' is not in the applied document (revision %llu)", database,
                                (unsigned long long) d->revision);
                r = -ENOENT;
        }
        if (lock >= 0 && r >= 0)
                r = tls_install(&cfg, db, cert, ca, &summary, &err);
        if (lock < 0 || r < 0) {
                fprintf(stderr, "agentctl tls install: %s\n", err ? err : strerror(-(lock < 0 ? lock : r)));
                agent_config_done(&cfg);
                return EXIT_REJECTED;
        }
        printf("tls %s: certificate installed: %s; the next apply reloads PostgreSQL\n", database, summary);
        agent_config_done(&cfg);
        return 0;
}

static int cmd_backup(const char *config, int argc, char **argv) {
        static const struct option opts[] = {
                { "type", required_argument, NULL, 't' },
                { "target-time", required_argument, NULL, 'T' },
                { "to", required_argument, NULL, 'o' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        const char *sub = argc >= 2 ? argv[1] : NULL, *target = NULL, *to = NULL, *db;
        _cleanup_free_ char *err = NULL;
        backup_type type = BACKUP_DIFF;
        agent_config cfg = {};
        int c, r;

        if (!sub || !(streq(sub, "run") || streq(sub, "list") || streq(sub, "restore") || streq(sub, "restore-test"))) {
                if (!sub)
                        fputs("agentctl backup: a subcommand is required (run, list, restore, restore-test)\n", stderr);
                else
                        fprintf(stderr, "agentctl backup: unknown subcommand '%s'\n", sub);
                usage(stderr);
                return EXIT_REJECTED;
        }
        optind = 1;
        while ((c = getopt_long(argc - 1, argv + 1, "", opts, NULL)) != -1) {
                switch (c) {
                case 't':
                        if (backup_type_from_string(optarg, &type) < 0) {
                                fprintf(stderr, "agentctl backup run: --type must be full, diff or incr, not '%s'\n", optarg);
                                return EXIT_REJECTED;
                        }
                        break;
                case 'T':
                        target = optarg;
                        break;
                case 'o':
                        to = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return EXIT_REJECTED;
                }
        }
        if (optind != argc - 2) {
                fprintf(stderr, "agentctl backup %s: exactly one database name is required\n", sub);
                return EXIT_REJECTED;
        }
        db = argv[optind + 1];
        if (streq(sub, "restore") != (target && to) || (!streq(sub, "restore") && (target || to)) ||
            (!streq(sub, "run") && type != BACKUP_DIFF)) {
                fprintf(stderr, "agentctl backup %s: %s\n", sub,
                        streq(sub, "restore") ? "--target-time T and --to DIR are required"
                                              : "--target-time, --to and --type do not apply here");
                return EXIT_REJECTED;
        }
        if (load_config(config, &cfg) < 0)
                return EXIT_REJECTED;
        if (streq(sub, "run"))
                r = backup_run(&cfg, db, type, stdout, &err);
        else if (streq(sub, "list"))
                r = backup_list(&cfg, db, stdout, &err);
        else if (streq(sub, "restore"))
                r = drill_restore(&cfg, db, target, to, stdout, &err);
        else
                r = drill_run(&cfg, db, stdout, &err);
        if (r < 0)
                fprintf(stderr, "agentctl backup %s: %s\n", sub, err ? err : strerror(-r));
        agent_config_done(&cfg);
        /* Usage and lookups are rejections; a backup, drill or restore that ran and failed is a failed resource. */
        return r >= 0 ? 0 : r == -ENOENT || r == -EINVAL || r == -EPERM || r == -ENOTEMPTY || r == -ENOTDIR ? EXIT_REJECTED
                                                                                                          : EXIT_RESOURCE_FAILED;
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
        if (streq(argv[i], "enroll"))
                return cmd_enroll(config, argc - i, argv + i);
        if (streq(argv[i], "tls"))
                return cmd_tls(config, argc - i, argv + i);
        if (streq(argv[i], "backup"))
                return cmd_backup(config, argc - i, argv + i);
        fprintf(stderr, "agentctl: unknown command '%s'\n", argv[i]);
        usage(stderr);
        return EXIT_REJECTED;
}
