#!/usr/bin/env bats
# 37-keys: `murmer keys` rotates the cluster key on every member while calls
# keep flowing; each step reports how many members applied it; the keyring
# is saved in each data dir and survives a restart; only the cluster key may
# change keys.

load 'helpers/cluster'

setup()
{
    murmer_setup
}

# mmk KEYFILE ARGS...: the CLI against the cluster with another key.
mmk()
{
    local k=$1
    shift
    timeout 30 murmer --join "$SEED" --cluster-key "$k" "$@"
}


@test "keys: rotate a 3-node cluster under a loop of sends; K1 then refused, K2 kept across a restart" {
    start_cluster 3
    wait_for '[ "$(alive_count)" = 3 ]' 20
    K1=$KEY
    K2="$BATS_TEST_TMPDIR/k2.key"
    murmer keygen "$K2"

    run --separate-stderr mm keys list --json
    assert_success
    [ "$(jq '.keys | length' <<<"$output")" = 1 ]
    [ "$(jq -r '"\(.applied)/\(.total)"' <<<"$output")" = 3/3 ]
    fp1=$(jq -r '.keys[0].fingerprint' <<<"$output")
    [ "$(jq '.keys[0].members' <<<"$output")" = 3 ]
    [ "$(jq '.keys[0].primary' <<<"$output")" = 3 ]

    run --separate-stderr mm keys install "$K2"
    assert_success
    [[ $output =~ ^install\ [0-9a-f]{16}:\ applied\ on\ 3/3\ members$ ]]
    fp2=$(awk '{ print $2 }' <<<"$output")
    fp2=${fp2%:}
    [ "$fp2" != "$fp1" ]
    # The key itself never shows, only its fingerprint.
    ! grep -qF "$(cat "$K2")" <<<"$output$stderr"

    # Two bounded loops of sends while the rotation goes on, every call's
    # status recorded: with K2 (installed everywhere) through use and
    # remove, with K1 through use until just before remove (while it is
    # still installed).  Each stops at its stop file or after 200 sends.
    # send_loop KEYFILE NAME: statuses in NAME.st, stops at NAME.stop.
    send_loop()
    {
        local k=$1 st="$BATS_TEST_TMPDIR/$2.st" stop="$BATS_TEST_TMPDIR/$2.stop"
        local n rc
        : >"$st"
        for ((n = 0; n < 200; n++)); do
            [ -e "$stop" ] && break
            rc=0
            timeout 20 murmer --join "$SEED" --cluster-key "$k" \
                send counter/n$((n % 3 + 1)) increment 1 >/dev/null 2>&1 ||
                rc=$?
            echo $rc >>"$st"
        done
    }
    sends() { wc -l <"$BATS_TEST_TMPDIR/$1.st"; }
    send_loop "$K2" k2 &
    loop2=$!
    send_loop "$K1" k1 &
    loop1=$!

    wait_for '[ "$(sends k1)" -ge 10 ] && [ "$(sends k2)" -ge 10 ]' 60
    run --separate-stderr mm keys use "$K2"
    assert_success
    [ "$output" = "use $fp2: applied on 3/3 members" ]

    n1=$(sends k1)
    wait_for "[ \$(sends k1) -ge $((n1 + 10)) ]" 60
    touch "$BATS_TEST_TMPDIR/k1.stop"
    wait "$loop1"
    # The primary cannot be removed.
    run --separate-stderr mmk "$K2" keys remove "$K2"
    assert_failure 2
    [[ $stderr == *"key $fp2 is the primary key: removing it is refused"* ]]
    n2=$(sends k2)
    run --separate-stderr mmk "$K2" keys remove "$K1"
    assert_success
    [ "$output" = "remove $fp1: applied on 3/3 members" ]
    # The K2 loop went on during the steps and after the removal.
    [ "$n2" -lt 200 ]
    wait_for "[ \$(sends k2) -ge $((n2 + 10)) ] || [ \$(sends k2) = 200 ]" 60
    touch "$BATS_TEST_TMPDIR/k2.stop"
    wait "$loop2"
    # No call made with an installed key failed.
    [ "$(sends k1)" -ge 20 ]
    [ "$(sends k2)" -ge 20 ]
    [ "$(grep -vc '^0$' "$BATS_TEST_TMPDIR/k1.st")" = 0 ]
    [ "$(grep -vc '^0$' "$BATS_TEST_TMPDIR/k2.st")" = 0 ]

    # The removed key is refused; K2 works.
    run --separate-stderr mmk "$K1" members
    assert_failure 5
    run --separate-stderr mmk "$K2" keys list --json
    assert_success
    [ "$(jq -c '[.keys[] | [.fingerprint, .members, .primary]]' <<<"$output")" = "[[\"$fp2\",3,3]]" ]

    # Saved in every data dir, mode 0600, one line: K2.
    for n in n1 n2 n3; do
        f="$BATS_TEST_TMPDIR/data-$n/keyring"
        [ "$(stat -c %a "$f")" = 600 ]
        [ "$(cat "$f")" = "$(cat "$K2")" ]
    done

    # n3 restarted with its old --cluster-key K1 keeps K2 (the saved
    # keyring wins) and rejoins.
    stop_node n3
    start_node n3 --listen "127.0.0.1:$PORT_3" --join "$SEED" \
        --cluster-key "$K1" --data-dir "$BATS_TEST_TMPDIR/data-n3" --demo
    wait_for "grep -q 'listening on' '$(node_log n3)'" 20
    grep -q 'not in the keyring saved' "$(node_log n3)"
    wait_for "timeout 10 murmer --join 127.0.0.1:$PORT_3 --cluster-key '$K2' send counter/n3 increment 1" 20
    run --separate-stderr timeout 10 murmer --join "127.0.0.1:$PORT_3" \
        --cluster-key "$K1" members
    assert_failure 5
    # Gossip is sealed with K2 both ways: n3 and the others see 3 alive.
    KEY=$K2
    wait_for '[ "$(alive_count)" = 3 ]' 20
    SEED="127.0.0.1:$PORT_3"
    wait_for '[ "$(alive_count)" = 3 ]' 20
    # Client keys follow: derived from K2 accepted, from K1 refused.
    murmer --cluster-key "$K2" keygen --client "$BATS_TEST_TMPDIR/c2.key"
    murmer --cluster-key "$K1" keygen --client "$BATS_TEST_TMPDIR/c1.key"
    run --separate-stderr mmk "$BATS_TEST_TMPDIR/c2.key" members
    assert_success
    run --separate-stderr mmk "$BATS_TEST_TMPDIR/c1.key" members
    assert_failure 5
}

