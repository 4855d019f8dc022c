/* The one file that talks nf_tables: libnftnl builds and parses the objects, libmnl carries them.
 * Learned from nftables' src/mnl.c (batches, extended acks, generation checks) and libnftnl's
 * examples; the shapes of our rules are what `nft` itself generates for the same text, so
 * `nft list` prints them as an operator would write them. */
#include <netinet/in.h>
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <sys/socket.h>
#include <time.h>

#include <libmnl/libmnl.h>
#include <libnftnl/batch.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/gen.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "macro.h"
#include "nft.h"
#include "strbuf.h"

/* nft's datatype numbers (nftables include/datatype.h): the kernel stores them for `nft list`. */
#define NFT_TYPE_IPADDR 7
#define NFT_TYPE_IP6ADDR 8
#define NFT_BYTEORDER_BIG_ENDIAN 2
/* Our private table userdata type, next to the comment (type 0) that nft prints; nft ignores
 * types it does not know. Holds the nonce that ties firewall.c's cache to this very table. */
#define NFT_UDATA_TABLE_NONCE 0xa5

/* nft's batch geometry: 2 MiB pages, and room for the largest message (an element list's nest
 * length is 16 bits) past the page end. */
#define BATCH_PAGE_SIZE (2u * 1024u * 1024u)
#define MSG_MAX_SIZE (UINT16_MAX + 4096u)
/* Start a new element message before the element nest could overflow its 16-bit length. */
#define ELEMENTS_NEST_LIMIT (UINT16_MAX - 512u)
#define RECV_BUF_SIZE (64u * 1024u)

DEFINE_TRIVIAL_CLEANUP_FUNC(struct nftnl_rule *, nftnl_rule_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nftnl_set *, nftnl_set_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nftnl_table *, nftnl_table_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nftnl_chain *, nftnl_chain_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nftnl_set_elem *, nftnl_set_elem_free)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct nftnl_udata_buf *, nftnl_udata_buf_free)

static void *check_alloc(void *p) {
        if (!p) {
                fputs("fatal: out of memory\n", stderr);
                abort();
        }
        return p;
}

/* --- addresses ------------------------------------------------------------------------------ */

static unsigned family_bits(fw_family f) {
        return f == FW_V4 ? 32 : 128;
}

fw_addr fw_family_max(fw_family f) {
        return f == FW_V4 ? (fw_addr) UINT32_MAX : ~(fw_addr) 0;
}

static void addr_to_bytes(fw_family f, fw_addr a, uint8_t *out) {
        for (int i = (int) family_bits(f) / 8 - 1; i >= 0; i--) {
                out[i] = (uint8_t) a;
                a >>= 8;
        }
}

static fw_addr addr_from_bytes(const uint8_t *in, size_t n) {
        fw_addr a = 0;
        for (size_t i = 0; i < n; i++)
                a = a << 8 | in[i];
        return a;
}

/* A dotted quad as strict as inet_pton(AF_INET) (four decimal octets, no leading zeros), up to
 * the end of s or a '/'. Inline because a document can carry 100,000 of them and this is most of
 * the time spent reading it. Returns the characters used, 0 when it is not one. */
static size_t parse_v4(const char *s, uint8_t out[4]) {
        size_t i = 0;

        for (int octet = 0; octet < 4; octet++) {
                unsigned v = 0, digits = 0;
                if (octet > 0) {
                        if (s[i] != '.')
                                return 0;
                        i++;
                }
                while (s[i] >= '0' && s[i] <= '9') {
                        if (digits > 0 && v == 0)
                                return 0; /* leading zero */
                        v = v * 10 + (unsigned) (s[i++] - '0');
                        if (++digits > 3 || v > 255)
                                return 0;
                }
                if (digits == 0)
                        return 0;
                out[octet] = (uint8_t) v;
        }
        return s[i] == '\0' || s[i] == '/' ? i : 0;
}

int fw_parse_cidr(const char *s, fw_family *ret_family, fw_range *ret_range) {
        char buf[INET6_ADDRSTRLEN];
        const char *slash;
        uint8_t bytes[16];
        unsigned len, bits;
        size_t n = parse_v4(s, bytes);
        fw_family f;
        fw_addr a, host;

        if (n > 0) {
                f = FW_V4;
                slash = s[n] == '/' ? s + n : NULL;
        } else {
                slash = strchr(s, '/');
                n = slash ? (size_t) (slash - s) : strlen(s);
                if (n == 0 || n >= sizeof(buf))
                        return -EINVAL;
                memcpy_safe(buf, s, n);
                buf[n] = 0;
                if (inet_pton(AF_INET6, buf, bytes) != 1)
                        return -EINVAL;
                f = FW_V6;
        }
        bits = len = family_bits(f);
        if (slash) {
                const char *p = slash + 1;
                if (!*p || strlen(p) > 3)
                        return -EINVAL;
                len = 0;
                for (; *p; p++) {
                        if (*p < '0' || *p > '9')
                                return -EINVAL;
                        len = len * 10 + (unsigned) (*p - '0');
                }
                if (len > bits)
                        return -EINVAL;
        }
        a = addr_from_bytes(bytes, bits / 8);
        /* Shifting a 128-bit value by 128 is undefined: a /0 is everything. */
        host = len == 0 ? fw_family_max(f) : ((fw_addr) 1 << (bits - len)) - 1;
        *ret_family = f;
        *ret_range = (fw_range) { .lo = a & ~host & fw_family_max(f), .hi = (a & ~host & fw_family_max(f)) | host };
        return 0;
}

void fw_ranges_reserve(fw_ranges *r, size_t n) {
        if (n > r->alloc) {
                r->alloc = n;
                r->v = xrealloc(r->v, n * sizeof(fw_range));
        }
}

void fw_ranges_push(fw_ranges *r, fw_range x) {
        if (r->n == r->alloc) {
                r->alloc = r->alloc ? r->alloc * 2 : 8;
                r->v = xrealloc(r->v, r->alloc * sizeof(fw_range));
        }
        r->v[r->n++] = x;
}

static int range_cmp(const void *a, const void *b) {
        const fw_range *x = a, *y = b;
        if (x->lo != y->lo)
                return x->lo < y->lo ? -1 : 1;
        if (x->hi != y->hi)
                return x->hi < y->hi ? -1 : 1;
        return 0;
}

/* IPv4 ranges sort by start with an LSD radix sort over 64-bit keys start<<32|end: linear, where
 * qsort() costs ~10 ms at 100,000 ranges. */
/* Stable sort of 64-bit keys by their bytes first..first+passes-1, least significant first. */
static void radix64(uint64_t *v, size_t n, unsigned first, unsigned passes) {
        uint64_t *src = v, *dst, *tmp = xmalloc(n * sizeof(uint64_t));

        dst = tmp;
        for (unsigned p = first; p < first + passes; p++) {
                size_t count[257] = {};
                unsigned shift = 8 * p;
                for (size_t i = 0; i < n; i++)
                        count[((src[i] >> shift) & 0xff) + 1]++;
                for (int k = 0; k < 256; k++)
                        count[k + 1] += count[k];
                for (size_t i = 0; i < n; i++)
                        dst[count[(src[i] >> shift) & 0xff]++] = src[i];
                uint64_t *t = src;
                src = dst;
                dst = t;
        }
        if (src != v)
                memcpy_safe(v, src, n * sizeof(uint64_t));
        free(tmp);
}

