/* infrastream-controller: the command line. Each command is a function; the pipeline lives
 * in compile.c, the output formats in plan.c. */
#include <getopt.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <json-c/json.h>

#include "ca.h"
#include "compile.h"
#include "describe.h"
#include "push.h"
#include "serve.h"
#include "tokens.h"
#include "document.h"
#include "fileio.h"
#include "plan.h"
#include "secrets.h"
#include "sign.h"
#include "x509.h"

#define DEFAULT_STATE_DIR "/var/lib/infrastream/controller"
#define SIGNING_KEY "signing-key.pem"
#define SIGNING_PUB "signing-key.pub"

enum {
        EXIT_INVALID = 1, /* manifests or input are wrong */
        EXIT_USAGE = 2,   /* bad command line or the system failed */
};

typedef struct args {
        const char *repo, *hosts, *state_dir, *domain, *host;
        const char *app, *database, *project; /* secret reveal */
        const char *csr, *allow_names, *lifetime; /* ca sign */
        const char *ttl, *role, *labels, *replace; /* token create */
        const char *listen; /* serve */
        const char *timeout, *parallel; /* apply */
        const char *output; /* get database */
        const char *to; /* switchover */
        bool json, verbose, domain_set;
        bool backup_passphrase; /* secret reveal */
} args;

static const char *prog = "infrastream-controller";

static void usage_main(FILE *f) {
        fprintf(f,
                "Usage: %s COMMAND [OPTIONS]\n"
                "\n"
                "Turns a repository of lowops manifests into signed desired-state documents, one per host.\n"
                "\n"
                "Commands:\n"
                "  init           create the state directory, state store, signing key, master key, CA and\n"
                "                 the controller's certificate\n"
                "  validate       check every manifest in the repository\n"
                "  plan           show what would be created, changed and removed on each host\n"
                "  render         print one host's signed desired-state document and record it\n"
                "  secret reveal  print a grant's password or a database's backup passphrase (root only)\n"
                "  secret rotate  discard a grant's password: the next apply creates and delivers a new one\n"
                "  ca sign        issue a server certificate for a database host's request (CSR)\n"
                "  ca show        print the CA certificate's subject, fingerprint, expiry and domain\n"
                "  token create   create a one-time token that enrolls one host (agentctl enroll)\n"
                "  serve          answer agents over HTTPS: enrollment and status reports\n"
                "  hosts          list the enrolled hosts and what they last reported\n"
                "  apply          record every host's document, push it to the agents and wait until applied\n"
                "  get database   show a Database manifest with its computed host name, host and status\n"
                "  switchover     make another member of a replicated database its primary, losing nothing\n"
                "\n"
                "Run '%s COMMAND --help' for a command's options. --version prints the version.\n",
                prog, prog);
}

static const struct {
        const char *name, *synopsis, *options;
} HELP[] = {
        { "init", "init [--state-dir DIR] [--domain D]",
          "Create DIR (mode 0700), the state store, the Ed25519 document-signing key (0600), the\n"
          "master key that encrypts the database passwords in the state store (master.key, 0600) and\n"
          "the CA that certifies database hosts: an EC P-256 key (ca.key, 0600) and a self-signed\n"
          "certificate (ca.crt, 10 years) whose name constraints permit DNS names in D only; and the\n"
          "controller's identity for mutual TLS with agents: an EC P-256 key (controller.key, 0600) and\n"
          "a certificate for controller.D from that CA (controller.crt, 1 year).\n"
          "Safe to run again: existing keys are never overwritten; an older state store is upgraded.\n"
          "  --state-dir DIR   controller state (default " DEFAULT_STATE_DIR ")\n"
          "  --domain D        the CA's DNS domain, fixed at creation (default " DEFAULT_DOMAIN ")\n" },
        { "validate", "validate [--repo DIR] [--verbose]",
          "Parse and check every *.yaml/*.yml under DIR; print errors as path:line:col.\n"
          "  --repo DIR        manifests repository (default .)\n"
          "  --verbose         also list YAML documents that are not manifests\n" },
        { "plan", "plan [--repo DIR] [--hosts FILE] [--state-dir DIR] [--domain D] [--json]",
          "Show, per host, what applying the manifests would change, against what was last rendered.\n"
          "Reads the state store but never writes it.\n"
          "  --repo DIR        manifests repository (default .)\n"
          "  --hosts FILE      static host inventory (YAML)\n"
          "  --state-dir DIR   controller state (default " DEFAULT_STATE_DIR ")\n"
          "  --domain D        DNS domain for database host names (default: the CA's, else " DEFAULT_DOMAIN ")\n"
          "  --json            machine-readable output\n" },
        { "render", "render --host NAME [--repo DIR] [--hosts FILE] [--state-dir DIR] [--domain D]",
          "Print NAME's signed desired-state document. Records placements and the document; the\n"
          "revision increases only when the host's desired state changed.\n"
          "  --host NAME       the host whose document to print\n"
          "  --repo DIR        manifests repository (default .)\n"
          "  --hosts FILE      static host inventory (YAML)\n"
          "  --state-dir DIR   controller state (default " DEFAULT_STATE_DIR ")\n"
          "  --domain D        DNS domain for database host names (default: the CA's, else " DEFAULT_DOMAIN ")\n" },
        { "secret rotate", "secret rotate --app APP --database DB [--project ORG/OU/ENV/PROJECT] [--state-dir DIR]",
          "Discard the password of APP's role on database DB. The next apply creates a new one (32\n"
          "random bytes), gives the database host its SCRAM verifier and the application host the new\n"
          "connection string, and restarts the application; from then on the old password is refused.\n"
          "Connections opened between the two hosts' applies may fail once. Nothing else changes.\n" },
        { "secret reveal", "secret reveal --app APP --database DB [--project ORG/OU/ENV/PROJECT] [--state-dir DIR]\n"
                           "       infrastream-controller secret reveal --backup-passphrase --database DB [--project ...] "
                           "[--state-dir DIR]",
          "Print the password of APP's role on database DB in the clear, for debugging; or, with\n"
          "--backup-passphrase, the passphrase that encrypts DB's pgBackRest repository\n"
          "(repo1-cipher-pass), to restore from it by hand. Root only. A warning goes to stderr and\n"
          "the secret alone to stdout. Nothing is changed.\n"
          "  --app APP         the application (its role has the same name)\n"
          "  --backup-passphrase\n"
          "                    the database's repository passphrase instead (kept after the database\n"
          "                    or its backups are removed from the manifests)\n"
          "  --database DB     a database the application is granted, or the database\n"
          "  --project P       org/ou/env/project, needed when the pair exists in several projects\n"
          "  --state-dir DIR   controller state (default " DEFAULT_STATE_DIR ")\n" },
        { "ca sign", "ca sign --csr FILE --allow-names N1,N2 [--host NAME] [--lifetime 90d] [--state-dir DIR]",
          "Issue a server certificate for the certificate request in FILE and print it (PEM). The\n"
          "request's signature must verify; every DNS name it asks for (subjectAltName and CN) must be\n"
          "among the allowed names and inside the CA's domain; a request for a CA certificate is refused.\n"
          "Low level, until the transport carries requests: the allowed names are a host's TLS names\n"
          "as its desired-state document gives them.\n"
          "  --csr FILE        the PEM certificate request (server.csr on the database host)\n"
          "  --allow-names L   comma-separated DNS names the holder may have\n"
          "  --host NAME       the host the request comes from, named in refusals\n"
          "  --lifetime T      validity: a number and s, m, h or d, at most 397d (default 90d)\n"
          "  --state-dir DIR   controller state (default " DEFAULT_STATE_DIR ")\n" },
        { "ca show", "ca show [--state-dir DIR]",
          "Print the CA certificate's subject, SHA-256 fingerprint, validity and DNS domain.\n"
          "  --state-dir DIR   controller state (default " DEFAULT_STATE_DIR ")\n" },
        { "token create",
          "token create [--ttl 1h] [--role database|application] [--labels K=V,...] [--replace HOST] [--state-dir DIR]",
          "Create a one-time enrollment token and print it (ID.SECRET) on stdout; this is the only time\n"
          "it is shown: the state store keeps a hash of the secret. When it expires goes to stderr.\n"
          "The host that enrolls with it (agentctl enroll --token) gets the token's role and labels.\n"
          "A token enrolls a host name not enrolled yet; only one made with --replace HOST re-enrolls\n"
          "HOST (agentctl enroll --force, after its key was lost or rotated), and no other name.\n"
          "Needs write access to the state directory (root's).\n"
          "  --ttl T           validity: a number and s, m, h or d, at most 7d (default 1h)\n"
          "  --role R          database or application (default " TOKENS_ROLE_DEFAULT ", with --replace the host's)\n"
          "  --labels L        comma-separated KEY=VALUE labels for placement, e.g. environment=production\n"
          "                    (with --replace, default the host's)\n"
          "  --replace HOST    the token re-enrolls HOST, which must be enrolled, and only HOST\n"
          "  --state-dir DIR   controller state (default " DEFAULT_STATE_DIR ")\n" },
        { "serve", "serve --listen ADDR:PORT [--state-dir DIR]",
          "Answer agents over HTTPS (TLS 1.3, certificate controller.crt): GET /v1/ca, POST /v1/enroll\n"
          "(a token, a certificate request and the host's facts; answers with the host's certificate)\n"
          "and POST /v1/report (status reports, authenticated by the host's certificate). Notifies\n"
          "systemd when ready; stops on SIGTERM or SIGINT.\n"
          "  --listen A:P      address and port, e.g. 0.0.0.0:7443 or [::]:7443\n"
          "  --state-dir DIR   controller state (default " DEFAULT_STATE_DIR ")\n" },
        { "hosts", "hosts [--state-dir DIR] [--json]",
          "List the enrolled hosts: name, role, addresses, endpoint, applied revision, status of the\n"
          "last report and when it came.\n"
          "  --state-dir DIR   controller state (default " DEFAULT_STATE_DIR ")\n"
          "  --json            machine-readable output\n" },
};

