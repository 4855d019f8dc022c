/* TLS for one database: the key made here, the request, the certificate the CA issued for it.
 * Every decision (ready, renewal, a new request) is made from the files on disk, so whatever a
 * crash interrupted, the next apply finishes. OpenSSL API only; no openssl(1). */
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>

#include <openssl/err.h>

#include "enroll.h"
#include "fileio.h"
#include "proc.h"
#include "strbuf.h"
#include "tls.h"
#include "x509.h"

static void free_extensions(STACK_OF(X509_EXTENSION) **exts) {
        sk_X509_EXTENSION_pop_free(*exts, X509_EXTENSION_free);
}

void tls_paths_init(tls_paths *p, const agent_config *cfg, const char *db) {
        p->dir = xasprintf("%s/%s/" TLS_DIR, cfg->data_root, db);
        p->key = xasprintf("%s/" TLS_KEY_FILE, p->dir);
        p->csr = xasprintf("%s/" TLS_CSR_FILE, p->dir);
        p->cert = xasprintf("%s/" TLS_CERT_FILE, p->dir);
        p->ca = xasprintf("%s/" TLS_CA_FILE, p->dir);
        p->served = xasprintf("%s/" TLS_SERVED_FILE, p->dir);
}

void tls_paths_done(tls_paths *p) {
        free(p->dir);
        free(p->key);
        free(p->csr);
        free(p->cert);
        free(p->ca);
        free(p->served);
        *p = (tls_paths) {};
}

void tls_state_done(tls_state *s) {
        tls_paths_done(&s->paths);
        free(s->cert_id);
        *s = (tls_state) {};
}

const pgconf_tls *tls_state_pgconf(const tls_state *s, pgconf_tls *buf) {
        if (!s || !s->ready)
                return NULL;
        *buf = (pgconf_tls) { .cert_file = s->paths.cert, .key_file = s->paths.key, .ca_file = s->paths.ca,
                              .cert_id = s->cert_id };
        return buf;
}

time_t tls_renewal_time(time_t not_before, time_t not_after) {
        return not_before + (not_after - not_before) / 3 * 2;
}

/* The data root (traversed by the OS user), the database's directory and its tls/: the same
 * shape postgres.c gives them, since TLS runs first on a new database. */
static int ensure_dirs(const agent_config *cfg, const tls_paths *p, uid_t uid, gid_t gid, char **ret_error) {
        _cleanup_free_ char *base = xstrndup(p->dir, strlen(p->dir) - strlen("/" TLS_DIR));
        int r;

        r = mkdir_root(cfg->data_root);
        if (r < 0) {
                *ret_error = xasprintf("cannot create data root %s: %s", cfg->data_root, strerror(-r));
                return r;
        }
        r = mkdir_owned(base, 0700, uid, gid);
        if (r >= 0)
                r = mkdir_owned(p->dir, 0700, uid, gid);
        if (r < 0)
                *ret_error = xasprintf("cannot create %s: %s", r == -ENOENT ? base : p->dir, strerror(-r));
        return r;
}

static int read_key(const char *path, EVP_PKEY **ret, char **ret_error) {
        _cleanup_free_ char *err = NULL;
        int r;

        r = x509_key_from_file(path, ret, &err);
        if (r == -EBADMSG)
                *ret_error = xasprintf("%s is not a usable private key (%s); move it away to generate a new one", path,
                                       err);
        else if (r < 0)
                *ret_error = TAKE_PTR(err);
        return r;
}

/* The server key: generated here when missing (0600, owned by the OS user, as PostgreSQL requires
 * of ssl_key_file), else loaded, with its owner and mode put right. 1 when generated. */
static int ensure_key(const tls_paths *p, uid_t uid, gid_t gid, EVP_PKEY **ret, bool *ret_fixed, char **ret_error) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        struct stat st;
        bool exists = lstat(p->key, &st) == 0;
        char *pem;
        size_t size = 0;
        int r;

        if (!exists && errno != ENOENT) {
                r = -errno;
                *ret_error = xasprintf("cannot read %s: %s", p->key, strerror(-r));
                return r;
        }
        if (exists && !S_ISREG(st.st_mode)) {
                *ret_error = xasprintf("%s is not a regular file", p->key);
                return -EBADMSG;
        }
        /* An empty file is one someone created by hand (our writes are atomic): make the key. */
        if (exists && st.st_size > 0) {
                r = read_key(p->key, ret, ret_error);
                if (r < 0)
                        return r;
                if (st.st_uid != uid || st.st_gid != gid || (st.st_mode & 07777) != 0600) {
                        if (chown(p->key, uid, gid) < 0 || chmod(p->key, 0600) < 0) {
                                r = -errno;
                                EVP_PKEY_free(TAKE_PTR(*ret));
                                *ret_error = xasprintf("cannot restrict %s to 0600: %s", p->key, strerror(-r));
                                return r;
                        }
                        *ret_fixed = true;
                }
                return 0;
        }
        key = x509_generate_ec_key();
        pem = key ? x509_key_to_pem(key, &size) : NULL;
        if (!pem) {
                *ret_error = xstrdup("cannot generate an EC P-256 key");
                return -EIO;
        }
        /* write_file_atomic creates the temporary file 0600 before a byte is written. */
        r = write_file_atomic_owned(p->key, pem, size, 0600, uid, gid);
        explicit_bzero(pem, size);
        free(pem);
        if (r < 0) {
                *ret_error = xasprintf("cannot write %s: %s", p->key, strerror(-r));
                return r;
        }
        *ret = TAKE_PTR(key);
        return 1;
}