static void sort_by_start(fw_range *v, size_t n) {
        fw_addr top = 0;
        unsigned passes = 0;
        bool sorted = true;
        uint64_t *k;

        for (size_t i = 0; i < n; i++) {
                top |= v[i].lo | v[i].hi;
                if (i > 0 && v[i].lo < v[i - 1].lo)
                        sorted = false;
        }
        if (sorted)
                return;
        if (n < 64 || top > UINT32_MAX) {
                /* IPv6, or few: qsort() is fine (IPv6 allow-lists are short in practice). */
                qsort(v, n, sizeof(fw_range), range_cmp);
                return;
        }
        while (passes < 4 && (top >> (8 * passes)) != 0)
                passes++;
        k = xmalloc(n * sizeof(uint64_t));
        for (size_t i = 0; i < n; i++)
                k[i] = (uint64_t) v[i].lo << 32 | (uint64_t) v[i].hi;
        radix64(k, n, 4, passes);
        for (size_t i = 0; i < n; i++)
                v[i] = (fw_range) { .lo = k[i] >> 32, .hi = k[i] & UINT32_MAX };
        free(k);
}

void fw_ranges_normalise(fw_ranges *r) {
        size_t out = 0;

        sort_by_start(r->v, r->n);
        for (size_t i = 0; i < r->n; i++) {
                fw_range x = r->v[i];
                /* Adjacent counts as overlapping: [a,b] and [b+1,c] are one interval to the
                 * kernel (an end element and a start element with the same key would clash). */
                if (out > 0 && (x.lo <= r->v[out - 1].hi ||
                                (r->v[out - 1].hi != ~(fw_addr) 0 && x.lo == r->v[out - 1].hi + 1))) {
                        if (x.hi > r->v[out - 1].hi)
                                r->v[out - 1].hi = x.hi;
                        continue;
                }
                r->v[out++] = x;
        }
        r->n = out;
}

void fw_ranges_unique(fw_ranges *r) {
        size_t out = 0;

        sort_by_start(r->v, r->n);
        for (size_t i = 0; i < r->n; i++)
                if (out == 0 || range_cmp(&r->v[out - 1], &r->v[i]) != 0)
                        r->v[out++] = r->v[i];
        r->n = out;
}

bool fw_ranges_equal(const fw_ranges *a, const fw_ranges *b) {
        return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof(fw_range)) == 0);
}

void fw_ranges_diff(const fw_ranges *old, const fw_ranges *new, fw_ranges *ret_del, fw_ranges *ret_add) {
        size_t i = 0, j = 0;

        while (i < old->n || j < new->n) {
                int c = i == old->n ? 1 : j == new->n ? -1 : range_cmp(&old->v[i], &new->v[j]);
                if (c == 0) {
                        i++;
                        j++;
                } else if (c < 0)
                        fw_ranges_push(ret_del, old->v[i++]);
                else
                        fw_ranges_push(ret_add, new->v[j++]);
        }
}

void fw_ranges_done(fw_ranges *r) {
        free(r->v);
        *r = (fw_ranges) {};
}

static unsigned ctz_addr(fw_addr a, unsigned bits) {
        unsigned n = 0;
        if (a == 0)
                return bits;
        while (!(a & 1)) {
                a >>= 1;
                n++;
        }
        return n < bits ? n : bits;
}

size_t fw_ranges_prefixes(fw_family f, const fw_ranges *r, fw_prefix **ret) {
        unsigned bits = family_bits(f);
        fw_addr max = fw_family_max(f);
        fw_prefix *v = NULL;
        size_t n = 0, alloc = 0;

        for (size_t i = 0; i < r->n; i++) {
                fw_addr lo = r->v[i].lo, hi = r->v[i].hi;
                for (;;) {
                        /* The largest aligned block that starts at lo and stays within hi. */
                        unsigned k = ctz_addr(lo, bits);
                        fw_addr end;
                        while (k > 0 && (k == bits ? !(lo == 0 && hi == max) : lo + (((fw_addr) 1 << k) - 1) > hi))
                                k--;
                        end = k == bits ? max : lo + (((fw_addr) 1 << k) - 1);
                        if (n == alloc) {
                                alloc = alloc ? alloc * 2 : 8;
                                v = xrealloc(v, alloc * sizeof(fw_prefix));
                        }
                        v[n++] = (fw_prefix) { .addr = lo, .len = (uint8_t) (bits - k) };
                        if (end >= hi)
                                break;
                        lo = end + 1;
                }
        }
        *ret = v;
        return n;
}

char *fw_addr_to_string(fw_family f, fw_addr a) {
        char buf[INET6_ADDRSTRLEN];
        uint8_t bytes[16];

        addr_to_bytes(f, a, bytes);
        if (!inet_ntop(f == FW_V4 ? AF_INET : AF_INET6, bytes, buf, sizeof(buf)))
                return xstrdup("?");
        return xstrdup(buf);
}

char *fw_prefix_to_string(fw_family f, const fw_prefix *p) {
        _cleanup_free_ char *a = fw_addr_to_string(f, p->addr);
        return xasprintf("%s/%u", a, p->len);
}

fw_family fw_set_family(fw_set s) {
        return s == FW_SET_H4 || s == FW_SET_N4 ? FW_V4 : FW_V6;
}

bool fw_set_hosts(fw_set s) {
        return s == FW_SET_H4 || s == FW_SET_H6;
}

const char *fw_set_suffix(fw_set s) {
        static const char *const names[FW_SET_MAX] = { "h4", "n4", "h6", "n6" };
        return names[s];
}

void fw_db_done(fw_db *db) {
        free(db->name);
        for (int s = 0; s < FW_SET_MAX; s++)
                fw_ranges_done(&db->allow[s]);
        *db = (fw_db) {};
}

char *nft_set_name(const char *db, fw_set s) {
        return xasprintf("%s-%s", db, fw_set_suffix(s));
}

/* --- rules ------------------------------------------------------------------------------------ */

static void add_expr(struct nftnl_rule *r, struct nftnl_expr *e) {
        nftnl_rule_add_expr(r, e);
}

static struct nftnl_expr *expr_new(const char *name) {
        return check_alloc(nftnl_expr_alloc(name));
}

static void add_meta(struct nftnl_rule *r, uint32_t key) {
        struct nftnl_expr *e = expr_new("meta");
        nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
        nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
        add_expr(r, e);
}

static void add_cmp_eq(struct nftnl_rule *r, const void *data, uint32_t len) {
        struct nftnl_expr *e = expr_new("cmp");
        nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
        nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
        add_expr(r, e);
}

static void add_payload(struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len) {
        struct nftnl_expr *e = expr_new("payload");
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
        nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
        add_expr(r, e);
}

static void add_lookup(struct nftnl_rule *r, const char *set, uint32_t set_id) {
        struct nftnl_expr *e = expr_new("lookup");
        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
        nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
        if (set_id)
                nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
        /* The kernel always reports the flags; set them so both sides print alike. */
        nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, 0);
        add_expr(r, e);
}

static void add_verdict(struct nftnl_rule *r, int verdict) {
        struct nftnl_expr *e = expr_new("immediate");
        nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
        nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t) verdict);
        add_expr(r, e);
}

