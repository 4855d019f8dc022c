# The seed's world for the end-to-end test and the quickstart: namespaces ctl (10.99.0.1), db1
# (10.99.0.2), app1 (10.99.0.3) and app2 (10.99.0.4) on a bridge; a controller initialised and
# serving; one agent per host, enrolled with a one-time token and running as a daemon.
# Needs: BIN (directory with controller/ and agent/ builds), E2E (namespace prefix), SCRATCH.
# E2E_HOSTS, set before sourcing, names fewer hosts (ctl is always there).
# shellcheck shell=bash
. "$(dirname "${BASH_SOURCE[0]}")/../netns.sh"
PGBIN=/usr/lib/postgresql/15/bin
CONTROLLER="$BIN/controller/infrastream-controller"
AGENTCTL="$BIN/agent/agentctl"
AGENT="$BIN/agent/infrastream-agent"
CTL_URL=https://10.99.0.1:8443
E2E_HOSTS=${E2E_HOSTS:-db1 app1 app2}

in_ns() { local n=$1; shift; ip netns exec "$E2E-$n" "$@"; }
as_postgres() { (cd / && runuser -u postgres -- "$@"); }

e2e_network() {
        netns_switch "$E2E" || return 1
        local i=1 h
        for h in ctl $E2E_HOSTS; do
                netns_host "$E2E" "$h" "10.99.0.$i"
                i=$((i + 1))
        done
}

