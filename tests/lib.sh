# Shared helpers for shell tests: TAP output and the paths of the built programs.
# shellcheck shell=bash
top_srcdir=${top_srcdir:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
top_builddir=${top_builddir:-$top_srcdir}
CTL="$top_builddir/controller/infrastream-controller"
TAP_N=0
TAP_FAILED=0

ok() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - $*"; }
not_ok() { TAP_N=$((TAP_N + 1)); TAP_FAILED=$((TAP_FAILED + 1)); echo "not ok $TAP_N - $*"; }
skip_all() { echo "1..0 # SKIP $*"; exit 0; }
diag() { printf '%s\n' "$@" | sed 's/^/# /'; }
tap_done() { echo "1..$TAP_N"; [ "$TAP_FAILED" -eq 0 ]; }

# check NAME COMMAND...: ok when the command succeeds.
check() {
        local name=$1
        shift
        if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# same NAME EXPECTED_FILE ACTUAL_FILE: ok when identical, else the diff as TAP diagnostics.
same() {
        if diff -u "$2" "$3" >/tmp/tap-diff.$$ 2>&1; then
                ok "$1"
        else
                not_ok "$1"
                diag "$(head -40 /tmp/tap-diff.$$)"
        fi
        rm -f /tmp/tap-diff.$$
}

scratch() {
        SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/infrastream-test.XXXXXX")
        trap 'rm -rf "$SCRATCH"' EXIT
}

# luks_helper_start SOCKET LOG: the agent's LUKS2 helper behind SOCKET the way infrastream-luks.socket
# runs it (Accept=yes: one helper per connection, the connection on fd 3), without systemd as PID 1;
# the listener's and the helpers' stderr in LOG. luks_helper_stop ends the listener.
luks_helper_start() {
        local _
        command -v systemd-socket-activate >/dev/null || return 1
        systemd-socket-activate --accept -l "$1" "$top_builddir/agent/infrastream-luks-helper" 2>>"$2" &
        LUKS_HELPER_PID=$!
        for _ in $(seq 50); do
                [ -S "$1" ] && return 0
                sleep 0.1
        done
        return 1
}
luks_helper_stop() {
        [ -n "${LUKS_HELPER_PID:-}" ] || return 0
        kill "$LUKS_HELPER_PID" 2>/dev/null
        wait "$LUKS_HELPER_PID" 2>/dev/null
        LUKS_HELPER_PID=
}
