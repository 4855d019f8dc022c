/* nftables through libnftnl and libmnl: the only file that includes their headers. Three parts,
 * kept apart so the first two need no root: the address model (CIDRs parsed into ranges and
 * normalised), batch building (netlink messages into memory; tests parse them back), and the
 * socket (send one batch, map the kernel's errors back to what caused them, read our table back
 * into plain structs). No policy here: firewall.c decides what goes into a batch. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define NFT_TABLE "infrastream" /* family inet; the agent never touches any other table */
#define NFT_CHAIN "input"
#define NFT_NONCE_SIZE 16
#define NFT_TABLE_COMMENT "managed by infrastream-agent: edits are reverted on the next apply"

/* --- addresses ------------------------------------------------------------------------------ */

typedef unsigned __int128 fw_addr; /* an IPv4 address lives in the low 32 bits */

typedef enum fw_family {
        FW_V4,
        FW_V6,
        FW_FAMILY_MAX,
} fw_family;

typedef struct fw_range {
        fw_addr lo, hi; /* inclusive */
} fw_range;

typedef struct fw_ranges {
        fw_range *v;
        size_t n, alloc;
} fw_ranges;

typedef struct fw_prefix {
        fw_addr addr;
        uint8_t len;
} fw_prefix;

fw_addr fw_family_max(fw_family f);
/* "10.0.0.0/8", "fd00::1", "fd00::/64": -EINVAL unless the whole string is one address with an
 * optional prefix length. Host bits below the prefix are cleared (as pg_hba does). */
int fw_parse_cidr(const char *s, fw_family *ret_family, fw_range *ret_range);
void fw_ranges_reserve(fw_ranges *r, size_t n);
void fw_ranges_push(fw_ranges *r, fw_range x);
/* Sort and drop duplicates, merging nothing: the form of a plain (hash) set of host addresses,
 * where adjacent hosts stay separate elements. */
void fw_ranges_unique(fw_ranges *r);
/* Sort, then merge overlapping and adjacent ranges: the form the kernel's interval set needs
 * (it refuses overlaps) and the one every comparison uses. */
void fw_ranges_normalise(fw_ranges *r);
bool fw_ranges_equal(const fw_ranges *a, const fw_ranges *b);
/* Both normalised: ranges only in old (to delete) and only in new (to add), exactly as the
 * kernel holds them, so a grant added or removed touches only its own elements. */
void fw_ranges_diff(const fw_ranges *old, const fw_ranges *new, fw_ranges *ret_del, fw_ranges *ret_add);
void fw_ranges_done(fw_ranges *r);
/* The smallest list of CIDR prefixes covering normalised ranges, in order. */
size_t fw_ranges_prefixes(fw_family f, const fw_ranges *r, fw_prefix **ret);
char *fw_prefix_to_string(fw_family f, const fw_prefix *p);
char *fw_addr_to_string(fw_family f, fw_addr a);

/* A database's four sets. Hosts (/32, /128 grants: the common case) go into plain hash sets,
 * whose commit costs only the elements it changes; real networks go into interval sets (the
 * kernel's rbtree, whose commit walks the whole set), which stay small. In rule order. */
typedef enum fw_set {
        FW_SET_H4, /* <db>-h4: ipv4_addr, single addresses */
        FW_SET_N4, /* <db>-n4: ipv4_addr, flags interval */
        FW_SET_H6,
        FW_SET_N6,
        FW_SET_MAX,
} fw_set;

fw_family fw_set_family(fw_set s);
bool fw_set_hosts(fw_set s);
const char *fw_set_suffix(fw_set s); /* "h4", "n4", "h6", "n6" */

/* One database's share of the table: its four sets and five rules. */
typedef struct fw_db {
        char *name;
        uint16_t port;
        fw_ranges allow[FW_SET_MAX]; /* hosts: single-address ranges, unique; networks: normalised */
} fw_db;

void fw_db_done(fw_db *db);
char *nft_set_name(const char *db, fw_set s);

/* --- batches ---------------------------------------------------------------------------------- */

typedef struct nft_batch nft_batch;

/* genid != 0: the kernel refuses the whole batch (ERESTART) if the ruleset changed since that
 * generation was observed. */
nft_batch *nft_batch_new(uint32_t genid);
void nft_batch_free(nft_batch *b);
void nft_batch_freep(nft_batch **b);
void nft_batch_del_table(nft_batch *b);
void nft_batch_add_table(nft_batch *b, const uint8_t nonce[NFT_NONCE_SIZE]);
/* type filter hook input priority filter; policy accept */
void nft_batch_add_chain(nft_batch *b);
/* The four sets of db (hash sets and interval sets of ipv4_addr / ipv6_addr) with their elements. */
void nft_batch_add_sets(nft_batch *b, const fw_db *db);
void nft_batch_del_set(nft_batch *b, const char *db, fw_set s);
/* tcp dport P ip saddr @<db>-h4 accept, … @<db>-n4 accept, … ip6 saddr @<db>-h6 accept, …
 * @<db>-n6 accept, tcp dport P drop; each with the database's name as comment, appended to the
 * chain. */
