#!/usr/bin/env bats
# 40-members: SWIM membership with real `murmer start` processes on
# loopback (default timings): convergence, kill -9 seen as failed by every
# survivor (and only that node), SIGTERM seen as left (not failed), and a
# node with another cluster key never listed.

load 'helpers/cluster'
load 'helpers/members'

setup()
{
    murmer_setup
    command -v jq >/dev/null || skip "jq is not installed"
}

@test "members: 5 nodes converge, every node lists 5 alive" {
    start_cluster 5 --no-mdns
    wait_for "all_alive 5 $PORT_1 $PORT_2 $PORT_3 $PORT_4 $PORT_5" 20 ||
        { members_json "$PORT_1"; cat "$(node_log n5)"; false; }
    # The CLI itself is never a member.
    run members_json "$PORT_3"
    assert_success
    [ "$(jq '.members | length' <<<"$output")" -eq 5 ]
    [ "$(jq -r '.schema' <<<"$output")" = "murmer.members/1" ]
}

@test "members: kill -9 of one node is failed on every survivor, only that one" {
    start_cluster 5 --no-mdns
    wait_for "all_alive 5 $PORT_1 $PORT_2 $PORT_3 $PORT_4 $PORT_5" 20
    local t0=$SECONDS
    kill -KILL "$(node_pid n5)"
    # Expected ~6 s with default timings; bound generously.
    wait_for "all_see n5 failed $PORT_1 $PORT_2 $PORT_3 $PORT_4" 40 ||
        { for p in $PORT_1 $PORT_2 $PORT_3 $PORT_4; do members_json "$p"; done; false; }
    echo "# kill -9 seen failed by all survivors after ~$((SECONDS - t0)) s" >&3
    for p in $PORT_1 $PORT_2 $PORT_3 $PORT_4; do
        run members_json "$p"
        assert_success
        # Nobody else failed or left.
        [ "$(jq '[.members[] | select(.name != "n5" and .state != "alive")] | length' <<<"$output")" -eq 0 ] ||
            { echo "$output"; false; }
    done
}

@test "members: SIGTERM is a graceful leave: left (not failed) everywhere" {
    start_cluster 4 --no-mdns
    wait_for "all_alive 4 $PORT_1 $PORT_2 $PORT_3 $PORT_4" 20
    stop_node n4 TERM 10 || { cat "$(node_log n4)"; false; }
    [ "$STOP_RC" -eq 0 ]
    [ "$STOP_MS" -lt 6000 ] # the leave is bounded
    echo "# SIGTERM: node exited after ${STOP_MS} ms" >&3
    wait_for "all_see n4 left $PORT_1 $PORT_2 $PORT_3" 5 ||
        { for p in $PORT_1 $PORT_2 $PORT_3; do members_json "$p"; done; false; }
}

@test "members: a node with another cluster key never appears" {
    start_cluster 3 --no-mdns
    wait_for "all_alive 3 $PORT_1 $PORT_2 $PORT_3" 20
    other="$BATS_TEST_TMPDIR/other.key"
    murmer keygen "$other"
    port=$(free_port)
    start_node intruder --listen "127.0.0.1:$port" --join "$SEED" \
        --cluster-key "$other" --data-dir "$BATS_TEST_TMPDIR/data-x" --no-mdns
    log=$(node_log intruder)
    wait_for "grep -q 'listening on' '$log'" 20 || { cat "$log"; false; }
    # Its QUIC dial to the seed is refused (wrong key) ...
    wait_for "grep -q 'not authorized' '$log'" 20 || { cat "$log"; false; }
    # ... and its sealed gossip never opens: never listed anywhere.
    for p in $PORT_1 $PORT_2 $PORT_3; do
        [ "$(member_state "$p" intruder)" = "none" ]
        [ "$(alive_on "$p")" -eq 3 ]
    done
}
