/* Generated PostgreSQL configuration. Output is deterministic: same input, same bytes, so an
 * unchanged document rewrites nothing. */
#include <stdarg.h>
#include <stdio.h>

#include "macro.h"
#include "pgconf.h"
#include "strbuf.h"

#define KB(x) ((uint64_t) (x) >> 10)
#define MB_IN_KB 1024ULL
#define GB_IN_KB (1024ULL * 1024ULL)

static uint64_t clamp_u64(uint64_t v, uint64_t lo, uint64_t hi) {
        return v < lo ? lo : v > hi ? hi : v;
}
static int clamp_int(int v, int lo, int hi) {
        return v < lo ? lo : v > hi ? hi : v;
}

void pg_tuning_compute(int cpu_count, uint64_t memory_bytes, pg_tuning *t) {
        uint64_t ram_kb = KB(memory_bytes);

        if (ram_kb < 256 * MB_IN_KB)
                ram_kb = 256 * MB_IN_KB;
        /* Zalando's operator: shared_buffers = RAM/5 — leaves room for the page cache. */
        t->shared_buffers_kb = clamp_u64(ram_kb / 5, 32 * MB_IN_KB, 64 * GB_IN_KB);
        t->effective_cache_size_kb = ram_kb * 3 / 4;
        t->maintenance_work_mem_kb = clamp_u64(ram_kb / 16, 64 * MB_IN_KB, 2 * GB_IN_KB);
        t->max_connections = clamp_int(25 * cpu_count, 100, 500);
        t->max_worker_processes = clamp_int(cpu_count, 8, 256);
        t->max_parallel_workers = clamp_int(cpu_count, 2, 256);
        t->max_parallel_workers_per_gather = clamp_int(cpu_count / 2, 1, 4);
        t->max_parallel_maintenance_workers = clamp_int(cpu_count / 2, 1, 4);
        /* What is left after shared buffers, spread over every connection's sorts (3 each) and
         * parallel workers, as pgtune does; never under PostgreSQL's default of 4 MB. */
        t->work_mem_kb = clamp_u64((ram_kb - t->shared_buffers_kb) /
                                           ((uint64_t) t->max_connections * 3 * (uint64_t) t->max_parallel_workers_per_gather),
                                   4 * MB_IN_KB, 1 * GB_IN_KB);
}

/* A value inside single quotes in postgresql.conf: quotes doubled. */
static void pg_quoted(strbuf *b, const char *v) {
        strbuf_printf(b, "'");
        for (const char *p = v; *p; p++)
                if (*p == '\'')
                        strbuf_append(b, "''");
                else
                        strbuf_printf(b, "%c", *p);
        strbuf_printf(b, "'");
}

char *pgconf_managed(const pgconf_input *in) {
        strbuf b = {};
        pg_tuning t;

        pg_tuning_compute(in->db->cpu_count, in->memory_bytes, &t);
        strbuf_printf(&b, "# Managed by infrastream-agent: rewritten on every apply, do not edit.\n");
        strbuf_printf(&b, "# database '%s', %d CPUs, %llu MiB of host memory\n\n", in->db->name, in->db->cpu_count,
                  (unsigned long long) (in->memory_bytes >> 20));
        if (!in->tls) {
                /* No certificate yet: no TCP listener at all, not even one that would refuse. */
                strbuf_printf(&b, "# no server certificate installed yet: Unix socket only, no TCP\n");
                strbuf_printf(&b, "listen_addresses = ''");
        } else if (in->n_listen == 0) {
                strbuf_printf(&b, "listen_addresses = ");
                pg_quoted(&b, "localhost");
        } else {
                strbuf l = {};
                strbuf_printf(&b, "listen_addresses = ");
                for (size_t i = 0; i < in->n_listen; i++)
                        strbuf_printf(&l, "%s%s", i ? "," : "", in->listen_addresses[i]);
                pg_quoted(&b, l.s);
                strbuf_done(&l);
        }
        strbuf_printf(&b, "\nport = %d\n", in->db->port);
        strbuf_printf(&b, "unix_socket_directories = ");
        pg_quoted(&b, in->socket_dir);
        strbuf_printf(&b, "\nunix_socket_permissions = 0700\n");
        strbuf_printf(&b, "password_encryption = 'scram-sha-256'\n");
        if (in->tls) {
                /* All sighup settings since PostgreSQL 10: a renewed certificate is a reload. */
                strbuf_printf(&b, "\n# TLS: pg_hba.conf admits TCP clients only over hostssl\n");
                strbuf_printf(&b, "# certificate: %s\n", in->tls->cert_id);
                strbuf_printf(&b, "ssl = on\nssl_cert_file = ");
                pg_quoted(&b, in->tls->cert_file);
                strbuf_printf(&b, "\nssl_key_file = ");
                pg_quoted(&b, in->tls->key_file);
                strbuf_printf(&b, "\nssl_ca_file = ");
                pg_quoted(&b, in->tls->ca_file);
                strbuf_printf(&b, "\nssl_min_protocol_version = 'TLSv1.2'\n");
        } else
                strbuf_printf(&b, "ssl = off\n");
        if (in->archive_command) {
                /* archive_mode needs a restart: the cluster reconciler sees pending_restart. */
                strbuf_printf(&b, "\n# backups: every WAL segment goes to pgBackRest's repository\n");
                strbuf_printf(&b, "archive_mode = on\narchive_command = ");
                pg_quoted(&b, in->archive_command);
                strbuf_printf(&b, "\n");
        }
        if (in->primary_conninfo) {
                /* The password is in the passfile the conninfo names, never here. */
                strbuf_printf(&b, "\n# replication: a hot standby of '%s'\nprimary_conninfo = ",
                              strempty(in->db->replication ? in->db->replication->primary : NULL));
                pg_quoted(&b, in->primary_conninfo);
                strbuf_printf(&b, "\nprimary_slot_name = ");
                pg_quoted(&b, strempty(in->primary_slot_name));
                strbuf_printf(&b, "\nhot_standby = on\n");
        }
        strbuf_printf(&b, "\n# logging: to files in the data directory; statements are never logged (they can carry\n"
                      "# password verifiers)\n");
        strbuf_printf(&b, "logging_collector = on\nlog_directory = 'log'\nlog_filename = 'postgresql-%%a.log'\n"
                      "log_truncate_on_rotation = on\nlog_rotation_age = 1d\nlog_rotation_size = 0\n"
                      "log_line_prefix = '%%m [%%p] %%q%%u@%%d '\nlog_connections = on\nlog_disconnections = on\n"
                      "log_statement = 'none'\nlog_min_duration_statement = -1\n");
        strbuf_printf(&b, "\n# tuning\n");
        strbuf_printf(&b, "shared_buffers = %lluMB\n", (unsigned long long) (t.shared_buffers_kb / 1024));
        strbuf_printf(&b, "effective_cache_size = %lluMB\n", (unsigned long long) (t.effective_cache_size_kb / 1024));
        strbuf_printf(&b, "work_mem = %lluMB\n", (unsigned long long) (t.work_mem_kb / 1024));
        strbuf_printf(&b, "maintenance_work_mem = %lluMB\n", (unsigned long long) (t.maintenance_work_mem_kb / 1024));
        strbuf_printf(&b, "max_connections = %d\n", t.max_connections);
        strbuf_printf(&b, "max_worker_processes = %d\n", t.max_worker_processes);
        strbuf_printf(&b, "max_parallel_workers = %d\n", t.max_parallel_workers);
        strbuf_printf(&b, "max_parallel_workers_per_gather = %d\n", t.max_parallel_workers_per_gather);
        strbuf_printf(&b, "max_parallel_maintenance_workers = %d\n", t.max_parallel_maintenance_workers);
        return strbuf_steal(&b);
}