static void set_comment(struct nftnl_rule *r, const char *comment) {
        _cleanup_(nftnl_udata_buf_freep) struct nftnl_udata_buf *u = check_alloc(nftnl_udata_buf_alloc(256));
        if (!nftnl_udata_put_strz(u, NFTNL_UDATA_RULE_COMMENT, comment))
                abort(); /* names are at most 63 bytes */
        nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u));
}

/* The bytecode `nft` generates for `tcp dport P ip saddr @S accept` (and the ip6 and drop
 * variants) in an inet table: l4proto and the port first, then the network-protocol dependency
 * and the address lookup. */
static struct nftnl_rule *rule_new(const char *db, nft_rule_kind kind, uint16_t port, uint32_t set_id) {
        struct nftnl_rule *r = check_alloc(nftnl_rule_alloc());
        uint8_t tcp = IPPROTO_TCP;
        uint16_t dport = htons(port);

        nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NFT_TABLE);
        nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, NFT_CHAIN);
        nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_INET);
        add_meta(r, NFT_META_L4PROTO);
        add_cmp_eq(r, &tcp, sizeof(tcp));
        add_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, sizeof(dport));
        add_cmp_eq(r, &dport, sizeof(dport));
        if (kind < NFT_RULE_DROP) {
                fw_family f = fw_set_family((fw_set) kind);
                uint8_t proto = f == FW_V4 ? NFPROTO_IPV4 : NFPROTO_IPV6;
                _cleanup_free_ char *set = nft_set_name(db, (fw_set) kind);

                add_meta(r, NFT_META_NFPROTO);
                add_cmp_eq(r, &proto, sizeof(proto));
                /* saddr: offset 12 in the IPv4 header, 8 in the IPv6 header */
                add_payload(r, NFT_PAYLOAD_NETWORK_HEADER, f == FW_V4 ? 12 : 8, f == FW_V4 ? 4 : 16);
                add_lookup(r, set, set_id);
                add_verdict(r, NF_ACCEPT);
        } else
                add_verdict(r, NF_DROP);
        set_comment(r, db);
        return r;
}

/* A rule's expressions as text, for comparing what the kernel holds with what we would make. */
static char *rule_signature(const struct nftnl_rule *r) {
        struct nftnl_expr_iter *it = check_alloc(nftnl_expr_iter_create(r));
        struct nftnl_expr *e;
        strbuf b = {};
        char buf[512];

        while ((e = nftnl_expr_iter_next(it))) {
                nftnl_expr_snprintf(buf, sizeof(buf), e, NFTNL_OUTPUT_DEFAULT, 0);
                strbuf_printf(&b, "[%s %s]", nftnl_expr_get_str(e, NFTNL_EXPR_NAME), buf);
        }
        nftnl_expr_iter_destroy(it);
        return strbuf_steal(&b);
}

/* Through the wire format and back, so both sides of a comparison look like kernel output. */
static char *expected_signature(const char *db, nft_rule_kind kind, uint16_t port) {
        _cleanup_(nftnl_rule_freep) struct nftnl_rule *r = rule_new(db, kind, port, 0);
        _cleanup_(nftnl_rule_freep) struct nftnl_rule *back = check_alloc(nftnl_rule_alloc());
        char buf[4096] = {}; /* one of our rules is under 512 bytes */
        struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_NEWRULE, NFPROTO_INET, 0, 0);

        nftnl_rule_nlmsg_build_payload(nlh, r);
        if (nftnl_rule_nlmsg_parse(nlh, back) < 0)
                return xstrdup("");
        return rule_signature(back);
}

static int udata_cb(const struct nftnl_udata *attr, void *data) {
        const struct nftnl_udata **tb = data;
        tb[nftnl_udata_type(attr)] = attr;
        return 0;
}

static char *udata_string(const struct nftnl_udata *a) {
        const char *v = nftnl_udata_get(a);
        uint8_t len = nftnl_udata_len(a);
        if (len == 0 || v[len - 1] != '\0')
                return NULL;
        return xstrdup(v);
}

static void decode_rule(const struct nftnl_rule *r, nft_live_rule *out) {
        const struct nftnl_udata *tb[256] = {};
        _cleanup_free_ char *sig = NULL;
        struct nftnl_expr_iter *it;
        struct nftnl_expr *e;
        const void *ud;
        uint32_t len = 0;
        int i = 0;

        out->kind = NFT_RULE_OTHER;
        out->handle = nftnl_rule_get_u64(r, NFTNL_RULE_HANDLE);
        out->chain = xstrdup(strempty(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN)));
        ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
        if (ud && nftnl_udata_parse(ud, len, udata_cb, tb) >= 0 && tb[NFTNL_UDATA_RULE_COMMENT])
                out->db = udata_string(tb[NFTNL_UDATA_RULE_COMMENT]);
        if (!out->db)
                return;
        /* The port is the data of the fourth expression; the signature check below decides
         * whether the rest is ours. */
        it = check_alloc(nftnl_expr_iter_create(r));
        while ((e = nftnl_expr_iter_next(it)))
                if (i++ == 3 && streq(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "cmp")) {
                        uint32_t n = 0;
                        const uint8_t *d = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &n);
                        if (d && n == 2)
                                out->port = (uint16_t) (d[0] << 8 | d[1]);
                }
        nftnl_expr_iter_destroy(it);
        if (out->port == 0)
                return;
        sig = rule_signature(r);
        for (nft_rule_kind k = NFT_RULE_ACCEPT_H4; k < NFT_RULE_OTHER; k++) {
                _cleanup_free_ char *want = expected_signature(out->db, k, out->port);
                if (streq(sig, want)) {
                        out->kind = k;
                        return;
                }
        }
}

/* --- batches ---------------------------------------------------------------------------------- */

typedef struct msg_info {
        uint32_t seq;
        const char *object;
        int db; /* index into names, -1: none */
        fw_set set;
} msg_info;

typedef struct new_set {
        char *name;
        uint32_t id;
} new_set;

struct nft_batch {
        struct nftnl_batch *nl;
        uint32_t seq, begin_seq, next_set_id;
        msg_info *msgs;
        size_t n_msgs, alloc_msgs;
        char **names;
        size_t n_names;
        new_set *new_sets;
        size_t n_new_sets;
        struct iovec *iov;
        size_t n_iov;
        bool ended;
};

static int intern_name(nft_batch *b, const char *db) {
        if (!db)
                return -1;
        if (b->n_names > 0 && streq(b->names[b->n_names - 1], db))
                return (int) b->n_names - 1;
        for (size_t i = 0; i < b->n_names; i++)
                if (streq(b->names[i], db))
                        return (int) i;
        b->names = xrealloc(b->names, (b->n_names + 1) * sizeof(char *));
        b->names[b->n_names] = xstrdup(db);
        return (int) b->n_names++;
}

/* Where the next message goes, zeroed: libmnl does not clear the padding after an attribute
 * whose length is not a multiple of 4, and heap bytes have no business going to the kernel. The
 * page always has MSG_MAX_SIZE bytes of room past the current position. */
static char *slot(nft_batch *b) {
        char *p = nftnl_batch_buffer(b->nl);
        memset(p, 0, MSG_MAX_SIZE);
        return p;
}

