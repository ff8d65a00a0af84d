#!/usr/bin/env bats
# 25-send-key-plugin: fan-out by reception key across three node processes,
# and a node hosting an actor type from a plugin.

load 'helpers/cluster'

setup()
{
    murmer_setup
}

@test "send --key over three workers on three nodes reports delivered 3/3" {
    KEY="$BATS_TEST_TMPDIR/cluster.key"
    murmer keygen "$KEY"
    local i port
    for i in 1 2 3; do
        port=$(free_port)
        if [ "$i" -eq 1 ]; then
            SEED="127.0.0.1:$port"
            join=()
        else
            join=(--join "$SEED")
        fi
        start_node "n$i" --listen "127.0.0.1:$port" "${join[@]}" \
            --cluster-key "$KEY" --data-dir "$BATS_TEST_TMPDIR/data-n$i" \
            --actor "worker/n$i=counter" --check-in "worker/n$i=workers"
        wait_for "grep -q 'listening on' '$(node_log "n$i")'" 20
    done
    # Every node's workers are visible through the seed.
    wait_for '[ "$(mm lookup --key workers --json | jq ".actors | length")" -eq 3 ]' 20 ||
        { mm lookup --key workers; false; }
    run --separate-stderr mm send --key workers increment 2
    assert_success
    [[ $output == *"delivered 3/3"* ]]
    run --separate-stderr mm send worker/n3 get
    assert_success
    [ "$output" = "2" ]
}

@test "--check-in with an unknown label exits 3, a bad spec exits 2" {
    run --separate-stderr timeout 20 murmer start --listen 127.0.0.1:0 \
        --data-dir "$BATS_TEST_TMPDIR/d" --check-in nosuch=k
    assert_failure 3
    [[ $stderr == *"no actor with label 'nosuch'"* ]]
    run --separate-stderr timeout 20 murmer start --check-in nokey
    assert_failure 2
}

@test "the plugin example hosts its actor and answers send" {
    KEY="$BATS_TEST_TMPDIR/cluster.key"
    murmer keygen "$KEY"
    SEED="127.0.0.1:$(free_port)"
    start_node p1 --listen "$SEED" --cluster-key "$KEY" \
        --data-dir "$BATS_TEST_TMPDIR/data-p1" \
        --plugin "$MURMER_BUILD/plugins/hello_plugin.so" --actor hello/1=hello
    wait_for "grep -q 'listening on' '$(node_log p1)'" 20 || { cat "$(node_log p1)"; false; }
    run --separate-stderr mm send hello/1 hello '"bats"'
    assert_success
    [ "$output" = '"Hello from a plugin, bats!"' ]
}

@test "a plugin with the wrong ABI or a missing file is refused with exit 6" {
    run --separate-stderr timeout 20 murmer start --listen 127.0.0.1:0 \
        --data-dir "$BATS_TEST_TMPDIR/d" \
        --plugin "$MURMER_BUILD/plugins/bad_abi.so"
    assert_failure 6
    [[ ${stderr##*$'\n'} == "murmer start: --plugin "*"plugin ABI 43, this murmer speaks 2" ]]
    run --separate-stderr timeout 20 murmer start --listen 127.0.0.1:0 \
        --data-dir "$BATS_TEST_TMPDIR/d" --plugin /nonexistent.so
    assert_failure 6
    [[ $stderr == *"cannot load /nonexistent.so"* ]]
}
