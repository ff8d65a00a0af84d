#!/usr/bin/env bats
# 08-examples: every example program and plugin is built and run here on
# real processes, and its output asserted (the greeter has 05-greeter):
# timers, two_node (a typed call across nodes and a remote mm_watch),
# spawn (remote spawn and stop through a seed, a typed call from a node of
# its own) and the typed plugin
# (called with `murmer send` through a seed that is not its node).  Also
# `lookup --all` across nodes (shadowed claimants).

load 'helpers/cluster'

setup()
{
    murmer_setup
}

# bg NAME CMD...: runs CMD in the background (stdout NAME.out, stderr
# NAME.log) and records its PID for node_pid and the teardown.
bg()
{
    local name=$1
    shift
    "$@" >"$BATS_TEST_TMPDIR/$name.out" 2>"$BATS_TEST_TMPDIR/$name.log" &
    echo "$name $!" >>"$NODE_PIDS_FILE"
}

# Two members with a cluster key: n1 (the seed) and n2; extra ARGS go to
# n2 only.  Waits until n1 lists both alive.
two()
{
    KEY="$BATS_TEST_TMPDIR/cluster.key"
    murmer keygen "$KEY"
    SEED="127.0.0.1:$(free_port)"
    start_node n1 --listen "$SEED" --cluster-key "$KEY" --no-mdns \
        --data-dir "$BATS_TEST_TMPDIR/data-n1" $N1_ARGS
    start_node n2 --listen "127.0.0.1:$(free_port)" --join "$SEED" \
        --cluster-key "$KEY" --no-mdns --data-dir "$BATS_TEST_TMPDIR/data-n2" "$@"
    local i
    for i in 1 2; do
        wait_for "grep -q 'listening on' '$(node_log "n$i")'" 20 ||
            { cat "$(node_log "n$i")"; return 1; }
    done
    wait_for '[ "$(alive_count)" -eq 2 ]' 20
}

@test "timers: three ticks, the periodic timer cancelled, a one-shot stops the actor" {
    run --separate-stderr timeout 20 "$MURMER_BUILD/timers"
    assert_success
    assert_output "tick 1
tick 2
tick 3
cancelled the ticks
done"
    [ -z "$stderr" ] || fail "unexpected stderr: $stderr"
}

@test "two_node: a caller node calls counter/1 on a server node, watches it stop" {
    addr="127.0.0.1:$(free_port)"
    bg server "$MURMER_BUILD/two_node" serve "$addr"
    wait_for "grep -q '^serving counter/1 on $addr$' '$BATS_TEST_TMPDIR/server.out'" 20 ||
        { cat "$BATS_TEST_TMPDIR/server.log"; false; }
    run --separate-stderr timeout 30 "$MURMER_BUILD/two_node" call "$addr"
    assert_success
    assert_output "add 20 -> total 20
add 40 -> total 60
counter/1 stopped (normal)"
    # The actor stopped on the server: the label is gone there too.
    run --separate-stderr timeout 20 murmer --join "$addr" lookup counter/1
    assert_failure 3
    # The server exits 0 on SIGTERM.
    stop_node server TERM 10
    [ "$STOP_RC" -eq 0 ]
    # A bad command line is a usage error.
    run --separate-stderr timeout 20 "$MURMER_BUILD/two_node" call
    assert_failure 2
    [ "$stderr" = "usage: two_node serve HOST:PORT | call SEED" ]
}

@test "two_node call without a server: unreachable or timeout, exit 1, bounded" {
    run --separate-stderr timeout 30 "$MURMER_BUILD/two_node" call "127.0.0.1:$(free_port)"
    assert_failure 1
    [ "${stderr##*$'\n'}" = "two_node: timed out" ]
}

@test "spawn: spawns an account on n2 through seed n1, calls it with a typed stub from its own node, stops it" {
    two --plugin "$MURMER_BUILD/plugins/typed_plugin.so"
    run --separate-stderr env MURMER_CLUSTER_KEY_FILE="$KEY" timeout 60 \
        "$MURMER_BUILD/spawn" "$SEED" n2
    assert_success
    assert_output "spawned acct/9 on n2
deposit 1 -> balance 42
stopped acct/9 on n2"
    run --separate-stderr mm lookup acct/9
    assert_failure 3
    # An unknown node: the seed's error, exit 1.
    run --separate-stderr env MURMER_CLUSTER_KEY_FILE="$KEY" timeout 30 \
        "$MURMER_BUILD/spawn" "$SEED" n9
    assert_failure 1
    [ "$stderr" = "spawn: not found: no member 'n9'" ]
}

