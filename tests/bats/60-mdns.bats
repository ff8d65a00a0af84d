#!/usr/bin/env bats
# 60-mdns: zero-configuration discovery through avahi (docs/design.md, mDNS discovery).
#
# Everything runs inside network namespaces made here (helpers/netns.bash):
# a bridge and one namespace per node, each with its own D-Bus and
# avahi-daemon.  Nothing avahi is ever started in the root namespace.

load 'helpers/cluster'
load 'helpers/netns'

setup()
{
    murmer_setup
    local why
    why=$(netns_check) || skip "$why"
    NETNS_PREFIX="mmt$$-${BATS_TEST_NUMBER}-"
    NETNS_RUN=
    KEY="$BATS_TEST_TMPDIR/key"
    murmer keygen "$KEY"
}

teardown()
{
    local bad=0 f
    if [ -n "${NETNS_RUN:-}" ] && [ -d "$NETNS_RUN" ]; then
        netns_kill_all
        # Nodes built with sanitizers report at exit: that fails the test.
        if grep -l 'Sanitizer' "$NETNS_RUN"/n*.log 2>/dev/null; then
            bad=1
        fi
        if [ -z "${BATS_TEST_COMPLETED:-}" ] || [ $bad = 1 ]; then
            for f in "$NETNS_RUN"/*.log; do
                [ -e "$f" ] || continue
                echo "---- $(basename "$f")"
                tail -n 60 "$f"
            done
        fi
    fi
    netns_down
    murmer_teardown
    [ $bad = 0 ]
}

# node I [KEYFILE] [ARGS...]: murmer start in namespace I, name nI, -v.
node()
{
    local i=$1 key=${2:-$KEY}
    shift
    [ $# -gt 0 ] && shift
    local ip
    ip=$(netns_ip "$i")
    netns_bg "$i" "n$i" "$MURMER_BUILD/murmer" start -v --name "n$i" \
        --listen "$ip:7420" --advertise "$ip:7420" --cluster-key "$key" \
        --data-dir "$BATS_TEST_TMPDIR/data$i" --mdns "$@"
}

nlog()
{
    echo "$NETNS_RUN/n$1.log"
}

# node_id I: the id node I printed on its listening line.
node_id()
{
    sed -n 's/^murmer start: node n'"$1"' (\([0-9a-f]\{32\}\)) listening.*/\1/p' "$(nlog "$1")"
}

wait_listening()
{
    wait_for "grep -q 'listening on' '$(nlog "$1")'" 10
}

# browse I: avahi-browse's parsable, resolved listing from namespace I.
browse()
{
    netns_exec "$1" timeout 10 avahi-browse -rpt _murmer._udp 2>/dev/null
}

# resolved I NAME: namespace I resolves the service NAME.
resolved()
{
    browse "$1" | grep -q "^=;[^;]*;IPv4;$2;_murmer._udp;"
}

