/* Unit tests for the firewall's netlink side without root, as libnftnl's own tests do it: build
 * the batch into memory and parse every message back; plus the address model (CIDR parsing,
 * normalisation, prefixes, element diffs) and the mapping of kernel errors to what caused them. */
#include <netinet/in.h>
#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include "document.h"
#include "firewall.h"
#include "nft.h"
#include "unit.h"

/* --- helpers ---------------------------------------------------------------------------------- */

static fw_addr v4(const char *s) {
        uint8_t b[4];
        assert_int_equal(inet_pton(AF_INET, s, b), 1);
        return (fw_addr) b[0] << 24 | (fw_addr) b[1] << 16 | (fw_addr) b[2] << 8 | b[3];
}

static fw_addr v6(const char *s) {
        uint8_t b[16];
        fw_addr a = 0;
        assert_int_equal(inet_pton(AF_INET6, s, b), 1);
        for (int i = 0; i < 16; i++)
                a = a << 8 | b[i];
        return a;
}

static void add_cidr(fw_ranges *r, fw_family want, const char *s) {
        fw_family f;
        fw_range x;
        assert_int_equal(fw_parse_cidr(s, &f, &x), 0);
        assert_int_equal(f, want);
        fw_ranges_push(r, x);
}

static void check_range(const fw_range *r, fw_addr lo, fw_addr hi) {
        assert_true(r->lo == lo);
        assert_true(r->hi == hi);
}

/* Every message of a built batch, in order. */
typedef struct msgs {
        const struct nlmsghdr **v;
        size_t n;
} msgs;

static msgs batch_messages(nft_batch *b) {
        struct iovec *iov;
        size_t n_iov = nft_batch_iovec(b, &iov);
        msgs m = {};

        for (size_t i = 0; i < n_iov; i++) {
                int len = (int) iov[i].iov_len;
                for (const struct nlmsghdr *nlh = iov[i].iov_base; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
                        m.v = xrealloc(m.v, (m.n + 1) * sizeof(*m.v));
                        m.v[m.n++] = nlh;
                }
        }
        return m;
}

static uint16_t msg_type(const struct nlmsghdr *nlh) {
        return nlh->nlmsg_type & 0xff;
}

typedef struct elem {
        fw_addr key;
        bool end;
} elem;

/* The elements of one NEWSETELEM/DELSETELEM message, parsed back by libnftnl. */
static size_t parse_elements(const struct nlmsghdr *nlh, char **ret_set, elem **ret) {
        struct nftnl_set *s = nftnl_set_alloc();
        struct nftnl_set_elems_iter *it;
        struct nftnl_set_elem *e;
        elem *v = NULL;
        size_t n = 0, alloc = 0;

        assert_non_null(s);
        assert_true(nftnl_set_elems_nlmsg_parse(nlh, s) >= 0);
        *ret_set = xstrdup(nftnl_set_get_str(s, NFTNL_SET_NAME));
        it = nftnl_set_elems_iter_create(s);
        while ((e = nftnl_set_elems_iter_next(it))) {
                uint32_t len = 0;
                const uint8_t *k = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
                fw_addr a = 0;
                assert_non_null(k);
                for (uint32_t i = 0; i < len; i++)
                        a = a << 8 | k[i];
                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 64;
                        v = xrealloc(v, alloc * sizeof(elem));
                }
                v[n++] = (elem) { .key = a,
                                  .end = nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_FLAGS) &&
                                         (nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_FLAGS) & NFT_SET_ELEM_INTERVAL_END) };
        }
        nftnl_set_elems_iter_destroy(it);
        nftnl_set_free(s);
        *ret = v;
        return n;
}

static fw_db one_db(void) {
        fw_db db = { .name = xstrdup("accounts-db"), .port = 5432 };
        add_cidr(&db.allow[FW_SET_H4], FW_V4, "192.168.1.1/32");
        add_cidr(&db.allow[FW_SET_N4], FW_V4, "10.0.0.0/8");
        add_cidr(&db.allow[FW_SET_N6], FW_V6, "fd00::/64");
        add_cidr(&db.allow[FW_SET_H6], FW_V6, "::1");
        return db;
}

/* The expressions of a rule as "name name …" and the lookup's set, the verdict and the comment. */
typedef struct rule_view {
        char names[256];
        char set[64];
        uint32_t verdict;
        char comment[64];
        uint16_t port;
} rule_view;

