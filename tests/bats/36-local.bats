#!/usr/bin/env bats
# 36-local: the node's local control socket (DATA_DIR/murmer.sock) and the
# front `murmer` that uses it: the same output as over QUIC, no TLS or QUIC
# library loaded, permissions and SO_PEERCRED, the socket's life, the
# default location, and its bounds (connections, frame size, a client that
# does not read).

load 'helpers/cluster'

setup()
{
    murmer_setup
    unset MURMER_DATA_DIR
    command -v jq >/dev/null || skip "jq is not installed"
    PEER="$BATS_TEST_DIRNAME/helpers/local_peer.py"
}

# local ARGS...: the CLI over n1's local socket, bounded.
local_mm()
{
    timeout 30 murmer --data-dir "$BATS_TEST_TMPDIR/data-n1" "$@"
}

# A 3-node cluster whose n1 lists all three alive (asked over QUIC).
three_alive()
{
    start_cluster 3 --no-mdns
    wait_for '[ "$(alive_count)" -eq 3 ]' 20
    wait_for "[ -S '$BATS_TEST_TMPDIR/data-n1/murmer.sock' ]" 10
}

@test "local: members and lookup print the same bytes as over QUIC" {
    three_alive
    wait_for '[ "$(mm lookup --json | jq ".actors | length")" -ge 12 ]' 20
    for args in "members" "members --json" "members --status alive --tag x=y" \
        "lookup" "lookup --json" "lookup echo/n2" "lookup --prefix kv/" \
        "oplog --json"; do
        run --separate-stderr mm $args
        assert_success
        remote=$output
        # No --join and no key: only the local socket can answer.
        run --separate-stderr local_mm $args
        assert_success
        [ "$output" = "$remote" ] || { echo "$args differs:"; diff <(echo "$remote") <(echo "$output"); false; }
    done
    # Errors come back the same way too.
    run --separate-stderr local_mm lookup nobody/here
    assert_failure 3
    run --separate-stderr mm lookup nobody/here
    assert_failure 3
}

@test "local: the local path maps no TLS or QUIC library; the remote one does (and no libcrypto)" {
    three_alive
    run ldd "$MURMER_BUILD/murmer"
    assert_success
    refute_output --partial gnutls
    refute_output --partial ngtcp2
    run --separate-stderr env LD_DEBUG=libs timeout 30 murmer \
        --data-dir "$BATS_TEST_TMPDIR/data-n1" members
    assert_success
    [[ $stderr != *libgnutls* && $stderr != *libngtcp2* ]] || { echo "$stderr" | grep -E 'gnutls|ngtcp2'; false; }
    # The check can see them: the remote path loads both.
    run --separate-stderr env LD_DEBUG=libs timeout 30 murmer \
        --join "$SEED" --cluster-key "$KEY" members
    assert_success
    [[ $stderr == *libgnutls* && $stderr == *libngtcp2* ]]
    # One crypto stack: GnuTLS's nettle, never OpenSSL's libcrypto too.
    [[ $stderr == *libnettle* && $stderr != *libcrypto.so* ]] || { echo "$stderr" | grep -E 'nettle|libcrypto'; false; }
    run ldd "$MURMER_BUILD/libmurmer.so"
    assert_success
    refute_output --partial libcrypto
}

@test "local: socket 0600 in the data dir, a stale one replaced, none after stop" {
    dir="$BATS_TEST_TMPDIR/data-n1"
    mkdir -p "$dir"
    chmod 0700 "$dir"
    # A stale socket from a node that died: nobody listens on it.
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])' "$dir/murmer.sock"
    [ -S "$dir/murmer.sock" ]
    run --separate-stderr murmer --data-dir "$dir" members
    assert_failure 4
    [[ $stderr == "murmer members: no node is running with data dir $dir"* ]]
    three_alive
    run stat -c %a "$dir/murmer.sock"
    assert_output 600
    run --separate-stderr local_mm members --json
    assert_success
    [ "$(jq '.members | length' <<<"$output")" -eq 3 ]
    stop_node n1 TERM 10
    [ ! -e "$dir/murmer.sock" ]
    [ ! -e "$dir/.murmer.sock.new" ]
    run --separate-stderr murmer --data-dir "$dir" members
    assert_failure 4
    [[ $stderr == *"murmer.sock: No such file or directory)" ]]
}

