#!/usr/bin/env bats
# 10-start: `murmer start` runs a node, logs its actors and address on
# stderr, and stops cleanly on SIGTERM/SIGINT.

load 'helpers/cluster'

setup()
{
    murmer_setup
}

@test "start --demo: four actors, listening line, clean exit on SIGTERM" {
    port=$(free_port)
    start_node demo1 --demo --listen "127.0.0.1:$port"
    log=$(node_log demo1)
    wait_for "grep -q 'listening on' '$log'" 20 || { cat "$log"; false; }
    for t in echo counter kv greeter; do
        grep -q "^murmer start: started $t/demo1 ($t) " "$log" || { cat "$log"; fail "no $t/demo1 line"; }
    done
    # NEEDSWORK: accept "local only" until node.c binds --listen; then
    # require exactly 127.0.0.1:$port.
    grep -qE "^murmer start: node demo1 \([0-9a-f]{32}\) listening on (127\.0\.0\.1:$port|nothing \(local only\))\$" "$log" ||
        { cat "$log"; fail "no listening line for 127.0.0.1:$port"; }
    stop_node demo1 TERM 10 || { cat "$log"; false; }
    [ "$STOP_RC" -eq 0 ] || { cat "$log"; fail "exit status $STOP_RC"; }
    [ "$STOP_MS" -lt 10000 ]
    # stdout carries results only: start has none.
    [ ! -s "$BATS_TEST_TMPDIR/demo1.out" ]
}

@test "start: SIGINT stops the node too" {
    port=$(free_port)
    start_node int1 --listen "127.0.0.1:$port" --actor 'c/1=counter:{"count":3}'
    log=$(node_log int1)
    wait_for "grep -q 'listening on' '$log'" 20 || { cat "$log"; false; }
    grep -q "^murmer start: started c/1 (counter) " "$log"
    stop_node int1 INT 10 || { cat "$log"; false; }
    [ "$STOP_RC" -eq 0 ]
}

@test "start: malformed --actor JSON exits 6 with the byte offset" {
    run --separate-stderr timeout 20 murmer start --listen 127.0.0.1:0 --actor 'kv/x=kv:{"a" 1}'
    assert_failure 6
    [ "$stderr" = "murmer start: --actor 'kv/x': malformed JSON at byte 5" ]
}

@test "start: an unknown actor type exits 3" {
    run --separate-stderr timeout 20 murmer start --name t3 --listen 127.0.0.1:0 --actor 'x/1=nosuchtype'
    assert_failure 3
    [[ $stderr == *"murmer start: --actor x/1: unknown actor type 'nosuchtype'"* ]]
}

@test "start: SIGTERM with slow messages queued exits within 3 s; queued calls are answered closed" {
    KEY="$BATS_TEST_TMPDIR/cluster.key"
    murmer keygen "$KEY"
    SEED="127.0.0.1:$(free_port)"
    start_node slow1 --listen "$SEED" --cluster-key "$KEY" \
        --data-dir "$BATS_TEST_TMPDIR/data-slow1" \
        --plugin "$MURMER_BUILD/plugins/slow.so" --shards 2 \
        --actor c/1=counter --actor slow/1=slow
    # Shard 0 runs the network, counter c/1 and a first spawn go there,
    # slow/1 goes to shard 1: its naps never hold the network.
    log=$(node_log slow1)
    wait_for "grep -q 'listening on' '$log'" 20 || { cat "$log"; false; }
    # 8 calls of 1 s each: one runs, the others queue behind it.
    local i pids=()
    for ((i = 1; i <= 8; i++)); do
        # Each client its own state dir: concurrent ones cannot share one.
        XDG_STATE_HOME="$BATS_TEST_TMPDIR/cli$i" timeout 30 \
            murmer --join "$SEED" --cluster-key "$KEY" --timeout 20s \
            send slow/1 nap 1000 >"$BATS_TEST_TMPDIR/send$i.out" \
            2>"$BATS_TEST_TMPDIR/send$i.err" &
        pids+=($!)
    done
    # The second nap starts after a second: by then every call has arrived.
    wait_for "[ \$(grep -c 'slow: nap' '$log') -ge 2 ]" 20 || { cat "$log"; false; }
    stop_node slow1 TERM 10 || { cat "$log"; false; }
    [ "$STOP_RC" -eq 0 ] || { cat "$log"; fail "exit status $STOP_RC"; }
    [ "$STOP_MS" -lt 3000 ] || { cat "$log"; fail "exit after $STOP_MS ms"; }
    # Each call got an answer: its reply, or `closed` for those still queued.
    local ok=0 closed=0 rc
    for ((i = 1; i <= 8; i++)); do
        rc=0
        wait "${pids[$((i - 1))]}" || rc=$?
        if [ "$rc" -eq 0 ]; then
            ok=$((ok + 1))
        elif grep -q closed "$BATS_TEST_TMPDIR/send$i.err"; then
            closed=$((closed + 1))
        else
            cat "$BATS_TEST_TMPDIR/send$i.err"
        fi
    done
    echo "ok $ok closed $closed, exit after $STOP_MS ms"
    [ "$ok" -le 3 ] || fail "$ok calls ran"
    [ "$closed" -ge 4 ] || fail "only $closed calls were answered closed"
    [ $((ok + closed)) -eq 8 ] || fail "ok $ok + closed $closed != 8"
}

