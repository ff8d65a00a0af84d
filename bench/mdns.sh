#!/usr/bin/env bash
# bench/mdns.sh — mDNS-only convergence: the time from the start of the
# third node to a 3-node cluster that every node sees as 3 alive members,
# with no seeds (discovery through avahi only).  Median of RUNS runs.
#
#   BUILD=build bench/mdns.sh        (make bench W=mdns; root: namespaces)
#
# Output (stdout):
#   murmer,mdns.discover.N3.median,<ns>,ns   every node logged the others
#   murmer,mdns.converge.N3.median,<ns>,ns   every node sees 3 alive members
# (the second one only when discovery reaches membership; rc 1 otherwise)
# Progress, per-run figures and notes go to stderr.  Runs inside network
# namespaces with their own D-Bus and avahi-daemon (tests/bats/helpers/
# netns.bash); never starts avahi in the root namespace.  Without root or
# `ip netns` it prints a note and exits 0 with no figure.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RUNS=${RUNS:-10}
MURMER=$(cd "$BUILD" 2>/dev/null && pwd)/murmer

note() { echo "bench mdns: $*" >&2; }

if [ ! -x "$MURMER" ]; then
    note "$MURMER not built; skipped"
    exit 0
fi

NETNS_PREFIX="mmb$$-"
# shellcheck source=../tests/bats/helpers/netns.bash
source tests/bats/helpers/netns.bash

if ! why=$(netns_check); then
    note "skipped: $why"
    exit 0
fi

trap 'netns_down' EXIT
trap 'exit 130' INT TERM
netns_up 3 || { note "cannot set up namespaces"; exit 1; }
KEY=$NETNS_RUN/key
"$MURMER" keygen "$KEY" >/dev/null

now_ns() { date +%s%N; }

# start_node I RUN
start_node()
{
    local i=$1 r=$2 ip
    ip=$(netns_ip "$i")
    rm -rf "$NETNS_RUN/d$i"
    netns_bg "$i" "n$i" "$MURMER" start -v --name "b${r}n$i" \
        --listen "$ip:7420" --advertise "$ip:7420" --cluster-key "$KEY" \
        --data-dir "$NETNS_RUN/d$i" --mdns
}

# wait_log I PATTERN SECS
wait_log()
{
    local deadline=$((SECONDS + $3))
    until grep -q "$2" "$NETNS_RUN/n$1.log" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.01
    done
}

# converged_at I: waits until node I sees 3 alive members; prints the time.
converged_at()
{
    local i=$1 deadline=$((SECONDS + 15))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if netns_exec "$i" "$MURMER" members --wait 3 --timeout 10s \
            --join "$(netns_ip "$i"):7420" --cluster-key "$KEY" \
            >/dev/null 2>&1; then
            now_ns
            return 0
        fi
        sleep 0.02
    done
    return 1
}

# discovered_all RUN: waits until every node logged the discovery of the
# two others; prints the time.
discovered_all()
{
    local r=$1 deadline=$((SECONDS + 15)) i j ok
    while [ "$SECONDS" -lt "$deadline" ]; do
        ok=1
        for i in 1 2 3; do
            for j in 1 2 3; do
                [ "$i" = "$j" ] && continue
                grep -q "discovered 'b${r}n$j'" "$NETNS_RUN/n$i.log" || ok=0
            done
        done
        if [ $ok = 1 ]; then
            now_ns
            return 0
        fi
        sleep 0.005
    done
    return 1
}

median()
{
    printf '%s\n' "$@" | sort -n |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2];
             else printf "%d\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

conv=() disc=() conv_ok=1
for ((r = 1; r <= RUNS; r++)); do
    start_node 1 "$r"
    start_node 2 "$r"
    if ! wait_log 1 "published '" 10 || ! wait_log 2 "published '" 10; then
        note "run $r: n1/n2 did not publish"; exit 1
    fi
    t0=$(now_ns)
    start_node 3 "$r"
    wait_log 3 'listening on' 10 || { note "run $r: n3 did not start"; exit 1; }
    jobs_=()
    if [ $conv_ok = 1 ]; then
        for i in 1 2 3; do
            converged_at "$i" >"$NETNS_RUN/conv$i" &
            jobs_+=($!)
        done
    fi
    td=$(discovered_all "$r") || { note "run $r: mDNS discovery incomplete"; exit 1; }
    disc+=($((td - t0)))
    [ ${#jobs_[@]} -eq 0 ] || wait "${jobs_[@]}" # not the nodes (also jobs)
    msg="discovered in $(((td - t0) / 1000000)) ms"
    if [ $conv_ok = 1 ]; then
        t1=0
        for i in 1 2 3; do
            t=$(cat "$NETNS_RUN/conv$i")
            if [ -z "$t" ]; then
                note "run $r: node $i never saw 3 alive members: mDNS discovery not wired to membership? (convergence not measured)"
                conv_ok=0
                break
            fi
            [ "$t" -gt "$t1" ] && t1=$t
        done
        if [ $conv_ok = 1 ]; then
            conv+=($((t1 - t0)))
            msg="$msg, converged in $(((t1 - t0) / 1000000)) ms"
        fi
    fi
    note "run $r: $msg"
    netns_kill_nodes
done

echo "murmer,mdns.discover.N3.median,$(median "${disc[@]}"),ns"
if [ $conv_ok = 1 ]; then
    echo "murmer,mdns.converge.N3.median,$(median "${conv[@]}"),ns"
else
    exit 1
fi
