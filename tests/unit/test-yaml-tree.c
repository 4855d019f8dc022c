/* Unit tests for the YAML node tree: marks, typing, anchors and merge keys, and the bounds
 * that keep hostile files from exhausting memory or time. */
#include <stdio.h>

#include "unit.h"
#include "yaml-tree.h"

static yfile *load(const char *text, diag_list *d, int *ret) {
        yfile *f = NULL;
        diag_list_init(d);
        *ret = yaml_load("t.yaml", text, strlen(text), NULL, false, d, &f);
        return f;
}

static yfile *load_limited(const char *text, uint64_t max_weight, diag_list *d, int *ret) {
        yaml_limits lim = yaml_limits_default;
        yfile *f = NULL;

        lim.max_weight = max_weight;
        diag_list_init(d);
        *ret = yaml_load("t.yaml", text, strlen(text), &lim, false, d, &f);
        return f;
}

static void assert_one_error(diag_list *d, int line, int col, const char *msg) {
        assert_int_equal(d->n_errors, 1);
        assert_int_equal(d->items[0].line, line);
        assert_int_equal(d->items[0].col, col);
        assert_string_equal(d->items[0].message, msg);
}

static void test_marks(void **state) {
        diag_list d;
        int r;
        yfile *f = load("a: 1\nb:\n  c: [x, y]\n", &d, &r);
        const ynode *root, *b, *c;

        assert_int_equal(r, 0);
        assert_int_equal(f->n_docs, 1);
        root = f->docs[0].root;
        assert_int_equal(root->type, YNODE_MAPPING);
        b = ymap_get(root, "b");
        assert_non_null(b);
        assert_int_equal(b->line, 3);
        assert_int_equal(b->col, 3);
        c = ymap_get(b, "c");
        assert_int_equal(c->type, YNODE_SEQUENCE);
        assert_int_equal(c->n_items, 2);
        assert_int_equal(c->items[1]->line, 3);
        assert_int_equal(c->items[1]->col, 10);
        assert_string_equal(c->items[1]->value, "y");
        yfile_free(f);
        diag_list_done(&d);
}

static void test_typing(void **state) {
        diag_list d;
        int r;
        yfile *f = load("i: 42\nneg: -7\nq: \"42\"\nt: true\nT: True\ny: yes\nn: ~\ne:\ns: !!str 5\nbig: 99999999999999999999\n", &d, &r);
        const ynode *root = f->docs[0].root;
        int64_t v;
        bool b;

        assert_int_equal(r, 0);
        assert_int_equal(ynode_get_int(ymap_get(root, "i"), &v), 0);
        assert_int_equal(v, 42);
        assert_int_equal(ynode_get_int(ymap_get(root, "neg"), &v), 0);
        assert_int_equal(v, -7);
        /* Quoted numbers are strings: cpuCount: "4" is a type error, not 4. */
        assert_int_equal(ynode_get_int(ymap_get(root, "q"), &v), -EINVAL);
        assert_true(ynode_is_string(ymap_get(root, "q")));
        assert_int_equal(ynode_get_bool(ymap_get(root, "t"), &b), 0);
        assert_true(b);
        assert_int_equal(ynode_get_bool(ymap_get(root, "T"), &b), 0);
        /* YAML 1.2: yes is a string, not a boolean. */
        assert_int_equal(ynode_get_bool(ymap_get(root, "y"), &b), -EINVAL);
        assert_true(ynode_is_null(ymap_get(root, "n")));
        assert_true(ynode_is_null(ymap_get(root, "e")));
        assert_true(ynode_is_string(ymap_get(root, "s")));
        assert_int_equal(ynode_get_int(ymap_get(root, "big"), &v), -ERANGE);
        assert_string_equal(ynode_type_name(ymap_get(root, "t")), "a boolean");
        assert_string_equal(ynode_type_name(ymap_get(root, "i")), "an integer");
        assert_string_equal(ynode_type_name(ymap_get(root, "q")), "a string");
        yfile_free(f);
        diag_list_done(&d);
}

