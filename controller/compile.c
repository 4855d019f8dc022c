/* Pipeline glue between the front-half stages, the inventory and the state store. */
#include <fcntl.h>
#include <sys/wait.h>

#include "compile.h"
#include "resolve.h"
#include "tokens.h"
#include "x509.h"

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

/* Enrolled hosts join the static inventory, so placement sees both. A name in both is the
 * inventory file's: it is what the operator wrote down, and the enrolled facts are only a guess
 * of it until the file entry goes. */
static int add_enrolled_hosts(compilation *c) {
        stored_host *hosts = NULL;
        size_t n = 0;
        int r;

        r = store_load_hosts(c->store, &hosts, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                const stored_host *h = &hosts[i];
                long at = inventory_find(&c->inv, h->name);
                char **keys = NULL, **values = NULL;
                size_t n_labels = 0;

                if (at >= 0) {
                        const inv_host *s = &c->inv.hosts[at];
                        diag_add(&c->diags, DIAG_WARNING, s->loc.path, s->loc.line, s->loc.col,
                                 "host '%s' is in the inventory and enrolled as well; the inventory's entry is used",
                                 h->name);
                        continue;
                }
                tokens_split_labels(h->labels, &keys, &values, &n_labels);
                r = inventory_add_host(&c->inv, &(inv_host) {
                        .name = h->name,
                        .addresses = (const char **) h->addresses,
                        .n_addresses = h->n_addresses,
                        .role = streq(h->role, "application") ? DOC_HOST_APPLICATION : DOC_HOST_DATABASE,
                        .cpus = h->cpus,
                        .memory_bytes = h->memory_bytes,
                        .label_keys = (const char **) keys,
                        .label_values = (const char **) values,
                        .n_labels = n_labels,
                        .loc = { "(enrolled)", 0, 0 },
                });
                tokens_labels_free(keys, values, n_labels);
                if (r < 0)
                        break;
        }
        stored_hosts_free(hosts, n);
        return r < 0 ? r : 0;
}

/* Placement keeps recorded members in their recorded order, member 0 the primary: moving host to
 * the front of db's entries (renumbered) is all a switchover changes. */
static void put_member_first(compilation *c, const char *db, const char *host) {
        size_t lo = 0, hi, at = SIZE_MAX;

        while (lo < c->n_prev && !streq(c->prev[lo].database, db))
                lo++;
        for (hi = lo; hi < c->n_prev && streq(c->prev[hi].database, db); hi++)
                if (streq(c->prev[hi].host, host))
                        at = hi;
        if (at == SIZE_MAX)
                return;
        for (size_t k = at; k > lo; k--) {
                char *t = c->prev[k].host;
                c->prev[k].host = c->prev[k - 1].host;
                c->prev[k - 1].host = t;
        }
        for (size_t k = lo; k < hi; k++)
                c->prev[k].member = (int) (k - lo);
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
                if (r >= 0)
                        r = add_enrolled_hosts(c);
                if (r < 0) {
                        if (ret_error)
                                *ret_error = xasprintf("cannot read the state store: %s", strerror(-r));
                        return r;
                }
        }

        if (o->first_member_db)
                put_member_first(c, o->first_member_db, o->first_member_host);
        c->pl = arena_alloc(&c->arena, (c->set.n_dbs + 1) * sizeof(placement));
        place_databases(&c->set, &c->inv, c->prev, c->n_prev, &c->arena, c->pl);
        for (size_t i = 0; o->first_member_db && i < c->set.n_dbs; i++)
                if (streq(database_key(&c->arena, &c->set.dbs[i]), o->first_member_db))
                        c->pl[i].changed = true;
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

/* The replication role's verifier on a primary, as a grant's (same secret store, under the
 * reserved application key DOC_REPLICATION_USER, which no "org/ou/env/project/app" key equals). */