static rule_view view_rule(const struct nlmsghdr *nlh) {
        struct nftnl_rule *r = nftnl_rule_alloc();
        struct nftnl_expr_iter *it;
        struct nftnl_expr *e;
        rule_view v = {};
        const void *ud;
        uint32_t len = 0;
        int i = 0;

        assert_true(nftnl_rule_nlmsg_parse(nlh, r) >= 0);
        assert_string_equal(nftnl_rule_get_str(r, NFTNL_RULE_TABLE), NFT_TABLE);
        assert_string_equal(nftnl_rule_get_str(r, NFTNL_RULE_CHAIN), NFT_CHAIN);
        it = nftnl_expr_iter_create(r);
        while ((e = nftnl_expr_iter_next(it))) {
                const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
                strncat(v.names, name, sizeof(v.names) - strlen(v.names) - 2);
                strcat(v.names, " ");
                if (streq(name, "lookup"))
                        snprintf(v.set, sizeof(v.set), "%s", nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET));
                if (streq(name, "immediate"))
                        v.verdict = nftnl_expr_get_u32(e, NFTNL_EXPR_IMM_VERDICT);
                if (i == 3) {
                        uint32_t n = 0;
                        const uint8_t *d = nftnl_expr_get(e, NFTNL_EXPR_CMP_DATA, &n);
                        assert_int_equal(n, 2);
                        v.port = (uint16_t) (d[0] << 8 | d[1]);
                }
                i++;
        }
        nftnl_expr_iter_destroy(it);
        ud = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &len);
        assert_non_null(ud);
        /* one TLV: type NFTNL_UDATA_RULE_COMMENT, length, NUL-terminated text */
        assert_int_equal(((const uint8_t *) ud)[0], NFTNL_UDATA_RULE_COMMENT);
        snprintf(v.comment, sizeof(v.comment), "%s", (const char *) ud + 2);
        nftnl_rule_free(r);
        return v;
}

/* --- the address model ------------------------------------------------------------------------ */

