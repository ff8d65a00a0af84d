#!/usr/bin/env bash
# bench/sim.sh — the simulation figures of issue 20: build/sim/murmer-sim
# (the real SWIM and oplog cores of N nodes in one process, docs/design.md,
# The simulator) runs sim/scenarios/{join,kill,loss1,loss5}.txt, seed 1,
# for every N of SIM_BENCH_NODES.
#
#   make bench W=sim             (BUILD=build)
#   SIM_BENCH_NODES="100 1000" BUILD=build bash bench/sim.sh
#
# Output (stdout), CSV `system,workload,value,unit`:
#   murmer,sim.join.N<n>.converge_rounds      rounds  protocol periods from
#        the last launch of the join burst until every live node lists every
#        live node alive with equal membership digests (checked every 250 ms)
#   murmer,sim.join.N<n>.converge_s           s       the same in seconds
#   murmer,sim.join.N<n>.converge_bound       rounds  3 x log2(N), the target
#   murmer,sim.join.N<n>.registry_converge_s  s       until registry hashes agree
#   murmer,sim.join.N<n>.bytes_per_node_s     B/s     sent per live node per
#        second 20-60 s, while the burst's gossip drains: SWIM datagrams with
#        the seal's overhead, push-pull and registry payloads with 60 B per
#        message
#   murmer,sim.idle.N<n>.bytes_per_node_s     B/s     the same 240-300 s
#   murmer,sim.{join,idle}.N<n>.bytes_ratio_N100  x   that / the same at N=100
#   murmer,sim.kill.N<n>.detect_p50_s|detect_max_s  s  kill of 5 % at 30 s:
#        until every live node lists the victim failed
#   murmer,sim.loss1|loss5.N<n>.fp_per_node_hour  live members declared failed
#        at 1 % / 5 % loss, per node-hour of live nodes
#   murmer,sim.idle.N<n>.converge_rounds|converge_s|converge_bound|
#        registry_converge_s  the same for the idle scenario's join burst
#   murmer,sim.<scenario>.N<n>.wall_s|maxrss_mb  the simulator's own costs
#   murmer,sim.<scenario>.N<n>.pair_memory  B  peak RSS / N^2
#   murmer,sim.pair_memory.N1000  B  the same for the calibration run before
#        a large N (30 s join at N=1000 with that N's labels)
# Progress and skipped sizes go to stderr.  At N=1000 the runs take 1-40
# minutes each (the 5 % loss run the longest).  Each node keeps every
# member, so memory grows as N^2: from SIM_BENCH_BIG (5000) nodes up, only
# SIM_BENCH_BIG_SCENARIOS (idle: a join burst, then 300 s; its join figures
# are reported too) run, with 2 labels on 1 % of the nodes (every node
# holds every label; SIM_BENCH_BIG_LABELS), and first a 30 s join at
# N=1000 with the same labels measures the memory a node pair costs; N is
# run only when what that predicts fits in 3/4 of MemAvailable (the
# machine is shared).
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
SIM=$BUILD/sim/murmer-sim
NODES=${SIM_BENCH_NODES:-100 1000 10000}
SCEN=${SIM_BENCH_SCENARIOS:-join idle kill loss1 loss5}
BIG=${SIM_BENCH_BIG:-5000}
BIG_SCEN=${SIM_BENCH_BIG_SCENARIOS:-idle}
BIG_LABELS=${SIM_BENCH_BIG_LABELS:---labels 2 --labelled 1}
[ -x "$SIM" ] || { echo "bench sim: $SIM not built (make sim)" >&2; exit 1; }
note() { echo "bench sim: $*" >&2; }
get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

