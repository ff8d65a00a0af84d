#!/usr/bin/env bats
# 50-oplog: `murmer oplog` shows each origin's registry log as the seed
# holds it; --follow streams new ops; force-leave removes a member that
# is not alive and refuses one that is.

load 'helpers/cluster'

setup()
{
    murmer_setup
}

@test "oplog shows the ops of every origin" {
    start_cluster 2
    wait_for '[ "$(mm oplog --json | jq ".origins | length")" -eq 2 ]' 20
    run --separate-stderr mm oplog --json
    assert_success
    [ "$(jq -r .schema <<<"$output")" = "murmer.oplog/1" ]
    for n in n1 n2; do
        o=$(jq -c ".origins[] | select(.name == \"$n\")" <<<"$output")
        [ "$(jq -r '.ops | map(.op) | unique | join(",")' <<<"$o")" = "register" ]
        [ "$(jq -r '.ops | map(.label) | sort | join(",")' <<<"$o")" = "counter/$n,echo/$n,greeter/$n,kv/$n" ]
        [ "$(jq -r '.ops | map(.seq) | join(",")' <<<"$o")" = "1,2,3,4" ]
        [ "$(jq .head <<<"$o")" -eq 4 ]
        [ "$(jq -r .snapshot <<<"$o")" = "null" ]
        # HLCs are printed exactly (beyond 2^53).
        [[ $(jq -c '.ops[0]' <<<"$o") =~ \"hlc\":[0-9]+[,}] ]]
    done
    run --separate-stderr mm oplog
    assert_success
    [[ ${lines[0]} =~ ^origin\ [0-9a-f]{32}\ \(n[12]\)\ generation\ [0-9]+,\ head\ 4$ ]]
    [[ ${lines[1]} =~ ^\ +1\ +register\ +[a-z]+/n[12]\ +type=[a-z]+\ +visibility=internal$ ]]
}

@test "oplog --origin filters by id prefix; an unknown origin exits 3" {
    start_cluster 1
    id=$(mm members --json | jq -r '.members[0].id')
    run --separate-stderr mm oplog --json --origin "${id:0:6}"
    assert_success
    [ "$(jq '.origins | length' <<<"$output")" -eq 1 ]
    [ "$(jq -r '.origins[0].origin' <<<"$output")" = "$id" ]
    other=0000000000000000
    [ "${id:0:16}" != "$other" ]
    run --separate-stderr mm oplog --origin "$other"
    assert_failure 3
    [ "$stderr" = "murmer oplog: no origin '$other'" ]
}

@test "oplog --follow prints the ops of a node that joins later" {
    start_cluster 1
    out="$BATS_TEST_TMPDIR/follow.out"
    err="$BATS_TEST_TMPDIR/follow.err"
    mm -v oplog --follow --json >"$out" 2>"$err" &
    fpid=$!
    echo "follow $fpid" >>"$NODE_PIDS_FILE" # killed by teardown if stuck
    wait_for "grep -q 'client: connected to n1' '$err'" 20 || { cat "$err"; false; }
    port=$(free_port)
    start_node late --listen "127.0.0.1:$port" --join "$SEED" \
        --cluster-key "$KEY" --data-dir "$BATS_TEST_TMPDIR/data-late" \
        --actor 'late/1=counter'
    wait_for "grep -q '\"label\":\"late/1\"' '$out'" 20 || { cat "$out" "$err"; false; }
    kill "$fpid"
    line=$(grep '"label":"late/1"' "$out" | head -1)
    [ "$(jq -r .schema <<<"$line")" = "murmer.oplog-op/1" ]
    [ "$(jq -r .op <<<"$line")" = "register" ]
    [ "$(jq -r .type <<<"$line")" = "counter" ]
    [ "$(jq .seq <<<"$line")" -eq 1 ]
}

@test "force-leave: an unknown node exits 3; a stopped node is marked left" {
    start_cluster 2
    wait_for '[ "$(alive_count)" -eq 2 ]' 20
    run --separate-stderr mm force-leave nosuchnode
    assert_failure 3
    [ "$stderr" = "murmer force-leave: no member 'nosuchnode'" ]
    stop_node n2 KILL 10
    # Only once the seed no longer sees it alive (suspect, then failed).
    wait_for '[ "$(mm members --json | jq -r ".members[] | select(.name == \"n2\") | .state")" != alive ]' 30
    run --separate-stderr mm force-leave --json n2
    assert_success
    [ "$(jq -r .schema <<<"$output")" = "murmer.force-leave/1" ]
    [ "$(jq -r .name <<<"$output")" = "n2" ]
    [ "$(jq -r .state <<<"$output")" = "left" ]
    wait_for '[ "$(mm members --json | jq -r ".members[] | select(.name == \"n2\") | .state")" = left ]' 10
}

# n3_state_on I: n3's state as node nI sees it.
n3_state_on()
{
    local port
    port=$(eval echo "\$PORT_$1")
    timeout 30 murmer --join "127.0.0.1:$port" --cluster-key "$KEY" members --json |
        jq -r '.members[] | select(.name == "n3") | .state'
}

@test "force-leave: an alive member is refused (exit 1, 'alive'), by name and by id; calls to its actors keep working" {
    start_cluster 3
    for i in 1 2 3; do
        wait_for "[ \"\$(n3_state_on $i)\" = alive ]" 20
    done
    wait_for 'mm lookup counter/n3' 20
    id=$(mm members --json | jq -r '.members[] | select(.name == "n3") | .id')
    for who in n3 "$id"; do
        run --separate-stderr mm force-leave "$who"
        assert_failure 1
        [ "$stderr" = "murmer force-leave: '$who' is alive: force-leave is only for a suspect or failed member (stop the node to make it leave)" ]
        [ -z "$output" ]
    done
    run --separate-stderr mm force-leave --json n3
    assert_failure 1
    # Nothing changed: n3 is alive on every node, its actors answer at once.
    for i in 1 2 3; do
        [ "$(n3_state_on $i)" = alive ]
    done
    for ((k = 1; k <= 5; k++)); do
        run --separate-stderr mm send counter/n3 increment 1
        assert_success
        [ "$output" = "$k" ]
    done
}