@test "keys: a member down: the step reports 2/3 and exits 1" {
    start_cluster 3
    wait_for '[ "$(alive_count)" = 3 ]' 20
    K2="$BATS_TEST_TMPDIR/k2.key"
    murmer keygen "$K2"
    stop_node n3 KILL
    run --separate-stderr mm keys install "$K2"
    assert_failure 1
    [[ $output =~ applied\ on\ 2/3\ members$ ]]
    [[ $stderr == *"murmer keys: n3: not applied: "* ]]
    run --separate-stderr mm keys list --json
    assert_failure 1
    [ "$(jq -r '"\(.applied)/\(.total)"' <<<"$output")" = 2/3 ]
    [ "$(jq '.keys | length' <<<"$output")" = 2 ]
    [ "$(jq -r '.failed[0].node' <<<"$output")" = n3 ]
}

@test "keys: a client key is unauthorized; bad files, unknown actions and a full keyring are refused" {
    start_cluster 1
    CLIENT="$BATS_TEST_TMPDIR/client.key"
    murmer --cluster-key "$KEY" keygen --client "$CLIENT"
    K2="$BATS_TEST_TMPDIR/k2.key"
    murmer keygen "$K2"
    run --separate-stderr mmk "$CLIENT" keys install "$K2"
    assert_failure 5
    [ "$stderr" = "murmer keys: keys needs the cluster key (this session holds a client key)" ]
    run --separate-stderr mmk "$CLIENT" keys list
    assert_failure 5

    run --separate-stderr mm keys rotate "$K2"
    assert_failure 2
    [[ $stderr == *"unknown action 'rotate'"* ]]
    run --separate-stderr mm keys install
    assert_failure 2
    printf 'not a key\n' >"$BATS_TEST_TMPDIR/bad.key"
    chmod 600 "$BATS_TEST_TMPDIR/bad.key"
    run --separate-stderr mm keys install "$BATS_TEST_TMPDIR/bad.key"
    assert_failure 5
    [[ $stderr == *"malformed cluster key"* ]]
    run --separate-stderr mm keys install "$CLIENT"
    assert_failure 5
    [[ $stderr == *"holds a client key"* ]]
    run --separate-stderr mm keys use "$K2"
    assert_failure 1
    [[ $stderr == *"is not installed: install it first"* ]]

    # At most 8 keys: the 9th install is refused, nothing changes.
    local k
    for k in 2 3 4 5 6 7 8; do
        murmer keygen "$BATS_TEST_TMPDIR/k$k.x"
        mm keys install "$BATS_TEST_TMPDIR/k$k.x" >/dev/null
    done
    murmer keygen "$BATS_TEST_TMPDIR/k9.x"
    run --separate-stderr mm keys install "$BATS_TEST_TMPDIR/k9.x"
    assert_failure 1
    [[ $output == *"applied on 0/1 members" ]]
    [[ $stderr == *"keyring full (at most 8 keys)"* ]]
    [ "$(wc -l <"$BATS_TEST_TMPDIR/data-n1/keyring")" = 8 ]
}