static struct nlmsghdr *msg_begin(nft_batch *b, uint16_t type, uint16_t flags, const char *object, const char *db,
                                  fw_set set) {
        if (b->n_msgs == b->alloc_msgs) {
                b->alloc_msgs = b->alloc_msgs ? b->alloc_msgs * 2 : 16;
                b->msgs = xrealloc(b->msgs, b->alloc_msgs * sizeof(msg_info));
        }
        b->msgs[b->n_msgs++] = (msg_info) { .seq = b->seq, .object = object, .db = intern_name(b, db), .set = set };
        return nftnl_nlmsg_build_hdr(slot(b), type, NFPROTO_INET, flags, b->seq++);
}

static void msg_end(nft_batch *b) {
        /* Moves on to the next message slot, adding a page when this one is full. */
        if (nftnl_batch_update(b->nl) < 0)
                check_alloc(NULL);
}

nft_batch *nft_batch_new(uint32_t genid) {
        nft_batch *b = xcalloc(1, sizeof(nft_batch));
        struct nlmsghdr *nlh;

        b->nl = check_alloc(nftnl_batch_alloc(BATCH_PAGE_SIZE, MSG_MAX_SIZE));
        b->seq = b->begin_seq = 1;
        nlh = nftnl_batch_begin(slot(b), b->seq++);
        if (genid)
                mnl_attr_put_u32(nlh, NFNL_BATCH_GENID, htonl(genid));
        msg_end(b);
        return b;
}

void nft_batch_free(nft_batch *b) {
        if (!b)
                return;
        nftnl_batch_free(b->nl);
        free(b->msgs);
        for (size_t i = 0; i < b->n_names; i++)
                free(b->names[i]);
        free(b->names);
        for (size_t i = 0; i < b->n_new_sets; i++)
                free(b->new_sets[i].name);
        free(b->new_sets);
        free(b->iov);
        free(b);
}

void nft_batch_freep(nft_batch **b) {
        nft_batch_free(*b);
}

void nft_batch_del_table(nft_batch *b) {
        _cleanup_(nftnl_table_freep) struct nftnl_table *t = check_alloc(nftnl_table_alloc());
        struct nlmsghdr *nlh = msg_begin(b, NFT_MSG_DELTABLE, 0, "table", NULL, FW_SET_H4);

        nftnl_table_set_str(t, NFTNL_TABLE_NAME, NFT_TABLE);
        nftnl_table_nlmsg_build_payload(nlh, t);
        msg_end(b);
}

void nft_batch_add_table(nft_batch *b, const uint8_t nonce[NFT_NONCE_SIZE]) {
        _cleanup_(nftnl_table_freep) struct nftnl_table *t = check_alloc(nftnl_table_alloc());
        _cleanup_(nftnl_udata_buf_freep) struct nftnl_udata_buf *u = check_alloc(nftnl_udata_buf_alloc(256));
        struct nlmsghdr *nlh = msg_begin(b, NFT_MSG_NEWTABLE, NLM_F_CREATE | NLM_F_EXCL, "table", NULL, FW_SET_H4);

        if (!nftnl_udata_put_strz(u, NFTNL_UDATA_TABLE_COMMENT, NFT_TABLE_COMMENT) ||
            !nftnl_udata_put(u, NFT_UDATA_TABLE_NONCE, NFT_NONCE_SIZE, nonce))
                abort(); /* fixed sizes, well below the buffer */
        nftnl_table_set_str(t, NFTNL_TABLE_NAME, NFT_TABLE);
        nftnl_table_set_u32(t, NFTNL_TABLE_FLAGS, 0);
        nftnl_table_set_data(t, NFTNL_TABLE_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u));
        nftnl_table_nlmsg_build_payload(nlh, t);
        msg_end(b);
}

void nft_batch_add_chain(nft_batch *b) {
        _cleanup_(nftnl_chain_freep) struct nftnl_chain *c = check_alloc(nftnl_chain_alloc());
        struct nlmsghdr *nlh = msg_begin(b, NFT_MSG_NEWCHAIN, NLM_F_CREATE | NLM_F_EXCL, "chain", NULL, FW_SET_H4);

        nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, NFT_TABLE);
        nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, NFT_CHAIN);
        nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "filter");
        nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_LOCAL_IN);
        nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, 0); /* "priority filter" */
        nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
        nftnl_chain_nlmsg_build_payload(nlh, c);
        msg_end(b);
}

static uint32_t new_set_id(const nft_batch *b, const char *name) {
        for (size_t i = 0; i < b->n_new_sets; i++)
                if (streq(b->new_sets[i].name, name))
                        return b->new_sets[i].id;
        return 0;
}

static void elements_msgs(nft_batch *b, const char *db, fw_set which, const char *set, const fw_ranges *r, bool add) {
        _cleanup_(nftnl_set_elem_freep) struct nftnl_set_elem *e = check_alloc(nftnl_set_elem_alloc());
        fw_family f = fw_set_family(which);
        bool hosts = fw_set_hosts(which);
        uint32_t id = new_set_id(b, set), klen = family_bits(f) / 8;
        fw_addr max = fw_family_max(f);
        size_t i = 0;

        while (i < r->n) {
                struct nlmsghdr *nlh = msg_begin(b, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
                                                 add ? NLM_F_CREATE : 0, "elements", db, which);
                struct nlattr *list;

                mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_TABLE, NFT_TABLE);
                mnl_attr_put_strz(nlh, NFTA_SET_ELEM_LIST_SET, set);
                if (id)
                        mnl_attr_put_u32(nlh, NFTA_SET_ELEM_LIST_SET_ID, htonl(id));
                list = mnl_attr_nest_start(nlh, NFTA_SET_ELEM_LIST_ELEMENTS);
                /* An interval is a start element and an end element one past its last address
                 * (none when it reaches the top of the address space); both go in the same
                 * message, as nft sends them. A hash set's element is its one address. */
                for (; i < r->n && (size_t) ((char *) mnl_nlmsg_get_payload_tail(nlh) - (char *) list) < ELEMENTS_NEST_LIMIT;
                     i++) {
                        uint8_t key[16];
                        struct nlattr *nest;

                        addr_to_bytes(f, r->v[i].lo, key);
                        nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, klen);
                        nftnl_set_elem_unset(e, NFTNL_SET_ELEM_FLAGS);
                        nest = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
                        nftnl_set_elem_nlmsg_build_payload(nlh, e);
                        mnl_attr_nest_end(nlh, nest);
                        if (hosts || r->v[i].hi == max)
                                continue;
                        addr_to_bytes(f, r->v[i].hi + 1, key);
                        nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, klen);
                        nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_FLAGS, NFT_SET_ELEM_INTERVAL_END);
                        nest = mnl_attr_nest_start(nlh, NFTA_LIST_ELEM);
                        nftnl_set_elem_nlmsg_build_payload(nlh, e);
                        mnl_attr_nest_end(nlh, nest);
                }
                mnl_attr_nest_end(nlh, list);
                msg_end(b);
        }
}

