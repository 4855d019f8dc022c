/* Unit tests for the files the agent owns in a cluster: tuning formulas, the managed include,
 * pg_hba.conf and pg_ident.conf; and the systemd unit, checked by systemd-analyze verify. */
#include <stdio.h>
#include <sys/wait.h>

#include "pgconf.h"
#include "service.h"
#include "unit.h"

static doc_role ROLES[] = {
        { .name = "auth-api", .access = DOC_ACCESS_READ_WRITE, .clients = (char *[]) { "10.99.0.3/32", "fd00::3/128" }, .n_clients = 2 },
        { .name = "we \"quote\"", .access = DOC_ACCESS_READ_ONLY, .clients = (char *[]) { "10.99.0.4/32" }, .n_clients = 1 },
};

static doc_database DB = {
        .name = "accounts-db", .postgres_version = 15, .cpu_count = 4, .cluster_size = 1, .port = 5432,
        .roles = ROLES, .n_roles = 2,
};

static void test_tuning(void **state) {
        pg_tuning t;

        /* 16 GiB, 4 CPUs: shared_buffers = RAM/5, effective_cache_size = 3/4 RAM. */
        pg_tuning_compute(4, 16ULL << 30, &t);
        assert_int_equal(t.shared_buffers_kb, (16ULL << 20) / 5);
        assert_int_equal(t.effective_cache_size_kb, (16ULL << 20) * 3 / 4);
        assert_int_equal(t.maintenance_work_mem_kb, 1ULL << 20);
        assert_int_equal(t.max_connections, 100);
        assert_int_equal(t.max_worker_processes, 8);
        assert_int_equal(t.max_parallel_workers, 4);
        assert_int_equal(t.max_parallel_workers_per_gather, 2);
        assert_int_equal(t.work_mem_kb, ((16ULL << 20) - (16ULL << 20) / 5) / (100 * 3 * 2));

        /* Large: capped. 512 GiB, 64 CPUs. */
        pg_tuning_compute(64, 512ULL << 30, &t);
        assert_int_equal(t.shared_buffers_kb, 64ULL << 20);
        assert_int_equal(t.maintenance_work_mem_kb, 2ULL << 20);
        assert_int_equal(t.max_connections, 500);
        assert_int_equal(t.max_worker_processes, 64);
        assert_int_equal(t.max_parallel_workers_per_gather, 4);

        /* Tiny: floors. 512 MiB, 1 CPU. */
        pg_tuning_compute(1, 512ULL << 20, &t);
        assert_int_equal(t.shared_buffers_kb, (512ULL << 10) / 5);
        assert_int_equal(t.work_mem_kb, 4ULL << 10);
        assert_int_equal(t.max_parallel_workers, 2);
        assert_int_equal(t.max_parallel_workers_per_gather, 1);
}

static const pgconf_tls TLS = {
        .cert_file = "/srv/db/tls/server.crt", .key_file = "/srv/db/tls/server.key", .ca_file = "/srv/db/tls/ca.crt",
        .cert_id = "serial 1F, sha256 ab12, expires 2027-02-24 10:00:00 UTC",
};

static pgconf_input input(bool with_tls) {
        static const char *listen[] = { "10.99.0.2", "fd00::2" };
        return (pgconf_input) { .db = &DB, .listen_addresses = listen, .n_listen = 2, .socket_dir = "/srv/it's/run",
                                .memory_bytes = 16ULL << 30, .os_user = "postgres", .tls = with_tls ? &TLS : NULL };
}

static void test_managed(void **state) {
        pgconf_input in = input(true);
        _cleanup_free_ char *a = pgconf_managed(&in), *b = pgconf_managed(&in);

        assert_string_equal(a, b); /* deterministic: an unchanged document rewrites nothing */
        assert_non_null(strstr(a, "\nlisten_addresses = '10.99.0.2,fd00::2'\n"));
        assert_non_null(strstr(a, "\nport = 5432\n"));
        assert_non_null(strstr(a, "\nunix_socket_directories = '/srv/it''s/run'\n"));
        assert_non_null(strstr(a, "\npassword_encryption = 'scram-sha-256'\n"));
        assert_non_null(strstr(a, "\nlog_statement = 'none'\n"));
        assert_non_null(strstr(a, "\nshared_buffers = 3276MB\n"));
        assert_non_null(strstr(a, "\nmax_connections = 100\n"));
}

