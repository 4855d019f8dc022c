/* Start/stop/reload/restart of a cluster through pg_ctl or systemd. */
#include <signal.h>
#include <stdio.h>

#include "fileio.h"
#include "macro.h"
#include "pgbackrest.h"
#include "proc.h"
#include "service.h"
#include "strbuf.h"
#include "systemd.h"

void cluster_paths_init(cluster_paths *p, const agent_config *cfg, const char *db) {
        p->base = xasprintf("%s/%s", cfg->data_root, db);
        p->data = xasprintf("%s/data", p->base);
        p->initdb_tmp = xasprintf("%s/data.initdb", p->base);
        p->socket_dir = xasprintf("%s/run", p->base);
        p->pg_ctl_log = xasprintf("%s/pg_ctl.log", p->base);
}

void cluster_paths_done(cluster_paths *p) {
        free(p->base);
        free(p->data);
        free(p->initdb_tmp);
        free(p->socket_dir);
        free(p->pg_ctl_log);
        *p = (cluster_paths) {};
}

char *service_unit_name(const char *db) {
        return xasprintf("infrastream-postgresql@%s.service", db);
}

char *service_repository_path(const agent_config *cfg, const doc_database *db) {
        /* What archive_command writes to: archiving is on with a passphrase (postgres.c), and the
         * repository is local unless it is in S3. */
        if (!db->backup.enabled || !db->backup.passphrase || cfg->backup_s3_bucket)
                return NULL;
        return pgbackrest_repo_path(cfg, db->name);
}

char *service_unit_text(const agent_config *cfg, const doc_database *db, const cluster_paths *p) {
        _cleanup_(strbuf_done) strbuf rw = {};
        _cleanup_free_ char *repo = service_repository_path(cfg, db), *paths = NULL;

        /* The server writes only its own directory (data, WAL, logs, the socket in run/, and
         * archive_command's pgBackRest log and lock) and, archiving locally, its repository. That
         * one with '-': a missing repository leaves the database running, and its archiving
         * failing where status shows it (the agent creates it before the unit starts). */
        systemd_unit_word(&rw, p->base);
        if (repo) {
                strbuf_append(&rw, " -");
                systemd_unit_word(&rw, repo);
        }
        paths = strbuf_steal(&rw);
        /* No MemoryDenyWriteExecute=: PostgreSQL JIT-compiles queries (jit = on). No RemoveIPC=:
         * stopping one cluster would remove the IPC objects of every other one running as the OS
         * user (Debian's own too). No capabilities: it runs as the OS user. */
        return xasprintf("# Managed by infrastream-agent: rewritten on every apply, do not edit.\n"
                         "[Unit]\n"
                         "Description=PostgreSQL %d for database %s (infrastream)\n"
                         "Documentation=man:infrastream-agent(8)\n"
                         "After=network-online.target\n"
                         "Wants=network-online.target\n"
                         "\n"
                         "[Service]\n"
                         "Type=notify\n"
                         "User=%s\n"
                         "ExecStart=%s/postgres -D %s\n"
                         "ExecReload=/bin/kill -HUP $MAINPID\n"
                         "KillMode=mixed\n"
                         "KillSignal=SIGINT\n"
                         "TimeoutStartSec=infinity\n"
                         "TimeoutStopSec=1h\n"
                         "Restart=on-failure\n"
                         "CPUQuota=%d%%\n"
                         "OOMScoreAdjust=-900\n"
                         "NoNewPrivileges=yes\n"
                         "CapabilityBoundingSet=\n"
                         "ProtectSystem=strict\n"
                         "ReadWritePaths=%s\n"
                         SYSTEMD_UNIT_PROTECT
                         "ProtectProc=invisible\n"
                         SYSTEMD_UNIT_RESTRICT
                         "SystemCallErrorNumber=EPERM\n"
                         "\n"
                         "[Install]\n"
                         "WantedBy=multi-user.target\n",
                         db->postgres_version, db->name, cfg->os_user, cfg->postgres_bin_dir, p->data,
                         db->cpu_count * 100, paths);
}