static void test_anchors_and_merge(void **state) {
        diag_list d;
        int r;
        yfile *f = load("base: &b\n  cpuCount: 4\n  clusterSize: 1\n"
                        "x:\n  <<: *b\n  clusterSize: 3\n"
                        "list: &l [1, 2]\nagain: *l\n",
                        &d, &r);
        const ynode *root = f->docs[0].root, *x;
        int64_t v;

        assert_int_equal(r, 0);
        x = ymap_get(root, "x");
        assert_int_equal(x->n_pairs, 2);
        assert_int_equal(ynode_get_int(ymap_get(x, "cpuCount"), &v), 0);
        assert_int_equal(v, 4);
        /* Explicit keys win over merged ones. */
        assert_int_equal(ynode_get_int(ymap_get(x, "clusterSize"), &v), 0);
        assert_int_equal(v, 3);
        assert_ptr_equal(ymap_get(root, "again"), ymap_get(root, "list"));
        yfile_free(f);
        diag_list_done(&d);
}

static void test_billion_laughs(void **state) {
        diag_list d;
        int r;
        yfile *f = load("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
                        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                        "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                        "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                        "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n",
                        &d, &r);

        assert_int_equal(r, -EBADMSG);
        assert_int_equal(d.n_errors, 1);
        assert_string_equal(d.items[0].message,
                            "document expands to more than 1000000 nodes with its aliases; refusing an alias bomb");
        yfile_free(f);
        diag_list_done(&d);
}

static void test_depth(void **state) {
        char buf[400];
        diag_list d;
        int r;
        yfile *f;

        memset(buf, '[', 100);
        buf[100] = '\0';
        f = load(buf, &d, &r);
        assert_int_equal(r, -EBADMSG);
        assert_one_error(&d, 1, 65, "nesting deeper than 64 levels");
        yfile_free(f);
        diag_list_done(&d);
}

static void test_duplicate_keys(void **state) {
        diag_list d;
        int r;
        yfile *f = load("a: 1\nb: 2\na: 3\n", &d, &r);

        assert_int_equal(r, -EBADMSG);
        assert_one_error(&d, 3, 1, "duplicate key 'a' (first defined at 1:1)");
        yfile_free(f);
        diag_list_done(&d);
}

static void test_alias_errors(void **state) {
        diag_list d;
        int r;
        yfile *f = load("a: *nope\n", &d, &r);

        assert_int_equal(r, -EBADMSG);
        assert_one_error(&d, 1, 4, "unknown alias '*nope'");
        yfile_free(f);
        diag_list_done(&d);

        f = load("a: &x [1, *x]\n", &d, &r);
        assert_int_equal(r, -EBADMSG);
        assert_one_error(&d, 1, 11, "alias '*x' refers to a node that contains it");
        yfile_free(f);
        diag_list_done(&d);
}

static void test_syntax_error(void **state) {
        diag_list d;
        int r;
        yfile *f = load("a: [1, 2\nb: 3\n", &d, &r);

        assert_int_equal(r, -EBADMSG);
        assert_int_equal(d.n_errors, 1);
        assert_true(f->syntax_error);
        assert_non_null(strstr(d.items[0].message, "YAML syntax error: "));
        yfile_free(f);
        diag_list_done(&d);
}

static void test_multi_document(void **state) {
        diag_list d;
        int r;
        yfile *f = load("---\na: 1\n---\nb: 2\n---\n", &d, &r);

        assert_int_equal(r, 0);
        assert_int_equal(f->n_docs, 3);
        assert_int_equal(f->docs[1].line, 3);
        assert_non_null(ymap_get(f->docs[1].root, "b"));
        yfile_free(f);
        diag_list_done(&d);
}

static void test_complex_key(void **state) {
        diag_list d;
        int r;
        yfile *f = load("? [a, b]\n: 1\n", &d, &r);

        assert_int_equal(r, -EBADMSG);
        assert_one_error(&d, 1, 3, "mapping keys must be plain scalars, not a list");
        yfile_free(f);
        diag_list_done(&d);
}