static void test_managed_tls(void **state) {
        pgconf_input in = input(true);
        _cleanup_free_ char *a = pgconf_managed(&in), *b = NULL;

        assert_non_null(strstr(a, "\nssl = on\n"));
        assert_non_null(strstr(a, "\nssl_cert_file = '/srv/db/tls/server.crt'\n"));
        assert_non_null(strstr(a, "\nssl_key_file = '/srv/db/tls/server.key'\n"));
        assert_non_null(strstr(a, "\nssl_ca_file = '/srv/db/tls/ca.crt'\n"));
        assert_non_null(strstr(a, "\nssl_min_protocol_version = 'TLSv1.2'\n"));
        /* The certificate's identity is in the file: a renewed certificate rewrites it (a reload). */
        assert_non_null(strstr(a, "\n# certificate: serial 1F, sha256 ab12, expires 2027-02-24 10:00:00 UTC\n"));

        /* No certificate yet: no TCP listener at all, and no TLS settings pointing at missing files. */
        in = input(false);
        b = pgconf_managed(&in);
        assert_non_null(strstr(b, "\nlisten_addresses = ''\n"));
        assert_null(strstr(b, "10.99.0.2"));
        assert_non_null(strstr(b, "\nssl = off\n"));
        assert_null(strstr(b, "ssl_cert_file"));
        assert_non_null(strstr(b, "\nport = 5432\n"));
}

static void test_hba(void **state) {
        pgconf_input in = input(true);
        _cleanup_free_ char *h = pgconf_hba(&in);

        assert_string_equal(h, "# Managed by infrastream-agent: rewritten on every apply, do not edit.\n"
                               "# TYPE  DATABASE  USER  ADDRESS  METHOD\n"
                               "local   all       all         peer map=infrastream\n"
                               "hostssl \"accounts-db\" \"auth-api\" 10.99.0.3/32 scram-sha-256\n"
                               "hostssl \"accounts-db\" \"auth-api\" fd00::3/128 scram-sha-256\n"
                               "hostssl \"accounts-db\" \"we \"\"quote\"\"\" 10.99.0.4/32 scram-sha-256\n");
        /* Before a certificate exists there is no TCP listener: no host lines of any kind (PostgreSQL
         * flags hostssl lines as errors while ssl is off). */
        in = input(false);
        free(h);
        h = pgconf_hba(&in);
        assert_string_equal(h, "# Managed by infrastream-agent: rewritten on every apply, do not edit.\n"
                               "# TYPE  DATABASE  USER  ADDRESS  METHOD\n"
                               "local   all       all         peer map=infrastream\n"
                               "# 2 grant(s) waiting for the server certificate\n");
}

/* clusterSize > 1: the other members may open replication connections (over TLS, SCRAM); a
 * standby's managed file carries its conninfo and slot, never a password. */
static void test_replication(void **state) {
        doc_member members[] = { { .host = "db1", .address = "10.99.0.2" }, { .host = "db2", .address = "fd00::5" },
                                 { .host = "db3", .address = "10.99.0.6" } };
        doc_replication rep = { .role = DOC_REPLICA_STANDBY, .primary = "db1", .members = members, .n_members = 3 };
        doc_database db = DB;
        pgconf_input in = input(true);
        _cleanup_free_ char *h = NULL, *m = NULL, *m1 = NULL;

        db.replication = &rep;
        in.db = &db;
        in.host = "db3";
        in.primary_conninfo = "host='db.example' passfile='/srv/it''s/replication.pass'";
        in.primary_slot_name = "infrastream_db3";
        h = pgconf_hba(&in);
        assert_non_null(strstr(h, "\nhostssl replication \"infrastream_replication\" 10.99.0.2/32 scram-sha-256\n"));
        assert_non_null(strstr(h, "\nhostssl replication \"infrastream_replication\" fd00::5/128 scram-sha-256\n"));
        assert_null(strstr(h, "10.99.0.6"));
        m = pgconf_managed(&in);
        assert_non_null(strstr(m, "\n# replication: a hot standby of 'db1'\n"
                                  "primary_conninfo = 'host=''db.example'' passfile=''/srv/it''''s/replication.pass'''\n"
                                  "primary_slot_name = 'infrastream_db3'\nhot_standby = on\n"));
        /* The primary: no conninfo; no TLS yet: no replication lines either. */
        in.primary_conninfo = NULL;
        m1 = pgconf_managed(&in);
        assert_null(strstr(m1, "primary_conninfo"));
        in = input(false);
        in.db = &db;
        free(h);
        h = pgconf_hba(&in);
        assert_null(strstr(h, "replication"));
}

