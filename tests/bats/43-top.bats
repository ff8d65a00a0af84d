#!/usr/bin/env bats
# 43-top: `murmer top` on a real 3-node cluster on loopback: one snapshot
# as JSON (--once --json) and the live view under tmux.  n3 carries the
# slow test plugin: its "slow/n3" worker sleeps 20 ms per "work" message,
# so a burst sent to it waits in its mailbox and drains at ~50/s.  (A shard
# runs up to 64 messages of an actor before it looks at its inbox, so the
# worker's shard answers a top within ~1.3 s.)

load 'helpers/cluster'
load 'helpers/members'

setup()
{
    murmer_setup
    command -v jq >/dev/null || skip "jq is not installed"
}

teardown()
{
    local pid
    pid=$(node_pid n3)
    [ -n "$pid" ] && kill -CONT "$pid" 2>/dev/null
    if [ -n "${TMUX_SOCK:-}" ]; then
        tmux -S "$TMUX_SOCK" kill-server 2>/dev/null || true
    fi
    murmer_teardown
}

# Two demo nodes, and n3 with the slow plugin (2 shards: the worker is on
# shard 1, its naps never hold the network).
start_top_cluster()
{
    start_cluster 2 --no-mdns
    PORT_3=$(free_port)
    start_node n3 --listen "127.0.0.1:$PORT_3" --join "$SEED" \
        --cluster-key "$KEY" --data-dir "$BATS_TEST_TMPDIR/data-n3" --demo \
        --no-mdns --plugin "$MURMER_BUILD/plugins/slow.so" --shards 2 \
        --actor 'slowboot=slow:{"ms":20}'
    wait_for "grep -q 'listening on' '$(node_log n3)'" 20
    wait_for "all_alive 3 $PORT_1 $PORT_2 $PORT_3" 20
    wait_for 'mm lookup slow/n3' 20
}

top_json()
{
    mm --timeout 6s top --once --json --interval 500ms "$@"
}

@test "top --once --json: every node answers, every actor listed with label, node, mailbox, rate" {
    start_top_cluster
    run top_json
    assert_success
    [ "$(jq -r .schema <<<"$output")" = "murmer.top/1" ]
    [ "$(jq '.nodes | length' <<<"$output")" -eq 3 ]
    [ "$(jq '[.nodes[] | select(.answered)] | length' <<<"$output")" -eq 3 ]
    [ "$(jq '[.nodes[] | select(.shards_missing == 0)] | length' <<<"$output")" -eq 3 ]
    # Rates come from two snapshots: numbers, not null.
    [ "$(jq '[.nodes[] | .cpu_pct | numbers] | length' <<<"$output")" -eq 3 ]
    [ "$(jq '[.nodes[] | select(.rss > 0)] | length' <<<"$output")" -eq 3 ]
    [ "$(jq '[.nodes[] | select(.conns > 0)] | length' <<<"$output")" -eq 3 ]
    for n in n1 n2 n3; do
        [ "$(jq -r --arg n "$n" '.actors[] | select(.label == "counter/" + $n) | .node' <<<"$output")" = "$n" ]
    done
    [ "$(jq -r '.actors[] | select(.label == "slow/n3") | .type' <<<"$output")" = "slow_worker" ]
    [ "$(jq '[.actors[] | select(has("label") and has("node") and has("mailbox") and has("rate"))] | length' <<<"$output")" = "$(jq '.actors | length' <<<"$output")" ]
    [ "$(jq '[.actors[] | .rate | numbers] | length' <<<"$output")" = "$(jq '.actors | length' <<<"$output")" ]
    # Text: the two tables.
    run mm top --once --interval 200ms
    assert_success
    assert_output --partial "CPU%"
    assert_output --partial "MAILBOX"
    assert_output --partial "slow/n3"
}

@test "top: a slow actor's mailbox grows when fed; rates > 0 while it drains; handled counts" {
    start_top_cluster
    seq 400 | sed 's/.*/{"message":"work","payload":1}/' >"$BATS_TEST_TMPDIR/work"
    mm --timeout 25s send --stdin --window 64 slow/n3 <"$BATS_TEST_TMPDIR/work" \
        >"$BATS_TEST_TMPDIR/work.out" 2>&1 &
    SENDER=$!
    mb()
    {
        top_json --prefix slow/ | jq '.actors[] | select(.label == "slow/n3") | .mailbox'
    }
    wait_for '[ "$(mb)" -ge 10 ]' 10
    run top_json --prefix slow/
    assert_success
    # The filter: only slow/ labels.
    [ "$(jq '[.actors[] | select(.label | startswith("slow/") | not)] | length' <<<"$output")" -eq 0 ]
    [ "$(jq '.actors[] | select(.label == "slow/n3") | .mailbox' <<<"$output")" -ge 1 ]
    rate=$(jq '.actors[] | select(.label == "slow/n3") | .rate' <<<"$output")
    jq -e '. > 0' <<<"$rate"
    jq -e '.nodes[] | select(.name == "n3") | .msgs_in_rate > 0' <<<"$output"
    jq -e '.actors[] | select(.label == "slow/n3") | .mean_us == null or .mean_us > 10000' <<<"$output"
    wait "$SENDER"
    # 2000 increments: the counter's handled count says so, and its
    # mailbox is empty again.
    seq 2000 | sed 's/.*/{"message":"increment","payload":1}/' >"$BATS_TEST_TMPDIR/in"
    mm send --stdin --window 64 counter/n2 <"$BATS_TEST_TMPDIR/in" >/dev/null
    run top_json --prefix counter/n2
    assert_success
    [ "$(jq '.actors[0].handled' <<<"$output")" -ge 2000 ]
    [ "$(jq '.actors[0].mailbox' <<<"$output")" -eq 0 ]
    [ "$(jq '.actors | length' <<<"$output")" -eq 1 ]
}