static void test_parse_cidr(void **state) {
        fw_family f;
        fw_range r;

        assert_int_equal(fw_parse_cidr("10.99.0.3/32", &f, &r), 0);
        assert_int_equal(f, FW_V4);
        check_range(&r, v4("10.99.0.3"), v4("10.99.0.3"));
        assert_int_equal(fw_parse_cidr("10.99.0.3", &f, &r), 0); /* a bare address is a host */
        check_range(&r, v4("10.99.0.3"), v4("10.99.0.3"));
        assert_int_equal(fw_parse_cidr("10.1.2.3/8", &f, &r), 0); /* host bits cleared */
        check_range(&r, v4("10.0.0.0"), v4("10.255.255.255"));
        assert_int_equal(fw_parse_cidr("0.0.0.0/0", &f, &r), 0);
        check_range(&r, 0, UINT32_MAX);
        assert_int_equal(fw_parse_cidr("fd00::3/128", &f, &r), 0);
        assert_int_equal(f, FW_V6);
        check_range(&r, v6("fd00::3"), v6("fd00::3"));
        assert_int_equal(fw_parse_cidr("fd00::/64", &f, &r), 0);
        check_range(&r, v6("fd00::"), v6("fd00::ffff:ffff:ffff:ffff"));
        assert_int_equal(fw_parse_cidr("::/0", &f, &r), 0);
        check_range(&r, 0, ~(fw_addr) 0);
        assert_int_equal(fw_parse_cidr("::ffff:10.0.0.1/128", &f, &r), 0);
        assert_int_equal(f, FW_V6);

        const char *bad[] = { "", "/8", "10.0.0.1/33", "10.0.0/8", "10.0.0.1/", "10.0.0.1/a", "10.0.0.1/-1",
                              "fd00::/129", " 10.0.0.1", "10.0.0.1 ", "10.0.0.1/8/8", "10.0.0.256", "host.example",
                              "10.0.0.1/0008" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(fw_parse_cidr(bad[i], &f, &r), -EINVAL);
}

static void test_normalise(void **state) {
        fw_ranges r = {};

        /* Overlaps, duplicates, unsorted input, adjacent hosts. */
        add_cidr(&r, FW_V4, "10.1.0.0/16");
        add_cidr(&r, FW_V4, "192.168.0.5/32");
        add_cidr(&r, FW_V4, "10.0.0.0/8");
        add_cidr(&r, FW_V4, "192.168.0.4/32");
        add_cidr(&r, FW_V4, "192.168.0.4/32");
        add_cidr(&r, FW_V4, "192.168.0.7/32");
        add_cidr(&r, FW_V4, "11.0.0.0/8"); /* adjacent to 10.0.0.0/8 */
        fw_ranges_normalise(&r);
        assert_int_equal(r.n, 3);
        check_range(&r.v[0], v4("10.0.0.0"), v4("11.255.255.255"));
        check_range(&r.v[1], v4("192.168.0.4"), v4("192.168.0.5"));
        check_range(&r.v[2], v4("192.168.0.7"), v4("192.168.0.7"));
        fw_ranges_done(&r);

        /* /0 swallows everything. */
        add_cidr(&r, FW_V4, "10.0.0.1/32");
        add_cidr(&r, FW_V4, "0.0.0.0/0");
        add_cidr(&r, FW_V4, "255.255.255.255/32");
        fw_ranges_normalise(&r);
        assert_int_equal(r.n, 1);
        check_range(&r.v[0], 0, UINT32_MAX);
        fw_ranges_done(&r);

        /* The top of the IPv6 space: no overflow when merging at the end. */
        add_cidr(&r, FW_V6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
        add_cidr(&r, FW_V6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/128");
        add_cidr(&r, FW_V6, "::1/128");
        fw_ranges_normalise(&r);
        assert_int_equal(r.n, 2);
        check_range(&r.v[0], 1, 1);
        check_range(&r.v[1], ~(fw_addr) 0 - 1, ~(fw_addr) 0);
        fw_ranges_done(&r);

        /* Empty stays empty. */
        fw_ranges_normalise(&r);
        assert_int_equal(r.n, 0);
}

static void test_prefixes(void **state) {
        fw_ranges r = {};
        fw_prefix *p = NULL;
        size_t n;
        const char *want[] = { "10.0.0.1/32", "10.0.0.2/31", "10.0.0.4/32", "10.1.0.0/16" };

        fw_ranges_push(&r, (fw_range) { v4("10.0.0.1"), v4("10.0.0.4") });
        add_cidr(&r, FW_V4, "10.1.0.0/16");
        n = fw_ranges_prefixes(FW_V4, &r, &p);
        assert_int_equal(n, ELEMENTSOF(want));
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *s = fw_prefix_to_string(FW_V4, &p[i]);
                assert_string_equal(s, want[i]);
        }
        free(p);
        fw_ranges_done(&r);

        add_cidr(&r, FW_V4, "0.0.0.0/0");
        n = fw_ranges_prefixes(FW_V4, &r, &p);
        assert_int_equal(n, 1);
        {
                _cleanup_free_ char *s = fw_prefix_to_string(FW_V4, &p[0]);
                assert_string_equal(s, "0.0.0.0/0");
        }
        free(p);
        fw_ranges_done(&r);

        add_cidr(&r, FW_V6, "::/0");
        n = fw_ranges_prefixes(FW_V6, &r, &p);
        assert_int_equal(n, 1);
        {
                _cleanup_free_ char *s = fw_prefix_to_string(FW_V6, &p[0]);
                assert_string_equal(s, "::/0");
        }
        free(p);
        fw_ranges_done(&r);
}

static void test_diff(void **state) {
        fw_ranges old = {}, new = {}, del = {}, add = {};
        size_t added, removed;

        add_cidr(&old, FW_V4, "10.99.0.3/32");
        add_cidr(&old, FW_V4, "10.98.0.0/16");
        add_cidr(&new, FW_V4, "10.98.0.0/16");
        add_cidr(&new, FW_V4, "10.97.0.1/32");
        fw_ranges_normalise(&old);
        fw_ranges_normalise(&new);
        fw_ranges_diff(&old, &new, &del, &add);
        assert_int_equal(del.n, 1);
        check_range(&del.v[0], v4("10.99.0.3"), v4("10.99.0.3"));
        assert_int_equal(add.n, 1);
        check_range(&add.v[0], v4("10.97.0.1"), v4("10.97.0.1"));
        firewall_count_changes(FW_V4, &old, &new, &added, &removed);
        assert_int_equal(added, 1);
        assert_int_equal(removed, 1);
        fw_ranges_done(&del);
        fw_ranges_done(&add);

        /* Same content: nothing to send. */
        fw_ranges_diff(&new, &new, &del, &add);
        assert_int_equal(del.n + add.n, 0);
        assert_true(fw_ranges_equal(&new, &new));
        assert_false(fw_ranges_equal(&old, &new));
        fw_ranges_done(&old);
        fw_ranges_done(&new);

        /* A host next to another: the merged range changes (one element out, one in) but it is
         * one address added. */
        add_cidr(&old, FW_V4, "10.99.0.3/32");
        add_cidr(&new, FW_V4, "10.99.0.3/32");
        add_cidr(&new, FW_V4, "10.99.0.4/32");
        fw_ranges_normalise(&new);
        fw_ranges_diff(&old, &new, &del, &add);
        assert_int_equal(del.n, 1);
        assert_int_equal(add.n, 1);
        check_range(&add.v[0], v4("10.99.0.3"), v4("10.99.0.4"));
        firewall_count_changes(FW_V4, &old, &new, &added, &removed);
        assert_int_equal(added, 1);
        assert_int_equal(removed, 0);
        fw_ranges_done(&del);
        fw_ranges_done(&add);
        fw_ranges_done(&old);
        fw_ranges_done(&new);
}

/* --- batches ---------------------------------------------------------------------------------- */

static void test_batch_one_database(void **state) {
        static const uint8_t nonce[NFT_NONCE_SIZE] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
        static const uint16_t types[] = {
                NFNL_MSG_BATCH_BEGIN, NFT_MSG_NEWTABLE,   NFT_MSG_NEWCHAIN, NFT_MSG_NEWSET,     NFT_MSG_NEWSETELEM,
                NFT_MSG_NEWSET,       NFT_MSG_NEWSETELEM, NFT_MSG_NEWSET,   NFT_MSG_NEWSETELEM, NFT_MSG_NEWSET,
                NFT_MSG_NEWSETELEM,   NFT_MSG_NEWRULE,    NFT_MSG_NEWRULE,  NFT_MSG_NEWRULE,    NFT_MSG_NEWRULE,
                NFT_MSG_NEWRULE,      NFNL_MSG_BATCH_END,
        };
        fw_db db = one_db();
        nft_batch *b = nft_batch_new(42);
        msgs m;

        nft_batch_add_table(b, nonce);
        nft_batch_add_chain(b);
        nft_batch_add_sets(b, &db);
        nft_batch_add_rules(b, &db);
        assert_int_equal(nft_batch_end(b), ELEMENTSOF(types) - 2);
        m = batch_messages(b);
        assert_int_equal(m.n, ELEMENTSOF(types));
        for (size_t i = 0; i < m.n; i++) {
                assert_int_equal(msg_type(m.v[i]), types[i]);
                if (i > 0)
                        assert_int_equal(m.v[i]->nlmsg_seq, m.v[i - 1]->nlmsg_seq + 1);
        }
        /* The generation the batch was planned at travels in the batch begin message. */
        {
                const struct nlattr *a;
                bool found = false;
                mnl_attr_for_each(a, m.v[0], sizeof(struct nfgenmsg))
                        if (mnl_attr_get_type(a) == NFNL_BATCH_GENID) {
                                assert_int_equal(ntohl(mnl_attr_get_u32(a)), 42);
                                found = true;
                        }
                assert_true(found);
        }
        /* table inet infrastream, with our comment and nonce */
        {
                struct nftnl_table *t = nftnl_table_alloc();
                uint32_t len = 0;
                const uint8_t *ud;
                assert_true(nftnl_table_nlmsg_parse(m.v[1], t) >= 0);
                assert_int_equal(((const struct nfgenmsg *) mnl_nlmsg_get_payload(m.v[1]))->nfgen_family, NFPROTO_INET);
                assert_string_equal(nftnl_table_get_str(t, NFTNL_TABLE_NAME), "infrastream");
                ud = nftnl_table_get_data(t, NFTNL_TABLE_USERDATA, &len);
                assert_non_null(ud);
                assert_int_equal(ud[0], NFTNL_UDATA_TABLE_COMMENT);
                assert_string_equal((const char *) ud + 2, NFT_TABLE_COMMENT);
                assert_non_null(memmem(ud, len, nonce, sizeof(nonce)));
                nftnl_table_free(t);
        }
        /* chain input: type filter hook input priority filter; policy accept */
        {
                struct nftnl_chain *c = nftnl_chain_alloc();
                assert_true(nftnl_chain_nlmsg_parse(m.v[2], c) >= 0);
                assert_string_equal(nftnl_chain_get_str(c, NFTNL_CHAIN_NAME), "input");
                assert_string_equal(nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE), "filter");
                assert_int_equal(nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM), NF_INET_LOCAL_IN);
                assert_int_equal(nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO), 0);
                assert_int_equal(nftnl_chain_get_u32(c, NFTNL_CHAIN_POLICY), NF_ACCEPT);
                nftnl_chain_free(c);
        }
        /* the sets: hash sets (no flags) and interval sets of ipv4_addr (7) and ipv6_addr (8) */
        for (fw_set k = FW_SET_H4; k < FW_SET_MAX; k++) {
                static const char *const names[] = { "accounts-db-h4", "accounts-db-n4", "accounts-db-h6", "accounts-db-n6" };
                bool v4 = k == FW_SET_H4 || k == FW_SET_N4;
                struct nftnl_set *s = nftnl_set_alloc();
                assert_true(nftnl_set_nlmsg_parse(m.v[3 + 2 * k], s) >= 0);
                assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_NAME), names[k]);
                assert_string_equal(nftnl_set_get_str(s, NFTNL_SET_TABLE), "infrastream");
                assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_FLAGS), fw_set_hosts(k) ? 0 : NFT_SET_INTERVAL);
                assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_KEY_TYPE), v4 ? 7 : 8);
                assert_int_equal(nftnl_set_get_u32(s, NFTNL_SET_KEY_LEN), v4 ? 4 : 16);
                assert_true(nftnl_set_get_u32(s, NFTNL_SET_ID) != 0);
                assert_false(nftnl_set_is_set(s, NFTNL_SET_DATA_TYPE));
                nftnl_set_free(s);
        }
        /* elements: a host is one element; an interval is a start and an end one past its last address */
        {
                _cleanup_free_ char *set = NULL;
                _cleanup_free_ elem *e = NULL;
                size_t n = parse_elements(m.v[4], &set, &e);
                assert_string_equal(set, "accounts-db-h4");
                assert_int_equal(n, 1);
                assert_true(e[0].key == v4("192.168.1.1") && !e[0].end);
        }
        {
                _cleanup_free_ char *set = NULL;
                _cleanup_free_ elem *e = NULL;
                size_t n = parse_elements(m.v[6], &set, &e);
                assert_string_equal(set, "accounts-db-n4");
                assert_int_equal(n, 2);
                assert_true(e[0].key == v4("10.0.0.0") && !e[0].end);
                assert_true(e[1].key == v4("11.0.0.0") && e[1].end);
        }
        {
                _cleanup_free_ char *set = NULL;
                _cleanup_free_ elem *e = NULL;
                size_t n = parse_elements(m.v[8], &set, &e);
                assert_string_equal(set, "accounts-db-h6");
                assert_int_equal(n, 1);
                assert_true(e[0].key == v6("::1") && !e[0].end);
        }
        {
                _cleanup_free_ char *set = NULL;
                _cleanup_free_ elem *e = NULL;
                size_t n = parse_elements(m.v[10], &set, &e);
                assert_string_equal(set, "accounts-db-n6");
                assert_int_equal(n, 2);
                assert_true(e[0].key == v6("fd00::") && !e[0].end);
                assert_true(e[1].key == v6("fd00:0:0:1::") && e[1].end);
        }
        /* rules: tcp dport 5432 ip saddr @accounts-db-h4 accept, … @accounts-db-n4 accept, the same
         * for ip6, tcp dport 5432 drop */
        {
                static const char *const sets[] = { "accounts-db-h4", "accounts-db-n4", "accounts-db-h6", "accounts-db-n6" };
                const char *accept = "meta cmp payload cmp meta cmp payload lookup immediate ";
                rule_view rd = view_rule(m.v[15]);
                for (int k = 0; k < 4; k++) {
                        rule_view r = view_rule(m.v[11 + k]);
                        assert_string_equal(r.names, accept);
                        assert_string_equal(r.set, sets[k]);
                        assert_int_equal(r.verdict, NF_ACCEPT);
                        assert_int_equal(r.port, 5432);
                        assert_string_equal(r.comment, "accounts-db");
                }
                assert_string_equal(rd.names, "meta cmp payload cmp immediate ");
                assert_int_equal(rd.verdict, NF_DROP);
                assert_int_equal(rd.port, 5432);
                assert_string_equal(rd.comment, "accounts-db");
        }
        free(m.v);
        nft_batch_free(b);
        fw_db_done(&db);
}

