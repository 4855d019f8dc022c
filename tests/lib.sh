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
