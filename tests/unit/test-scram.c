/* Unit tests for SCRAM-SHA-256 verifiers: byte-for-byte agreement with PostgreSQL 15, the format,
 * fresh salts, refused passwords and checking a password against a verifier. */
#include "unit.h"

#include <regex.h>
#include <stdbool.h>

#include "scram.h"

/* Produced by a real PostgreSQL 15.20 (initdb in a temporary directory, private socket):
 *   SET password_encryption = 'scram-sha-256';
 *   CREATE ROLE x PASSWORD 'pw';
 *   CREATE ROLE y PASSWORD 'Xk3_9-abcdefghijklmnopqrstuvwxyzABCDEFGHIJK';
 *   SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN ('x', 'y');
 * The second password has the shape of the ones we generate (43 characters of base64url). */
static const struct {
        const char *password;
        const char *rolpassword;
} PG15[] = {
        { "pw",
          "SCRAM-SHA-256$4096:rNNPWCO0PLHRmw84fAs7Rg==$FohOH7g3U7Q82lcuUXqG9JlB9IoR6kyCRaTzKcEI/m0=:"
          "j7XCnE3WH3oNtaQh5jId/tKCX16yVT6TqW9///vW24c=" },
        { "Xk3_9-abcdefghijklmnopqrstuvwxyzABCDEFGHIJK",
          "SCRAM-SHA-256$4096:0pYaSZbWIrwYBqwkDo3MxQ==$jRsAjRqnAePfbyhIP2ohydwRa6jYQpGmYPAHRySxPHY=:"
          "h4CjkBdq0DXSaE3z90rskc0wIB8nnmZ59tzGl7/uG8o=" },
};

#define VERIFIER_RE "^SCRAM-SHA-256\\$4096:[A-Za-z0-9+/]{22}==\\$[A-Za-z0-9+/]{43}=:[A-Za-z0-9+/]{43}=$"

static bool matches_format(const char *v) {
        regex_t re;
        int r;

        assert_int_equal(regcomp(&re, VERIFIER_RE, REG_EXTENDED | REG_NOSUB), 0);
        r = regexec(&re, v, 0, NULL, 0);
        regfree(&re);
        return r == 0;
}

/* The salt of a PostgreSQL verifier, decoded. */
static size_t salt_of(const char *v, unsigned char salt[SCRAM_SALT_SIZE]) {
        static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        const char *p = strchr(v, ':') + 1;
        size_t n = 0;
        unsigned bits = 0, acc = 0;

        for (; *p != '$' && *p != '='; p++) {
                acc = (acc << 6) | (unsigned) (strchr(B64, *p) - B64);
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        salt[n++] = (unsigned char) (acc >> bits);
                }
        }
        return n;
}

static void test_postgresql_vectors(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(PG15); i++) {
                _cleanup_free_ char *v = NULL;
                unsigned char salt[SCRAM_SALT_SIZE];

                assert_int_equal(salt_of(PG15[i].rolpassword, salt), SCRAM_SALT_SIZE);
                assert_int_equal(scram_verifier_with_salt(PG15[i].password, salt, sizeof(salt), &v), 0);
                assert_string_equal(v, PG15[i].rolpassword);
                assert_int_equal(scram_verifier_check(PG15[i].rolpassword, PG15[i].password), 0);
        }
}

static void test_format_and_fresh_salt(void **state) {
        _cleanup_free_ char *a = NULL, *b = NULL;

        assert_int_equal(scram_verifier("correct horse battery staple", &a), 0);
        assert_int_equal(scram_verifier("correct horse battery staple", &b), 0);
        assert_true(matches_format(a));
        assert_true(matches_format(b));
        /* A fresh 16-byte salt each time: equal passwords do not give equal verifiers. */
        assert_string_not_equal(a, b);
        assert_int_equal(scram_verifier_check(a, "correct horse battery staple"), 0);
        assert_int_equal(scram_verifier_check(b, "correct horse battery staple"), 0);
}