static int read_cert(const char *path, X509 **ret, char **ret_error) {
        _cleanup_free_ char *pem = NULL, *err = NULL;
        int r = read_full_file(path, X509_PEM_MAX, &pem, NULL);

        if (r < 0) {
                if (r != -ENOENT)
                        *ret_error = xasprintf("cannot read %s: %s", path, strerror(-r));
                return r;
        }
        r = x509_cert_from_pem(pem, ret, &err);
        if (r < 0)
                *ret_error = xasprintf("%s: %s", path, err);
        return r;
}

typedef enum cert_state {
        CERT_NONE,            /* nothing installed yet */
        CERT_USABLE,          /* matches the key, verifies against ca.crt, within its validity */
        CERT_BROKEN,          /* installed but not servable: expired, another key, does not verify */
} cert_state;

typedef struct cert_eval {
        cert_state state;
        char *why;            /* CERT_BROKEN: the reason */
        bool covers;          /* names every TLS name */
        const char *missing;  /* the first TLS name it does not */
        time_t not_before, not_after;
        char fingerprint[65];
        char *serial;
} cert_eval;

static void cert_eval_done(cert_eval *e) {
        free(e->why);
        free(e->serial);
}

static void evaluate_cert(const tls_paths *p, EVP_PKEY *key, const doc_database *db, cert_eval *e) {
        _cleanup_(X509_freep) X509 *cert = NULL, *ca = NULL;
        _cleanup_free_ char *err = NULL;
        int r;

        r = read_cert(p->cert, &cert, &e->why);
        if (r == -ENOENT) {
                e->state = CERT_NONE;
                return;
        }
        e->state = CERT_BROKEN;
        if (r < 0)
                return;
        r = read_cert(p->ca, &ca, &e->why);
        if (r == -ENOENT)
                e->why = xasprintf("%s is missing", p->ca);
        if (r < 0)
                return;
        if (x509_validity(cert, &e->not_before, &e->not_after) < 0 || x509_cert_fingerprint(cert, e->fingerprint) < 0) {
                e->why = xasprintf("%s has an unreadable validity", p->cert);
                return;
        }
        e->serial = x509_serial_hex(cert);
        if (X509_check_private_key(cert, key) != 1) {
                ERR_clear_error();
                e->why = xasprintf("%s does not belong to %s", p->cert, p->key);
                return;
        }
        r = x509_verify_server_cert(cert, ca, &err);
        if (r == -EKEYEXPIRED) {
                char when[32];
                x509_format_time(e->not_after, when);
                e->why = xasprintf("the certificate expired %s", when);
                return;
        }
        if (r < 0) {
                e->why = xasprintf("%s does not verify against %s: %s", p->cert, p->ca, err);
                return;
        }
        e->covers = x509_cert_covers(cert, (const char *const *) db->tls_names, db->n_tls_names, &e->missing);
        e->state = CERT_USABLE;
}

/* The request on disk is still the right one: made with this key, unaltered, for exactly the
 * document's names. Then it is kept, not rewritten (an ECDSA signature differs every time). */
static bool csr_current(const tls_paths *p, EVP_PKEY *key, const doc_database *db) {
        _cleanup_free_ char *pem = NULL, *err = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        _cleanup_(free_extensions) STACK_OF(X509_EXTENSION) *exts = NULL;
        char **names = NULL;
        size_t n = 0;
        bool same;

        if (read_full_file(p->csr, X509_PEM_MAX, &pem, NULL) < 0 || x509_req_from_pem(pem, &req, &err) < 0)
                return false;
        if (X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) != 1 || EVP_PKEY_eq(X509_REQ_get0_pubkey(req), key) != 1) {
                ERR_clear_error();
                return false;
        }
        exts = X509_REQ_get_extensions(req);
        if (x509_exts_dns_names(exts, &names, &n, &err) < 0)
                return false;
        same = n == db->n_tls_names;
        for (size_t i = 0; same && i < n; i++)
                same = strcasecmp(names[i], db->tls_names[i]) == 0;
        x509_names_free(names, n);
        return same;
}