@test "mdns: avahi-browse lists every node with id=, ck=, v=1 and its port" {
    netns_up 3
    for i in 1 2 3; do node "$i"; done
    for i in 1 2 3; do wait_listening "$i"; done
    for i in 1 2 3; do
        wait_for "grep -q \"published 'n$i'\" '$(nlog "$i")'" 10
    done
    wait_for "[ \$(browse 1 | grep -c '^=;') -ge 3 ]" 15
    run browse 1
    assert_success
    local tags=()
    for i in 1 2 3; do
        local id line
        id=$(node_id "$i")
        [[ $id =~ ^[0-9a-f]{32}$ ]]
        line=$(grep "^=;[^;]*;IPv4;n$i;_murmer._udp;local;" <<<"$output" | head -n1)
        [ -n "$line" ] || fail "n$i not listed: $output"
        [[ $line == *";10.99.0.$i;7420;"* ]] || fail "n$i: wrong address/port: $line"
        [[ $line == *"\"id=$id\""* ]] || fail "n$i: no id=$id: $line"
        [[ $line == *'"v=1"'* ]] || fail "n$i: no v=1: $line"
        [[ $line =~ \"ck=([0-9a-f]{16})\" ]] || fail "n$i: no ck=: $line"
        tags+=("${BASH_REMATCH[1]}")
        # The cluster key itself is never published.
        [[ $line != *"$(cat "$KEY")"* ]]
    done
    [ "${tags[0]}" = "${tags[1]}" ] && [ "${tags[1]}" = "${tags[2]}" ]
}

@test "mdns: each node discovers the others (one INFO line each), never itself" {
    netns_up 3
    for i in 1 2 3; do node "$i"; done
    for i in 1 2 3; do
        for j in 1 2 3; do
            [ "$i" = "$j" ] && continue
            wait_for "grep -q \"discovered 'n$j' at 10.99.0.$j:7420 (id \" '$(nlog "$i")'" 15
        done
    done
    for i in 1 2 3; do
        run grep -c "I mdns: discovered " "$(nlog "$i")"
        assert_output 2
        run grep -q "discovered 'n$i'" "$(nlog "$i")"
        assert_failure
    done
}

@test "mdns: a node with another cluster key is neither joined nor joins" {
    netns_up 3
    local other="$BATS_TEST_TMPDIR/other"
    murmer keygen "$other"
    node 1
    node 2
    node 3 "$other"
    wait_for "grep -q \"discovered 'n2'\" '$(nlog 1)'" 15
    wait_for "grep -q \"discovered 'n1'\" '$(nlog 2)'" 15
    # n3 is on the network (its service resolves) ...
    wait_for "resolved 1 n3" 15
    wait_for "grep -q \"published 'n3'\" '$(nlog 3)'" 10
    # ... and by now n1 and n2 have resolved it too (same announcements).
    run grep -h "discovered 'n3'" "$(nlog 1)" "$(nlog 2)"
    assert_output ''
    run grep -h "discovered" "$(nlog 3)"
    assert_output ''
}

@test "mdns: a service published by avahi-publish with our TXT is discovered" {
    netns_up 2
    node 1
    wait_for "grep -q \"published 'n1'\" '$(nlog 1)'" 10
    wait_for "resolved 2 n1" 15
    local tag own
    tag=$(browse 2 | sed -n 's/.*"ck=\([0-9a-f]\{16\}\)".*/\1/p' | head -n1)
    [[ $tag =~ ^[0-9a-f]{16}$ ]]
    own=$(node_id 1)
    local fid=0123456789abcdef0123456789abcdef
    # From namespace 2 (no node there): a match, a foreign key, ourselves.
    netns_bg 2 pub-ok avahi-publish -s fake-ok _murmer._udp 7999 "id=$fid" "ck=$tag" v=1
    netns_bg 2 pub-bad avahi-publish -s fake-bad _murmer._udp 7998 "id=$fid" ck=0000000000000000 v=1
    netns_bg 2 pub-self avahi-publish -s fake-self _murmer._udp 7997 "id=$own" "ck=$tag" v=1
    netns_bg 2 pub-v2 avahi-publish -s fake-v2 _murmer._udp 7996 "id=$fid" "ck=$tag" v=2
    wait_for "grep -q \"I mdns: discovered 'fake-ok' at 10.99.0.2:7999 (id $fid)\" '$(nlog 1)'" 15
    wait_for "[ \$(browse 1 | grep -c ';fake-') -ge 4 ]" 15
    run grep -E "discovered 'fake-(bad|self|v2)'" "$(nlog 1)"
    assert_output ''
    run grep -c "discovered 'fake-ok'" "$(nlog 1)"
    assert_output 1
}

@test "mdns: a service name already taken is renamed, and both are discovered" {
    netns_up 2
    local i ip
    for i in 1 2; do
        ip=$(netns_ip "$i")
        netns_bg "$i" "n$i" "$MURMER_BUILD/murmer" start -v --name twin \
            --listen "$ip:7420" --advertise "$ip:7420" --cluster-key "$KEY" \
            --data-dir "$BATS_TEST_TMPDIR/data$i" --mdns
        # One after the other, so that the second one meets a taken name.
        [ "$i" = 2 ] || wait_for "grep -q \"published 'twin'\" '$(nlog 1)'" 10
    done
    wait_for "grep -q \"service name 'twin' taken; renaming to 'twin #2'\" '$(nlog 2)'" 15
    wait_for "grep -q \"published 'twin #2'\" '$(nlog 2)'" 15
    # avahi-browse -p escapes the name: "twin\032\0352".
    wait_for "resolved 1 'twin.032.0352'" 15
    resolved 2 twin
    wait_for "grep -q \"discovered 'twin #2' at 10.99.0.2:7420\" '$(nlog 1)'" 15
    wait_for "grep -q \"discovered 'twin' at 10.99.0.1:7420\" '$(nlog 2)'" 15
}

@test "mdns: a stopped (hung) avahi-daemon never blocks the node; close is bounded" {
    netns_up 2
    node 1
    node 2
    wait_for "grep -q \"published 'n1'\" '$(nlog 1)'" 10
    wait_for "resolved 2 n1" 15
    local pid
    pid=$(netns_avahi_pid 1)
    # n2 knows n1 (mDNS join) before the daemon hangs.
    wait_for "netns_exec 2 timeout 10 $MURMER_BUILD/murmer members --json \
        --timeout 3s --join 10.99.0.2:7420 --cluster-key $KEY | grep -q '\"name\":\"n1\",[^}]*\"state\":\"alive\"'" 15
    kill -STOP "$pid"
    # For 30 s (issue 6) n1 keeps answering clients, and n2 never sees it
    # suspected: nothing avahi does can block the network loop.
    local end=$((SECONDS + 30)) ok=0
    while [ "$SECONDS" -lt "$end" ]; do
        run netns_exec 1 timeout 10 "$MURMER_BUILD/murmer" members --json \
            --timeout 3s --join 10.99.0.1:7420 --cluster-key "$KEY"
        assert_success
        [[ $output == *'"name":"n1"'* ]] || fail "members: $output"
        run netns_exec 2 timeout 10 "$MURMER_BUILD/murmer" members --json \
            --timeout 3s --join 10.99.0.2:7420 --cluster-key "$KEY"
        assert_success
        [[ $output =~ \"name\":\"n1\",[^}]*\"state\":\"alive\" ]] ||
            fail "n2 sees n1 not alive while n1's avahi hangs: $output"
        ok=$((ok + 1))
        sleep 1
    done
    [ "$ok" -ge 10 ]
    ! grep -q "n1: alive -> suspect" "$(nlog 2)" || fail "n2 suspected n1"
    kill -0 "$(netns_pid n1)"
    # Stopping the node while the daemon hangs: bounded (the withdraw
    # cannot be sent; the avahi thread is left behind).
    local t0=$SECONDS npid
    npid=$(netns_pid n1)
    kill -TERM "$npid"
    netns_wait_gone "$npid" 10 || fail "n1 did not stop within 10 s while avahi hung"
    [ $((SECONDS - t0)) -le 8 ]
    kill -CONT "$pid"
    grep -q "avahi-daemon does not answer" "$(nlog 1)"
    # The continued daemon serves again: n2 is still published.
    wait_for "resolved 1 n2" 15
}

@test "mdns: killing and restarting avahi-daemon: one warning, then published again" {
    netns_up 2
    node 1
    wait_for "grep -q \"published 'n1'\" '$(nlog 1)'" 10
    wait_for "resolved 2 n1" 15
    netns_avahi_stop 1 TERM
    wait_for "grep -q 'W mdns: avahi-daemon unavailable' '$(nlog 1)'" 10
    # Gone from the network (goodbyes), while the node runs on.
    wait_for "! resolved 2 n1" 15
    kill -0 "$(netns_pid n1)"
    netns_avahi_start 1
    netns_avahi_ready 1 10 2
    wait_for "grep -q 'avahi-daemon is available again' '$(nlog 1)'" 15
    wait_for "resolved 1 n1" 15
    wait_for "resolved 2 n1" 15
    run grep -c ' W mdns: ' "$(nlog 1)"
    assert_output 1
    run grep -c "published 'n1'" "$(nlog 1)"
    assert_output 2
}

@test "mdns: three nodes with a shared key and no seeds form one cluster" {
    netns_up 3
    for i in 1 2 3; do node "$i"; done
    for i in 1 2 3; do wait_listening "$i"; done
    for i in 1 2 3; do
        run netns_exec "$i" timeout 20 "$MURMER_BUILD/murmer" members --json \
            --wait 3 --timeout 15s --join "10.99.0.$i:7420" --cluster-key "$KEY"
        assert_success
        [ "$(grep -o '"state":"alive"' <<<"$output" | wc -l)" -eq 3 ] ||
            fail "n$i sees: $output"
    done
}

@test "mdns: mm__mdns_find_seed (clients) finds a node with our key, not others" {
    local t="$MURMER_BUILD/tests/test_mdns"
    [ -x "$t" ] || skip "$t not built (make unit)"
    netns_up 2
    node 1
    wait_for "grep -q \"published 'n1'\" '$(nlog 1)'" 10
    wait_for "resolved 2 n1" 15
    run netns_exec 2 env MM_TEST_MDNS_KEY="$(head -n1 "$KEY")" \
        MM_TEST_MDNS_EXPECT=10.99.0.1:7420 timeout 30 "$t"
    assert_success
    [[ $output == *"[       OK ] test_mdns_find_seed_finds_node"* ]] || fail "$output"
}

@test "mdns: the CLI with no seed and nothing on 127.0.0.1:7420 finds a member by mDNS" {
    netns_up 2
    node 1
    wait_for "grep -q \"published 'n1'\" '$(nlog 1)'" 10
    wait_for "resolved 2 n1" 15
    # No --join, no MURMER_JOIN: 127.0.0.1:7420 is silent in namespace 2.
    run netns_exec 2 env -u MURMER_JOIN timeout 20 "$MURMER_BUILD/murmer" \
        members --json --cluster-key "$KEY" --timeout 10s
    assert_success
    [[ $output == *'"name":"n1"'* ]] || fail "$output"
    # An explicit seed never falls back.
    run netns_exec 2 env -u MURMER_JOIN timeout 20 "$MURMER_BUILD/murmer" \
        members --join 127.0.0.1:7420 --cluster-key "$KEY" --timeout 2s
    assert_failure 4
}
