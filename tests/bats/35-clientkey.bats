#!/usr/bin/env bats
# 35-clientkey: `murmer keygen --client [--read-only]` derives a key that
# lets scripts use the cluster (members, lookup, watch, oplog, send) but
# not act as a member: member frames and force-leave are refused, and a
# read-only key cannot send.

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

# client_keys: the cluster key $KEY and the client keys derived from it
# ($CLIENT, $RO).
client_keys()
{
    CLIENT="$BATS_TEST_TMPDIR/client.key"
    RO="$BATS_TEST_TMPDIR/ro.key"
    murmer --cluster-key "$KEY" keygen --client "$CLIENT"
    murmer --cluster-key "$KEY" keygen --client --read-only "$RO"
}

@test "keygen --client: a client: line, mode 0600, derived (same key twice), not the cluster key" {
    KEY="$BATS_TEST_TMPDIR/cluster.key"
    murmer keygen "$KEY"
    run --separate-stderr murmer --cluster-key "$KEY" keygen --client
    assert_success
    [[ $output =~ ^client:[A-Za-z0-9+/]{43}=$ ]]
    [ "$output" = "$(murmer --cluster-key "$KEY" keygen --client)" ]
    [ "${output#client:}" != "$(cat "$KEY")" ]
    f="$BATS_TEST_TMPDIR/c.key"
    MURMER_CLUSTER_KEY_FILE="$KEY" murmer keygen --client "$f"
    [ "$(stat -c %a "$f")" = 600 ]
    [ "$(cat "$f")" = "$output" ]
    # Read-only: from the cluster key or from the client key, the same.
    ro=$(murmer --cluster-key "$KEY" keygen --read-only)
    [[ $ro =~ ^read-only:[A-Za-z0-9+/]{43}=$ ]]
    [ "$ro" = "$(murmer --cluster-key "$f" keygen --read-only)" ]
}

@test "keygen --client refusals: no cluster key, nothing to derive; a node refuses a client key" {
    KEY="$BATS_TEST_TMPDIR/cluster.key"
    murmer keygen "$KEY"
    client_keys
    run --separate-stderr murmer keygen --client
    assert_failure 2
    [ "$stderr" = "murmer keygen: no cluster key given (--cluster-key FILE or MURMER_CLUSTER_KEY_FILE)" ]
    run --separate-stderr murmer --cluster-key "$CLIENT" keygen --client
    assert_failure 2
    [ "$stderr" = "murmer keygen: the key given is a client key: it derives no client key" ]
    run --separate-stderr murmer --cluster-key "$RO" keygen --read-only
    assert_failure 2
    run --separate-stderr timeout 20 murmer --cluster-key "$CLIENT" start \
        --name x --listen 127.0.0.1:0 --data-dir "$BATS_TEST_TMPDIR/dx"
    assert_failure 5
    [[ $stderr == *"a client key cannot start a node: give the cluster key"* ]]
}

@test "a client key: members, lookup, watch, oplog and send work" {
    start_cluster 2
    client_keys
    wait_for '[ "$(alive_count)" -eq 2 ]' 20
    run --separate-stderr mmk "$CLIENT" members --json
    assert_success
    [ "$(jq '.members | length' <<<"$output")" -eq 2 ]
    run --separate-stderr mmk "$CLIENT" lookup counter/n2
    assert_success
    [[ $output == *counter/n2* ]]
    run --separate-stderr mmk "$CLIENT" --timeout 1s watch --json --prefix counter/
    assert_success
    [ "$(jq -r .schema <<<"${lines[0]}")" = "murmer.watch/1" ]
    [[ $output == *'"synced"'* ]]
    run --separate-stderr mmk "$CLIENT" oplog --json
    assert_success
    [ "$(jq '.origins | length' <<<"$output")" -eq 2 ]
    run --separate-stderr mmk "$CLIENT" send counter/n2 increment 5
    assert_success
    [ "$output" = "5" ]
    # The cluster key still works for the CLI.
    run --separate-stderr mm send counter/n2 increment 1
    assert_success
    [ "$output" = "6" ]
}

@test "a client or read-only key cannot force-leave (exit 5)" {
    start_cluster 2
    client_keys
    wait_for '[ "$(alive_count)" -eq 2 ]' 20
    for k in "$CLIENT" "$RO"; do
        run --separate-stderr mmk "$k" force-leave n2
        assert_failure 5
        kind=client
        [ "$k" = "$RO" ] && kind=read-only
        [ "$stderr" = "murmer force-leave: force-leave needs the cluster key (this session holds a $kind key)" ]
    done
    # n2 was not touched.
    [ "$(alive_count)" -eq 2 ]
}

@test "a read-only key: send refused (exit 5, one line); members, lookup, oplog work" {
    start_cluster 1
    client_keys
    run --separate-stderr mmk "$RO" send counter/n1 increment 5
    assert_failure 5
    [ "$stderr" = "murmer send: counter/n1: unauthorized: a read-only client key cannot send" ]
    [ -z "$output" ]
    run --separate-stderr mmk "$RO" members
    assert_success
    [[ $output == *n1* ]]
    run --separate-stderr mmk "$RO" lookup counter/n1
    assert_success
    run --separate-stderr mmk "$RO" oplog
    assert_success
    # Nothing was sent: the counter is still at 0.
    run --separate-stderr mm send counter/n1 increment 1
    assert_success
    [ "$output" = "1" ]
}

@test "member frames from a client close its connection; a client key cannot claim the member role" {
    HOSTILE="$MURMER_BUILD/hostile/mm-hostile"
    [ -x "$HOSTILE" ] || skip "mm-hostile not built (make hostile)"
    start_cluster 1
    client_keys
    for f in 0x30 0x40; do
        run timeout 20 "$HOSTILE" member-frames --seed "$SEED" --key "$CLIENT" --frame "$f" --hold 3
        assert_success
        [ "$output" = "member-frames: auth as client: ok; frame $f sent; conn=unauthorized" ]
    done
    # The cluster key in the client role is a client too.
    run timeout 20 "$HOSTILE" member-frames --seed "$SEED" --key "$KEY" --hold 3
    [ "$output" = "member-frames: auth as client: ok; frame 0x30 sent; conn=unauthorized" ]
    [ "$(grep -c 'a client sent a member frame' "$(node_log n1)")" -eq 3 ]
    for k in "$CLIENT" "$RO"; do
        run timeout 20 "$HOSTILE" member-frames --seed "$SEED" --key "$k" --role member
        assert_success
        [ "$output" = "member-frames: auth as member: unauthorized" ]
    done
    [ "$(grep -c 'a client key claims the member role' "$(node_log n1)")" -eq 2 ]
    # The node serves on.
    run --separate-stderr mmk "$CLIENT" send counter/n1 increment 2
    assert_success
    [ "$output" = "2" ]
}
