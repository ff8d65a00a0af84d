#!/usr/bin/env bash
# bench/swim-serf.sh — Serf's membership scenarios (make bench W=swim-serf),
# run through ../shared/anchors/serf's own scripts (serf2csv.sh, from a copy
# in /tmp; nothing is written into ../shared) under the CSV names that
# bench/swim.sh prints for murmer:
#   serf,swim.converge.N32.median|max   serf,swim.detect.N8.median|max
#   serf,swim.leave.N8.median|max       serf,swim.idle.vm_rss|cpu_pct|bytes_per_s
# Needs `serf` (Debian's package is HashiCorp Serf 0.9.4), moreutils (ts),
# jq, nftables, root: `bench/run.sh --install-anchors` installs them.  When
# serf is missing it says so on stderr and prints the RESULTS.md figures as
# `serf-anchor` lines instead (bench/serf-anchor.sh).
# Runs (each run is a fresh cluster, as in the anchors): SERF_CONVERGE_RUNS
# (25), SERF_DETECT_RUNS (20), SERF_LEAVE_RUNS (10); about 8-10 minutes.
set -u
cd "$(dirname "$0")/.." || exit 2
SRC=${SERF_ANCHOR_SRC:-/work/shared/anchors/serf}
[ -d "$SRC" ] || SRC=../shared/anchors/serf
missing=""
for c in serf ts jq nft unshare; do command -v "$c" > /dev/null || missing="$missing $c"; done
if [ -n "$missing" ] || [ ! -x "$SRC/serf2csv.sh" ]; then
    echo "swim-serf: cannot run Serf here (missing:${missing:- $SRC/serf2csv.sh}); printing the anchor figures from RESULTS.md instead (bench/run.sh --install-anchors installs serf)" >&2
    exec bash bench/serf-anchor.sh swim
fi
T=$(mktemp -d /tmp/murmer-serf.XXXXXX)
trap 'rm -rf "$T"' EXIT
cp -r "$SRC" "$T/serf"
chmod +x "$T"/serf/*.sh
echo "swim-serf: $(serf version | head -1), scripts from $SRC (copy in $T)" >&2
rc=0
"$T/serf/serf2csv.sh" converge 32 "${SERF_CONVERGE_RUNS:-25}" || rc=1
"$T/serf/serf2csv.sh" detect 8 "${SERF_DETECT_RUNS:-20}" || rc=1
"$T/serf/serf2csv.sh" leave 8 "${SERF_LEAVE_RUNS:-10}" || rc=1
"$T/serf/serf2csv.sh" idle 8 || rc=1
exit $rc
