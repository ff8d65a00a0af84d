#!/usr/bin/env bash
# bench/run.sh — runs murmer's benchmarks and, when the anchors are
# installed, the same workloads of the anchors (../shared/anchors/actors)
# in the same run, then prints ratio lines.
#
#   make bench [W="W1 W3"]            (BUILD=build by default)
#   bench/run.sh [--install-anchors]  BUILD=... W=... bench/run.sh
#
# Output (stdout), one CSV line per figure:
#   system,workload,value,unit          murmer,W1.req-reply.throughput,...
#   ratio,<workload>,<value>,x,<anchor> murmer / anchor, same workload
# Progress and notes go to stderr.
#
# W selects workloads: W1 W2 W3 W4 W5 (empty = W1-W4, the local ones).
# W1 and W2 run interleaved with their typed variants (murmer_typed.h:
# `w1 N WARM typed`, `w2 N SHARDS typed`), three times each, medians kept,
# and print typed/untyped ratio lines; W5 runs `w5 seqt` (the sequential
# run through a typed echo) interleaved with the untyped seq run.
# W5 (remote calls between two processes on loopback) runs bench/w5 (seq
# pinned with taskset -c 0, pipelined, connect, connect pinned) next to the
# UDP floor built from a copy of $ANCHORS_SRC/floor, pinned the same way,
# and the same floor through a libuv loop (bench/udploop, c-floor-uv), the
# sequential run (also with hot waits off: murmer-nohot), and the two
# floors interleaved run by run; each W5 figure
# is the median of three runs (min and max on stderr).
# mdns runs bench/mdns.sh (3 nodes in network namespaces; root).
# registry runs bench/registry (visibility N=3/8/16, catch-up).
# swim runs bench/swim.sh (membership, real processes; about 5 minutes),
# swim-serf runs Serf's scenarios through ../shared/anchors/serf
# (bench/swim-serf.sh; about 10 minutes), cli runs bench/cli.sh (CLI wall
# times, with `serf members` in the same run when serf is installed),
# sim runs bench/sim.sh (the deterministic simulator at N=100, 1000 and,
# when memory allows, 10000; the largest N takes many minutes),
# hostile runs bench/hostile.sh (a 3-node cluster against each hostile
# peer of tests/hostile/mm-hostile; about 5 minutes), observe runs
# bench/observe.sh (W1 and W5 with `murmer top` and a /metrics scrape every
# second against none, interleaved; about 3 minutes; needs tmux and curl).
# scale runs bench/scale.sh (SCALE_NODES="500" real `murmer start`
# processes, burst join, memory, connections, idle CPU, detection; about 4
# minutes at 500; SCALE_SERF=1 adds Serf at N=200 in the same run).
# When no Serf figure was measured in the run, swim and cli print Serf's
# figures from RESULTS.md as `serf-anchor` lines (bench/serf-anchor.sh) and
# their ratios are taken against those.
#
# Anchors: CAF is used when /usr/include/caf exists, Erlang when `erl` is on
# PATH.  They are built from a copy in /tmp (never in ../shared).  W1 is
# compared with CAF's one-thread `then` run (caf-t1), W2-W4 with Erlang.
# This script never installs anything unless given --install-anchors, which
# runs the anchors' install.sh (apt-get; root).
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
W=${W:-}
ANCHORS_SRC=${ANCHORS_SRC:-/work/shared/anchors/actors}
[ -d "$ANCHORS_SRC" ] || ANCHORS_SRC=../shared/anchors/actors

install_anchors=0
for a in "$@"; do
    case $a in
    --install-anchors) install_anchors=1 ;;
    -h | --help) sed -n '2,/^set -u$/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown option $a" >&2; exit 2 ;;
    esac
done

