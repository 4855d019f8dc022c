/* Unit tests for the agent's configuration (the keys enrollment and the daemon's listeners
 * added), the CA fingerprint forms agentctl enroll accepts, and the status text printer. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "enroll.h"
#include "config.h"
#include "status.h"
#include "unit.h"

static char tmpl[] = "/tmp/test-agent-config.XXXXXX";
static char *dir;

/* load("key = value\n...") → 0 or the error; *ret filled on success. */
static int load(const char *text, agent_config *ret, char **ret_error) {
        _cleanup_free_ char *path = xasprintf("%s/agent.conf", dir);
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        fputs(text, f);
        fclose(f);
        *ret_error = NULL;
        return agent_config_load(path, ret, ret_error);
}

/* The error of a config, without its "PATH:" prefix. */
static char *error_of(const char *text) {
        _cleanup_free_ char *err = NULL, *prefix = xasprintf("%s/agent.conf", dir);
        agent_config c = {};

        assert_true(load(text, &c, &err) < 0);
        assert_non_null(err);
        assert_memory_equal(err, prefix, strlen(prefix));
        return xstrdup(err + strlen(prefix));
}

static void expect_error(const char *text, const char *want) {
        _cleanup_free_ char *got = error_of(text);
        if (!streq(got, want))
                fail_msg("config:\n%s\nerror: '%s'\nwanted: '%s'", text, got, want);
}

static void test_defaults(void **state) {
        _cleanup_free_ char *err = NULL;
        agent_config c = {};

        (void) state;
        assert_int_equal(load("host = db1\n", &c, &err), 0);
        assert_string_equal(c.socket_path, "/run/infrastream/agent.sock");
        assert_string_equal(c.apps_dir, "/etc/infrastream/apps");
        assert_int_equal(c.report_interval, 60);
        assert_null(c.socket_group);
        assert_null(c.listen); /* no addresses: nothing to listen on by default */
        agent_config_done(&c);

        assert_int_equal(load("host = db1\naddresses = 10.0.0.2, 10.0.0.3\n", &c, &err), 0);
        assert_string_equal(c.listen, "10.0.0.2:7443");
        agent_config_done(&c);
        assert_int_equal(load("host = db1\naddresses = fd00::2\n", &c, &err), 0);
        assert_string_equal(c.listen, "[fd00::2]:7443");
        agent_config_done(&c);
}

static void test_new_keys(void **state) {
        _cleanup_free_ char *err = NULL;
        agent_config c = {}, copy = {};

        (void) state;
        assert_int_equal(load("[agent]\nhost = db1\naddresses = 10.0.0.2\nlisten = [fd00::2]:9443\n"
                              "socket = /run/x/agent.sock\nsocket-group = root\nreport-interval = 5\n"
                              "apps-dir = /srv/apps\n",
                              &c, &err),
                         0);
        assert_string_equal(c.listen, "[fd00::2]:9443");
        assert_string_equal(c.socket_path, "/run/x/agent.sock");
        assert_string_equal(c.socket_group, "root");
        assert_int_equal(c.report_interval, 5);
        assert_string_equal(c.apps_dir, "/srv/apps");
        /* The worker thread's copy is deep: it outlives the loop thread's after a reload. */
        agent_config_copy(&c, &copy);
        agent_config_done(&c);
        assert_string_equal(copy.listen, "[fd00::2]:9443");
        assert_string_equal(copy.addresses[0], "10.0.0.2");
        assert_string_equal(copy.socket_group, "root");
        agent_config_done(&copy);
        assert_int_equal(load("host = db1\nlisten = 0.0.0.0:7443\nreport-interval = 86400\ncpus = 8\n", &c, &err), 0);
        assert_int_equal(c.report_interval, 86400);
        assert_int_equal(c.cpus, 8);
        agent_config_done(&c);
}

