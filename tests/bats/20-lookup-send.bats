#!/usr/bin/env bats
# 20-lookup-send: client sessions against a real 3-node cluster: members,
# lookup, send (local and forwarded), and every documented exit code.

load 'helpers/cluster'

setup()
{
    murmer_setup
}

@test "members --json: exactly the 3 nodes, all alive, never the CLI" {
    start_cluster 3
    wait_for '[ "$(alive_count)" -eq 3 ]' 20 || { mm members; false; }
    run --separate-stderr mm members --json
    assert_success
    [ "$(jq -r .schema <<<"$output")" = "murmer.members/1" ]
    [ "$(jq '.members | length' <<<"$output")" -eq 3 ]
    [ "$(jq -r '[.members[].name] | sort | join(",")' <<<"$output")" = "n1,n2,n3" ]
    [ "$(jq -r '[.members[].state] | unique | join(",")' <<<"$output")" = "alive" ]
    # Every field of the schema, with the node's real address.
    [ "$(jq -r '.members[] | select(.name == "n1") | .addr' <<<"$output")" = "$SEED" ]
    jq -e '.members[] | (.id | test("^[0-9a-f]{32}$")) and (.generation >= 1)
        and (.incarnation >= 0) and (.tags | type == "object")' <<<"$output" >/dev/null
    [ -z "$stderr" ]
}

@test "members --wait 3 exits 0; --wait 4 --timeout 1s exits 4" {
    start_cluster 3
    run --separate-stderr mm --timeout 20s members --wait 3
    assert_success
    [ "$(grep -c alive <<<"$output")" -eq 3 ]
    run --separate-stderr mm --timeout 1s members --wait 4
    assert_failure 4
    [[ $stderr == "murmer members: "*"of 4 members alive after 1000 ms" ]]
}

@test "send counter/<node> increment 5 prints 5, locally and forwarded" {
    start_cluster 3
    run --separate-stderr mm send counter/n1 increment 5
    assert_success
    [ "$output" = "5" ]
    # counter/n3 lives on n3: the seed forwards the call.
    wait_for 'mm lookup counter/n3' 20
    run --separate-stderr mm send counter/n3 increment 5
    assert_success
    [ "$output" = "5" ]
    run --separate-stderr mm send counter/n3 increment 2 --json
    assert_success
    [ "$(jq -r .schema <<<"$output")" = "murmer.send/1" ]
    [ "$(jq .reply <<<"$output")" -eq 7 ]
    [ "$(jq -r .status <<<"$output")" = "ok" ]
    # The payload may come from stdin.
    run --separate-stderr bash -c "echo '\"hi\"' | timeout 20 murmer --join $SEED --cluster-key $KEY send greeter/n2 greet -"
    assert_success
    [ "$output" = '"Hello, hi!"' ]
}

@test "send: malformed JSON exits 6 with the byte offset" {
    start_cluster 1
    run --separate-stderr mm send counter/n1 increment '{"a" 1}'
    assert_failure 6
    [ "$stderr" = "murmer send: malformed JSON at byte 5" ]
    [ -z "$output" ]
}

@test "send: unknown label exits 3, unknown message exits 3" {
    start_cluster 1
    run --separate-stderr mm send nosuch/x increment 1
    assert_failure 3
    [ "$stderr" = "murmer send: nosuch/x: not_found: no actor with label 'nosuch/x'" ]
    run --separate-stderr mm send counter/n1 frobnicate 1
    assert_failure 3
    [ "$stderr" = "murmer send: counter/n1: unknown_message: unknown message 'frobnicate'" ]
    run --separate-stderr mm lookup nosuch/x
    assert_failure 3
    [ "$stderr" = "murmer lookup: no actor with label 'nosuch/x'" ]
}

@test "an unreachable seed exits 4 within the timeout" {
    murmer keygen "$BATS_TEST_TMPDIR/k"
    port=$(free_port) # nobody listens there
    t0=$(date +%s%N)
    run --separate-stderr timeout 20 murmer --join "127.0.0.1:$port" \
        --cluster-key "$BATS_TEST_TMPDIR/k" --timeout 1s members
    assert_failure 4
    [ "$stderr" = "murmer members: no answer from seed 127.0.0.1:$port" ]
    [ $((($(date +%s%N) - t0) / 1000000)) -lt 10000 ]
    run --separate-stderr timeout 20 murmer --join "127.0.0.1:$port" \
        --cluster-key "$BATS_TEST_TMPDIR/k" --timeout 1s send echo/x echo 1
    assert_failure 4
}