static const struct {
        const char *name, *synopsis, *options;
} HELP_APPLY[] = {
        { "apply", "apply --repo DIR [--hosts FILE] [--state-dir DIR] [--domain D] [--timeout 300] [--parallel N]",
          "Render every host's document (as render does for one), record and sign those that changed\n"
          "(a new revision, the repository's HEAD commit), and push each enrolled host the recorded\n"
          "revision it has not applied yet, over mutual TLS (controller.crt), many hosts at once. A\n"
          "database host's TLS certificate requests are signed by the CA and its document pushed again\n"
          "with the certificate. Waits until every host has applied its revision. Progress goes to\n"
          "stderr, a summary per host to stdout. Exit 0 when every host converged, 1 when any did not\n"
          "(each named, with why; run apply again once it is fixed), 2 when apply could not run.\n"
          "Unchanged manifests and every host at its revision: prints \"No changes.\" and pushes nothing.\n"
          "  --repo DIR        manifests repository (default .)\n"
          "  --hosts FILE      static host inventory (YAML); its hosts must also be enrolled\n"
          "  --state-dir DIR   controller state (default " DEFAULT_STATE_DIR ")\n"
          "  --domain D        DNS domain for database host names (default: the CA's, else " DEFAULT_DOMAIN ")\n"
          "  --timeout S       seconds each host has to apply, all its pushes together (default 300)\n"
          "  --parallel N      hosts pushed to at once (default 64)\n" },
        { "get database", "get database NAME [--repo DIR] [--hosts FILE] [--state-dir DIR] [--project ORG/OU/ENV/PROJECT] [-o yaml|json]",
          "Print the Database manifest NAME as declared, with a computed block: its host name, port,\n"
          "host and address, the CA's fingerprint, the revision its host applied and its status.\n"
          "Reads the state store but never writes it.\n"
          "  --repo DIR        manifests repository (default .)\n"
          "  --hosts FILE      static host inventory (YAML)\n"
          "  --state-dir DIR   controller state (default " DEFAULT_STATE_DIR ")\n"
          "  --project P       org/ou/env/project, needed when NAME exists in several projects\n"
          "  -o, --output F    yaml (default) or json\n" },
        { "switchover", "switchover DB --to HOST [--project ORG/OU/ENV/PROJECT] [--repo DIR] [--state-dir DIR] [--timeout 120]",
          "Make HOST, a standby of the replicated Database DB, its primary, with no acknowledged write\n"
          "lost. Records the new member order (HOST first) and every document it changes, as apply\n"
          "does, then pushes in steps, each waiting for its host: the old primary (a fast shutdown,\n"
          "then a standby of HOST); HOST, once it has replayed the old primary's shutdown checkpoint\n"
          "(promoted); the other members and the applications' hosts. Writes fail from the old\n"
          "primary's shutdown until HOST is promoted. If HOST does not catch up in time, the old order\n"
          "is recorded again and the old primary made the primary again: nothing is lost. Exit 0 when\n"
          "every host converged, 1 naming the step and host that did not, 2 when it could not start.\n"
          "  --to HOST         the member to promote\n"
          "  --project P       org/ou/env/project, needed when DB exists in several projects\n"
          "  --repo DIR        manifests repository (default .)\n"
          "  --state-dir DIR   controller state (default " DEFAULT_STATE_DIR ")\n"
          "  --timeout S       seconds for each step (default 120)\n" },
};

static void usage_command(const char *cmd, FILE *f) {
        for (size_t i = 0; i < ELEMENTSOF(HELP_APPLY); i++)
                if (streq(HELP_APPLY[i].name, cmd)) {
                        fprintf(f, "Usage: %s %s\n\n%s", prog, HELP_APPLY[i].synopsis, HELP_APPLY[i].options);
                        return;
                }
        for (size_t i = 0; i < ELEMENTSOF(HELP); i++)
                if (streq(HELP[i].name, cmd)) {
                        fprintf(f, "Usage: %s %s\n\n%s", prog, HELP[i].synopsis, HELP[i].options);
                        return;
                }
}

/* Parse the options common to all commands; returns 1 when --help was shown, <0 on error. */
static int parse_args(const char *cmd, int argc, char **argv, args *a) {
        static const struct option opts[] = {
                { "repo", required_argument, NULL, 'r' },      { "hosts", required_argument, NULL, 'H' },
                { "state-dir", required_argument, NULL, 's' }, { "domain", required_argument, NULL, 'd' },
                { "host", required_argument, NULL, 'n' },      { "json", no_argument, NULL, 'j' },
                { "verbose", no_argument, NULL, 'v' },         { "help", no_argument, NULL, 'h' },
                { "app", required_argument, NULL, 'A' },       { "database", required_argument, NULL, 'D' },
                { "project", required_argument, NULL, 'P' },   { "csr", required_argument, NULL, 'C' },
                { "allow-names", required_argument, NULL, 'N' }, { "lifetime", required_argument, NULL, 'L' },
                { "ttl", required_argument, NULL, 'T' },       { "role", required_argument, NULL, 'R' },
                { "labels", required_argument, NULL, 'l' },    { "listen", required_argument, NULL, 'S' },
                { "timeout", required_argument, NULL, 't' },   { "parallel", required_argument, NULL, 'p' },
                { "output", required_argument, NULL, 'o' },    { "replace", required_argument, NULL, 'E' },
                { "backup-passphrase", no_argument, NULL, 'B' }, { "to", required_argument, NULL, 'U' },
                {},
        };
        static const char *const allowed[][8] = {
                { "init", "state-dir", "domain" },
                { "validate", "repo", "verbose" },
                { "plan", "repo", "hosts", "state-dir", "domain", "json", "verbose" },
                { "render", "repo", "hosts", "state-dir", "domain", "host", "verbose" },
                { "secret reveal", "app", "database", "project", "state-dir", "backup-passphrase" },
                { "secret rotate", "app", "database", "project", "state-dir" },
                { "ca sign", "csr", "allow-names", "lifetime", "host", "state-dir" },
                { "ca show", "state-dir" },
                { "token create", "ttl", "role", "labels", "replace", "state-dir" },
                { "serve", "listen", "state-dir" },
                { "hosts", "state-dir", "json" },
                { "apply", "repo", "hosts", "state-dir", "domain", "timeout", "parallel", "verbose" },
                { "get database", "repo", "hosts", "state-dir", "domain", "project", "output" },
                { "switchover", "to", "project", "repo", "state-dir", "timeout", "hosts" },
        };
        int c, idx;

        *a = (args) { .repo = ".", .state_dir = DEFAULT_STATE_DIR, .domain = DEFAULT_DOMAIN };
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "o:", opts, &idx)) != -1) {
                bool ok = false;
                if (c == 'o') /* -o is the one short option: getopt_long() sets no index for it */
                        for (idx = 0; !streq(opts[idx].name, "output"); idx++)
                                ;
                if (c == 'h') {
                        usage_command(cmd, stdout);
                        return 1;
                }
                if (c == '?') {
                        fprintf(stderr, "%s %s: unknown or incomplete option '%s'\n", prog, cmd, argv[optind - 1]);
                        usage_command(cmd, stderr);
                        return -EINVAL;
                }
                for (size_t i = 0; i < ELEMENTSOF(allowed); i++)
                        if (streq(allowed[i][0], cmd))
                                for (size_t j = 1; j < 8 && allowed[i][j]; j++)
                                        ok |= streq(allowed[i][j], opts[idx].name);
                if (!ok) {
                        fprintf(stderr, "%s %s: option '--%s' does not apply to this command\n", prog, cmd, opts[idx].name);
                        return -EINVAL;
                }
                switch (c) {
                case 'r':
                        a->repo = optarg;
                        break;
                case 'H':
                        a->hosts = optarg;
                        break;
                case 's':
                        a->state_dir = optarg;
                        break;
                case 'd':
                        a->domain = optarg;
                        a->domain_set = true;
                        break;
                case 'n':
                        a->host = optarg;
                        break;
                case 'j':
                        a->json = true;
                        break;
                case 'v':
                        a->verbose = true;
                        break;
                case 'A':
                        a->app = optarg;
                        break;
                case 'B':
                        a->backup_passphrase = true;
                        break;
                case 'D':
                        a->database = optarg;
                        break;
                case 'P':
                        a->project = optarg;
                        break;
                case 'C':
                        a->csr = optarg;
                        break;
                case 'N':
                        a->allow_names = optarg;
                        break;
                case 'L':
                        a->lifetime = optarg;
                        break;
                case 'T':
                        a->ttl = optarg;
                        break;
                case 'R':
                        a->role = optarg;
                        break;
                case 'l':
                        a->labels = optarg;
                        break;
                case 'E':
                        a->replace = optarg;
                        break;
                case 'S':
                        a->listen = optarg;
                        break;
                case 't':
                        a->timeout = optarg;
                        break;
                case 'p':
                        a->parallel = optarg;
                        break;
                case 'o':
                        a->output = optarg;
                        break;
                case 'U':
                        a->to = optarg;
                        break;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "%s %s: unexpected argument '%s'\n", prog, cmd, argv[optind]);
                return -EINVAL;
        }
        return 0;
}

/* The controller's identity on the mutual-TLS channel, certified by the CA. Never replaced here:
 * agents may be connected with it; a lost one is moved away by hand and init issues a new one. */
static int init_controller_cert(const args *a, const ca *c) {
        _cleanup_free_ char *err = NULL, *path = xasprintf("%s/%s", a->state_dir, CA_CONTROLLER_CERT_FILE), *pem = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        time_t not_before, not_after;
        char when[32];
        int created, r;

        created = ca_create_controller_cert(c, a->state_dir, &err);
        if (created < 0) {
                fprintf(stderr, "%s init: %s\n", prog, err);
                return created;
        }
        r = read_full_file(path, X509_PEM_MAX, &pem, NULL);
        if (r >= 0)
                r = x509_cert_from_pem(pem, &x, &err);
        if (r >= 0)
                r = x509_validity(x, &not_before, &not_after);
        if (r < 0) {
                fprintf(stderr, "%s init: cannot read %s: %s\n", prog, path, err ? err : strerror(-r));
                return r;
        }
        x509_format_time(not_after, when);
        printf(created > 0 ? "created controller certificate %s (expires %s)\n"
                           : "controller certificate %s exists, kept (expires %s)\n",
               path, when);
        if (not_after - time(NULL) < 30 * 86400)
                fprintf(stderr, "warning: the controller certificate %s expires %s; move %s and %s/%s away and run "
                                "init again to issue a new one\n",
                        path, when, path, a->state_dir, CA_CONTROLLER_KEY_FILE);
        return 0;
}

