# bench/lib.sh — what the cluster benchmarks share (sourced, not run):
# defaults only, a scratch directory with the CLI's own state, the node PIDs
# killed on exit, and ports handed out by the OS.
# shellcheck shell=bash

# Unsets every MURMER_* variable: a benchmark measures the defaults.
bench_clean_env() {
    local v
    for v in $(env | sed -n 's/^\(MURMER_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done
}

# bench_tmp NAME: TMP becomes a new /tmp/murmer-NAME.XXXXXX holding the
# CLI's state (XDG_STATE_HOME); KEY is the cluster key's path in it; PIDS
# (the nodes bench_kill_pids kills) starts empty.
bench_tmp() {
    TMP=$(mktemp -d "/tmp/murmer-$1.XXXXXX") || exit 2
    export XDG_STATE_HOME=$TMP/state
    KEY=$TMP/cluster.key
    PIDS=()
}

# Kills (-9) and reaps every process in PIDS; PIDS is empty afterwards.
bench_kill_pids() {
    local p
    for p in "${PIDS[@]}"; do kill -9 "$p" 2> /dev/null; done
    for p in "${PIDS[@]}"; do wait "$p" 2> /dev/null; done
    PIDS=()
}

# free_ports K: K distinct UDP ports the OS hands out on 127.0.0.1, held
# together so that none repeats.
free_ports() {
    python3 -c 'import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))' "$1"
}

# bench_netns P SCRIPT ARGS...: runs SCRIPT again in a private network
# namespace (unshare -n, only lo up) unless P_NETNS says it already is
# there, P_NO_NETNS=1 or unshare cannot; in the namespace, brings lo up.
bench_netns() {
    local p=$1 in no
    shift
    in=${p}_NETNS
    no=${p}_NO_NETNS
    if [ -z "${!in:-}" ] && [ "${!no:-0}" != 1 ] &&
        command -v unshare > /dev/null && unshare -n true 2> /dev/null; then
        exec unshare -n env "$in=1" BUILD="$BUILD" bash "$@"
    fi
    if [ -n "${!in:-}" ]; then ip link set lo up; fi
}
