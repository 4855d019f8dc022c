/* The manifest model: Database and Application documents parsed from YAML trees and
 * validated field by field, with the location of every value kept for error messages. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "diag.h"
#include "yaml-tree.h"

#define MANIFEST_API_VERSION "lowops.manifests.v1"
#define NAME_MAX_LEN 63

typedef struct mloc {
        const char *path;
        int line, col;
} mloc;

typedef struct identity {
        const char *organization;
        const char *organizational_unit;
        const char *environment;
        const char *project;
} identity;

typedef struct m_database {
        const char *name;
        identity id;
        mloc loc;             /* the document */
        mloc name_loc;        /* metadata.name */
        int cpu_count;
        int cluster_size;
        bool backup_enabled;
        const char *schedule;
        mloc schedule_loc;
        int retention_days;
        int postgres_version;
} m_database;

typedef struct m_grant {
        const char *database;
        bool read_only;
        const char *env_var;
        mloc loc, name_loc, env_loc;
        long db;              /* index into manifest_set.dbs after resolution, -1 before */
} m_grant;

typedef struct m_application {
        const char *name;
        identity id;
        mloc loc, name_loc;
        m_grant *grants;
        size_t n_grants;
        const char **hosts;
        mloc *host_locs;
        size_t n_hosts;
        const char *unit;
} m_application;

typedef struct manifest_set {
        arena arena;          /* the model's strings and arrays; nothing points into parse trees */
        strpool ids;          /* identity parts, interned: equal parts have equal pointers */
        strpool schedules;    /* backup schedules that parsed */
        m_database *dbs;
        size_t n_dbs, dbs_alloc;
        m_application *apps;
        size_t n_apps, apps_alloc;
        size_t n_yaml_files, n_ignored;
} manifest_set;

void manifest_set_init(manifest_set *s);
void manifest_set_done(manifest_set *s);

/* Load every manifest below root into s. Errors and warnings go to diags; returns -errno only
 * when the repository itself cannot be read. */
int manifest_load_repo(manifest_set *s, const char *root, diag_list *diags);
/* Parse one file's content (path is for messages); used by the loader and the fuzz target. */
void manifest_load_buffer(manifest_set *s, const char *path, const char *data, size_t size, diag_list *diags);

bool valid_dns_label(const char *s);
bool valid_env_var(const char *s);
/* "fincorp/retail-banking/development/login-svc" */
void identity_format(const identity *id, char *buf, size_t size);
int identity_cmp(const identity *a, const identity *b);