/* The CA is created once; its domain is in its certificate's name constraints and cannot change. */
static int init_ca(const args *a) {
        _cleanup_(ca_freep) ca *c = NULL;
        _cleanup_free_ char *err = NULL;
        int created, r;

        created = ca_create(a->state_dir, a->domain, &err);
        if (created < 0) {
                fprintf(stderr, "%s init: %s\n", prog, err);
                return created;
        }
        r = ca_load(a->state_dir, &c, &err);
        if (r < 0) {
                fprintf(stderr, "%s init: %s\n", prog, err);
                return r;
        }
        if (a->domain_set && strcasecmp(ca_domain(c), a->domain) != 0) {
                fprintf(stderr, "%s init: the CA %s is constrained to domain '%s', not '%s'; a CA's domain cannot change "
                                "(move ca.key and ca.crt away to create a new CA, which every agent must then trust)\n",
                        prog, ca_cert_path(c), ca_domain(c), a->domain);
                return -EEXIST;
        }
        printf(created > 0 ? "created CA %s for domain %s\n" : "CA %s exists, kept (domain %s)\n", ca_cert_path(c),
               ca_domain(c));
        return init_controller_cert(a, c);
}

static int cmd_init(const args *a) {
        _cleanup_free_ char *key = xasprintf("%s/%s", a->state_dir, SIGNING_KEY),
                            *pub = xasprintf("%s/%s", a->state_dir, SIGNING_PUB), *err = NULL;
        store *s = NULL;
        struct stat st;
        int r;

        r = mkdir_p(a->state_dir, 0700);
        if (r < 0 || stat(a->state_dir, &st) < 0) {
                fprintf(stderr, "%s init: cannot create '%s': %s\n", prog, a->state_dir, strerror(r < 0 ? -r : errno));
                return EXIT_USAGE;
        }
        if ((st.st_mode & 077) != 0 && chmod(a->state_dir, 0700) < 0) {
                fprintf(stderr, "%s init: cannot restrict '%s' to 0700: %s\n", prog, a->state_dir, strerror(errno));
                return EXIT_USAGE;
        }
        r = store_open(a->state_dir, true, false, &s, &err);
        if (r < 0) {
                fprintf(stderr, "%s init: %s\n", prog, err ? err : strerror(-r));
                return EXIT_USAGE;
        }
        store_close(s);

        r = sign_generate_key(key);
        if (r == -EEXIST)
                printf("signing key %s exists, kept\n", key);
        else if (r < 0) {
                fprintf(stderr, "%s init: cannot create the signing key %s: %s\n", prog, key, strerror(-r));
                return EXIT_USAGE;
        } else
                printf("created signing key %s\n", key);
        r = sign_export_public_key(key, pub);
        if (r < 0) {
                fprintf(stderr, "%s init: cannot write %s: %s\n", prog, pub, strerror(-r));
                return EXIT_USAGE;
        }
        r = secrets_create_master_key(a->state_dir);
        if (r < 0) {
                fprintf(stderr, "%s init: cannot create the master key %s/%s: %s\n", prog, a->state_dir,
                        SECRETS_MASTER_KEY_FILE, strerror(-r));
                return EXIT_USAGE;
        }
        printf(r > 0 ? "created master key %s/%s\n" : "master key %s/%s exists, kept\n", a->state_dir,
               SECRETS_MASTER_KEY_FILE);
        r = init_ca(a);
        if (r < 0)
                return EXIT_USAGE;
        printf("state directory %s ready (agents trust %s)\n", a->state_dir, pub);
        return 0;
}

static int report_diags(compilation *c, bool verbose) {
        diag_sort(&c->diags);
        diag_print(&c->diags, stderr, verbose);
        if (c->diags.n_errors > 0) {
                fprintf(stderr, "%zu error%s, %zu warning%s\n", c->diags.n_errors, c->diags.n_errors == 1 ? "" : "s",
                        c->diags.n_warnings, c->diags.n_warnings == 1 ? "" : "s");
                return EXIT_INVALID;
        }
        return 0;
}

static int cmd_validate(const args *a) {
        _cleanup_(compilation_done) compilation c = {};
        compile_options o = { .repo = a->repo };
        int r;

        compilation_init(&c);
        r = compile_manifests(&c, &o);
        if (r < 0 && r != -EBADMSG) {
                fprintf(stderr, "%s validate: cannot read repository '%s': %s\n", prog, a->repo, strerror(-r));
                return EXIT_USAGE;
        }
        if (report_diags(&c, a->verbose))
                return EXIT_INVALID;
        printf("ok: %zu manifest%s (%zu database%s, %zu application%s) in %zu YAML file%s",
               c.set.n_dbs + c.set.n_apps, c.set.n_dbs + c.set.n_apps == 1 ? "" : "s", c.set.n_dbs,
               c.set.n_dbs == 1 ? "" : "s", c.set.n_apps, c.set.n_apps == 1 ? "" : "s", c.set.n_yaml_files,
               c.set.n_yaml_files == 1 ? "" : "s");
        if (c.set.n_ignored)
                printf(", %zu other YAML document%s ignored", c.set.n_ignored, c.set.n_ignored == 1 ? "" : "s");
        if (c.diags.n_warnings)
                printf(", %zu warning%s", c.diags.n_warnings, c.diags.n_warnings == 1 ? "" : "s");
        putchar('\n');
        return 0;
}

static int run_compile_first(compilation *c, const args *a, bool write, const char *cmd, const char *first_db,
                             const char *first_host) {
        compile_options o = { .repo = a->repo, .hosts_file = a->hosts, .state_dir = a->state_dir,
                              .domain = a->domain, .write_store = write, .first_member_db = first_db,
                              .first_member_host = first_host };
        _cleanup_free_ char *err = NULL, *ca_dom = NULL;
        int r;

        /* Host names must fall inside the CA's name constraint: without --domain, use its domain. */
        if (!a->domain_set) {
                _cleanup_(ca_freep) ca *authority = NULL;
                _cleanup_free_ char *ignored = NULL;
                if (ca_load(a->state_dir, &authority, &ignored) >= 0) {
                        ca_dom = xstrdup(ca_domain(authority));
                        o.domain = ca_dom;
                }
        }

        compilation_init(c);
        r = compile_all(c, &o, &err);
        if (r == -EBADMSG || c->diags.n_errors > 0)
                return report_diags(c, a->verbose) ? EXIT_INVALID : EXIT_INVALID;
        if (r < 0) {
                if (err)
                        fprintf(stderr, "%s %s: %s\n", prog, cmd, err);
                else
                        fprintf(stderr, "%s %s: cannot read repository '%s': %s\n", prog, cmd, a->repo, strerror(-r));
                return EXIT_USAGE;
        }
        (void) report_diags(c, a->verbose); /* warnings */
        return 0;
}

static int run_compile(compilation *c, const args *a, bool write, const char *cmd) {
        return run_compile_first(c, a, write, cmd, NULL, NULL);
}

static int cmd_plan(const args *a) {
        _cleanup_(compilation_done) compilation c = {};
        _cleanup_free_ plan_host *hosts = NULL;
        _cleanup_free_ doc_document **prev = NULL;
        plan p;
        int r;

        r = run_compile(&c, a, false, "plan");
        if (r)
                return r;
        /* Read-only: the verifiers of existing secrets, so an unchanged role plans as unchanged. */
        r = compile_attach_verifiers(&c, NULL);
        if (r < 0) {
                fprintf(stderr, "%s plan: cannot read the secrets in the state store: %s\n", prog, strerror(-r));
                return EXIT_USAGE;
        }
        if (c.store) {
                /* The recorded content hashes cover the passwords and certificates apply delivers:
                 * hash the same document (the passwords stay in memory and are never shown). */
                _cleanup_(secrets_closep) secrets *x = NULL;
                _cleanup_free_ char *err = NULL;

                r = secrets_open(c.store, a->state_dir, &x, &err);
                if (r < 0) {
                        fprintf(stderr, "%s plan: %s\n", prog, err);
                        return EXIT_USAGE;
                }
                r = compile_attach_passwords(&c, x);
                if (r >= 0)
                        r = compile_attach_backup_passphrases(&c, x, false);
                if (r >= 0)
                        r = compile_attach_certificates(&c, -1, (int64_t) time(NULL));
                if (r < 0) {
                        fprintf(stderr, "%s plan: cannot read the secrets and certificates in the state store: %s\n",
                                prog, strerror(-r));
                        return EXIT_USAGE;
                }
        }
        hosts = xcalloc(c.inv.n + 1, sizeof(plan_host));
        prev = xcalloc(c.inv.n + 1, sizeof(doc_document *));
        for (size_t i = 0; i < c.inv.n; i++) {
                const stored_document *sd = compilation_recorded(&c, c.inv.hosts[i].name);
                char hash[65];

                hosts[i] = (plan_host) { .host = &c.inv.hosts[i], .next = c.rr.docs[i] };
                if (!sd)
                        continue;
                doc_content_hash(c.rr.docs[i], hash);
                hosts[i].prev_revision = sd->revision;
                hosts[i].unchanged = streq(hash, sd->content_hash);
                if (!hosts[i].unchanged) {
                        _cleanup_free_ char *err = NULL;
                        if (doc_decode(sd->body, strlen(sd->body), &prev[i], NULL, NULL, &err) < 0) {
                                fprintf(stderr, "%s plan: the recorded document of host '%s' is unreadable (%s); "
                                                "planning it as new\n", prog, c.inv.hosts[i].name, err);
                                prev[i] = NULL;
                        }
                        hosts[i].prev = prev[i];
                }
        }
        for (size_t i = 0; i < c.n_docs; i++)
                if (inventory_find(&c.inv, c.docs[i].host) < 0)
                        fprintf(stderr, "warning: host '%s' has a recorded document (revision %llu) but is not in the "
                                        "inventory; it keeps what it has\n",
                                c.docs[i].host, (unsigned long long) c.docs[i].revision);
        plan_build(hosts, c.inv.n, &c.rr, &p);
        if (a->json)
                plan_print_json(&p, stdout);
        else
                plan_print_text(&p, stdout);
        plan_done(&p);
        for (size_t i = 0; i < c.inv.n; i++)
                doc_document_free(prev[i]);
        return 0;
}


