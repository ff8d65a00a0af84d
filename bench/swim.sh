#!/usr/bin/env bash
# bench/swim.sh — murmer's membership benchmarks (issue 4), measured the way
# ../shared/anchors/serf measures Serf (RESULTS.md Part 2), with real
# `murmer start` processes on loopback and the default timings (memberlist's
# LAN profile, the same as Serf's; every MURMER_SWIM_* override is unset).
#
#   make bench W=swim            (BUILD=build; about 5 minutes)
#   BUILD=build bash bench/swim.sh
#
# Output (stdout), CSV `system,workload,value,unit`:
#   murmer,swim.converge.N32.median|max  ns   burst join of 32 nodes: n1 up,
#        n2..n31 launched back to back, then n32; from the start of n32 until
#        every node lists 32 alive (as converge.sh burst, poll view)
#   murmer,swim.detect.N8.median|max     ns   kill -9 of a random non-seed node
#        3 s after convergence, until every survivor lists it failed
#   murmer,swim.leave.N8.median|max      ns   SIGTERM (graceful leave) of a
#        random non-seed node, until every survivor lists it left
#   murmer,swim.idle.rss_anon|vm_rss     bytes  per node (RssAnon / VmRSS of
#        /proc/PID/status), median over the 8 nodes, 5 s after convergence
#   murmer,swim.idle.cpu_pct             %    utime+stime over a 30 s idle
#        window, % of one core, median over the nodes
#   murmer,swim.idle.bytes_per_s         B/s  IP bytes (UDP+TCP) the nodes sent
#        during the window (nftables output counters per node port) / N / s
# Progress, run counts and spreads go to stderr.
#
# Views are polled by bench/swimpoll (one client session per node, one
# member-list request every POLL_MS = 20 ms), which is the "poll view" with
# a finer grain than Serf's scripts (a `serf members` process per agent per
# sweep, 100 ms pauses in depart.sh): Serf's poll figures carry up to about
# one sweep (~0.1-0.2 s) of measurement slack that murmer's do not.
#
# Runs in a private network namespace (unshare -n, only lo up) when it can:
# nothing else on lo, ports never collide, the nft table dies with it.
# Every process is tracked by PID and killed by PID on exit; every wait is
# bounded.  Knobs: SWIM_BUDGET_S (290), SWIM_CONVERGE_RUNS (25),
# SWIM_DETECT_RUNS (20), SWIM_LEAVE_RUNS (6), SWIM_IDLE_S (30), POLL_MS (20);
# for digging into a slow run: SWIM_CONVERGE_ONLY=1, SWIM_NODE_ARGS=-vv (node
# logs), SWIM_DEBUG=1 (keeps each converge run's logs and the watcher's
# per-poll trace in /tmp/swimdebug-RUN; sets SWIMPOLL_DEBUG).
set -u
cd "$(dirname "$0")/.." || exit 2
# shellcheck source=bench/lib.sh
. bench/lib.sh
ROOT=$(pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

bench_netns SWIM "$0" "$@"

M=$BUILD/murmer
POLL=$BUILD/bench/swimpoll
BUDGET_S=${SWIM_BUDGET_S:-290}
CONVERGE_RUNS=${SWIM_CONVERGE_RUNS:-25}
DETECT_RUNS=${SWIM_DETECT_RUNS:-20}
LEAVE_RUNS=${SWIM_LEAVE_RUNS:-6}
IDLE_S=${SWIM_IDLE_S:-30}
POLL_MS=${POLL_MS:-20}
SETTLE_S=3

note() { echo "swim: $*" >&2; }
for b in "$M" "$POLL"; do
    [ -x "$b" ] || { note "$b not built (make BUILD=... all bench)"; exit 2; }
done
# The defaults for every figure: no timing overrides from the caller.
for v in $(env | sed -n 's/^\(MURMER_[A-Z_]*\)=.*/\1/p'); do unset "$v"; done

[ "${SWIM_DEBUG:-0}" = 1 ] && export SWIMPOLL_DEBUG=1
T_START=$SECONDS
TMP=$(mktemp -d /tmp/murmer-swim.XXXXXX)
export XDG_STATE_HOME=$TMP/state
KEY=$TMP/cluster.key
NFT_TABLE=murmer_swim_$$
NFT_MADE=0
declare -a PID=() PORT=()

kill_nodes() {
    local p
    for p in "${PID[@]}"; do [ -n "$p" ] && kill -9 "$p" 2> /dev/null; done
    for p in "${PID[@]}"; do [ -n "$p" ] && { wait "$p"; } 2> /dev/null; done
    PID=()
}
cleanup() {
    kill_nodes
    [ $NFT_MADE = 1 ] && nft delete table inet "$NFT_TABLE" 2> /dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$M" keygen "$KEY" > /dev/null 2>&1 || { note "murmer keygen failed"; exit 1; }

now_ns() { date +%s%N; }
elapsed() { echo $((SECONDS - T_START)); }

addr() { echo "127.0.0.1:${PORT[$1]}"; }
addrs() { # addrs N [SKIP]: the addresses of n1..nN, without nSKIP
    local i
    for ((i = 1; i <= $1; i++)); do [ "$i" = "${2:-0}" ] || addr "$i"; done
}

# start_node I DIR: `murmer start` for nI (nI > 1 joins n1), own data dir.
start_node() {
    local i=$1 dir=$2 join=()
    [ "$i" -gt 1 ] && join=(--join "$(addr 1)")
    mkdir -p "$dir/n$i"
    "$M" start --name "n$i" --listen "$(addr "$i")" "${join[@]}" \
        --cluster-key "$KEY" --data-dir "$dir/n$i" ${SWIM_NODE_ARGS:-} \
        > /dev/null 2>> "$dir/n$i.log" &
    PID[i]=$!
}
# poll DEADLINE_MS COND... ADDR...: swimpoll's latest instant, or "" when a
# node did not meet the condition in time.
poll_last() {
    local out
    out=$("$POLL" "$KEY" "$@" 2> "$TMP/last.err")
    echo "$out" > "$TMP/last.poll"
    grep -q ' -$' <<< "$out" && return 1
    awk '{ if ($2 > m) m = $2 } END { print m }' <<< "$out"
}
wait_up() { "$POLL" "$KEY" 10000 10 alive 1 "$(addr "$1")" > /dev/null; }

# stats NAME UNIT < values: median and max lines (values in ns).
emit_stats() {
    sort -g | awk -v n="$1" -v u="$2" '{ a[NR] = $1 } END {
        if (NR == 0) exit 1
        m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        printf "murmer,%s.median,%.0f,%s\nmurmer,%s.max,%.0f,%s\n", n, m, u, n, a[NR], u }'
}
spread() { # human summary of ns values on stdin: median [min..max] ms (n)
    sort -g | awk '{ a[NR] = $1 } END { if (!NR) { print "no runs"; exit }
        m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        printf "%.0f ms [%.0f..%.0f] (n=%d)", m / 1e6, a[1] / 1e6, a[NR] / 1e6, NR }'
}

