/* Test tool: the systemd units the agent writes with its systemd backend, from its own code, into
 * a directory, for tests/packaging/units to check with systemd-analyze. Never installed.
 *
 *   unittool CONF DIR AGENTCTL   DIR gets infrastream-postgresql@accounts-db.service and the
 *                                backup timers and services of accounts-db, as an agent with
 *                                the configuration CONF writes them (backups enabled, archiving
 *                                to the local repository); their ExecStart= runs AGENTCTL
 */
#include <stdio.h>

#include "config.h"
#include "document.h"
#include "fileio.h"
#include "macro.h"
#include "schedule.h"
#include "service.h"

static int write_unit(const char *dir, const char *name, const char *text) {
        _cleanup_free_ char *path = xasprintf("%s/%s", dir, name);
        int r = write_file_atomic(path, text, strlen(text), 0644);

        if (r < 0)
                fprintf(stderr, "unittool: cannot write %s: %s\n", path, strerror(-r));
        return r;
}

int main(int argc, char **argv) {
        _cleanup_free_ char *err = NULL, *name = NULL, *text = NULL;
        doc_database db = {
                .name = "accounts-db",
                .postgres_version = 15,
                .cpu_count = 2,
                .backup = { .enabled = true, .schedule = (char *) "Mon..Fri 22:30", .passphrase = (char *) "x" },
        };
        agent_config cfg = {};
        cluster_paths p = {};
        int r;

        if (argc != 4) {
                fputs("usage: unittool CONF DIR AGENTCTL\n", stderr);
                return 2;
        }
        if (agent_config_load(argv[1], &cfg, &err) < 0) {
                fprintf(stderr, "unittool: %s\n", err);
                return 1;
        }
        cluster_paths_init(&p, &cfg, db.name);
        name = service_unit_name(db.name);
        text = service_unit_text(&cfg, &db, &p);
        r = write_unit(argv[2], name, text);
        for (schedule_kind k = 0; r >= 0 && k < _SCHEDULE_KIND_MAX; k++) {
                _cleanup_free_ char *timer = NULL, *tname = schedule_unit_name(db.name, k, "timer"),
                                    *sname = schedule_unit_name(db.name, k, "service"),
                                    *service = schedule_service_text(&cfg, argv[3], db.name, k);

                r = schedule_timer_text(&db, k, &timer, &err);
                if (r < 0) {
                        fprintf(stderr, "unittool: %s\n", err);
                        break;
                }
                r = write_unit(argv[2], sname, service);
                if (r >= 0)
                        r = write_unit(argv[2], tname, timer);
        }
        cluster_paths_done(&p);
        agent_config_done(&cfg);
        return r < 0 ? 1 : 0;
}