static void test_null_and_bool_spellings(void **state) {
        diag_list d;
        int r;
        yfile *f = load("n1: null\nn2: Null\nn3: NULL\nn4: nul\nn5: ~x\nn6: nULL\nq: \"~\"\n"
                        "b1: false\nb2: False\nb3: FALSE\nb4: f\nb5: tru\nb6: TRUE\nb7: fAlse\n",
                        &d, &r);
        const ynode *root = f->docs[0].root;
        bool b = true;

        assert_int_equal(r, 0);
        assert_true(ynode_is_null(ymap_get(root, "n1")));
        assert_true(ynode_is_null(ymap_get(root, "n2")));
        assert_true(ynode_is_null(ymap_get(root, "n3")));
        assert_false(ynode_is_null(ymap_get(root, "n4")));
        assert_false(ynode_is_null(ymap_get(root, "n5")));
        assert_false(ynode_is_null(ymap_get(root, "n6")));
        assert_false(ynode_is_null(ymap_get(root, "q")));
        assert_int_equal(ynode_get_bool(ymap_get(root, "b1"), &b), 0);
        assert_false(b);
        assert_int_equal(ynode_get_bool(ymap_get(root, "b2"), &b), 0);
        assert_int_equal(ynode_get_bool(ymap_get(root, "b3"), &b), 0);
        assert_int_equal(ynode_get_bool(ymap_get(root, "b4"), &b), -EINVAL);
        assert_int_equal(ynode_get_bool(ymap_get(root, "b5"), &b), -EINVAL);
        assert_int_equal(ynode_get_bool(ymap_get(root, "b6"), &b), 0);
        assert_true(b);
        assert_int_equal(ynode_get_bool(ymap_get(root, "b7"), &b), -EINVAL);
        assert_string_equal(ynode_type_name(ymap_get(root, "n5")), "a string");
        yfile_free(f);
        diag_list_done(&d);
}

static void test_duplicate_keys_repeated(void **state) {
        diag_list d;
        int r;
        /* Each repeat names the occurrence just before it, small mapping or large. */
        yfile *f = load("a: 1\nb: 2\na: 3\na: 4\n", &d, &r);

        assert_int_equal(r, -EBADMSG);
        diag_sort(&d);
        assert_int_equal(d.n_errors, 2);
        assert_string_equal(d.items[0].message, "duplicate key 'a' (first defined at 1:1)");
        assert_int_equal(d.items[0].line, 3);
        assert_string_equal(d.items[1].message, "duplicate key 'a' (first defined at 3:1)");
        assert_int_equal(d.items[1].line, 4);
        yfile_free(f);
        diag_list_done(&d);

        f = load("k01: 1\nk02: 1\nk03: 1\nk04: 1\nk05: 1\nk06: 1\nk07: 1\nk08: 1\nk09: 1\nk10: 1\n"
                 "k11: 1\nk12: 1\nk13: 1\nk14: 1\nk15: 1\nk16: 1\nk17: 1\nk18: 1\nk05: 2\n",
                 &d, &r);
        assert_int_equal(r, -EBADMSG);
        assert_one_error(&d, 19, 1, "duplicate key 'k05' (first defined at 5:1)");
        assert_int_equal(f->docs[0].root->n_pairs, 19);
        yfile_free(f);
        diag_list_done(&d);
}

static void test_anchor_shadowing(void **state) {
        diag_list d;
        int r;
        /* A later anchor of the same name shadows the earlier one (YAML 1.2). */
        yfile *f = load("a: &x 1\nb: *x\nc: &x 2\nd: *x\n", &d, &r);
        const ynode *root = f->docs[0].root;

        assert_int_equal(r, 0);
        assert_ptr_equal(ymap_get(root, "b"), ymap_get(root, "a"));
        assert_ptr_equal(ymap_get(root, "d"), ymap_get(root, "c"));
        yfile_free(f);
        diag_list_done(&d);
}

/* Thousands of anchors: the index grows several times, names that differ in one character
 * must not be confused, and a name anchored again after the growth still shadows. */