static void test_batch_edges(void **state) {
        fw_db db = { .name = xstrdup("all") , .port = 6543 };
        nft_batch *b = nft_batch_new(0);
        msgs m;

        /* The top of the address space has no end element (it would overflow); /0 is one element. */
        add_cidr(&db.allow[FW_SET_N4], FW_V4, "255.255.255.0/24");
        add_cidr(&db.allow[FW_SET_N6], FW_V6, "::/0");
        nft_batch_add_sets(b, &db);
        /* set h4, set n4, elements n4, set h6, set n6, elements n6: empty sets get no element message */
        assert_int_equal(nft_batch_end(b), 6);
        m = batch_messages(b);
        assert_int_equal(m.n, 8);
        /* no generation check asked for */
        assert_int_equal(mnl_nlmsg_get_payload_len(m.v[0]), sizeof(struct nfgenmsg));
        {
                _cleanup_free_ char *set = NULL;
                _cleanup_free_ elem *e = NULL;
                assert_int_equal(msg_type(m.v[3]), NFT_MSG_NEWSETELEM);
                assert_int_equal(parse_elements(m.v[3], &set, &e), 1);
                assert_string_equal(set, "all-n4");
                assert_true(e[0].key == v4("255.255.255.0") && !e[0].end);
        }
        {
                _cleanup_free_ char *set = NULL;
                _cleanup_free_ elem *e = NULL;
                assert_int_equal(msg_type(m.v[6]), NFT_MSG_NEWSETELEM);
                assert_int_equal(parse_elements(m.v[6], &set, &e), 1);
                assert_string_equal(set, "all-n6");
                assert_true(e[0].key == 0 && !e[0].end);
        }
        free(m.v);
        nft_batch_free(b);

        /* An empty set gets no element message at all; an empty batch has nothing to send. */
        b = nft_batch_new(0);
        nft_batch_elements(b, "all", FW_SET_N4, &(fw_ranges) {}, true);
        assert_int_equal(nft_batch_end(b), 0);
        nft_batch_free(b);
        fw_db_done(&db);
}

