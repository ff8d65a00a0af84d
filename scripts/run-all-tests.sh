#!/usr/bin/env bash
# Runs unit then bats tests and prints the closing line "N passed, N failed, N skipped",
# preceded by the run's wall time ("tests: N s wall (BUILD)").  CI parses the
# closing line: keep it last and alone on its line.
set -u
BUILD=${BUILD:-build}
start=$(date +%s)
log=$(mktemp)
sh scripts/run-unit.sh "$@" 2>&1 | tee "$log"; urc=${PIPESTATUS[0]}
BUILD=$BUILD bash scripts/run-bats.sh 2>&1 | tee -a "$log"; brc=${PIPESTATUS[0]}
up=$(sed -n 's/^unit: \([0-9]*\) passed, \([0-9]*\) failed$/\1/p' "$log" | tail -1)
uf=$(sed -n 's/^unit: \([0-9]*\) passed, \([0-9]*\) failed$/\2/p' "$log" | tail -1)
bp=$(sed -n 's/^bats: \([0-9]*\) passed.*/\1/p' "$log" | tail -1)
bf=$(sed -n 's/^bats: [0-9]* passed, \([0-9]*\) failed.*/\1/p' "$log" | tail -1)
bs=$(sed -n 's/^bats: .* \([0-9]*\) skipped$/\1/p' "$log" | tail -1)
rm -f "$log"
up=${up:-0}; uf=${uf:-1}; bp=${bp:-0}; bf=${bf:-1}; bs=${bs:-0}
if [ "$urc" -ne 0 ] && [ "$uf" -eq 0 ]; then uf=1; fi
if [ "$brc" -ne 0 ] && [ "$bf" -eq 0 ]; then bf=1; fi
echo "tests: $(($(date +%s) - start)) s wall ($BUILD)"
echo "$((up + bp)) passed, $((uf + bf)) failed, $bs skipped"
[ "$urc" -eq 0 ] && [ "$brc" -eq 0 ]
