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

# fifo_holder FIFO DIR: holds FIFO open (read and write) and never reads
# until told: DIR/open once open; on DIR/fill it fills the pipe to the brim
# and says so in DIR/filled (bytes); on DIR/drain it reads, and copies to
# DIR/drained, until EOF (the node gone) or 60 s.
fifo_holder()
{
    exec python3 - "$1" "$2" <<'PY'
import fcntl, os, struct, sys, termios, time
fifo, d = sys.argv[1], sys.argv[2]
fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
open(d + "/open", "w").close()
def wait(name):
    t0 = time.time()
    while not os.path.exists(d + "/" + name):
        if time.time() - t0 > 60:
            sys.exit(1)
        time.sleep(0.02)
wait("fill")
n = 0
for chunk in (b"#" * 4096, b"#"):
    while True:
        try:
            n += os.write(fd, chunk)
        except BlockingIOError:
            break
unread = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
with open(d + "/filled", "w") as f:
    f.write("%d %d\n" % (n, unread))
wait("drain")
# Only a reader now: EOF once the node has closed its end.
rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
os.close(fd)
t0 = time.time()
with open(d + "/drained", "wb") as out:
    while time.time() - t0 < 60:
        try:
            b = os.read(rfd, 65536)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        if not b:
            break
        out.write(b)
        out.flush()
PY
}

@test "a node whose stderr nobody reads keeps answering through failed handshakes" {
    KEY="$BATS_TEST_TMPDIR/cluster.key"
    local wrong="$BATS_TEST_TMPDIR/wrong.key"
    murmer keygen "$KEY"
    murmer keygen "$wrong"
    local fifo="$BATS_TEST_TMPDIR/stderr.fifo" ctl="$BATS_TEST_TMPDIR/ctl"
    mkfifo "$fifo"
    mkdir "$ctl"
    fifo_holder "$fifo" "$ctl" &
    local holder=$!
    echo "holder $holder" >>"$NODE_PIDS_FILE"
    wait_for "[ -e '$ctl/open' ]" 10
    local port
    port=$(free_port)
    SEED="127.0.0.1:$port"
    murmer start --name n1 --listen "$SEED" --cluster-key "$KEY" \
        --data-dir "$BATS_TEST_TMPDIR/data-n1" --no-mdns --demo \
        >"$BATS_TEST_TMPDIR/n1.out" 2>"$fifo" &
    echo "n1 $!" >>"$NODE_PIDS_FILE"
    wait_for "timeout 5 murmer --join '$SEED' --cluster-key '$KEY' members" 20
    # Now nobody reads its stderr, and the pipe is full.
    touch "$ctl/fill"
    wait_for "[ -s '$ctl/filled' ]" 10
    read -r _ unread <"$ctl/filled"
    [ "$unread" -ge 4096 ]
    # Failed handshakes, each one a warning the node wants to write.
    # Each is refused (exit 5, unauthorized); a node stuck in write(2)
    # would not answer at all.
    local i rc
    for ((i = 0; i < 600; i++)); do
        rc=0
        timeout 5 murmer --join "$SEED" --cluster-key "$wrong" members \
            >/dev/null 2>&1 || rc=$?
        [ "$rc" -eq 5 ] || { echo "attempt $i: exit $rc" >&2; false; }
    done
    kill -0 "$(node_pid n1)"
    run --separate-stderr mm members
    assert_success
    [[ $output == *n1* ]]
    run --separate-stderr mm send counter/n1 increment 2
    assert_success
    [ "$output" = "2" ]
    # Once read, the queued warnings come out, the repeats summarised.
    touch "$ctl/drain"
    wait_for "grep -q 'W quic: auth failed with' '$ctl/drained'" 10
    stop_node n1 TERM 10
    wait "$holder" || true
    local warned
    warned=$(grep -c 'W quic: auth failed with' "$ctl/drained")
    [ "$warned" -le 20 ]
    grep -q "W quic: [0-9]* more 'auth failed with ...'" "$ctl/drained"
}
