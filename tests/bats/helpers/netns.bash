# helpers/netns.bash — private network namespaces with their own D-Bus and
# avahi-daemon (docs/design.md, Testing), for the mDNS tests and bench/mdns.sh.
#
#   source tests/bats/helpers/netns.bash   (bats: load 'helpers/netns')
#
# Topology: a bridge br0 in its own namespace ${NETNS_PREFIX}sw, and node
# namespaces ${NETNS_PREFIX}1..N, each with a veth e$i (10.99.0.$i/24) whose
# peer p$i is a bridge port.  Every node namespace runs its own dbus-daemon
# and avahi-daemon (tmpfs over /run/avahi-daemon, distinct host-name,
# allow-interfaces=e$i).  Nothing is started in the root network namespace:
# avahi there would multicast on the machine's outside interface.
#
# Functions:
#   netns_check               prints why namespaces cannot be made; rc 1
#   netns_up N                namespaces, bridge, D-Bus + avahi in each
#   netns_exec I CMD...       runs CMD in namespace I with its system bus
#   netns_ip I                10.99.0.I
#   netns_avahi_start I / netns_avahi_stop I [SIG] / netns_avahi_pid I
#   netns_avahi_ready I SECS  waits for "Server startup complete"
#   netns_bg I NAME CMD...    CMD in the background in namespace I; stderr
#                             to $NETNS_RUN/NAME.log; PID recorded
#   netns_pid NAME / netns_kill NAME [SIG] [SECS]
#   netns_down                kills every recorded PID, deletes namespaces
#
# Every PID started here is recorded in $NETNS_RUN/pids and killed by PID
# in netns_down; namespaces are deleted by name.  All waits are bounded.

NETNS_PREFIX=${NETNS_PREFIX:-mmt$$-}
NETNS_RUN=${NETNS_RUN:-}
NETNS_N=0

netns_check()
{
    if [ "$(id -u)" != 0 ]; then
        echo "needs root to create network namespaces"
        return 1
    fi
    for tool in ip dbus-daemon avahi-daemon avahi-browse avahi-publish; do
        if ! command -v "$tool" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$tool" ]; then
            echo "$tool not installed"
            return 1
        fi
    done
    local probe="${NETNS_PREFIX}probe"
    if ! ip netns add "$probe" 2>/dev/null; then
        echo "cannot create network namespaces (ip netns add failed)"
        return 1
    fi
    ip netns del "$probe" 2>/dev/null
    return 0
}

netns_name()
{
    echo "${NETNS_PREFIX}$1"
}

netns_ip()
{
    echo "10.99.0.$1"
}

netns_bus()
{
    echo "unix:path=$NETNS_RUN/$1/bus"
}

netns_exec()
{
    local i=$1
    shift
    ip netns exec "$(netns_name "$i")" \
        env DBUS_SYSTEM_BUS_ADDRESS="$(netns_bus "$i")" "$@"
}

# netns_record NAME PID
netns_record()
{
    echo "$1 $2" >>"$NETNS_RUN/pids"
}

netns_pid()
{
    awk -v n="$1" '$1 == n { p = $2 } END { print p }' "$NETNS_RUN/pids" 2>/dev/null
}

# netns_bg I NAME CMD...: runs CMD in namespace I in the background.
netns_bg()
{
    local i=$1 name=$2
    shift 2
    # Not through netns_exec: $! must be the command itself (ip and env
    # exec it), not a subshell.
    ip netns exec "$(netns_name "$i")" \
        env DBUS_SYSTEM_BUS_ADDRESS="$(netns_bus "$i")" "$@" \
        >"$NETNS_RUN/$name.out" 2>"$NETNS_RUN/$name.log" &
    netns_record "$name" $!
}

