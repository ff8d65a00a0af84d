#!/usr/bin/env bats
# 12-config: operating a node as a service.  `murmer start --config FILE`
# (keys = long options, precedence flag > environment > file > default,
# bad files exit 6 naming the file and the key), --advertise behind a
# wildcard --listen, --log-format json (every line parses), journald
# priorities, sd_notify readiness (READY=1 once listening, STOPPING=1 on
# SIGTERM) and the systemd units of contrib/systemd.

load 'helpers/cluster'
load 'helpers/members'

setup()
{
    murmer_setup
    unset MURMER_LOG_FORMAT JOURNAL_STREAM NOTIFY_SOCKET
    command -v jq >/dev/null || skip "jq is not installed"
}

# cfg NAME JSON: writes $BATS_TEST_TMPDIR/NAME.json, prints its path.
cfg()
{
    printf '%s\n' "$2" >"$BATS_TEST_TMPDIR/$1.json"
    echo "$BATS_TEST_TMPDIR/$1.json"
}

@test "config: the file's keys start the node (name, listen, demo, tag, shards, actor, check_in)" {
    KEY="$BATS_TEST_TMPDIR/cluster.key"
    murmer keygen "$KEY"
    port=$(free_port)
    f=$(cfg c1 "{\"name\": \"cfg1\", \"listen\": \"127.0.0.1:$port\",
        \"cluster_key\": \"$KEY\", \"data_dir\": \"$BATS_TEST_TMPDIR/d1\",
        \"mdns\": false, \"demo\": true, \"tag\": {\"role\": \"web\", \"dc\": \"x1\"},
        \"shards\": 2, \"mailbox_capacity\": 64, \"timeout\": \"3s\",
        \"actor\": [\"c/cfg=counter:{\\\"count\\\": 7}\"], \"check_in\": [\"c/cfg=counters\"]}")
    murmer start --config "$f" >"$BATS_TEST_TMPDIR/c1.out" 2>"$BATS_TEST_TMPDIR/c1.log" &
    echo "c1 $!" >>"$NODE_PIDS_FILE"
    log="$BATS_TEST_TMPDIR/c1.log"
    wait_for "grep -q 'listening on' '$log'" 20 || { cat "$log"; false; }
    grep -q "^murmer start: node cfg1 ([0-9a-f]*) listening on 127.0.0.1:$port\$" "$log" || { cat "$log"; false; }
    grep -q "^murmer start: started greeter/cfg1 (greeter) " "$log"
    [ -f "$BATS_TEST_TMPDIR/d1/key.pem" ]
    run members_json "$port"
    assert_success
    [ "$(jq -r '.members[] | select(.name == "cfg1") | .tags.role' <<<"$output")" = web ]
    [ "$(jq -r '.members[] | select(.name == "cfg1") | .tags.dc' <<<"$output")" = x1 ]
    run timeout 20 murmer --join "127.0.0.1:$port" --cluster-key "$KEY" send c/cfg get
    assert_success
    assert_output 7
    stop_node c1 TERM 10 || { cat "$log"; false; }
    [ "$STOP_RC" -eq 0 ]
}

@test "config: a flag outranks the environment, which outranks the file" {
    p1=$(free_port)
    p2=$(free_port)
    f=$(cfg c2 "{\"name\": \"fromfile\", \"listen\": \"127.0.0.1:$p1\", \"log_format\": \"json\",
        \"join\": [\"127.0.0.1:1\"]}")
    # The flag's --listen wins over the file's; the file's name stays;
    # MURMER_LOG_FORMAT=text wins over the file's json.
    MURMER_LOG_FORMAT=text start_node ignored --config "$f" --listen "127.0.0.1:$p2"
    log=$(node_log ignored)
    wait_for "grep -q 'listening on' '$log'" 20 || { cat "$log"; false; }
    grep -q "^murmer start: node ignored (.*) listening on 127.0.0.1:$p2\$" "$log" || { cat "$log"; false; }
    stop_node ignored TERM 10
    # Without the flag, the file's name; the environment's seed instead of
    # the file's (which nobody answers); --log-format json over the
    # environment's text.
    seed=$(free_port)
    start_node seed1 --listen "127.0.0.1:$seed"
    wait_for "grep -q 'listening on' '$(node_log seed1)'" 20
    MURMER_LOG_FORMAT=text MURMER_JOIN="127.0.0.1:$seed" murmer start --config "$f" --log-format json \
        >/dev/null 2>"$BATS_TEST_TMPDIR/ff.log" &
    echo "ff $!" >>"$NODE_PIDS_FILE"
    wait_for "grep -q 'listening on' '$BATS_TEST_TMPDIR/ff.log'" 20 || { cat "$BATS_TEST_TMPDIR/ff.log"; false; }
    jq -e 'select(.module == "start") | select(.message | test("^node fromfile .* listening on 127.0.0.1:'"$p1"'$"))' \
        "$BATS_TEST_TMPDIR/ff.log" >/dev/null || { cat "$BATS_TEST_TMPDIR/ff.log"; false; }
    wait_for "timeout 10 murmer --join 127.0.0.1:$seed members --json | jq -e 'any(.members[]; .name == \"fromfile\" and .state == \"alive\")'" 20
}