void nft_batch_add_sets(nft_batch *b, const fw_db *db) {
        for (fw_set k = FW_SET_H4; k < FW_SET_MAX; k++) {
                _cleanup_(nftnl_set_freep) struct nftnl_set *s = check_alloc(nftnl_set_alloc());
                _cleanup_(nftnl_udata_buf_freep) struct nftnl_udata_buf *u = check_alloc(nftnl_udata_buf_alloc(64));
                _cleanup_free_ char *name = nft_set_name(db->name, k);
                struct nlmsghdr *nlh = msg_begin(b, NFT_MSG_NEWSET, NLM_F_CREATE | NLM_F_EXCL, "set", db->name, k);
                fw_family f = fw_set_family(k);
                uint32_t id = ++b->next_set_id;

                nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE);
                nftnl_set_set_str(s, NFTNL_SET_NAME, name);
                nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_INET);
                /* no flags: the kernel picks a hash backend for a plain set */
                nftnl_set_set_u32(s, NFTNL_SET_FLAGS, fw_set_hosts(k) ? 0 : NFT_SET_INTERVAL);
                nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, f == FW_V4 ? NFT_TYPE_IPADDR : NFT_TYPE_IP6ADDR);
                nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, family_bits(f) / 8);
                nftnl_set_set_u32(s, NFTNL_SET_ID, id);
                /* nft reads the key's byte order from here to print the elements */
                if (!nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, NFT_BYTEORDER_BIG_ENDIAN))
                        abort();
                nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u));
                nftnl_set_nlmsg_build_payload(nlh, s);
                msg_end(b);

                b->new_sets = xrealloc(b->new_sets, (b->n_new_sets + 1) * sizeof(new_set));
                b->new_sets[b->n_new_sets++] = (new_set) { .name = TAKE_PTR(name), .id = id };
                elements_msgs(b, db->name, k, b->new_sets[b->n_new_sets - 1].name, &db->allow[k], true);
        }
}

void nft_batch_del_set(nft_batch *b, const char *db, fw_set k) {
        _cleanup_(nftnl_set_freep) struct nftnl_set *s = check_alloc(nftnl_set_alloc());
        _cleanup_free_ char *name = nft_set_name(db, k);
        struct nlmsghdr *nlh = msg_begin(b, NFT_MSG_DELSET, 0, "set", db, k);

        nftnl_set_set_str(s, NFTNL_SET_TABLE, NFT_TABLE);
        nftnl_set_set_str(s, NFTNL_SET_NAME, name);
        nftnl_set_nlmsg_build_payload(nlh, s);
        msg_end(b);
}

void nft_batch_add_rules(nft_batch *b, const fw_db *db) {
        for (nft_rule_kind k = NFT_RULE_ACCEPT_H4; k < NFT_RULE_OTHER; k++) {
                _cleanup_free_ char *set = k == NFT_RULE_DROP ? NULL : nft_set_name(db->name, (fw_set) k);
                _cleanup_(nftnl_rule_freep) struct nftnl_rule *r =
                        rule_new(db->name, k, db->port, set ? new_set_id(b, set) : 0);
                struct nlmsghdr *nlh = msg_begin(b, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, "rule", db->name,
                                                 k == NFT_RULE_DROP ? FW_SET_H4 : (fw_set) k);
                nftnl_rule_nlmsg_build_payload(nlh, r);
                msg_end(b);
        }
}

void nft_batch_del_rule(nft_batch *b, const char *db, uint64_t handle) {
        _cleanup_(nftnl_rule_freep) struct nftnl_rule *r = check_alloc(nftnl_rule_alloc());
        struct nlmsghdr *nlh = msg_begin(b, NFT_MSG_DELRULE, 0, "rule", db, FW_SET_H4);

        nftnl_rule_set_str(r, NFTNL_RULE_TABLE, NFT_TABLE);
        nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, NFT_CHAIN);
        nftnl_rule_set_u64(r, NFTNL_RULE_HANDLE, handle);
        nftnl_rule_nlmsg_build_payload(nlh, r);
        msg_end(b);
}

void nft_batch_elements(nft_batch *b, const char *db, fw_set k, const fw_ranges *r, bool add) {
        _cleanup_free_ char *set = nft_set_name(db, k);
        elements_msgs(b, db, k, set, r, add);
}

size_t nft_batch_end(nft_batch *b) {
        if (!b->ended) {
                nftnl_batch_end(slot(b), b->seq++);
                msg_end(b);
                b->ended = true;
        }
        return b->n_msgs;
}

size_t nft_batch_iovec(nft_batch *b, struct iovec **ret) {
        if (!b->iov) {
                b->n_iov = (size_t) nftnl_batch_iovec_len(b->nl);
                b->iov = xcalloc(b->n_iov, sizeof(struct iovec));
                nftnl_batch_iovec(b->nl, b->iov, (uint32_t) b->n_iov);
        }
        *ret = b->iov;
        return b->n_iov;
}

static const msg_info *find_msg(const nft_batch *b, uint32_t seq) {
        size_t lo = 0, hi = b->n_msgs;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (b->msgs[mid].seq == seq)
                        return &b->msgs[mid];
                if (b->msgs[mid].seq < seq)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

static const struct nlmsghdr *find_nlmsg(nft_batch *b, uint32_t seq) {
        struct iovec *iov;
        size_t n = nft_batch_iovec(b, &iov);

        for (size_t i = 0; i < n; i++) {
                int len = (int) iov[i].iov_len;
                for (const struct nlmsghdr *nlh = iov[i].iov_base; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len))
                        if (nlh->nlmsg_seq == seq)
                                return nlh;
        }
        return NULL;
}

/* The element of an element message at byte offset off (the kernel's extended ack). */
static bool element_at(const struct nlmsghdr *nlh, uint32_t off, fw_addr *ret, bool *ret_end) {
        const struct nlattr *list, *elem, *a, *v;

        mnl_attr_for_each(list, nlh, sizeof(struct nfgenmsg)) {
                if (mnl_attr_get_type(list) != NFTA_SET_ELEM_LIST_ELEMENTS)
                        continue;
                mnl_attr_for_each_nested(elem, list) {
                        uint32_t start = (uint32_t) ((const char *) elem - (const char *) nlh);
                        if (off < start || off >= start + elem->nla_len)
                                continue;
                        bool found = false;
                        *ret_end = false;
                        mnl_attr_for_each_nested(a, elem) {
                                if (mnl_attr_get_type(a) == NFTA_SET_ELEM_FLAGS && mnl_attr_get_payload_len(a) == 4)
                                        *ret_end = ntohl(mnl_attr_get_u32(a)) & NFT_SET_ELEM_INTERVAL_END;
                                if (mnl_attr_get_type(a) != NFTA_SET_ELEM_KEY)
                                        continue;
                                mnl_attr_for_each_nested(v, a)
                                        if (mnl_attr_get_type(v) == NFTA_DATA_VALUE) {
                                                *ret = addr_from_bytes(mnl_attr_get_payload(v), mnl_attr_get_payload_len(v));
                                                found = true;
                                        }
                        }
                        return found;
                }
        }
        return false;
}

/* --- the socket ------------------------------------------------------------------------------- */

struct nft_socket {
        struct mnl_socket *nl;
        uint32_t portid, seq;
        char *buf;
        uint64_t commit_ns; /* spent in the kernel on batches (sendmsg and the acks) */
};

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

double nft_socket_commit_ms(const nft_socket *s) {
        return (double) s->commit_ns / 1e6;
}