@test "start: a corrupt or missing generation file refuses to start (exit 6, names the file); a repaired one starts above it" {
    D="$BATS_TEST_TMPDIR/data-gen"
    start_node gen1 --listen 127.0.0.1:0 --data-dir "$D"
    log=$(node_log gen1)
    wait_for "grep -q 'listening on' '$log'" 20 || { cat "$log"; false; }
    stop_node gen1 TERM 10 || { cat "$log"; false; }
    [ "$(cat "$D/generation")" = 1 ]
    for bad in '' '12abc' '-1' '99999999999999999999999'; do
        printf '%s' "$bad" >"$D/generation"
        run --separate-stderr timeout 20 murmer start --name gen1 --listen 127.0.0.1:0 --data-dir "$D"
        assert_failure 6
        echo "$stderr" | grep -q "generation file $D/generation is corrupt" || fail "no error line for '$bad': $stderr"
        [ "$(cat "$D/generation")" = "$bad" ] # left as it was
    done
    rm "$D/generation"
    run --separate-stderr timeout 20 murmer start --name gen1 --listen 127.0.0.1:0 --data-dir "$D"
    assert_failure 6
    echo "$stderr" | grep -q "generation file $D/generation is missing but the identity in $D exists" || fail "$stderr"
    [ ! -e "$D/generation" ]
    echo 1800000000 >"$D/generation"
    start_node gen2 --listen 127.0.0.1:0 --data-dir "$D"
    wait_for "grep -q 'listening on' '$(node_log gen2)'" 20 || { cat "$(node_log gen2)"; false; }
    [ "$(cat "$D/generation")" = 1800000001 ]
    stop_node gen2 TERM 10
    [ "$STOP_RC" -eq 0 ]
}

# full_pipe FIFO DIR: opens FIFO read-write (so a writer never sees EPIPE)
# and never reads it; once DIR/fill exists (within 60 s), fills the pipe
# until a write would block, says so in DIR/full (bytes queued), and then
# holds it for at most 120 s.
full_pipe()
{
    exec python3 - "$1" "$2" <<'PY'
import fcntl, os, struct, sys, termios, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NONBLOCK)
t0 = time.time()
while not os.path.exists(sys.argv[2] + "/fill") and time.time() - t0 < 60:
    time.sleep(0.02)
for chunk in (b"#" * 4096, b"#"):
    try:
        while os.write(fd, chunk):
            pass
    except BlockingIOError:
        pass
queued = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
with open(sys.argv[2] + "/full.tmp", "w") as f:
    f.write("%d\n" % queued)
os.rename(sys.argv[2] + "/full.tmp", sys.argv[2] + "/full")
time.sleep(120)
PY
}

@test "start: a full stderr nobody reads never blocks the node; members answers and SIGTERM exits within 2 s" {
    KEY="$BATS_TEST_TMPDIR/cluster.key"
    murmer keygen "$KEY"
    local fifo="$BATS_TEST_TMPDIR/stderr.fifo" ctl="$BATS_TEST_TMPDIR/ctl"
    mkfifo "$fifo"
    mkdir "$ctl"
    full_pipe "$fifo" "$ctl" &
    echo "holder $!" >>"$NODE_PIDS_FILE"
    SEED="127.0.0.1:$(free_port)"
    murmer start --name full1 --listen "$SEED" --cluster-key "$KEY" \
        --data-dir "$BATS_TEST_TMPDIR/data-full1" --no-mdns \
        --plugin "$MURMER_BUILD/plugins/slow.so" --actor slow/1=slow \
        >"$BATS_TEST_TMPDIR/full1.out" 2>"$fifo" &
    echo "full1 $!" >>"$NODE_PIDS_FILE"
    wait_for "timeout 5 murmer --join '$SEED' --cluster-key '$KEY' members" 20
    # The node runs; from now on every write it makes to stderr would
    # block (the "stopping" and "stopped" lines too).
    touch "$ctl/fill"
    wait_for "[ -e '$ctl/full' ]" 10
    local queued
    read -r queued <"$ctl/full"
    [ "$queued" -ge 4096 ]
    # 20 000 lines (about 800 KiB) logged on the node's only loop by one
    # message: far more than the pipe and the 64 KiB buffer hold.
    run --separate-stderr timeout 20 murmer --join "$SEED" --cluster-key "$KEY" \
        send slow/1 chatter 20000
    assert_success
    [ "$output" = "20000" ]
    run --separate-stderr timeout 5 murmer --join "$SEED" --cluster-key "$KEY" members
    assert_success
    [[ $output == *full1* ]]
    stop_node full1 TERM 10
    echo "exit status $STOP_RC after $STOP_MS ms"
    [ "$STOP_RC" -eq 0 ]
    [ "$STOP_MS" -lt 2000 ]
}

@test "start --max-connections 1: a second client waits (exit 4) while a watch holds the one connection; an interrupted watch (exit 130) closes it and the next gets in" {
    start_cluster 1 --max-connections 1
    out="$BATS_TEST_TMPDIR/watch.out"
    # Not through mm(): the signal must reach murmer itself (the watch
    # bounds itself with --timeout and --count).
    murmer --join "$SEED" --cluster-key "$KEY" --timeout 30s watch \
        --prefix nothing/ --count 1 >"$out" 2>&1 &
    wpid=$!
    echo "watch $wpid" >>"$NODE_PIDS_FILE"
    wait_for "grep -q '^synced' '$out'" 20 || { cat "$out"; false; }
    run --separate-stderr mm --timeout 2s members
    assert_failure 4
    # An interrupted watch closes its connection: the slot is free at once.
    kill -INT "$wpid"
    rc=0
    wait "$wpid" || rc=$?
    [ "$rc" -eq 130 ] # 128 + SIGINT, and no error line
    [ "$(cat "$out")" = "synced" ]
    run --separate-stderr mm --timeout 5s members
    assert_success
    run --separate-stderr mm start --max-connections 0
    assert_failure 2
    [ "$stderr" = "murmer start: --max-connections must be 1..65536" ]
}