static int attach_replication_verifier(doc_replication *rep, secrets *x, const char *db_key, const stored_secret *all,
                                       size_t n_all) {
        char *v = NULL;
        int r;

        if (x)
                r = secrets_ensure(x, DOC_REPLICATION_USER, db_key, &v);
        else {
                secret_ref key = { DOC_REPLICATION_USER, db_key };
                const stored_secret *found =
                        n_all ? bsearch(&key, all, n_all, sizeof(stored_secret), secret_key_cmp) : NULL;

                v = xstrdup(found ? found->verifier : COMPILE_VERIFIER_PENDING);
                r = 0;
        }
        if (r < 0)
                return r;
        free(rep->verifier);
        rep->verifier = v;
        return 0;
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
                        if (r >= 0 && db->replication && db->replication->role == DOC_REPLICA_PRIMARY)
                                r = attach_replication_verifier(db->replication, x, db_key, all, n_all);
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
        live = xmalloc((n + c->set.n_dbs + 1) * sizeof(secret_ref));
        n = 0;
        /* A database's replication password lives as long as the database: shrinking to one member
         * and growing again keeps the standbys' credentials. */
        for (size_t i = 0; i < c->set.n_dbs; i++)
                live[n++] = (secret_ref) { DOC_REPLICATION_USER, database_key(&c->arena, &c->set.dbs[i]) };
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

/* A standby's replication password (it connects to the primary with it); -ENOENT keeps NULL. */
static int attach_replication_passwords(doc_document *d, secrets *x) {
        for (size_t i = 0; i < d->n_databases; i++) {
                doc_database *db = &d->databases[i];
                char db_key[512];
                char *pw = NULL;
                int r;

                if (!db->replication || db->replication->role != DOC_REPLICA_STANDBY)
                        continue;
                r = doc_key(&db->identity, db->name, db_key, sizeof(db_key));
                if (r >= 0)
                        r = secrets_get_password(x, DOC_REPLICATION_USER, db_key, &pw);
                if (r < 0 && r != -ENOENT)
                        return r;
                erase_and_free(db->replication->password);
                db->replication->password = pw;
        }
        return 0;
}

int compile_attach_passwords(compilation *c, secrets *x) {
        for (size_t h = 0; h < c->rr.n_docs; h++) {
                doc_document *d = c->rr.docs[h];

                if (d->role != DOC_HOST_APPLICATION) {
                        int r = attach_replication_passwords(d, x);
                        if (r < 0)
                                return r;
                        continue;
                }
                for (size_t i = 0; i < d->n_apps; i++) {
                        doc_app *app = &d->apps[i];
                        char app_key[512];
                        int r;

                        r = doc_key(&app->identity, app->name, app_key, sizeof(app_key));
                        for (size_t k = 0; k < app->n_env && r >= 0; k++) {
                                doc_env *e = &app->env[k];
                                char db_key[512];
                                char *pw = NULL;

                                /* A grant resolves within its application's project: same identity. */
                                r = doc_key(&app->identity, e->database, db_key, sizeof(db_key));
                                if (r >= 0)
                                        r = secrets_get_password(x, app_key, db_key, &pw);
                                if (r == -ENOENT)
                                        r = 0;
                                erase_and_free(e->password);
                                e->password = pw;
                        }
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

static int passphrase_key_cmp(const void *key, const void *elem) {
        return strcmp(key, ((const stored_passphrase *) elem)->database_key);
}

int compile_attach_backup_passphrases(compilation *c, secrets *x, bool create) {
        stored_passphrase *all = NULL;
        size_t n_all = 0;
        int r = 0;

        if (!c->store)
                return 0;
        /* One query for all: the default manifest enables backups, so every database has one. */
        r = store_load_backup_passphrases(c->store, &all, &n_all);
        if (r < 0)
                return r;
        for (size_t h = 0; h < c->rr.n_docs && r >= 0; h++) {
                doc_document *d = c->rr.docs[h];

                for (size_t i = 0; i < d->n_databases && r >= 0; i++) {
                        doc_database *db = &d->databases[i];
                        const stored_passphrase *found;
                        char db_key[512];
                        char *p = NULL;

                        /* Disabled: no passphrase in the document, and the stored one is kept for
                         * when they are enabled again (the repository is still there). */
                        if (db->backup.enabled) {
                                r = doc_key(&db->identity, db->name, db_key, sizeof(db_key));
                                if (r < 0)
                                        break;
                                found = n_all ? bsearch(db_key, all, n_all, sizeof(stored_passphrase), passphrase_key_cmp)
                                              : NULL;
                                if (found)
                                        r = secrets_unseal_backup_passphrase(x, found, &p);
                                else if (create)
                                        r = secrets_ensure_backup_passphrase(x, db_key, &p);
                                else
                                        p = xstrdup(COMPILE_PASSPHRASE_PENDING);
                                if (r < 0)
                                        break;
                        }
                        erase_and_free(db->backup.passphrase);
                        db->backup.passphrase = p;
                }
        }
        stored_passphrases_free(all, n_all);
        return r < 0 ? r : 0;
}

int compile_ensure_data_keys(compilation *c, secrets *x) {
        for (size_t i = 0; i < c->set.n_dbs; i++) {
                int r;

                /* Not placed yet: no host can ask for it. It gets its key with its placement. */
                if (c->pl[i].n_members == 0)
                        continue;
                r = secrets_ensure_data_key(x, database_key(&c->arena, &c->set.dbs[i]), NULL);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int cert_key_cmp(const void *key, const void *elem) {
        const stored_cert *k = key, *x = elem;
        int r = strcmp(k->host, x->host);
        return r ? r : strcmp(k->database, x->database);
}

/* The stored certificate, if it still serves db: it names every TLS name and has not expired. The
 * agent checks it again (its key, the enrolled CA); this only keeps a stale one out. */
static bool cert_serves(const stored_cert *sc, const doc_database *db, int64_t now) {
        _cleanup_(X509_freep) X509 *cert = NULL;
        _cleanup_free_ char *err = NULL;
        time_t not_before, not_after;

        if (x509_cert_from_pem(sc->certificate, &cert, &err) < 0 || x509_validity(cert, &not_before, &not_after) < 0)
                return false;
        return (int64_t) not_after > now &&
               x509_cert_covers(cert, (const char *const *) db->tls_names, db->n_tls_names, NULL);
}

int compile_attach_certificates(compilation *c, long host, int64_t now) {
        stored_cert *certs = NULL;
        size_t n = 0;
        int r;

        if (!c->store)
                return 0;
        r = store_load_certs(c->store, &certs, &n);
        if (r < 0)
                return r;
        for (size_t h = host < 0 ? 0 : (size_t) host; h < c->rr.n_docs && (host < 0 || h == (size_t) host); h++) {
                doc_document *d = c->rr.docs[h];

                for (size_t i = 0; i < d->n_databases; i++) {
                        doc_database *db = &d->databases[i];
                        stored_cert key = { .host = d->host, .database = db->name };
                        const stored_cert *sc = n ? bsearch(&key, certs, n, sizeof(stored_cert), cert_key_cmp) : NULL;

                        free(db->tls_certificate);
                        db->tls_certificate = sc && cert_serves(sc, db, now) ? xstrdup(sc->certificate) : NULL;
                }
        }
        stored_certs_free(certs, n);
        return 0;
}

char *compile_stored_body(doc_document *d) {
        size_t n_secrets = 2 * d->n_databases, k = 0;
        char **saved;
        char *body;

        /* The documents are views: the passwords and passphrases are moved aside for the encoding
         * and put back. */
        for (size_t i = 0; i < d->n_apps; i++)
                n_secrets += d->apps[i].n_env;
        saved = xcalloc(n_secrets + 1, sizeof(char *));
        for (size_t i = 0; i < d->n_databases; i++) {
                saved[k++] = TAKE_PTR(d->databases[i].backup.passphrase);
                if (d->databases[i].replication)
                        saved[k++] = TAKE_PTR(d->databases[i].replication->password);
        }
        for (size_t i = 0; i < d->n_apps; i++)
                for (size_t j = 0; j < d->apps[i].n_env; j++)
                        saved[k++] = TAKE_PTR(d->apps[i].env[j].password);
        body = doc_encode(d, NULL);
        k = 0;
        for (size_t i = 0; i < d->n_databases; i++) {
                d->databases[i].backup.passphrase = saved[k++];
                if (d->databases[i].replication)
                        d->databases[i].replication->password = saved[k++];
        }
        for (size_t i = 0; i < d->n_apps; i++)
                for (size_t j = 0; j < d->apps[i].n_env; j++)
                        d->apps[i].env[j].password = saved[k++];
        free(saved);
        return body;
}

static int recorded_cmp(const void *a, const void *b) {
        return strcmp(((const stored_document *) a)->host, ((const stored_document *) b)->host);
}

/* Keep c->docs what the store holds, for the next compilation_recorded(). */
static void note_recorded(compilation *c, const char *host, uint64_t revision, const char *hash, char *body) {
        stored_document *sd = (stored_document *) compilation_recorded(c, host);

        if (!sd) {
                c->docs = xrealloc(c->docs, (c->n_docs + 1) * sizeof(stored_document));
                c->docs[c->n_docs++] = (stored_document) { .host = xstrdup(host) };
                qsort_safe(c->docs, c->n_docs, sizeof(stored_document), recorded_cmp);
                sd = (stored_document *) compilation_recorded(c, host);
        }
        sd->revision = revision;
        free(sd->content_hash);
        sd->content_hash = xstrdup(hash);
        free(sd->body);
        sd->body = body;
}

int compile_stamp_document(compilation *c, size_t h, const char *commit) {
        doc_document *d = c->rr.docs[h];
        const stored_document *sd = compilation_recorded(c, d->host);
        _cleanup_free_ char *body = NULL;
        char hash[65];
        int r;

        doc_content_hash(d, hash);
        if (sd && streq(sd->content_hash, hash)) {
                _cleanup_(doc_document_freep) doc_document *prev = NULL;

                /* The recorded body carries the commit; the revision is its column. A body that
                 * does not decode any more is replaced: the host gets a new revision. */
                if (doc_decode(sd->body, strlen(sd->body), &prev, NULL, NULL, NULL) >= 0) {
                        d->revision = sd->revision;
                        free(d->commit);
                        d->commit = TAKE_PTR(prev->commit);
                        return 0;
                }
        }
        r = store_next_revision(c->store, &d->revision);
        if (r < 0)
                return r;
        free(d->commit);
        d->commit = xstrdup(commit);
        body = compile_stored_body(d);
        r = store_save_document(c->store, d->host, d->revision, hash, body);
        if (r < 0)
                return r;
        note_recorded(c, d->host, d->revision, hash, TAKE_PTR(body));
        return 1;
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
