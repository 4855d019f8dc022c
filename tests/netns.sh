# Test hosts as network namespaces on one bridge, shared by the integration tests' world
# (tests/integration/lib.sh) and the end-to-end tests' and quickstart's (tests/e2e/lib.sh).
# shellcheck shell=bash

# netns_switch PREFIX: the namespace PREFIX-sw holding the bridge br0, up; 1 when namespaces
# cannot be made here.
netns_switch() {
        ip netns add "$1-sw" || return 1
        ip -n "$1-sw" link add br0 type bridge && ip -n "$1-sw" link set br0 up
        return 0
}

# netns_host PREFIX NAME ADDRESS: the namespace PREFIX-NAME, its eth0 (ADDRESS/24) a port of
# PREFIX-sw's bridge, eth0 and lo up.
netns_host() {
        ip netns add "$1-$2"
        ip link add "$1-$2-0" type veth peer name eth0 netns "$1-$2"
        ip link set "$1-$2-0" netns "$1-sw"
        ip -n "$1-sw" link set "$1-$2-0" master br0 up
        ip -n "$1-$2" addr add "$3/24" dev eth0
        ip -n "$1-$2" link set eth0 up
        ip -n "$1-$2" link set lo up
}
