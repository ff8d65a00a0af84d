#!/usr/bin/env bash
# bench/serf-anchor.sh — HashiCorp Serf's figures from
# ../shared/anchors/RESULTS.md (Part 2, measured on this machine kind with
# ../shared/anchors/serf), as CSV lines labelled `serf-anchor`, for when no
# `serf` binary is installed to measure in the same run.
#
#   bash bench/serf-anchor.sh swim|cli|all
#
# These are NOT from this run: a note on stderr says so.
#   swim.converge.N32.*  A.2, burst joins, poll view (n=32 runs)
#   swim.detect.N8.*     A.3, kill -9, every survivor's `serf members` (n=9)
#   swim.leave.N8.*      A.3, `serf leave`, every survivor lists it left (n=9)
#   swim.idle.*          A.5, N=8: VmRSS 14 908 KiB, CPU 0.23 %, UDP 267 +
#                        TCP 12 B/s per agent (Serf has no RssAnon figure)
#   cli.members.median   A.4 (C, quiet): `serf members`, hyperfine -N, 3.95 ms
set -u
what=${1:-all}
swim() {
    cat <<'CSV'
serf-anchor,swim.converge.N32.median,628000000,ns
serf-anchor,swim.converge.N32.max,34880000000,ns
serf-anchor,swim.detect.N8.median,5807000000,ns
serf-anchor,swim.detect.N8.max,7728000000,ns
serf-anchor,swim.leave.N8.median,593000000,ns
serf-anchor,swim.leave.N8.max,708000000,ns
serf-anchor,swim.idle.vm_rss,15265792,bytes
serf-anchor,swim.idle.cpu_pct,0.23,%
serf-anchor,swim.idle.bytes_per_s,279,B/s
CSV
}
cli() {
    echo "serf-anchor,cli.members.median,3950000,ns"
}
case $what in
swim) swim ;;
cli) cli ;;
all) swim; cli ;;
*) echo "usage: serf-anchor.sh swim|cli|all" >&2; exit 2 ;;
esac
echo "serf-anchor: Serf's figures ($what) are copied from ../shared/anchors/RESULTS.md Part 2 (Serf 0.9.4, same machine kind), not measured in this run" >&2
