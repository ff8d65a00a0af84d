#!/usr/bin/env bats
# 26-spawn: `murmer spawn` starts an actor of a registered type on another
# member through the seed (--on, --where TAG=V, or the member with the
# fewest actors), with its initial state, policy and visibility; `murmer
# stop` stops it where it runs; `murmer lookup --type` checks its type.

load 'helpers/cluster'

setup()
{
    murmer_setup
}

# Three members: n1 (zone=a, the seed), n2 and n3 (zone=b), no demo actors.
# Extra ARGS go to every node.
three()
{
    KEY="$BATS_TEST_TMPDIR/cluster.key"
    murmer keygen "$KEY"
    local i port
    for i in 1 2 3; do
        port=$(free_port)
        printf -v "PORT_$i" '%s' "$port"
        local zone=b
        [ "$i" -eq 1 ] && zone=a && SEED="127.0.0.1:$port"
        local join=()
        [ "$i" -gt 1 ] && join=(--join "$SEED")
        start_node "n$i" --listen "127.0.0.1:$port" "${join[@]}" \
            --cluster-key "$KEY" --data-dir "$BATS_TEST_TMPDIR/data-n$i" \
            --no-mdns --tag "zone=$zone" "$@"
    done
    for i in 1 2 3; do
        wait_for "grep -q 'listening on' '$(node_log "n$i")'" 20 ||
            { cat "$(node_log "n$i")"; return 1; }
    done
    wait_for '[ "$(alive_count)" -eq 3 ]' 20
}


# Crashes LABEL's actor on demand and checks it comes back after its
# backoff at the same endpoint EP, with a zeroed state.
crash_restarts() {
    local label=$1 ep=$2
    run --separate-stderr mm send "$label" crash
    assert_failure 1
    [ "$stderr" = "murmer send: $label: handler_error: crash on demand" ]
    wait_for "mm send $label get" 10 || { cat "$(node_log n2)"; false; }
    run --separate-stderr mm send "$label" get
    assert_success
    [ "$output" = 0 ]
    run --separate-stderr mm lookup --json "$label"
    assert_success
    [ "$(jq -r '.actors[0].endpoint' <<<"$output")" = "$ep" ]
}

@test "spawn echo on n2 through seed n1: send reaches it, lookup shows it on n2, typed lookup" {
    three
    run --separate-stderr mm spawn echo e/1 --on n2
    assert_success
    [[ $output =~ ^spawned\ e/1\ on\ n2\ \([0-9a-f]{32}/[0-9]+/[0-9]+\)$ ]]
    run --separate-stderr mm --json spawn counter c/1 --on n3 --arg 41 \
        --policy transient --visibility public
    assert_success
    [ "$(jq -r .schema <<<"$output")" = "murmer.spawn/1" ]
    [ "$(jq -r .node <<<"$output")" = n3 ]
    run --separate-stderr mm send e/1 echo '"hi"'
    assert_success
    [ "$output" = '"hi"' ]
    run --separate-stderr mm send c/1 increment 1
    assert_success
    [ "$output" = 42 ]
    run --separate-stderr mm lookup --json --wait 10s e/1
    assert_success
    [ "$(jq -r '.actors[0].node' <<<"$output")" = n2 ]
    [ "$(jq -r '.actors[0].type' <<<"$output")" = echo ]
    run --separate-stderr mm lookup --json --wait 10s c/1
    assert_success
    [ "$(jq -r '.actors[0].visibility' <<<"$output")" = public ]
    # Typed lookup: the right type finds it, another is type_mismatch.
    run --separate-stderr mm lookup --type echo e/1
    assert_success
    [[ $output == *e/1*echo*n2* ]]
    run --separate-stderr mm lookup --type counter e/1
    assert_failure 3
    [ "$stderr" = "murmer lookup: 'e/1' is an actor of type 'echo', not 'counter'" ]
    run --separate-stderr mm lookup --type echo nosuch/1
    assert_failure 3
    [ "$stderr" = "murmer lookup: no actor with label 'nosuch/1'" ]
    # A prefix listing filtered by type.
    run --separate-stderr mm lookup --json --type counter --prefix ''
    assert_success
    [ "$(jq -r '[.actors[].label] | join(",")' <<<"$output")" = c/1 ]
}