@test "a wrong cluster key exits 5" {
    start_cluster 1
    murmer keygen "$BATS_TEST_TMPDIR/other.key"
    run --separate-stderr timeout 20 murmer --join "$SEED" \
        --cluster-key "$BATS_TEST_TMPDIR/other.key" members
    assert_failure 5
    [[ $stderr == "murmer members: seed $SEED refused the cluster key"* ]]
    [ "$(wc -l <<<"$stderr")" -eq 1 ]
}

@test "a cluster key file with mode 0644 exits 5" {
    start_cluster 1
    cp "$KEY" "$BATS_TEST_TMPDIR/loose.key"
    chmod 0644 "$BATS_TEST_TMPDIR/loose.key"
    run --separate-stderr timeout 20 murmer --join "$SEED" \
        --cluster-key "$BATS_TEST_TMPDIR/loose.key" members
    assert_failure 5
    [[ $stderr == "murmer members: cluster key file $BATS_TEST_TMPDIR/loose.key is accessible by group or others (mode 644)"* ]]
    [ "$(wc -l <<<"$stderr")" -eq 1 ]
    run --separate-stderr timeout 20 murmer --join "$SEED" \
        --cluster-key "$BATS_TEST_TMPDIR/missing.key" members
    assert_failure 5
}

@test "lookup --wait resolves an actor registered after it started" {
    start_cluster 1
    out="$BATS_TEST_TMPDIR/lookup.out"
    err="$BATS_TEST_TMPDIR/lookup.err"
    mm -v lookup --wait 20s --json late/1 >"$out" 2>"$err" &
    lpid=$!
    # Start the owner only once the lookup is connected (and its request
    # on the way); the label does not exist before.
    wait_for "grep -q 'client: connected to n1' '$err'" 20 || { cat "$err"; false; }
    port=$(free_port)
    start_node late --listen "127.0.0.1:$port" --join "$SEED" \
        --cluster-key "$KEY" --data-dir "$BATS_TEST_TMPDIR/data-late" \
        --actor 'late/1=counter'
    rc=0
    wait "$lpid" || rc=$?
    cat "$out" "$err"
    [ "$rc" -eq 0 ]
    [ "$(jq -r '.actors[0].label' "$out")" = "late/1" ]
    [ "$(jq -r '.actors[0].type' "$out")" = "counter" ]
    [ "$(jq -r '.actors[0].node' "$out")" = "late" ]
}

@test "lookup --wait gives up with exit 3" {
    start_cluster 1
    run --separate-stderr mm lookup --wait 300ms never/1
    assert_failure 3
    [[ $stderr == "murmer lookup: no actor with label 'never/1'"* ]]
}

@test "lookup --prefix lists the cluster's actors with their nodes" {
    start_cluster 3
    wait_for '[ "$(mm lookup --prefix counter/ --json | jq ".actors | length")" -eq 3 ]' 20
    run --separate-stderr mm lookup --prefix counter/
    assert_success
    [ "${lines[0]}" = "LABEL       TYPE     NODE  KEYS  ENDPOINT" ]
    [[ ${lines[1]} == "counter/n1  counter  n1    -     "* ]]
    [[ ${lines[3]} == "counter/n3  counter  n3    -     "* ]]
}

@test "send --key with no actor under the key exits 3" {
    start_cluster 1
    run --separate-stderr mm send --key nobody ping
    assert_failure 3
    [ "$stderr" = "murmer send: no actor checked in under key 'nobody'" ]
}

@test "bash completion offers actor labels from the running cluster" {
    start_cluster 2
    wait_for 'mm lookup counter/n2' 20
    source /usr/share/bash-completion/bash_completion
    source "$MURMER_SRC/completions/murmer.bash"
    local line="murmer --join $SEED --cluster-key $KEY send counter/"
    COMP_LINE=$line
    COMP_POINT=${#COMP_LINE}
    read -r -a COMP_WORDS <<<"$COMP_LINE"
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _murmer murmer "counter/" "send"
    [ "${COMPREPLY[*]}" = "counter/n1 counter/n2" ] || fail "got: ${COMPREPLY[*]}"
    # A dead seed costs at most the short timeout and offers nothing.
    line="murmer --join 127.0.0.1:$(free_port) send counter/"
    COMP_LINE=$line
    COMP_POINT=${#COMP_LINE}
    read -r -a COMP_WORDS <<<"$COMP_LINE"
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    local t0=$SECONDS
    _murmer murmer "counter/" "send"
    [ "${#COMPREPLY[@]}" -eq 0 ]
    [ $((SECONDS - t0)) -le 3 ]
}