@test "config: unknown keys, wrong types and bad files exit 6 with one line naming file and key" {
    f=$(cfg bad1 '{"name": "x", "lisen": "127.0.0.1:0"}')
    run --separate-stderr timeout 20 murmer start --config "$f"
    assert_failure 6
    [ "$stderr" = "murmer start: $f: unknown key 'lisen' (did you mean 'listen'?)" ]

    f=$(cfg bad2 '{"shards": "2"}')
    run --separate-stderr timeout 20 murmer start --config "$f"
    assert_failure 6
    [ "$stderr" = "murmer start: $f: key 'shards': expected a whole number" ]

    f=$(cfg bad3 '{"join": "127.0.0.1:7420"}')
    run --separate-stderr timeout 20 murmer start --config "$f"
    assert_failure 6
    [ "$stderr" = "murmer start: $f: key 'join': expected an array of strings" ]

    f=$(cfg bad4 '{"demo": 1}')
    run --separate-stderr timeout 20 murmer start --config "$f"
    assert_failure 6
    [ "$stderr" = "murmer start: $f: key 'demo': expected true or false" ]

    f=$(cfg bad5 '{"tag": {"role": 1}}')
    run --separate-stderr timeout 20 murmer start --config "$f"
    assert_failure 6
    [[ $stderr == "murmer start: $f: key 'tag': expected an object of strings"* ]]

    f=$(cfg bad6 '{"name": "a", "name": "b"}')
    run --separate-stderr timeout 20 murmer start --config "$f"
    assert_failure 6
    [ "$stderr" = "murmer start: $f: key 'name' given twice" ]

    f=$(cfg bad7 '{"name": "a",
 "listen" "x"}')
    run --separate-stderr timeout 20 murmer start --config "$f"
    assert_failure 6
    [ "$stderr" = "murmer start: $f: malformed JSON at line 2, column 11" ]

    f=$(cfg bad8 '["name"]')
    run --separate-stderr timeout 20 murmer start --config "$f"
    assert_failure 6
    [ "$stderr" = "murmer start: $f: expected a JSON object of options" ]

    # Keys that are not start options: the config itself, client flags.
    f=$(cfg bad9 '{"config": "/etc/other.json"}')
    run --separate-stderr timeout 20 murmer start --config "$f"
    assert_failure 6
    [[ $stderr == "murmer start: $f: unknown key 'config'"* ]]

    run --separate-stderr timeout 20 murmer start --config "$BATS_TEST_TMPDIR/nosuch.json"
    assert_failure 6
    [ "$stderr" = "murmer start: cannot read $BATS_TEST_TMPDIR/nosuch.json: No such file or directory" ]

    # Bounded: a file over 1 MiB is refused before it is parsed.
    big="$BATS_TEST_TMPDIR/big.json"
    { printf '{"name": "'; head -c 1100000 /dev/zero | tr '\0' a; printf '"}\n'; } >"$big"
    run --separate-stderr timeout 20 murmer start --config "$big"
    assert_failure 6
    [ "$stderr" = "murmer start: $big: larger than 1048576 bytes: not a config file" ]

    # A value of the right type is checked as its flag is (exit 2).
    f=$(cfg bad10 '{"listen": "nowhere"}')
    run --separate-stderr timeout 20 murmer start --config "$f"
    assert_failure 2
    [ "$stderr" = "murmer start: bad --listen 'nowhere' (expected ADDR:PORT)" ]
    f=$(cfg bad11 '{"log_format": "xml"}')
    run --separate-stderr timeout 20 murmer start --config "$f"
    assert_failure 2
    [ "$stderr" = "murmer start: bad --log-format 'xml' (text or json)" ]
}

