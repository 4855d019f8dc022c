/* Unit tests for the YAML node tree: marks, typing, anchors and merge keys, and the bounds
 * that keep hostile files from exhausting memory or time. */
#include "unit.h"
#include "yaml-tree.h"

static yfile *load(const char *text, diag_list *d, int *ret) {
        yfile *f = NULL;
        diag_list_init(d);
        *ret = yaml_load("t.yaml", text, strlen(text), NULL, false, d, &f);
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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_marks),           cmocka_unit_test(test_typing),
                cmocka_unit_test(test_anchors_and_merge), cmocka_unit_test(test_billion_laughs),
                cmocka_unit_test(test_depth),           cmocka_unit_test(test_duplicate_keys),
                cmocka_unit_test(test_alias_errors),    cmocka_unit_test(test_syntax_error),
                cmocka_unit_test(test_multi_document),  cmocka_unit_test(test_complex_key),
        };
        return cmocka_run_group_tests_name("yaml-tree", tests, NULL, NULL);
}
