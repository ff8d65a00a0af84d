#!/usr/bin/env bats
# 24-send-bulk: `murmer send --stdin LABEL` against a real 2-node cluster:
# JSON Lines in, one JSON line out per input line, in input order, over one
# connection with a bounded window of calls in flight.

load 'helpers/cluster'

setup()
{
    murmer_setup
}

@test "send --stdin: 2000 increments to an actor on another node, answered in order" {
    start_cluster 2
    wait_for 'mm lookup counter/n2' 20
    seq 2000 | sed 's/.*/{"message":"increment","payload":1}/' >"$BATS_TEST_TMPDIR/in"
    run --separate-stderr mm send --stdin --window 32 counter/n2 <"$BATS_TEST_TMPDIR/in"
    assert_success
    [ -z "$stderr" ]
    [ "$(wc -l <<<"$output")" -eq 2000 ]
    # The counter counts them one by one: line k answers k.
    [ "$(jq -r .ok <<<"$output" | tr '\n' ' ')" = "$(seq -s ' ' 2000) " ]
}

@test "send --stdin: bad lines keep their place, exit 1, one line on stderr" {
    start_cluster 1
    printf '%s\n' '{"message":"increment","payload":2}' '{"message":' \
        '' '{"payload":1}' '{"message":"nosuch"}' '{"message":"increment"}' \
        >"$BATS_TEST_TMPDIR/in"
    run --separate-stderr mm send --stdin counter/n1 <"$BATS_TEST_TMPDIR/in"
    assert_failure 1
    [ "$(wc -l <<<"$output")" -eq 5 ] # the blank line is skipped
    [ "$(sed -n 1p <<<"$output" | jq .ok)" -eq 2 ]
    [ "$(sed -n 2p <<<"$output" | jq -r .error)" = "invalid" ]
    [[ "$(sed -n 2p <<<"$output" | jq -r .detail)" == "line 2: malformed JSON at byte "* ]]
    [[ "$(sed -n 3p <<<"$output" | jq -r .detail)" == "line 4: expected "* ]]
    [ "$(sed -n 4p <<<"$output" | jq -r .error)" = "unknown_message" ]
    # A missing payload is null: increment by the default step.
    [ "$(sed -n 5p <<<"$output" | jq .ok)" -eq 3 ]
    [ "$stderr" = "murmer send: 3 of 5 messages failed" ]
}

@test "send --stdin: usage errors exit 2; an unknown label answers every line" {
    start_cluster 1
    run --separate-stderr mm send --stdin --key k counter/n1 </dev/null
    assert_failure 2
    run --separate-stderr mm send --stdin --window 0 counter/n1 </dev/null
    assert_failure 2
    [ "$stderr" = "murmer send: --window must be 1 to 1024, not 0" ]
    run --separate-stderr mm send --stdin </dev/null
    assert_failure 2
    printf '{"message":"increment"}\n%.0s' 1 2 3 >"$BATS_TEST_TMPDIR/in"
    run --separate-stderr mm send --stdin nosuch/label <"$BATS_TEST_TMPDIR/in"
    assert_failure 1
    [ "$(jq -r .error <<<"$output" | sort -u)" = "not_found" ]
    [ "$(wc -l <<<"$output")" -eq 3 ]
    # Empty input: nothing to do.
    run --separate-stderr mm send --stdin counter/n1 </dev/null
    assert_success
    [ -z "$output" ]
}