/* 20,000 single-address intervals: the element list is split over messages whose nest stays
 * under 64 KiB, no interval is split across two messages, and nothing is lost. The same hosts in
 * a hash set are one element each. */
static void test_batch_split(void **state) {
        fw_ranges r = {};
        nft_batch *b = nft_batch_new(0);
        size_t total = 0, n_msgs = 0;
        fw_addr expect = v4("10.0.0.0");
        msgs m;

        for (uint32_t i = 0; i < 20000; i++)
                fw_ranges_push(&r, (fw_range) { v4("10.0.0.0") + 2 * i, v4("10.0.0.0") + 2 * i });
        nft_batch_elements(b, "big", FW_SET_N4, &r, false);
        assert_true(nft_batch_end(b) > 1);
        m = batch_messages(b);
        for (size_t i = 0; i < m.n; i++) {
                _cleanup_free_ char *set = NULL;
                _cleanup_free_ elem *e = NULL;
                size_t n;
                if (msg_type(m.v[i]) != NFT_MSG_DELSETELEM)
                        continue;
                n_msgs++;
                assert_true(m.v[i]->nlmsg_len < 65536 + 256);
                n = parse_elements(m.v[i], &set, &e);
                assert_string_equal(set, "big-n4");
                assert_int_equal(n % 2, 0);
                for (size_t j = 0; j < n; j += 2) {
                        assert_true(e[j].key == expect && !e[j].end);
                        assert_true(e[j + 1].key == expect + 1 && e[j + 1].end);
                        expect += 2;
                }
                total += n;
        }
        assert_true(n_msgs > 1);
        assert_int_equal(total, 40000);
        free(m.v);
        nft_batch_free(b);

        b = nft_batch_new(0);
        nft_batch_elements(b, "big", FW_SET_H4, &r, true);
        assert_true(nft_batch_end(b) > 1);
        m = batch_messages(b);
        total = 0;
        expect = v4("10.0.0.0");
        for (size_t i = 0; i < m.n; i++) {
                _cleanup_free_ char *set = NULL;
                _cleanup_free_ elem *e = NULL;
                size_t n;
                if (msg_type(m.v[i]) != NFT_MSG_NEWSETELEM)
                        continue;
                assert_true(m.v[i]->nlmsg_len < 65536 + 256);
                n = parse_elements(m.v[i], &set, &e);
                assert_string_equal(set, "big-h4");
                for (size_t j = 0; j < n; j++) {
                        assert_true(e[j].key == expect && !e[j].end);
                        expect += 2;
                }
                total += n;
        }
        assert_int_equal(total, 20000);
        free(m.v);
        nft_batch_free(b);
        fw_ranges_done(&r);
}

