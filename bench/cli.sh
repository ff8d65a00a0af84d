#!/usr/bin/env bash
# bench/cli.sh — wall time of the murmer CLI against a local 8-node cluster
# (issue 7), process start included, next to `serf members` against an
# 8-agent Serf cluster in the same run when `serf` is installed.
#
#   make bench W=cli          (BUILD=build; about 1-2 minutes)
#   BUILD=build bash bench/cli.sh
#
# Output (stdout), CSV `system,workload,value,unit` (ns):
#   murmer,cli.members.median   murmer --join n1 members --json
#   murmer,cli.send.median      murmer --join n1 send echo/n8 echo '"x"'
#                               (n1 relays to n8's echo actor: one remote hop)
#   serf,cli.members.median     serf members -rpc-addr=<s1>   (when serf exists)
#   murmer,cli.send-stdin.window64.throughput   msg/s of `send --stdin
#                               --window 64 counter/n8` (100 000 JSON Lines,
#                               relayed by n1; median of 3; target >= 20 000)
# plus .p99 lines.  Spreads go to stderr.
#
# Like ../shared/anchors/serf/cli.sh: hyperfine -N (no shell), 10 warmups,
# 100 runs per command.  The commands alternate: hyperfine runs them in
# ROUNDS (4) rounds of 25 runs each, all commands per round, and the medians
# are taken over the pooled 100 runs.  Failed runs (non-zero exit) are left
# out of the figures and counted on stderr.  Without hyperfine (apt-get installs it
# when possible) each run is timed with bash's $EPOCHREALTIME (no fork).
#
# Runs in a private network namespace (unshare -n, only lo up) when it can.
# Every process is tracked by PID and killed by PID on exit.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac

# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_netns CLI "$0" "$@"

M=$BUILD/murmer
N=8
RUNS=${CLI_RUNS:-100}
ROUNDS=${CLI_ROUNDS:-4}
note() { echo "cli: $*" >&2; }
[ -x "$M" ] || { note "$M not built"; exit 2; }
bench_clean_env