static int pg_ctl(const agent_config *cfg, const cluster_paths *p, const char *const *args, int *ret_status,
                  char **ret_error) {
        _cleanup_free_ char *bin = xasprintf("%s/pg_ctl", cfg->postgres_bin_dir);
        const char *argv[16] = { bin };
        proc_result res = {};
        size_t n = 1;
        int r;

        for (size_t i = 0; args[i] && n < ELEMENTSOF(argv) - 1; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        r = proc_run(argv, cfg->os_user, p->base, NULL, &res);
        if (r < 0) {
                if (ret_error)
                        *ret_error = xasprintf("cannot run %s: %s", bin, strerror(-r));
                return r;
        }
        if (ret_status)
                *ret_status = res.exit_status;
        if (res.exit_status != 0 && !ret_status) {
                char line[512];
                if (ret_error)
                        *ret_error = xasprintf("pg_ctl %s failed (exit %d): %s", args[0], res.exit_status,
                                               proc_last_line(&res, line, sizeof(line)));
                proc_result_done(&res);
                return -EIO;
        }
        proc_result_done(&res);
        return 0;
}

int service_running(const agent_config *cfg, const char *db, const cluster_paths *p, bool *ret, char **ret_error) {
        if (cfg->backend == SERVICE_SYSTEMD) {
                _cleanup_free_ char *unit = service_unit_name(db);
                return systemd_unit_active(unit, ret, ret_error);
        }
        /* What pg_ctl status does, without starting a process for it (3-5 ms each apply): the
         * postmaster's pid from postmaster.pid, and whether that process exists. */
        _cleanup_free_ char *path = xasprintf("%s/postmaster.pid", p->data), *text = NULL;
        long pid;
        int r = read_full_file(path, 4096, &text, NULL);

        if (r == -ENOENT) {
                *ret = false;
                return 0;
        }
        if (r < 0) {
                *ret_error = xasprintf("cannot read %s: %s", path, strerror(-r));
                return r;
        }
        pid = strtol(text, NULL, 10);
        *ret = pid > 0 && (kill((pid_t) pid, 0) == 0 || errno == EPERM);
        return 0;
}

int service_install(const agent_config *cfg, const doc_database *db, const cluster_paths *p, char **ret_error) {
        _cleanup_free_ char *unit = NULL, *path = NULL, *text = NULL;
        int r;

        if (cfg->backend != SERVICE_SYSTEMD)
                return 0;
        unit = service_unit_name(db->name);
        path = xasprintf("%s/%s", cfg->unit_dir, unit);
        text = service_unit_text(cfg, db, p);
        r = write_file_atomic(path, text, strlen(text), 0644);
        if (r < 0) {
                *ret_error = xasprintf("cannot write %s: %s", path, strerror(-r));
                return r;
        }
        if (r > 0) {
                int k = systemd_daemon_reload(ret_error);
                if (k < 0)
                        return k;
        }
        return r;
}

int service_start(const agent_config *cfg, const char *db, const cluster_paths *p, char **ret_error) {
        if (cfg->backend == SERVICE_SYSTEMD) {
                _cleanup_free_ char *unit = service_unit_name(db);
                return systemd_unit_call(unit, "StartUnit", ret_error);
        }
        const char *args[] = { "start", "-w", "-t", "300", "-D", p->data, "-l", p->pg_ctl_log, NULL };
        return pg_ctl(cfg, p, args, NULL, ret_error);
}

int service_stop(const agent_config *cfg, const char *db, const cluster_paths *p, char **ret_error) {
        if (cfg->backend == SERVICE_SYSTEMD) {
                _cleanup_free_ char *unit = service_unit_name(db);
                return systemd_unit_call(unit, "StopUnit", ret_error);
        }
        const char *args[] = { "stop", "-w", "-m", "fast", "-D", p->data, NULL };
        return pg_ctl(cfg, p, args, NULL, ret_error);
}

int service_reload(const agent_config *cfg, const char *db, const cluster_paths *p, char **ret_error) {
        if (cfg->backend == SERVICE_SYSTEMD) {
                _cleanup_free_ char *unit = service_unit_name(db);
                return systemd_unit_call(unit, "ReloadUnit", ret_error);
        }
        const char *args[] = { "reload", "-D", p->data, NULL };
        return pg_ctl(cfg, p, args, NULL, ret_error);
}

int service_restart(const agent_config *cfg, const char *db, const cluster_paths *p, char **ret_error) {
        if (cfg->backend == SERVICE_SYSTEMD) {
                _cleanup_free_ char *unit = service_unit_name(db);
                return systemd_unit_call(unit, "RestartUnit", ret_error);
        }
        const char *args[] = { "restart", "-w", "-t", "300", "-m", "fast", "-D", p->data, "-l", p->pg_ctl_log, NULL };
        return pg_ctl(cfg, p, args, NULL, ret_error);
}