int nft_socket_open(nft_socket **ret) {
        nft_socket *s = xcalloc(1, sizeof(nft_socket));
        int one = 1;

        s->nl = mnl_socket_open(NETLINK_NETFILTER);
        if (!s->nl || mnl_socket_bind(s->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
                int r = -errno;
                nft_socket_close(s);
                return r;
        }
        s->portid = mnl_socket_get_portid(s->nl);
        s->seq = 1u << 30; /* far from the batch's sequence numbers */
        s->buf = xmalloc(RECV_BUF_SIZE);
        /* Errors carry the offending attribute's offset; and only the header of the failed
         * message, not a copy of up to 64 KiB of elements each. */
        (void) mnl_socket_setsockopt(s->nl, NETLINK_EXT_ACK, &one, sizeof(one));
        (void) mnl_socket_setsockopt(s->nl, NETLINK_CAP_ACK, &one, sizeof(one));
        *ret = s;
        return 0;
}

void nft_socket_close(nft_socket *s) {
        if (!s)
                return;
        if (s->nl)
                mnl_socket_close(s->nl);
        free(s->buf);
        free(s);
}

void nft_socket_closep(nft_socket **s) {
        nft_socket_close(*s);
}

typedef struct talk_ctx {
        uint32_t genid;    /* 0: no check */
        int error;         /* recorded by callbacks; the exchange still runs to its end */
        nft_live *live;
        nft_live_set *set;
        struct nftnl_set *elems;
} talk_ctx;

/* Replies must come from the generation we observe: nf_tables stamps each with the low 16 bits of
 * the generation id, and flags a dump that a commit interrupted. */
static bool same_generation(const struct nlmsghdr *nlh, talk_ctx *c) {
        const struct nfgenmsg *g = mnl_nlmsg_get_payload(nlh);
        if ((nlh->nlmsg_flags & NLM_F_DUMP_INTR) || (c->genid && ntohs(g->res_id) != (c->genid & 0xffff))) {
                c->error = -EINTR;
                return false;
        }
        return true;
}

static int talk(nft_socket *s, struct nlmsghdr *req, mnl_cb_t cb, talk_ctx *c) {
        uint32_t seq = req->nlmsg_seq = s->seq++;

        if (mnl_socket_sendto(s->nl, req, req->nlmsg_len) < 0)
                return -errno;
        for (;;) {
                ssize_t n = mnl_socket_recvfrom(s->nl, s->buf, RECV_BUF_SIZE);
                int r;
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                r = mnl_cb_run(s->buf, (size_t) n, seq, s->portid, cb, c);
                if (r < 0)
                        return -errno;
                if (r == MNL_CB_STOP)
                        return c->error;
        }
}

static int genid_cb(const struct nlmsghdr *nlh, void *data) {
        talk_ctx *c = data;
        struct nftnl_gen *g = check_alloc(nftnl_gen_alloc());
        if (nftnl_gen_nlmsg_parse(nlh, g) >= 0)
                c->genid = nftnl_gen_get_u32(g, NFTNL_GEN_ID);
        nftnl_gen_free(g);
        return MNL_CB_OK;
}

int nft_genid(nft_socket *s, uint32_t *ret) {
        char buf[256] = {};
        struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, AF_UNSPEC, NLM_F_ACK, 0);
        talk_ctx c = {};
        int r = talk(s, nlh, genid_cb, &c);

        if (r < 0)
                return r;
        *ret = c.genid;
        return 0;
}

static int table_cb(const struct nlmsghdr *nlh, void *data) {
        talk_ctx *c = data;
        _cleanup_(nftnl_table_freep) struct nftnl_table *t = check_alloc(nftnl_table_alloc());
        const struct nftnl_udata *tb[256] = {};
        const void *ud;
        uint32_t len = 0;

        if (!same_generation(nlh, c) || nftnl_table_nlmsg_parse(nlh, t) < 0)
                return MNL_CB_OK;
        if (!streq_ptr(nftnl_table_get_str(t, NFTNL_TABLE_NAME), NFT_TABLE))
                return MNL_CB_OK;
        c->live->table = true;
        c->live->table_flags = nftnl_table_get_u32(t, NFTNL_TABLE_FLAGS);
        c->live->table_dormant = c->live->table_flags & NFT_TABLE_F_DORMANT;
        c->live->table_use = nftnl_table_get_u32(t, NFTNL_TABLE_USE);
        ud = nftnl_table_get_data(t, NFTNL_TABLE_USERDATA, &len);
        if (ud && nftnl_udata_parse(ud, len, udata_cb, tb) >= 0 && tb[NFT_UDATA_TABLE_NONCE] &&
            nftnl_udata_len(tb[NFT_UDATA_TABLE_NONCE]) == NFT_NONCE_SIZE) {
                c->live->has_nonce = true;
                memcpy_safe(c->live->nonce, nftnl_udata_get(tb[NFT_UDATA_TABLE_NONCE]), NFT_NONCE_SIZE);
        }
        return MNL_CB_OK;
}

static int chain_cb(const struct nlmsghdr *nlh, void *data) {
        talk_ctx *c = data;
        _cleanup_(nftnl_chain_freep) struct nftnl_chain *ch = check_alloc(nftnl_chain_alloc());
        nft_live *l = c->live;
        nft_live_chain *out;

        if (!same_generation(nlh, c) || nftnl_chain_nlmsg_parse(nlh, ch) < 0)
                return MNL_CB_OK;
        if (nftnl_chain_get_u32(ch, NFTNL_CHAIN_FAMILY) != NFPROTO_INET ||
            !streq_ptr(nftnl_chain_get_str(ch, NFTNL_CHAIN_TABLE), NFT_TABLE))
                return MNL_CB_OK;
        l->chains = xrealloc(l->chains, (l->n_chains + 1) * sizeof(nft_live_chain));
        out = &l->chains[l->n_chains++];
        *out = (nft_live_chain) { .name = xstrdup(strempty(nftnl_chain_get_str(ch, NFTNL_CHAIN_NAME))) };
        out->ours = streq(out->name, NFT_CHAIN) && nftnl_chain_is_set(ch, NFTNL_CHAIN_HOOKNUM) &&
                    nftnl_chain_get_u32(ch, NFTNL_CHAIN_HOOKNUM) == NF_INET_LOCAL_IN &&
                    nftnl_chain_get_s32(ch, NFTNL_CHAIN_PRIO) == 0 &&
                    nftnl_chain_get_u32(ch, NFTNL_CHAIN_POLICY) == NF_ACCEPT &&
                    streq_ptr(nftnl_chain_get_str(ch, NFTNL_CHAIN_TYPE), "filter") &&
                    !nftnl_chain_is_set(ch, NFTNL_CHAIN_DEV) &&
                    (nftnl_chain_get_u32(ch, NFTNL_CHAIN_FLAGS) & ~(uint32_t) NFT_CHAIN_BASE) == 0;
        return MNL_CB_OK;
}

