#!/usr/bin/env bats
# 30-watch: `murmer watch` streams a backfill, then actors as they come
# and go; it survives its seed going away (resync through another member).

load 'helpers/cluster'

setup()
{
    murmer_setup
}

@test "watch --count 2 sees an actor added then removed" {
    start_cluster 1
    out="$BATS_TEST_TMPDIR/watch.out"
    err="$BATS_TEST_TMPDIR/watch.err"
    mm --timeout 30s watch --prefix w/ --count 2 >"$out" 2>"$err" &
    wpid=$!
    # The backfill is empty; SYNCED says the watch is live.
    wait_for "grep -q '^synced' '$out'" 20 || { cat "$out" "$err"; false; }
    port=$(free_port)
    start_node w1 --listen "127.0.0.1:$port" --join "$SEED" \
        --cluster-key "$KEY" --data-dir "$BATS_TEST_TMPDIR/data-w1" \
        --actor 'w/1=echo'
    wait_for "grep -q '^added' '$out'" 20 || { cat "$out" "$err"; false; }
    stop_node w1 TERM 10
    rc=0
    wait "$wpid" || rc=$?
    cat "$out" "$err"
    [ "$rc" -eq 0 ]
    [ "$(wc -l <"$out")" -eq 3 ]
    [ "$(sed -n 1p "$out")" = "synced" ]
    [[ $(sed -n 2p "$out") =~ ^added\ +w/1\ +[0-9a-f]{32}/[0-9]+/[0-9]+$ ]]
    [[ $(sed -n 3p "$out") =~ ^removed\ +w/1\ +[0-9a-f]{32}/[0-9]+/[0-9]+\ +\( ]]
    [ ! -s "$err" ]
}

@test "watch --json: backfill then synced, JSON Lines" {
    start_cluster 1
    run --separate-stderr mm --timeout 1s watch --json --prefix counter/
    assert_success
    [ "${#lines[@]}" -eq 2 ]
    [ "$(jq -r .schema <<<"${lines[0]}")" = "murmer.watch/1" ]
    [ "$(jq -r .event <<<"${lines[0]}")" = "added" ]
    [ "$(jq -r .label <<<"${lines[0]}")" = "counter/n1" ]
    [ "$(jq -r .event <<<"${lines[1]}")" = "synced" ]
}

@test "watch --count exits 4 when the events do not come in time" {
    start_cluster 1
    run --separate-stderr mm --timeout 500ms watch --prefix none/ --count 1
    assert_failure 4
    [ "$stderr" = "murmer watch: saw 0 of 1 events before the timeout" ]
}

@test "watch reconnects through another member when its seed goes" {
    start_cluster 2
    wait_for '[ "$(alive_count)" -eq 2 ]' 20
    out="$BATS_TEST_TMPDIR/watch.out"
    err="$BATS_TEST_TMPDIR/watch.err"
    mm --timeout 30s watch --prefix counter/n2 --count 2 >"$out" 2>"$err" &
    wpid=$!
    wait_for "grep -q '^synced' '$out'" 20 || { cat "$out" "$err"; false; }
    stop_node n1 TERM 10
    rc=0
    wait "$wpid" || rc=$?
    cat "$out" "$err"
    [ "$rc" -eq 0 ]
    # added (backfill), synced, resync, added (fresh backfill from n2).
    [[ $(sed -n 1p "$out") =~ ^added\ +counter/n2 ]]
    [ "$(sed -n 2p "$out")" = "synced" ]
    [ "$(sed -n 3p "$out")" = "resync" ]
    [[ $(sed -n 4p "$out") =~ ^added\ +counter/n2 ]]
}

@test "watch notices a seed killed with -9 (liveness ping) and reconnects" {
    start_cluster 2
    wait_for '[ "$(alive_count)" -eq 2 ]' 20
    out="$BATS_TEST_TMPDIR/watch.out"
    err="$BATS_TEST_TMPDIR/watch.err"
    mm --timeout 30s watch --prefix counter/n2 --count 2 >"$out" 2>"$err" &
    wpid=$!
    wait_for "grep -q '^synced' '$out'" 20 || { cat "$out" "$err"; false; }
    # No close reaches the client: only its ping, outstanding and unanswered,
    # tells it the seed is gone.
    stop_node n1 KILL 10
    wait_for "! kill -0 $wpid" 15 || { kill "$wpid"; cat "$out" "$err"; false; }
    rc=0
    wait "$wpid" || rc=$?
    cat "$out" "$err"
    [ "$rc" -eq 0 ]
    [ "$(sed -n 3p "$out")" = "resync" ]
    [[ $(sed -n 4p "$out") =~ ^added\ +counter/n2 ]]
}