@test "spawn --where TAG=V picks among the members with the tag, fewest actors first; none: not_found" {
    three
    run --separate-stderr mm spawn echo w/1 --on n2
    assert_success
    run --separate-stderr mm lookup --wait 10s w/1
    assert_success
    # n2 and n3 have zone=b; n2 has one actor, n3 none.
    run --separate-stderr mm spawn echo w/2 --where zone=b
    assert_success
    [[ $output == "spawned w/2 on n3 "* ]]
    run --separate-stderr mm spawn echo w/3 --where zone=a
    assert_success
    [[ $output == "spawned w/3 on n1 "* ]]
    run --separate-stderr mm spawn echo w/4 --where zone=z
    assert_failure 3
    [ "$stderr" = "murmer spawn: no alive member has tag zone=z" ]
    run --separate-stderr mm spawn echo w/4 --on n9
    assert_failure 3
    [ "$stderr" = "murmer spawn: no member 'n9'" ]
}

@test "stop LABEL: the hosting node stops it; watch sees it removed, lookup not_found" {
    three
    run --separate-stderr mm spawn echo s/1 --on n3
    assert_success
    out="$BATS_TEST_TMPDIR/watch.out"
    err="$BATS_TEST_TMPDIR/watch.err"
    mm --timeout 30s watch --prefix s/ --count 2 >"$out" 2>"$err" &
    wpid=$!
    wait_for "grep -q '^synced' '$out'" 20 || { cat "$out" "$err"; false; }
    run --separate-stderr mm stop s/1
    assert_success
    [[ $output =~ ^stopped\ s/1\ on\ n3\ \( ]]
    rc=0
    wait "$wpid" || rc=$?
    cat "$out" "$err"
    [ "$rc" -eq 0 ]
    [[ $(sed -n 1p "$out") =~ ^added\ +s/1 ]]
    [[ $(sed -n 3p "$out") =~ ^removed\ +s/1\ .*\(stopped\) ]]
    run --separate-stderr mm lookup s/1
    assert_failure 3
    run --separate-stderr mm stop s/1
    assert_failure 3
    [ "$stderr" = "murmer stop: no actor with label 's/1'" ]
}

@test "spawn refusals: unknown type 3, label taken 1, bad JSON 6, bad policy 2; read-only key 5" {
    three
    run --separate-stderr mm spawn nosuch x/1 --on n2
    assert_failure 3
    [ "$stderr" = "murmer spawn: no actor type 'nosuch' on node n2" ]
    run --separate-stderr mm spawn echo x/1 --on n2
    assert_success
    run --separate-stderr mm lookup --wait 10s x/1
    assert_success
    run --separate-stderr mm spawn echo x/1 --on n3
    assert_failure 1
    [ "$stderr" = "murmer spawn: label 'x/1' is taken (on node n2)" ]
    run --separate-stderr mm spawn echo x/2 --arg '{bad'
    assert_failure 6
    [ "$stderr" = "murmer spawn: --arg: malformed JSON" ]
    run --separate-stderr mm spawn echo x/2 --policy sometimes
    assert_failure 2
    run --separate-stderr mm spawn echo x/2 --on n2 --where zone=b
    assert_failure 2
    # Keys: a client key may spawn and stop, a read-only key may not.
    CLIENT="$BATS_TEST_TMPDIR/client.key"
    RO="$BATS_TEST_TMPDIR/ro.key"
    murmer --cluster-key "$KEY" keygen --client "$CLIENT"
    murmer --cluster-key "$KEY" keygen --client --read-only "$RO"
    run --separate-stderr timeout 30 murmer --join "$SEED" --cluster-key "$RO" spawn echo x/3
    assert_failure 5
    [ "$stderr" = "murmer spawn: spawn needs a cluster or client key (this session holds a read-only key)" ]
    run --separate-stderr timeout 30 murmer --join "$SEED" --cluster-key "$RO" stop x/1
    assert_failure 5
    run --separate-stderr mm lookup x/3
    assert_failure 3
    run --separate-stderr timeout 30 murmer --join "$SEED" --cluster-key "$CLIENT" spawn echo x/3 --on n3
    assert_success
    run --separate-stderr timeout 30 murmer --join "$SEED" --cluster-key "$CLIENT" stop x/1
    assert_success
}

@test "spawns in flight at a seed are bounded: past the bound overloaded, the others unreachable" {
    three
    # n2 is frozen: the spawns forwarded to it wait for its answer (5 s).
    kill -STOP "$(node_pid n2)"
    pids=()
    for i in $(seq 1 12); do
        mm --timeout 20s spawn echo b/$i --on n2 >"$BATS_TEST_TMPDIR/b$i.out" \
            2>"$BATS_TEST_TMPDIR/b$i.err" &
        pids+=($!)
    done
    codes=()
    for p in "${pids[@]}"; do
        rc=0
        wait "$p" || rc=$?
        codes+=("$rc")
    done
    kill -CONT "$(node_pid n2)"
    cat "$BATS_TEST_TMPDIR"/b*.err
    [ "$(cat "$BATS_TEST_TMPDIR"/b*.err | grep -c '^murmer spawn: overloaded: this node already waits on 8 spawns or stops$')" -eq 4 ]
    [ "$(cat "$BATS_TEST_TMPDIR"/b*.err | grep -c '^murmer spawn: node n2: no answer$')" -eq 8 ]
    for rc in "${codes[@]}"; do [ "$rc" -eq 4 ]; done
}

@test "spawn --policy permanent: a crash restarts it (same endpoint, fresh state); temporary: a crash removes it" {
    three --plugin "$MURMER_BUILD/plugins/crash.so"
    run --separate-stderr mm spawn crasher k/1 --on n2 --policy permanent
    assert_success
    run --separate-stderr mm spawn crasher k/2 --on n3
    assert_success
    run --separate-stderr mm lookup --json --wait 10s k/1
    assert_success
    ep=$(jq -r '.actors[0].endpoint' <<<"$output")
    [[ $ep =~ ^[0-9a-f]{32}/[0-9]+/[0-9]+$ ]]
    run --separate-stderr mm lookup --wait 10s k/2
    assert_success
    run --separate-stderr mm send k/1 bump
    assert_success
    run --separate-stderr mm send k/1 bump
    assert_success
    [ "$output" = 2 ]
    crash_restarts k/1 "$ep"
    # The temporary one (the default policy) is gone after its crash.
    run --separate-stderr mm send k/2 bump
    assert_success
    run --separate-stderr mm send k/2 crash
    assert_failure 1
    wait_for "! mm lookup k/2" 10
    run --separate-stderr mm send k/2 get
    assert_failure 3
}

@test "spawn --policy transient: a crash restarts it (same endpoint, fresh state); a normal stop ends it and removes it" {
    three --plugin "$MURMER_BUILD/plugins/crash.so"
    run --separate-stderr mm spawn crasher t/1 --on n2 --policy transient
    assert_success
    run --separate-stderr mm lookup --json --wait 10s t/1
    assert_success
    ep=$(jq -r '.actors[0].endpoint' <<<"$output")
    [[ $ep =~ ^[0-9a-f]{32}/[0-9]+/[0-9]+$ ]]
    run --separate-stderr mm send t/1 bump
    assert_success
    [ "$output" = 1 ]
    # A crash: restarted (temporary would remove it).
    crash_restarts t/1 "$ep"
    # A normal stop from its own handler (MM_STOP): not restarted (permanent
    # would restart it and keep the label), removed from the registry.
    run --separate-stderr mm send t/1 quit
    assert_success
    [ "$output" = '"bye"' ]
    wait_for "! mm lookup t/1" 10 || { cat "$(node_log n2)"; false; }
    run --separate-stderr mm send t/1 get
    assert_failure 3
    run --separate-stderr mm lookup t/1
    assert_failure 3
}

@test "start --actor-policy and --actor-visibility set an --actor's policy and visibility" {
    KEY="$BATS_TEST_TMPDIR/cluster.key"
    murmer keygen "$KEY"
    SEED="127.0.0.1:$(free_port)"
    start_node a1 --listen "$SEED" --cluster-key "$KEY" --no-mdns \
        --data-dir "$BATS_TEST_TMPDIR/data-a1" --actor 'p/1=echo' \
        --actor 'p/2=counter:3' --actor-visibility p/1=public \
        --actor-policy p/2=permanent --actor-visibility p/2=internal
    wait_for "grep -q 'listening on' '$(node_log a1)'" 20 ||
        { cat "$(node_log a1)"; false; }
    run --separate-stderr mm lookup --json --prefix p/
    assert_success
    [ "$(jq -r '[.actors[] | .label + "=" + .visibility] | join(",")' <<<"$output")" = "p/1=public,p/2=internal" ]
    run --separate-stderr mm send p/2 get
    assert_success
    [ "$output" = 3 ]
    # Refused before anything starts, exit 2.
    run --separate-stderr murmer start --name x --listen 127.0.0.1:0 \
        --actor 'q/1=echo' --actor-policy q/2=permanent
    assert_failure 2
    [ "$stderr" = "murmer start: --actor-policy 'q/2=permanent': no --actor q/2" ]
    run --separate-stderr murmer start --name x --listen 127.0.0.1:0 \
        --actor 'q/1=echo' --actor-policy q/1=forever
    assert_failure 2
    [ "$stderr" = "murmer start: --actor-policy 'q/1=forever': bad policy 'forever' (temporary, transient or permanent)" ]
    run --separate-stderr murmer start --name x --listen 127.0.0.1:0 \
        --actor 'q/1=echo' --actor-visibility q/1
    assert_failure 2
    [ "$stderr" = "murmer start: bad --actor-visibility 'q/1' (expected LABEL=VISIBILITY)" ]
}