static void test_many_anchors(void **state) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&text, &size);
        const ynode *root;
        diag_list d;
        int r;
        yfile *f;

        assert_non_null(m);
        for (int i = 0; i < 3000; i++)
                fprintf(m, "k%d: &a%d v%d\n", i, i, i);
        for (int i = 0; i < 3000; i += 7)
                fprintf(m, "s%d: &a%d w%d\n", i, i, i);
        for (int i = 0; i < 3000; i++)
                fprintf(m, "r%d: *a%d\n", i, i);
        fclose(m);

        f = load(text, &d, &r);
        assert_int_equal(r, 0);
        root = f->docs[0].root;
        for (int i = 0; i < 3000; i++) {
                char key[32], want[32];
                const ynode *v;

                snprintf(key, sizeof(key), "r%d", i);
                snprintf(want, sizeof(want), "%c%d", i % 7 == 0 ? 'w' : 'v', i);
                v = ymap_get(root, key);
                assert_non_null(v);
                assert_string_equal(v->value, want);
        }
        yfile_free(f);
        diag_list_done(&d);
}

static void test_anchors_are_per_document(void **state) {
        diag_list d;
        int r;
        /* The second document starts with an empty index, although the first one grew it. */
        yfile *f = load("---\na0: &a0 1\na1: &a1 1\na2: &a2 1\na3: &a3 1\na4: &a4 1\na5: &a5 1\na6: &a6 1\n"
                        "a7: &a7 1\na8: &a8 1\na9: &a9 1\nb: *a9\n---\nc: *a9\n",
                        &d, &r);

        assert_int_equal(r, -EBADMSG);
        assert_one_error(&d, 14, 4, "unknown alias '*a9'");
        assert_int_equal(f->n_docs, 2);
        assert_ptr_equal(ymap_get(f->docs[0].root, "b"), ymap_get(f->docs[0].root, "a9"));
        yfile_free(f);
        diag_list_done(&d);
}

static void test_anchor_limit(void **state) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&text, &size);
        diag_list d;
        int r;
        yfile *f;

        /* Two documents of 10,000 anchors each: the limit is per document. */
        assert_non_null(m);
        for (int doc = 0; doc < 2; doc++) {
                fputs("---\n", m);
                for (int i = 0; i < 10000; i++)
                        fprintf(m, "- &a%d x\n", i);
        }
        fflush(m);
        f = load(text, &d, &r);
        assert_int_equal(r, 0);
        assert_int_equal(f->n_docs, 2);
        yfile_free(f);
        diag_list_done(&d);

        fputs("- &one-too-many x\n", m);
        fclose(m);
        f = load(text, &d, &r);
        assert_int_equal(r, -EBADMSG);
        assert_one_error(&d, 20003, 3, "more than 10000 anchors in one document");
        yfile_free(f);
        diag_list_done(&d);
}

/* Merge keys: explicit keys first, in file order, then the keys each merged mapping adds, in
 * merge order; the first mapping that has a key wins. */
static void test_merge_order(void **state) {
        diag_list d;
        int r;
        yfile *f = load("a: &a {k: 1, m: 2}\nb: &b {n: 4, k: 3, e: 6}\nx:\n  e: 5\n  <<: [*a, *b]\n  z: 7\n", &d, &r);
        const ynode *x;
        static const char *const keys[] = { "e", "z", "k", "m", "n" };
        static const char *const values[] = { "5", "7", "1", "2", "4" };

        assert_int_equal(r, 0);
        assert_int_equal(d.n, 0);
        x = ymap_get(f->docs[0].root, "x");
        assert_int_equal(x->n_pairs, ELEMENTSOF(keys));
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                assert_string_equal(x->pairs[i].key->value, keys[i]);
                assert_string_equal(x->pairs[i].value->value, values[i]);
        }
        yfile_free(f);
        diag_list_done(&d);
}