# ---- convergence, N = 32, burst ------------------------------------------
N=32
CONV_BUDGET=${SWIM_CONVERGE_BUDGET_S:-70}
: > "$TMP/converge"
fails=0
t_phase=$SECONDS
for ((r = 1; r <= CONVERGE_RUNS; r++)); do
    [ $((SECONDS - t_phase)) -lt "$CONV_BUDGET" ] || break
    D=$TMP/conv$r
    read -r -a ports <<< "$(free_ports $N)"
    PORT=("" "${ports[@]}")
    start_node 1 "$D"
    wait_up 1 || { note "converge run $r: n1 did not come up"; kill_nodes; fails=$((fails + 1)); continue; }
    for ((i = 2; i < N; i++)); do start_node "$i" "$D"; done
    # The watcher starts first (its sessions to n1..n31 open while they
    # start), so that its own start-up is not counted.
    # shellcheck disable=SC2046
    "$POLL" "$KEY" 40000 "$POLL_MS" alive "$N" $(addrs $N) > "$TMP/last.poll" 2> "$TMP/last.err" &
    pp=$!
    t_last=$(now_ns)
    start_node "$N" "$D"
    wait "$pp"
    if ! grep -q ' -$' "$TMP/last.poll" &&
        t_all=$(awk '{ if ($2 > m) m = $2 } END { print m }' "$TMP/last.poll"); then
        echo $((t_all - t_last)) >> "$TMP/converge"
        [ "${SWIM_DEBUG:-0}" = 1 ] && awk -v t="$t_last" '{ printf "  run %d %s %.0f ms\n", r, $1, ($2 - t) / 1e6 }' r=$r "$TMP/last.poll" | sort -k4 -g | tail -4 >&2
        [ "${SWIM_DEBUG:-0}" = 1 ] && cp -r "$D" "/tmp/swimdebug-$r" && cp "$TMP/last.err" "/tmp/swimdebug-$r/poll.err" && echo "$t_last" > "/tmp/swimdebug-$r/t_last"
    else
        note "converge run $r: not every node listed $N alive within 40 s"
        [ "${SWIM_DEBUG:-0}" = 1 ] && sed 's/^/  /' "$TMP/last.poll" >&2
        fails=$((fails + 1))
    fi
    kill_nodes
    rm -rf "$D"