/* Passwords a document carries in the clear (application hosts, from apply's point of view). */
static size_t count_passwords(const doc_document *d) {
        size_t n = 0;
        for (size_t i = 0; i < d->n_apps; i++)
                for (size_t j = 0; j < d->apps[i].n_env; j++)
                        n += d->apps[i].env[j].password != NULL;
        return n;
}

/* Backup passphrases a document carries in the clear (database hosts). */
static size_t count_passphrases(const doc_document *d) {
        size_t n = 0;
        for (size_t i = 0; i < d->n_databases; i++)
                n += d->databases[i].backup.passphrase != NULL;
        return n;
}

/* Replication passwords a document carries in the clear (standbys). */
static size_t count_replication_passwords(const doc_document *d) {
        size_t n = 0;
        for (size_t i = 0; i < d->n_databases; i++)
                n += d->databases[i].replication && d->databases[i].replication->password;
        return n;
}

static void warn_cleartext(const char *host, size_t n, const char *what) {
        if (n > 0)
                fprintf(stderr,
                        "warning: host '%s''s document carries %zu %s%s in the clear, as apply delivers it over "
                        "mutual TLS; keep this output private\n",
                        host, n, what, n == 1 ? "" : "s");
}

static int cmd_render(const args *a) {
        _cleanup_(compilation_done) compilation c = {};
        _cleanup_(secrets_closep) secrets *x = NULL;
        _cleanup_free_ char *key = xasprintf("%s/%s", a->state_dir, SIGNING_KEY), *err = NULL, *commit = NULL;
        _cleanup_erase_ char *body = NULL; /* carries passwords or backup passphrases */
        const char *what = "record in the state store";
        doc_document *d;
        size_t size;
        long h;
        int r;

        if (!a->host) {
                fprintf(stderr, "%s render: --host NAME is required\n", prog);
                return EXIT_USAGE;
        }
        r = run_compile(&c, a, true, "render");
        if (r)
                return r;
        h = inventory_find(&c.inv, a->host);
        if (h < 0) {
                fprintf(stderr, "%s render: host '%s' is not in the inventory\n", prog, a->host);
                return EXIT_INVALID;
        }
        r = secrets_open(c.store, a->state_dir, &x, &err);
        if (r < 0) {
                fprintf(stderr, "%s render: %s\n", prog, err);
                return EXIT_USAGE;
        }
        d = c.rr.docs[h];

        /* One transaction: placements, the grants' secrets and the document are recorded together. */
        r = store_begin(c.store);
        if (r >= 0)
                r = compile_record_placements(&c);
        if (r >= 0) {
                /* Every database host's roles, not just this host's: a grant's secret exists from the
                 * first render on, whichever host is rendered first. */
                what = "create or read the grants' secrets";
                r = compile_attach_verifiers(&c, x);
                if (r >= 0)
                        r = compile_prune_secrets(&c, x, NULL);
                /* What apply pushes, so that both hash (and number) the same document. */
                if (r >= 0)
                        r = compile_attach_passwords(&c, x);
                if (r >= 0) {
                        what = "create or read the databases' backup passphrases";
                        r = compile_attach_backup_passphrases(&c, x, true);
                }
                if (r >= 0) {
                        what = "create or read the databases' data keys";
                        r = compile_ensure_data_keys(&c, x);
                }
                if (r >= 0) {
                        what = "read the issued certificates";
                        r = compile_attach_certificates(&c, h, (int64_t) time(NULL));
                }
                if (r >= 0)
                        what = "record in the state store";
        }
        if (r >= 0) {
                /* Unchanged: the recorded revision and commit, signed again: the same bytes as before. */
                commit = repo_head_commit(a->repo);
                r = compile_stamp_document(&c, (size_t) h, commit);
        }
        if (r >= 0) {
                r = sign_document(d, key, &body, &size, &err);
                if (r < 0) {
                        store_rollback(c.store);
                        fprintf(stderr, "%s render: cannot sign with %s: %s\n", prog, key, err ? err : strerror(-r));
                        return EXIT_USAGE;
                }
                r = store_commit(c.store);
        }
        if (r < 0) {
                store_rollback(c.store);
                fprintf(stderr, "%s render: cannot %s: %s\n", prog, what, strerror(-r));
                return EXIT_USAGE;
        }
        warn_cleartext(a->host, count_passwords(d), "database password");
        warn_cleartext(a->host, count_passphrases(d), "backup passphrase");
        warn_cleartext(a->host, count_replication_passwords(d), "replication password");
        /* write(2), not stdio: no copy of a secret is left in a stdio buffer. */
        r = write_all(STDOUT_FILENO, body, strlen(body));
        if (r < 0) {
                fprintf(stderr, "%s render: cannot write to stdout: %s\n", prog, strerror(-r));
                return EXIT_USAGE;
        }
        return 0;
}

/* The state store for the secret commands; a message naming cmd and -errno when it cannot be opened. */
static int open_state_store(const char *cmd, const args *a, bool readonly, store **ret) {
        _cleanup_free_ char *err = NULL;
        int r = store_open(a->state_dir, false, readonly, ret, &err);

        if (r < 0) {
                if (err)
                        fprintf(stderr, "%s %s: %s\n", prog, cmd, err);
                else
                        fprintf(stderr, "%s %s: cannot open the state store in %s: %s\n", prog, cmd, a->state_dir,
                                strerror(-r));
        }
        return r;
}

/* The grant --app/--database/--project name: 0, or the exit status after saying why not. */
static int find_grant(const char *cmd, store *s, const args *a, char **ret_application_key, char **ret_database_key) {
        _cleanup_free_ char *err = NULL;
        int r = secrets_find(s, a->app, a->database, a->project, ret_application_key, ret_database_key, &err);

        if (r >= 0)
                return 0;
        fprintf(stderr, "%s %s: %s%s\n", prog, cmd, err, r == -ENOTUNIQ ? " (choose one with --project)" : "");
        return r == -ENOENT || r == -ENOTUNIQ ? EXIT_INVALID : EXIT_USAGE;
}

/* secret reveal --backup-passphrase: the caller checked for root. */
static int secret_reveal_passphrase(const args *a) {
        _cleanup_(store_closep) store *s = NULL;
        _cleanup_(secrets_closep) secrets *x = NULL;
        _cleanup_free_ char *err = NULL, *db_key = NULL;
        _cleanup_erase_ char *passphrase = NULL;
        int r;

        if (a->app || !a->database) {
                fprintf(stderr, "%s secret reveal: --backup-passphrase takes --database DB, and no --app\n", prog);
                return EXIT_USAGE;
        }
        if (open_state_store("secret reveal", a, true, &s) < 0)
                return EXIT_USAGE;
        r = secrets_find_backup_passphrase(s, a->database, a->project, &db_key, &err);
        if (r < 0) {
                fprintf(stderr, "%s secret reveal: %s%s\n", prog, err,
                        r == -ENOTUNIQ ? " (choose one with --project)" : "");
                return r == -ENOENT || r == -ENOTUNIQ ? EXIT_INVALID : EXIT_USAGE;
        }
        r = secrets_open(s, a->state_dir, &x, &err);
        if (r < 0) {
                fprintf(stderr, "%s secret reveal: %s\n", prog, err);
                return EXIT_USAGE;
        }
        r = secrets_get_backup_passphrase(x, db_key, &passphrase);
        if (r < 0) {
                fprintf(stderr, "%s secret reveal: the backup passphrase of database '%s' %s\n", prog, a->database,
                        r == -EKEYREJECTED ? "does not decrypt: sealed with another master key, or the store was "
                                             "tampered with"
                        : r == -EBADMSG    ? "is malformed in the state store"
                                           : strerror(-r));
                return EXIT_USAGE;
        }
        fprintf(stderr,
                "WARNING: printing a backup repository passphrase in the clear; whoever sees this terminal, its "
                "scrollback or a log of this session can read every backup of database '%s' (%s). Do not paste it "
                "anywhere.\n",
                a->database, db_key);
        /* write(2), not stdio: no copy of the passphrase is left in a stdio buffer. */
        r = write_all(STDOUT_FILENO, passphrase, strlen(passphrase));
        if (r >= 0)
                r = write_all(STDOUT_FILENO, "\n", 1);
        if (r < 0) {
                fprintf(stderr, "%s secret reveal: cannot write to stdout: %s\n", prog, strerror(-r));
                return EXIT_USAGE;
        }
        return 0;
}

/* secret rotate: the grant's row goes; the next apply's compile_attach_verifiers() creates a new
 * password, as for a new grant. No master key needed: nothing is decrypted. */
static int cmd_secret_rotate(const args *a) {
        _cleanup_(store_closep) store *s = NULL;
        _cleanup_free_ char *app_key = NULL, *db_key = NULL;
        int r;

        if (!a->app || !a->database) {
                fprintf(stderr, "%s secret rotate: --app APP and --database DB are required\n", prog);
                return EXIT_USAGE;
        }
        if (open_state_store("secret rotate", a, false, &s) < 0)
                return EXIT_USAGE;
        r = find_grant("secret rotate", s, a, &app_key, &db_key);
        if (r != 0)
                return r;
        r = store_delete_secret(s, app_key, db_key);
        if (r < 0) {
                fprintf(stderr, "%s secret rotate: cannot write the state store: %s\n", prog, strerror(-r));
                return EXIT_USAGE;
        }
        printf("The password of %s on %s is discarded. The next apply creates a new one, sets it on the database "
               "host and in the application's environment, and restarts the application.\n",
               app_key, db_key);
        return 0;
}