/* A large merge: sorting, not a scan per key, and the same answer as a scan would give. */
static void test_merge_large(void **state) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&text, &size);
        const ynode *x;
        diag_list d;
        int r;
        yfile *f;

        assert_non_null(m);
        fputs("base: &base\n", m);
        for (int i = 0; i < 4000; i++)
                fprintf(m, "  k%d: base%d\n", i, i);
        fputs("x:\n", m);
        for (int i = 3999; i >= 0; i -= 2) /* every other key, explicit, in reverse order */
                fprintf(m, "  k%d: own%d\n", i, i);
        fputs("  <<: *base\n", m);
        fclose(m);

        f = load(text, &d, &r);
        assert_int_equal(r, 0);
        x = ymap_get(f->docs[0].root, "x");
        assert_int_equal(x->n_pairs, 4000);
        for (size_t i = 0; i < 2000; i++) {
                char want[32];
                snprintf(want, sizeof(want), "k%zu", 3999 - 2 * i);
                assert_string_equal(x->pairs[i].key->value, want);
        }
        for (size_t i = 0; i < 2000; i++) {
                char want[32];
                snprintf(want, sizeof(want), "k%zu", 2 * i);
                assert_string_equal(x->pairs[2000 + i].key->value, want);
                snprintf(want, sizeof(want), "base%zu", 2 * i);
                assert_string_equal(x->pairs[2000 + i].value->value, want);
        }
        assert_string_equal(ymap_get(x, "k3999")->value, "own3999");
        yfile_free(f);
        diag_list_done(&d);
}

static void test_merge_errors(void **state) {
        diag_list d;
        int r;
        yfile *f = load("a: &a {k: 1}\nx:\n  <<: [*a, s]\n", &d, &r);

        assert_int_equal(r, -EBADMSG);
        assert_one_error(&d, 3, 12, "merge key '<<' takes mappings, not a string");
        /* What can be merged still is. */
        assert_non_null(ymap_get(ymap_get(f->docs[0].root, "x"), "k"));
        yfile_free(f);
        diag_list_done(&d);

        f = load("x:\n  <<: [1, 2]\n  <<: s\n", &d, &r);
        assert_int_equal(r, -EBADMSG);
        diag_sort(&d);
        assert_int_equal(d.n_errors, 3);
        assert_string_equal(d.items[0].message, "merge key '<<' takes mappings, not an integer");
        assert_string_equal(d.items[2].message, "merge key '<<' takes a mapping or a list of mappings, not a string");
        assert_int_equal(d.items[2].line, 3);
        assert_int_equal(d.items[2].col, 7);
        yfile_free(f);
        diag_list_done(&d);
}

/* Merged pairs are copies: they are counted over the whole file, not per document, so that
 * many small documents cannot add up to an alias bomb. */
static void test_merge_copies_bounded_per_file(void **state) {
        char text[2048] = "";
        diag_list d;
        int r;
        yfile *f;

        /* Each document weighs 19 nodes and copies 3 pairs: the 11th document passes 30 copies. */
        for (int i = 0; i < 11; i++)
                strcat(text, "---\na: &a {k: 1, m: 2, n: 3}\nx: {<<: *a}\n");
        f = load_limited(text, 30, &d, &r);
        assert_int_equal(r, -EBADMSG);
        assert_one_error(&d, 33, 4, "merge keys copy more than 30 entries in this file; refusing an alias bomb");
        assert_int_equal(f->n_docs, 11);
        yfile_free(f);
        diag_list_done(&d);

        text[strlen(text) - strlen("---\na: &a {k: 1, m: 2, n: 3}\nx: {<<: *a}\n")] = '\0';
        f = load_limited(text, 30, &d, &r);
        assert_int_equal(r, 0);
        yfile_free(f);
        diag_list_done(&d);
}

/* The weight of a document counts its open collections too: a bomb is refused at the alias
 * that crosses the limit, before its branch is closed (and before merge keys could copy it). */
static void test_weight_counts_open_collections(void **state) {
        diag_list d;
        int r;
        yfile *f = load_limited("a: &a [x, x, x, x, x]\nb:\n  c: [*a, *a, *a, *a]\n", 20, &d, &r);

        assert_int_equal(r, -EBADMSG);
        assert_one_error(&d, 3, 11, "document expands to more than 20 nodes with its aliases; refusing an alias bomb");
        yfile_free(f);
        diag_list_done(&d);

        f = load_limited("a: &a [x, x, x, x, x]\nb:\n  c: [*a]\n", 20, &d, &r); /* 18 nodes */
        assert_int_equal(r, 0);
        yfile_free(f);
        diag_list_done(&d);
}