TMP=$(mktemp -d /tmp/murmer-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
OUT=$TMP/results.csv
: > "$OUT"

note() { echo "bench: $*" >&2; }

# run_once NAME CMD...: runs one benchmark process (bounded) into $TMP/out.
run_once() {
    local name=$1; shift
    note "$name: $*"
    if ! timeout "${RUN_TIMEOUT:-120}" "$@" > "$TMP/out" 2> "$TMP/err"; then
        note "$name FAILED (rc=$?)"
        sed 's/^/  /' "$TMP/err" >&2
        return 1
    fi
    sed 's/^/  /' "$TMP/err" >&2
}

# run NAME CMD...: runs one benchmark process, keeps its lines.
run() {
    run_once "$@" || return 1
    tee -a "$OUT" < "$TMP/out"
}

# run_median K NAME CMD...: runs CMD K times and keeps, for each workload
# it prints, the median of its K values (the anchors' RESULTS.md reports
# medians over runs the same way); every run's values go to stderr.
run_median() {
    local k=$1 name=$2; shift 2
    local runs=$TMP/runs
    : > "$runs"
    for i in $(seq "$k"); do
        run_once "$name, run $i/$k" "$@" || return 1
        cat "$TMP/out" >> "$runs"
    done
    medians "$runs"
}

# medians FILE: for each workload in FILE (CSV lines, several runs), the
# median of its values, kept; min and max to stderr.
medians() {
    awk -F, '
        NF == 4 { key = $1 "," $2; if (!(key in n)) { order[++m] = key; unit[key] = $4 }
                  v[key, ++n[key]] = $3 + 0 }
        END {
            for (o = 1; o <= m; o++) {
                key = order[o]; c = n[key]
                for (i = 1; i <= c; i++) a[i] = v[key, i]
                for (i = 1; i <= c; i++) for (j = i + 1; j <= c; j++)
                    if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                med = c % 2 ? a[(c + 1) / 2] : (a[c / 2] + a[c / 2 + 1]) / 2
                printf "%s,%.0f,%s\n", key, med, unit[key]
                printf "%s: %d runs, min %.0f max %.0f\n", key, c, a[1], a[c] > "/dev/stderr"
            }
        }' "$1" | tee -a "$OUT"
}

# w5_seq_interleaved BIN: the pinned sequential run and both UDP floors,
# interleaved (murmer, floor, floor through libuv; three times), so that
# a change of the VM's speed between runs moves all three alike and the
# ratios compare like with like.  Medians per workload as run_median.
w5_seq_interleaved() {
    local bin=$1 runs=$TMP/runs-w5 F=$TMP/floor pin=""
    command -v taskset > /dev/null && pin="taskset -c 0"
    [ -n "$pin" ] || note "taskset missing: W5 seq and the floors run unpinned"
    mkdir -p "$F"
    cp "$ANCHORS_SRC/floor/udp_pingpong.c" "$ANCHORS_SRC/floor/stats.h" "$F/" 2> /dev/null
    local have_floor=1
    if ! cc -O2 -o "$F/udp_pingpong" "$F/udp_pingpong.c" 2> "$TMP/floor-build.log"; then
        note "UDP floor build failed"; sed 's/^/  /' "$TMP/floor-build.log" >&2
        have_floor=0
    fi
    : > "$runs"
    for i in 1 2 3; do
        # shellcheck disable=SC2086
        run_once "murmer W5 seq ($pin), run $i/3" $pin "$bin" seq 100000 5000 || return 1
        cat "$TMP/out" >> "$runs"
        # The same through typed messages (a typed echo, the typed stub).
        # shellcheck disable=SC2086
        run_once "murmer W5 seq typed ($pin), run $i/3" $pin "$bin" seqt 100000 5000 &&
            cat "$TMP/out" >> "$runs"
        # The same with the transport's hot waits off (lib/transport/udp.c,
        # quic_hot_rounds): what they are worth, measured in the same run.
        # shellcheck disable=SC2086
        run_once "murmer W5 seq, hot waits off ($pin), run $i/3" env MURMER_HOT_WAIT_US=0 $pin "$bin" seq 100000 5000 &&
            sed -n 's/^murmer,/murmer-nohot,/p' "$TMP/out" >> "$runs"
        if [ $have_floor = 1 ]; then
            # shellcheck disable=SC2086
            run_once "c-floor UDP seq ($pin), run $i/3" $pin "$F/udp_pingpong" 200000 64 1 &&
                cat "$TMP/out" >> "$runs"
        fi
        # The same ping-pong through a libuv loop (uv_poll + recvmmsg), no
        # protocol work: the ceiling of any event-loop transport.
        # shellcheck disable=SC2086
        run_once "c-floor-uv UDP seq ($pin), run $i/3" $pin "$BUILD/bench/udploop" 200000 64 &&
            cat "$TMP/out" >> "$runs"
    done
    medians "$runs"
}

# typed_interleaved W BIN: W1 or W2 untyped and typed, alternating, three
# times; medians per workload as run_median.
typed_interleaved() {
    local w=$1 bin=$2 runs=$TMP/runs-typed typed_args
    case $w in
    W1) typed_args="1000000 10000 typed" ;;
    W2) typed_args="10000000 1 typed" ;;
    esac
    : > "$runs"
    for i in 1 2 3; do
        run_once "murmer $w, run $i/3" "$bin" || return 1
        cat "$TMP/out" >> "$runs"
        # shellcheck disable=SC2086
        run_once "murmer $w typed, run $i/3" "$bin" $typed_args || return 1
        cat "$TMP/out" >> "$runs"
    done
    medians "$runs"
}

