# helpers/faults.bash — network namespaces and packet drops for the fault
# tests (docs/design.md, Testing), on top of helpers/cluster.bash (load that first):
#
#   load 'helpers/cluster'
#   load 'helpers/faults'
#
# Topology made by faults_net_up N: a namespace ${FAULTS_PREFIX}sw holding a
# bridge br0, and node namespaces ${FAULTS_PREFIX}1..N, each with a veth e$i
# (10.231.0.$i/24) whose peer p$i is a port of br0.  Nothing is created or
# changed in the root namespace.  Drops are nft rules (iptables when nft is
# missing) in a table "mmfault" inside the node namespaces.
#
# Functions:
#   faults_check              prints why the tests cannot run; rc 1
#   faults_net_up N           namespaces, bridge, veths, addresses
#   faults_ip I               10.231.0.I
#   faults_addr I             10.231.0.I:7946 (node I listens there)
#   faults_node I [ARGS...]   `murmer start --name nI` in namespace I, seeded
#                             from node 1 (except node 1); PID recorded for
#                             cluster.bash's teardown
#   faults_members I          `murmer members --json` asked of node I
#   faults_state I NAME       NAME's state as node I lists it (none/error)
#   faults_all_alive N I...   every listed node lists N members, all alive
#   faults_all_see NAME STATE I...
#   faults_count_state STATE I...  how many (viewer, member) pairs are STATE
#   faults_drop I IP...       node I drops every packet from those IPs
#   faults_undrop I           removes node I's drops
#   faults_dropped I          packets node I's drop rules have matched
#   faults_net_down           undrop, delete the namespaces made here
#
# Every wait is bounded; processes are killed by recorded PID only;
# namespaces are deleted by the exact names recorded when they were made.

FAULTS_PREFIX=${FAULTS_PREFIX:-mmf$$-}
FAULTS_PORT=7946
FAULTS_NS_FILE=

faults_check()
{
    if [ "$(id -u)" != 0 ]; then
        echo "needs root to create network namespaces"
        return 1
    fi
    if ! command -v ip >/dev/null 2>&1; then
        echo "iproute2 (ip) is not installed"
        return 1
    fi
    if ! command -v nft >/dev/null 2>&1 &&
        ! command -v iptables >/dev/null 2>&1; then
        echo "neither nft nor iptables is installed"
        return 1
    fi
    local probe="${FAULTS_PREFIX}probe"
    if ! ip netns add "$probe" 2>/dev/null; then
        echo "cannot create network namespaces (ip netns add failed)"
        return 1
    fi
    ip netns del "$probe" 2>/dev/null
    return 0
}

faults_ns()
{
    echo "${FAULTS_PREFIX}$1"
}

faults_ip()
{
    echo "10.231.0.$1"
}

faults_addr()
{
    echo "10.231.0.$1:$FAULTS_PORT"
}

# faults_add_ns NAME: creates a namespace and records its name.
faults_add_ns()
{
    ip netns add "$1" || return 1
    echo "$1" >>"$FAULTS_NS_FILE"
    ip -n "$1" link set lo up
}

faults_net_up()
{
    local n=$1 i sw ns
    FAULTS_NS_FILE="$BATS_TEST_TMPDIR/faults-netns"
    : >"$FAULTS_NS_FILE"
    sw=$(faults_ns sw)
    faults_add_ns "$sw" || return 1
    ip -n "$sw" link add br0 type bridge || return 1
    ip -n "$sw" link set br0 up
    for ((i = 1; i <= n; i++)); do
        ns=$(faults_ns "$i")
        faults_add_ns "$ns" || return 1
        ip -n "$sw" link add "p$i" type veth peer name "e$i" netns "$ns" ||
            return 1
        ip -n "$sw" link set "p$i" master br0
        ip -n "$sw" link set "p$i" up
        ip -n "$ns" addr add "$(faults_ip "$i")/24" dev "e$i"
        ip -n "$ns" link set "e$i" up
    done
    # (No STP on br0: ports forward at once; the callers' convergence waits
    # cover the rest.  There is no ping on these machines.)
}

# faults_node I [ARGS...]
faults_node()
{
    local i=$1
    shift
    local join=()
    [ "$i" -eq 1 ] || join=(--join "$(faults_addr 1)")
    # $! is murmer itself: `ip netns exec` execs it.
    ip netns exec "$(faults_ns "$i")" murmer start --name "n$i" \
        --listen "$(faults_addr "$i")" --advertise "$(faults_addr "$i")" \
        "${join[@]}" --cluster-key "$KEY" \
        --data-dir "$BATS_TEST_TMPDIR/data-n$i" --no-mdns "$@" \
        >"$BATS_TEST_TMPDIR/n$i.out" 2>"$BATS_TEST_TMPDIR/n$i.log" &
    echo "n$i $!" >>"$NODE_PIDS_FILE"
}