/* --- errors ----------------------------------------------------------------------------------- */

/* An NLMSG_ERROR as the kernel sends it with NETLINK_CAP_ACK and NETLINK_EXT_ACK set. */
static size_t kernel_error_reply(char *buf, const struct nlmsghdr *orig, int error, int32_t offset) {
        struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
        struct nlmsgerr *err = mnl_nlmsg_put_extra_header(nlh, sizeof(*err));

        nlh->nlmsg_type = NLMSG_ERROR;
        nlh->nlmsg_flags = NLM_F_CAPPED;
        nlh->nlmsg_seq = orig->nlmsg_seq;
        err->error = -error;
        err->msg = *orig;
        if (offset >= 0) {
                nlh->nlmsg_flags |= NLM_F_ACK_TLVS;
                mnl_attr_put_u32(nlh, NLMSGERR_ATTR_OFFS, (uint32_t) offset);
        }
        return nlh->nlmsg_len;
}

/* Offset of the n-th element of an element message. */
static int32_t element_offset(const struct nlmsghdr *nlh, size_t n) {
        const struct nlattr *a, *e;
        mnl_attr_for_each(a, nlh, sizeof(struct nfgenmsg)) {
                size_t i = 0;
                if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
                        continue;
                mnl_attr_for_each_nested(e, a)
                        if (i++ == n)
                                return (int32_t) ((const char *) e - (const char *) nlh);
        }
        return -1;
}