static int set_cb(const struct nlmsghdr *nlh, void *data) {
        talk_ctx *c = data;
        _cleanup_(nftnl_set_freep) struct nftnl_set *s = check_alloc(nftnl_set_alloc());
        nft_live *l = c->live;
        nft_live_set *out;
        const char *name;
        size_t n;

        if (!same_generation(nlh, c) || nftnl_set_nlmsg_parse(nlh, s) < 0)
                return MNL_CB_OK;
        if (nftnl_set_get_u32(s, NFTNL_SET_FAMILY) != NFPROTO_INET ||
            !streq_ptr(nftnl_set_get_str(s, NFTNL_SET_TABLE), NFT_TABLE))
                return MNL_CB_OK;
        name = strempty(nftnl_set_get_str(s, NFTNL_SET_NAME));
        l->sets = xrealloc(l->sets, (l->n_sets + 1) * sizeof(nft_live_set));
        out = &l->sets[l->n_sets++];
        *out = (nft_live_set) { .name = xstrdup(name) };
        n = strlen(name);
        for (fw_set k = FW_SET_H4; k < FW_SET_MAX && !out->db; k++)
                if (n > 3 && name[n - 3] == '-' && streq(name + n - 2, fw_set_suffix(k))) {
                        out->db = xstrndup(name, n - 3);
                        out->set = k;
                        out->family = fw_set_family(k);
                }
        if (out->db) {
                out->ours = nftnl_set_get_u32(s, NFTNL_SET_FLAGS) == (fw_set_hosts(out->set) ? 0 : NFT_SET_INTERVAL) &&
                            nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE) == (out->family == FW_V4 ? NFT_TYPE_IPADDR : NFT_TYPE_IP6ADDR) &&
                            nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN) == family_bits(out->family) / 8 &&
                            !nftnl_set_is_set(s, NFTNL_SET_DATA_TYPE) && !nftnl_set_is_set(s, NFTNL_SET_OBJ_TYPE) &&
                            nftnl_set_get_u64(s, NFTNL_SET_TIMEOUT) == 0 && !nftnl_set_is_set(s, NFTNL_SET_EXPR) &&
                            !nftnl_set_is_set(s, NFTNL_SET_EXPRESSIONS);
        }
        return MNL_CB_OK;
}

static int rule_cb(const struct nlmsghdr *nlh, void *data) {
        talk_ctx *c = data;
        _cleanup_(nftnl_rule_freep) struct nftnl_rule *r = check_alloc(nftnl_rule_alloc());
        nft_live *l = c->live;

        if (!same_generation(nlh, c) || nftnl_rule_nlmsg_parse(nlh, r) < 0)
                return MNL_CB_OK;
        if (nftnl_rule_get_u32(r, NFTNL_RULE_FAMILY) != NFPROTO_INET ||
            !streq_ptr(nftnl_rule_get_str(r, NFTNL_RULE_TABLE), NFT_TABLE))
                return MNL_CB_OK;
        l->rules = xrealloc(l->rules, (l->n_rules + 1) * sizeof(nft_live_rule));
        l->rules[l->n_rules] = (nft_live_rule) {};
        decode_rule(r, &l->rules[l->n_rules++]);
        return MNL_CB_OK;
}

static int observe_once(nft_socket *s, nft_live *l) {
        _cleanup_free_ char *buf = xcalloc(1, MSG_MAX_SIZE); /* padding is sent as is */
        talk_ctx c = { .live = l };
        struct nlmsghdr *nlh;
        int r;

        r = nft_genid(s, &l->genid);
        if (r < 0)
                return r;
        c.genid = l->genid;
        {
                _cleanup_(nftnl_table_freep) struct nftnl_table *t = check_alloc(nftnl_table_alloc());
                nftnl_table_set_str(t, NFTNL_TABLE_NAME, NFT_TABLE);
                nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, NFPROTO_INET, NLM_F_ACK, 0);
                nftnl_table_nlmsg_build_payload(nlh, t);
                r = talk(s, nlh, table_cb, &c);
                if (r == -ENOENT)
                        return 0; /* no table: nothing else to read */
                if (r < 0)
                        return r;
        }
        nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, NFPROTO_INET, NLM_F_DUMP, 0);
        r = talk(s, nlh, chain_cb, &c);
        if (r < 0)
                return r;
        {
                _cleanup_(nftnl_set_freep) struct nftnl_set *f = check_alloc(nftnl_set_alloc());
                nftnl_set_set_str(f, NFTNL_SET_TABLE, NFT_TABLE);
                nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSET, NFPROTO_INET, NLM_F_DUMP, 0);
                nftnl_set_nlmsg_build_payload(nlh, f);
                r = talk(s, nlh, set_cb, &c);
                if (r < 0)
                        return r;
        }
        {
                _cleanup_(nftnl_rule_freep) struct nftnl_rule *f = check_alloc(nftnl_rule_alloc());
                nftnl_rule_set_str(f, NFTNL_RULE_TABLE, NFT_TABLE);
                nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, NFPROTO_INET, NLM_F_DUMP, 0);
                nftnl_rule_nlmsg_build_payload(nlh, f);
                r = talk(s, nlh, rule_cb, &c);
        }
        return r;
}

int nft_observe(nft_socket *s, nft_live *ret, char **ret_error) {
        int r = -EINTR;

        /* A commit between our reads would give a picture that never existed: read again. */
        for (int attempt = 0; attempt < 10 && r == -EINTR; attempt++) {
                nft_live l = {};
                r = observe_once(s, &l);
                if (r >= 0) {
                        *ret = l;
                        return 0;
                }
                nft_live_done(&l);
        }
        *ret_error = xasprintf("cannot read the ruleset: %s", r == -EINTR ? "it kept changing while being read" : strerror(-r));
        return r;
}

static int elems_cb(const struct nlmsghdr *nlh, void *data) {
        talk_ctx *c = data;
        if (same_generation(nlh, c))
                (void) nftnl_set_elems_nlmsg_parse(nlh, c->elems);
        return MNL_CB_OK;
}

typedef struct endpoint {
        fw_addr key;
        bool end;
} endpoint;

static int endpoint_cmp(const void *a, const void *b) {
        const endpoint *x = a, *y = b;
        if (x->key != y->key)
                return x->key < y->key ? -1 : 1;
        return (int) y->end - (int) x->end; /* an end sorts before a start at the same key */
}

/* Start and end elements back into ranges. Elements that cannot come from us (two starts in a
 * row, an end without a start) make the set "bad": firewall.c rebuilds it. nft's own leading
 * end element at address 0 is harmless and skipped. */
static void decode_elements(struct nftnl_set *s, nft_live_set *out) {
        struct nftnl_set_elems_iter *it = check_alloc(nftnl_set_elems_iter_create(s));
        uint32_t klen = family_bits(out->family) / 8;
        struct nftnl_set_elem *e;
        endpoint *v = NULL;
        size_t n = 0, alloc = 0;
        bool open = false;
        fw_addr start = 0;

        while ((e = nftnl_set_elems_iter_next(it))) {
                uint32_t len = 0;
                const uint8_t *key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
                if (!key || len != klen) {
                        out->elements_bad = true;
                        continue;
                }
                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 64;
                        v = xrealloc(v, alloc * sizeof(endpoint));
                }
                v[n++] = (endpoint) { .key = addr_from_bytes(key, len),
                                      .end = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS) &&
                                             (nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) & NFT_SET_ELEM_INTERVAL_END) };
                if (fw_set_hosts(out->set) && nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS) &&
                    nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) != 0)
                        out->elements_bad = true;
        }
        nftnl_set_elems_iter_destroy(it);
        qsort_safe(v, n, sizeof(endpoint), endpoint_cmp);
        if (fw_set_hosts(out->set)) {
                /* A hash set: every element is one address, in hash order. */
                fw_ranges_reserve(&out->elements, n);
                for (size_t i = 0; i < n; i++)
                        fw_ranges_push(&out->elements, (fw_range) { .lo = v[i].key, .hi = v[i].key });
                free(v);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                if (!v[i].end) {
                        if (open)
                                out->elements_bad = true;
                        open = true;
                        start = v[i].key;
                } else if (open) {
                        if (v[i].key == start)
                                out->elements_bad = true;
                        else
                                fw_ranges_push(&out->elements, (fw_range) { .lo = start, .hi = v[i].key - 1 });
                        open = false;
                } else if (v[i].key != 0)
                        out->elements_bad = true;
        }
        if (open)
                fw_ranges_push(&out->elements, (fw_range) { .lo = start, .hi = fw_family_max(out->family) });
        free(v);
}