e2e_cleanup() {
        local h d
        for h in $E2E_HOSTS; do
                [ -f "$SCRATCH/$h/agent.pid" ] && kill -TERM "$(cat "$SCRATCH/$h/agent.pid")" 2>/dev/null
        done
        [ -f "$SCRATCH/ctl/serve.pid" ] && kill -TERM "$(cat "$SCRATCH/ctl/serve.pid")" 2>/dev/null
        for d in "$SCRATCH"/*/data/*/data "$SCRATCH"/*/disk/data/*/data "$SCRATCH"/*/plain/data; do
                [ -f "$d/postmaster.pid" ] && as_postgres "$PGBIN/pg_ctl" stop -m immediate -D "$d" >/dev/null 2>&1
        done
        wait 2>/dev/null
        for d in "$SCRATCH"/*/disk "$SCRATCH"/*/plain; do
                mountpoint -q "$d" && umount "$d"
        done
        # A test's own undoing once nothing runs (e2e_teardown: mappings, loop devices).
        declare -F e2e_teardown >/dev/null && e2e_teardown
        for h in ctl $E2E_HOSTS sw; do ip netns del "$E2E-$h" 2>/dev/null; done
        if [ -n "${E2E_KEEP:-}" ]; then echo "# kept $SCRATCH"; else rm -rf "$SCRATCH"; fi
}

# e2e_repo DIR [MESSAGE]: the manifests repository: DIR's manifests (the seed's two), committed.
e2e_repo() {
        mkdir -p "$SCRATCH/repo"
        cp -r "$1"/. "$SCRATCH/repo/"
        git -C "$SCRATCH/repo" init -q -b main
        git -C "$SCRATCH/repo" -c user.name=e2e -c user.email=e2e@example.com add -A
        git -C "$SCRATCH/repo" -c user.name=e2e -c user.email=e2e@example.com commit -qm "${2:-seed: accounts-db and auth-api}"
}

e2e_commit() {
        git -C "$SCRATCH/repo" -c user.name=e2e -c user.email=e2e@example.com commit -qam "$1"
}

# e2e_controller: init, serve in ctl (log in ctl/serve.log), wait until it answers.
e2e_controller() {
        "$CONTROLLER" init --state-dir "$SCRATCH/ctl/state" >"$SCRATCH/ctl/init.log" 2>&1 || return 1
        e2e_serve
}

# e2e_serve: (again) the controller's server in ctl; e2e_serve_stop: stop it.
e2e_serve() {
        ip netns exec "$E2E-ctl" "$CONTROLLER" serve --listen 10.99.0.1:8443 --state-dir "$SCRATCH/ctl/state" \
                >>"$SCRATCH/ctl/serve.log" 2>&1 &
        echo $! >"$SCRATCH/ctl/serve.pid"
        local _
        for _ in $(seq 100); do
                in_ns ctl curl -skf "$CTL_URL/v1/ca" >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        return 1
}

e2e_serve_stop() {
        local pid
        pid=$(cat "$SCRATCH/ctl/serve.pid")
        kill -TERM "$pid" 2>/dev/null
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        rm -f "$SCRATCH/ctl/serve.pid"
}

# e2e_disk HOST: the host's disk for databases: a sparse ext4 image with the 'encrypt' feature,
# loop-mounted at HOST/disk, so the agent encrypts with fscrypt as on a real database host.
# Fails, saying why, when this machine cannot (no loop devices, no fscrypt in the kernel).
e2e_disk() {
        local d="$SCRATCH/$1" out
        mkdir -p "$d/disk"
        truncate -s 2G "$d/disk.img"
        out=$(mkfs.ext4 -q -F -O encrypt "$d/disk.img" 2>&1) || { echo "mkfs.ext4 -O encrypt failed: $out"; return 1; }
        out=$(mount -o loop "$d/disk.img" "$d/disk" 2>&1) || { echo "cannot loop-mount an image: $out"; return 1; }
        [ -e /sys/fs/ext4/features/encryption ] || { echo "this kernel's ext4 has no encryption"; return 1; }
}

# e2e_data_root HOST: where HOST's databases live (on its disk when it has one).
e2e_data_root() {
        if mountpoint -q "$SCRATCH/$1/disk"; then echo "$SCRATCH/$1/disk/data"; else echo "$SCRATCH/$1/data"; fi
}

# e2e_agent_config HOST ADDRESS [ROOTS]: an agent with its own state, data and apps dirs; the
# direct service backend; on application hosts a restart command that records each restart. Data
# and backups go where ROOTS (config lines) say, else on the host's disk (e2e_disk) when it has
# one; without, encryption = none.
e2e_agent_config() {
        local h=$1 addr=$2 d="$SCRATCH/$1" roots=${3:-}
        if [ -n "$roots" ]; then
                :
        elif mountpoint -q "$d/disk"; then
                roots="data-root = $d/disk/data
backup-root = $d/disk/backup"
        else
                roots="data-root = $d/data
backup-root = $d/backup
encryption = none"
        fi
        mkdir -p "$d/units"
        cat >"$d/restart" <<EOS
#!/bin/sh
echo "\$(date +%s.%N) \$INFRASTREAM_APP \$INFRASTREAM_UNIT" >>"$d/restarts"
EOS
        chmod 755 "$d/restart"
        cat >"$d/agent.conf" <<EOC
host = $h
state-dir = $d/state
$roots
apps-dir = $d/apps
unit-dir = $d/units
service-backend = direct
restart-command = $d/restart
addresses = $addr
memory = 2GiB
cpus = 8
listen = $addr:7443
socket = $d/agent.sock
report-interval = 5
EOC
}

# e2e_enroll HOST ROLE: a one-time token for HOST's role and the development environment, and
# agentctl enroll with it, pinning the CA by its fingerprint.
e2e_enroll() {
        local h=$1 role=$2 token fp
        token=$("$CONTROLLER" token create --state-dir "$SCRATCH/ctl/state" --ttl 10m --role "$role" \
                --labels environment=development 2>/dev/null) || return 1
        fp=$(openssl x509 -in "$SCRATCH/ctl/state/ca.crt" -noout -fingerprint -sha256 | sed 's/.*=//')
        in_ns "$h" "$AGENTCTL" --config "$SCRATCH/$h/agent.conf" enroll --controller "$CTL_URL" --token "$token" \
                --ca-fingerprint "$fp"
}

# e2e_agent_start HOST [ENV...]: the daemon in HOST's namespace, log in HOST/agent.log. `ip netns
# exec` gives it a mount namespace of its own; with E2E_SHARED_MOUNTS set it enters only the
# network namespace, so what it mounts (LUKS2's data-root) is the test's to see, as on a host.
e2e_agent_start() {
        local h=$1 enter
        shift
        enter=(ip netns exec "$E2E-$h")
        [ -n "${E2E_SHARED_MOUNTS:-}" ] && enter=(nsenter "--net=/run/netns/$E2E-$h")
        "${enter[@]}" env "$@" "$AGENT" --config "$SCRATCH/$h/agent.conf" >>"$SCRATCH/$h/agent.log" 2>&1 &
        echo $! >"$SCRATCH/$h/agent.pid"
        local _
        for _ in $(seq 100); do
                [ -S "$SCRATCH/$h/agent.sock" ] && in_ns "$h" "$AGENTCTL" --config "$SCRATCH/$h/agent.conf" status \
                        --json >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        return 1
}

e2e_agent_stop() {
        local h=$1 pid
        pid=$(cat "$SCRATCH/$h/agent.pid")
        kill -TERM "$pid" 2>/dev/null
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        rm -f "$SCRATCH/$h/agent.pid"
}

e2e_apply() {
        in_ns ctl "$CONTROLLER" apply --repo "$SCRATCH/repo" --state-dir "$SCRATCH/ctl/state" --timeout 120 "$@"
}

# The connection string app1's unit gets, read from its environment file.
e2e_app_url() {
        sed -n "s/^DATABASE_CONNECTION_STRING='\\(.*\\)'$/\\1/p" "$SCRATCH/app1/apps/auth-api.env"
}