faults_members()
{
    ip netns exec "$(faults_ns "$1")" timeout 20 murmer \
        --join "$(faults_addr "$1")" --cluster-key "$KEY" --timeout 5s \
        members --json 2>/dev/null
}

faults_state()
{
    local out
    out=$(faults_members "$1") || { echo error; return 0; }
    jq -r --arg n "$2" \
        '([.members[] | select(.name == $n) | .state] | first) // "none"' \
        <<<"$out" 2>/dev/null || echo error
}

faults_all_alive()
{
    local n=$1 i out
    shift
    for i in "$@"; do
        out=$(faults_members "$i") || return 1
        [ "$(jq '[.members[] | select(.state == "alive")] | length' \
            <<<"$out")" = "$n" ] || return 1
        [ "$(jq '.members | length' <<<"$out")" = "$n" ] || return 1
    done
}

faults_all_see()
{
    local name=$1 state=$2 i
    shift 2
    for i in "$@"; do
        [ "$(faults_state "$i" "$name")" = "$state" ] || return 1
    done
}

# faults_count_state STATE I...: prints how many members the listed nodes
# together list in STATE (a node that cannot be asked counts as 1000).
faults_count_state()
{
    local state=$1 i out c total=0
    shift
    for i in "$@"; do
        if out=$(faults_members "$i"); then
            c=$(jq --arg s "$state" \
                '[.members[] | select(.state == $s)] | length' <<<"$out")
        else
            c=1000
        fi
        total=$((total + ${c:-1000}))
    done
    echo "$total"
}

# faults_drop I IP...: node I drops every packet from the given IPs.
faults_drop()
{
    local i=$1 ns ip set=""
    shift
    ns=$(faults_ns "$i")
    if command -v nft >/dev/null 2>&1; then
        for ip in "$@"; do set="${set:+$set, }$ip"; done
        ip netns exec "$ns" nft add table inet mmfault &&
            ip netns exec "$ns" nft add chain inet mmfault in \
                '{ type filter hook input priority 0; policy accept; }' &&
            ip netns exec "$ns" nft add rule inet mmfault in \
                ip saddr "{ $set }" counter drop
    else
        for ip in "$@"; do
            ip netns exec "$ns" iptables -A INPUT -s "$ip" -j DROP || return 1
        done
    fi
}

faults_undrop()
{
    local ns
    ns=$(faults_ns "$1")
    if command -v nft >/dev/null 2>&1; then
        ip netns exec "$ns" nft delete table inet mmfault 2>/dev/null
    else
        ip netns exec "$ns" iptables -F INPUT 2>/dev/null
    fi
    return 0
}

faults_dropped()
{
    local ns
    ns=$(faults_ns "$1")
    if command -v nft >/dev/null 2>&1; then
        ip netns exec "$ns" nft list table inet mmfault 2>/dev/null |
            awk '/counter packets/ { for (k = 1; k < NF; k++) if ($k == "packets") s += $(k + 1) } END { print s + 0 }'
    else
        ip netns exec "$ns" iptables -L INPUT -v -n -x 2>/dev/null |
            awk '$3 == "DROP" { s += $1 } END { print s + 0 }'
    fi
}

# Deletes the drop tables and the namespaces recorded by faults_net_up.
faults_net_down()
{
    : "${FAULTS_NS_FILE:=$BATS_TEST_TMPDIR/faults-netns}"
    [ -f "$FAULTS_NS_FILE" ] || return 0
    local ns
    while read -r ns; do
        [ -n "$ns" ] || continue
        ip netns exec "$ns" nft delete table inet mmfault 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done <"$FAULTS_NS_FILE"
    : >"$FAULTS_NS_FILE"
}

# Busy loops (CPU saturation) recorded in $BATS_TEST_TMPDIR/busy-pids.
faults_busy_start()
{
    local n=$1 secs=$2 k
    for ((k = 0; k < n; k++)); do
        timeout "$secs" sh -c 'while :; do :; done' &
        echo "$!" >>"$BATS_TEST_TMPDIR/busy-pids"
    done
}

faults_busy_stop()
{
    [ -f "$BATS_TEST_TMPDIR/busy-pids" ] || return 0
    local pid
    while read -r pid; do
        [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null
    done <"$BATS_TEST_TMPDIR/busy-pids"
    : >"$BATS_TEST_TMPDIR/busy-pids"
}