static int cmd_secret_reveal(const args *a) {
        _cleanup_(store_closep) store *s = NULL;
        _cleanup_(secrets_closep) secrets *x = NULL;
        _cleanup_free_ char *err = NULL, *app_key = NULL, *db_key = NULL;
        _cleanup_erase_ char *password = NULL;
        int r;

        /* Checked before anything is opened: the answer does not depend on what exists. */
        if (geteuid() != 0) {
                fprintf(stderr, "%s secret reveal: only root may reveal secrets\n", prog);
                return EXIT_USAGE;
        }
        if (a->backup_passphrase)
                return secret_reveal_passphrase(a);
        if (!a->app || !a->database) {
                fprintf(stderr, "%s secret reveal: --app APP and --database DB are required\n", prog);
                return EXIT_USAGE;
        }
        if (open_state_store("secret reveal", a, true, &s) < 0)
                return EXIT_USAGE;
        r = find_grant("secret reveal", s, a, &app_key, &db_key);
        if (r != 0)
                return r;
        r = secrets_open(s, a->state_dir, &x, &err);
        if (r < 0) {
                fprintf(stderr, "%s secret reveal: %s\n", prog, err);
                return EXIT_USAGE;
        }
        r = secrets_get_password(x, app_key, db_key, &password);
        if (r < 0) {
                fprintf(stderr, "%s secret reveal: the secret of application '%s' for database '%s' %s\n", prog,
                        a->app, a->database,
                        r == -EKEYREJECTED ? "does not decrypt: sealed with another master key, or the store was "
                                             "tampered with"
                        : r == -EBADMSG    ? "is malformed in the state store"
                                           : strerror(-r));
                return EXIT_USAGE;
        }
        fprintf(stderr,
                "WARNING: printing a database password in the clear; whoever sees this terminal, its scrollback or "
                "a log of this session can log in as role '%s' on database '%s'. Do not paste it anywhere.\n",
                a->app, a->database);
        /* write(2), not stdio: no copy of the password is left in a stdio buffer. */
        r = write_all(STDOUT_FILENO, password, strlen(password));
        if (r >= 0)
                r = write_all(STDOUT_FILENO, "\n", 1);
        if (r < 0) {
                fprintf(stderr, "%s secret reveal: cannot write to stdout: %s\n", prog, strerror(-r));
                return EXIT_USAGE;
        }
        return 0;
}

static int cmd_ca_sign(const args *a) {
        _cleanup_(ca_freep) ca *c = NULL;
        _cleanup_free_ char *csr = NULL, *err = NULL, *pem = NULL, *list = NULL, *holder = NULL;
        _cleanup_free_ const char **names = NULL;
        int64_t lifetime = CA_CERT_LIFETIME_DEFAULT;
        size_t n = 0;
        char *save = NULL;
        int r;

        if (!a->csr || !a->allow_names) {
                fprintf(stderr, "%s ca sign: --csr FILE and --allow-names N1,N2 are required\n", prog);
                return EXIT_USAGE;
        }
        if (a->lifetime && ca_parse_lifetime(a->lifetime, &lifetime) < 0) {
                fprintf(stderr, "%s ca sign: --lifetime must be a number followed by s, m, h or d, between 1s and %dd; "
                                "not '%s'\n",
                        prog, CA_CERT_LIFETIME_MAX / 86400, a->lifetime);
                return EXIT_USAGE;
        }
        list = xstrdup(a->allow_names);
        for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                names = xrealloc(names, (n + 1) * sizeof(char *));
                names[n++] = t;
        }
        if (n == 0) {
                fprintf(stderr, "%s ca sign: --allow-names needs at least one name\n", prog);
                return EXIT_USAGE;
        }
        r = read_full_file(a->csr, 64 * 1024, &csr, NULL);
        if (r < 0) {
                fprintf(stderr, "%s ca sign: cannot read %s: %s\n", prog, a->csr, strerror(-r));
                return EXIT_USAGE;
        }
        r = ca_load(a->state_dir, &c, &err);
        if (r < 0) {
                fprintf(stderr, "%s ca sign: %s\n", prog, err);
                return EXIT_USAGE;
        }
        if (a->host)
                holder = xasprintf("host '%s'", a->host);
        r = ca_sign_csr(c, csr, names, n, holder, lifetime, &pem, &err);
        if (r < 0) {
                fprintf(stderr, "%s ca sign: refused: %s\n", prog, err);
                return r == -EPERM || r == -EBADMSG || r == -ERANGE ? EXIT_INVALID : EXIT_USAGE;
        }
        fputs(pem, stdout);
        return 0;
}

static int cmd_ca_show(const args *a) {
        _cleanup_(ca_freep) ca *c = NULL;
        _cleanup_free_ char *err = NULL, *subject = NULL;
        char fp[65], nb[32], na[32];
        time_t not_before, not_after;
        int r;

        r = ca_load(a->state_dir, &c, &err);
        if (r < 0) {
                fprintf(stderr, "%s ca show: %s\n", prog, err);
                return EXIT_USAGE;
        }
        r = ca_describe(c, &subject, fp, &not_before, &not_after);
        if (r < 0) {
                fprintf(stderr, "%s ca show: cannot read %s: %s\n", prog, ca_cert_path(c), strerror(-r));
                return EXIT_USAGE;
        }
        x509_format_time(not_before, nb);
        x509_format_time(not_after, na);
        printf("certificate: %s\nsubject:     %s\nsha256:      %s\nnot before:  %s\nnot after:   %s\n"
               "domain:      %s (name constraint: DNS names at or below it)\n",
               ca_cert_path(c), subject, fp, nb, na, ca_domain(c));
        return 0;
}

/* "in 1h", "in 30m": how long a token lives, as the operator typed it roughly. */
static void format_duration(int64_t s, char *buf, size_t size) {
        if (s % 86400 == 0)
                snprintf(buf, size, "%lldd", (long long) (s / 86400));
        else if (s % 3600 == 0)
                snprintf(buf, size, "%lldh", (long long) (s / 3600));
        else if (s % 60 == 0)
                snprintf(buf, size, "%lldm", (long long) (s / 60));
        else
                snprintf(buf, size, "%llds", (long long) s);
}

static int cmd_token_create(const args *a) {
        _cleanup_(store_closep) store *s = NULL;
        _cleanup_free_ char *err = NULL, *labels = NULL, *role = NULL;
        _cleanup_erase_ char *token = NULL;
        int64_t ttl = TOKENS_TTL_DEFAULT, now = (int64_t) time(NULL);
        stored_token t = {};
        stored_host h = {};
        char when[32], ttl_text[32];
        int r;

        if (a->ttl && tokens_parse_ttl(a->ttl, &ttl, &err) < 0) {
                fprintf(stderr, "%s token create: %s\n", prog, err);
                return EXIT_USAGE;
        }
        if (a->role && tokens_check_role(a->role, &err) < 0) {
                fprintf(stderr, "%s token create: --role: %s\n", prog, err);
                return EXIT_USAGE;
        }
        if (a->labels && tokens_parse_labels(a->labels, &labels, &err) < 0) {
                fprintf(stderr, "%s token create: --labels: %s\n", prog, err);
                return EXIT_USAGE;
        }
        r = store_open(a->state_dir, false, false, &s, &err);
        if (r < 0) {
                if (err)
                        fprintf(stderr, "%s token create: %s\n", prog, err);
                else
                        fprintf(stderr, "%s token create: cannot open the state store in %s: %s%s\n", prog, a->state_dir,
                                strerror(-r),
                                r == -ENOENT    ? " (run 'infrastream-controller init' first)"
                                : r == -EACCES ? " (the state directory is root's: run as root)"
                                               : "");
                return EXIT_USAGE;
        }
        /* The host --replace names is checked and the token recorded in one transaction. */
        r = store_begin(s);
        if (r < 0) {
                fprintf(stderr, "%s token create: cannot begin a transaction in the state store: %s\n", prog,
                        strerror(-r));
                return EXIT_USAGE;
        }
        if (a->replace) {
                r = tokens_check_replace(s, a->replace, &h, &err);
                if (r < 0) {
                        store_rollback(s);
                        fprintf(stderr, "%s token create: %s\n", prog, err);
                        return r == -ENOENT ? EXIT_INVALID : EXIT_USAGE;
                }
        }
        /* Re-enrolling keeps what placement knows the host by, unless told otherwise. */
        role = xstrdup(a->role ? a->role : a->replace ? h.role : TOKENS_ROLE_DEFAULT);
        if (!labels)
                labels = xstrdup(a->replace ? h.labels : "");
        stored_host_done(&h);
        r = tokens_create(s, role, labels, a->replace, ttl, now, &token, &t, &err);
        if (r >= 0) {
                r = store_commit(s);
                if (r < 0) {
                        stored_token_done(&t);
                        err = xasprintf("cannot record the token in the state store: %s", strerror(-r));
                }
        }
        if (r < 0) {
                store_rollback(s);
                fprintf(stderr, "%s token create: %s\n", prog, err);
                return EXIT_USAGE;
        }
        x509_format_time((time_t) t.expires, when);
        format_duration(ttl, ttl_text, sizeof(ttl_text));
        stored_token_done(&t);
        /* write(2), not stdio: no copy of the secret is left in a stdio buffer. */
        r = write_all(STDOUT_FILENO, token, strlen(token));
        if (r >= 0)
                r = write_all(STDOUT_FILENO, "\n", 1);
        if (r < 0) {
                fprintf(stderr, "%s token create: cannot write to stdout: %s\n", prog, strerror(-r));
                return EXIT_USAGE;
        }
        if (a->replace)
                fprintf(stderr, "token to re-enroll host '%s' as a %s host%s%s, valid until %s (%s); it is shown only "
                                "this once\n",
                        a->replace, role, *labels ? " with labels " : "", labels, when, ttl_text);
        else
                fprintf(stderr, "token for one %s host%s%s, valid until %s (%s); it is shown only this once\n", role,
                        *labels ? " with labels " : "", labels, when, ttl_text);
        if (streq(role, "database") && strncmp(labels, "environment=", 12) != 0 && !strstr(labels, ",environment="))
                fprintf(stderr, "warning: databases are placed on hosts by their 'environment' label; a database "
                                "host enrolled without one gets none (--labels environment=NAME)\n");
        return 0;
}