[ -n "$W" ] || W="W1 W2 W3 W4"
sel=""
scripts=""
for w in $W; do
    case ${w^^} in
    W1 | W2 | W3 | W4 | W5) sel="$sel ${w^^}" ;;
    MDNS) scripts="$scripts mdns" ;; # bench/mdns.sh (namespaces; root)
    REGISTRY) sel="$sel REGISTRY" ;;
    SWIM) scripts="$scripts swim" ;;           # bench/swim.sh
    SWIM-SERF) scripts="$scripts swim-serf" ;; # bench/swim-serf.sh
    CLI) scripts="$scripts cli" ;;             # bench/cli.sh
    HOSTILE) scripts="$scripts hostile" ;;     # bench/hostile.sh
    OBSERVE) scripts="$scripts observe" ;;     # bench/observe.sh
    SIM) scripts="$scripts sim" ;;             # bench/sim.sh
    SCALE) scripts="$scripts scale" ;;         # bench/scale.sh
    W6)
        note "$w: not yet implemented (needs the network/cluster benches); skipped" ;;
    *) note "$w: unknown workload; skipped" ;;
    esac
done

# ---- murmer ------------------------------------------------------------
fail=0
for w in $sel; do
    bin=$BUILD/bench/${w,,}
    if [ ! -x "$bin" ]; then
        note "$bin not built (run make bench); skipped"
        continue
    fi
    if [ "$w" = W5 ]; then
        # Each W5 figure is the median of three runs: on a shared VM one
        # run can land in a slow phase (the pinned round trip is bimodal,
        # ~21 us or ~27 us, from one run to the next).
        # Sequential: both processes pinned to one CPU, like the floor below.
        # The floors run interleaved with it (w5_seq_interleaved).
        w5_seq_interleaved "$bin" || fail=1
        run_median 3 "murmer W5 pipelined" "$bin" pipe 500000 100 || fail=1
        run_median 3 "murmer W5 connect" "$bin" connect 50 || fail=1
        # The same, both processes on one CPU like the sequential run: no
        # wake-up of an idle CPU (an IPI to another vCPU, 0.1-0.15 ms per
        # handshake flight on this VM) in the set-up time.
        if command -v taskset > /dev/null; then
            run_median 3 "murmer W5 connect (taskset -c 0)" taskset -c 0 "$bin" connect 50 pinned || fail=1
        fi
        continue
    fi
    if [ "$w" = W1 ] || [ "$w" = W2 ]; then
        typed_interleaved "$w" "$bin" || fail=1
        continue
    fi
    run "murmer $w" "$bin" || fail=1
done
if [ $install_anchors = 1 ] && [[ " $scripts " == *" swim-serf "* || " $scripts " == *" cli "* ]]; then
    note "installing Serf's bench tools (apt-get install serf hyperfine moreutils jq nftables)"
    apt-get install -y serf hyperfine moreutils jq nftables > "$TMP/apt.log" 2>&1 ||
        { note "apt-get failed"; tail -n 5 "$TMP/apt.log" >&2; }
