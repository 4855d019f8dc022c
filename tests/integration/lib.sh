# Integration-test helpers: a private world of network namespaces, a controller signing key,
# agents with their own state and data roots, and PostgreSQL clients on the application side.
# shellcheck shell=bash
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/../netns.sh"
AGENTCTL="$top_builddir/agent/agentctl"
CONTROLLER="$top_builddir/controller/infrastream-controller"
DOCTOOL="$top_builddir/tests/tools/doctool"
MKDOC="$top_srcdir/tests/integration/mkdoc.py"
PGBIN=/usr/lib/postgresql/15/bin
export DOCTOOL

# as_postgres CMD...: run as the postgres OS user from "/": the test's own directory may be a
# checkout the postgres user cannot enter (a fresh clone under a 0700 mktemp directory).
as_postgres() { (cd / && runuser -u postgres -- "$@"); }

need_root() {
        [ "$(id -u)" -eq 0 ] || skip_all "needs root: network namespaces, and initdb as the postgres user"
        id postgres >/dev/null 2>&1 || skip_all "no 'postgres' OS user (install postgresql-15)"
        [ -x "$PGBIN/initdb" ] || skip_all "PostgreSQL 15 server binaries missing in $PGBIN"
        command -v ip >/dev/null || skip_all "iproute2 missing"
}

# world NAME: namespaces NAME-db (10.99.0.2), NAME-app (10.99.0.3), NAME-other (10.99.0.4) on a
# bridge in NAME-sw; a scratch dir the postgres user can traverse; a controller key; cleanup.
world() {
        W=$1
        SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/is-$W.XXXXXX")
        chmod 755 "$SCRATCH"
        trap world_cleanup EXIT
        netns_switch "$W" || skip_all "cannot create network namespaces here"
        local i=2 h
        for h in db app other; do
                world_link "$h" "10.99.0.$i"
                i=$((i + 1))
        done
        "$CONTROLLER" init --state-dir "$SCRATCH/ctl" >/dev/null
        KEY="$SCRATCH/ctl/signing-key.pem"
        PUB="$SCRATCH/ctl/signing-key.pub"
        CA="$SCRATCH/ctl/ca.crt"
}

# world_host NAME ADDRESS: one more host $W-NAME on the world's bridge (removed by the cleanup).
world_host() {
        WORLD_EXTRA_HOSTS="${WORLD_EXTRA_HOSTS:-} $1"
        world_link "$1" "$2"
}

# world_link NAME ADDRESS: the namespace $W-NAME, its eth0 (ADDRESS/24) a port of the bridge.
world_link() {
        netns_host "$W" "$1" "$2"
}

world_cleanup() {
        local d
        for d in "$SCRATCH"/*/data/*/data; do
                [ -f "$d/postmaster.pid" ] && as_postgres "$PGBIN/pg_ctl" stop -m immediate -D "$d" >/dev/null 2>&1
        done
        for h in db app other ${WORLD_EXTRA_HOSTS:-} sw; do ip netns del "$W-$h" 2>/dev/null; done
        rm -rf "$SCRATCH"
}

# agent_config NAME [extra lines]: an agent for host db1 with its own state and data root.
agent_config() {
        local name=$1
        shift
        mkdir -p "$SCRATCH/$name"
        cat >"$SCRATCH/$name/agent.conf" <<EOC
host = db1
state-dir = $SCRATCH/$name/state
data-root = $SCRATCH/$name/data
service-backend = direct
addresses = 10.99.0.2
memory = 2GiB
trust-key = $PUB
socket = $SCRATCH/$name/agent.sock
backup-root = $SCRATCH/$name/backup
encryption = none
EOC
        printf '%s\n' "$@" >>"$SCRATCH/$name/agent.conf"
        echo "$SCRATCH/$name/agent.conf"
}

# mkdoc OUT: the spec on stdin becomes a signed document in OUT.
mkdoc() {
        python3 "$MKDOC" >"$1.unsigned" && "$DOCTOOL" sign "$KEY" "$1.unsigned" "$1"
}

