#!/usr/bin/env bats
# 45-faults: SWIM membership under network faults, real `murmer start`
# processes with default timings.
#  - a partition {n1,n2} | {n3,n4} (nft drops between network namespaces)
#    lasting longer than failure detection: each side declares the other
#    failed; once the drops are removed everyone is alive again, same
#    processes, same generations (healing time printed);
#  - one cut link (n1 <-> n2) among 4 nodes is masked by indirect probes:
#    nobody is declared failed over 20 s;
#  - both cores saturated by busy loops for 30 s: nobody is declared failed
#    on a 4-node loopback cluster.
# Namespaces are named mmf<pid>-*, nodes listen on 10.231.0.i inside them;
# nothing in the root namespace is changed.

load 'helpers/cluster'
load 'helpers/members'
load 'helpers/faults'

setup()
{
    murmer_setup
    command -v jq >/dev/null || skip "jq is not installed"
    : >"$BATS_TEST_TMPDIR/busy-pids"
}

teardown()
{
    faults_busy_stop
    murmer_teardown
    faults_net_down
}

# net_cluster N: namespaces and N nodes, converged (bounded).
net_cluster()
{
    local n=$1 why i
    why=$(faults_check) || skip "$why"
    faults_net_up "$n" || { echo "could not build the namespaces" >&2; return 1; }
    KEY="$BATS_TEST_TMPDIR/cluster.key"
    murmer keygen "$KEY"
    for ((i = 1; i <= n; i++)); do
        faults_node "$i"
    done
    local all=()
    for ((i = 1; i <= n; i++)); do
        wait_for "grep -q 'listening on' '$(node_log "n$i")'" 20 ||
            { cat "$(node_log "n$i")"; return 1; }
        all+=("$i")
    done
    wait_for "faults_all_alive $n ${all[*]}" 30 ||
        { for i in "${all[@]}"; do faults_members "$i"; done; return 1; }
}

# gens I: "name:generation" of every member node I lists, sorted.
gens()
{
    faults_members "$1" |
        jq -r '[.members[] | "\(.name):\(.generation)"] | sort | join(" ")'
}

now_ms()
{
    echo $(($(date +%s%N) / 1000000))
}

@test "faults: a partition longer than detection; each side fails the other, heals with no restart" {
    net_cluster 4
    local before pids=() i
    before=$(gens 1)
    for i in 1 2 3 4; do pids+=("$(node_pid "n$i")"); done

    local t0
    t0=$(now_ms)
    faults_drop 1 "$(faults_ip 3)" "$(faults_ip 4)"
    faults_drop 2 "$(faults_ip 3)" "$(faults_ip 4)"
    faults_drop 3 "$(faults_ip 1)" "$(faults_ip 2)"
    faults_drop 4 "$(faults_ip 1)" "$(faults_ip 2)"
    # Default timings: expected well under 20 s; bound generously.
    wait_for "faults_all_see n3 failed 1 2 && faults_all_see n4 failed 1 2 &&
              faults_all_see n1 failed 3 4 && faults_all_see n2 failed 3 4" 60 ||
        { for i in 1 2 3 4; do faults_members "$i"; done; false; }
    local detect=$(($(now_ms) - t0))
    echo "# partition 2|2: each side lists the other failed after ${detect} ms" >&3
    # Each side still sees its own half alive.
    [ "$(faults_state 1 n2)" = alive ]
    [ "$(faults_state 2 n1)" = alive ]
    [ "$(faults_state 3 n4)" = alive ]
    [ "$(faults_state 4 n3)" = alive ]
    # The drops really matched traffic on every node.
    for i in 1 2 3 4; do
        [ "$(faults_dropped "$i")" -gt 0 ] || { echo "no drops on n$i"; false; }
    done

    local t1
    t1=$(now_ms)
    for i in 1 2 3 4; do faults_undrop "$i"; done
    # Failed members are re-probed with capped backoff (2 s .. 30 s).
    wait_for "faults_all_alive 4 1 2 3 4" 60 ||
        { for i in 1 2 3 4; do faults_members "$i"; done; false; }
    local heal=$(($(now_ms) - t1))
    echo "# partition healed: all 4 alive on all 4 ${heal} ms after the drops were removed (partition lasted $((t1 - t0)) ms)" >&3
    # No restart: same processes, same generations.
    for i in 1 2 3 4; do
        kill -0 "${pids[$((i - 1))]}"
        [ "$(node_pid "n$i")" = "${pids[$((i - 1))]}" ]
    done
    [ "$(gens 1)" = "$before" ]
    [ "$(gens 3)" = "$before" ]
}

@test "faults: a single cut link (n1 <-> n2) is masked by indirect probes" {
    net_cluster 4
    faults_drop 1 "$(faults_ip 2)"
    faults_drop 2 "$(faults_ip 1)"
    local t0=$SECONDS polls=0 suspect=0 c
    while [ $((SECONDS - t0)) -lt 20 ]; do
        c=$(faults_count_state failed 1 2 3 4)
        [ "$c" -eq 0 ] ||
            { for i in 1 2 3 4; do faults_members "$i"; done; false; }
        c=$(faults_count_state left 1 2 3 4)
        [ "$c" -eq 0 ]
        suspect=$((suspect + $(faults_count_state suspect 1 2 3 4)))
        polls=$((polls + 1))
        sleep 0.5
    done
    # The link really was cut for the whole time.
    local d1 d2
    d1=$(faults_dropped 1)
    d2=$(faults_dropped 2)
    [ "$d1" -gt 0 ] && [ "$d2" -gt 0 ]
    faults_all_alive 4 1 2 3 4
    echo "# single link cut 20 s: 0 failed over $polls polls of 4 nodes, $suspect suspect sightings, $d1 + $d2 packets dropped" >&3
}

@test "faults: both cores saturated for 30 s, nobody is declared failed" {
    start_cluster 4 --no-mdns
    local ports=("$PORT_1" "$PORT_2" "$PORT_3" "$PORT_4")
    wait_for "all_alive 4 ${ports[*]}" 30 ||
        { members_json "$PORT_1"; false; }
    local cores
    cores=$(nproc)
    # Converged first, then as many busy loops as cores (bounded by timeout
    # as a safety net; killed by PID in any case).
    faults_busy_start "$cores" 40
    local t0=$SECONDS polls=0 suspect=0 out p c
    while [ $((SECONDS - t0)) -lt 30 ]; do
        for p in "${ports[@]}"; do
            out=$(members_json "$p") || { echo "node on $p did not answer"; false; }
            c=$(jq '[.members[] | select(.state == "failed" or .state == "left")] | length' <<<"$out")
            [ "$c" -eq 0 ] || { echo "$out"; false; }
            suspect=$((suspect + $(jq '[.members[] | select(.state == "suspect")] | length' <<<"$out")))
        done
        polls=$((polls + 1))
        sleep 0.5
    done
    faults_busy_stop
    wait_for "all_alive 4 ${ports[*]}" 20
    echo "# $cores busy loops for 30 s: 0 failed over $polls polls of 4 nodes, $suspect suspect sightings" >&3
}