static int write_csr(const tls_paths *p, EVP_PKEY *key, const doc_database *db, uid_t uid, gid_t gid,
                     char **ret_error) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        _cleanup_(X509_NAME_freep) X509_NAME *subject = X509_NAME_new();
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = NULL;
        _cleanup_(free_extensions) STACK_OF(X509_EXTENSION) *exts = NULL;
        _cleanup_free_ char *pem = NULL;
        int r;

        gens = x509_dns_general_names((const char *const *) db->tls_names, db->n_tls_names);
        /* The names travel in subjectAltName; a commonName only when the first fits its 64
         * characters (the CA decides the certificate's subject anyway). */
        if (!req || !subject || !gens || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
            (strlen(db->tls_names[0]) <= X509_CN_MAX &&
             X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8, (const unsigned char *) db->tls_names[0], -1, -1,
                                        0) != 1) ||
            X509_REQ_set_subject_name(req, subject) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
            X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1 ||
            X509_REQ_add_extensions(req, exts) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0 ||
            !(pem = x509_req_to_pem(req))) {
                *ret_error = x509_openssl_error("cannot build the certificate request");
                return -EIO;
        }
        /* The request is public: it carries the public key and the names, nothing secret. */
        r = write_file_atomic_owned(p->csr, pem, strlen(pem), 0644, uid, gid);
        if (r < 0)
                *ret_error = xasprintf("cannot write %s: %s", p->csr, strerror(-r));
        return r;
}

/* Record the certificate in use; true when it is another than the last apply's. Only the message
 * depends on it: PostgreSQL reloads because the managed file names the certificate. */
static bool note_served(const tls_paths *p, const char *fingerprint, uid_t uid, gid_t gid) {
        _cleanup_free_ char *line = xasprintf("%s\n", fingerprint);
        return write_file_atomic_owned(p->served, line, strlen(line), 0644, uid, gid) > 0;
}

static int check_names(const doc_database *db, char **ret_error) {
        if (db->n_tls_names == 0) {
                *ret_error = xstrdup("the document gives no TLS name");
                return -EINVAL;
        }
        for (size_t i = 0; i < db->n_tls_names; i++)
                if (!x509_dns_name_valid(db->tls_names[i])) {
                        *ret_error = xasprintf("TLS name '%.64s' is not a DNS host name", db->tls_names[i]);
                        return -EINVAL;
                }
        return 0;
}

/* The checks every installed certificate passes, then the files: the CA first, so the certificate
 * never appears next to a CA that does not verify it. */
static int install_checked(const tls_paths *p, EVP_PKEY *key, const doc_database *db, X509 *cert, X509 *ca, uid_t uid,
                           gid_t gid, char **ret_error) {
        _cleanup_free_ char *err = NULL, *cert_out = NULL, *ca_out = NULL;
        const char *missing = NULL;
        int r;

        if (X509_check_ca(ca) == 0) {
                *ret_error = xstrdup("the CA file does not hold a CA certificate");
                return -EBADMSG;
        }
        if (X509_check_private_key(cert, key) != 1) {
                ERR_clear_error();
                *ret_error = xasprintf("the certificate is not for this host's key %s: it certifies another key", p->key);
                return -EKEYREJECTED;
        }
        r = x509_verify_server_cert(cert, ca, &err);
        if (r < 0) {
                *ret_error = xasprintf("the certificate does not verify against the CA: %s", err);
                return r;
        }
        if (!x509_cert_covers(cert, (const char *const *) db->tls_names, db->n_tls_names, &missing)) {
                *ret_error = xasprintf("the certificate does not name '%s', a TLS name of database '%s'", missing,
                                       db->name);
                return -EKEYREJECTED;
        }
        cert_out = x509_cert_to_pem(cert);
        ca_out = x509_cert_to_pem(ca);
        if (!cert_out || !ca_out) {
                *ret_error = xstrdup("cannot encode the certificates");
                return -EIO;
        }
        r = write_file_atomic_owned(p->ca, ca_out, strlen(ca_out), 0644, uid, gid);
        if (r >= 0)
                r = write_file_atomic_owned(p->cert, cert_out, strlen(cert_out), 0644, uid, gid);
        if (r < 0) {
                *ret_error = xasprintf("cannot write the certificates in %s: %s", p->dir, strerror(-r));
                return r;
        }
        return 0;
}