# apply CONF DOC: run agentctl apply on host db1 (its namespace); output in $OUT, status in $RC.
apply() {
        OUT=$(ip netns exec "$W-db" "$AGENTCTL" --config "$1" apply --local "$2" 2>&1)
        RC=$?
}

# The TLS name of the tests' database 'accounts-db' (mkdoc.py and the seed name it alike).
DB_TLS_NAME=accounts-db.login-svc.development.retail-banking.fincorp.infrastream.internal

# conninfo DB USER: how clients connect: TLS, the server's certificate checked against the CA and
# its name (verify-full), the address given separately (no DNS in the test world).
conninfo() {
        echo "host=$DB_TLS_NAME hostaddr=10.99.0.2 port=5432 dbname=$1 user=$2 sslmode=verify-full sslrootcert=$CA"
}

# sql_as ROLE PASSWORD DB SQL: a client on the application host, over TCP and TLS.
sql_as() {
        ip netns exec "$W-app" env PGPASSWORD="$2" PGCONNECT_TIMEOUT=3 psql -X -q -A -t -v ON_ERROR_STOP=1 \
                "$(conninfo "$3" "$1")" -c "$4" 2>&1
}

# doc_tls_names DOC DB: the TLS names DOC gives DB, comma-separated: what the controller lets the
# host's request ask for.
doc_tls_names() {
        python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
print(",".join(next(x["tlsNames"] for x in d["databases"] if x["name"] == sys.argv[2])))' "$1" "$2"
}

# tls_issue CONF DOC [LIFETIME]: every database of DOC with a pending request (server.csr) gets a
# certificate: the controller's CA signs the request for the document's TLS names, and agentctl
# installs it with the CA. Output in $TLS_OUT; status 1 when a step failed.
tls_issue() {
        local conf=$1 doc=$2 lifetime=${3:-90d} dataroot host db csr crt out rc=0
        dataroot=$(sed -n 's/^data-root = //p' "$conf")
        host=$(sed -n 's/^host = //p' "$conf")
        TLS_OUT=
        for db in $(python3 -c 'import json, sys; print(" ".join(d["name"] for d in json.load(open(sys.argv[1]))["databases"]))' "$doc"); do
                csr="$dataroot/$db/tls/server.csr"
                crt="$(dirname "$conf")/$db.crt"
                [ -f "$csr" ] || continue
                if ! out=$("$CONTROLLER" ca sign --state-dir "$SCRATCH/ctl" --csr "$csr" --host "$host" \
                        --allow-names "$(doc_tls_names "$doc" "$db")" --lifetime "$lifetime" 2>&1 >"$crt"); then
                        TLS_OUT+="$out"$'\n'
                        rc=1
                        continue
                fi
                out=$(ip netns exec "$W-db" "$AGENTCTL" --config "$conf" tls install --database "$db" --cert "$crt" \
                        --ca "$CA" 2>&1) || rc=1
                TLS_OUT+="$out"$'\n'
        done
        return $rc
}

# provision CONF DOC: what a first provision takes until the transport carries certificates:
# apply (key and request), tls_issue, apply again (PostgreSQL listens with the certificate).
# $OUT and $RC are the first apply's, $OUT2 and $RC2 the rest's; status 0 when all succeeded.
provision() {
        local out1 rc1
        apply "$1" "$2"
        out1=$OUT rc1=$RC
        if tls_issue "$1" "$2"; then
                apply "$1" "$2"
                OUT2="$TLS_OUT$OUT" RC2=$RC
        else
                OUT2=$TLS_OUT RC2=1
        fi
        OUT=$out1 RC=$rc1
        [ "$RC" = 0 ] && [ "$RC2" = 0 ]
}

# sql_super CONF DB SQL: the superuser over the cluster's Unix socket.
sql_super() {
        local dataroot sock
        dataroot=$(sed -n 's/^data-root = //p' "$1")
        sock="$dataroot/$2/run"
        as_postgres psql -X -q -A -t -v ON_ERROR_STOP=1 -h "$sock" -p 5432 -U postgres -d "${4:-postgres}" -c "$3" 2>&1
}

# expect_line TEXT: ok when $OUT has the line.
has_line() { grep -qxF -- "$1" <<<"$OUT"; }