@test "local: precedence: --join over --data-dir; MURMER_DATA_DIR; the default location" {
    three_alive
    # --join wins: a seed that is not there, even with a working socket.
    port=$(free_port)
    run --separate-stderr timeout 20 murmer --data-dir "$BATS_TEST_TMPDIR/data-n1" \
        --join "127.0.0.1:$port" --timeout 500ms members
    assert_failure 4
    MURMER_DATA_DIR="$BATS_TEST_TMPDIR/data-n1" run --separate-stderr timeout 20 murmer members --json
    assert_success
    [ "$(jq '.members | length' <<<"$output")" -eq 3 ]
    # The default: the data dir of a node named after this host.
    start_node "$(hostname)" --listen "127.0.0.1:$(free_port)" --join "$SEED" \
        --cluster-key "$KEY"
    sock="$XDG_STATE_HOME/murmer/$(hostname)/murmer.sock"
    wait_for "[ -S '$sock' ]" 20
    wait_for '[ "$(timeout 10 murmer members --json | jq ".members | length")" -eq 4 ]' 20
    # A stream goes to the full CLI (QUIC) only when the socket was not
    # asked for by name.
    run --separate-stderr local_mm members --follow
    assert_failure 2
    assert_equal "$stderr" "murmer members: members --follow: not served over the local socket (give --join ADDR)"
}

@test "local: another user is refused, by the file's mode and by SO_PEERCRED" {
    [ "$(id -u)" = 0 ] || skip "needs root to run as another uid"
    command -v setpriv >/dev/null || skip "setpriv is not installed"
    three_alive
    dir="$BATS_TEST_TMPDIR/data-n1"
    as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
    # The data dir and the socket are the node's: connect() is refused.
    run --separate-stderr as_nobody "$MURMER_BUILD/murmer" --data-dir "$dir" members
    assert_failure 5
    [[ $stderr == "murmer members: $dir/murmer.sock: Permission denied (only the node's user or root may use it)" ]]
    # Opened up by mistake: SO_PEERCRED still refuses, and the node says so.
    d=$dir
    while [ "$d" != / ]; do chmod o+x "$d"; d=$(dirname "$d"); done
    chmod 0666 "$dir/murmer.sock"
    run --separate-stderr as_nobody "$MURMER_BUILD/murmer" --data-dir "$dir" members
    assert_failure 5
    [[ $stderr == "murmer members: members: unauthorized: uid $(id -u nobody) may not use this node's socket (only uid 0 or root)" ]]
    grep -q "refusing pid [0-9]* on $dir/murmer.sock: unauthorized" "$(node_log n1)"
    # root and the node's user go on.
    run --separate-stderr local_mm members
    assert_success
}

@test "local: a data dir path longer than a socket address still works" {
    long="$BATS_TEST_TMPDIR/$(printf 'd%.0s' {1..60})/$(printf 'e%.0s' {1..60})"
    mkdir -p "$long"
    KEY="$BATS_TEST_TMPDIR/cluster.key"
    murmer keygen "$KEY"
    start_node n1 --listen "127.0.0.1:$(free_port)" --cluster-key "$KEY" --data-dir "$long"
    wait_for "[ -S '$long/murmer.sock' ]" 20
    run --separate-stderr timeout 20 murmer --data-dir "$long" members --json
    assert_success
    [ "$(jq -r '.members[0].name' <<<"$output")" = n1 ]
}

@test "local: bounds: connections, frame size, a client that does not read" {
    three_alive
    sock="$BATS_TEST_TMPDIR/data-n1/murmer.sock"
    # MM_LOCAL_CONNS_MAX (32) are served; one more is told and closed.
    run timeout 60 python3 "$PEER" "$sock" conns 32
    assert_success
    assert_output --regexp '^id=0 status=[1-9][0-9]* error=overloaded: 32 local connections are open, the most this node takes$'
    grep -q "refusing pid [0-9]*: overloaded: 32 local connections" "$(node_log n1)"
    # A frame over MM_LOCAL_FRAME_MAX: an error, then the connection ends.
    run timeout 30 python3 "$PEER" "$sock" bigframe
    assert_success
    assert_line --index 0 --partial "error=a request frame is empty or over the local socket's limit of 65536 bytes"
    assert_line --index 1 "then: closed"
    # 40 000 requests and no reading: the answers queue up to the bound,
    # then come `overloaded`, then the node closes the connection; the
    # node answers everyone else all along.
    timeout 60 python3 "$PEER" "$sock" flood 40000 >"$BATS_TEST_TMPDIR/flood.out" &
    flood=$!
    for i in 1 2 3 4 5; do
        run --separate-stderr local_mm members --json
        assert_success
    done
    wait "$flood"
    run cat "$BATS_TEST_TMPDIR/flood.out"
    [[ $output =~ ^ok=([0-9]+)\ overloaded=([0-9]+)\ closed=([01])$ ]] || { echo "$output"; false; }
    ok=${BASH_REMATCH[1]} over=${BASH_REMATCH[2]} closed=${BASH_REMATCH[3]}
    [ "$ok" -gt 0 ]
    [ "$ok" -lt 40000 ]
    [ $((over + closed)) -gt 0 ]
    run --separate-stderr local_mm members
    assert_success
}
