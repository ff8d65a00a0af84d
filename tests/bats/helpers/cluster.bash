# helpers/cluster.bash — shared by every murmer bats file.
#
#   load 'helpers/cluster'
#
# Provides: murmer first in PATH (from $MURMER_BUILD), a private
# XDG_STATE_HOME per test, free_port, start_node NAME ARGS..., node_pid,
# stop_node NAME [SIGNAL] [SECONDS], wait_for CMD SECONDS, and a teardown
# that kills the PIDs recorded by start_node and nothing else.

load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'
load '/usr/lib/bats/bats-file/load'
bats_require_minimum_version 1.5.0

# scripts/run-bats.sh exports MURMER_BUILD as an absolute path.
: "${MURMER_BUILD:=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)/build}"
MURMER_SRC=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
# Every test is bounded (bats >= 1.7 honours this).
export BATS_TEST_TIMEOUT=${BATS_TEST_TIMEOUT:-120}

murmer_setup()
{
    PATH="$MURMER_BUILD:$PATH"
    export PATH
    export XDG_STATE_HOME="$BATS_TEST_TMPDIR/state"
    unset MURMER_JOIN MURMER_CLUSTER_KEY MURMER_CLUSTER_KEY_FILE MURMER_LOG \
        NO_COLOR
    NODE_PIDS_FILE="$BATS_TEST_TMPDIR/node-pids"
    : >"$NODE_PIDS_FILE"
}

setup()
{
    murmer_setup
}

# A UDP port the OS just handed out on 127.0.0.1 (then released).
free_port()
{
    local py=/usr/bin/python3
    [ -x "$py" ] || py=python3
    "$py" -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# start_node NAME [ARGS...]: `murmer start --name NAME ARGS...` in the
# background; stderr goes to $BATS_TEST_TMPDIR/NAME.log, stdout to NAME.out.
# Records the PID for node_pid, stop_node and teardown.
start_node()
{
    local name=$1
    shift
    murmer start --name "$name" "$@" \
        >"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.log" &
    echo "$name $!" >>"$NODE_PIDS_FILE"
}

node_pid()
{
    awk -v n="$1" '$1 == n { p = $2 } END { print p }' "$NODE_PIDS_FILE"
}

node_log()
{
    echo "$BATS_TEST_TMPDIR/$1.log"
}

# wait_for CMD SECONDS: polls CMD (a shell string) every 50 ms until it
# succeeds; fails after SECONDS.
wait_for()
{
    local cmd=$1 secs=${2:-10}
    local deadline=$((SECONDS + secs))
    while ! eval "$cmd" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "wait_for: '$cmd' still false after ${secs}s" >&2
            return 1
        fi
        sleep 0.05
    done
}

# stop_node NAME [SIGNAL] [SECONDS]: signals the node and waits (bounded)
# for it to exit.  Sets STOP_RC to its exit status and STOP_MS to the time
# it took; returns 1 if it did not exit in time.
stop_node()
{
    local name=$1 sig=${2:-TERM} secs=${3:-10}
    local pid
    pid=$(node_pid "$name")
    [ -n "$pid" ] || return 1
    local t0
    t0=$(date +%s%N)
    kill -s "$sig" "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + secs))
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "stop_node: $name ($pid) still running after ${secs}s" >&2
            return 1
        fi
        sleep 0.05
    done
    STOP_RC=0
    wait "$pid" || STOP_RC=$?
    STOP_MS=$((($(date +%s%N) - t0) / 1000000))
}

# Kills the nodes this test started (by recorded PID only).
murmer_teardown()
{
    [ -f "${NODE_PIDS_FILE:-}" ] || return 0
    local name pid
    while read -r name pid; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            local i
            for ((i = 0; i < 100; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.05
            done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done <"$NODE_PIDS_FILE"
}

teardown()
{
    murmer_teardown
}

# start_cluster N [ARGS...]: a cluster key and N demo nodes n1..nN on
# OS-chosen loopback ports, n2..nN joined to n1.  Sets KEY (the key file),
# SEED (n1's address) and PORT_<i>.  Extra ARGS go to every node.
start_cluster()
{
    local n=${1:-3}
    shift || true
    KEY="$BATS_TEST_TMPDIR/cluster.key"
    [ -f "$KEY" ] || murmer keygen "$KEY"
    local i port
    for ((i = 1; i <= n; i++)); do
        port=$(free_port)
        printf -v "PORT_$i" '%s' "$port"
        if [ "$i" -eq 1 ]; then
            SEED="127.0.0.1:$port"
            start_node n1 --listen "$SEED" --cluster-key "$KEY" \
                --data-dir "$BATS_TEST_TMPDIR/data-n1" --demo "$@"
        else
            start_node "n$i" --listen "127.0.0.1:$port" --join "$SEED" \
                --cluster-key "$KEY" --data-dir "$BATS_TEST_TMPDIR/data-n$i" \
                --demo "$@"
        fi
    done
    for ((i = 1; i <= n; i++)); do
        wait_for "grep -q 'listening on' '$(node_log "n$i")'" 20 ||
            { cat "$(node_log "n$i")"; return 1; }
    done
}

# mm ARGS...: the CLI against the cluster of start_cluster, bounded.
mm()
{
    timeout 30 murmer --join "$SEED" --cluster-key "$KEY" "$@"
}

# alive_count: how many members n1 lists as alive (0 when unreachable).
alive_count()
{
    mm members --json 2>/dev/null |
        jq '[.members[] | select(.state == "alive")] | length' 2>/dev/null ||
        echo 0
}