fi
for w in $scripts; do
    case $w in
    swim) RUN_TIMEOUT=420 run "murmer swim" env BUILD="$BUILD" bash bench/swim.sh || fail=1 ;;
    swim-serf) RUN_TIMEOUT=1500 run "serf swim" bash bench/swim-serf.sh || fail=1 ;;
    cli) RUN_TIMEOUT=300 run "murmer cli" env BUILD="$BUILD" bash bench/cli.sh || fail=1 ;;
    hostile) RUN_TIMEOUT=600 run "murmer hostile" env BUILD="$BUILD" bash bench/hostile.sh || fail=1 ;;
    observe) RUN_TIMEOUT=900 run "murmer observe" env BUILD="$BUILD" bash bench/observe.sh || fail=1 ;;
    sim) RUN_TIMEOUT=${SIM_TIMEOUT:-14400} run "murmer sim" env BUILD="$BUILD" bash bench/sim.sh || fail=1 ;;
    scale) RUN_TIMEOUT=${SCALE_TIMEOUT:-1800} run "murmer scale" env BUILD="$BUILD" bash bench/scale.sh || fail=1 ;;
    *) run "murmer $w" env BUILD="$BUILD" bash "bench/$w.sh" || fail=1 ;;
    esac
done
# No Serf figure measured in this run: Serf's from RESULTS.md, labelled.
for w in swim cli; do
    [[ " $scripts " == *" $w "* ]] || continue
    grep -q "^serf,$w\." "$OUT" || grep -q "^serf-anchor,$w\." "$OUT" ||
        run "serf-anchor $w" bash bench/serf-anchor.sh "$w"
done

# ---- anchors -------------------------------------------------------------
have_caf=0; have_erl=0
if [ $install_anchors = 1 ]; then
    cp -r "$ANCHORS_SRC" "$TMP/anchors-install"
    bash "$TMP/anchors-install/install.sh" >&2 || note "install.sh failed"
fi
[ -d /usr/include/caf ] && command -v g++ > /dev/null && have_caf=1
command -v erl > /dev/null && command -v erlc > /dev/null && have_erl=1
[ $have_caf = 1 ] || note "CAF not installed (/usr/include/caf): no W1 ratio (bench/run.sh --install-anchors)"
[ $have_erl = 1 ] || note "Erlang not installed (erl): no W2-W5 ratios (bench/run.sh --install-anchors)"

if [ $have_caf = 1 ] || [ $have_erl = 1 ]; then
    A=$TMP/anchors
    cp -r "$ANCHORS_SRC" "$A"
fi
if [ $have_caf = 1 ] && [[ " $sel " == *" W1 "* ]]; then
    note "building CAF anchor"
    if g++ -O2 -std=c++17 -o "$A/caf/caf_bench" "$A/caf/caf_bench.cpp" \
        -lcaf_io -lcaf_core -lpthread 2> "$TMP/caf-build.log"; then
        run "caf W1" "$A/caf/caf_bench" --workload=w1 --n=1000000 \
            --scheduler.max-threads=1 --tag=-t1
    else
        note "CAF anchor build failed"; sed 's/^/  /' "$TMP/caf-build.log" >&2
    fi