static int cmd_serve(const args *a) {
        _cleanup_free_ char *pub = xasprintf("%s/%s", a->state_dir, SIGNING_PUB), *err = NULL;
        serve_options o = { .state_dir = a->state_dir, .listen = a->listen, .signing_pub = pub };
        int r;

        if (!a->listen) {
                fprintf(stderr, "%s serve: --listen ADDR:PORT is required\n", prog);
                return EXIT_USAGE;
        }
        r = serve_run(&o, &err);
        if (r < 0) {
                fprintf(stderr, "%s serve: %s\n", prog, err ? err : strerror(-r));
                return EXIT_USAGE;
        }
        return 0;
}

/* "12s ago", "5m ago", "3h ago", "2d ago" */
static void format_ago(int64_t then, int64_t now, char *buf, size_t size) {
        int64_t d = now > then ? now - then : 0;

        if (then == 0)
                snprintf(buf, size, "never");
        else if (d < 120)
                snprintf(buf, size, "%llds ago", (long long) d);
        else if (d < 7200)
                snprintf(buf, size, "%lldm ago", (long long) (d / 60));
        else if (d < 2 * 86400)
                snprintf(buf, size, "%lldh ago", (long long) (d / 3600));
        else
                snprintf(buf, size, "%lldd ago", (long long) (d / 86400));
}

static const char *host_status(const stored_host *h) {
        return h->last_seen == 0 ? "enrolled" : h->failed ? "failed" : "ok";
}

static json_object *time_json(int64_t t) {
        char buf[32];

        if (t == 0)
                return NULL;
        x509_format_time((time_t) t, buf);
        return json_object_new_string(buf);
}

