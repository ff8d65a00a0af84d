#!/usr/bin/env bats
# 44-doctor: `murmer doctor` against a real 2-node cluster on loopback: a
# healthy node passes every check but avahi (--no-mdns skips it); a key
# file readable by others is a FAIL with the chmod that fixes it; a stopped
# node (nothing listening) is a FAIL and exit 3.

load 'helpers/cluster'
load 'helpers/members'

setup()
{
    murmer_setup
    command -v jq >/dev/null || skip "jq is not installed"
}

doctor()
{
    mm --timeout 4s doctor --data-dir "$BATS_TEST_TMPDIR/data-n1" --no-mdns "$@"
}

@test "doctor: a healthy node passes every check, exit 0" {
    start_cluster 2 --no-mdns
    wait_for "all_alive 2 $PORT_1 $PORT_2" 20
    run doctor
    assert_success
    for c in key-file data-dir identity ports listen advertise clock mtu avahi; do
        assert_line --regexp "^PASS  $c "
    done
    refute_output --partial "FAIL"
    assert_line --partial "1 of 1 answering members see it alive"
    run doctor --json
    assert_success
    [ "$(jq -r .schema <<<"$output")" = "murmer.doctor/1" ]
    [ "$(jq -r .worst <<<"$output")" = "pass" ]
    [ "$(jq '[.checks[] | select(.result != "pass")] | length' <<<"$output")" -eq 0 ]
    [ "$(jq -r '.checks[] | select(.check == "listen") | .detail' <<<"$output")" = "node n1 answers on $SEED" ]
    # A data dir others can enter: a warning with its fix, exit 1.
    chmod 755 "$BATS_TEST_TMPDIR/data-n1"
    run doctor
    [ "$status" -eq 1 ]
    assert_line --regexp "^WARN  data-dir .*mode 0755.*fix: chmod 700 $BATS_TEST_TMPDIR/data-n1\$"
}

@test "doctor: a cluster key file with mode 0644 is a FAIL with the fix" {
    start_cluster 1 --no-mdns
    chmod 644 "$KEY"
    run doctor
    [ "$status" -eq 3 ]
    assert_line --regexp "^FAIL  key-file   .*mode 0644.*fix: chmod 600 $KEY\$"
    run doctor --json
    [ "$status" -eq 3 ]
    [ "$(jq -r '.checks[] | select(.check == "key-file") | .fix' <<<"$output")" = "chmod 600 $KEY" ]
    [ "$(jq -r .worst <<<"$output")" = "fail" ]
    chmod 600 "$KEY"
}

@test "doctor: a stopped node is a FAIL (nothing listening), exit 3" {
    start_cluster 1 --no-mdns
    stop_node n1 TERM 10
    run doctor
    [ "$status" -eq 3 ]
    assert_line --regexp "^FAIL  listen     no node answers on $SEED"
    assert_line --partial "fix: start it: murmer start --listen $SEED"
    assert_line --regexp "^PASS  ports      UDP $SEED is free"
    # Another program holds the port: said so.
    python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
print("bound", flush=True)
time.sleep(30)' "$PORT_1" >"$BATS_TEST_TMPDIR/holder.out" &
    HOLDER=$!
    wait_for "grep -q bound '$BATS_TEST_TMPDIR/holder.out'" 10
    run doctor
    kill "$HOLDER"
    [ "$status" -eq 3 ]
    assert_line --regexp "^FAIL  ports      UDP $SEED is in use"
}

@test "doctor: without a key or data dir: warnings, not failures of those checks" {
    run murmer --join 127.0.0.1:1 --timeout 1s doctor --no-mdns
    [ "$status" -eq 3 ]
    assert_line --regexp "^WARN  key-file   no cluster key file given"
    assert_line --regexp "^WARN  data-dir   not checked"
    run murmer doctor --bogus
    [ "$status" -eq 2 ]
}