static void test_errors_mapped(void **state) {
        fw_db a = one_db(), other = { .name = xstrdup("billing-db"), .port = 5433 };
        nft_batch *b = nft_batch_new(7);
        nft_error *errs = NULL;
        size_t n_errs = 0, len = 0;
        char buf[4096];
        msgs m;

        add_cidr(&other.allow[FW_SET_N4], FW_V4, "172.16.0.0/30");
        nft_batch_add_table(b, (const uint8_t[NFT_NONCE_SIZE]) {});
        nft_batch_add_chain(b);
        nft_batch_add_sets(b, &a);
        nft_batch_add_rules(b, &a);
        nft_batch_add_sets(b, &other);
        nft_batch_end(b);
        m = batch_messages(b);
        /* 0 begin, 1 table, 2 chain, 3-10 sets a-h4, a-n4, a-h6, a-n6 each with its elements,
         * 11-15 rules, 16 set billing-h4, 17 set billing-n4, 18 elements billing-n4, 19 set
         * billing-h6, 20 set billing-n6, 21 end */
        assert_int_equal(msg_type(m.v[8]), NFT_MSG_NEWSETELEM);
        assert_int_equal(msg_type(m.v[10]), NFT_MSG_NEWSETELEM);
        assert_int_equal(msg_type(m.v[18]), NFT_MSG_NEWSETELEM);

        /* The first element of a-n6 (the start of fd00::/64), the end of 172.16.0.0/30, the host ::1. */
        len += kernel_error_reply(buf + len, m.v[10], EEXIST, element_offset(m.v[10], 0));
        len += kernel_error_reply(buf + len, m.v[18], ENOSPC, element_offset(m.v[18], 1));
        len += kernel_error_reply(buf + len, m.v[13], EOPNOTSUPP, -1);
        len += kernel_error_reply(buf + len, m.v[0], ERESTART, -1);
        len += kernel_error_reply(buf + len, m.v[8], EEXIST, element_offset(m.v[8], 0));
        nft_batch_collect_errors(b, buf, len, &errs, &n_errs);
        assert_int_equal(n_errs, 5);

        assert_int_equal(errs[0].error, EEXIST);
        assert_string_equal(errs[0].object, "elements");
        assert_string_equal(errs[0].db, "accounts-db");
        assert_int_equal(errs[0].family, FW_V6);
        assert_int_equal(errs[0].set, FW_SET_N6);
        assert_true(errs[0].has_element);
        assert_false(errs[0].element_end);
        assert_true(errs[0].element == v6("fd00::"));

        assert_int_equal(errs[1].error, ENOSPC);
        assert_string_equal(errs[1].db, "billing-db");
        assert_int_equal(errs[1].family, FW_V4);
        assert_int_equal(errs[1].set, FW_SET_N4);
        assert_true(errs[1].has_element);
        assert_true(errs[1].element_end);
        assert_true(errs[1].element == v4("172.16.0.4"));

        assert_string_equal(errs[2].object, "rule");
        assert_string_equal(errs[2].db, "accounts-db");
        assert_false(errs[2].has_element);

        assert_string_equal(errs[3].object, "batch");
        assert_null(errs[3].db);
        assert_int_equal(errs[3].error, ERESTART);

        assert_string_equal(errs[4].object, "elements");
        assert_int_equal(errs[4].set, FW_SET_H6);
        assert_int_equal(errs[4].family, FW_V6);
        assert_true(errs[4].has_element);
        assert_false(errs[4].element_end);
        assert_true(errs[4].element == v6("::1"));

        nft_errors_free(errs, n_errs);
        free(m.v);
        nft_batch_free(b);
        fw_db_done(&a);
        fw_db_done(&other);
}

