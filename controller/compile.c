/* Pipeline glue between the front-half stages, the inventory and the state store. */
#include <fcntl.h>
#include <sys/wait.h>

#include "compile.h"
#include "resolve.h"

void compilation_init(compilation *c) {
        *c = (compilation) {};
        manifest_set_init(&c->set);
        diag_list_init(&c->diags);
        inventory_init(&c->inv);
        arena_init(&c->arena);
}

void compilation_done(compilation *c) {
        if (c->rendered)
                render_result_done(&c->rr);
        stored_placements_free(c->prev, c->n_prev);
        stored_documents_free(c->docs, c->n_docs);
        store_close(c->store);
        arena_done(&c->arena);
        inventory_done(&c->inv);
        diag_list_done(&c->diags);
        manifest_set_done(&c->set);
        *c = (compilation) {};
}

int compile_manifests(compilation *c, const compile_options *o) {
        int r = manifest_load_repo(&c->set, o->repo, &c->diags);
        if (r < 0)
                return r;
        resolve_manifests(&c->set, &c->diags);
        return c->diags.n_errors > 0 ? -EBADMSG : 0;
}

static int doc_host_cmp(const void *key, const void *elem) {
        return strcmp(key, ((const stored_document *) elem)->host);
}

const stored_document *compilation_recorded(const compilation *c, const char *host) {
        return c->n_docs ? bsearch(host, c->docs, c->n_docs, sizeof(stored_document), doc_host_cmp) : NULL;
}

int compile_all(compilation *c, const compile_options *o, char **ret_error) {
        _cleanup_(diag_list_done) diag_list inventory_diags = {};
        int r, k = 0;

        /* The inventory is read first: its parse tree is the largest memory the pipeline touches
         * (first touches of pages cost more than parsing), and freed, it takes the manifests' model
         * instead of new pages. Everything else is as if it were read second: its diagnostics come
         * after the manifests', and a repository that cannot be read is the error, alone. */
        diag_list_init(&inventory_diags);
        if (o->hosts_file)
                k = inventory_load(&c->inv, o->hosts_file, &inventory_diags);
        r = compile_manifests(c, o);
        if (r < 0 && r != -EBADMSG)
                return r;
        diag_list_move(&c->diags, &inventory_diags);
        if (k < 0 && k != -EBADMSG)
                return k;
        if (c->diags.n_errors > 0)
                return -EBADMSG;

        r = store_open(o->state_dir, false, !o->write_store, &c->store, ret_error);
        if (r == -ENOENT && !o->write_store) {
                /* Nothing recorded yet: plan against an empty history. */
                if (ret_error) {
                        free(*ret_error);
                        *ret_error = NULL;
                }
                c->store = NULL;
        } else if (r < 0) {
                if (ret_error && !*ret_error)
                        *ret_error = xasprintf("cannot open the state store in %s: %s%s", o->state_dir, strerror(-r),
                                               r == -ENOENT ? " (run 'infrastream-controller init' first)" : "");
                return r;
        }
        if (c->store) {
                r = store_load_placements(c->store, &c->prev, &c->n_prev);
                if (r >= 0)
                        r = store_load_documents(c->store, &c->docs, &c->n_docs);
                if (r < 0) {
                        if (ret_error)
                                *ret_error = xasprintf("cannot read the state store: %s", strerror(-r));
                        return r;
                }
        }

        c->pl = arena_alloc(&c->arena, (c->set.n_dbs + 1) * sizeof(placement));
        place_databases(&c->set, &c->inv, c->prev, c->n_prev, &c->arena, c->pl);
        render_documents(&c->set, &c->inv, c->pl, o->domain, &c->rr);
        c->rendered = true;
        return 0;
}

