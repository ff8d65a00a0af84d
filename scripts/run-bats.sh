#!/usr/bin/env bash
# Runs the bats suites in TAP mode; prints "bats: N passed, N failed, N skipped".
set -u
BUILD=${BUILD:-build}
export MURMER_BUILD=$PWD/$BUILD
files=(tests/bats/*.bats)
if [ ! -e "${files[0]}" ]; then echo "bats: 0 passed, 0 failed, 0 skipped"; exit 0; fi
tap=$(mktemp)
timeout 1500 bats --tap "${files[@]}" | tee "$tap"; rc=${PIPESTATUS[0]}
pass=$(grep -c '^ok ' "$tap"); skip=$(grep -c '^ok .* # skip' "$tap"); fail=$(grep -c '^not ok ' "$tap")
rm -f "$tap"
echo "bats: $((pass - skip)) passed, $fail failed, $skip skipped"
[ "$rc" -eq 0 ] && [ "$fail" -eq 0 ]