/* The certificate the document carries (the controller's CA answered our request): installed
 * with the enrolled CA when it passes install_checked() and is not the one in place already. A
 * certificate that does not fit (the key was made anew since the request, say) is not an error of
 * this apply: the request for the current key is pending and the controller answers it next.
 * 0 when installed or already in place, 1 when refused, <0 when the files could not be read or
 * written (a failure); *ret_why says why in the last two cases. */
static int install_from_document(const agent_config *cfg, const tls_paths *p, EVP_PKEY *key, const doc_database *db,
                                 uid_t uid, gid_t gid, char **ret_why) {
        _cleanup_(X509_freep) X509 *cert = NULL, *current = NULL, *ca = NULL;
        _cleanup_free_ char *err = NULL, *ca_path = xasprintf("%s/" ENROLL_CA, cfg->state_dir),
                            *pem = NULL;
        int r;

        if (x509_cert_from_pem(db->tls_certificate, &cert, &err) < 0) {
                *ret_why = xasprintf("it is not a certificate: %s", err);
                return 1;
        }
        if (read_cert(p->cert, &current, &err) >= 0 && X509_cmp(current, cert) == 0)
                return 0;
        free(TAKE_PTR(err));
        r = read_full_file(ca_path, X509_PEM_MAX, &pem, NULL);
        if (r == -ENOENT) {
                *ret_why = xasprintf("this host is not enrolled (%s is missing), so nothing can verify it", ca_path);
                return 1;
        }
        if (r < 0) {
                *ret_why = xasprintf("cannot read %s: %s", ca_path, strerror(-r));
                return r;
        }
        if (x509_cert_from_pem(pem, &ca, &err) < 0) {
                *ret_why = xasprintf("%s: %s", ca_path, err);
                return 1;
        }
        r = install_checked(p, key, db, cert, ca, uid, gid, ret_why);
        /* The checks refuse with these; anything else is the file system's. */
        if (r == -EBADMSG || r == -EKEYREJECTED || r == -EKEYEXPIRED)
                return 1;
        return r;
}

int tls_reconcile(const agent_config *cfg, const doc_database *db, tls_state *ret, results *res) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_free_ char *err = NULL, *csr_err = NULL, *doc_err = NULL;
        cert_eval e = {};
        bool key_created = false, key_fixed = false, need_request, pending = false, written = false,
             installed = false, doc_failed = false;
        char expires[32] = "", renew[32] = "";
        const char *csr = TLS_CSR_FILE;
        time_t now = time(NULL);
        res_state state;
        strbuf detail = {};
        uid_t uid;
        gid_t gid;
        int r;

        *ret = (tls_state) {};
        tls_paths_init(&ret->paths, cfg, db->name);
        r = user_lookup(cfg->os_user, &uid, &gid, NULL);
        if (r < 0) {
                err = xasprintf("OS user '%s' not found", cfg->os_user);
                goto fail;
        }
        r = check_names(db, &err);
        if (r >= 0)
                r = ensure_dirs(cfg, &ret->paths, uid, gid, &err);
        if (r >= 0)
                r = ensure_key(&ret->paths, uid, gid, &key, &key_fixed, &err);
        if (r < 0)
                goto fail;
        key_created = r > 0;

        if (db->tls_certificate)
                doc_failed = install_from_document(cfg, &ret->paths, key, db, uid, gid, &doc_err) < 0;
        evaluate_cert(&ret->paths, key, db, &e);
        if (e.state == CERT_USABLE) {
                ret->ready = true;
                ret->not_before = e.not_before;
                ret->not_after = e.not_after;
                ret->renew_at = tls_renewal_time(e.not_before, e.not_after);
                x509_format_time(e.not_after, expires);
                x509_format_time(ret->renew_at, renew);
                ret->cert_id = xasprintf("serial %s, sha256 %s, expires %s", e.serial, e.fingerprint, expires);
                installed = note_served(&ret->paths, e.fingerprint, uid, gid);
        } else
                (void) unlink(ret->paths.served);
        need_request = e.state != CERT_USABLE || !e.covers || now >= ret->renew_at;
        if (need_request) {
                pending = !key_created && csr_current(&ret->paths, key, db);
                /* A failed request does not take a usable certificate away: ready stays as it is. */
                if (!pending)
                        written = write_csr(&ret->paths, key, db, uid, gid, &csr_err) >= 0;
        } else
                /* Answered: server.csr exists exactly while a request is pending. */
                (void) unlink(ret->paths.csr);

        if (key_created)
                strbuf_append(&detail, "key generated, ");
        if (e.state == CERT_NONE) {
                state = key_created ? RES_CREATED : written ? RES_CHANGED : RES_UNCHANGED;
                if (written)
                        strbuf_printf(&detail, "certificate requested (%s)", csr);
                else
                        strbuf_printf(&detail, "waiting for a certificate: request pending in %s; no TCP connections "
                                               "until one is installed",
                                      ret->paths.csr);
        } else if (e.state == CERT_BROKEN) {
                state = RES_FAILED;
                strbuf_printf(&detail, "%s; no TCP connections until a new certificate is installed; %s (%s)", e.why,
                              written ? "new request written" : "request pending", csr);
        } else if (!e.covers) {
                state = written ? RES_CHANGED : RES_UNCHANGED;
                strbuf_printf(&detail, "TLS name '%s' is not in the certificate: %s (%s); the current certificate "
                                       "stays in use, expires %s",
                              e.missing, written ? "new request written" : "request pending", csr, expires);
        } else if (now >= ret->renew_at) {
                state = written ? RES_CHANGED : RES_UNCHANGED;
                if (written)
                        strbuf_printf(&detail, "renewal due, new request written (%s); certificate expires %s", csr,
                                      expires);
                else
                        strbuf_printf(&detail, "renewal due since %s, request pending (%s); certificate expires %s",
                                      renew, csr, expires);
        } else if (installed) {
                state = RES_CHANGED;
                strbuf_printf(&detail, "certificate installed: serial %s, expires %s (renewal from %s)", e.serial,
                              expires, renew);
        } else {
                state = RES_UNCHANGED;
                strbuf_printf(&detail, "certificate expires %s (renewal from %s)", expires, renew);
        }
        if (key_fixed) {
                strbuf_append(&detail, "; owner and mode of server.key restored");
                if (state == RES_UNCHANGED)
                        state = RES_CHANGED;
        }
        if (doc_err)
                strbuf_printf(&detail, "; the document's certificate is not installed: %s", doc_err);
        if (doc_failed)
                state = RES_FAILED;
        if (csr_err) {
                state = RES_FAILED;
                strbuf_printf(&detail, "; %s", csr_err);
        }
        results_add(res, "tls", db->name, state, "%s", detail.s);
        strbuf_done(&detail);
        cert_eval_done(&e);
        return state == RES_FAILED ? -EIO : 0;
