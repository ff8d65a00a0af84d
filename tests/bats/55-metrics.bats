#!/usr/bin/env bats
# 55-metrics: `murmer start --metrics ADDR` serves the Prometheus text
# format on GET /metrics only: the families are there and move with
# traffic, a two-node cluster shows its peer's QUIC figures, other paths
# and methods are refused, bad addresses exit 2, a taken port exits 1, and
# `promtool check metrics` accepts the text (skipped without promtool).

load 'helpers/cluster'

setup()
{
    murmer_setup
    command -v curl >/dev/null || skip "curl is not installed"
}

# metrics_addr NAME: the address the node's log line names.
metrics_addr()
{
    sed -n 's|^murmer start: metrics on http://\(.*\)/metrics$|\1|p' "$(node_log "$1")"
}

# value FILE SAMPLE: the value of the sample line "SAMPLE value".
value()
{
    awk -v k="$2" '$1 == k { print $2; found = 1 } END { if (!found) print -1 }' "$1"
}

scrape()
{
    curl -sS --max-time 10 -o "$2" "http://$1/metrics"
}

@test "metrics: a single node serves the families; counters move with traffic" {
    port=$(free_port)
    start_node m1 --demo --listen "127.0.0.1:$port" --metrics 127.0.0.1:0
    log=$(node_log m1)
    wait_for "grep -q 'listening on' '$log'" 20 || { cat "$log"; false; }
    addr=$(metrics_addr m1)
    [[ $addr =~ ^127\.0\.0\.1:[0-9]+$ ]] || { cat "$log"; fail "no metrics line"; }
    run curl -sS --max-time 10 -D - -o "$BATS_TEST_TMPDIR/m0" "http://$addr/metrics"
    assert_success
    assert_line --partial 'HTTP/1.1 200 OK'
    assert_line --partial 'Content-Type: text/plain; version=0.0.4; charset=utf-8'
    assert_line --partial 'Connection: close'
    m0=$BATS_TEST_TMPDIR/m0
    for fam in murmer_members murmer_actors murmer_messages_processed_total \
        murmer_calls_total murmer_mailbox_messages murmer_mailbox_depth_messages \
        murmer_handler_duration_seconds murmer_actor_restarts_total \
        murmer_swim_probes_total murmer_swim_suspicions_total \
        murmer_swim_refutations_total murmer_gossip_sent_bytes_total \
        murmer_quic_connections murmer_quic_peer_rtt_seconds \
        murmer_quic_peer_cwnd_bytes murmer_registry_entries \
        murmer_registry_ops_applied_total murmer_registry_anti_entropy_rounds_total \
        process_resident_memory_bytes process_cpu_seconds_total \
        process_open_fds process_start_time_seconds; do
        grep -q "^# TYPE $fam " "$m0" || { cat "$m0"; fail "no family $fam"; }
        grep -q "^# HELP $fam " "$m0" || fail "no HELP for $fam"
    done
    [ "$(value "$m0" 'murmer_actors{type="echo"}')" = 1 ]
    [ "$(value "$m0" 'murmer_members{state="alive"}')" = 1 ]
    [ "$(value "$m0" 'murmer_registry_entries')" = 4 ]
    before=$(value "$m0" murmer_messages_processed_total)
    ok_before=$(value "$m0" 'murmer_calls_total{status="ok"}')
    for i in 1 2 3 4 5 6 7 8 9 10; do
        timeout 20 murmer --join "127.0.0.1:$port" send echo/m1 echo '{"i":1}' >/dev/null
    done
    scrape "$addr" "$BATS_TEST_TMPDIR/m1"
    after=$(value "$BATS_TEST_TMPDIR/m1" murmer_messages_processed_total)
    ok_after=$(value "$BATS_TEST_TMPDIR/m1" 'murmer_calls_total{status="ok"}')
    [ "$after" -ge $((before + 10)) ] || fail "processed $before -> $after"
    [ "$ok_after" -ge $((ok_before + 10)) ] || fail "ok calls $ok_before -> $ok_after"
    [ "$(value "$BATS_TEST_TMPDIR/m1" murmer_quic_connections_accepted_total)" -ge 10 ]
    stop_node m1 TERM 10
    [ "$STOP_RC" -eq 0 ] || { cat "$log"; fail "exit status $STOP_RC"; }
}

@test "metrics: a two-node cluster shows the peer's QUIC figures and two alive members" {
    start_cluster 2 --no-mdns --metrics 127.0.0.1:0
    a1=$(metrics_addr n1)
    m=$BATS_TEST_TMPDIR/n1.prom
    wait_for "scrape $a1 $m && [ \"\$(value $m 'murmer_members{state=\"alive\"}')\" = 2 ]" 30 ||
        { cat "$m"; false; }
    wait_for "scrape $a1 $m && grep -q '^murmer_quic_peer_rtt_seconds{peer=\"[0-9a-f]\{32\}\",name=\"n2\"} ' $m" 30 ||
        { cat "$m"; false; }
    rtt=$(awk '$1 ~ /^murmer_quic_peer_rtt_seconds\{.*name="n2"/ { print $2 }' "$m")
    awk -v r="$rtt" 'BEGIN { exit !(r > 0 && r < 1) }' || fail "rtt $rtt"
    grep -qE '^murmer_quic_peer_sent_bytes_total\{peer="[0-9a-f]{32}",name="n2"\} [1-9][0-9]*$' "$m"
    grep -qE '^murmer_quic_peer_cwnd_bytes\{peer="[0-9a-f]{32}",name="n2"\} [1-9][0-9]*$' "$m"
    # Gossip flows: both directions counted.
    wait_for "scrape $a1 $m && [ \"\$(value $m murmer_gossip_sent_bytes_total)\" -gt 0 ] && [ \"\$(value $m murmer_swim_probes_total)\" -gt 0 ]" 30 ||
        { cat "$m"; false; }
    # The registry learnt n2's four demo actors.
    wait_for "scrape $a1 $m && [ \"\$(value $m murmer_registry_entries)\" = 8 ]" 30 ||
        { cat "$m"; false; }
    [ "$(value "$m" murmer_registry_ops_applied_total)" -ge 4 ]
}

