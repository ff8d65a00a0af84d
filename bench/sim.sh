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
#   murmer,sim.<scenario>.N<n>.wall_s|maxrss_mb  the simulator's own costs
# Progress and skipped sizes go to stderr.  At N=1000 the runs take 1-40
# minutes each (the 5 % loss run the longest); N=10000 needs about 160 GB
# (1.6 KiB a node pair).  N is run only when the memory it needs (estimated
# from the figure per node pair measured at the largest N run so far) fits
# in 3/4 of MemAvailable (the machine is shared): each node keeps every
# member, so memory grows as N^2.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
SIM=$BUILD/sim/murmer-sim
NODES=${SIM_BENCH_NODES:-100 1000 10000}
SCEN=${SIM_BENCH_SCENARIOS:-join idle kill loss1 loss5}
[ -x "$SIM" ] || { echo "bench sim: $SIM not built (make sim)" >&2; exit 1; }
note() { echo "bench sim: $*" >&2; }
get() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

pair_kb=""   # KB of simulator memory per (node, member) pair, measured
declare -A bytes100
for n in $NODES; do
    if [ -n "$pair_kb" ]; then
        need=$(awk -v n="$n" -v k="$pair_kb" 'BEGIN { printf "%d", n * n * k / 1024 }')
        avail=$(awk '/^MemAvailable/ { printf "%d", $2 / 1024 }' /proc/meminfo)
        if [ "$need" -gt $((avail * 3 / 4)) ]; then
            note "N=$n skipped: needs about $need MB ($pair_kb KB per node pair, measured), MemAvailable $avail MB (3/4 of it may be used)"
            continue
        fi
    fi
    for sc in $SCEN; do
        note "N=$n $sc"
        if ! out=$("$SIM" --seed 1 --nodes "$n" "sim/scenarios/$sc.txt"); then
            note "N=$n $sc FAILED: $out"
            continue
        fi
        note "  $out"
        p="murmer,sim.$sc.N$n"
        echo "$p.wall_s,$(get wall_s "$out"),s"
        rss=$(get maxrss_mb "$out")
        echo "$p.maxrss_mb,$rss,MB"
        if [ "$n" -ge 100 ]; then
            pair_kb=$(awk -v r="$rss" -v n="$n" 'BEGIN { printf "%.3f", r * 1024 / (n * n) }')
        fi
        case $sc in
        idle)
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
