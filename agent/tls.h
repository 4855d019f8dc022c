/* The TLS reconciler: per database, a server key generated on this host (it never leaves it), a
 * certificate request for the document's TLS names, and the certificate the controller's CA
 * issued for it. Whether a usable certificate exists decides whether PostgreSQL listens on TCP
 * at all. Files live in <data-root>/<db>/tls/ (0700, owned by the OS user). */
#pragma once

#include <stdbool.h>
#include <time.h>

#include "config.h"
#include "document.h"
#include "pgconf.h"
#include "results.h"

#define TLS_DIR "tls"
#define TLS_KEY_FILE "server.key"
#define TLS_CSR_FILE "server.csr"
#define TLS_CERT_FILE "server.crt"
#define TLS_CA_FILE "ca.crt"
#define TLS_SERVED_FILE "served.sha256" /* the certificate the last apply configured PostgreSQL with */

typedef struct tls_paths {
        char *dir, *key, *csr, *cert, *ca, *served;
} tls_paths;

void tls_paths_init(tls_paths *p, const agent_config *cfg, const char *db);
void tls_paths_done(tls_paths *p);

/* What the reconciler found: whether PostgreSQL can serve a certificate, and which one. */
typedef struct tls_state {
        bool ready;            /* present, matches server.key, verifies against ca.crt, not expired */
        tls_paths paths;
        char *cert_id;         /* "serial ..., sha256 ..., expires ...": a new certificate changes it */
        time_t not_before, not_after, renew_at;
} tls_state;

void tls_state_done(tls_state *s);
/* The certificate for pgconf, or NULL when none is ready (then PostgreSQL gets no TCP). */
const pgconf_tls *tls_state_pgconf(const tls_state *s, pgconf_tls *buf);

/* Renewal starts at 2/3 of a certificate's life. */
time_t tls_renewal_time(time_t not_before, time_t not_after);

/* Converge db's key and request: generate the key if missing; install the certificate the document
 * carries (db->tls_certificate) with the enrolled CA when it passes tls_install()'s checks, else
 * say why in the result (never a failure: the pending request gets answered); write a new request (server.csr)
 * when there is no usable certificate, when it does not name every TLS name, or when renewal is
 * due; remove a request once none is needed. One result line "tls <db>: ...", "changed" when the
 * certificate in use is another than at the last apply. *ret is set
 * on every path (not ready on failure); returns <0 after recording a failed result. */
int tls_reconcile(const agent_config *cfg, const doc_database *db, tls_state *ret, results *res);

/* Install a certificate (PEM) and its CA (PEM) for db after checking them: the certificate
 * belongs to server.key, names every TLS name of db, and verifies against the CA now. Written
 * atomically, owned by the OS user; PostgreSQL picks it up at the next apply (a reload).
 * -ENOENT when there is no key yet (apply first). */
int tls_install(const agent_config *cfg, const doc_database *db, const char *cert_pem, const char *ca_pem,
                char **ret_summary, char **ret_error);
