/* The cluster reconciler: one PostgreSQL cluster per database — initdb when new, the config
 * files the agent owns, the service running, reload or restart only when settings changed. */
#pragma once

#include "config.h"
#include "document.h"
#include "pgconf.h"
#include "results.h"

/* Converge db's cluster. tls is the certificate to serve, or NULL when none is ready: then the
 * cluster listens on its Unix socket only. A new certificate changes the managed file and is
 * picked up by a reload; going from no certificate to one (TCP listeners) is a restart. Returns
 * 0 when the cluster is up and configured (results say what changed), or a negative errno after
 * recording a failed result. */
int postgres_reconcile(const agent_config *cfg, const doc_database *db, const pgconf_tls *tls, results *res);

/* A database no longer in the document: stop its cluster, keep every byte. */
int postgres_retain(const agent_config *cfg, const char *db, results *res);

/* Names of the databases whose clusters exist under the data root. */
int postgres_list_clusters(const agent_config *cfg, char ***ret, size_t *ret_n);

/* The host's memory for tuning: the config's value, else /proc/meminfo. */
uint64_t host_memory_bytes(const agent_config *cfg);
/* The CPUs this host offers: the config's cpus, else the online CPUs. */
int host_cpus(const agent_config *cfg);
