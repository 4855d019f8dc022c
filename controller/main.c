/* infrastream-controller: the command line. Each command is a function; the pipeline lives
 * in compile.c, the output formats in plan.c. */
#include <getopt.h>
#include <strings.h>
#include <sys/stat.h>

#include "ca.h"
#include "compile.h"
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
        bool json, verbose, domain_set;
} args;

static const char *prog = "infrastream-controller";

static void usage_main(FILE *f) {
        fprintf(f,
                "Usage: %s COMMAND [OPTIONS]\n"
                "\n"
                "Turns a repository of lowops manifests into signed desired-state documents, one per host.\n"
                "\n"
                "Commands:\n"
                "  init           create the state directory, state store, signing key, master key and CA\n"
                "  validate       check every manifest in the repository\n"
                "  plan           show what would be created, changed and removed on each host\n"
                "  render         print one host's signed desired-state document and record it\n"
                "  secret reveal  print one grant's database password in the clear (root only, debugging)\n"
                "  ca sign        issue a server certificate for a database host's request (CSR)\n"
                "  ca show        print the CA certificate's subject, fingerprint, expiry and domain\n"
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
          "certificate (ca.crt, 10 years) whose name constraints permit DNS names in D only.\n"
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
        { "secret reveal", "secret reveal --app APP --database DB [--project ORG/OU/ENV/PROJECT] [--state-dir DIR]",
          "Print the password of APP's role on database DB in the clear, for debugging. Root only.\n"
          "A warning goes to stderr and the password alone to stdout. Nothing is changed.\n"
          "  --app APP         the application (its role has the same name)\n"
          "  --database DB     a database the application is granted\n"
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
};

static void usage_command(const char *cmd, FILE *f) {
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
                {},
        };
        static const char *const allowed[][8] = {
                { "init", "state-dir", "domain" },
                { "validate", "repo", "verbose" },
                { "plan", "repo", "hosts", "state-dir", "domain", "json", "verbose" },
                { "render", "repo", "hosts", "state-dir", "domain", "host", "verbose" },
                { "secret reveal", "app", "database", "project", "state-dir" },
                { "ca sign", "csr", "allow-names", "lifetime", "host", "state-dir" },
                { "ca show", "state-dir" },
        };
        int c, idx;

        *a = (args) { .repo = ".", .state_dir = DEFAULT_STATE_DIR, .domain = DEFAULT_DOMAIN };
        optind = 1;
        opterr = 0;
        while ((c = getopt_long(argc, argv, "", opts, &idx)) != -1) {
                bool ok = false;
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
                }
        }
        if (optind < argc) {
                fprintf(stderr, "%s %s: unexpected argument '%s'\n", prog, cmd, argv[optind]);
                return -EINVAL;
        }
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
        return 0;
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

static int run_compile(compilation *c, const args *a, bool write, const char *cmd) {
        compile_options o = { .repo = a->repo, .hosts_file = a->hosts, .state_dir = a->state_dir,
                              .domain = a->domain, .write_store = write };
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

static int cmd_render(const args *a) {
        _cleanup_(compilation_done) compilation c = {};
        _cleanup_(secrets_closep) secrets *x = NULL;
        _cleanup_free_ char *key = xasprintf("%s/%s", a->state_dir, SIGNING_KEY), *body = NULL, *err = NULL,
                            *commit = NULL;
        const char *what = "record in the state store";
        const stored_document *sd;
        doc_document *d;
        char hash[65];
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
        sd = compilation_recorded(&c, a->host);

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
                if (r >= 0)
                        what = "record in the state store";
        }
        if (r >= 0) {
                /* After the verifiers: the hash covers them. */
                doc_content_hash(d, hash);
                if (sd && streq(sd->content_hash, hash)) {
                        /* Unchanged: the same bytes as before, so nothing new is pushed. */
                        r = store_commit(c.store);
                        if (r >= 0)
                                fputs(sd->body, stdout);
                        goto done;
                }
        }
        if (r >= 0)
                r = store_next_revision(c.store, &d->revision);
        if (r >= 0) {
                commit = repo_head_commit(a->repo);
                free(d->commit);
                d->commit = TAKE_PTR(commit);
                r = sign_document(d, key, &body, &size, &err);
                if (r < 0) {
                        store_rollback(c.store);
                        fprintf(stderr, "%s render: cannot sign with %s: %s\n", prog, key, err ? err : strerror(-r));
                        return EXIT_USAGE;
                }
                r = store_save_document(c.store, a->host, d->revision, hash, body);
        }
        if (r >= 0)
                r = store_commit(c.store);
        if (r >= 0)
                fwrite(body, 1, size, stdout);
done:
        if (r < 0) {
                store_rollback(c.store);
                fprintf(stderr, "%s render: cannot %s: %s\n", prog, what, strerror(-r));
                return EXIT_USAGE;
        }
        return 0;
}

static int write_all(int fd, const char *s) {
        size_t off = 0, n = strlen(s);

        while (off < n) {
                ssize_t k = write(fd, s + off, n - off);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                off += (size_t) k;
        }
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
        if (!a->app || !a->database) {
                fprintf(stderr, "%s secret reveal: --app APP and --database DB are required\n", prog);
                return EXIT_USAGE;
        }
        r = store_open(a->state_dir, false, true, &s, &err);
        if (r < 0) {
                if (err)
                        fprintf(stderr, "%s secret reveal: %s\n", prog, err);
                else
                        fprintf(stderr, "%s secret reveal: cannot open the state store in %s: %s\n", prog, a->state_dir,
                                strerror(-r));
                return EXIT_USAGE;
        }
        r = secrets_find(s, a->app, a->database, a->project, &app_key, &db_key, &err);
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
        r = write_all(STDOUT_FILENO, password);
        if (r >= 0)
                r = write_all(STDOUT_FILENO, "\n");
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
                if (argc < 3 || streq(argv[2], "--help") || streq(argv[2], "-h")) {
                        usage_command("secret reveal", argc < 3 ? stderr : stdout);
                        return argc < 3 ? EXIT_USAGE : 0;
                }
                if (!streq(argv[2], "reveal")) {
                        fprintf(stderr, "%s secret: unknown subcommand '%s'\n", prog, argv[2]);
                        usage_command("secret reveal", stderr);
                        return EXIT_USAGE;
                }
                r = parse_args("secret reveal", argc - 2, argv + 2, &a);
                if (r == 1)
                        return 0;
                return r < 0 ? EXIT_USAGE : cmd_secret_reveal(&a);
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
        fprintf(stderr, "%s: unknown command '%s'\n", prog, cmd);
        usage_main(stderr);
        return EXIT_USAGE;
}