void nft_batch_add_rules(nft_batch *b, const fw_db *db);
void nft_batch_del_rule(nft_batch *b, const char *db, uint64_t handle);
/* Hash sets: one element per range (each a single address); interval sets: start and end. */
void nft_batch_elements(nft_batch *b, const char *db, fw_set s, const fw_ranges *r, bool add);
/* Close the batch; returns the number of messages between begin and end (0: nothing to send). */
size_t nft_batch_end(nft_batch *b);
/* The built bytes, for sending and for tests (valid until the batch is freed). */
size_t nft_batch_iovec(nft_batch *b, struct iovec **ret);

/* --- the kernel ---------------------------------------------------------------------------- */

typedef struct nft_socket nft_socket;

int nft_socket_open(nft_socket **ret);
void nft_socket_close(nft_socket *s);
void nft_socket_closep(nft_socket **s);
/* Time this socket's batches spent in the kernel (sendmsg and reading the acks), for figures. */
double nft_socket_commit_ms(const nft_socket *s);

/* What went wrong with one message of a batch, mapped back to what it was for. */
typedef struct nft_error {
        int error;          /* positive errno */
        const char *object; /* "batch", "table", "chain", "set", "elements", "rule" */
        char *db;           /* NULL: table-wide */
        fw_set set;         /* sets and elements */
        fw_family family;   /* the set's */
        bool has_element;   /* the kernel pointed at one element (extended ack) */
        bool element_end;   /* ... the end of an interval: element is one past its last address */
        fw_addr element;
} nft_error;

void nft_errors_free(nft_error *e, size_t n);

/* The errors in a buffer of netlink acks, mapped back through the batch they answer: which
 * database, which set, which element (from the extended ack's attribute offset). */
void nft_batch_collect_errors(nft_batch *b, const void *buf, size_t size, nft_error **errors, size_t *n_errors);

/* Send a closed batch and collect the kernel's verdict: 0 when it committed, -EIO with the
 * per-message errors in *ret (all of them: the kernel keeps checking after the first), or
 * another negative errno when the socket failed. */
int nft_send(nft_socket *s, nft_batch *b, nft_error **ret, size_t *ret_n);

/* The accept kinds are in fw_set order: kind k < NFT_RULE_DROP looks up set (fw_set) k. */
typedef enum nft_rule_kind {
        NFT_RULE_ACCEPT_H4,
        NFT_RULE_ACCEPT_N4,
        NFT_RULE_ACCEPT_H6,
        NFT_RULE_ACCEPT_N6,
        NFT_RULE_DROP,
        NFT_RULE_OTHER, /* anything we never make */
} nft_rule_kind;

typedef struct nft_live_chain {
        char *name;
        bool ours; /* base chain: type filter hook input priority filter policy accept */
} nft_live_chain;

typedef struct nft_live_set {
        char *name;
        char *db;          /* from the name <db>-h4/-n4/-h6/-n6; NULL for other names */
        fw_set set;
        fw_family family;
        bool ours;         /* the definition we make (key type, length, flags, no data) */
        bool elements_read;
        bool elements_bad; /* elements that do not form intervals (or, in a hash set, carry flags) */
        fw_ranges elements; /* the kernel's intervals (hash sets: single addresses), sorted, as they
                             * are (adjacent ones unmerged) */
} nft_live_set;

typedef struct nft_live_rule {
        char *chain;
        uint64_t handle;
        char *db;          /* the rule's comment */
        nft_rule_kind kind;
        uint16_t port;
} nft_live_rule;

typedef struct nft_live {
        uint32_t genid;    /* everything below was read at this ruleset generation */
        bool table;
        bool table_dormant;
        uint32_t table_flags;
        uint32_t table_use; /* chains + sets + objects + flowtables, as the kernel counts */
        bool has_nonce;
        uint8_t nonce[NFT_NONCE_SIZE];
        nft_live_chain *chains;
        size_t n_chains;
        nft_live_set *sets;
        size_t n_sets;
        nft_live_rule *rules;
        size_t n_rules;
} nft_live;

int nft_genid(nft_socket *s, uint32_t *ret);
/* Our table, its chains, sets (without elements) and rules, consistent at one generation. */
int nft_observe(nft_socket *s, nft_live *ret, char **ret_error);
/* The elements of one set: -EINTR when the ruleset changed since genid (observe again). */
int nft_observe_elements(nft_socket *s, uint32_t genid, nft_live_set *set, char **ret_error);
void nft_live_done(nft_live *l);

/* The generation a successful batch observed at genid leads to. */
static inline uint32_t nft_genid_next(uint32_t genid) {
        return genid + 1 == 0 ? 1 : genid + 1;
}
