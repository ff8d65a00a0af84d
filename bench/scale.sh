#!/usr/bin/env bash
# bench/scale.sh — N real `murmer start` processes on this one machine
# (issue 20): a burst join to one seed, then the cluster's cost at rest.
#
#   make bench W=scale                       (BUILD=build; N=500: ~4 minutes)
#   SCALE_NODES="64 200 500" BUILD=build bash bench/scale.sh
#
# Output (stdout), CSV `system,workload,value,unit`, for each N:
#   murmer,scale.converge.N<n>  s    n1 up, n2..n(N-1) launched back to back,
#        then nN; from the launch of nN until each of 3 sampled nodes (n1,
#        n(N/2), nN) lists N alive (the latest of the three)
#   murmer,scale.rss_anon.N<n>  bytes  RssAnon of /proc/PID/status, median
#        over the N nodes, SCALE_SETTLE_S (5 s) after convergence
#   murmer,scale.conns.N<n>     count  QUIC connections up per node (the
#        nodes' murmer_quic_connections_up), median, scraped after settling
#   murmer,scale.idle_cpu.N<n>  %    CPU time of every thread of a node over
#        a SCALE_IDLE_S (30 s) window without client calls, % of one core,
#        median over the nodes (from /proc/PID/task/*/schedstat: ns, not
#        clock ticks, which at 0.05 % over 30 s would be 1-2 ticks)
#   murmer,scale.conns_idle.N<n> count the same median after the idle window
#   murmer,scale.detect.N<n>    s    kill -9 of n(N/2+1) until n1 lists it
#        failed
# With SCALE_SERF=1, Serf at N=SCALE_SERF_N (200) in the same run, through
# ../shared/anchors/serf's converge.sh (a `serf members` process per agent
# per sweep, so its figure carries up to one sweep, ~N x 7 ms, of slack):
#   serf,scale.converge.N<n>    s    every agent lists N alive (poll view)
# Progress, per-node spreads (max, the seed's own), `uptime` before each N
# and the watcher's per-node instants go to stderr.
#
# Runs in a private network namespace (unshare -n, only lo up), so the
# N UDP ports and N metrics ports cannot collide with anything.  Every
# process is tracked by PID and killed by PID on exit; every wait is
# bounded (SCALE_CONVERGE_BUDGET_S 120, detection 60 s).  Views are polled
# by bench/swimpoll (one client session per sampled node, one member list
# every SCALE_POLL_MS = 100 ms; a list of 500 members costs the node more
# than bench/swim.sh's 20 ms grain is worth).
# Knobs: SCALE_NODES ("500"), SCALE_SETTLE_S (5), SCALE_IDLE_S (30),
# SCALE_POLL_MS (100), SCALE_SERF (0), SCALE_SERF_N (200), SCALE_NODE_ARGS
# (extra `murmer start` options, e.g. -v), SCALE_NODE_ENV (VAR=VALUE
# words for the nodes' environment, e.g. a MURMER_SWIM_* knob), SCALE_KEEP=1 (keeps the nodes'
# logs in /tmp/murmer-scale.*), SCALE_PERF=1 (perf record -a -g from the
# seed's start until convergence, into $SCALE_PERF_OUT, default
# /tmp/scale.perf).
set -u
cd "$(dirname "$0")/.." || exit 2
# shellcheck source=bench/lib.sh
. bench/lib.sh
ROOT=$(pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

bench_netns SCALE "$0" "$@"

M=$BUILD/murmer
POLL=$BUILD/bench/swimpoll
NODES=${SCALE_NODES:-500}
SETTLE_S=${SCALE_SETTLE_S:-5}
IDLE_S=${SCALE_IDLE_S:-30}
POLL_MS=${SCALE_POLL_MS:-100}
CONV_BUDGET_S=${SCALE_CONVERGE_BUDGET_S:-120}

note() { echo "scale: $*" >&2; }
for b in "$M" "$POLL"; do
    [ -x "$b" ] || { note "$b not built (make BUILD=... all bench)"; exit 2; }
done
bench_clean_env
# 500 nodes, each a few descriptors, plus the watcher's sessions.
ulimit -n 65536 2> /dev/null || ulimit -n "$(ulimit -Hn)" 2> /dev/null
bench_tmp scale
PERF_PID=""
cleanup() {
    [ -n "$PERF_PID" ] && kill -INT "$PERF_PID" 2> /dev/null && wait "$PERF_PID" 2> /dev/null
    bench_kill_pids 2> /dev/null
    if [ "${SCALE_KEEP:-0}" = 1 ]; then note "logs kept in $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$M" keygen "$KEY" > /dev/null 2>&1 || { note "murmer keygen failed"; exit 1; }

now_ns() { date +%s%N; }
secs() { awk -v d="$1" 'BEGIN { printf "%.3f", d / 1e9 }'; }
med() { sort -g | awk '{ a[NR] = $1 } END { if (NR) print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
maxv() { sort -g | tail -1; }
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
# A process's CPU time over all its threads, ns.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2> /dev/null | awk '{ s += $1 } END { print s + 0 }'; }

declare -a PORT=() MPORT=()
addr() { echo "127.0.0.1:${PORT[$1]}"; }

# start_node I: `murmer start` for nI (nI > 1 joins n1), own data dir,
# metrics on MPORT[I].
start_node() {
    local i=$1 join=()
    [ "$i" -gt 1 ] && join=(--join "$(addr 1)")
    # shellcheck disable=SC2086
    env ${SCALE_NODE_ENV:-} "$M" start --name "n$i" --listen "$(addr "$i")" "${join[@]}" \
        --cluster-key "$KEY" --data-dir "$D/n$i" \
        --metrics "127.0.0.1:${MPORT[i]}" ${SCALE_NODE_ARGS:-} \
        > /dev/null 2>> "$D/n$i.log" &
    PIDS[i]=$!
}

# scrape N FILE: the nodes' counters (metrics) of n1..nN; prints
# murmer_quic_connections_up per node, one per line in node order ("-"
# when a node did not answer), and writes a summary of the other counters
# (median, max, the seed's, the sum) to FILE.
SCRAPE_KEYS="murmer_quic_connections_up murmer_quic_connections_dialled_total murmer_quic_connections_accepted_total murmer_quic_connections_refused_total murmer_swim_suspicions_total murmer_swim_late_probes_total murmer_swim_refutations_total murmer_swim_records_verified_total murmer_swim_syncs_total murmer_swim_packets_sent_total murmer_gossip_sent_bytes_total murmer_registry_frames_sent_total murmer_registry_dials_total"
scrape() {
    python3 - "$1" "$2" "$SCRAPE_KEYS" "${MPORT[@]:1}" << 'EOF'
import socket, sys, time
n, out, keys = int(sys.argv[1]), sys.argv[2], sys.argv[3].split()
vals = {k: [] for k in keys}
t_end = time.monotonic() + 60  # the whole scrape, bounded
for p in sys.argv[4:4 + n]:
    got = {}
    if time.monotonic() < t_end:
        try:
            s = socket.create_connection(("127.0.0.1", int(p)), timeout=1)
            s.settimeout(1)
            s.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                b = s.recv(65536)
                if not b:
                    break
                data += b
            s.close()
            for line in data.decode(errors="replace").splitlines():
                f = line.split()
                if len(f) == 2 and f[0] in vals:
                    got[f[0]] = float(f[1])
        except OSError:
            pass
    for k in keys:
        vals[k].append(got.get(k))
    print("%d" % got["murmer_quic_connections_up"] if "murmer_quic_connections_up" in got else "-")
with open(out, "w") as f:
    for k in keys:
        v = sorted(x for x in vals[k] if x is not None)
        if not v:
            continue
        seed = vals[k][0]
        f.write("  %-44s median %8.0f max %8.0f seed %8s sum %10.0f\n" % (k, v[(len(v) - 1) // 2], v[-1], "-" if seed is None else "%.0f" % seed, sum(v)))
EOF
}

# one_n N: one burst of N nodes, every figure of it.
one_n() {
    local N=$1 mid last victim i
    mid=$(((N + 1) / 2))
    last=$N
    victim=$((mid + 1))
    D=$TMP/n$N
    mkdir -p "$D"
    read -r -a ports <<< "$(free_ports $((2 * N)))"
    PORT=("" "${ports[@]:0:N}")
    MPORT=("" "${ports[@]:N}")
    note "N=$N: $(uptime)"
    start_node 1
    "$POLL" "$KEY" 10000 10 alive 1 "$(addr 1)" > /dev/null ||
        { note "N=$N: n1 did not come up"; bench_kill_pids; return 1; }
    if [ "${SCALE_PERF:-0}" = 1 ] && command -v perf > /dev/null; then
        perf record -a -g -F 199 -o "${SCALE_PERF_OUT:-/tmp/scale.perf}" > /dev/null 2>&1 &
        PERF_PID=$!
    fi
    local t_first
    t_first=$(now_ns)
    for ((i = 2; i < N; i++)); do start_node "$i"; done
    "$POLL" "$KEY" $((CONV_BUDGET_S * 1000)) "$POLL_MS" alive "$N" \
        "$(addr 1)" "$(addr "$mid")" "$(addr "$last")" > "$TMP/poll" 2> "$TMP/poll.err" &
    local pp=$! t_last
    t_last=$(now_ns)
    start_node "$last"
    wait "$pp"
    [ "${SCALE_KEEP:-0}" = 1 ] && cp "$TMP/poll.err" "$D/poll.err"
    note "N=$N: n2..n$N launched in $(secs $((t_last - t_first))) s"
    if [ -n "$PERF_PID" ]; then
        kill -INT "$PERF_PID" 2> /dev/null; wait "$PERF_PID" 2> /dev/null; PERF_PID=""
    fi
    local t_all
    if grep -q ' -$' "$TMP/poll"; then
        note "N=$N: not every sampled node listed $N alive within ${CONV_BUDGET_S} s:"
        sed 's/^/  /' "$TMP/poll" >&2
    else
        awk -v t="$t_last" '{ printf "  %s %.3f s\n", $1, ($2 - t) / 1e9 }' "$TMP/poll" >&2
        t_all=$(awk '{ if ($2 > m) m = $2 } END { print m }' "$TMP/poll")
        printf 'murmer,scale.converge.N%d,%s,s\n' "$N" "$(secs $((t_all - t_last)))"
    fi
    : > "$TMP/burst_cpu"
    for ((i = 1; i <= N; i++)); do cpu_ns "${PIDS[i]}" >> "$TMP/burst_cpu"; done
    note "N=$N: CPU from start to convergence: all nodes $(awk '{ s += $1 } END { printf "%.2f", s / 1e9 }' "$TMP/burst_cpu") s, per node median $(secs "$(med < "$TMP/burst_cpu")") max $(secs "$(maxv < "$TMP/burst_cpu")") seed $(secs "$(sed -n 1p "$TMP/burst_cpu")") s"
    local alive=0
    for ((i = 1; i <= N; i++)); do kill -0 "${PIDS[i]}" 2> /dev/null && alive=$((alive + 1)); done
    [ $alive = "$N" ] || note "N=$N: only $alive of $N node processes running"

    sleep "$SETTLE_S"
    : > "$TMP/rss"
    for ((i = 1; i <= N; i++)); do
        echo $(($(status_kb "${PIDS[i]}" RssAnon) * 1024)) >> "$TMP/rss"
    done
    note "N=$N: RssAnon median $(med < "$TMP/rss") max $(maxv < "$TMP/rss") seed $(sed -n 1p "$TMP/rss") B"
    printf 'murmer,scale.rss_anon.N%d,%.0f,bytes\n' "$N" "$(med < "$TMP/rss")"
    scrape "$N" "$TMP/counters" > "$TMP/conns"
    note "N=$N: counters after settling:"; cat "$TMP/counters" >&2
    note "N=$N: QUIC connections up median $(grep -v - "$TMP/conns" | med) max $(grep -v - "$TMP/conns" | maxv) seed $(sed -n 1p "$TMP/conns") ($(grep -c - "$TMP/conns") unanswered)"
    printf 'murmer,scale.conns.N%d,%s,count\n' "$N" "$(grep -v - "$TMP/conns" | med)"

    declare -a c0=()
    for ((i = 1; i <= N; i++)); do c0[i]=$(cpu_ns "${PIDS[i]}"); done
    local t0 t1
    t0=$(now_ns)
    sleep "$IDLE_S"
    t1=$(now_ns)
    : > "$TMP/cpu"
    for ((i = 1; i <= N; i++)); do
        awk -v d="$(($(cpu_ns "${PIDS[i]}") - c0[i]))" -v t="$((t1 - t0))" \
            'BEGIN { printf "%.4f\n", d / t * 100 }' >> "$TMP/cpu"
    done
    note "N=$N: idle CPU % median $(med < "$TMP/cpu") max $(maxv < "$TMP/cpu") seed $(sed -n 1p "$TMP/cpu") over $(secs $((t1 - t0))) s"
    printf 'murmer,scale.idle_cpu.N%d,%.4f,%%\n' "$N" "$(med < "$TMP/cpu")"
    scrape "$N" "$TMP/counters" > "$TMP/conns"
    note "N=$N: after the idle window, connections median $(grep -v - "$TMP/conns" | med) max $(grep -v - "$TMP/conns" | maxv) seed $(sed -n 1p "$TMP/conns")"
    printf 'murmer,scale.conns_idle.N%d,%s,count\n' "$N" "$(grep -v - "$TMP/conns" | med)"

    local tk
    tk=$(now_ns)
    kill -9 "${PIDS[victim]}"
    { wait "${PIDS[victim]}"; } 2> /dev/null
    if "$POLL" "$KEY" 60000 "$POLL_MS" state "n$victim" failed "$(addr 1)" > "$TMP/poll" 2> "$TMP/poll.err"; then
        printf 'murmer,scale.detect.N%d,%s,s\n' "$N" \
            "$(secs $(($(awk '{ print $2 }' "$TMP/poll") - tk)))"
    else
        note "N=$N: n1 did not list n$victim failed within 60 s"
    fi
    bench_kill_pids 2> /dev/null
    [ "${SCALE_KEEP:-0}" = 1 ] || rm -rf "$D"
}

fail=0
for n in $NODES; do
    case $n in '' | *[!0-9]*) note "SCALE_NODES: '$n' is not a count"; exit 2 ;; esac
    [ "$n" -ge 3 ] || { note "SCALE_NODES: $n < 3"; exit 2; }
    one_n "$n" || fail=1
done

if [ "${SCALE_SERF:-0}" = 1 ]; then
    SRC=${SERF_ANCHOR_SRC:-/work/shared/anchors/serf}
    [ -d "$SRC" ] || SRC=$ROOT/../shared/anchors/serf
    SN=${SCALE_SERF_N:-200}
    if command -v serf > /dev/null && command -v ts > /dev/null && [ -x "$SRC/converge.sh" ]; then
        cp -r "$SRC" "$TMP/serf"
        chmod +x "$TMP"/serf/*.sh
        note "serf N=$SN ($(serf version | head -1)): $(uptime)"
        # converge.sh enters a namespace of its own (SERF_BENCH_NETNS unset).
        line=$(env -u SERF_BENCH_NETNS timeout 300 "$TMP/serf/converge.sh" "$SN" burst 2> /dev/null | grep '^converge' | tail -1)
        note "serf: ${line:-no result}"
        v=$(sed -n 's/.* poll_ms=\([0-9]*\) .* ok=1.*/\1/p' <<< "$line")
        if [ -n "$v" ]; then
            awk -v n="$SN" -v v="$v" 'BEGIN { printf "serf,scale.converge.N%d,%.3f,s\n", n, v / 1000 }'
        else
            fail=1
        fi
    else
        note "SCALE_SERF=1 but serf, ts or $SRC/converge.sh is missing: no Serf figure"
    fi
fi
exit $fail
