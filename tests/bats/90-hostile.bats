#!/usr/bin/env bats
# 90-hostile: garbage on the node's UDP port and on client sessions does
# not kill the node; it keeps answering.

load 'helpers/cluster'

setup()
{
    murmer_setup
}

# spray PORT: a few thousand hostile datagrams at 127.0.0.1:PORT.
spray()
{
    python3 - "$1" <<'PY'
import os, random, socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rnd = random.Random(7)
def send(b):
    s.sendto(b, ("127.0.0.1", port))
send(b"")                                   # empty
for i in range(1, 64):                      # every short length
    send(bytes(rnd.randrange(256) for _ in range(i)))
for _ in range(500):
    # long-header QUIC lookalikes: version 1, random/truncated lengths
    n = rnd.randrange(1, 1400)
    b = bytearray(os.urandom(n))
    b[0] = 0xc0 | (b[0] & 0x3f)
    if n > 5:
        b[1:5] = b"\x00\x00\x00\x01"
    send(bytes(b))
for _ in range(500):                        # sealed-gossip lookalikes
    n = rnd.randrange(1, 1400)
    send(b"\x01" + os.urandom(n))
for _ in range(500):                        # short headers, any first byte
    n = rnd.randrange(1, 1400)
    b = bytearray(os.urandom(n))
    b[0] &= 0x7f
    send(bytes(b))
send(b"\xff" * 65000)                       # oversized
PY
}

@test "garbage UDP datagrams do not kill a node; it keeps answering" {
    start_cluster 2
    wait_for '[ "$(alive_count)" -eq 2 ]' 20
    spray "$PORT_1"
    spray "$PORT_2"
    # bash's own /dev/udp too: a truncated long header.
    printf '\xc3\x00\x00\x00\x01\x08' >"/dev/udp/127.0.0.1/$PORT_1"
    kill -0 "$(node_pid n1)"
    kill -0 "$(node_pid n2)"
    run --separate-stderr mm send counter/n1 increment 3
    assert_success
    [ "$output" = "3" ]
    wait_for '[ "$(alive_count)" -eq 2 ]' 20
    run --separate-stderr mm send counter/n2 increment 4
    assert_success
    [ "$output" = "4" ]
}

@test "hostile client requests are answered with errors, not crashes" {
    start_cluster 1
    # Oversized and odd requests through the real CLI.
    long=$(head -c 70000 /dev/zero | tr '\0' 'a')
    run --separate-stderr mm lookup "$long"
    [ "$status" -ne 0 ]
    run --separate-stderr mm send "$long" echo 1
    [ "$status" -ne 0 ]
    run --separate-stderr mm oplog --origin ffffffffffffffffffffffffffffffff
    assert_failure 3
    run --separate-stderr mm send counter/n1 increment "$(printf '[%.0s' {1..5000})1$(printf ']%.0s' {1..5000})"
    [ "$status" -ne 0 ]
    kill -0 "$(node_pid n1)"
    run --separate-stderr mm send counter/n1 increment 1
    assert_success
    [ "$output" = "1" ]
}
