#!/usr/bin/env bats
# 42-observe: `murmer partitions`, `murmer ping` and `members --follow` on
# a real 3-node cluster on loopback.  A partition is made without network
# namespaces: SIGSTOP freezes one node (it answers nothing, the others
# suspect it while it still sees them alive), SIGCONT lets it heal.

load 'helpers/cluster'
load 'helpers/members'

setup()
{
    murmer_setup
    command -v jq >/dev/null || skip "jq is not installed"
}

teardown()
{
    # A stopped node cannot take its SIGTERM: wake it first.
    local pid
    pid=$(node_pid n3)
    [ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null
    murmer_teardown
}

# Short SWIM timings so that a frozen node is suspected within a second.
fast_swim()
{
    export MURMER_SWIM_PROBE_MS=200 MURMER_SWIM_PROBE_TIMEOUT_MS=100 \
        MURMER_SWIM_GOSSIP_MS=100
}

parts_rc()
{
    mm --timeout 3s partitions --json >/dev/null 2>&1
    echo $?
}

@test "partitions: 3 agreeing views, exit 0; a frozen node: exit 1 until it heals" {
    fast_swim
    # A long suspicion: the frozen node stays suspect (asked, silent) for
    # the whole test instead of turning failed (not asked any more).
    export MURMER_SWIM_SUSPICION_MULT=200 MURMER_SWIM_SUSPICION_MAX_MULT=200
    start_cluster 3 --no-mdns
    wait_for "all_alive 3 $PORT_1 $PORT_2 $PORT_3" 20
    wait_for '[ "$(parts_rc)" = 0 ]' 10
    run mm partitions --json
    assert_success
    [ "$(jq -r .schema <<<"$output")" = "murmer.partitions/1" ]
    [ "$(jq -r .agree <<<"$output")" = "true" ]
    [ "$(jq '.observers | length' <<<"$output")" -eq 3 ]
    [ "$(jq '[.observers[] | select(.answered)] | length' <<<"$output")" -eq 3 ]
    [ "$(jq -r '.observers[] | select(.name == "n2") | .view.n3' <<<"$output")" = "alive" ]
    run mm partitions
    assert_success
    assert_output --partial "OBSERVER"
    assert_output --partial "all 3 views agree"

    kill -STOP "$(node_pid n3)"
    # n1 and n2 suspect n3; n3 cannot answer: its view is unknown.
    wait_for '[ "$(parts_rc)" = 1 ]' 20
    run --separate-stderr mm --timeout 3s partitions --json
    [ "$status" -eq 1 ]
    [ "$(jq -r .agree <<<"$output")" = "false" ]
    [ "$(jq -r '.observers[] | select(.name == "n3") | .error' <<<"$output")" = "no answer" ]
    [ "$(jq -r '.no_answer[0]' <<<"$output")" = "n3" ]
    run mm --timeout 3s partitions
    [ "$status" -eq 1 ]
    assert_output --partial "n3 gave no view (no answer)"

    kill -CONT "$(node_pid n3)"
    wait_for '[ "$(parts_rc)" = 0 ]' 30 || { mm partitions; false; }
}

@test "partitions: exit 4 when the seed is unreachable, 2 on a stray argument" {
    KEY="$BATS_TEST_TMPDIR/k"
    murmer keygen "$KEY"
    port=$(free_port)
    run timeout 20 murmer --join "127.0.0.1:$port" --cluster-key "$KEY" \
        --timeout 1s partitions
    [ "$status" -eq 4 ]
    run murmer partitions extra
    [ "$status" -eq 2 ]
    run murmer partitions --help
    assert_success
    assert_output --partial "murmer partitions"
}

@test "ping: direct and through the other member, with RTTs" {
    start_cluster 3 --no-mdns
    wait_for "all_alive 3 $PORT_1 $PORT_2 $PORT_3" 20
    run mm ping --count 3 --interval 50ms --json n3
    assert_success
    [ "$(jq -r .schema <<<"$output")" = "murmer.ping/1" ]
    [ "$(jq -r .target <<<"$output")" = "n3" ]
    [ "$(jq -r .rounds <<<"$output")" -eq 3 ]
    # direct: 3 answers, a positive round trip
    [ "$(jq '.paths[] | select(.via == null) | .sent - .lost' <<<"$output")" -eq 3 ]
    [ "$(jq '.paths[] | select(.via == null) | .min_us > 0' <<<"$output")" = true ]
    # through n2, the only other member
    [ "$(jq -r '.paths[] | select(.via != null) | .via' <<<"$output")" = "n2" ]
    [ "$(jq '.paths[] | select(.via == "n2") | .sent - .lost' <<<"$output")" -eq 3 ]
    run mm ping --count 2 --interval 10ms n2
    assert_success
    assert_output --partial "direct"
    assert_output --partial "via n3"
    assert_output --partial "2 rounds"
    # --follow --json: one document per round; ended by SIGINT.
    # (murmer itself in the background, so that SIGINT reaches it)
    murmer --join "$SEED" --cluster-key "$KEY" ping --follow --interval 50ms \
        --json n3 >"$BATS_TEST_TMPDIR/f.out" &
    local pid=$!
    wait_for "[ \$(wc -l <'$BATS_TEST_TMPDIR/f.out') -ge 2 ]" 10
    kill -INT "$pid"
    wait "$pid"
    [ "$(head -1 "$BATS_TEST_TMPDIR/f.out" | jq -r .seq)" = 1 ]
}

@test "ping: a frozen target does not answer (exit 4); bad input exits 2 or 3" {
    fast_swim
    start_cluster 3 --no-mdns
    wait_for "all_alive 3 $PORT_1 $PORT_2 $PORT_3" 20
    run mm ping --count 1 nobody
    [ "$status" -eq 3 ]
    assert_output --partial "no member 'nobody'"
    run mm ping --count 0 n2
    [ "$status" -eq 2 ]
    run mm ping --count 101 n2
    [ "$status" -eq 2 ]
    run mm ping --relays 4 n2
    [ "$status" -eq 2 ]
    run mm ping --count 2 --follow n2
    [ "$status" -eq 2 ]
    run mm ping
    [ "$status" -eq 2 ]
    run mm ping n1
    [ "$status" -eq 2 ]
    kill -STOP "$(node_pid n3)"
    run --separate-stderr mm --timeout 2s ping --count 2 --interval 10ms \
        --json n3
    [ "$status" -eq 4 ]
    [[ "$stderr" == *"n3 did not answer in 2 rounds"* ]]
    [ "$(jq -s '.[0].paths[] | select(.via == null) | .lost' <<<"$output")" -eq 2 ]
    kill -CONT "$(node_pid n3)"
}

@test "members --follow: join, suspect and alive events as JSON Lines" {
    fast_swim
    start_cluster 2 --no-mdns
    wait_for "all_alive 2 $PORT_1 $PORT_2" 20
    out="$BATS_TEST_TMPDIR/ev.out"
    murmer --join "$SEED" --cluster-key "$KEY" --timeout 20s -v members \
        --follow --json >"$out" 2>"$out.err" &
    local fpid=$!
    # Once the seed has the subscription, a third node joins.
    wait_for "grep -q 'following member events of n1' '$out.err'" 10
    port=$(free_port)
    PORT_3=$port
    start_node n3 --listen "127.0.0.1:$port" --join "$SEED" \
        --cluster-key "$KEY" --data-dir "$BATS_TEST_TMPDIR/data-n3" --no-mdns
    # jq -s: an empty file is no match (plain jq -e succeeds on no input).
    wait_for "jq -e -s 'any(.[]; .schema == \"murmer.member_event/1\" and .event == \"join\" and .member.name == \"n3\")' '$out'" 20 ||
        { cat "$out"; false; }
    kill -STOP "$(node_pid n3)"
    wait_for "jq -e -s 'any(.[]; .event == \"suspect\" and .member.name == \"n3\")' '$out'" 20 ||
        { cat "$out" "$out.err"; members_json "$PORT_1"; false; }
    kill -CONT "$(node_pid n3)"
    wait_for "jq -e -s 'any(.[]; .event == \"alive\" and .member.name == \"n3\")' '$out'" 20 ||
        { cat "$out"; false; }
    kill -TERM "$fpid"
    wait "$fpid" || true
}

@test "members --follow: --count ends it, --timeout without events exits 4" {
    start_cluster 1 --no-mdns
    wait_for "all_alive 1 $PORT_1" 20
    run mm --timeout 1s members --follow --count 1
    [ "$status" -eq 4 ]
    assert_output --partial "saw 0 of 1 member events"
    # No --count: silence for --timeout is a normal end.
    run mm --timeout 500ms members --follow
    assert_success
    run mm members --count 1
    [ "$status" -eq 2 ]
    run mm members --follow --wait 2
    [ "$status" -eq 2 ]
    run mm members --follow --count 0
    [ "$status" -eq 2 ]
    # A second node's join is the one event --count 1 waits for.
    mm --timeout 20s -v members --follow --count 1 --json \
        >"$BATS_TEST_TMPDIR/c.out" 2>"$BATS_TEST_TMPDIR/c.err" &
    local fpid=$!
    wait_for "grep -q 'following member events' '$BATS_TEST_TMPDIR/c.err'" 10
    port=$(free_port)
    start_node n2 --listen "127.0.0.1:$port" --join "$SEED" \
        --cluster-key "$KEY" --data-dir "$BATS_TEST_TMPDIR/data-n2" --no-mdns
    wait "$fpid"
    [ "$(wc -l <"$BATS_TEST_TMPDIR/c.out")" -eq 1 ]
    [ "$(jq -r .event "$BATS_TEST_TMPDIR/c.out")" = "join" ]
}