@test "advertise: a node on 0.0.0.0 is listed and dialled at the address it advertises" {
    KEY="$BATS_TEST_TMPDIR/cluster.key"
    murmer keygen "$KEY"
    pa=$(free_port)
    pb=$(free_port)
    # 127.0.0.2 reaches the wildcard socket through loopback, but only the
    # advertised address tells the others to use it.
    f=$(cfg adv "{\"listen\": \"0.0.0.0:$pa\", \"advertise\": \"127.0.0.2:$pa\", \"mdns\": false,
        \"cluster_key\": \"$KEY\", \"data_dir\": \"$BATS_TEST_TMPDIR/da\", \"demo\": true}")
    start_node adva --config "$f"
    wait_for "grep -q 'listening on' '$(node_log adva)'" 20 || { cat "$(node_log adva)"; false; }
    grep -q "listening on 127.0.0.2:$pa\$" "$(node_log adva)" || { cat "$(node_log adva)"; false; }
    start_node advb --listen "127.0.0.1:$pb" --join "127.0.0.2:$pa" --no-mdns \
        --cluster-key "$KEY" --data-dir "$BATS_TEST_TMPDIR/db"
    wait_for "[ \"\$(member_state $pb adva)\" = alive ]" 20 || { members_json "$pb"; cat "$(node_log advb)"; false; }
    run members_json "$pb"
    assert_success
    [ "$(jq -r '.members[] | select(.name == "adva") | .addr' <<<"$output")" = "127.0.0.2:$pa" ]
    # And b reaches a's actors there.
    wait_for "timeout 10 murmer --join 127.0.0.1:$pb --cluster-key '$KEY' send echo/adva echo '\"hi\"'" 20
    run timeout 20 murmer --join "127.0.0.1:$pb" --cluster-key "$KEY" send echo/adva echo '"hi"'
    assert_success
    assert_output '"hi"'
}

@test "log-format json: every line of a node's stderr is one JSON object (time, level, module, message, pid)" {
    port=$(free_port)
    start_node js1 --listen "127.0.0.1:$port" --demo --log-format json --log-level info
    log=$(node_log js1)
    wait_for "grep -q 'listening on' '$log'" 20 || { cat "$log"; false; }
    # A client call adds the node's own info lines.
    timeout 20 murmer --join "127.0.0.1:$port" send echo/js1 echo '"x"' >/dev/null
    stop_node js1 TERM 10
    [ "$STOP_RC" -eq 0 ]
    n=$(wc -l <"$log")
    [ "$n" -ge 8 ] || { cat "$log"; false; }
    # jq reads each line alone: one object per line, the fields typed.
    while IFS= read -r line; do
        jq -e '(keys == ["level","message","module","pid","time"]) and
               (.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$")) and
               (.level | IN("error","warn","notice","info","debug")) and
               (.pid | type == "number") and (.module | type == "string") and
               (.message | type == "string")' <<<"$line" >/dev/null ||
            { echo "bad line: $line"; false; }
    done <"$log"
    # The start command's lines: module "start", no "murmer start:" prefix.
    jq -se 'map(select(.module == "start" and (.message | startswith("started echo/js1 (echo) ")))) | length == 1' "$log"
    jq -se 'map(select(.level == "info")) | length >= 1' "$log"
    [ "$(jq -se "map(.pid) | unique" "$log")" = "$(jq -n "[$(node_pid js1)]")" ]
    # The command's own errors too, once the format is known.
    run --separate-stderr timeout 20 murmer start --log-format json --listen nowhere
    assert_failure 2
    [ "$(jq -r '.level + " " + .module + " " + .message' <<<"$stderr")" = \
        "error start bad --listen 'nowhere' (expected ADDR:PORT)" ]
    # MURMER_LOG_FORMAT=json does the same, for the command's own errors
    # once the node exists too.
    err="$BATS_TEST_TMPDIR/js2.log"
    rc=0
    MURMER_LOG_FORMAT=json timeout 20 murmer start --name js2 --listen "127.0.0.1:$(free_port)" \
        --actor 'x/1=nosuchtype' 2>"$err" || rc=$?
    [ "$rc" -eq 3 ] || { cat "$err"; false; }
    jq -se 'map(select(.level == "error" and .module == "start" and
        .message == "--actor x/1: unknown actor type '"'nosuchtype'"'")) | length == 1' "$err" ||
        { cat "$err"; false; }
}

@test "log-format text: plain lines, no colour codes, a <N> priority on the journal's stream" {
    port=$(free_port)
    start_node tx1 --listen "127.0.0.1:$port"
    log=$(node_log tx1)
    wait_for "grep -q 'listening on' '$log'" 20
    stop_node tx1 TERM 10
    ! grep -q $'\e' "$log"
    grep -q '^murmer\[[0-9]*\] W ckey: no cluster key' "$log" || { cat "$log"; false; }
    # With stderr on the stream $JOURNAL_STREAM names (device:inode), each
    # line starts with its syslog priority, which journald takes.
    jlog="$BATS_TEST_TMPDIR/journal.log"
    : >"$jlog"
    JOURNAL_STREAM=$(stat -c '%d:%i' "$jlog") timeout 20 murmer start --listen "127.0.0.1:$(free_port)" \
        --name tx2 --actor 'x/1=nosuchtype' 2>>"$jlog" || true
    grep -q '^<4>murmer\[[0-9]*\] W ckey: no cluster key' "$jlog" || { cat "$jlog"; false; }
    grep -q "^<3>murmer start: --actor x/1: unknown actor type 'nosuchtype'\$" "$jlog" || { cat "$jlog"; false; }
    # Another file with the same variable: no prefix.
    JOURNAL_STREAM=$(stat -c '%d:%i' "$jlog") timeout 20 murmer start --listen "127.0.0.1:$(free_port)" \
        --name tx3 --actor 'x/1=nosuchtype' 2>"$BATS_TEST_TMPDIR/other.log" || true
    grep -q '^murmer\[[0-9]*\] W ckey:' "$BATS_TEST_TMPDIR/other.log"
}