int compile_record_placements(compilation *c) {
        for (size_t i = 0; i < c->set.n_dbs; i++) {
                const placement *p = &c->pl[i];
                const char **hosts;
                int r;

                if (!p->changed)
                        continue;
                hosts = arena_alloc(&c->arena, (p->n_members + 1) * sizeof(char *));
                for (size_t m = 0; m < p->n_members; m++)
                        hosts[m] = c->inv.hosts[p->members[m]].name;
                r = store_save_placement(c->store, database_key(&c->arena, &c->set.dbs[i]), hosts, p->n_members);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* "org/ou/env/project/name" into buf (not with snprintf(): this is done for every role). The
 * parts are validated names of at most DOC_NAME_MAX characters: -ENAMETOOLONG cannot happen. */
static int doc_key(const doc_identity *id, const char *name, char *buf, size_t size) {
        const char *const parts[] = { id->organization, id->organizational_unit, id->environment, id->project, name };
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                size_t len = strlen(parts[i]);

                if (n + len + 1 > size)
                        return -ENAMETOOLONG;
                memcpy(buf + n, parts[i], len);
                n += len;
                buf[n++] = i + 1 < ELEMENTSOF(parts) ? '/' : '\0';
        }
        return 0;
}

static int secret_key_cmp(const void *key, const void *elem) {
        const secret_ref *k = key;
        const stored_secret *x = elem;
        int r = strcmp(k->application_key, x->application_key);
        return r ? r : strcmp(k->database_key, x->database_key);
}

int compile_attach_verifiers(compilation *c, secrets *x) {
        stored_secret *all = NULL;
        size_t n_all = 0;
        int r = 0;

        /* plan reads every verifier in one query: one statement per role took longer than parsing
         * the whole repository. The listing is sorted by the keys, in strcmp()'s order. */
        if (!x && c->store) {
                r = store_load_secrets(c->store, &all, &n_all);
                if (r < 0)
                        return r;
        }
        for (size_t h = 0; h < c->rr.n_docs && r >= 0; h++) {
                doc_document *d = c->rr.docs[h];

                for (size_t i = 0; i < d->n_databases && r >= 0; i++) {
                        doc_database *db = &d->databases[i];
                        char db_key[512];

                        r = doc_key(&db->identity, db->name, db_key, sizeof(db_key));
                        for (size_t k = 0; k < db->n_roles && r >= 0; k++) {
                                doc_role *role = &db->roles[k];
                                char app_key[512];
                                char *v = NULL;

                                /* A grant resolves within its application's project: same identity. */
                                r = doc_key(&db->identity, role->application, app_key, sizeof(app_key));
                                if (r < 0)
                                        break;
                                if (x)
                                        r = secrets_ensure(x, app_key, db_key, &v);
                                else {
                                        secret_ref key = { app_key, db_key };
                                        const stored_secret *found =
                                                n_all ? bsearch(&key, all, n_all, sizeof(stored_secret), secret_key_cmp)
                                                      : NULL;
                                        r = found ? 0 : -ENOENT;
                                        if (found)
                                                v = xstrdup(found->verifier);
                                }
                                if (r == -ENOENT && !x) {
                                        v = xstrdup(COMPILE_VERIFIER_PENDING);
                                        r = 0;
                                } else if (r < 0)
                                        break;
                                free(role->scram_verifier);
                                role->scram_verifier = v;
                        }
                }
        }
        stored_secrets_free(all, n_all);
        return r < 0 ? r : 0;
}

int compile_prune_secrets(compilation *c, secrets *x, size_t *ret_removed) {
        _cleanup_free_ secret_ref *live = NULL;
        size_t n = 0;

        for (size_t i = 0; i < c->set.n_apps; i++)
                n += c->set.apps[i].n_grants;
        live = xmalloc((n + 1) * sizeof(secret_ref));
        n = 0;
        for (size_t i = 0; i < c->set.n_apps; i++) {
                const m_application *a = &c->set.apps[i];

                for (size_t j = 0; j < a->n_grants; j++)
                        if (a->grants[j].db >= 0)
                                live[n++] = (secret_ref) {
                                        arena_printf(&c->arena, "%s/%s/%s/%s/%s", a->id.organization,
                                                     a->id.organizational_unit, a->id.environment, a->id.project,
                                                     a->name),
                                        database_key(&c->arena, &c->set.dbs[a->grants[j].db]),
                                };
        }
        return secrets_prune(x, live, n, ret_removed);
}

char *repo_head_commit(const char *repo) {
        int pipefd[2];
        pid_t pid;
        char buf[128] = "";
        ssize_t n = 0;
        int status;

        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return xstrdup("");
        pid = fork();
        if (pid < 0) {
                close(pipefd[0]);
                close(pipefd[1]);
                return xstrdup("");
        }
        if (pid == 0) {
                int devnull = open("/dev/null", O_WRONLY);
                dup2(pipefd[1], 1);
                if (devnull >= 0)
                        dup2(devnull, 2);
                execlp("git", "git", "-C", repo, "rev-parse", "--verify", "-q", "HEAD", (char *) NULL);
                _exit(127);
        }
        close(pipefd[1]);
        for (;;) {
                ssize_t k = read(pipefd[0], buf + n, sizeof(buf) - 1 - (size_t) n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        break;
                n += k;
                if ((size_t) n >= sizeof(buf) - 1)
                        break;
        }
        close(pipefd[0]);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || strlen(buf) < 40)
                return xstrdup("");
        return xstrdup(buf);
}
