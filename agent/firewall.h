/* The firewall reconciler: one nftables table, `inet infrastream`, that lets each database's
 * granted clients reach its port and drops everyone else there. Observe → compare → one batch;
 * nothing else in the ruleset is ever touched. */
#pragma once

#include "config.h"
#include "document.h"
#include "nft.h"
#include "results.h"

/* In the state directory: what the agent last committed, the generation id that commit produced
 * and the table's nonce. While the kernel still reports that generation and our table carries
 * that nonce, nothing in the ruleset has changed since, and the sets' elements (slow to dump:
 * the kernel walks the whole set for every 32 KiB of reply) need not be read back. */
#define FIREWALL_CACHE_FILE "firewall.cache"

/* Converge the table to the document: results `firewall <db>: unchanged | created | changed |
 * removed | failed`. Returns 0 when the table is as the document wants it, or a negative errno
 * after recording failed results (the kernel applied nothing: batches are all or nothing). */
int firewall_reconcile(const agent_config *cfg, const doc_document *d, results *res);
/* The same on a socket the caller keeps: a long-lived one, or a benchmark's that times closing it
 * apart (closing a netlink socket soon after a commit that deleted anything waits for the kernel
 * to free what was deleted: one RCU grace period, 5-15 ms). */
int firewall_reconcile_on(nft_socket *sock, const agent_config *cfg, const doc_document *d, results *res);

/* The document's databases as the table needs them: allow-lists parsed and normalised, sorted
 * by name. -EINVAL with a message naming the database and entry for anything not a CIDR. */
int firewall_desired(const doc_document *d, fw_db **ret, size_t *ret_n, char **ret_error, const char **ret_bad_db);
void firewall_dbs_free(fw_db *dbs, size_t n);

/* "+N -M addresses": N and M count CIDR prefixes (the smallest list covering each side), so a
 * host added next to another counts as one address added, whatever the merged ranges became. */
void firewall_count_changes(fw_family f, const fw_ranges *old, const fw_ranges *new, size_t *ret_added,
                            size_t *ret_removed);