/* An error found far from its cause names where the construct began. */
static void test_syntax_error_context(void **state) {
        diag_list d;
        int r;
        yfile *f = load("a: [1, 2\nb: 3\n", &d, &r);

        assert_int_equal(r, -EBADMSG);
        assert_one_error(&d, 2, 2,
                         "YAML syntax error: did not find expected ',' or ']' while parsing a flow sequence that "
                         "starts at line 1, column 4");
        yfile_free(f);
        diag_list_done(&d);

        f = load("a: 'abc\n", &d, &r);
        assert_one_error(&d, 2, 1,
                         "YAML syntax error: found unexpected end of stream while scanning a quoted scalar that "
                         "starts at line 1, column 4");
        yfile_free(f);
        diag_list_done(&d);

        /* On the same line, the position says it all. */
        f = load("a: {x: 1 y: 2}\n", &d, &r);
        assert_one_error(&d, 1, 11, "YAML syntax error: did not find expected ',' or '}' while parsing a flow mapping");
        yfile_free(f);
        diag_list_done(&d);

        /* No context at all. */
        f = load("a: 1\n b: 2\n", &d, &r);
        assert_one_error(&d, 2, 3, "YAML syntax error: mapping values are not allowed in this context");
        yfile_free(f);
        diag_list_done(&d);
}

static void test_tab_hint(void **state) {
        static const char hint[] = "YAML syntax error: found character that cannot start any token while scanning "
                                   "for the next token (a tab: YAML indents with spaces only)";
        diag_list d;
        int r;
        yfile *f = load("x:\n\tb: 1\n", &d, &r);

        assert_int_equal(r, -EBADMSG);
        assert_one_error(&d, 2, 1, hint);
        yfile_free(f);
        diag_list_done(&d);

        /* libyaml's marks count characters: a two-byte 'é' before the tab, with and without a BOM. */
        f = load("\xc3\xa9:\n\tb: 1\n", &d, &r);
        assert_one_error(&d, 2, 1, hint);
        yfile_free(f);
        diag_list_done(&d);
        f = load("\xef\xbb\xbf\xc3\xa9:\n\tb: 1\n", &d, &r);
        assert_one_error(&d, 2, 1, hint);
        yfile_free(f);
        diag_list_done(&d);

        /* Another character: no hint. */
        f = load("x:\n@b: 1\n", &d, &r);
        assert_one_error(&d, 2, 1,
                         "YAML syntax error: found character that cannot start any token while scanning for the next token");
        yfile_free(f);
        diag_list_done(&d);

        /* libyaml already says it is a tab: not twice. */
        f = load("a: 1\n\t\n", &d, &r);
        assert_int_equal(d.n_errors, 1);
        assert_non_null(strstr(d.items[0].message, "found a tab character"));
        assert_null(strstr(d.items[0].message, "(a tab:"));
        yfile_free(f);
        diag_list_done(&d);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_marks),           cmocka_unit_test(test_typing),
                cmocka_unit_test(test_anchors_and_merge), cmocka_unit_test(test_billion_laughs),
                cmocka_unit_test(test_depth),           cmocka_unit_test(test_duplicate_keys),
                cmocka_unit_test(test_alias_errors),    cmocka_unit_test(test_syntax_error),
                cmocka_unit_test(test_multi_document),  cmocka_unit_test(test_complex_key),
                cmocka_unit_test(test_null_and_bool_spellings),
                cmocka_unit_test(test_duplicate_keys_repeated),
                cmocka_unit_test(test_anchor_shadowing),
                cmocka_unit_test(test_many_anchors),
                cmocka_unit_test(test_anchors_are_per_document),
                cmocka_unit_test(test_anchor_limit),
                cmocka_unit_test(test_merge_order),
                cmocka_unit_test(test_merge_large),
                cmocka_unit_test(test_merge_errors),
                cmocka_unit_test(test_merge_copies_bounded_per_file),
                cmocka_unit_test(test_weight_counts_open_collections),
                cmocka_unit_test(test_syntax_error_context),
                cmocka_unit_test(test_tab_hint),
        };
        return cmocka_run_group_tests_name("yaml-tree", tests, NULL, NULL);
}
