#!/usr/bin/env bash
# bench/observe.sh — the cost of being observed (issue 21): W1 and W5
# throughput with an interactive `murmer top` refreshing every second and
# `curl http://ADDR/metrics` every second against the measured node, next
# to the same runs with nobody watching, in the same run.
#
#   make bench W=observe       (BUILD=build; about 5 minutes)
#   BUILD=build bash bench/observe.sh
#
# Each run starts bench/w1 or bench/w5 with BENCH_OBSERVE=DIR (bench/bench.h):
# the measured node (W1's one node; W5's server, the callee) listens on
# 127.0.0.1, serves /metrics on 127.0.0.1:0 and publishes its addresses in
# DIR/addr, and the measured loop starts when DIR/go exists.  Three modes:
#   none      the node as observed runs have it (listener, /metrics), nobody
#             watching
#   observed  `murmer top --interval 1s` in a detached tmux (a real tty,
#             the live view, one client session kept open) and a curl loop
#             scraping /metrics every second, both answering before the
#             run starts
#   decoy     the same observers against another node, an idle one like
#             the measured (a w1 waiting for its go): what the observers'
#             own processes (top, tmux, curl) cost the machine, so that
#             observed/decoy is what answering them costs the node
#   plain     the benchmark as bench/run.sh runs it (no BENCH_OBSERVE): what
#             the listener and /metrics cost while nobody watches
# In both, DIR/go is made OBSERVE_SETTLE (2) seconds after DIR/addr
# appeared, so that the node's own start-up work is over alike.  Runs are
# interleaved: every round runs the three modes for W1 then W5, in an
# order that turns from round to round (none first, observed first, decoy
# first, plain first, ...), ROUNDS (5) rounds; each figure is the median over the rounds (every run
# on stderr), and each ratio is given twice: of the medians, and as the
# median of the rounds' own ratios (paired-median: each run against the
# none run of its round, which a slow phase of a shared machine moves
# alike).  W1: OBSERVE_W1_N (20 000 000) round trips, ~2.5 s; W5: the
# sequential run (`w5 seq`, OBSERVE_W5_N = 300 000 calls, ~2.5 s) pinned
# with taskset -c 0 like bench/run.sh's (the observers are not pinned).
# Observers work at a rate (one top refresh and one scrape a second), so
# a run of a few seconds sees its share of them.
#
# First, idle_cost (below): an idle node's CPU time per second unwatched
# and watched, the node's own cost of its observers without a workload's
# noise (a shared 2-CPU machine moves the throughputs by 5-20 % from run to
# run).
#
# Output (stdout), CSV `system,workload,value,unit`:
#   murmer,observe.idle-node.cpu.{none,observed},...,ms/s   CPU ms per s
#   murmer,observe.idle-node.cost,<observed - none>,ms/s
#   murmer,W1.observe.{none,observed,decoy,plain}.throughput,...,rt/s
#   murmer,W5.observe.{none,observed,decoy,plain}.throughput,...,calls/s
#   ratio,W1.observe.observed.throughput,<observed/none>,x,murmer W1.observe.none
#   ratio,W1.observe.{decoy,plain}.throughput,<.../none>,x,murmer W1.observe.none
#   ratio,W1.observe.{observed,decoy,plain}.paired-median,...   (see above)
#   ratio,W1.observe.observed-vs-decoy.{throughput,paired-median},...
#   (the same for W5); the target is observed/none >= 0.98.
# Every process is tracked by PID (tmux by its private socket) and ended on
# exit.  Needs tmux and curl.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
ROUNDS=${OBSERVE_ROUNDS:-5}
W1_N=${OBSERVE_W1_N:-20000000}
W5_N=${OBSERVE_W5_N:-300000}
SETTLE=${OBSERVE_SETTLE:-2}
IDLE_S=${OBSERVE_IDLE_S:-10}

note() { echo "observe: $*" >&2; }
for t in tmux curl; do
    command -v $t > /dev/null || { note "$t is not installed"; exit 2; }
done
for b in "$BUILD/murmer" "$BUILD/bench/w1" "$BUILD/bench/w5"; do
    [ -x "$b" ] || { note "$b not built (make all build/bench/w1 build/bench/w5)"; exit 2; }
done
PIN=""
command -v taskset > /dev/null && PIN="taskset -c 0"

TMP=$(mktemp -d /tmp/murmer-observe.XXXXXX)
BENCH_PID="" SCRAPE_PID="" TMUX_SOCK="" DECOY_PID=""
stop_observers() {
    if [ -n "$SCRAPE_PID" ]; then
        kill "$SCRAPE_PID" 2> /dev/null
        wait "$SCRAPE_PID" 2> /dev/null
        SCRAPE_PID=""
    fi
    if [ -n "$TMUX_SOCK" ]; then
        tmux -S "$TMUX_SOCK" kill-server 2> /dev/null
        TMUX_SOCK=""
    fi
    if [ -n "$DECOY_PID" ]; then
        kill "$DECOY_PID" 2> /dev/null
        wait "$DECOY_PID" 2> /dev/null
        DECOY_PID=""
    fi
}
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
    stop_observers
    [ -n "$BENCH_PID" ] && kill "$BENCH_PID" 2> /dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT

# wait_for SECONDS CMD...: polls CMD every 50 ms until it succeeds.
wait_for() {
    local end=$((SECONDS + $1)); shift
    until "$@"; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.05
    done
}

# start_observers DIR: top under tmux and the scrape loop, against the node
# of DIR/addr; returns once both have answered once.
start_observers() {
    local d=$1 addr maddr key
    read -r addr maddr key < "$d/addr"
    TMUX_SOCK=$d/tmux.sock
    tmux -S "$TMUX_SOCK" new-session -d -s top -x 160 -y 40 \
        "env -u TMUX $BUILD/murmer --join $addr --cluster-key $key top --interval 1s"
    (
        while :; do
            curl -s -m 2 -o /dev/null -w '%{http_code}\n' "http://$maddr/metrics" >> "$d/scrapes"
            sleep 1
        done
    ) &
    SCRAPE_PID=$!
    wait_for 10 grep -qs '^200$' "$d/scrapes" || { note "no scrape answered"; return 1; }
    wait_for 10 sh -c "tmux -S '$TMUX_SOCK' capture-pane -p -t top | grep -q 'murmer top'" ||
        { note "top did not draw"; tmux -S "$TMUX_SOCK" capture-pane -p -t top >&2; return 1; }
}

# one W MODE: one run of workload W (w1|w5) in MODE; appends its CSV line.
one() {
    local w=$1 mode=$2 d="$TMP/$1-$2-$RANDOM" cmd out
    mkdir -p "$d"
    # shellcheck disable=SC2206
    case $w in
    w1) cmd=("$BUILD/bench/w1" "$W1_N" 10000) ;;
    w5) cmd=($PIN "$BUILD/bench/w5" seq "$W5_N" 5000) ;;
    esac
    if [ "$mode" = plain ]; then
        timeout 120 "${cmd[@]}" > "$d/out" 2> "$d/err" &
    else
        BENCH_OBSERVE=$d timeout 120 "${cmd[@]}" > "$d/out" 2> "$d/err" &
    fi
    BENCH_PID=$!
    if [ "$mode" != plain ]; then
        if ! wait_for 30 test -s "$d/addr"; then
            note "$w $mode: no $d/addr"; sed 's/^/  /' "$d/err" >&2; return 1
        fi
        local t0=$EPOCHREALTIME
        if [ "$mode" = observed ] && ! start_observers "$d"; then
            stop_observers; return 1
        fi
        if [ "$mode" = decoy ]; then
            # An idle node like the measured one (a w1 that never gets its
            # go), watched in the measured one's place.
            mkdir -p "$d/decoy"
            BENCH_OBSERVE=$d/decoy timeout 120 "$BUILD/bench/w1" 1 0 > /dev/null 2>&1 &
            DECOY_PID=$!
            if ! wait_for 30 test -s "$d/decoy/addr" || ! start_observers "$d/decoy"; then
                note "$w decoy: the decoy node did not come up"; stop_observers; return 1
            fi
        fi
        # Both modes start SETTLE seconds after the node published its
        # addresses: its own start-up work is over alike.
        sleep "$(awk -v a="$t0" -v b="$EPOCHREALTIME" -v s="$SETTLE" \
            'BEGIN { r = a + s - b; printf "%.3f", (r > 0 ? r : 0) }')"
        touch "$d/go"
    fi
    wait "$BENCH_PID"
    local rc=$?
    BENCH_PID=""
    local scrapes=0 top_alive=-
    if [ "$mode" = observed ] || [ "$mode" = decoy ]; then
        local od=$d
        [ "$mode" = decoy ] && od=$d/decoy
        scrapes=$(grep -cs '^200$' "$od/scrapes")
        top_alive=no
        tmux -S "$TMUX_SOCK" capture-pane -p -t top 2> /dev/null | grep -q 'murmer top' && top_alive=yes
        stop_observers
    fi
    if [ $rc != 0 ]; then
        note "$w $mode FAILED (rc=$rc)"; sed 's/^/  /' "$d/err" >&2; return 1
    fi
    local wl unit
    case $w in
    w1) wl=W1.req-reply.throughput unit=rt/s ;;
    w5) wl=W5.remote.seq64B.throughput unit=calls/s ;;
    esac
    out=$(awk -F, -v wl="$wl" '$2 == wl { print $3 }' "$d/out")
    [ -n "$out" ] || { note "$w $mode: no $wl in output"; cat "$d/out" >&2; return 1; }
    note "$w $mode: $out $unit (scrapes answered: $scrapes, top still drawing: $top_alive)"
    echo "murmer,${w^^}.observe.$mode.throughput,$out,$unit,$r" >> "$TMP/runs"
    rm -rf "$d"
}

