/* The apply pipeline: everything untrusted is checked before anything is changed. */
#include <time.h>

#include "apply.h"
#include "apps.h"
#include "backup.h"
#include "document.h"
#include "encryption.h"
#include "failpoint.h"
#include "firewall.h"
#include "postgres.h"
#include "replication.h"
#include "roles.h"
#include "schedule.h"
#include "service.h"
#include "sign.h"
#include "state.h"
#include "tls.h"

static bool in_document(const doc_document *d, const char *db) {
        for (size_t i = 0; i < d->n_databases; i++)
                if (streq(d->databases[i].name, db))
                        return true;
        return false;
}

/* Database names become directory names and unit names: DNS labels only, whatever the signer
 * sent (the controller never sends anything else). */
static bool valid_database_name(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > DOC_NAME_MAX || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
                        return false;
        return true;
}

/* Whether db's cluster is running now (so it already listens, behind the firewall it had). */
static bool cluster_running(const agent_config *cfg, const char *db) {
        _cleanup_free_ char *err = NULL;
        cluster_paths p = {};
        bool running = false;

        cluster_paths_init(&p, cfg, db);
        if (service_running(cfg, db, &p, &running, &err) < 0)
                running = false;
        cluster_paths_done(&p);
        return running;
}

static void reconcile_database_host(const agent_config *cfg, const doc_document *d, results *res) {
        char **clusters = NULL;
        size_t n = 0;
        /* Secure by default: the firewall is in place before any PostgreSQL listens. When it could
         * not be applied (the kernel applied nothing), clusters not running yet are neither
         * created nor started. */
        bool firewall_ok = firewall_reconcile(cfg, d, res) >= 0;
        _cleanup_free_ bool *unlocked = d->n_databases ? xcalloc(d->n_databases, sizeof(bool)) : NULL;

        /* Nothing of a database is written before its storage is encrypted and unlocked. */
        encryption_reconcile(cfg, d, unlocked, res);
        for (size_t i = 0; i < d->n_databases; i++) {
                const doc_database *db = &d->databases[i];
                _cleanup_(tls_state_done) tls_state tls = {};
                pgconf_tls pt;

                if (!unlocked[i])
                        continue; /* the encryption result says why */
                if (!firewall_ok && !cluster_running(cfg, db->name)) {
                        results_add(res, "cluster", db->name, RES_FAILED, "not started: the firewall is not in place");
                        continue;
                }
                /* The certificate first: whether there is one decides if PostgreSQL listens on TCP. */
                (void) tls_reconcile(cfg, db, &tls, res);
                if (postgres_reconcile(cfg, db, tls_state_pgconf(&tls, &pt), res) < 0)
                        continue; /* roles need a running cluster */
                /* A standby's roles, database and grants arrive by replication (it is read-only), and
                 * backups are taken on the primary. */
                if (replication_is_standby(db))
                        continue;
                (void) roles_reconcile(cfg, db, res);
                (void) replication_reconcile(cfg, db, res);
                (void) backup_reconcile(cfg, db, res);
        }
        /* Backup timers for the databases with backups, none for the others (their backups stay). */
        (void) schedule_reconcile(cfg, d, res);
        /* Clusters the document no longer names: retained, never removed. */
        if (postgres_list_clusters(cfg, &clusters, &n) < 0)
                results_add(res, "clusters", cfg->data_root, RES_FAILED, "cannot list the data root");
        for (size_t i = 0; i < n; i++) {
                if (!in_document(d, clusters[i]))
                        (void) postgres_retain(cfg, clusters[i], res);
                free(clusters[i]);
        }
        free(clusters);
}

int agent_apply(const agent_config *cfg, const char *json, size_t size, const char *trust_key, results *res,
                apply_outcome *ret_outcome, char **ret_error) {
        _cleanup_(doc_document_freep) doc_document *d = NULL;
        _cleanup_close_ int lock = -1;
        applied_state prev = {}, next = {};
        char hash[65];
        int r;

        if (!trust_key) {
                *ret_error = xstrdup("no trusted controller key: set trust-key in the configuration or pass --trust-key");
                return -ENOKEY;
        }
        r = verify_document(json, size, trust_key, &d, ret_error);
        if (r < 0)
                return r;
        for (size_t i = 0; i < d->n_databases; i++)
                if (!valid_database_name(d->databases[i].name)) {
                        *ret_error = xasprintf("databases[%zu].name: '%.64s' is not a valid database name "
                                               "(lower-case letters, digits and '-')", i, d->databases[i].name);
                        return -EINVAL;
                }
        r = apps_check(d, ret_error);
        if (r < 0)
                return r;
        if (!streq(d->host, cfg->host)) {
                *ret_error = xasprintf("the document is for host '%s', this agent is '%s'", d->host, cfg->host);
                return -EXDEV;
        }
        r = state_prepare(cfg, ret_error);
        if (r < 0)
                return r;
        lock = state_lock(cfg, ret_error);
        if (lock < 0)
                return lock;
        r = state_load_applied(cfg, &prev, ret_error);
        if (r < 0)
                return r;
        doc_content_hash(d, hash);
        /* Never go back: an older revision is a replay or a rollback. The same revision again is
         * fine (convergence after a crash or drift) only with the same content. */
        if (d->revision < prev.revision) {
                *ret_error = xasprintf("revision %llu is older than the applied revision %llu; refusing to roll back",
                                       (unsigned long long) d->revision, (unsigned long long) prev.revision);
                applied_state_done(&prev);
                return -ESTALE;
        }
        if (d->revision == prev.revision && !streq(hash, prev.content_hash)) {
                *ret_error = xasprintf("revision %llu was already applied with different content; refusing it",
                                       (unsigned long long) d->revision);
                applied_state_done(&prev);
                return -ESTALE;
        }
        r = state_save_desired(cfg, json, size, ret_error);
        if (r < 0) {
                applied_state_done(&prev);
                return r;
        }
        failpoint("after-persist");

        if (d->role == DOC_HOST_DATABASE)
                reconcile_database_host(cfg, d, res);
        else
                (void) apps_reconcile(cfg, d, res);

        failpoint("before-record");
        next.revision = d->revision;
        memcpy(next.content_hash, hash, sizeof(hash));
        next.commit = xstrdup(strempty(d->commit));
        /* A re-apply that changed nothing keeps the time of the last change: applied.json then has
         * the same bytes and is not rewritten (no fsync on the periodic no-op path). */
        next.applied_at = d->revision == prev.revision && !results_changed(res) ? prev.applied_at : (int64_t) time(NULL);
        applied_state_done(&prev);
        next.results = *res;
        r = state_save_applied(cfg, &next, ret_error);
        next.results = (results) {};
        applied_state_done(&next);
        if (r < 0)
                return r;
        *ret_outcome = results_failed(res) ? APPLY_FAILED : APPLY_DONE;
        return 0;
}