static void test_refused_passwords(void **state) {
        static const char *const bad[] = {
                "",                 /* empty */
                "p\u00e4ssword",    /* non-ASCII: SASLprep would have to normalise it */
                "tab\there",        /* control characters */
                "new\nline",
                "del\x7f",
        };
        unsigned char salt[SCRAM_SALT_SIZE] = { 1 };
        char *v = NULL;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(scram_verifier(bad[i], &v), -EINVAL);
                assert_int_equal(scram_verifier_with_salt(bad[i], salt, sizeof(salt), &v), -EINVAL);
                assert_null(v);
        }
        assert_int_equal(scram_verifier(NULL, &v), -EINVAL);
        assert_int_equal(scram_verifier_with_salt("pw", salt, 0, &v), -EINVAL);
        assert_int_equal(scram_verifier_with_salt("pw", NULL, 16, &v), -EINVAL);
        assert_null(v);
        /* Every printable character is accepted, the space included. */
        assert_int_equal(scram_verifier(" !\"#$%&'()*+,-./09:;<=>?@AZ[\\]^_`az{|}~", &v), 0);
        assert_true(matches_format(v));
        free(v);
}

static void test_check(void **state) {
        const char *v = PG15[0].rolpassword;
        static const char *const malformed[] = {
                "",
                "md5abcdef",
                "SCRAM-SHA-256$",
                "SCRAM-SHA-256$4096:rNNPWCO0PLHRmw84fAs7Rg==",
                "SCRAM-SHA-256$0:rNNPWCO0PLHRmw84fAs7Rg==$FohOH7g3U7Q82lcuUXqG9JlB9IoR6kyCRaTzKcEI/m0=:"
                "j7XCnE3WH3oNtaQh5jId/tKCX16yVT6TqW9///vW24c=",
                "SCRAM-SHA-256$4096:rNNPWCO0PLHRmw84fAs7Rg=$FohOH7g3U7Q82lcuUXqG9JlB9IoR6kyCRaTzKcEI/m0=:"
                "j7XCnE3WH3oNtaQh5jId/tKCX16yVT6TqW9///vW24c=",
                "SCRAM-SHA-256$4096:rNNPWCO0PLHRmw84fAs7Rg==$FohOH7g3U7Q82lcuUXqG9JlB9IoR6kyCRaTzKcEI:"
                "j7XCnE3WH3oNtaQh5jId/tKCX16yVT6TqW9///vW24c=",
                "SCRAM-SHA-256$4096:rNNPWCO0PLHRmw84fAs7Rg==$FohOH7g3U7Q82lcuUXqG9JlB9IoR6kyCRaTzKcEI/m0=:"
                "j7XCnE3WH3oNtaQh5jId/tKCX16yVT6TqW9///vW24c=x",
                "SCRAM-SHA-256$99999999999:rNNPWCO0PLHRmw84fAs7Rg==$FohOH7g3U7Q82lcuUXqG9JlB9IoR6kyCRaTzKcEI/m0=:"
                "j7XCnE3WH3oNtaQh5jId/tKCX16yVT6TqW9///vW24c=",
        };

        assert_int_equal(scram_verifier_check(v, "pw"), 0);
        assert_int_equal(scram_verifier_check(v, "pW"), -EKEYREJECTED);
        assert_int_equal(scram_verifier_check(v, "pw "), -EKEYREJECTED);
        assert_int_equal(scram_verifier_check(PG15[1].rolpassword, "pw"), -EKEYREJECTED);
        assert_int_equal(scram_verifier_check(v, ""), -EINVAL);
        assert_int_equal(scram_verifier_check(NULL, "pw"), -EINVAL);
        for (size_t i = 0; i < ELEMENTSOF(malformed); i++)
                assert_int_equal(scram_verifier_check(malformed[i], "pw"), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_postgresql_vectors),
                cmocka_unit_test(test_format_and_fresh_salt),
                cmocka_unit_test(test_refused_passwords),
                cmocka_unit_test(test_check),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
