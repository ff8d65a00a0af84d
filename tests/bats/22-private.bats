#!/usr/bin/env bats
# 22-private: a private registration never leaves its node.  A client
# (lookup, send by label, watch) talking to that very node does not see it:
# not_found and absent from listings and events; a public one still works.
# The `hideaway` actor of tests/plugins/private_plugin.c registers itself
# privately under its JSON argument, and under a label sent with `hide`
# (privately) or `show` (internal).

load 'helpers/cluster'

setup()
{
    murmer_setup
    KEY="$BATS_TEST_TMPDIR/cluster.key"
    murmer keygen "$KEY"
    SEED="127.0.0.1:$(free_port)"
    start_node p1 --listen "$SEED" --cluster-key "$KEY" \
        --data-dir "$BATS_TEST_TMPDIR/data-p1" --no-mdns \
        --plugin "$MURMER_BUILD/plugins/private_plugin.so" \
        --actor 'pub/1=hideaway:"secret/1"' --actor 'c/1=counter'
    wait_for "grep -q 'listening on' '$(node_log p1)'" 20 ||
        { cat "$(node_log p1)"; false; }
}

@test "private: lookup does not list it, send to its label is not_found (exit 3); the public label works" {
    run --separate-stderr mm send pub/1 ping
    assert_success
    [ "$output" = '"pong"' ]
    run --separate-stderr mm lookup secret/1
    assert_failure 3
    [ "$stderr" = "murmer lookup: no actor with label 'secret/1'" ]
    run --separate-stderr mm lookup --all secret/1
    assert_failure 3
    run --separate-stderr mm lookup --prefix secret/
    assert_failure 3
    run --separate-stderr mm lookup --json --prefix ''
    assert_success
    [ "$(jq -r '[.actors[].label] | sort | join(",")' <<<"$output")" = "c/1,pub/1" ]
    [ "$(jq '[.actors[] | select(.visibility == "private")] | length' <<<"$output")" -eq 0 ]
    run --separate-stderr mm send secret/1 ping
    assert_failure 3
    [ "$stderr" = "murmer send: secret/1: not_found: no actor with label 'secret/1'" ]
    # One made private at run time is hidden the same way.
    run --separate-stderr mm send pub/1 hide '"secret/2"'
    assert_success
    [ "$output" = true ]
    run --separate-stderr mm send secret/2 ping
    assert_failure 3
    run --separate-stderr mm lookup secret/2
    assert_failure 3
    # ... and a public one is reached.
    run --separate-stderr mm send pub/1 show '"open/2"'
    assert_success
    run --separate-stderr mm send open/2 ping
    assert_success
    [ "$output" = '"pong"' ]
    # A member that joins learns nothing of them either.
    port=$(free_port)
    start_node p2 --listen "127.0.0.1:$port" --join "$SEED" --cluster-key "$KEY" \
        --data-dir "$BATS_TEST_TMPDIR/data-p2" --no-mdns
    wait_for "timeout 10 murmer --join 127.0.0.1:$port --cluster-key '$KEY' lookup open/2" 20
    run --separate-stderr timeout 30 murmer --join "127.0.0.1:$port" --cluster-key "$KEY" send secret/1 ping
    assert_failure 3
    run --separate-stderr timeout 30 murmer --join "127.0.0.1:$port" --cluster-key "$KEY" send pub/1 ping
    assert_success
}

@test "private: watch never shows it, in the backfill or as an event" {
    out="$BATS_TEST_TMPDIR/watch.out"
    err="$BATS_TEST_TMPDIR/watch.err"
    # Two events: the backfill's pub/1, then open/3; never a secret.
    mm --timeout 30s watch --json --prefix '' --count 3 >"$out" 2>"$err" &
    wpid=$!
    wait_for "grep -q '\"synced\"' '$out'" 20 || { cat "$out" "$err"; false; }
    run --separate-stderr mm send pub/1 hide '"secret/3"'
    assert_success
    [ "$output" = true ]
    run --separate-stderr mm send pub/1 show '"open/3"'
    assert_success
    rc=0
    wait "$wpid" || rc=$?
    cat "$out" "$err"
    [ "$rc" -eq 0 ]
    [ "$(jq -r 'select(.event == "added") | .label' "$out" | sort | tr '\n' ,)" = "c/1,open/3,pub/1," ]
    ! grep -q secret "$out"
}