static void print_hosts_json(const stored_host *hosts, size_t n) {
        json_object *all = json_object_new_array();

        for (size_t i = 0; i < n; i++) {
                const stored_host *h = &hosts[i];
                json_object *o = json_object_new_object(), *addrs = json_object_new_array(),
                            *labels = json_object_new_object();
                char **keys = NULL, **values = NULL;
                size_t n_labels = 0;

                for (size_t k = 0; k < h->n_addresses; k++)
                        json_object_array_add(addrs, json_object_new_string(h->addresses[k]));
                tokens_split_labels(h->labels, &keys, &values, &n_labels);
                for (size_t k = 0; k < n_labels; k++)
                        json_object_object_add(labels, keys[k], json_object_new_string(values[k]));
                tokens_labels_free(keys, values, n_labels);
                json_object_object_add(o, "name", json_object_new_string(h->name));
                json_object_object_add(o, "role", json_object_new_string(h->role));
                json_object_object_add(o, "addresses", addrs);
                json_object_object_add(o, "cpus", json_object_new_int(h->cpus));
                json_object_object_add(o, "memoryBytes", json_object_new_int64((int64_t) h->memory_bytes));
                json_object_object_add(o, "labels", labels);
                json_object_object_add(o, "endpoint", json_object_new_string(h->endpoint));
                json_object_object_add(o, "certificateFingerprint", json_object_new_string(h->cert_fingerprint));
                json_object_object_add(o, "enrolledAt", time_json(h->enrolled_at));
                json_object_object_add(o, "lastSeen", time_json(h->last_seen));
                json_object_object_add(o, "appliedRevision", json_object_new_int64((int64_t) h->applied_revision));
                json_object_object_add(o, "appliedCommit", json_object_new_string(strempty(h->applied_commit)));
                json_object_object_add(o, "state", json_object_new_string(host_status(h)));
                /* The last report as the agent sent it (no secrets in it, by the agent's contract). */
                json_object_object_add(o, "report", h->status ? json_tokener_parse(h->status) : NULL);
                json_object_array_add(all, o);
        }
        puts(json_object_to_json_string_ext(all, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                          JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(all);
}

static void print_hosts_table(const stored_host *hosts, size_t n) {
        static const char *const head[] = { "NAME", "ROLE", "ADDRESSES", "ENDPOINT", "REVISION", "STATUS", "LAST-SEEN" };
        int w[ELEMENTSOF(head)];
        char ***cells = xcalloc(n + 1, sizeof(char **));
        int64_t now = (int64_t) time(NULL);

        for (size_t c = 0; c < ELEMENTSOF(head); c++)
                w[c] = (int) strlen(head[c]);
        for (size_t i = 0; i < n; i++) {
                const stored_host *h = &hosts[i];
                char ago[32];

                cells[i] = xcalloc(ELEMENTSOF(head), sizeof(char *));
                format_ago(h->last_seen, now, ago, sizeof(ago));
                cells[i][0] = xstrdup(h->name);
                cells[i][1] = xstrdup(h->role);
                cells[i][2] = xstrdup("");
                for (size_t k = 0; k < h->n_addresses; k++) {
                        char *joined = xasprintf("%s%s%s", cells[i][2], k ? "," : "", h->addresses[k]);
                        free(cells[i][2]);
                        cells[i][2] = joined;
                }
                cells[i][3] = xstrdup(h->endpoint);
                cells[i][4] = h->applied_revision ? xasprintf("%llu", (unsigned long long) h->applied_revision)
                                                  : xstrdup("-");
                cells[i][5] = xstrdup(host_status(h));
                cells[i][6] = xstrdup(ago);
                for (size_t c = 0; c < ELEMENTSOF(head); c++)
                        if ((int) strlen(cells[i][c]) > w[c])
                                w[c] = (int) strlen(cells[i][c]);
        }
        for (size_t c = 0; c < ELEMENTSOF(head); c++)
                printf("%-*s%s", c + 1 < ELEMENTSOF(head) ? w[c] : 0, head[c], c + 1 < ELEMENTSOF(head) ? "  " : "\n");
        for (size_t i = 0; i < n; i++) {
                for (size_t c = 0; c < ELEMENTSOF(head); c++) {
                        printf("%-*s%s", c + 1 < ELEMENTSOF(head) ? w[c] : 0, cells[i][c],
                               c + 1 < ELEMENTSOF(head) ? "  " : "\n");
                        free(cells[i][c]);
                }
                free(cells[i]);
        }
        free(cells);
}

static int cmd_hosts(const args *a) {
        _cleanup_(store_closep) store *s = NULL;
        _cleanup_free_ char *err = NULL;
        stored_host *hosts = NULL;
        size_t n = 0;
        int r;

        r = store_open(a->state_dir, false, true, &s, &err);
        if (r < 0) {
                if (err)
                        fprintf(stderr, "%s hosts: %s\n", prog, err);
                else
                        fprintf(stderr, "%s hosts: cannot open the state store in %s: %s%s\n", prog, a->state_dir,
                                strerror(-r), r == -ENOENT ? " (run 'infrastream-controller init' first)" : "");
                return EXIT_USAGE;
        }
        r = store_load_hosts(s, &hosts, &n);
        if (r < 0) {
                fprintf(stderr, "%s hosts: cannot read the state store: %s\n", prog, strerror(-r));
                return EXIT_USAGE;
        }
        if (a->json)
                print_hosts_json(hosts, n);
        else if (n == 0)
                printf("no hosts enrolled\n");
        else
                print_hosts_table(hosts, n);
        stored_hosts_free(hosts, n);
        return 0;
}

/* A whole number in [min, max]; -EINVAL otherwise. */
static int parse_number(const char *s, long min, long max, long *ret) {
        char *end = NULL;
        long v;

        errno = 0;
        v = strtol(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

static void print_apply_summary(const push_report *rep, FILE *f) {
        int w = 4;

        for (size_t i = 0; i < rep->n; i++)
                if ((int) strlen(rep->hosts[i].host) > w)
                        w = (int) strlen(rep->hosts[i].host);
        fprintf(f, "%-*s  %-8s  %s\n", w, "HOST", "REVISION", "RESULT");
        for (size_t i = 0; i < rep->n; i++) {
                const push_result *h = &rep->hosts[i];
                fprintf(f, "%-*s  %-8llu  %s%s\n", w, h->host, (unsigned long long) h->revision,
                        h->status == PUSH_FAILED ? "FAILED: " : "",
                        h->status == PUSH_CURRENT ? "up to date" : strempty(h->detail));
        }
        fprintf(f, "%zu host%s: %zu changed, %zu pushed, %zu converged, %zu failed.\n", rep->n, rep->n == 1 ? "" : "s",
                rep->n_changed, rep->n_pushed, rep->n - rep->n_failed, rep->n_failed);
}

static int cmd_apply(const args *a) {
        _cleanup_(compilation_done) compilation c = {};
        _cleanup_(push_report_done) push_report rep = {};
        _cleanup_free_ char *err = NULL;
        push_options o = { .repo = a->repo, .state_dir = a->state_dir, .timeout_seconds = PUSH_TIMEOUT_DEFAULT,
                           .parallel = PUSH_PARALLEL_DEFAULT, .progress = stderr };
        long v;
        int r;

        if (a->timeout) {
                if (parse_number(a->timeout, 1, 86400, &v) < 0) {
                        fprintf(stderr, "%s apply: --timeout takes seconds, 1 to 86400; not '%s'\n", prog, a->timeout);
                        return EXIT_USAGE;
                }
                o.timeout_seconds = v;
        }
        if (a->parallel) {
                if (parse_number(a->parallel, 1, 1024, &v) < 0) {
                        fprintf(stderr, "%s apply: --parallel takes a number of hosts, 1 to 1024; not '%s'\n", prog,
                                a->parallel);
                        return EXIT_USAGE;
                }
                o.parallel = (size_t) v;
        }
        r = run_compile(&c, a, true, "apply");
        if (r)
                return r;
        r = push_apply(&c, &o, &rep, &err);
        if (r < 0) {
                fprintf(stderr, "%s apply: %s\n", prog, err ? err : strerror(-r));
                return EXIT_USAGE;
        }
        if (rep.n_changed == 0 && rep.n_pushed == 0 && rep.n_failed == 0)
                printf("No changes.\n");
        else
                print_apply_summary(&rep, stdout);
        for (size_t i = 0; i < rep.n; i++)
                if (rep.hosts[i].status == PUSH_FAILED)
                        fprintf(stderr, "%s apply: host '%s' did not converge: %s\n", prog, rep.hosts[i].host,
                                rep.hosts[i].detail);
        /* What the documents leave out has not converged either, whatever the hosts say. */
        if (c.rr.n_pending > 0)
                fprintf(stderr, "%s apply: %zu item%s pending, left out of the documents until resolved:\n", prog,
                        c.rr.n_pending, c.rr.n_pending == 1 ? " is" : "s are");
        for (size_t i = 0; i < c.rr.n_pending; i++) {
                const pending_item *it = &c.rr.pending[i];
                char id[300];

                identity_format(&it->id, id, sizeof(id));
                fprintf(stderr, "  ! %s \"%s\" (%s) at %s:%d:%d: %s\n", it->kind, it->name, id, it->loc.path, it->loc.line,
                        it->loc.col, it->reason);
        }
        return rep.n_failed > 0 || c.rr.n_pending > 0 ? EXIT_INVALID : 0;
}

static int cmd_get_database(const args *a, const char *name) {
        _cleanup_(compilation_done) compilation c = {};
        _cleanup_(ca_freep) ca *authority = NULL;
        _cleanup_free_ char *err = NULL;
        describe_options o = { .repo = a->repo, .state_dir = a->state_dir, .domain = a->domain, .project = a->project };
        int r;

        if (a->output && !streq(a->output, "yaml") && !streq(a->output, "json")) {
                fprintf(stderr, "%s get database: -o takes yaml or json, not '%s'\n", prog, a->output);
                return EXIT_USAGE;
        }
        o.json = a->output && streq(a->output, "json");
        /* Host names inside the CA's domain, as plan and render name them. */
        if (!a->domain_set && ca_load(a->state_dir, &authority, &err) >= 0)
                o.domain = ca_domain(authority);
        r = run_compile(&c, a, false, "get database");
        if (r)
                return r;
        free(err);
        err = NULL;
        r = compile_attach_verifiers(&c, NULL);
        if (r >= 0)
                r = compile_attach_certificates(&c, -1, (int64_t) time(NULL));
        if (r >= 0 && c.store) {
                /* The recorded content hash covers the backup passphrases and replication
                 * passwords: hash what apply hashed (they stay in memory, never shown). */
                _cleanup_(secrets_closep) secrets *x = NULL;

                r = secrets_open(c.store, a->state_dir, &x, &err);
                if (r < 0) {
                        fprintf(stderr, "%s get database: %s\n", prog, err);
                        return EXIT_USAGE;
                }
                r = compile_attach_backup_passphrases(&c, x, false);
                /* And the standbys' replication passwords. */
                if (r >= 0)
                        r = compile_attach_passwords(&c, x);
        }
        if (r < 0) {
                fprintf(stderr, "%s get database: cannot read the state store: %s\n", prog, strerror(-r));
                return EXIT_USAGE;
        }
        r = describe_database(&c, name, &o, stdout, &err);
        if (r < 0) {
                fprintf(stderr, "%s get database: %s%s\n", prog, err ? err : strerror(-r),
                        r == -ENOTUNIQ ? " (choose one with --project)" : "");
                return r == -ENOENT || r == -ENOTUNIQ ? EXIT_INVALID : EXIT_USAGE;
        }
        return 0;
}

/* --- switchover --------------------------------------------------------------------------------- */

/* "0/3000060" → 0x3000060; -EINVAL for anything else. */
static int parse_lsn(const char *s, uint64_t *ret) {
        unsigned hi, lo;
        char end;

        if (!s || sscanf(s, "%X/%X%c", &hi, &lo, &end) != 2)
                return -EINVAL;
        *ret = (uint64_t) hi << 32 | lo;
        return 0;
}

/* databases[name == db].replication.<field> of a host's report (JSON text), or NULL. */
static char *report_replication_field(const char *report, const char *db, const char *field) {
        json_object *o = report ? json_tokener_parse(report) : NULL, *dbs = NULL, *v;
        char *ret = NULL;

        if (!o)
                return NULL;
        if (!json_object_object_get_ex(o, "databases", &dbs) && json_object_object_get_ex(o, "status", &v))
                (void) json_object_object_get_ex(v, "databases", &dbs);
        for (size_t i = 0; dbs && json_object_is_type(dbs, json_type_array) && i < json_object_array_length(dbs); i++) {
                json_object *d = json_object_array_get_idx(dbs, i), *name, *rep, *f;

                if (json_object_object_get_ex(d, "name", &name) && streq(json_object_get_string(name), db) &&
                    json_object_object_get_ex(d, "replication", &rep) && json_object_object_get_ex(rep, field, &f) &&
                    json_object_is_type(f, json_type_string)) {
                        ret = xstrdup(json_object_get_string(f));
                        break;
                }
        }
        json_object_put(o);
        return ret;
}

/* Push the hosts marked in only (the documents recorded already unless record): 0 when every one
 * converged, else 1 with *ret_failed naming the first that did not and why. */
static int switchover_push(compilation *c, push_options *o, const bool *only, bool record, char **ret_failed) {
        _cleanup_(push_report_done) push_report rep = {};
        _cleanup_free_ char *err = NULL;
        int r;

        o->only = only;
        o->no_record = !record;
        r = push_apply(c, o, &rep, &err);
        if (r < 0) {
                *ret_failed = xasprintf("%s", err ? err : strerror(-r));
                return 1;
        }
        for (size_t i = 0; i < rep.n; i++)
                if (rep.hosts[i].status == PUSH_FAILED && (!only || only[i])) {
                        *ret_failed = xasprintf("host '%s': %s", rep.hosts[i].host, strempty(rep.hosts[i].detail));
                        return 1;
                }
        return 0;
}

static int cmd_switchover(const args *a, const char *name) {
        _cleanup_(compilation_done) compilation c = {};
        _cleanup_free_ char *key = NULL, *old_primary = NULL, *failed = NULL, *shutdown = NULL;
        _cleanup_free_ bool *only = NULL;
        push_options o = { .repo = a->repo, .state_dir = a->state_dir, .timeout_seconds = 120,
                           .parallel = PUSH_PARALLEL_DEFAULT, .progress = stderr };
        const char *to = a->to;
        size_t found = 0, n_match = 0;
        long v, h_old = -1, h_new = -1;
        uint64_t target_lsn = 0;
        double deadline;
        int r;

        if (!to) {
                fprintf(stderr, "%s switchover: --to HOST is required\n", prog);
                return EXIT_USAGE;
        }
        if (a->timeout) {
                if (parse_number(a->timeout, 1, 86400, &v) < 0) {
                        fprintf(stderr, "%s switchover: --timeout takes seconds, 1 to 86400; not '%s'\n", prog, a->timeout);
                        return EXIT_USAGE;
                }
                o.timeout_seconds = v;
        }
        r = run_compile(&c, a, true, "switchover");
        if (r)
                return r;
        for (size_t i = 0; i < c.set.n_dbs; i++) {
                char project[4 * 64 + 4];

                identity_format(&c.set.dbs[i].id, project, sizeof(project));
                if (!streq(c.set.dbs[i].name, name) || (a->project && !streq(a->project, project)))
                        continue;
                if (n_match++ == 0)
                        found = i;
        }
        if (n_match != 1) {
                fprintf(stderr, "%s switchover: %s\n", prog,
                        n_match == 0 ? "there is no such Database in the repository (or in --project)"
                                     : "the Database exists in several projects (choose one with --project)");
                return EXIT_USAGE;
        }
        {
                const placement *pl = &c.pl[found];
                const m_database *d = &c.set.dbs[found];

                key = xstrdup(database_key(&c.arena, d));
                if (d->cluster_size < 2 || pl->n_members < 2) {
                        fprintf(stderr, "%s switchover: Database '%s' has no standby (clusterSize %d)\n", prog, name,
                                d->cluster_size);
                        return EXIT_USAGE;
                }
                if (pl->pending || pl->changed) {
                        fprintf(stderr, "%s switchover: Database '%s' is not placed as recorded (%s): run apply first\n",
                                prog, name, pl->pending ? pl->pending : "its members change");
                        return EXIT_USAGE;
                }
                h_old = pl->members[0];
                old_primary = xstrdup(c.inv.hosts[h_old].name);
                for (size_t m = 0; m < pl->n_members; m++)
                        if (streq(c.inv.hosts[pl->members[m]].name, to))
                                h_new = pl->members[m];
                if (h_new < 0) {
                        fprintf(stderr, "%s switchover: host '%s' is not a member of Database '%s' (its members:", prog,
                                to, name);
                        for (size_t m = 0; m < pl->n_members; m++)
                                fprintf(stderr, " %s", c.inv.hosts[pl->members[m]].name);
                        fprintf(stderr, ")\n");
                        return EXIT_USAGE;
                }
                if (h_new == h_old) {
                        fprintf(stderr, "%s switchover: host '%s' is the primary of Database '%s' already\n", prog, to,
                                name);
                        return EXIT_USAGE;
                }
                /* Every member enrolled and well: a switchover is no repair. */
                for (size_t m = 0; m < pl->n_members; m++) {
                        _cleanup_(stored_host_done) stored_host sh = {};
                        const char *hn = c.inv.hosts[pl->members[m]].name;

                        if (store_load_host(c.store, hn, &sh) < 0) {
                                fprintf(stderr, "%s switchover: member '%s' is not enrolled\n", prog, hn);
                                return EXIT_USAGE;
                        }
                        if (sh.failed || sh.applied_revision == 0) {
                                fprintf(stderr, "%s switchover: member '%s' has applied nothing yet, or reported a "
                                                "failure: run apply first\n",
                                        prog, hn);
                                return EXIT_USAGE;
                        }
                }
        }
        compilation_done(&c);

        /* The new order, recorded with every document it changes, as apply records. */
        fprintf(stderr, "switchover %s: %s → %s\n", name, old_primary, to);
        r = run_compile_first(&c, a, true, "switchover", key, to);
        if (r)
                return r;
        only = xcalloc(c.inv.n + 1, sizeof(bool));
        h_old = inventory_find(&c.inv, old_primary);
        h_new = inventory_find(&c.inv, to);
        if (h_old < 0 || h_new < 0 || c.pl[found].members[0] != h_new) {
                fprintf(stderr, "%s switchover: the new member order did not take (nothing was changed)\n", prog);
                return EXIT_USAGE;
        }

        fprintf(stderr, "step 1/4: %s: demote (fast shutdown, then a standby of %s)\n", old_primary, to);
        only[h_old] = true;
        if (switchover_push(&c, &o, only, true, &failed)) {
                fprintf(stderr, "%s switchover: step 1 (demote %s) failed: %s\n", prog, old_primary, failed);
                return EXIT_INVALID;
        }
        {
                _cleanup_(stored_host_done) stored_host sh = {};
                if (store_load_host(c.store, old_primary, &sh) >= 0)
                        shutdown = report_replication_field(sh.status, name, "shutdownLsn");
        }
        if (parse_lsn(shutdown, &target_lsn) < 0) {
                fprintf(stderr, "%s switchover: step 1 (demote %s): its answer carries no shutdown location\n", prog,
                        old_primary);
                return EXIT_INVALID;
        }

        fprintf(stderr, "step 2/4: %s: wait until it has replayed %s (the old primary's shutdown checkpoint)\n", to,
                shutdown);
        deadline = (double) time(NULL) + (double) o.timeout_seconds;
        for (;;) {
                _cleanup_free_ char *status = NULL, *err = NULL, *replay = NULL;
                uint64_t lsn;

                if (push_fetch_status(&c, &o, to, 10000, &status, &err) >= 0) {
                        replay = report_replication_field(status, name, "replayLsn");
                        /* Past the checkpoint record's start, not at it: promoted before replaying it, the new
                         * timeline would fork at it and the old primary could not follow. */
                        if (parse_lsn(replay, &lsn) >= 0 && lsn > target_lsn) {
                                fprintf(stderr, "%s: replayed %s\n", to, replay);
                                break;
                        }
                }
                if ((double) time(NULL) >= deadline) {
                        fprintf(stderr, "%s switchover: step 2 (%s catching up) timed out after %ld s: %s; putting "
                                        "the old order back\n",
                                prog, to, o.timeout_seconds, err ? err : replay ? replay : "no replay location");
                        compilation_done(&c);
                        r = run_compile_first(&c, a, true, "switchover", key, old_primary);
                        if (r)
                                return r;
                        free(only);
                        only = xcalloc(c.inv.n + 1, sizeof(bool));
                        h_old = inventory_find(&c.inv, old_primary);
                        if (h_old >= 0)
                                only[h_old] = true;
                        free(failed);
                        failed = NULL;
                        if (switchover_push(&c, &o, only, true, &failed)) {
                                fprintf(stderr, "%s switchover: abandoned, and %s could not be made the primary "
                                                "again: %s\n",
                                        prog, old_primary, failed);
                                return EXIT_INVALID;
                        }
                        fprintf(stderr, "%s switchover: abandoned: %s is the primary again; nothing was lost\n", prog,
                                old_primary);
                        return EXIT_INVALID;
                }
                sleep(1);
        }

        fprintf(stderr, "step 3/4: %s: promote\n", to);
        only[h_old] = false;
        only[h_new] = true;
        if (switchover_push(&c, &o, only, false, &failed)) {
                fprintf(stderr, "%s switchover: step 3 (promote %s) failed: %s\n", prog, to, failed);
                return EXIT_INVALID;
        }

        fprintf(stderr, "step 4/4: the other members and the applications' hosts\n");
        for (size_t h = 0; h < c.inv.n; h++)
                only[h] = (long) h != h_old && (long) h != h_new;
        if (switchover_push(&c, &o, only, false, &failed)) {
                fprintf(stderr, "%s switchover: step 4 (the other hosts) failed: %s\n", prog, failed);
                return EXIT_INVALID;
        }
        printf("Database '%s': %s is the primary.\n", name, to);
        return 0;
}

int main(int argc, char **argv) {
        args a;
        const char *cmd;
        int r;

        /* Everything the controller creates (state store, keys) is private by default. */
        umask(077);
        if (argc < 2) {
                usage_main(stderr);
                return EXIT_USAGE;
        }
        cmd = argv[1];
        if (streq(cmd, "--help") || streq(cmd, "-h") || streq(cmd, "help")) {
                usage_main(stdout);
                return 0;
        }
        if (streq(cmd, "--version")) {
                printf("%s %s\n", prog, PACKAGE_VERSION);
                return 0;
        }
        if (streq(cmd, "secret")) {
                /* Commands with a subcommand parse their options after it. */
                const char *sub = argc < 3                    ? NULL
                                  : streq(argv[2], "reveal") ? "secret reveal"
                                  : streq(argv[2], "rotate") ? "secret rotate"
                                                             : NULL;
                if (argc < 3 || streq(argv[2], "--help") || streq(argv[2], "-h")) {
                        usage_command("secret reveal", argc < 3 ? stderr : stdout);
                        usage_command("secret rotate", argc < 3 ? stderr : stdout);
                        return argc < 3 ? EXIT_USAGE : 0;
                }
                if (!sub) {
                        fprintf(stderr, "%s secret: unknown subcommand '%s' (reveal, rotate)\n", prog, argv[2]);
                        return EXIT_USAGE;
                }
                r = parse_args(sub, argc - 2, argv + 2, &a);
                if (r == 1)
                        return 0;
                if (r < 0)
                        return EXIT_USAGE;
                return streq(sub, "secret reveal") ? cmd_secret_reveal(&a) : cmd_secret_rotate(&a);
        }
        if (streq(cmd, "ca")) {
                const char *sub = argc < 3                ? NULL
                                  : streq(argv[2], "sign") ? "ca sign"
                                  : streq(argv[2], "show") ? "ca show"
                                                           : NULL;
                if (argc < 3 || streq(argv[2], "--help") || streq(argv[2], "-h")) {
                        usage_command("ca sign", argc < 3 ? stderr : stdout);
                        usage_command("ca show", argc < 3 ? stderr : stdout);
                        return argc < 3 ? EXIT_USAGE : 0;
                }
                if (!sub) {
                        fprintf(stderr, "%s ca: unknown subcommand '%s' (sign, show)\n", prog, argv[2]);
                        return EXIT_USAGE;
                }
                r = parse_args(sub, argc - 2, argv + 2, &a);
                if (r == 1)
                        return 0;
                if (r < 0)
                        return EXIT_USAGE;
                return streq(sub, "ca sign") ? cmd_ca_sign(&a) : cmd_ca_show(&a);
        }
        if (streq(cmd, "token")) {
                if (argc < 3 || streq(argv[2], "--help") || streq(argv[2], "-h")) {
                        usage_command("token create", argc < 3 ? stderr : stdout);
                        return argc < 3 ? EXIT_USAGE : 0;
                }
                if (!streq(argv[2], "create")) {
                        fprintf(stderr, "%s token: unknown subcommand '%s' (create)\n", prog, argv[2]);
                        usage_command("token create", stderr);
                        return EXIT_USAGE;
                }
                r = parse_args("token create", argc - 2, argv + 2, &a);
                if (r == 1)
                        return 0;
                return r < 0 ? EXIT_USAGE : cmd_token_create(&a);
        }
        if (streq(cmd, "switchover")) {
                /* switchover DB [OPTIONS]: DB takes argv[0]'s place for getopt, as get database's NAME. */
                if (argc < 3 || streq(argv[2], "--help") || streq(argv[2], "-h")) {
                        usage_command("switchover", argc < 3 ? stderr : stdout);
                        return argc < 3 ? EXIT_USAGE : 0;
                }
                if (argv[2][0] == '-') {
                        fprintf(stderr, "%s switchover: DB is required, right after 'switchover'\n", prog);
                        usage_command("switchover", stderr);
                        return EXIT_USAGE;
                }
                r = parse_args("switchover", argc - 2, argv + 2, &a);
                if (r == 1)
                        return 0;
                return r < 0 ? EXIT_USAGE : cmd_switchover(&a, argv[2]);
        }
        if (streq(cmd, "get")) {
                /* get database NAME [OPTIONS]: NAME takes argv[0]'s place for getopt. */
                if (argc < 3 || streq(argv[2], "--help") || streq(argv[2], "-h")) {
                        usage_command("get database", argc < 3 ? stderr : stdout);
                        return argc < 3 ? EXIT_USAGE : 0;
                }
                if (!streq(argv[2], "database")) {
                        fprintf(stderr, "%s get: unknown kind '%s' (database)\n", prog, argv[2]);
                        return EXIT_USAGE;
                }
                if (argc >= 4 && (streq(argv[3], "--help") || streq(argv[3], "-h"))) {
                        usage_command("get database", stdout);
                        return 0;
                }
                if (argc < 4 || argv[3][0] == '-') {
                        fprintf(stderr, "%s get database: NAME is required, right after 'database'\n", prog);
                        usage_command("get database", stderr);
                        return EXIT_USAGE;
                }
                r = parse_args("get database", argc - 3, argv + 3, &a);
                if (r == 1)
                        return 0;
                return r < 0 ? EXIT_USAGE : cmd_get_database(&a, argv[3]);
        }
        r = parse_args(cmd, argc - 1, argv + 1, &a);
        if (r == 1)
                return 0;
        if (streq(cmd, "init"))
                return r < 0 ? EXIT_USAGE : cmd_init(&a);
        if (streq(cmd, "validate"))
                return r < 0 ? EXIT_USAGE : cmd_validate(&a);
        if (streq(cmd, "plan"))
                return r < 0 ? EXIT_USAGE : cmd_plan(&a);
        if (streq(cmd, "render"))
                return r < 0 ? EXIT_USAGE : cmd_render(&a);
        if (streq(cmd, "serve"))
                return r < 0 ? EXIT_USAGE : cmd_serve(&a);
        if (streq(cmd, "hosts"))
                return r < 0 ? EXIT_USAGE : cmd_hosts(&a);
        if (streq(cmd, "apply"))
                return r < 0 ? EXIT_USAGE : cmd_apply(&a);
        fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
        usage_main(stderr);
        return EXIT_USAGE;
}