@test "keys: a corrupt saved keyring stops the node with a clear error" {
    start_cluster 1
    K2="$BATS_TEST_TMPDIR/k2.key"
    murmer keygen "$K2"
    run --separate-stderr mm keys install "$K2"
    assert_success
    stop_node n1
    printf 'garbage\n' >"$BATS_TEST_TMPDIR/data-n1/keyring"
    run timeout 20 murmer start --name n1 --listen "$SEED" --cluster-key "$KEY" \
        --data-dir "$BATS_TEST_TMPDIR/data-n1"
    assert_failure 5
    [[ $output == *"saved keyring refused"*"malformed cluster key"*"remove the file to start from --cluster-key"* ]]
}

@test "keys: a silent member counts as not applied after the bounded wait; 4 steps at once, the 5th overloaded" {
    start_cluster 2
    wait_for '[ "$(alive_count)" = 2 ]' 20
    # n2 stopped (not dead): still a member, it answers nothing.
    kill -STOP "$(node_pid n2)"
    local j
    for j in 1 2 3 4 5; do
        (
            rc=0
            mm keys list >"$BATS_TEST_TMPDIR/l$j.out" \
                2>"$BATS_TEST_TMPDIR/l$j.err" || rc=$?
            echo $rc >"$BATS_TEST_TMPDIR/l$j.rc"
        ) &
    done
    wait_for 'ls "$BATS_TEST_TMPDIR"/l?.rc 2>/dev/null | wc -l | grep -qx 5' 30
    kill -CONT "$(node_pid n2)"
    cat "$BATS_TEST_TMPDIR"/l?.rc | sort | tr '\n' ' ' >"$BATS_TEST_TMPDIR/rcs"
    # Four waited for n2 (3 s) and report 1/2; the fifth was refused.
    [ "$(cat "$BATS_TEST_TMPDIR/rcs")" = "1 1 1 1 4 " ]
    grep -q 'overloaded: 4 key steps under way' "$BATS_TEST_TMPDIR"/l?.err
    [ "$(grep -l 'applied on 1/2 members' "$BATS_TEST_TMPDIR"/l?.out | wc -l)" = 4 ]
    [ "$(grep -l 'n2: not applied: no answer in time' "$BATS_TEST_TMPDIR"/l?.err | wc -l)" = 4 ]
}