/* A name in pg_hba.conf: always double-quoted, so "all", "+group" or "@file" stay literal names;
 * a double quote inside is written twice (hba.c: "Literal double-quote is two double-quotes"). */
static void hba_quoted(strbuf *b, const char *v) {
        strbuf_append(b, "\"");
        for (const char *p = v; *p; p++)
                strbuf_append(b, *p == '"' ? "\"\"" : (char[]) { *p, '\0' });
        strbuf_append(b, "\"");
}

char *pgconf_hba(const pgconf_input *in) {
        strbuf b = {};

        strbuf_printf(&b, "# Managed by infrastream-agent: rewritten on every apply, do not edit.\n"
                      "# TYPE  DATABASE  USER  ADDRESS  METHOD\n");
        /* The OS superuser (and root, mapped in pg_ident.conf) over the Unix socket; nothing else local. */
        strbuf_printf(&b, "local   all       all         peer map=infrastream\n");
        if (!in->tls && in->db->n_roles > 0) {
                /* No certificate, no TCP listener: hostssl lines could not match, and PostgreSQL flags
                 * every one of them as an error while ssl is off. They come with the certificate. */
                strbuf_printf(&b, "# %zu grant(s) waiting for the server certificate\n", in->db->n_roles);
                return strbuf_steal(&b);
        }
        for (size_t i = 0; i < in->db->n_roles; i++) {
                const doc_role *r = &in->db->roles[i];
                for (size_t j = 0; j < r->n_clients; j++) {
                        strbuf_printf(&b, "hostssl ");
                        hba_quoted(&b, in->db->name);
                        strbuf_append(&b, " ");
                        hba_quoted(&b, r->name);
                        strbuf_printf(&b, " %s scram-sha-256\n", r->clients[j]);
                }
        }
        /* Every member admits the others' replication connections (the standbys' today, the
         * primary's after a switchover); no one else. */
        for (size_t i = 0; in->tls && in->db->replication && i < in->db->replication->n_members; i++) {
                const doc_member *m = &in->db->replication->members[i];
                if (streq_ptr(m->host, in->host))
                        continue;
                strbuf_printf(&b, "hostssl replication \"" DOC_REPLICATION_USER "\" %s/%d scram-sha-256\n", m->address,
                              strchr(m->address, ':') ? 128 : 32);
        }
        return strbuf_steal(&b);
}

char *pgconf_ident(const pgconf_input *in) {
        strbuf b = {};
        strbuf_printf(&b, "# Managed by infrastream-agent: rewritten on every apply, do not edit.\n"
                      "# MAPNAME      SYSTEM-USERNAME  PG-USERNAME\n");
        strbuf_printf(&b, "infrastream    %s    postgres\n", in->os_user);
        strbuf_printf(&b, "infrastream    root    postgres\n");
        return strbuf_steal(&b);
}