@test "metrics: only GET /metrics is served" {
    port=$(free_port)
    start_node g1 --listen "127.0.0.1:$port" --metrics 127.0.0.1:0
    wait_for "grep -q 'listening on' '$(node_log g1)'" 20
    addr=$(metrics_addr g1)
    code() { curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$@"; }
    [ "$(code "http://$addr/metrics")" = 200 ]
    [ "$(code "http://$addr/")" = 404 ]
    [ "$(code "http://$addr/metrics/x")" = 404 ]
    [ "$(code "http://$addr/debug/pprof")" = 404 ]
    [ "$(code -X POST -d x "http://$addr/metrics")" = 405 ]
    [ "$(code -X DELETE "http://$addr/metrics")" = 405 ]
    [ "$(code -I "http://$addr/metrics")" = 405 ]
    run curl -sS --max-time 10 -D - -o /dev/null -X PUT "http://$addr/metrics"
    assert_line --partial 'Allow: GET'
    # An oversized head: 431.
    big=$(head -c 9000 /dev/zero | tr '\0' a)
    [ "$(code -H "X-Big: $big" "http://$addr/metrics")" = 431 ]
    # Still serving.
    [ "$(code "http://$addr/metrics")" = 200 ]
}

@test "metrics: a bad --metrics exits 2, a taken port exits 1" {
    run --separate-stderr timeout 20 murmer start --listen 127.0.0.1:0 --metrics nonsense
    assert_failure 2
    [ "$stderr" = "murmer start: bad --metrics 'nonsense' (expected ADDR:PORT)" ]
    run --separate-stderr timeout 20 murmer start --listen 127.0.0.1:0 --metrics 127.0.0.1:70000
    assert_failure 2
    port=$(free_port)
    start_node t1 --listen "127.0.0.1:$port" --metrics 127.0.0.1:0
    wait_for "grep -q 'listening on' '$(node_log t1)'" 20
    taken=$(metrics_addr t1)
    run --separate-stderr timeout 20 murmer start --name t2 --listen 127.0.0.1:0 --metrics "$taken"
    assert_failure 1
    [[ $stderr == *"murmer start: --metrics $taken: cannot serve"* ]] || fail "$stderr"
}

@test "metrics: promtool check metrics accepts the text" {
    command -v promtool >/dev/null ||
        skip "promtool is not installed (Debian package prometheus; make deps)"
    start_cluster 2 --no-mdns --metrics 127.0.0.1:0
    a1=$(metrics_addr n1)
    m=$BATS_TEST_TMPDIR/n1.prom
    wait_for "scrape $a1 $m && grep -q '^murmer_quic_peer_rtt_seconds{' $m" 30 || { cat "$m"; false; }
    run promtool check metrics <"$m"
    [ "$status" -eq 0 ] || { echo "$output"; cat "$m"; false; }
}

# A TCP port the OS just handed out on 127.0.0.1 (then released).
free_tcp_port()
{
    python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

@test "metrics: a real Prometheus server scrapes the node" {
    command -v prometheus >/dev/null ||
        skip "prometheus is not installed (Debian package prometheus; make deps)"
    command -v jq >/dev/null || skip "jq is not installed"
    port=$(free_port)
    start_node s1 --demo --listen "127.0.0.1:$port" --metrics 127.0.0.1:0
    wait_for "grep -q 'listening on' '$(node_log s1)'" 20
    addr=$(metrics_addr s1)
    web=127.0.0.1:$(free_tcp_port)
    cat >"$BATS_TEST_TMPDIR/prom.yml" <<CONF
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: murmer
    static_configs:
      - targets: ['$addr']
CONF
    prometheus --config.file="$BATS_TEST_TMPDIR/prom.yml" \
        --storage.tsdb.path="$BATS_TEST_TMPDIR/tsdb" --web.listen-address="$web" \
        >"$BATS_TEST_TMPDIR/prom.log" 2>&1 &
    echo "prometheus $!" >>"$NODE_PIDS_FILE"
    q="http://$web/api/v1/query?query="
    # Started and scraped once within the test's bound: up is 1.
    up() { curl -sf --max-time 2 "${q}up" | jq -r '.data.result[0].value[1]'; }
    wait_for '[ "$(up)" = 1 ]' 60 ||
        { tail -20 "$BATS_TEST_TMPDIR/prom.log"; curl -s "http://$web/api/v1/targets"; false; }
    run curl -sf --max-time 5 "${q}murmer_actors"
    [ "$status" -eq 0 ] || { tail -20 "$BATS_TEST_TMPDIR/prom.log"; false; }
    [ "$(jq '[.data.result[] | select(.metric.type == "echo")][0].value[1]' <<<"$output")" = '"1"' ]
    # Prometheus saw nothing it could not parse.
    run curl -sf --max-time 5 "http://$web/api/v1/targets"
    [ "$(jq -r '.data.activeTargets[0].lastError' <<<"$output")" = "" ]
}