static void test_bad_values(void **state) {
        (void) state;
        expect_error("host = db1\nlisten = 10.0.0.2\n",
                     ":2: listen must be ADDRESS:PORT (10.0.0.2:7443, [fd00::2]:7443, 0.0.0.0:7443), not '10.0.0.2'");
        expect_error("host = db1\nlisten = 10.0.0.2:0\n",
                     ":2: listen must be ADDRESS:PORT (10.0.0.2:7443, [fd00::2]:7443, 0.0.0.0:7443), not '10.0.0.2:0'");
        expect_error("host = db1\nlisten = 10.0.0.2:65536\n",
                     ":2: listen must be ADDRESS:PORT (10.0.0.2:7443, [fd00::2]:7443, 0.0.0.0:7443), not '10.0.0.2:65536'");
        expect_error("host = db1\nlisten = fd00::2:7443\n",
                     ":2: listen must be ADDRESS:PORT (10.0.0.2:7443, [fd00::2]:7443, 0.0.0.0:7443), not 'fd00::2:7443'");
        expect_error("host = db1\nlisten = db1.example.com:7443\n",
                     ":2: listen must be ADDRESS:PORT (10.0.0.2:7443, [fd00::2]:7443, 0.0.0.0:7443), not "
                     "'db1.example.com:7443'");
        expect_error("host = db1\nlisten = 10.0.0.2:+7443\n",
                     ":2: listen must be ADDRESS:PORT (10.0.0.2:7443, [fd00::2]:7443, 0.0.0.0:7443), not '10.0.0.2:+7443'");
        expect_error("host = db1\nsocket-group = no-such-group-here\n",
                     ":2: socket-group: no group 'no-such-group-here' on this host");
        expect_error("host = db1\nreport-interval = 4\n", ":2: report-interval takes seconds from 5 to 86400, not '4'");
        expect_error("host = db1\nreport-interval = 86401\n",
                     ":2: report-interval takes seconds from 5 to 86400, not '86401'");
        expect_error("host = db1\nreport-interval = 1m\n", ":2: report-interval takes seconds from 5 to 86400, not '1m'");
        expect_error("host = db1\nreport-interval = -5\n", ":2: report-interval takes seconds from 5 to 86400, not '-5'");
        expect_error("host = db1\ncpus = 0\n", ":2: cpus must be a whole number from 1 to 65536, not '0'");
        expect_error("host = db1\ncpus = 4.5\n", ":2: cpus must be a whole number from 1 to 65536, not '4.5'");
        expect_error("host = db1\nsocket = agent.sock\n", ":2: socket must be an absolute path, not 'agent.sock'");
        expect_error("host = db1\napps-dir = apps\n", ":2: apps-dir must be an absolute path, not 'apps'");
        expect_error("host = db1\nencryption = yes\n", ":2: encryption must be 'auto', 'fscrypt', 'luks' or 'none', not 'yes'");
        expect_error("host = db1\nencryption = luks\n",
                     ": encryption = luks needs data-device (the block device to format and mount at data-root)");
        expect_error("host = db1\nencryption = fscrypt\ndata-device = /dev/vdb\n",
                     ": data-device is formatted with LUKS2: it cannot go with encryption = fscrypt");
        expect_error("host = db1\nencryption = none\ndata-device = /dev/vdb\n",
                     ": data-device is only used with encryption (LUKS2): remove it or drop encryption = none");
        expect_error("host = db1\ndata-device = vdb\n", ":2: data-device must be an absolute path, not 'vdb'");
}

static void test_encryption_keys(void **state) {
        _cleanup_free_ char *err = NULL;
        agent_config c = {}, copy = {};

        (void) state;
        assert_int_equal(load("host = db1\n", &c, &err), 0);
        assert_int_equal(c.encryption, ENCRYPTION_AUTO); /* encrypted unless stated otherwise */
        assert_null(c.data_device);
        agent_config_done(&c);
        assert_int_equal(load("host = db1\nencryption = none\n", &c, &err), 0);
        assert_int_equal(c.encryption, ENCRYPTION_NONE);
        assert_string_equal(encryption_mode_to_string(c.encryption), "none");
        agent_config_done(&c);
        assert_int_equal(load("host = db1\nencryption = luks\ndata-device = /dev/vdb\n", &c, &err), 0);
        assert_int_equal(c.encryption, ENCRYPTION_LUKS);
        agent_config_copy(&c, &copy);
        agent_config_done(&c);
        assert_string_equal(copy.data_device, "/dev/vdb");
        agent_config_done(&copy);
        assert_int_equal(load("host = db1\ndata-device = /dev/vdb\n", &c, &err), 0);
        assert_int_equal(c.encryption, ENCRYPTION_AUTO);
        agent_config_done(&c);
}

static void test_did_you_mean(void **state) {
        (void) state;
        expect_error("host = db1\nreport_interval = 5\n", ":2: unknown key 'report_interval'; did you mean 'report-interval'?");
        expect_error("host = db1\nsocket_group = x\n", ":2: unknown key 'socket_group'; did you mean 'socket-group'?");
        expect_error("host = db1\nlisen = 10.0.0.2:7443\n", ":2: unknown key 'lisen'; did you mean 'listen'?");
        expect_error("host = db1\napps_dir = /x\n", ":2: unknown key 'apps_dir'; did you mean 'apps-dir'?");
        expect_error("host = db1\ndata_root = /x\n", ":2: unknown key 'data_root'; did you mean 'data-root'?");
}

static void test_fingerprint(void **state) {
        static const char want[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        char fp[65];

        (void) state;
        assert_true(enroll_parse_fingerprint(want, fp));
        assert_string_equal(fp, want);
        /* openssl x509 -fingerprint -sha256 prints upper case with colons. */
        assert_true(enroll_parse_fingerprint("01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:"
                                             "01:23:45:67:89:AB:CD:EF",
                                             fp));
        assert_string_equal(fp, want);
        assert_true(enroll_parse_fingerprint("SHA256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", fp));
        assert_string_equal(fp, want);
        assert_false(enroll_parse_fingerprint("0123", fp));
        assert_false(enroll_parse_fingerprint("", fp));
        assert_false(enroll_parse_fingerprint("sha1:0123456789abcdef0123456789abcdef01234567", fp));
        assert_false(enroll_parse_fingerprint("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg", fp));
        assert_false(enroll_parse_fingerprint("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef00", fp));
}

static char *print_status(json_object *o, bool color) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        assert_non_null(f);
        status_print(o, f, color);
        fclose(f);
        return buf;
}