/* --- the document's side ---------------------------------------------------------------------- */

static void test_desired(void **state) {
        doc_database dbs[] = {
                { .name = "zeta", .port = 5433, .allow = (char *[]) { "10.0.0.2/32", "10.0.0.1/32", "fd00::1/128", "10.0.0.2",
                                                                      "10.1.0.0/25", "10.1.0.128/25", "fd00:1::/64" }, .n_allow = 7 },
                { .name = "alpha", .port = 5432, .allow = (char *[]) { "0.0.0.0/0" }, .n_allow = 1 },
        };
        doc_document d = { .databases = dbs, .n_databases = 2 };
        _cleanup_free_ char *err = NULL;
        const char *bad = NULL;
        fw_db *v = NULL;
        size_t n = 0;

        assert_int_equal(firewall_desired(&d, &v, &n, &err, &bad), 0);
        assert_int_equal(n, 2);
        assert_string_equal(v[0].name, "alpha");
        assert_int_equal(v[0].allow[FW_SET_N4].n, 1);
        assert_int_equal(v[0].allow[FW_SET_H4].n, 0);
        assert_int_equal(v[0].allow[FW_SET_H6].n, 0);
        assert_int_equal(v[0].allow[FW_SET_N6].n, 0);
        assert_string_equal(v[1].name, "zeta");
        assert_int_equal(v[1].port, 5433);
        /* Hosts go to the hash set, sorted and unique but never merged (.1 and .2 stay two) */
        assert_int_equal(v[1].allow[FW_SET_H4].n, 2);
        check_range(&v[1].allow[FW_SET_H4].v[0], v4("10.0.0.1"), v4("10.0.0.1"));
        check_range(&v[1].allow[FW_SET_H4].v[1], v4("10.0.0.2"), v4("10.0.0.2"));
        /* networks to the interval set, merged */
        assert_int_equal(v[1].allow[FW_SET_N4].n, 1);
        check_range(&v[1].allow[FW_SET_N4].v[0], v4("10.1.0.0"), v4("10.1.0.255"));
        assert_int_equal(v[1].allow[FW_SET_H6].n, 1);
        assert_int_equal(v[1].allow[FW_SET_N6].n, 1);
        firewall_dbs_free(v, n);

        dbs[0].allow[1] = "10.0.0.1/40";
        assert_int_equal(firewall_desired(&d, &v, &n, &err, &bad), -EINVAL);
        assert_string_equal(bad, "zeta");
        assert_string_equal(err, "allow[1] '10.0.0.1/40' is not an IP address or CIDR");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_cidr),         cmocka_unit_test(test_normalise),
                cmocka_unit_test(test_prefixes),           cmocka_unit_test(test_diff),
                cmocka_unit_test(test_batch_one_database), cmocka_unit_test(test_batch_edges),
                cmocka_unit_test(test_batch_split),        cmocka_unit_test(test_errors_mapped),
                cmocka_unit_test(test_desired),
        };
        return cmocka_run_group_tests_name("nft", tests, NULL, NULL);
}
