#!/usr/bin/env bats
# The installed copy is all a program or a plugin needs (scripts/check-install.sh):
# make install into a temporary PREFIX (and a DESTDIR), then every example
# (examples/*.c: greeter, timers, two_node, spawn), every example plugin
# (examples/plugin/*.c: hello_plugin, typed_plugin) and a file that includes
# only <murmer.h> (-std=c11 -pedantic) are built out of the tree with only
# `pkg-config --cflags --libs murmer` and -Wall -Wextra -Werror; the greeter
# and timers run, and a host loads both plugins and calls their actors.

bats_require_minimum_version 1.5.0
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

setup() {
    ROOT=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
    BUILD_DIR=${MURMER_BUILD:-$ROOT/build}
}

@test "an installed murmer builds the examples out of the tree with pkg-config alone" {
    # Under ASan the build's objects need the sanitizer at link time, which an
    # out-of-tree program does not ask for: the plain build runs this check.
    [ -z "${MM_SANITIZED:-}" ] || skip "runs in the plain build (make test)"
    run --separate-stderr timeout 600 env BUILD="${BUILD_DIR#"$ROOT"/}" \
        bash "$ROOT/scripts/check-install.sh"
    assert_success
    assert_output --partial "check-install: ok"
}