# notify_listener SOCKET OUT PORT: stands in for systemd in the background
# (sets LISTENER_PID): receives the datagrams on SOCKET (a path, or "@"
# and an abstract name) and writes one line each to OUT, "|" for newlines;
# on READY=1 it adds whether the node's UDP port is bound at that moment
# (port=inuse); it ends after STOPPING=1.
notify_listener()
{
    timeout 60 python3 -c '
import socket, sys, errno
path, out, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + path[1:] if path.startswith("@") else path)
s.settimeout(50)
with open(out, "a", buffering=1) as f:
    f.write("bound\n")
    while True:
        msg = s.recv(4096).decode()
        state = "free"
        if "READY=1" in msg:
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                u.bind(("127.0.0.1", port))
            except OSError as e:
                state = "inuse" if e.errno == errno.EADDRINUSE else "error"
            u.close()
        f.write(msg.replace("\n", "|") + " port=" + state + "\n")
        if "STOPPING=1" in msg:
            break
' "$1" "$2" "$3" &
    LISTENER_PID=$!
    wait_for "grep -q bound '$2'" 10
}

@test "sd_notify: READY=1 once the node listens, STOPPING=1 on SIGTERM" {
    command -v python3 >/dev/null || skip "python3 is not installed"
    for kind in path abstract; do
        got="$BATS_TEST_TMPDIR/notify-$kind.txt"
        port=$(free_port)
        if [ "$kind" = path ]; then
            sock="$BATS_TEST_TMPDIR/notify.sock"
        else
            sock="@murmer-test-$$-$BATS_TEST_NUMBER"
        fi
        notify_listener "$sock" "$got" "$port"
        NOTIFY_SOCKET="$sock" start_node "sd-$kind" --listen "127.0.0.1:$port" --demo
        wait_for "grep -q READY=1 '$got'" 20 ||
            { cat "$got" "$(node_log "sd-$kind")"; kill "$LISTENER_PID"; false; }
        grep -q "^READY=1|STATUS=listening on 127.0.0.1:$port port=inuse\$" "$got" ||
            { cat "$got"; kill "$LISTENER_PID"; false; }
        ! grep -q STOPPING "$got"
        stop_node "sd-$kind" TERM 10
        [ "$STOP_RC" -eq 0 ]
        wait "$LISTENER_PID"
        [ "$(tail -n 1 "$got")" = "STOPPING=1 port=free" ]
        [ "$(wc -l <"$got")" -eq 3 ]
    done
    # A socket nobody reads costs a warning, never the start.
    NOTIFY_SOCKET="$BATS_TEST_TMPDIR/nobody.sock" start_node sd2 --listen "127.0.0.1:$(free_port)"
    wait_for "grep -q 'listening on' '$(node_log sd2)'" 20
    wait_for "grep -q 'cannot notify' '$(node_log sd2)'" 10
    stop_node sd2 TERM 10
    [ "$STOP_RC" -eq 0 ]
}

@test "systemd units: systemd-analyze verify accepts both, with no warning" {
    command -v systemd-analyze >/dev/null ||
        skip "systemd-analyze is not installed (Debian package systemd)"
    d="$BATS_TEST_TMPDIR/units"
    mkdir -p "$d"
    # As make install writes them, with the binary of this build.
    for u in murmer.service murmer@.service; do
        sed "s|/usr/local/bin/murmer|$MURMER_BUILD/murmer|" "$MURMER_SRC/contrib/systemd/$u" >"$d/$u"
    done
    cp "$d/murmer@.service" "$d/murmer@a.service"
    run systemd-analyze verify --man=no "$d/murmer.service" "$d/murmer@a.service"
    [ "$status" -eq 0 ] || { echo "$output"; false; }
    [ -z "$output" ] || { echo "$output"; false; }
    for u in murmer.service murmer@.service; do
        grep -qx 'Type=notify' "$d/$u"
        grep -qx 'KillSignal=SIGTERM' "$d/$u"
        grep -qx 'DynamicUser=yes' "$d/$u"
        grep -qx 'ProtectSystem=strict' "$d/$u"
    done
    grep -qx 'ExecStart=.*/murmer start --name %i --config /etc/murmer/%i.json' "$d/murmer@.service"
    grep -qx 'StateDirectory=murmer/%i' "$d/murmer@.service"
}