int nft_observe_elements(nft_socket *s, uint32_t genid, nft_live_set *set, char **ret_error) {
        _cleanup_(nftnl_set_freep) struct nftnl_set *f = check_alloc(nftnl_set_alloc());
        _cleanup_(nftnl_set_freep) struct nftnl_set *got = check_alloc(nftnl_set_alloc());
        _cleanup_free_ char *buf = xcalloc(1, MSG_MAX_SIZE); /* padding is sent as is */
        talk_ctx c = { .genid = genid, .elems = got };
        struct nlmsghdr *nlh;
        int r;

        nftnl_set_set_str(f, NFTNL_SET_TABLE, NFT_TABLE);
        nftnl_set_set_str(f, NFTNL_SET_NAME, set->name);
        nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP, 0);
        nftnl_set_elems_nlmsg_build_payload(nlh, f);
        r = talk(s, nlh, elems_cb, &c);
        if (r < 0) {
                if (r != -EINTR)
                        *ret_error = xasprintf("cannot read the elements of set '%s': %s", set->name, strerror(-r));
                return r;
        }
        fw_ranges_done(&set->elements);
        set->elements_bad = false;
        /* Not normalised: deleting needs the kernel's exact intervals (two adjacent ones added by
         * hand are two pairs of elements, not one). */
        decode_elements(got, set);
        set->elements_read = true;
        return 0;
}

void nft_live_done(nft_live *l) {
        for (size_t i = 0; i < l->n_chains; i++)
                free(l->chains[i].name);
        free(l->chains);
        for (size_t i = 0; i < l->n_sets; i++) {
                free(l->sets[i].name);
                free(l->sets[i].db);
                fw_ranges_done(&l->sets[i].elements);
        }
        free(l->sets);
        for (size_t i = 0; i < l->n_rules; i++) {
                free(l->rules[i].chain);
                free(l->rules[i].db);
        }
        free(l->rules);
        *l = (nft_live) {};
}

/* --- sending ---------------------------------------------------------------------------------- */

void nft_errors_free(nft_error *e, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(e[i].db);
        free(e);
}

static int err_attr_cb(const struct nlattr *attr, void *data) {
        const struct nlattr **tb = data;
        uint16_t type = mnl_attr_get_type(attr);
        if (type <= NLMSGERR_ATTR_MAX)
                tb[type] = attr;
        return MNL_CB_OK;
}

static void add_error(nft_batch *b, const struct nlmsghdr *nlh, nft_error **v, size_t *n) {
        const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
        const struct nlattr *tb[NLMSGERR_ATTR_MAX + 1] = {};
        const msg_info *m = find_msg(b, err->msg.nlmsg_seq);
        const struct nlmsghdr *orig;
        unsigned hlen = sizeof(*err);
        nft_error *e;

        *v = xrealloc(*v, (*n + 1) * sizeof(nft_error));
        e = &(*v)[(*n)++];
        *e = (nft_error) { .error = -err->error, .object = m ? m->object : "batch" };
        if (!m)
                return;
        e->db = m->db >= 0 ? xstrdup(b->names[m->db]) : NULL;
        e->set = m->set;
        e->family = fw_set_family(m->set);
        if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS) || !streq(m->object, "elements"))
                return;
        if (!(nlh->nlmsg_flags & NLM_F_CAPPED))
                hlen += mnl_nlmsg_get_payload_len(&err->msg);
        if (mnl_attr_parse(nlh, hlen, err_attr_cb, tb) != MNL_CB_OK || !tb[NLMSGERR_ATTR_OFFS])
                return;
        orig = find_nlmsg(b, m->seq);
        if (orig)
                e->has_element = element_at(orig, mnl_attr_get_u32(tb[NLMSGERR_ATTR_OFFS]), &e->element, &e->element_end);
}

void nft_batch_collect_errors(nft_batch *b, const void *buf, size_t size, nft_error **errors, size_t *n_errors) {
        int len = size > INT_MAX ? INT_MAX : (int) size;

        for (const struct nlmsghdr *nlh = buf; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
                const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
                if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_len < mnl_nlmsg_size(sizeof(*err)) || err->error == 0)
                        continue;
                add_error(b, nlh, errors, n_errors);
        }
}

int nft_send(nft_socket *s, nft_batch *b, nft_error **ret, size_t *ret_n) {
        struct sockaddr_nl snl = { .nl_family = AF_NETLINK };
        int fd = mnl_socket_get_fd(s->nl), size, cur = 0;
        socklen_t sl = sizeof(cur);
        struct msghdr msg = {};
        nft_error *errs = NULL;
        struct iovec *iov;
        size_t n_iov, total = 0, n_errs = 0;
        bool lost = false;
        uint64_t t0;

        nft_batch_end(b);
        n_iov = nft_batch_iovec(b, &iov);
        for (size_t i = 0; i < n_iov; i++)
                total += iov[i].iov_len;
        if (total > INT_MAX / 4)
                return -E2BIG;
        /* The whole batch is one datagram: the send buffer must hold it (the kernel doubles the
         * value). Forced past the sysctl limit as root, as nft does. */
        size = (int) total + 65536;
        if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &sl) < 0 || cur < size * 2)
                if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
                        (void) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
        /* Room for one error per message, should everything fail. */
        size = (int) (b->n_msgs * 1024 + 65536);
        sl = sizeof(cur);
        if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cur, &sl) < 0 || cur < size)
                if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
                        (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));

        msg = (struct msghdr) { .msg_name = &snl, .msg_namelen = sizeof(snl), .msg_iov = iov, .msg_iovlen = n_iov };
        t0 = now_ns();
        if (sendmsg(fd, &msg, 0) < 0)
                return -errno;
        /* nfnetlink handles the batch inside sendmsg(): every error is queued by now. */
        for (;;) {
                ssize_t n = recv(fd, s->buf, RECV_BUF_SIZE, MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == ENOBUFS) { /* errors dropped: the batch failed all the same */
                                lost = true;
                                continue;
                        }
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                break;
                        nft_errors_free(errs, n_errs);
                        return -errno;
                }
                nft_batch_collect_errors(b, s->buf, (size_t) n, &errs, &n_errs);
        }
        s->commit_ns += now_ns() - t0;
        if (lost && n_errs == 0) {
                errs = xcalloc(1, sizeof(nft_error));
                errs[0] = (nft_error) { .error = ENOBUFS, .object = "batch" };
                n_errs = 1;
        }
        if (n_errs == 0) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        *ret = errs;
        *ret_n = n_errs;
        return -EIO;
}