# idle_cost: the node's own work for its observers, without the noise of
# a workload: an idle node (a w1 waiting for its go) is measured for
# OBSERVE_IDLE_S (10) seconds unwatched, then as long with the observers;
# its CPU time (user + system, all its threads, /proc/PID/stat) per
# second of each.  The difference is what answering them costs the node:
# at most that share of one CPU is what a workload on it can lose.
idle_cost() {
    local d=$TMP/idle pid tck c0 c1 c2 c3 t0 t1 t2 t3
    mkdir -p "$d"
    BENCH_OBSERVE=$d timeout 120 "$BUILD/bench/w1" 1 0 > /dev/null 2>&1 &
    DECOY_PID=$!
    wait_for 30 test -s "$d/addr" || { note "idle node did not come up"; stop_observers; return 1; }
    pid=$(pgrep -P "$DECOY_PID")
    [ -n "$pid" ] || { note "idle node: no pid"; stop_observers; return 1; }
    tck=$(getconf CLK_TCK)
    cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
    sleep "$SETTLE"
    t0=$EPOCHREALTIME c0=$(cpu)
    sleep "$IDLE_S"
    t1=$EPOCHREALTIME c1=$(cpu)
    start_observers "$d" || { stop_observers; return 1; }
    t2=$EPOCHREALTIME c2=$(cpu)
    sleep "$IDLE_S"
    t3=$EPOCHREALTIME c3=$(cpu)
    local scrapes
    scrapes=$(grep -cs '^200$' "$d/scrapes")
    stop_observers
    awk -v c0="$c0" -v c1="$c1" -v c2="$c2" -v c3="$c3" -v t0="$t0" -v t1="$t1" \
        -v t2="$t2" -v t3="$t3" -v tck="$tck" -v sc="$scrapes" 'BEGIN {
        a = (c1 - c0) / tck / (t1 - t0) * 1000; b = (c3 - c2) / tck / (t3 - t2) * 1000
        printf "murmer,observe.idle-node.cpu.none,%.1f,ms/s\n", a
        printf "murmer,observe.idle-node.cpu.observed,%.1f,ms/s\n", b
        printf "murmer,observe.idle-node.cost,%.1f,ms/s\n", b - a
        printf "observe: idle node: %.1f ms/s of CPU unwatched, %.1f watched (%d scrapes answered)\n", a, b, sc > "/dev/stderr"
    }'
}

: > "$TMP/runs"
fail=0
idle_cost || fail=1
MODES=(none observed decoy plain)
for r in $(seq "$ROUNDS"); do
    for w in w1 w5; do
        # The order turns from round to round: none first, then observed
        # first, then plain first, ...
        for k in 0 1 2 3; do
            mode=${MODES[$(((k + r - 1) % 4))]}
            note "round $r/$ROUNDS: $w $mode"
            one "$w" "$mode" || fail=1
        done
    done
done

awk -F, '
    function median(arr, c,    i, j, t) {
        for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++)
            if (arr[j] < arr[i]) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
        return c % 2 ? arr[(c + 1) / 2] : (arr[c / 2] + arr[c / 2 + 1]) / 2
    }
    # pair W X B: X against B, of the medians and round by round (each
    # run against the B run of its own round; the median of those).
    function pair(w, x, b,    kx, kb, c, rr, line, p, name) {
        kx = "murmer," w ".observe." x ".throughput"
        kb = "murmer," w ".observe." b ".throughput"
        if (!(kx in med) || !(kb in med) || med[kb] == 0) return
        name = b == "none" ? x : x "-vs-" b
        printf "ratio,%s.observe.%s.throughput,%.3f,x,murmer %s.observe.%s\n",
            w, name, med[kx] / med[kb], w, b
        c = 0; line = ""
        for (rr in rounds)
            if (((kx, rr) in byround) && ((kb, rr) in byround) && byround[kb, rr] > 0) {
                p[++c] = byround[kx, rr] / byround[kb, rr]
                line = line sprintf(" %.3f", p[c])
            }
        if (c == 0) return
        printf "%s.observe.%s against %s: paired ratios%s\n", w, x, b, line > "/dev/stderr"
        printf "ratio,%s.observe.%s.paired-median,%.3f,x,murmer %s.observe.%s\n",
            w, name, median(p, c), w, b
    }
    { key = $1 "," $2; if (!(key in n)) { order[++m] = key; unit[key] = $4 }
      v[key, ++n[key]] = $3 + 0; byround[key, $5] = $3 + 0; rounds[$5] = 1 }
    END {
        for (o = 1; o <= m; o++) {
            key = order[o]; c = n[key]
            for (i = 1; i <= c; i++) a[i] = v[key, i]
            med[key] = median(a, c)
            printf "%s,%.0f,%s\n", key, med[key], unit[key]
            printf "%s: %d runs, min %.0f max %.0f\n", key, c, a[1], a[c] > "/dev/stderr"
        }
        split("W1 W5", ws, " ")
        for (k = 1; k <= 2; k++) {
            pair(ws[k], "observed", "none"); pair(ws[k], "decoy", "none")
            pair(ws[k], "plain", "none"); pair(ws[k], "observed", "decoy")
        }
    }' "$TMP/runs"
exit $fail