static void test_status_text(void **state) {
        json_object *o = json_tokener_parse(
                "{\"host\": \"db1\", \"role\": \"database\", \"controller\": \"controller.example.org\","
                " \"identity\": \"db1.hosts.example.org\", \"identityExpires\": 1800000000, \"revision\": 7,"
                " \"commit\": \"abc123\", \"appliedAt\": 1790000000, \"failed\": true, \"lastError\": \"tls x: boom\","
                " \"databases\": [{\"name\": \"accounts-db\", \"state\": \"running\", \"port\": 5432,"
                "   \"clients\": [\"10.0.0.3/32\", \"10.0.0.4/32\"], \"roles\": [\"auth-api\"], \"tlsExpires\": null,"
                "   \"backups\": \"not set up yet\", \"encryption\": {\"mode\": \"none\", \"state\": \"none\"}},"
                "  {\"name\": \"billing-db\", \"state\": \"stopped\", \"port\": 5433, \"clients\": [], \"roles\": [],"
                "   \"tlsExpires\": null, \"backups\": \"not set up yet\","
                "   \"encryption\": {\"mode\": \"fscrypt\", \"state\": \"locked, waiting for controller\"}},"
                "  {\"name\": \"ledger-db\", \"state\": \"running\", \"port\": 5434, \"clients\": [], \"roles\": [],"
                "   \"tlsExpires\": null, \"backups\": \"not set up yet\","
                "   \"encryption\": {\"mode\": \"fscrypt\", \"state\": \"unlocked\"}}],"
                " \"apps\": [{\"name\": \"auth-api\", \"unit\": \"auth-api.service\","
                "   \"variables\": [\"DATABASE_CONNECTION_STRING\"], \"lastRestart\": null}],"
                " \"resources\": [{\"kind\": \"cluster\", \"name\": \"accounts-db\", \"state\": \"unchanged\"},"
                "   {\"kind\": \"tls\", \"name\": \"x\", \"state\": \"failed\", \"detail\": \"boom\"}]}");
        _cleanup_free_ char *plain = NULL, *color = NULL;

        (void) state;
        assert_non_null(o);
        plain = print_status(o, false);
        assert_string_equal(plain,
                            "host db1: revision 7 applied 2026-09-21 14:13:20 UTC, commit abc123\n"
                            "identity db1.hosts.example.org (database host), certificate expires 2027-01-15 08:00:00 UTC; "
                            "controller controller.example.org\n"
                            "database accounts-db: running, port 5432, clients 10.0.0.3/32 10.0.0.4/32, roles auth-api, "
                            "TLS no certificate yet, backups not set up yet, encryption none\n"
                            "database billing-db: stopped, port 5433, clients none, roles none, TLS no certificate yet, "
                            "backups not set up yet, encryption fscrypt: locked, waiting for controller\n"
                            "database ledger-db: running, port 5434, clients none, roles none, TLS no certificate yet, "
                            "backups not set up yet, encryption fscrypt (unlocked)\n"
                            "app auth-api: unit auth-api.service, DATABASE_CONNECTION_STRING=(hidden), last restart never\n"
                            "last error: tls x: boom\n"
                            "cluster accounts-db: unchanged\n"
                            "tls x: failed: boom\n");
        assert_true(status_failed(o));
        color = print_status(o, true);
        assert_non_null(strstr(color, "database accounts-db: \033[32mrunning\033[0m"));
        assert_non_null(strstr(color, "tls x: \033[31mfailed\033[0m: boom"));
        /* Anything but unlocked is red: no encryption at all, or data waiting for its key. */
        assert_non_null(strstr(color, "encryption \033[31mnone\033[0m\n"));
        assert_non_null(strstr(color, "encryption \033[31mfscrypt: locked, waiting for controller\033[0m\n"));
        assert_non_null(strstr(color, "encryption fscrypt (unlocked)\n"));
        json_object_put(o);
}

static int setup(void **state) {
        (void) state;
        dir = mkdtemp(tmpl);
        return dir ? 0 : -1;
}

static int teardown(void **state) {
        _cleanup_free_ char *path = xasprintf("%s/agent.conf", dir);
        (void) state;
        (void) unlink(path);
        return rmdir(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),     cmocka_unit_test(test_new_keys),
                cmocka_unit_test(test_bad_values),   cmocka_unit_test(test_did_you_mean),
                cmocka_unit_test(test_fingerprint),  cmocka_unit_test(test_status_text),
                cmocka_unit_test(test_encryption_keys),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
