#!/usr/bin/env bats
# The quick-start example: build/greeter prints "Hello, world!" and exits 0.

bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup() {
    GREETER="${MURMER_BUILD:-$BATS_TEST_DIRNAME/../../build}/greeter"
}

@test "greeter is built" {
    assert [ -x "$GREETER" ]
}

@test "greeter prints Hello, world! on stdout and exits 0" {
    run --separate-stderr timeout 20 "$GREETER"
    assert_success
    assert_output "Hello, world!"
}

@test "greeter prints nothing on stderr" {
    run --separate-stderr timeout 20 "$GREETER"
    assert_success
    [ -z "$stderr" ] || fail "unexpected stderr: $stderr"
}