fi
# erl_w5: Erlang's W5 pipelined figure, two nodes on 127.0.0.1 with a
# private cookie and no epmd of their own beyond this run (as the anchors'
# run-all.sh does it).
erl_w5() {
    local flags="-noshell -pa $A/erlang/ebin -setcookie murmerbench -kernel inet_dist_use_interface {127,0,0,1}"
    local id=w5$$
    # shellcheck disable=SC2086
    timeout 60 erl $flags -name "b$id@127.0.0.1" -run remote_bench server > /dev/null 2>&1 &
    local sp=$!
    # shellcheck disable=SC2086
    run "erlang W5 pipelined" timeout 45 erl $flags -name "a$id@127.0.0.1" \
        -run remote_bench client "b$id@127.0.0.1" pipe 500000 100
    kill "$sp" 2> /dev/null
    wait "$sp" 2> /dev/null
}
if [ $have_erl = 1 ] && [[ "$sel" == *W[2345]* ]]; then
    mkdir -p "$A/erlang/ebin"
    if erlc -o "$A/erlang/ebin" "$A"/erlang/*.erl 2> "$TMP/erl-build.log"; then
        ERL=(erl -noshell -pa "$A/erlang/ebin" -run actors_bench main)
        for w in $sel; do
            case $w in
            W2) run "erlang W2" "${ERL[@]}" w2 10000000 ;;
            W3) run "erlang W3" "${ERL[@]}" w3 1000 10000000 ;;
            W4) run "erlang W4" "${ERL[@]}" w4 1000000
                run "erlang W4 idle" "${ERL[@]}" w4mem 100000 ;;
            W5) erl_w5 ;;
            esac
        done
    else
        note "Erlang anchor build failed"; sed 's/^/  /' "$TMP/erl-build.log" >&2
    fi
fi

# ---- ratios: murmer / anchor for the same workload -------------------------
# ratio MURMER_WORKLOAD ANCHOR_SYSTEM ANCHOR_WORKLOAD
ratio() {
    awk -F, -v mw="$1" -v as="$2" -v aw="$3" '
        $1 == "murmer" && $2 == mw { m = $3 }
        $1 == as && $2 == aw { a = $3 }
        END { if (m != "" && a != "" && a + 0 != 0)
                  printf "ratio,%s,%.2f,x,%s\n", mw, m / a, as }' "$OUT"
}
ratio W1.req-reply.throughput caf-t1 W1.req-reply.then.throughput
ratio W1.req-reply.median caf-t1 W1.req-reply.then.median
ratio W2.one-way.throughput erlang W2.one-way.throughput
ratio W2.one-way.peak-rss erlang W2.one-way.peak-rss
ratio W3.ring1000.throughput erlang W3.ring1000.throughput
ratio W4.spawn-terminate.throughput erlang W4.spawn-terminate.throughput
ratio W4.rss-per-idle-actor erlang W4.rss-per-idle-actor
# Typed messages against untyped, same run (murmer / murmer).
ratio_self() {
    awk -F, -v a="$1" -v b="$2" '
        $1 == "murmer" && $2 == a { x = $3 }
        $1 == "murmer" && $2 == b { y = $3 }
        END { if (x != "" && y != "" && y + 0 != 0)
                  printf "ratio,%s,%.3f,x,murmer %s\n", a, x / y, b }' "$OUT"
}
ratio_self W1.req-reply-typed.throughput W1.req-reply.throughput
ratio_self W1.req-reply-typed.median W1.req-reply.median
ratio_self W2.one-way-typed.throughput W2.one-way.throughput
ratio_self W5.remote.seq64B-typed.median W5.remote.seq64B.median
ratio_self W5.remote.seq64B-typed.throughput W5.remote.seq64B.throughput
ratio W5.remote.seq64B.median c-floor W6.udp.seq.median
ratio W5.remote.seq64B.throughput c-floor-uv W6.udp-uv.seq.throughput
ratio W5.remote.seq64B.throughput murmer-nohot W5.remote.seq64B.throughput
ratio W5.remote.pipelined100.64B.throughput erlang W5.remote.pipelined100.64B.throughput
# swim and cli: against Serf measured in this run, else against RESULTS.md.
for wl in swim.converge.N32.median swim.converge.N32.max swim.detect.N8.median \
    swim.leave.N8.median swim.idle.vm_rss swim.idle.cpu_pct \
    swim.idle.bytes_per_s cli.members.median; do
    if grep -q "^serf,$wl," "$OUT"; then
        ratio "$wl" serf "$wl"
    else
        ratio "$wl" serf-anchor "$wl"
    fi
done
if [[ " $sel " == *" W5 "* ]] && [ $have_erl = 0 ]; then
    note "W5: no Erlang on this machine: no pipelined ratio (RESULTS.md: erlang W5 pipelined ~97 k msg/s; target >= 3x)"
fi
exit $fail
