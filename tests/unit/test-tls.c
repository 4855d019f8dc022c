/* Unit tests for the agent's TLS reconciler, with the controller's CA signing: the key and request
 * on a first apply, waiting without rewriting, installation checks, readiness and the config it
 * feeds PostgreSQL, a change of TLS names (the old certificate stays in use), expiry, a key whose
 * mode was loosened. No root needed: the OS user is whoever runs the test. */
#include "unit.h"

#include <ftw.h>
#include <pwd.h>
#include <sys/stat.h>
#include <time.h>

#include "ca.h"
#include "fileio.h"
#include "tls.h"
#include "x509.h"

#define NAME1 "accounts-db.login-svc.development.retail-banking.fincorp.infrastream.internal"
#define NAME2 "accounts-db-replica.infrastream.internal"

typedef struct fixture {
        char dir[64];
        char *data_root, *ca_dir;
        agent_config cfg;
        ca *ca;
        char *ca_pem;
        doc_database db;
        char *names[2];
        results res;
} fixture;

static void free_x509_exts(STACK_OF(X509_EXTENSION) **exts) {
        sk_X509_EXTENSION_pop_free(*exts, X509_EXTENSION_free);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup(void **state) {
        fixture *f = xcalloc(1, sizeof(fixture));
        _cleanup_free_ char *err = NULL, *ca_path = NULL;
        struct passwd *pw = getpwuid(geteuid());

        assert_non_null(pw);
        strcpy(f->dir, "/tmp/test-tls.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->data_root = xasprintf("%s/data", f->dir);
        f->ca_dir = xasprintf("%s/ctl", f->dir);
        assert_int_equal(mkdir(f->ca_dir, 0700), 0);
        assert_int_equal(ca_create(f->ca_dir, "infrastream.internal", &err), 1);
        assert_int_equal(ca_load(f->ca_dir, &f->ca, &err), 0);
        ca_path = xasprintf("%s/%s", f->ca_dir, CA_CERT_FILE);
        assert_int_equal(read_full_file(ca_path, X509_PEM_MAX, &f->ca_pem, NULL), 0);
        f->cfg = (agent_config) { .data_root = f->data_root, .os_user = xstrdup(pw->pw_name) };
        f->names[0] = NAME1;
        f->names[1] = NAME2;
        f->db = (doc_database) { .name = "accounts-db", .port = 5432, .tls_names = f->names, .n_tls_names = 1 };
        *state = f;
        return 0;
}

static int teardown(void **state) {
        fixture *f = *state;

        nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
        ca_free(f->ca);
        free(f->ca_pem);
        free(f->data_root);
        free(f->ca_dir);
        free(f->cfg.os_user);
        results_done(&f->res);
        free(f);
        return 0;
}

/* Run the reconciler; the one result line it adds, as "state: detail". */
static char *reconcile(fixture *f, tls_state *s, int want_r) {
        size_t before = f->res.n;
        const res_item *it;

        assert_int_equal(tls_reconcile(&f->cfg, &f->db, s, &f->res), want_r);
        assert_int_equal(f->res.n, before + 1);
        it = &f->res.items[before];
        assert_string_equal(it->kind, "tls");
        assert_string_equal(it->name, "accounts-db");
        return xasprintf("%s: %s", res_state_to_string(it->state), strempty(it->detail));
}

static void expect_prefix(const char *got, const char *want) {
        if (strncmp(got, want, strlen(want)) != 0)
                fail_msg("got '%s', want it to start with '%s'", got, want);
}

static char *sign(fixture *f, const char *csr_path, const char *const *names, size_t n, int64_t lifetime) {
        _cleanup_free_ char *csr = NULL, *err = NULL;
        char *pem = NULL;

        assert_int_equal(read_full_file(csr_path, X509_PEM_MAX, &csr, NULL), 0);
        if (ca_sign_csr(f->ca, csr, names, n, "host 'db1'", lifetime, &pem, &err) < 0)
                fail_msg("signing refused: %s", err);
        return pem;
}

static void test_first_apply_and_install(void **state) {
        fixture *f = *state;
        tls_state s = {};
        _cleanup_free_ char *line = NULL, *csr1 = NULL, *csr2 = NULL, *cert = NULL, *summary = NULL, *err = NULL,
                            *conf_id = NULL;
        pgconf_tls pt;
        const pgconf_tls *p;
        struct stat st;

        /* First apply: key and request, nothing to serve. */
        line = reconcile(f, &s, 0);
        assert_string_equal(line, "created: key generated, certificate requested (server.csr)");
        assert_false(s.ready);
        assert_null(tls_state_pgconf(&s, &pt));
        assert_int_equal(stat(s.paths.dir, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0700);
        assert_int_equal(stat(s.paths.key, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        assert_int_equal(st.st_uid, geteuid());
        assert_int_equal(read_full_file(s.paths.csr, X509_PEM_MAX, &csr1, NULL), 0);
        tls_state_done(&s);

        /* Again: waiting, and the request is left as it is. */
        free(line);
        line = reconcile(f, &s, 0);
        expect_prefix(line, "unchanged: waiting for a certificate: request pending in ");
        assert_int_equal(read_full_file(s.paths.csr, X509_PEM_MAX, &csr2, NULL), 0);
        assert_string_equal(csr1, csr2);

        /* The CA signs what the agent asked for; agentctl's install checks and writes it. */
        cert = sign(f, s.paths.csr, (const char *const *) f->names, 1, CA_CERT_LIFETIME_DEFAULT);
        assert_int_equal(tls_install(&f->cfg, &f->db, cert, f->ca_pem, &summary, &err), 0);
        expect_prefix(summary, "serial ");
        assert_non_null(strstr(summary, " UTC (renewal from "));
        assert_int_equal(stat(s.paths.cert, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        tls_state_done(&s);

        /* The next apply serves it and drops the answered request. */
        free(line);
        line = reconcile(f, &s, 0);
        expect_prefix(line, "changed: certificate installed: serial ");
        assert_true(s.ready);
        assert_int_equal(access(s.paths.csr, F_OK), -1);
        assert_true(s.not_after - s.not_before == CA_CERT_LIFETIME_DEFAULT + CA_BACKDATE_MAX);
        assert_true(s.renew_at == s.not_before + (s.not_after - s.not_before) / 3 * 2);
        p = tls_state_pgconf(&s, &pt);
        assert_non_null(p);
        assert_string_equal(p->cert_file, s.paths.cert);
        assert_string_equal(p->key_file, s.paths.key);
        assert_string_equal(p->ca_file, s.paths.ca);
        expect_prefix(p->cert_id, "serial ");
        assert_non_null(strstr(p->cert_id, ", sha256 "));
        conf_id = xstrdup(p->cert_id);
        tls_state_done(&s);

        /* Nothing to do: unchanged, with expiry and renewal in the line (status shows it). */
        free(line);
        line = reconcile(f, &s, 0);
        expect_prefix(line, "unchanged: certificate expires ");
        assert_non_null(strstr(line, " UTC (renewal from "));
        assert_string_equal(s.cert_id, conf_id);
        tls_state_done(&s);
}

/* A request for names from a key that is not the host's. */
static char *foreign_csr(const char *name) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = x509_generate_ec_key();
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = x509_dns_general_names(&name, 1);
        STACK_OF(X509_EXTENSION) *exts = NULL;
        char *pem;

        assert_non_null(req);
        assert_non_null(key);
        assert_non_null(gens);
        assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
        assert_int_equal(X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT), 1);
        assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
        pem = x509_req_to_pem(req);
        assert_non_null(pem);
        return pem;
}

/* A request for name from the key in key_path (the host's own). */
static char *csr_for(const char *key_path, const char *name) {
        _cleanup_(X509_REQ_freep) X509_REQ *req = X509_REQ_new();
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(GENERAL_NAMES_freep) GENERAL_NAMES *gens = x509_dns_general_names(&name, 1);
        _cleanup_free_ char *pem = NULL;
        STACK_OF(X509_EXTENSION) *exts = NULL;
        size_t size = 0;
        char *out;

        assert_int_equal(read_full_file(key_path, X509_PEM_MAX, &pem, &size), 0);
        assert_int_equal(x509_key_from_pem(pem, size, &key, NULL), 0);
        assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
        assert_int_equal(X509V3_add1_i2d(&exts, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT), 1);
        assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
        out = x509_req_to_pem(req);
        assert_non_null(out);
        return out;
}

static void test_install_refusals(void **state) {
        fixture *f = *state;
        tls_state s = {};
        _cleanup_free_ char *line = NULL, *cert = NULL, *other_ca = NULL, *summary = NULL, *err = NULL, *dir2 = NULL,
                            *ca2_path = NULL, *csr = NULL, *other_cert = NULL;

        /* No key yet: apply first. */
        assert_int_equal(tls_install(&f->cfg, &f->db, f->ca_pem, f->ca_pem, &summary, &err), -ENOENT);
        assert_non_null(strstr(err, "has no server key yet"));
        free(TAKE_PTR(err));

        line = reconcile(f, &s, 0);
        cert = sign(f, s.paths.csr, (const char *const *) f->names, 1, 3600);

        /* Another CA. */
        dir2 = xasprintf("%s/ctl2", f->dir);
        assert_int_equal(mkdir(dir2, 0700), 0);
        assert_int_equal(ca_create(dir2, "infrastream.internal", &err), 1);
        ca2_path = xasprintf("%s/%s", dir2, CA_CERT_FILE);
        assert_int_equal(read_full_file(ca2_path, X509_PEM_MAX, &other_ca, NULL), 0);
        assert_int_equal(tls_install(&f->cfg, &f->db, cert, other_ca, &summary, &err), -EKEYREJECTED);
        assert_string_equal(err, "the certificate does not verify against the CA: unable to get local issuer certificate");
        free(TAKE_PTR(err));

        /* A name of the document missing from the certificate. */
        f->db.n_tls_names = 2;
        assert_int_equal(tls_install(&f->cfg, &f->db, cert, f->ca_pem, &summary, &err), -EKEYREJECTED);
        assert_string_equal(err, "the certificate does not name '" NAME2 "', a TLS name of database 'accounts-db'");
        free(TAKE_PTR(err));
        f->db.n_tls_names = 1;

        /* A certificate for someone else's key, for the right name. */
        csr = foreign_csr(NAME1);
        {
                const char *const allowed[] = { NAME1 };
                assert_int_equal(ca_sign_csr(f->ca, csr, allowed, 1, NULL, 3600, &other_cert, &err), 0);
        }
        assert_int_equal(tls_install(&f->cfg, &f->db, other_cert, f->ca_pem, &summary, &err), -EKEYREJECTED);
        assert_non_null(strstr(err, "the certificate is not for this host's key"));
        free(TAKE_PTR(err));

        /* The CA file holds a leaf; the certificate file holds garbage or two certificates. */
        assert_int_equal(tls_install(&f->cfg, &f->db, cert, cert, &summary, &err), -EBADMSG);
        assert_string_equal(err, "the CA file does not hold a CA certificate");
        free(TAKE_PTR(err));
        assert_int_equal(tls_install(&f->cfg, &f->db, "junk", f->ca_pem, &summary, &err), -EBADMSG);
        assert_string_equal(err, "the certificate: not a PEM certificate");
        free(TAKE_PTR(err));
        {
                _cleanup_free_ char *two = xasprintf("%s%s", cert, cert);
                assert_int_equal(tls_install(&f->cfg, &f->db, two, f->ca_pem, &summary, &err), -EBADMSG);
                assert_string_equal(err, "the certificate: more than one PEM block where one certificate was expected");
                free(TAKE_PTR(err));
        }

        /* Nothing was written by any of them. */
        assert_int_equal(access(s.paths.cert, F_OK), -1);
        assert_int_equal(access(s.paths.ca, F_OK), -1);
        assert_null(summary);
        tls_state_done(&s);
}

static void test_names_change_keeps_serving(void **state) {
        fixture *f = *state;
        tls_state s = {};
        _cleanup_free_ char *line = NULL, *cert = NULL, *summary = NULL, *err = NULL, *csr = NULL;
        _cleanup_(X509_REQ_freep) X509_REQ *req = NULL;
        char **names = NULL;
        size_t n = 0;

        line = reconcile(f, &s, 0);
        cert = sign(f, s.paths.csr, (const char *const *) f->names, 1, 3600);
        assert_int_equal(tls_install(&f->cfg, &f->db, cert, f->ca_pem, &summary, &err), 0);
        tls_state_done(&s);
        free(line);
        line = reconcile(f, &s, 0);
        assert_true(s.ready);
        tls_state_done(&s);

        /* The document gives a second name: a new request for both, the old certificate serves on. */
        f->db.n_tls_names = 2;
        free(line);
        line = reconcile(f, &s, 0);
        expect_prefix(line, "changed: TLS name '" NAME2 "' is not in the certificate: new request written (server.csr); "
                            "the current certificate stays in use, expires ");
        assert_true(s.ready);
        assert_int_equal(read_full_file(s.paths.csr, X509_PEM_MAX, &csr, NULL), 0);
        assert_int_equal(x509_req_from_pem(csr, &req, NULL), 0);
        {
                _cleanup_(free_x509_exts) STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(req);
                assert_int_equal(x509_exts_dns_names(exts, &names, &n, NULL), 0);
        }
        assert_int_equal(n, 2);
        assert_string_equal(names[0], NAME1);
        assert_string_equal(names[1], NAME2);
        x509_names_free(names, n);
        tls_state_done(&s);
        free(line);
        line = reconcile(f, &s, 0);
        expect_prefix(line, "unchanged: TLS name '" NAME2 "' is not in the certificate: request pending (server.csr)");
        tls_state_done(&s);
}

static void test_expired_and_key_mode(void **state) {
        fixture *f = *state;
        tls_state s = {};
        _cleanup_free_ char *line = NULL, *cert = NULL, *csr = NULL, *other = NULL, *err = NULL;
        struct stat st;

        line = reconcile(f, &s, 0);
        /* Written directly, not installed: install refuses what has expired, but time passes on disk. */
        cert = sign(f, s.paths.csr, (const char *const *) f->names, 1, 1);
        assert_int_equal(write_file_atomic(s.paths.cert, cert, strlen(cert), 0644), 1);
        assert_int_equal(write_file_atomic(s.paths.ca, f->ca_pem, strlen(f->ca_pem), 0644), 1);
        assert_int_equal(unlink(s.paths.csr), 0);
        tls_state_done(&s);
        sleep(2);
        free(line);
        line = reconcile(f, &s, -EIO);
        expect_prefix(line, "failed: the certificate expired ");
        assert_non_null(strstr(line, "; no TCP connections until a new certificate is installed; new request written "
                                     "(server.csr)"));
        assert_false(s.ready);
        assert_int_equal(access(s.paths.csr, F_OK), 0);
        tls_state_done(&s);

        /* A key someone made readable: put right, and said so. */
        free(line);
        line = reconcile(f, &s, -EIO);
        assert_int_equal(chmod(s.paths.key, 0644), 0);
        tls_state_done(&s);
        free(line);
        line = reconcile(f, &s, -EIO);
        assert_non_null(strstr(line, "; owner and mode of server.key restored"));
        assert_int_equal(stat(s.paths.key, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        /* A certificate for another key (placed by hand): not servable either, and said why. */
        csr = foreign_csr(NAME1);
        {
                const char *const allowed[] = { NAME1 };
                assert_int_equal(ca_sign_csr(f->ca, csr, allowed, 1, NULL, 3600, &other, &err), 0);
        }
        assert_int_equal(write_file_atomic(s.paths.cert, other, strlen(other), 0644), 1);
        tls_state_done(&s);
        free(line);
        line = reconcile(f, &s, -EIO);
        expect_prefix(line, "failed: ");
        assert_non_null(strstr(line, "server.crt does not belong to "));
        assert_non_null(strstr(line, "request pending (server.csr)"));
        assert_false(s.ready);
        tls_state_done(&s);
}

static void test_bad_names(void **state) {
        fixture *f = *state;
        tls_state s = {};
        _cleanup_free_ char *line = NULL;
        char *bad[] = { "not a name" };

        f->db.tls_names = bad;
        line = reconcile(f, &s, -EINVAL);
        assert_string_equal(line, "failed: TLS name 'not a name' is not a DNS host name");
        assert_false(s.ready);
        tls_state_done(&s);
        f->db.tls_names = f->names;
}

/* The certificate the document carries: installed by the apply with the enrolled CA when it fits,
 * else left out with the reason in the result, the request pending, and the apply not failed. */
static void test_document_certificate(void **state) {
        fixture *f = *state;
        tls_state s = {};
        _cleanup_free_ char *line = NULL, *cert = NULL, *enrolled = NULL, *want = NULL, *got = NULL,
                            *err = NULL, *dir2 = NULL, *foreign = NULL;
        _cleanup_(ca_freep) ca *ca2 = NULL;

        f->cfg.state_dir = xasprintf("%s/state", f->dir);
        assert_int_equal(mkdir(f->cfg.state_dir, 0700), 0);
        enrolled = xasprintf("%s/ca.crt", f->cfg.state_dir); /* what agentctl enroll leaves */

        line = reconcile(f, &s, 0);
        cert = sign(f, s.paths.csr, (const char *const *) f->names, 1, 3600);
        f->db.tls_certificate = cert;
        tls_state_done(&s);

        /* Not enrolled: nothing to verify it with. Waiting, not failed. */
        free(line);
        line = reconcile(f, &s, 0);
        want = xasprintf("unchanged: waiting for a certificate: request pending in %s; no TCP connections until one is "
                         "installed; the document's certificate is not installed: this host is not enrolled (%s is "
                         "missing), so nothing can verify it",
                         s.paths.csr, enrolled);
        assert_string_equal(line, want);
        assert_false(s.ready);
        tls_state_done(&s);

        /* Enrolled: installed with the CA, served, the answered request removed. */
        assert_int_equal(write_file_atomic(enrolled, f->ca_pem, strlen(f->ca_pem), 0644), 1);
        free(line);
        line = reconcile(f, &s, 0);
        expect_prefix(line, "changed: certificate installed: serial ");
        assert_true(s.ready);
        assert_int_equal(access(s.paths.csr, F_OK), -1);
        assert_int_equal(read_full_file(s.paths.cert, X509_PEM_MAX, &got, NULL), 0);
        assert_string_equal(got, cert);
        free(TAKE_PTR(got));
        assert_int_equal(read_full_file(s.paths.ca, X509_PEM_MAX, &got, NULL), 0);
        assert_string_equal(got, f->ca_pem);
        free(TAKE_PTR(got));
        tls_state_done(&s);
        free(line);
        line = reconcile(f, &s, 0);
        expect_prefix(line, "unchanged: certificate expires ");

        /* The key made anew (its files lost): the document's certificate is for the old key. The
         * new request is pending; the apply does not fail. */
        assert_int_equal(unlink(s.paths.key), 0);
        assert_int_equal(unlink(s.paths.cert), 0);
        tls_state_done(&s);
        free(line);
        line = reconcile(f, &s, 0);
        free(want);
        want = xasprintf("created: key generated, certificate requested (server.csr); the document's certificate is not "
                         "installed: the certificate is not for this host's key %s: it certifies another key",
                         s.paths.key);
        assert_string_equal(line, want);
        assert_false(s.ready);
        assert_int_equal(access(s.paths.cert, F_OK), -1);
        tls_state_done(&s);
        free(line);
        line = reconcile(f, &s, 0);
        expect_prefix(line, "unchanged: waiting for a certificate: request pending in ");
        assert_non_null(strstr(line, "; the document's certificate is not installed: the certificate is not for this "
                                     "host's key "));

        /* The controller answers the new request with a certificate from another CA than the
         * enrolled one: refused. */
        dir2 = xasprintf("%s/ctl2", f->dir);
        assert_int_equal(mkdir(dir2, 0700), 0);
        assert_int_equal(ca_create(dir2, "infrastream.internal", &err), 1);
        assert_int_equal(ca_load(dir2, &ca2, &err), 0);
        {
                _cleanup_free_ char *csr = NULL;
                assert_int_equal(read_full_file(s.paths.csr, X509_PEM_MAX, &csr, NULL), 0);
                assert_int_equal(ca_sign_csr(ca2, csr, (const char *const *) f->names, 1, NULL, 3600, &foreign, &err),
                                 0);
        }
        tls_state_done(&s);
        f->db.tls_certificate = foreign;
        free(line);
        line = reconcile(f, &s, 0);
        expect_prefix(line, "unchanged: waiting for a certificate: request pending in ");
        assert_non_null(strstr(line, "; the document's certificate is not installed: the certificate does not verify "
                                     "against the CA: unable to get local issuer certificate"));
        tls_state_done(&s);

        /* The right one: installed. */
        {
                tls_paths p = {};
                tls_paths_init(&p, &f->cfg, f->db.name);
                free(cert);
                cert = sign(f, p.csr, (const char *const *) f->names, 1, 3600);
                tls_paths_done(&p);
        }
        f->db.tls_certificate = cert;
        free(line);
        line = reconcile(f, &s, 0);
        expect_prefix(line, "changed: certificate installed: serial ");
        assert_true(s.ready);
        tls_state_done(&s);

        /* The document gains a TLS name, and carries another certificate without it: not installed
         * over the one in use (which keeps serving); a new request for both names. */
        {
                tls_paths p = {};
                tls_paths_init(&p, &f->cfg, f->db.name);
                _cleanup_free_ char *csr = csr_for(p.key, NAME1);
                free(cert);
                assert_int_equal(ca_sign_csr(f->ca, csr, (const char *const *) f->names, 1, NULL, 3600, &cert, &err), 0);
                tls_paths_done(&p);
        }
        f->db.tls_certificate = cert;
        f->db.n_tls_names = 2;
        free(line);
        line = reconcile(f, &s, 0);
        expect_prefix(line, "changed: TLS name '" NAME2 "' is not in the certificate: new request written (server.csr); "
                            "the current certificate stays in use, expires ");
        assert_non_null(strstr(line, "; the document's certificate is not installed: the certificate does not name '" NAME2
                                     "', a TLS name of database 'accounts-db'"));
        assert_true(s.ready);
        tls_state_done(&s);
        f->db.n_tls_names = 1;
        f->db.tls_certificate = NULL;
        free(f->cfg.state_dir);
        f->cfg.state_dir = NULL;
}

static void test_renewal_time(void **state) {
        assert_int_equal(tls_renewal_time(0, 90), 60);
        assert_int_equal(tls_renewal_time(1000, 1000 + 90 * 86400 + 300), 1000 + (90 * 86400 + 300) / 3 * 2);
        assert_int_equal(tls_renewal_time(100, 133), 122);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_first_apply_and_install, setup, teardown),
                cmocka_unit_test_setup_teardown(test_install_refusals, setup, teardown),
                cmocka_unit_test_setup_teardown(test_names_change_keeps_serving, setup, teardown),
                cmocka_unit_test_setup_teardown(test_expired_and_key_mode, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
                cmocka_unit_test_setup_teardown(test_document_certificate, setup, teardown),
                cmocka_unit_test(test_renewal_time),
        };
        return cmocka_run_group_tests_name("tls", tests, NULL, NULL);
}