@test "top: sorting by any column, reversed; a frozen member is listed as not answering" {
    start_top_cluster
    run top_json --sort label
    assert_success
    labels=$(jq -r '.actors[].label' <<<"$output")
    [ "$labels" = "$(sort <<<"$labels")" ]
    run top_json --sort label --reverse
    assert_success
    labels=$(jq -r '.actors[].label' <<<"$output")
    [ "$labels" = "$(sort -r <<<"$labels")" ]
    [ "$(jq -r .sort <<<"$output")" = "label" ]
    run top_json --sort node
    assert_success
    nodes=$(jq -r '.actors[].node' <<<"$output")
    [ "$nodes" = "$(sort <<<"$nodes")" ]

    kill -STOP "$(node_pid n3)"
    run top_json
    assert_success
    [ "$(jq -r '.nodes[] | select(.name == "n3") | .answered' <<<"$output")" = "false" ]
    [ -n "$(jq -r '.nodes[] | select(.name == "n3") | .error' <<<"$output")" ]
    [ "$(jq '[.nodes[] | select(.answered)] | length' <<<"$output")" -eq 2 ]
    [ "$(jq '[.actors[] | select(.node == "n3")] | length' <<<"$output")" -eq 0 ]
    kill -CONT "$(node_pid n3)"
}

@test "top: bad options are usage errors; the live view needs a terminal" {
    run murmer top --once --sort bogus
    [ "$status" -eq 2 ]
    assert_output --partial "unknown --sort column 'bogus'"
    run murmer top --json
    [ "$status" -eq 2 ]
    assert_output --partial "--json needs --once"
    run murmer top --once --interval 10ms
    [ "$status" -eq 2 ]
    run murmer top </dev/null
    [ "$status" -eq 2 ]
    assert_output --partial "needs a terminal"
}

# tmux: the live view, its header, a sort change, and q restoring the
# terminal (the shell's prompt is back, echo works again).
@test "top: live view under tmux: header, sort keys, / filter, q exits and restores the terminal" {
    command -v tmux >/dev/null || skip "tmux is not installed"
    start_top_cluster
    TMUX_SOCK="$BATS_TEST_TMPDIR/tmux.sock"
    local t="tmux -S $TMUX_SOCK"
    $t new-session -d -s top -x 160 -y 40 "env -u TMUX bash --norc --noprofile"
    $t send-keys -t top "stty -a | grep -o ' echo ' ; PS1='READY> '" Enter
    wait_for "$t capture-pane -p -t top | grep -q 'READY> '" 10
    $t send-keys -t top "clear; $MURMER_BUILD/murmer --join $SEED --cluster-key $KEY top --interval 300ms; echo EXIT=\$?" Enter
    wait_for "$t capture-pane -p -t top | grep -q 'murmer top  seed n1  sort MAILBOX'" 10
    wait_for "$t capture-pane -p -t top | grep -q 'counter/n3'" 10
    $t capture-pane -p -t top | grep -q 'CPU%'
    # > moves the sort to the next column: MSG/S.
    $t send-keys -t top '>'
    wait_for "$t capture-pane -p -t top | grep -q 'sort MSG/S'" 5
    $t send-keys -t top '<' '<' 'r'
    wait_for "$t capture-pane -p -t top | grep -q 'sort NODE (rev)'" 5
    # / types a prefix; Enter applies it.
    $t send-keys -t top '/' 'c' 'o' 'u' 'n' Enter
    wait_for "$t capture-pane -p -t top | grep -q 'prefix coun '" 5
    wait_for "! $t capture-pane -p -t top | grep -q 'echo/n1'" 5
    $t send-keys -t top 'q'
    wait_for "$t capture-pane -p -t top | grep -q 'EXIT=0'" 10
    # The terminal is back: canonical mode and echo, main screen.
    $t send-keys -t top "stty -a | grep -o ' icanon ' ; echo TYPED" Enter
    wait_for "$t capture-pane -p -t top | grep -qx ' icanon *'" 5 ||
        { $t capture-pane -p -t top; false; }

    # Ctrl-C also restores it (exit 130).
    $t send-keys -t top "clear; $MURMER_BUILD/murmer --join $SEED --cluster-key $KEY top; echo EXIT=\$?" Enter
    wait_for "$t capture-pane -p -t top | grep -q 'murmer top  seed'" 10
    $t send-keys -t top C-c
    wait_for "$t capture-pane -p -t top | grep -q 'EXIT=130'" 10
    $t send-keys -t top "stty -a | grep -o ' echo ' ; echo DONE" Enter
    wait_for "$t capture-pane -p -t top | grep -qx ' echo *'" 5
}