done
note "converge N=$N burst: $(spread < "$TMP/converge"), $fails failed, $(($(elapsed)))s elapsed"
emit_stats "swim.converge.N$N" ns < "$TMP/converge"

# ---- one N = 8 cluster for idle, leave and detection ------------------------
[ "${SWIM_CONVERGE_ONLY:-0}" = 1 ] && exit 0
N=8
D=$TMP/c8
read -r -a ports <<< "$(free_ports $N)"
PORT=("" "${ports[@]}")
start_node 1 "$D"
wait_up 1 || { note "n1 did not come up"; exit 1; }
for ((i = 2; i <= N; i++)); do start_node "$i" "$D"; wait_up "$i" || { note "n$i did not come up"; exit 1; }; done
# shellcheck disable=SC2046
poll_last 60000 "$POLL_MS" alive $N $(addrs $N) > /dev/null || { note "cluster of $N did not converge"; exit 1; }

# ---- idle: 5 s after convergence, a 30 s window without client calls --------
if command -v nft > /dev/null && nft add table inet "$NFT_TABLE" 2> /dev/null; then
    NFT_MADE=1
    nft add chain inet "$NFT_TABLE" out '{ type filter hook output priority 0; policy accept; }'
    for ((i = 1; i <= N; i++)); do
        nft add rule inet "$NFT_TABLE" out udp sport "${PORT[i]}" counter
        nft add rule inet "$NFT_TABLE" out tcp sport "${PORT[i]}" counter
    done
else
    note "nft unavailable: no swim.idle.bytes_per_s"