bench_tmp cli
cleanup() {
    bench_kill_pids
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- hyperfine ------------------------------------------------------------
if ! command -v hyperfine > /dev/null && [ "$(id -u)" = 0 ] &&
    command -v apt-get > /dev/null && [ "${CLI_NO_INSTALL:-0}" != 1 ]; then
    note "installing hyperfine (apt-get)"
    apt-get install -y hyperfine > "$TMP/apt.log" 2>&1 || note "apt-get install hyperfine failed; timing with \$EPOCHREALTIME"
fi

# ---- murmer: 8 nodes with the demo actors ------------------------------------
"$M" keygen "$KEY" > /dev/null 2>&1 || { note "murmer keygen failed"; exit 1; }
read -r -a P <<< "$(free_ports $N)"
SEED=127.0.0.1:${P[0]}
for ((i = 1; i <= N; i++)); do
    join=()
    [ "$i" -gt 1 ] && join=(--join "$SEED")
    mkdir -p "$TMP/n$i"
    "$M" start --name "n$i" --listen "127.0.0.1:${P[i - 1]}" "${join[@]}" \
        --cluster-key "$KEY" --data-dir "$TMP/n$i" --demo \
        > /dev/null 2> "$TMP/n$i.log" &
    PIDS+=($!)
    [ "$i" = 1 ] && { "$M" --join "$SEED" --cluster-key "$KEY" --timeout 10s members --wait 1 > /dev/null 2>&1 || { note "n1 did not come up"; exit 1; }; }
done
"$M" --join "$SEED" --cluster-key "$KEY" --timeout 30s members --wait $N > /dev/null ||
    { note "the murmer cluster did not reach $N alive"; exit 1; }
MEMBERS="$M --join $SEED --cluster-key $KEY members --json"
SEND="$M --join $SEED --cluster-key $KEY send echo/n$N echo '\"x\"'"
# The reply must be there before timing anything (echo/nN is registered
# everywhere once the registry has spread).
ok=0
for ((t = 0; t < 100; t++)); do
    out=$("$M" --join "$SEED" --cluster-key "$KEY" send "echo/n$N" echo '"x"' 2> /dev/null) &&
        [ "$out" = '"x"' ] && { ok=1; break; }
    sleep 0.1
done
[ $ok = 1 ] || { note "send echo/n$N never answered \"x\""; exit 1; }

# ---- serf: 8 agents ----------------------------------------------------------
SERF=""
if command -v serf > /dev/null; then
    read -r -a S <<< "$(free_ports $((2 * N)))"
    R1=127.0.0.1:${S[N]}
    for ((i = 1; i <= N; i++)); do
        join=()
        [ "$i" -gt 1 ] && join=(-join="127.0.0.1:${S[0]}")
        serf agent -node="s$i" -bind="127.0.0.1:${S[i - 1]}" \
            -rpc-addr="127.0.0.1:${S[N + i - 1]}" -log-level=warn "${join[@]}" \
            > "$TMP/s$i.log" 2>&1 &
        PIDS+=($!)
        dl=$((SECONDS + 20))
        until serf members -rpc-addr="127.0.0.1:${S[N + i - 1]}" > /dev/null 2>&1; do
            [ $SECONDS -lt $dl ] || { note "serf agent s$i did not come up"; break; }
            sleep 0.05
        done
    done
    dl=$((SECONDS + 30))
    while [ "$(serf members -rpc-addr="$R1" -status=alive 2> /dev/null | grep -c .)" -lt $N ]; do
        [ $SECONDS -lt $dl ] || break
        sleep 0.1
    done
    if [ "$(serf members -rpc-addr="$R1" -status=alive 2> /dev/null | grep -c .)" -ge $N ]; then
        SERF="serf members -rpc-addr=$R1"
        note "serf: $(serf version | head -1), $N agents"
    else
        note "the Serf cluster did not reach $N alive: no Serf figure in this run"
    fi
else
    note "serf not installed: no Serf figure in this run (bench/run.sh --install-anchors installs it)"
fi
sleep 2 # as the anchors' cli.sh: let both clusters settle

# ---- timing -----------------------------------------------------------------
names=(members send)
cmds=("$MEMBERS" "$SEND")
[ -n "$SERF" ] && { names+=(serf); cmds+=("$SERF"); }
per=$((RUNS / ROUNDS))
for n in "${names[@]}"; do : > "$TMP/t_$n"; : > "$TMP/f_$n"; done
if command -v hyperfine > /dev/null; then
    note "hyperfine -N, $ROUNDS rounds x $per runs of: ${names[*]}"
    for ((r = 1; r <= ROUNDS; r++)); do
        w=3
        [ $r = 1 ] && w=10
        hyperfine ${HF_EXTRA:-} -N -i --warmup $w --runs $per --export-json "$TMP/hf$r.json" \
            "${cmds[@]}" > "$TMP/hf.out" 2> "$TMP/hf.err" || { note "hyperfine failed:"; tail -n 5 "$TMP/hf.out" "$TMP/hf.err" >&2; exit 1; }
        for ((k = 0; k < ${#names[@]}; k++)); do
            # only the runs that succeeded; failures are counted apart
            jq -r ".results[$k] | [.times, .exit_codes] | transpose[] | \"\\(.[1]) \\(.[0])\"" "$TMP/hf$r.json" |
                awk -v t="$TMP/t_${names[k]}" -v f="$TMP/f_${names[k]}" \
                    '$1 == 0 { printf "%.0f\n", $2 * 1e9 >> t; next } { print $1 >> f }'
        done
    done
else
    note "no hyperfine: timing $RUNS alternating runs with \$EPOCHREALTIME"
    us() { echo "${1/./}"; }
    for ((r = 0; r < RUNS + 10; r++)); do
        for ((k = 0; k < ${#names[@]}; k++)); do
            read -r -a argv <<< "${cmds[k]//\'/}"
            a=$EPOCHREALTIME
            "${argv[@]}" > /dev/null 2>&1
            rc=$?
            b=$EPOCHREALTIME
            [ $r -ge 10 ] || continue
            if [ $rc = 0 ]; then
                echo $((($(us "$b") - $(us "$a")) * 1000)) >> "$TMP/t_${names[k]}"
            else
                echo $rc >> "$TMP/f_${names[k]}"
            fi
        done
    done
fi

# stats NAME SYSTEM WORKLOAD
emit() {
    sort -g "$TMP/t_$1" | awk -v s="$2" -v w="$3" '{ a[NR] = $1 } END {
        if (!NR) exit 1
        m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        p = a[int(NR * 0.99 + 0.999)]
        printf "%s,%s.median,%.0f,ns\n%s,%s.p99,%.0f,ns\n", s, w, m, s, w, p
        printf "cli: %s %s: %.2f ms [%.2f..%.2f] (n=%d)\n", s, w, m / 1e6, a[1] / 1e6, a[NR] / 1e6, NR > "/dev/stderr" }'
    [ -s "$TMP/f_$1" ] && note "$2 $3: $(grep -c . "$TMP/f_$1") failed runs left out (exit codes: $(sort "$TMP/f_$1" | uniq -c | awk '{ printf "%s x%s ", $2, $1 }'))"
    return 0
}
emit members murmer cli.members
emit send murmer cli.send
[ -n "$SERF" ] && emit serf serf cli.members

# ---- bulk: send --stdin, 100 000 increments relayed by n1 to counter/nN ------
BULK=${CLI_BULK:-100000}
seq "$BULK" | sed 's/.*/{"message":"increment","payload":1}/' > "$TMP/bulk.in"
: > "$TMP/bulk.rates"
for r in 1 2 3; do
    a=$EPOCHREALTIME
    "$M" --join "$SEED" --cluster-key "$KEY" --timeout 60s send --stdin \
        --window 64 "counter/n$N" < "$TMP/bulk.in" > "$TMP/bulk.out" 2> "$TMP/bulk.err"
    rc=$?
    b=$EPOCHREALTIME
    got=$(grep -c '"ok"' "$TMP/bulk.out")
    if [ $rc != 0 ] || [ "$got" != "$BULK" ]; then
        note "send --stdin run $r: exit $rc, $got of $BULK ok: $(head -c 200 "$TMP/bulk.err")"
        continue
    fi
    echo "$BULK ${a/./} ${b/./}" | awk '{ printf "%.0f\n", $1 / (($3 - $2) / 1e6) }' >> "$TMP/bulk.rates"
done
sort -g "$TMP/bulk.rates" | awk '{ a[NR] = $1 } END { if (NR) {
    printf "murmer,cli.send-stdin.window64.throughput,%.0f,msg/s\n", a[int((NR + 1) / 2)]
    printf "cli: send --stdin: %d msg/s median [%d..%d] (n=%d)\n", a[int((NR + 1) / 2)], a[1], a[NR], NR > "/dev/stderr" } }'
exit 0