# netns_wait_gone PID SECS: waits (bounded) for PID to exit.
netns_wait_gone()
{
    local pid=$1 secs=${2:-5} i
    for ((i = 0; i < secs * 20; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    return 1
}

# netns_kill NAME [SIG] [SECS]: signals a recorded process, waits, then
# SIGKILLs it if it is still there.
netns_kill()
{
    local pid
    pid=$(netns_pid "$1")
    [ -n "$pid" ] || return 0
    kill -s "${2:-TERM}" "$pid" 2>/dev/null || return 0
    netns_wait_gone "$pid" "${3:-5}" && return 0
    kill -KILL "$pid" 2>/dev/null
    netns_wait_gone "$pid" 2
}

netns_avahi_pid()
{
    netns_pid "avahi$1"
}

netns_avahi_ready()
{
    local i=$1 secs=${2:-10} n
    local deadline=$((SECONDS + secs))
    n=$(grep -c 'Server startup complete' "$NETNS_RUN/avahi$i.log" 2>/dev/null)
    # A restart appends to the log: wait for one more line than before.
    local want=${3:-1}
    local pid
    pid=$(netns_avahi_pid "$i")
    while [ "${n:-0}" -lt "$want" ]; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
        n=$(grep -c 'Server startup complete' "$NETNS_RUN/avahi$i.log" 2>/dev/null)
    done
}

netns_avahi_start()
{
    local i=$1 ns
    ns=$(netns_name "$i")
    ip netns exec "$ns" sh -c "mount -t tmpfs tmpfs /run/avahi-daemon &&
        DBUS_SYSTEM_BUS_ADDRESS=$(netns_bus "$i") exec avahi-daemon --no-rlimits -f $NETNS_RUN/$i/avahi.conf" \
        >>"$NETNS_RUN/avahi$i.log" 2>&1 &
    netns_record "avahi$i" $!
}

netns_avahi_stop()
{
    netns_kill "avahi$1" "${2:-TERM}" 5
}

netns_up()
{
    local n=$1 i sw
    NETNS_N=$n
    if [ -z "$NETNS_RUN" ]; then
        NETNS_RUN=$(mktemp -d /run/mmt.XXXXXX)
        NETNS_RUN_MADE=1
    fi
    chmod 755 "$NETNS_RUN" # avahi drops root and must reach the bus socket
    : >"$NETNS_RUN/pids"
    echo "$NETNS_PREFIX" >"$NETNS_RUN/prefix"
    mkdir -p /run/avahi-daemon # mount point only; nothing runs there
    sw=$(netns_name sw)
    ip netns add "$sw" || return 1
    ip -n "$sw" link set lo up
    ip -n "$sw" link add br0 type bridge || return 1
    ip -n "$sw" link set br0 up
    for ((i = 1; i <= n; i++)); do
        local ns
        ns=$(netns_name "$i")
        mkdir -p "$NETNS_RUN/$i"
        ip netns add "$ns" || return 1
        ip -n "$ns" link set lo up
        ip -n "$sw" link add "p$i" type veth peer name "e$i" netns "$ns" || return 1
        ip -n "$sw" link set "p$i" master br0
        ip -n "$sw" link set "p$i" up
        ip -n "$ns" addr add "$(netns_ip "$i")/24" dev "e$i"
        ip -n "$ns" link set "e$i" up
        cat >"$NETNS_RUN/$i/avahi.conf" <<EOF
[server]
host-name=${NETNS_PREFIX//-/}n$i
use-ipv4=yes
use-ipv6=no
allow-interfaces=e$i
[wide-area]
enable-wide-area=no
[publish]
publish-hinfo=no
publish-workstation=no
publish-aaaa-on-ipv4=no
EOF
        local pid
        pid=$(ip netns exec "$ns" dbus-daemon --config-file=/usr/share/dbus-1/system.conf \
            --address="$(netns_bus "$i")" --nopidfile --fork --print-pid) || return 1
        netns_record "dbus$i" "$pid"
        netns_avahi_start "$i"
    done
    for ((i = 1; i <= n; i++)); do
        netns_avahi_ready "$i" 10 || {
            echo "avahi-daemon in $(netns_name "$i") did not start:" >&2
            cat "$NETNS_RUN/avahi$i.log" >&2
            return 1
        }
    done
}

# netns_kill_batch nodes|daemons: signals every recorded process of the
# batch at once (daemons = avahi and D-Bus), waits (bounded), SIGKILLs the
# rest, and forgets them.
netns_kill_batch()
{
    local batch=$1 name pid pids=()
    [ -n "$NETNS_RUN" ] && [ -f "$NETNS_RUN/pids" ] || return 0
    while read -r name pid; do
        [ -n "$pid" ] || continue
        case $name in
        avahi* | dbus*) [ "$batch" = daemons ] || continue ;;
        *) [ "$batch" = nodes ] || continue ;;
        esac
        kill -CONT "$pid" 2>/dev/null
        kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    done <"$NETNS_RUN/pids"
    for pid in "${pids[@]}"; do
        netns_wait_gone "$pid" 4 || kill -KILL "$pid" 2>/dev/null
    done
    if [ "$batch" = daemons ]; then
        awk '$1 !~ /^(avahi|dbus)/' "$NETNS_RUN/pids" >"$NETNS_RUN/pids.new"
    else
        awk '$1 ~ /^(avahi|dbus)/' "$NETNS_RUN/pids" >"$NETNS_RUN/pids.new"
    fi
    mv "$NETNS_RUN/pids.new" "$NETNS_RUN/pids"
}

# netns_kill_nodes: stops everything but the daemons.
netns_kill_nodes()
{
    netns_kill_batch nodes
}

# netns_kill_all: stops every recorded process (logs are kept): nodes and
# tools first, then avahi and D-Bus.
netns_kill_all()
{
    netns_kill_batch nodes
    netns_kill_batch daemons
}

# netns_down: netns_kill_all, then deletes the namespaces and the run dir.
netns_down()
{
    [ -n "$NETNS_RUN" ] && [ -f "$NETNS_RUN/pids" ] || return 0
    netns_kill_all
    local prefix
    prefix=$(cat "$NETNS_RUN/prefix" 2>/dev/null)
    if [ -n "$prefix" ]; then
        ip netns list 2>/dev/null | awk '{ print $1 }' | while read -r ns; do
            case $ns in "$prefix"*) ip netns del "$ns" 2>/dev/null ;; esac
        done
    fi
    : >"$NETNS_RUN/pids"
    if [ "${NETNS_RUN_MADE:-0}" = 1 ]; then
        rm -rf "$NETNS_RUN"
        NETNS_RUN=
    fi
}
