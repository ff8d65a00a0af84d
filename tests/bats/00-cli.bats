#!/usr/bin/env bats
# 00-cli: usage, help, exit codes, local input validation and docs sync.
# Nothing here needs a running node.

load 'helpers/cluster'

commands() { murmer --list-commands; }

@test "--version prints the header's version" {
    want=$(sed -n 's/^#define MM_VERSION_STRING "\(.*\)"/\1/p' "$MURMER_SRC/lib/include/murmer.h")
    run --separate-stderr murmer --version
    assert_success
    assert_output "murmer $want"
}

@test "--help lists every command and global option" {
    run --separate-stderr murmer --help
    assert_success
    assert_line --index 0 --partial "usage: murmer"
    for c in $(commands); do assert_output --partial "  $c "; done
    for o in --join --cluster-key --timeout --json --verbose --quiet --no-color; do
        assert_output --partial -- "$o"
    done
}

@test "output that cannot be written is exit 1 with one line, from the front and the full CLI" {
    # members --help is answered by the front; keygen --help by the full CLI.
    for args in "--help" "members --help" "keygen --help"; do
        run --separate-stderr bash -c "murmer $args > /dev/full"
        assert_failure 1
        [[ $stderr == *"cannot write output: No space left on device"* ]]
        [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
    done
}

@test "no command is a usage error on stderr" {
    run --separate-stderr murmer
    assert_failure 2
    assert_output ""
    [[ $stderr == *"usage: murmer"* ]]
}

@test "every command has --help and help <command> says the same" {
    for c in $(commands); do
        run --separate-stderr timeout 10 murmer "$c" --help
        assert_success
        assert_line --index 0 --partial "usage: murmer $c"
        direct=$output
        run --separate-stderr timeout 10 murmer help "$c"
        assert_success
        [ "$output" = "$direct" ]
    done
}

@test "unknown command: one line with a suggestion, exit 2" {
    run --separate-stderr murmer lokup x
    assert_failure 2
    assert_output ""
    [ "$stderr" = "murmer: unknown command 'lokup' (did you mean 'lookup'?)" ]
    run --separate-stderr murmer frobnicate
    assert_failure 2
    [ "$stderr" = "murmer: unknown command 'frobnicate' (see 'murmer --help')" ]
    run --separate-stderr murmer help lokup
    assert_failure 2
    [[ $stderr == *"did you mean 'lookup'?"* ]]
}

@test "unknown option: one line with a suggestion, exit 2" {
    run --separate-stderr murmer lookup --wiat 5s x
    assert_failure 2
    assert_output ""
    [ "$stderr" = "murmer lookup: unknown option '--wiat' (did you mean '--wait'?)" ]
    run --separate-stderr murmer members --staus alive
    assert_failure 2
    [ "$stderr" = "murmer members: unknown option '--staus' (did you mean '--status'?)" ]
    run --separate-stderr murmer --jsno members
    assert_failure 2
    [ "$stderr" = "murmer: unknown option '--jsno' (did you mean '--json'?)" ]
    run --separate-stderr murmer send -x a b
    assert_failure 2
    [ "$stderr" = "murmer send: unknown option '-x'" ]
}

@test "options: missing value, value on a flag, extra argument" {
    run --separate-stderr murmer lookup x --wait
    assert_failure 2
    [ "$stderr" = "murmer lookup: option '--wait' needs DURATION" ]
    run --separate-stderr murmer members --wide=yes
    assert_failure 2
    [ "$stderr" = "murmer members: option '--wide' takes no value" ]
    run --separate-stderr murmer lookup a b
    assert_failure 2
    [[ $stderr == "murmer lookup: unexpected argument 'b'"* ]]
    run --separate-stderr murmer force-leave
    assert_failure 2
    [[ $stderr == "murmer force-leave: missing arguments"* ]]
}

@test "bad durations are usage errors" {
    for d in 5 5x 1.5s -1s ms 99999999h ""; do
        run --separate-stderr murmer --timeout "$d" members
        assert_failure 2
        [[ $stderr == "murmer: invalid duration"* ]] || [[ $stderr == *"needs DURATION"* ]]
    done
    run --separate-stderr murmer lookup --wait 10parsecs x
    assert_failure 2
    [[ $stderr == "murmer lookup: invalid duration '10parsecs' for --wait"* ]]
}

@test "global options work after the command" {
    port=$(free_port)
    # Parsed as global options: the command gets as far as its session.
    run --separate-stderr timeout 20 murmer lookup x --json --timeout 500ms --join "127.0.0.1:$port" -q
    assert_failure 4
    assert_output ""
    [[ $stderr == "murmer lookup: "* ]]
    [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
}

@test "local validation of client commands" {
    run --separate-stderr murmer members --status sleepy
    assert_failure 2
    [[ $stderr == "murmer members: bad --status 'sleepy'"* ]]
    run --separate-stderr murmer members --tag novalue
    assert_failure 2
    run --separate-stderr murmer lookup --wait 1s
    assert_failure 2
    [ "$stderr" = "murmer lookup: --wait needs a label" ]
    run --separate-stderr murmer lookup a --prefix b
    assert_failure 2
    run --separate-stderr murmer oplog --origin XYZ
    assert_failure 2
    run --separate-stderr murmer watch --count 0
    assert_failure 2
    run --separate-stderr murmer send --key k
    assert_failure 2
    run --separate-stderr murmer send onlylabel
    assert_failure 2
}

@test "send: malformed JSON exits 6 with the byte offset, before connecting" {
    run --separate-stderr murmer send counter/a increment '{"n":'
    assert_failure 6
    assert_output ""
    [ "$stderr" = "murmer send: malformed JSON at byte 5" ]
    run --separate-stderr murmer send counter/a increment '[1, 2] x'
    assert_failure 6
    [ "$stderr" = "murmer send: malformed JSON at byte 7" ]
    run --separate-stderr bash -c 'printf "{\"a\": tru}" | murmer send kv/a put -'
    assert_failure 6
    [ "$stderr" = "murmer send: malformed JSON at byte 6" ]
    run --separate-stderr bash -c 'printf "" | murmer send kv/a put -'
    assert_failure 6
    [ "$stderr" = "murmer send: malformed JSON at byte 0" ]
    run --separate-stderr murmer send --key workers ping '{'
    assert_failure 6
}

@test "send: valid JSON gets past validation" {
    port=$(free_port)
    run --separate-stderr timeout 20 murmer --join "127.0.0.1:$port" --timeout 500ms send counter/a increment 5
    assert_failure 4
    run --separate-stderr bash -c "echo '\"world\"' | timeout 20 murmer --join 127.0.0.1:$port --timeout 500ms send greeter/a greet -"
    assert_failure 4
}

@test "keygen to stdout: 44 base64 characters and a newline" {
    run --separate-stderr murmer keygen
    assert_success
    [[ $output =~ ^[A-Za-z0-9+/]{43}=$ ]]
    [ "$(murmer keygen | wc -c)" -eq 45 ]
    [ "$(murmer keygen)" != "$(murmer keygen)" ]
}

@test "keygen to a file: mode 0600, existing file refused" {
    f="$BATS_TEST_TMPDIR/cluster.key"
    run --separate-stderr murmer keygen "$f"
    assert_success
    assert_output ""
    [ "$(stat -c %a "$f")" = 600 ]
    [[ $(cat "$f") =~ ^[A-Za-z0-9+/]{43}=$ ]]
    before=$(cat "$f")
    run --separate-stderr murmer keygen "$f"
    assert_failure 1
    [ "$stderr" = "murmer keygen: $f exists; refusing to overwrite a key" ]
    [ "$(cat "$f")" = "$before" ]
    run --separate-stderr murmer keygen "$BATS_TEST_TMPDIR/no/such/dir/key"
    assert_failure
    [[ $stderr == "murmer keygen: cannot write"* ]]
}

@test "start: bad local input is refused before the node starts" {
    run --separate-stderr timeout 10 murmer start --actor 'c=counter:{"count":' --listen 127.0.0.1:0
    assert_failure 6
    [ "$stderr" = "murmer start: --actor 'c': malformed JSON at byte 9" ]
    run --separate-stderr murmer start --actor nolabel
    assert_failure 2
    run --separate-stderr murmer start --listen 127.0.0.1
    assert_failure 2
    run --separate-stderr murmer start --listen 0.0.0.0:7420
    assert_failure 2
    [[ $stderr == *"give --advertise"* ]]
    run --separate-stderr murmer start --tag =x
    assert_failure 2
    run --separate-stderr murmer start --shards 0
    assert_failure 2
    run --separate-stderr murmer start --mailbox-capacity 0
    assert_failure 2
    [[ $stderr == *"--mailbox-capacity must be 1..4194304"* ]]
    run --separate-stderr murmer start --mailbox-bytes 10
    assert_failure 2
    [[ $stderr == *"--mailbox-bytes must be at least 1024"* ]]
    run --separate-stderr murmer start --name 'bad/name'
    assert_failure 2
    run --separate-stderr murmer start extra
    assert_failure 2
}

@test "every command has a man page that documents each of its options" {
    for c in $(commands); do
        page="$MURMER_SRC/man/murmer-$c.1.scd"
        assert_file_exists "$page"
        grep -q "^\*$c\*\|\*murmer $c\*" "$page" || grep -q "murmer $c" "$page"
        for o in $(murmer "$c" --list-options); do
            grep -qF -- "*$o*" "$page" || fail "murmer-$c.1.scd does not document $o"
        done
        grep -qF -- "murmer-$c" "$MURMER_SRC/man/murmer.1.scd" ||
            grep -qF -- "*$c*" "$MURMER_SRC/man/murmer.1.scd" ||
            fail "murmer.1.scd does not list $c"
    done
    for o in $(murmer --list-options); do
        grep -qF -- "*$o*" "$MURMER_SRC/man/murmer.1.scd" || fail "murmer.1.scd does not document $o"
    done
    for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" ENVIRONMENT EXAMPLES "SEE ALSO"; do
        for c in $(commands); do
            grep -q "^# $s\$" "$MURMER_SRC/man/murmer-$c.1.scd" || fail "murmer-$c.1.scd lacks $s"
        done
    done
    for e in MURMER_JOIN MURMER_CLUSTER_KEY_FILE MURMER_CLUSTER_KEY MURMER_LOG NO_COLOR XDG_STATE_HOME; do
        grep -qF "*$e*" "$MURMER_SRC/man/murmer.1.scd" || fail "murmer.1.scd lacks $e"
    done
}

@test "scdoc builds every man page" {
    cd "$MURMER_SRC"
    run sh scripts/man.sh "$BATS_TEST_TMPDIR/man"
    assert_success
    for src in man/*.scd; do
        page="$BATS_TEST_TMPDIR/man/$(basename "$src" .scd)"
        assert_file_not_empty "$page"
        run man -l "$page"
        assert_success
    done
}

@test "every command is in the three completion files" {
    for c in $(commands); do
        for f in murmer.bash _murmer murmer.fish; do
            grep -qw -- "$c" "$MURMER_SRC/completions/$f" || fail "$f lacks $c"
        done
    done
    grep -q -- '--list-commands' "$MURMER_SRC/completions/_murmer"
    grep -q -- '--list-options' "$MURMER_SRC/completions/murmer.fish"
}

# complete LINE: runs the bash completion for LINE (cursor at the end)
# and leaves the candidates in $COMPREPLY.
complete_line()
{
    source /usr/share/bash-completion/bash_completion
    source "$MURMER_SRC/completions/murmer.bash"
    COMP_LINE=$1
    COMP_POINT=${#COMP_LINE}
    read -r -a COMP_WORDS <<<"$COMP_LINE"
    if [[ $COMP_LINE == *" " ]]; then COMP_WORDS+=(""); fi
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMPREPLY=()
    _murmer murmer "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
}

@test "bash completion: commands, options, global options after a command" {
    complete -p murmer 2>/dev/null || true
    complete_line "murmer mem"
    [ "${COMPREPLY[*]}" = "members" ]
    complete_line "murmer "
    [ "${#COMPREPLY[@]}" -eq "$(commands | wc -l)" ]
    complete_line "murmer lookup --wa"
    [ "${COMPREPLY[*]}" = "--wait" ]
    complete_line "murmer lookup x --ti"
    [ "${COMPREPLY[*]}" = "--timeout" ]
    complete_line "murmer --timeout 5s sta"
    [ "${COMPREPLY[*]}" = "start" ]
    complete_line "murmer start --no-"
    [[ " ${COMPREPLY[*]} " == *" --no-mdns "* ]]
    [[ " ${COMPREPLY[*]} " == *" --no-color "* ]]
    complete_line "murmer members --status su"
    [ "${COMPREPLY[*]}" = "suspect" ]
    complete_line "murmer help ke"
    [ "${COMPREPLY[*]}" = "keygen keys" ]
    complete_line "murmer keys i"
    [ "${COMPREPLY[*]}" = "install" ]
    complete_line "murmer --vers"
    [ "${COMPREPLY[*]}" = "--version" ]
}

@test "hidden helpers stay hidden and list real options" {
    run --separate-stderr murmer --help
    refute_output --partial "list-options"
    refute_output --partial "list-commands"
    run --separate-stderr murmer lookup --list-options
    assert_success
    assert_line -- "--wait"
    assert_line -- "-w"
    assert_line -- "--help"
    for o in $(murmer lookup --list-options); do
        run --separate-stderr murmer lookup --help
        assert_output --partial -- "$o"
    done
}

@test "MURMER_LOG accepts levels and warns once about a bad one" {
    MURMER_LOG=debug run --separate-stderr murmer keygen
    assert_success
    MURMER_LOG=loud run --separate-stderr murmer keygen
    assert_success
    [ "$stderr" = "murmer keygen: ignoring MURMER_LOG=loud (use debug, info, warn or error)" ]
    MURMER_LOG=loud run --separate-stderr murmer -q keygen
    assert_success
    [ -z "$stderr" ]
}
