#!/usr/bin/env bash
# bench/hostile.sh — what a hostile or merely slow peer does to a node.
#
#   make bench W=hostile          (BUILD=build; about 5 minutes)
#   BUILD=build bash bench/hostile.sh [ATTACK...]
#
# For each attack: a fresh 3-node cluster of `murmer start` on loopback
# (ports from the OS), n1 the target with the demo actors and
# build/plugins/slow.so (slow/n1 sleeps 1 s per "work" message, hold/n1
# defers every "hold" call, and 2000 labels "fill/<i>-x…" of ~100 bytes
# make LOOKUP/WATCH answers of the prefix large), then the attack by
# build/hostile/mm-hostile against n1, while
#   - n1's RssAnon is sampled every 100 ms (idle before, peak during the
#     attack and the 5 s after, and 5 s after it ended),
#   - a legitimate `murmer members` and `murmer send echo/n1 echo '"x"'`
#     run in turn, in a loop, through n1 (wall time of each, process start
#     included; a failure counts with the time it took, bounded by 6 s),
#   - `members --json` on n2 and n3 is polled for n1's state.
#
# Attacks (the names of issue 18's table; all bounded in count and time):
#   lookups-noread   200 pipelined LOOKUPs of prefix fill/, then nothing read
#   watches-noread   100 WATCHes of prefix fill/, then nothing read
#   lookups-read     600 pipelined LOOKUPs of prefix fill/, answers read
#   handshakes       4000 handshakes with a wrong key from 127.0.0.2-.17
#   preauth          100 connections without the key, each with a second
#                    stream before auth carrying a 4 MiB frame that never ends
#   stderr-pipe      n1's stderr is a pipe nobody reads; 1500 bad handshakes
#   invokes          150 x 4 MiB INVOKEs to slow/n1
#   waiters          50 000 waiting LOOKUPs (wait_ms 24 h), 3 s, then disconnect
#   deadline         10 000 INVOKEs, deadline 2^32-1 ms, to hold/n1; 3 s; leave
#   partial-streams  127 streams that each end inside a frame
#   unknown-frames   10 streams that each carry a frame of unknown type
#   gossip-flood     20 000 sealed-gossip lookalikes with the real key id
#   shutdown         28 one-second messages queued, then SIGTERM: exit_ms
#   catchup          n1 holds 20 000 labels of ~250 bytes; n2 and n3 join:
#                    ms until n2 resolves the first, middle and last one
#
# Output (stdout), CSV `murmer,hostile.<attack>.<figure>,<value>,<unit>`:
#   rss_idle, rss_peak, rss_after5s (MiB), rss_peak_over_idle,
#   rss_after_over_idle (MiB), members_p50, members_p99, send_p50,
#   send_p99 (ms), members_fail, send_fail (runs that failed), suspected
#   (1 if n2 or n3 ever saw n1 other than alive), alive (1 if n1 still
#   runs at the end), and peer_<x> (count): what the hostile peer sent and
#   got back (its "figures:" line: sent, answered, overloaded, errors,
#   reset_by_node, fresh_call_ok, refused, ...).  shutdown and catchup
#   print their own figures (above).  The hostile peer's own line and notes
#   go to stderr.
#
# Every process is tracked by PID and killed by PID on exit.
set -u
cd "$(dirname "$0")/.." || exit 2
ROOT=$(pwd)
BUILD=${BUILD:-build}
case $BUILD in /*) ;; *) BUILD=$ROOT/$BUILD ;; esac
M=$BUILD/murmer
H=$BUILD/hostile/mm-hostile
SLOW=$BUILD/plugins/slow.so
note() { echo "hostile: $*" >&2; }
for f in "$M" "$H" "$SLOW"; do
    [ -e "$f" ] || { note "$f not built (make bench, or make all hostile)"; exit 2; }
done
# shellcheck source=bench/lib.sh
. bench/lib.sh
bench_clean_env

ALL="lookups-noread watches-noread lookups-read handshakes preauth stderr-pipe invokes
     waiters deadline partial-streams unknown-frames gossip-flood shutdown
     catchup"
ATTACKS=${*:-${HOSTILE_ATTACKS:-$ALL}}

bench_tmp hostile
WRONG=$TMP/wrong.key
cleanup() {
    bench_kill_pids
    exec 7>&- 2> /dev/null
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$M" keygen "$KEY" > /dev/null 2>&1 || { note "murmer keygen failed"; exit 1; }
"$M" keygen "$WRONG" > /dev/null 2>&1 || { note "murmer keygen failed"; exit 1; }

mm() { timeout 6 "$M" --timeout 5s --cluster-key "$KEY" "$@"; }

rss_kib() { awk '/^RssAnon:/ { print $2 }' "/proc/$1/status" 2> /dev/null; }

# state_of SEED NAME: NAME's state as SEED lists it ("" if unreachable).
state_of() {
    mm --join "$1" members --json 2> /dev/null |
        jq -r --arg n "$2" '.members[] | select(.name == $n) | .state' 2> /dev/null
}

alive_count() {
    mm --join "$1" members --json 2> /dev/null |
        jq '[.members[] | select(.state == "alive")] | length' 2> /dev/null || echo 0
}

# wait_for CMD SECONDS
wait_for() {
    local deadline=$((SECONDS + $2))
    until eval "$1" > /dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# start_cluster DIR [pipe] [LABELS PAD]: n1..n3 (n1 the target, with LABELS
# fill/ labels of PAD bytes of padding; default 2000 and 100); sets A1 A2
# A3, P1 P2 P3, and T_JOIN (when n2 and n3 were started).
start_cluster() {
    local d=$1 pipe=${2:-} labels=${3:-2000} pad=${4:-100} ports
    read -r -a ports <<< "$(free_ports 3)"
    A1=127.0.0.1:${ports[0]} A2=127.0.0.1:${ports[1]} A3=127.0.0.1:${ports[2]}
    local n1args=(start --name n1 --listen "$A1" --cluster-key "$KEY"
        --data-dir "$d/data-n1" --demo --shards 3 --plugin "$SLOW"
        --actor "slowboot=slow:{\"ms\":1000,\"labels\":$labels,\"pad\":$pad}")
    if [ -n "$pipe" ]; then
        # stderr into a pipe that this shell holds open and never reads.
        mkfifo "$d/n1.fifo"
        exec 7<> "$d/n1.fifo"
        "$M" "${n1args[@]}" > "$d/n1.out" 2> "$d/n1.fifo" &
    else
        "$M" "${n1args[@]}" > "$d/n1.out" 2> "$d/n1.log" &
    fi
    P1=$!
    PIDS+=("$P1")
    wait_for 'mm --join "$A1" lookup slow/n1' 20 || note "n1 does not answer"
    T_JOIN=$EPOCHREALTIME
    "$M" start --name n2 --listen "$A2" --join "$A1" --cluster-key "$KEY" \
        --data-dir "$d/data-n2" --demo > "$d/n2.out" 2> "$d/n2.log" &
    P2=$!
    PIDS+=("$P2")
    "$M" start --name n3 --listen "$A3" --join "$A1" --cluster-key "$KEY" \
        --data-dir "$d/data-n3" --demo > "$d/n3.out" 2> "$d/n3.log" &
    P3=$!
    PIDS+=("$P3")
    wait_for '[ "$(alive_count "$A1")" = 3 ] && [ "$(alive_count "$A2")" = 3 ] &&
              [ "$(alive_count "$A3")" = 3 ]' 30 || { note "cluster did not converge"; return 1; }
    # The fill/ labels replicated: the listing is full everywhere.
    [ "$labels" = 2000 ] || return 0
    wait_for '[ "$(mm --join "$A2" lookup --prefix fill/ 2> /dev/null | wc -l)" -gt 2000 ]' 20 ||
        note "fill/ labels not replicated to n2 in 20 s"
}

stop_pids() {
    local p
    for p in "$@"; do kill -9 "$p" 2> /dev/null; done
    for p in "$@"; do wait "$p" 2> /dev/null; done
    return 0
}

# Background helpers; each writes to a file and runs until killed.
rss_sampler() { # PID FILE: every 100 ms "epoch_s kib"
    while :; do
        echo "$EPOCHREALTIME $(rss_kib "$1")" >> "$2"
        sleep 0.1
    done
}
prober() { # FILE STOP: "what ms rc" per run, members and send in turn,
    # until the file STOP exists (a run under way is finished and counted)
    local t0 t1 rc
    while [ ! -e "$2" ]; do
        t0=$EPOCHREALTIME
        mm --join "$A1" members > /dev/null 2>&1
        rc=$?
        t1=$EPOCHREALTIME
        echo "members $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }') $rc" >> "$1"
        t0=$EPOCHREALTIME
        mm --join "$A1" send echo/n1 echo '"x"' > /dev/null 2>&1
        rc=$?
        t1=$EPOCHREALTIME
        echo "send $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", (b - a) * 1000 }') $rc" >> "$1"
    done
}
suspect_poller() { # FILE: n1's state as n2 and n3 see it, every 250 ms
    while :; do
        echo "n2 $(state_of "$A2" n1)" >> "$1"
        echo "n3 $(state_of "$A3" n1)" >> "$1"
        sleep 0.25
    done
}

csv() { echo "murmer,hostile.$1.$2,$3,$4"; }

# pct FILE WHAT P: the P-th percentile (nearest rank) of WHAT's times.
pct() {
    awk -v w="$2" '$1 == w { print $2 }' "$1" | sort -n |
        awk -v p="$3" '{ v[NR] = $1 } END {
            if (NR == 0) { print "nan"; exit }
            r = int(p / 100 * NR + 0.999999); if (r < 1) r = 1; if (r > NR) r = NR
            print v[r] }'
}

attack_cmd() { # ATTACK: the hostile peer's command line
    local common=(--seed "$A1" --key "$KEY")
    case $1 in
    lookups-noread) echo "$H lookups ${common[*]} --n 200 --no-read --hold 8 --time 20" ;;
    watches-noread) echo "$H watches ${common[*]} --n 100 --no-read --hold 8 --time 20" ;;
    lookups-read) echo "$H lookups ${common[*]} --n 600 --time 15" ;;
    handshakes) echo "$H handshakes --seed $A1 --key $WRONG --n 4000 --addrs 16 --concurrency 64 --time 30" ;;
    preauth) echo "$H preauth --seed $A1 --key $WRONG --n 100 --size 4MiB --time 10" ;;
    stderr-pipe) echo "$H handshakes --seed $A1 --key $WRONG --n 1500 --addrs 8 --concurrency 32 --time 20" ;;
    invokes) echo "$H invokes ${common[*]} --n 150 --size 4MiB --target slow/n1 --time 20 --hold 3" ;;
    waiters) echo "$H waiters ${common[*]} --n 50000 --time 20 --hold 3" ;;
    deadline) echo "$H deadline ${common[*]} --n 10000 --target hold/n1 --time 20 --hold 3" ;;
    partial-streams) echo "$H partial-streams ${common[*]} --n 127 --hold 5 --time 20" ;;
    unknown-frames) echo "$H unknown-frames ${common[*]} --n 10 --hold 3 --time 10" ;;
    gossip-flood) echo "$H gossip-flood ${common[*]} --n 20000 --rate 4000 --time 20" ;;
    *) return 1 ;;
    esac
}

run_attack() {
    local a=$1 d=$TMP/$1 cmd
    mkdir -p "$d"
    note "---- $a"
    local pipe=""
    [ "$a" = stderr-pipe ] && pipe=1
    if ! start_cluster "$d" $pipe; then
        stop_pids "$P1" "$P2" "$P3"
        return 1
    fi
    cmd=$(attack_cmd "$a") || { note "$a: unknown attack"; return 1; }
    sleep 1
    local idle
    idle=$(rss_kib "$P1")
    rss_sampler "$P1" "$d/rss" &
    local ps=$!
    suspect_poller "$d/states" &
    local pp=$!
    prober "$d/probes" "$d/probes.stop" &
    local pr=$!
    PIDS+=("$ps" "$pp" "$pr")
    note "$a: $cmd"
    local t_start=$SECONDS
    # shellcheck disable=SC2086
    timeout 90 $cmd > "$d/attack.out" 2> "$d/attack.err"
    local arc=$?
    grep -v '^figures:' "$d/attack.out" | cat - "$d/attack.err" | sed 's/^/  /' >&2
    [ $arc = 0 ] || note "$a: the hostile peer exited with $arc"
    # Probes cover at least 3 s, and the run under way at the end.
    while [ $((SECONDS - t_start)) -lt 3 ]; do sleep 0.2; done
    : > "$d/probes.stop"
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pr" 2> /dev/null || break
        sleep 0.1
    done
    stop_pids "$pr"
    sleep 5
    local after
    after=$(rss_kib "$P1")
    stop_pids "$ps" "$pp"
    local alive=1
    kill -0 "$P1" 2> /dev/null || alive=0
    [ -n "$after" ] || after=0
    [ -n "$idle" ] || idle=0
    local peak
    peak=$(awk -v m="$idle" 'NF == 2 && $2 > m { m = $2 } END { print m }' "$d/rss")
    local suspected=0
    grep -Eqv ' alive$| $' "$d/states" 2> /dev/null && suspected=1
    if [ $suspected = 1 ]; then
        note "$a: n1 seen as: $(grep -Ev ' alive$| $' "$d/states" | sort | uniq -c | tr '\n' ' ')"
    fi
    mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
    csv "$a" rss_idle "$(mib "$idle")" MiB
    csv "$a" rss_peak "$(mib "$peak")" MiB
    csv "$a" rss_after5s "$(mib "$after")" MiB
    csv "$a" rss_peak_over_idle "$(mib $((peak - idle)))" MiB
    csv "$a" rss_after_over_idle "$(mib $((after - idle)))" MiB
    local w
    for w in members send; do
        csv "$a" "${w}_p50" "$(pct "$d/probes" "$w" 50)" ms
        csv "$a" "${w}_p99" "$(pct "$d/probes" "$w" 99)" ms
        csv "$a" "${w}_fail" "$(awk -v w="$w" '$1 == w && $3 != 0 { n++ } END { print n + 0 }' "$d/probes")" runs
        note "$a: $w runs: $(awk -v w="$w" '$1 == w { n++ } END { print n + 0 }' "$d/probes")"
    done
    csv "$a" suspected "$suspected" bool
    csv "$a" alive "$alive" bool
    # What the hostile peer sent and got back.
    sed -n 's/^figures: //p' "$d/attack.out" | tr ' ' '\n' |
        awk -F= -v a="$a" 'NF == 2 { printf "murmer,hostile.%s.peer_%s,%s,count\n", a, $1, $2 }'
    stop_pids "$P1" "$P2" "$P3"
    [ -z "$pipe" ] || exec 7>&-
    return 0
}

# shutdown: 28 one-second "work" messages queued at slow/n1, then SIGTERM;
# the time n1 takes to exit (at most 40 s here).
run_shutdown() {
    local d=$TMP/shutdown
    mkdir -p "$d"
    note "---- shutdown"
    start_cluster "$d" || { stop_pids "$P1" "$P2" "$P3"; return 1; }
    # The caller stays connected (it reads its answers) while n1 stops.
    "$H" invokes --seed "$A1" --key "$KEY" --n 28 --size 1KiB \
        --target slow/n1 --time 10 --hold 45 > "$d/attack.out" 2>&1 &
    local hp=$!
    PIDS+=("$hp")
    sleep 1.5 # connect and send: a few ms; the first message is under way
    local t0=$EPOCHREALTIME i exited=0
    kill -TERM "$P1"
    for ((i = 0; i < 800; i++)); do
        kill -0 "$P1" 2> /dev/null || { exited=1; break; }
        sleep 0.05
    done
    local ms
    ms=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
    csv shutdown exit_ms "$ms" ms
    csv shutdown exited "$exited" bool
    stop_pids "$hp" "$P1" "$P2" "$P3"
}

# catchup: n1 holds 20 000 labels of ~250 bytes (more than one frame);
# n2 and n3 join; the time until n2 resolves the first, middle and last
# of them (at most 40 s).  HOSTILE_CATCHUP_LABELS changes the count.
run_catchup() {
    local d=$TMP/catchup pad
    mkdir -p "$d"
    note "---- catchup"
    printf -v pad '%*s' 240 ''
    pad=${pad// /x}
    local nl=${HOSTILE_CATCHUP_LABELS:-20000}
    start_cluster "$d" "" "$nl" 240 || { stop_pids "$P1" "$P2" "$P3"; return 1; }
    local ok=0 i
    for ((i = 0; i < 400; i++)); do
        if mm --join "$A2" lookup "fill/0-$pad" > /dev/null 2>&1 &&
            mm --join "$A2" lookup "fill/$((nl / 2))-$pad" > /dev/null 2>&1 &&
            mm --join "$A2" lookup "fill/$((nl - 1))-$pad" > /dev/null 2>&1; then
            ok=1
            break
        fi
        awk -v a="$T_JOIN" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a > 40) }' && break
        sleep 0.1
    done
    local ms
    ms=$(awk -v a="$T_JOIN" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", (b - a) * 1000 }')
    note "catchup: n2 $([ $ok = 1 ] && echo caught up || echo 'did not catch up') in $ms ms"
    csv catchup ms "$ms" ms
    csv catchup caught_up "$ok" bool
    stop_pids "$P1" "$P2" "$P3"
}

fail=0
for a in $ATTACKS; do
    case $a in
    shutdown) run_shutdown || fail=1 ;;
    catchup) run_catchup || fail=1 ;;
    *) run_attack "$a" || fail=1 ;;
    esac
done
exit $fail