declare -A bytes100
for n in $NODES; do
    opts=""
    scen=$SCEN
    if [ "$n" -ge "$BIG" ]; then
        opts=$BIG_LABELS
        scen=$BIG_SCEN
        # What a node pair costs with these labels, measured at N=1000.
        cal=$(mktemp)
        printf 'latency 2ms 10ms\nat 0s start 0\nat 100ms start 1-100%% over 2s\nrun 30s\n' >"$cal"
        # shellcheck disable=SC2086
        c=$("$SIM" --seed 1 --nodes 1000 $opts "$cal")
        rm -f "$cal"
        pair_kb=$(awk -v r="$(get maxrss_mb "$c")" 'BEGIN { printf "%.3f", r * 1024 / 1e6 }')
        need=$(awk -v n="$n" -v k="$pair_kb" 'BEGIN { printf "%d", n * n * k / 1024 }')
        avail=$(awk '/^MemAvailable/ { printf "%d", $2 / 1024 }' /proc/meminfo)
        echo "murmer,sim.pair_memory.N1000,$(awk -v k="$pair_kb" 'BEGIN { printf "%.0f", k * 1024 }'),B"
        if [ "$need" -gt $((avail * 3 / 4)) ]; then
            note "N=$n skipped: needs about $need MB ($pair_kb KB per node pair at N=1000, $opts), MemAvailable $avail MB (3/4 of it may be used)"
            continue
        fi
        note "N=$n: about $need MB expected ($pair_kb KB per node pair at N=1000, $opts)"
    fi
    for sc in $scen; do
        note "N=$n $sc $opts"
        # shellcheck disable=SC2086
        if ! out=$("$SIM" --seed 1 --nodes "$n" $opts "sim/scenarios/$sc.txt"); then
            note "N=$n $sc FAILED: $out"
            continue
        fi
        note "  $out"
        p="murmer,sim.$sc.N$n"
        echo "$p.wall_s,$(get wall_s "$out"),s"
        rss=$(get maxrss_mb "$out")
        echo "$p.maxrss_mb,$rss,MB"
        echo "$p.pair_memory,$(awk -v r="$rss" -v n="$n" 'BEGIN { printf "%.0f", r * 1048576 / (n * n) }'),B"
        case $sc in
        idle)
            # Its join burst too.
            echo "$p.converge_rounds,$(get join_rounds "$out"),rounds"
            echo "$p.converge_s,$(get join_converge_s "$out"),s"
            echo "$p.converge_bound,$(awk -v n="$n" 'BEGIN { printf "%.1f", 3 * log(n) / log(2) }'),rounds"
            echo "$p.registry_converge_s,$(get registry_converge_s "$out"),s"
            b=$(get steady_bytes_per_node_s "$out")
            echo "$p.bytes_per_node_s,$b,B/s"
            [ "$n" = 100 ] && bytes100[idle]=$b
            if [ -n "${bytes100[idle]:-}" ]; then
                echo "$p.bytes_ratio_N100,$(awk -v a="$b" -v b="${bytes100[idle]}" 'BEGIN { printf "%.2f", a / b }'),x"
            fi
            ;;
        join)
            r=$(get join_rounds "$out")
            echo "$p.converge_rounds,$r,rounds"
            echo "$p.converge_s,$(get join_converge_s "$out"),s"
            echo "$p.converge_bound,$(awk -v n="$n" 'BEGIN { printf "%.1f", 3 * log(n) / log(2) }'),rounds"
            echo "$p.registry_converge_s,$(get registry_converge_s "$out"),s"
            b=$(get steady_bytes_per_node_s "$out")
            echo "$p.bytes_per_node_s,$b,B/s"
            [ "$n" = 100 ] && bytes100[join]=$b
            if [ -n "${bytes100[join]:-}" ]; then
                echo "$p.bytes_ratio_N100,$(awk -v a="$b" -v b="${bytes100[join]}" 'BEGIN { printf "%.2f", a / b }'),x"
            fi
            ;;
        kill)
            echo "$p.detect_p50_s,$(get detect_p50_s "$out"),s"
            echo "$p.detect_max_s,$(get detect_max_s "$out"),s"
            ;;
        loss1 | loss5)
            echo "$p.fp_per_node_hour,$(get fp_per_node_hour "$out"),1/node-h"
            echo "$p.bytes_per_node_s,$(get steady_bytes_per_node_s "$out"),B/s"
            ;;
        esac
    done
done