fi
nft_bytes() { nft list chain inet "$NFT_TABLE" out | awk '/counter/ { for (f = 1; f < NF; f++) if ($f == "bytes") b += $(f + 1) } END { print b + 0 }'; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
sleep 5
: > "$TMP/rss_anon"; : > "$TMP/vm_rss"
for ((i = 1; i <= N; i++)); do
    echo $(($(status_kb "${PID[i]}" RssAnon) * 1024)) >> "$TMP/rss_anon"
    echo $(($(status_kb "${PID[i]}" VmRSS) * 1024)) >> "$TMP/vm_rss"
done
declare -a c0=()
for ((i = 1; i <= N; i++)); do c0[i]=$(ticks "${PID[i]}"); done
[ $NFT_MADE = 1 ] && b0=$(nft_bytes)
t0=$(now_ns)
sleep "$IDLE_S"
t1=$(now_ns)
[ $NFT_MADE = 1 ] && b1=$(nft_bytes)
HZ=$(getconf CLK_TCK)
: > "$TMP/cpu"
for ((i = 1; i <= N; i++)); do
    awk -v d="$(($(ticks "${PID[i]}") - c0[i]))" -v hz="$HZ" -v t="$((t1 - t0))" \
        'BEGIN { printf "%.4f\n", d / hz / (t / 1e9) * 100 }' >> "$TMP/cpu"
done
med() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
hwm=$(for ((i = 1; i <= N; i++)); do status_kb "${PID[i]}" VmHWM; done | sort -g | tail -1)
note "idle N=$N: RssAnon $(tr '\n' ' ' < "$TMP/rss_anon")B; VmRSS median $(med < "$TMP/vm_rss") B; VmHWM max ${hwm} KiB; CPU% $(tr '\n' ' ' < "$TMP/cpu")"
printf 'murmer,swim.idle.rss_anon,%.0f,bytes\n' "$(med < "$TMP/rss_anon")"
printf 'murmer,swim.idle.vm_rss,%.0f,bytes\n' "$(med < "$TMP/vm_rss")"
printf 'murmer,swim.idle.cpu_pct,%.3f,%%\n' "$(med < "$TMP/cpu")"
if [ $NFT_MADE = 1 ]; then
    awk -v b=$((b1 - b0)) -v t=$((t1 - t0)) -v n=$N \
        'BEGIN { printf "murmer,swim.idle.bytes_per_s,%.0f,B/s\n", b / (t / 1e9) / n }'
    nft delete table inet "$NFT_TABLE" 2> /dev/null && NFT_MADE=0
fi

# ---- departures: SIGTERM (leave) and kill -9 (detect) -----------------------
# depart MODE FILE: one run on the converged cluster; the victim comes back
# (same data dir and port: a new generation replaces it) and the cluster
# re-converges before the next run.
depart() {
    local mode=$1 file=$2 v t0 t_all want sig
    v=$((2 + RANDOM % (N - 1)))
    if [ "$mode" = kill ]; then want=failed; sig=KILL; else want=left; sig=TERM; fi
    sleep "$SETTLE_S"
    t0=$(now_ns)
    kill -s $sig "${PID[v]}"
    # shellcheck disable=SC2046
    if t_all=$(poll_last 60000 "$POLL_MS" state "n$v" "$want" $(addrs $N "$v")); then
        echo $((t_all - t0)) >> "$file"
    else
        note "$mode run: not every survivor listed n$v $want within 60 s"
    fi
    local dl=$((SECONDS + 10))
    while kill -0 "${PID[v]}" 2> /dev/null && [ $SECONDS -lt $dl ]; do sleep 0.02; done
    kill -9 "${PID[v]}" 2> /dev/null
    { wait "${PID[v]}"; } 2> /dev/null
    start_node "$v" "$D"
    # shellcheck disable=SC2046
    poll_last 60000 "$POLL_MS" alive $N $(addrs $N) > /dev/null ||
        { note "n$v did not rejoin"; return 1; }
}

: > "$TMP/leave"
t_phase=$SECONDS
for ((r = 1; r <= LEAVE_RUNS; r++)); do
    [ $((SECONDS - t_phase)) -lt "${SWIM_LEAVE_BUDGET_S:-45}" ] || break
    depart leave "$TMP/leave" || break
done
note "leave N=$N: $(spread < "$TMP/leave"), $(($(elapsed)))s elapsed"
emit_stats "swim.leave.N$N" ns < "$TMP/leave"

: > "$TMP/detect"
for ((r = 1; r <= DETECT_RUNS; r++)); do
    # one detection run takes about 9-10 s (3 s settle, ~5-6 s detection)
    [ $(($(elapsed) + 10)) -le "$BUDGET_S" ] || break
    depart kill "$TMP/detect" || break
done
note "detect N=$N: $(spread < "$TMP/detect") of $DETECT_RUNS wanted, $(($(elapsed)))s elapsed"
emit_stats "swim.detect.N$N" ns < "$TMP/detect"
exit 0