static void test_ident(void **state) {
        pgconf_input in = input(false);
        _cleanup_free_ char *i = pgconf_ident(&in);
        assert_non_null(strstr(i, "\ninfrastream    postgres    postgres\n"));
        assert_non_null(strstr(i, "\ninfrastream    root    postgres\n"));
}

static void test_unit_verifies(void **state) {
        agent_config cfg = { .os_user = "postgres", .postgres_bin_dir = "/usr/lib/postgresql/15/bin",
                             .data_root = "/var/lib/infrastream/data" };
        cluster_paths p = {};
        char dir[] = "/tmp/test-unit.XXXXXX", cmd[512];
        _cleanup_free_ char *text = NULL, *name = service_unit_name("accounts-db"), *path = NULL;
        FILE *f;
        int status;

        if (access("/usr/bin/systemd-analyze", X_OK) < 0 || access("/usr/lib/postgresql/15/bin/postgres", X_OK) < 0) {
                skip(); /* needs systemd-analyze and the server binary the unit names */
        }
        cluster_paths_init(&p, &cfg, "accounts-db");
        text = service_unit_text(&cfg, &DB, &p);
        assert_non_null(strstr(text, "\nCPUQuota=400%\n"));
        assert_non_null(strstr(text, "\nType=notify\n"));
        assert_non_null(strstr(text, "\nExecStart=/usr/lib/postgresql/15/bin/postgres -D /var/lib/infrastream/data/accounts-db/data\n"));
        /* Read-only but for its own directory; no backups, no repository. */
        assert_non_null(strstr(text, "\nProtectSystem=strict\nReadWritePaths=\"/var/lib/infrastream/data/accounts-db\"\n"));
        assert_non_null(strstr(text, "\nCapabilityBoundingSet=\n"));
        assert_null(strstr(text, "MemoryDenyWriteExecute")); /* jit = on */
        {
                /* Archiving to a local repository: it may write there too ('-': a missing one does
                 * not keep the database down). In S3, nothing local. */
                doc_database b = DB;
                agent_config c = cfg;
                _cleanup_free_ char *t = NULL, *t3 = NULL, *repo = NULL;
                b.backup = (doc_backup) { .enabled = true, .passphrase = "pass", .schedule = "daily" };
                c.backup_root = "/var/lib/infrastream/backup";
                t = service_unit_text(&c, &b, &p);
                assert_non_null(strstr(t, "\nReadWritePaths=\"/var/lib/infrastream/data/accounts-db\" "
                                          "-\"/var/lib/infrastream/backup/accounts-db\"\n"));
                repo = service_repository_path(&c, &b);
                assert_string_equal(repo, "/var/lib/infrastream/backup/accounts-db");
                c.backup_s3_bucket = "bucket";
                t3 = service_unit_text(&c, &b, &p);
                assert_non_null(strstr(t3, "\nReadWritePaths=\"/var/lib/infrastream/data/accounts-db\"\n"));
                assert_null(service_repository_path(&c, &b));
        }
        assert_non_null(mkdtemp(dir));
        path = xasprintf("%s/%s", dir, name);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        /* Any output at all (unknown keys are only warnings) counts as a failure. */
        snprintf(cmd, sizeof(cmd), "cd %s && out=$(systemd-analyze verify --man=no '%s' 2>&1); rc=$?; "
                                   "echo \"$out\" >&2; [ $rc -eq 0 ] && [ -z \"$out\" ]", dir, path);
        status = system(cmd);
        unlink(path);
        rmdir(dir);
        cluster_paths_done(&p);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_tuning),   cmocka_unit_test(test_managed), cmocka_unit_test(test_managed_tls),
                cmocka_unit_test(test_hba),      cmocka_unit_test(test_ident),
                cmocka_unit_test(test_replication),
                cmocka_unit_test(test_unit_verifies),
        };
        return cmocka_run_group_tests_name("pgconf", tests, NULL, NULL);
}
