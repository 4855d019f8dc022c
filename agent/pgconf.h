/* The configuration files the agent owns in a cluster's data directory: the managed include
 * (listen address, port, auth, TLS, logging, tuning), pg_hba.conf and pg_ident.conf. Pure text
 * generation, so every rule is unit-testable. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "document.h"

#define PGCONF_MANAGED_FILE "infrastream.conf"

typedef struct pg_tuning {
        uint64_t shared_buffers_kb;
        uint64_t effective_cache_size_kb;
        uint64_t work_mem_kb;
        uint64_t maintenance_work_mem_kb;
        int max_connections;
        int max_worker_processes;
        int max_parallel_workers;
        int max_parallel_workers_per_gather;
        int max_parallel_maintenance_workers;
} pg_tuning;

/* Tuning from the database's cpuCount and the host's memory (formulas in the README). */
void pg_tuning_compute(int cpu_count, uint64_t memory_bytes, pg_tuning *ret);

/* The server certificate PostgreSQL serves. Without one it listens on no TCP address at all. */
typedef struct pgconf_tls {
        const char *cert_file, *key_file, *ca_file;
        const char *cert_id;      /* "serial ..., sha256 ...": a comment in the managed file, so a new
                                   * certificate changes the file and the apply reloads */
} pgconf_tls;

typedef struct pgconf_input {
        const doc_database *db;
        const char *const *listen_addresses;
        size_t n_listen;
        const char *socket_dir;
        uint64_t memory_bytes;
        const char *os_user;
        const pgconf_tls *tls;    /* NULL: no certificate yet, Unix socket only */
        const char *archive_command; /* backups enabled: WAL archiving with this command; NULL: none */
        const char *host;         /* this host's name: the other members get replication lines */
        const char *primary_conninfo; /* a standby's connection to its primary; NULL: not a standby */
        const char *primary_slot_name;
} pgconf_input;

char *pgconf_managed(const pgconf_input *in);
char *pgconf_hba(const pgconf_input *in);
char *pgconf_ident(const pgconf_input *in);
