#!/usr/bin/env bash
# bench/local.sh — `murmer members` over the node's local socket
# (DATA_DIR/murmer.sock, the front binary alone) against the same command
# over QUIC (--join: the front execs murmer-full) and murmer-full run
# directly (the remote path as it was before the front), next to
# `serf members` against a local Serf agent when `serf` is installed, all
# in the same run, against an 8-node cluster on loopback.
#
#   BUILD=build bash bench/local.sh
#
# Output (stdout), CSV `system,workload,value,unit` (medians, ns):
#   murmer,cli.members.local.median         murmer --data-dir n1 members
#   murmer,cli.members.remote.median        murmer --join n1 members
#   murmer,cli.members.remote-full.median   murmer-full --join n1 members
#   serf,cli.members.median                 serf members (when installed)
#   murmer,cli.start.true.median            /bin/true: the cost of any exec
#   murmer,cli.start.front.median           murmer members --help: the
#                                           front's start, no round trip
#   ratio,cli.members.local,X,x,serf|serf-anchor   local / Serf
#   ratio,cli.members.remote,X,x,remote-full       remote / remote-full
# Without serf the Serf figure is ../shared/anchors' (bench/serf-anchor.sh
# cli), said on stderr.  hyperfine -N, ROUNDS rounds of RUNS/ROUNDS runs of
# every command (they alternate), medians over the pooled runs.
set -u
cd "$(dirname "$0")/.." || exit 2
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$(pwd)/$BUILD ;; esac
M=$BUILD/murmer
N=${LOCAL_NODES:-8}
RUNS=${LOCAL_RUNS:-100}
ROUNDS=${LOCAL_ROUNDS:-4}
note() { echo "local: $*" >&2; }
[ -x "$M" ] && [ -x "$BUILD/murmer-full" ] || { note "$M or murmer-full not built"; exit 2; }
command -v hyperfine > /dev/null || { note "hyperfine is not installed"; exit 2; }
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_clean_env

bench_tmp local
cleanup() {
    bench_kill_pids
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$M" keygen "$KEY" > /dev/null || exit 1
read -r -a P <<< "$(free_ports "$N")"
SEED=127.0.0.1:${P[0]}
for ((i = 1; i <= N; i++)); do
    join=()
    [ "$i" -gt 1 ] && join=(--join "$SEED")
    "$M" start --name "n$i" --listen "127.0.0.1:${P[i - 1]}" "${join[@]}" \
        --cluster-key "$KEY" --data-dir "$TMP/n$i" --no-mdns > /dev/null 2> "$TMP/n$i.log" &
    PIDS+=($!)
done
for ((t = 0; t < 200; t++)); do [ -S "$TMP/n1/murmer.sock" ] && break; sleep 0.05; done
"$M" --data-dir "$TMP/n1" --timeout 30s members --wait "$N" > /dev/null ||
    { note "the cluster did not reach $N alive"; exit 1; }

names=(local remote remote-full true front)
cmds=("$M --data-dir $TMP/n1 members"
    "$M --join $SEED --cluster-key $KEY members"
    "$BUILD/murmer-full --join $SEED --cluster-key $KEY members"
    "/bin/true"
    "$M --data-dir $TMP/n1 members --help")
SERF=""
if command -v serf > /dev/null; then
    read -r -a S <<< "$(free_ports 2)"
    serf agent -node=s1 -bind="127.0.0.1:${S[0]}" -rpc-addr="127.0.0.1:${S[1]}" \
        -log-level=warn > "$TMP/s1.log" 2>&1 &
    PIDS+=($!)
    for ((t = 0; t < 200; t++)); do
        serf members -rpc-addr="127.0.0.1:${S[1]}" > /dev/null 2>&1 && { SERF=1; break; }
        sleep 0.05
    done
    [ -n "$SERF" ] && { names+=(serf); cmds+=("serf members -rpc-addr=127.0.0.1:${S[1]}"); }
fi
# Same bytes both ways, before timing anything.
[ "$("$M" --data-dir "$TMP/n1" members)" = "$("$M" --join "$SEED" --cluster-key "$KEY" members)" ] ||
    note "WARNING: local and remote output differ"

per=$((RUNS / ROUNDS))
for n in "${names[@]}"; do : > "$TMP/t_$n"; done
note "hyperfine -N, $ROUNDS rounds x $per runs of: ${names[*]}"
for ((r = 1; r <= ROUNDS; r++)); do
    hyperfine -N --warmup 5 --runs "$per" --export-json "$TMP/hf.json" "${cmds[@]}" \
        > /dev/null 2> "$TMP/hf.err" || { note "hyperfine failed: $(tail -3 "$TMP/hf.err")"; exit 1; }
    for ((k = 0; k < ${#names[@]}; k++)); do
        jq -r ".results[$k].times[]" "$TMP/hf.json" | awk '{ printf "%.0f\n", $1 * 1e9 }' >> "$TMP/t_${names[k]}"
    done
done
median() { sort -g "$TMP/t_$1" | awk '{ a[NR] = $1 } END { printf "%.0f\n", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
declare -A MED
for n in "${names[@]}"; do
    MED[$n]=$(median "$n")
    note "$n: $(awk -v m="${MED[$n]}" 'BEGIN { printf "%.3f ms", m / 1e6 }') (n=$(grep -c . "$TMP/t_$n"))"
done
echo "murmer,cli.members.local.median,${MED[local]},ns"
echo "murmer,cli.members.remote.median,${MED[remote]},ns"
echo "murmer,cli.members.remote-full.median,${MED[remote-full]},ns"
echo "murmer,cli.start.true.median,${MED[true]},ns"
echo "murmer,cli.start.front.median,${MED[front]},ns"
if [ -n "$SERF" ]; then
    echo "serf,cli.members.median,${MED[serf]},ns"
    serf_ns=${MED[serf]} anchor=serf
else
    serf_ns=$(bash bench/serf-anchor.sh cli 2> /dev/null | awk -F, '{ print $3 }')
    anchor=serf-anchor
    note "serf is not installed: the Serf figure is the anchor's ($serf_ns ns, not this run)"
fi
awk -v a="${MED[local]}" -v b="$serf_ns" -v n="$anchor" 'BEGIN { printf "ratio,cli.members.local,%.3f,x,%s\n", a / b, n }'
awk -v a="${MED[remote]}" -v b="${MED[remote-full]}" 'BEGIN { printf "ratio,cli.members.remote,%.3f,x,remote-full\n", a / b }'
exit 0