fail:
        ret->ready = false;
        results_add(res, "tls", db->name, RES_FAILED, "%s", err ? err : strerror(-r));
        return r < 0 ? r : -EIO;
}

int tls_install(const agent_config *cfg, const doc_database *db, const char *cert_pem, const char *ca_pem,
                char **ret_summary, char **ret_error) {
        _cleanup_(tls_paths_done) tls_paths p = {};
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *cert = NULL, *ca = NULL;
        _cleanup_free_ char *err = NULL, *serial = NULL;
        char expires[32], renew[32];
        time_t not_before, not_after;
        uid_t uid;
        gid_t gid;
        int r;

        tls_paths_init(&p, cfg, db->name);
        r = user_lookup(cfg->os_user, &uid, &gid, NULL);
        if (r < 0) {
                *ret_error = xasprintf("OS user '%s' not found", cfg->os_user);
                return r;
        }
        if (access(p.key, F_OK) < 0) {
                r = -errno;
                *ret_error = r == -ENOENT ? xasprintf("database '%s' has no server key yet (%s): run 'agentctl apply' "
                                                      "first, it generates the key and the request",
                                                      db->name, p.key)
                                          : xasprintf("cannot read %s: %s", p.key, strerror(-r));
                return r;
        }
        r = read_key(p.key, &key, ret_error);
        if (r < 0)
                return r;
        r = x509_cert_from_pem(cert_pem, &cert, &err);
        if (r < 0) {
                *ret_error = xasprintf("the certificate: %s", err);
                return r;
        }
        r = x509_cert_from_pem(ca_pem, &ca, &err);
        if (r < 0) {
                *ret_error = xasprintf("the CA certificate: %s", err);
                return r;
        }
        if (x509_validity(cert, &not_before, &not_after) < 0) {
                *ret_error = xstrdup("the certificate has an unreadable validity");
                return -EBADMSG;
        }
        r = install_checked(&p, key, db, cert, ca, uid, gid, ret_error);
        if (r < 0)
                return r;
        serial = x509_serial_hex(cert);
        x509_format_time(not_after, expires);
        x509_format_time(tls_renewal_time(not_before, not_after), renew);
        *ret_summary = xasprintf("serial %s, expires %s (renewal from %s)", serial, expires, renew);
        return 0;
}