@test "typed plugin on n2, called with murmer send through seed n1: typed decode, replies and errors" {
    two --plugin "$MURMER_BUILD/plugins/typed_plugin.so" --actor 'acct/1=account:100'
    run --separate-stderr mm lookup --json --wait 10s acct/1
    assert_success
    [ "$(jq -r '.actors[0].node' <<<"$output")" = n2 ]
    [ "$(jq -r '.actors[0].type' <<<"$output")" = account ]
    run --separate-stderr mm send acct/1 deposit '{"amount": 5}'
    assert_success
    [ "$output" = '{"balance":105}' ]
    run --separate-stderr mm send acct/1 withdraw '{"amount": 500}'
    assert_failure 1
    [ "$stderr" = "murmer send: acct/1: handler_error: insufficient funds" ]
    run --separate-stderr mm send acct/1 withdraw '{"amount": 5}'
    assert_success
    [ "$output" = '{"balance":100}' ]
    run --separate-stderr mm send acct/1 deposit '{"amount": -1}'
    assert_failure 2
    [ "$stderr" = "murmer send: acct/1: invalid: amount must be positive" ]
    # The typed codec refuses what does not fit the declared fields.
    run --separate-stderr mm send acct/1 deposit '{"amt": 1}'
    assert_failure 6
    [ "$stderr" = "murmer send: acct/1: decode_error: deposit: field 'amount': missing" ]
    run --separate-stderr mm send acct/1 deposit '{"amount": "x"}'
    assert_failure 6
    run --separate-stderr mm send acct/1 close
    assert_failure 3
    # Spawned through the seed on n2 with an opening balance.
    run --separate-stderr mm spawn account acct/2 --on n2 --arg 7
    assert_success
    run --separate-stderr mm lookup --wait 10s acct/2
    assert_success
    run --separate-stderr mm send acct/2 deposit '{"amount": 1}'
    assert_success
    [ "$output" = '{"balance":8}' ]
    # n1 has no such type.
    run --separate-stderr mm spawn account acct/3 --on n1
    assert_failure 3
    [ "$stderr" = "murmer spawn: no actor type 'account' on node n1" ]
}

@test "lookup --all across nodes: both claimants, one shadowed; the shadowed one takes over when the winner stops" {
    N1_ARGS="--actor dup/1=echo" two --actor dup/1=echo
    # Both claims replicated: --all lists two, from either seed alike.
    wait_for '[ "$(mm lookup --all --json dup/1 | jq ".actors | length")" -eq 2 ]' 20
    run --separate-stderr mm lookup --all --json dup/1
    assert_success
    [ "$(jq -r '[.actors[].node] | sort | join(",")' <<<"$output")" = "n1,n2" ]
    [ "$(jq '[.actors[] | select(.shadowed)] | length' <<<"$output")" -eq 1 ]
    winner=$(jq -r '.actors[] | select(.shadowed | not) | .node' <<<"$output")
    loser=$(jq -r '.actors[] | select(.shadowed) | .node' <<<"$output")
    run --separate-stderr mm lookup --json dup/1
    assert_success
    [ "$(jq '.actors | length' <<<"$output")" -eq 1 ]
    [ "$(jq -r '.actors[0].node' <<<"$output")" = "$winner" ]
    run --separate-stderr mm lookup dup/1
    assert_success
    [[ $output != *shadowed* ]]
    run --separate-stderr mm lookup --all dup/1
    assert_success
    [[ $output == *"dup/1 (shadowed)"*"$loser"* ]]
    # Stopping the label stops the winner; the other claimant wins.
    run --separate-stderr mm stop dup/1
    assert_success
    [[ $output == "stopped dup/1 on $winner "* ]]
    wait_for "[ \"\$(mm lookup --json dup/1 | jq -r '.actors[0].node')\" = '$loser' ]" 20
    run --separate-stderr mm lookup --all --json dup/1
    assert_success
    [ "$(jq '.actors | length' <<<"$output")" -eq 1 ]
    [ "$(jq -r '.actors[0].shadowed' <<<"$output")" = false ]
}
