#!/bin/sh
# make sim: every sim/scenarios/*.txt at SIM_NODES nodes for the seeds
# SIM_SEEDS (A..B), one seed of each replayed in the same process and in a
# second process (trace digests must match), and the checker's own tests
# (sim/tests/: an undeclared fault must be reported, a bad line refused).
set -u
SIM=${SIM:-build/sim/murmer-sim}
N=${SIM_NODES:-40}
SEEDS=${SIM_SEEDS:-1..3}
fail=0
first=${SEEDS%%..*}
trace_of() { sed -n 's/.* trace=\([0-9a-f]*\)$/\1/p' | tail -1; }
for sc in sim/scenarios/*.txt; do
    if ! out=$("$SIM" --quiet --nodes "$N" --seeds "$SEEDS" "$sc"); then
        echo "FAIL $sc: $out"; fail=1; continue
    fi
    if ! out=$("$SIM" --replay --nodes "$N" --seed "$first" "$sc"); then
        echo "FAIL $sc replay: $out"; fail=1; continue
    fi
    t1=$(printf '%s\n' "$out" | grep '^seed=' | trace_of)
    t2=$("$SIM" --nodes "$N" --seed "$first" "$sc" | trace_of)
    if [ -z "$t1" ] || [ "$t1" != "$t2" ]; then
        echo "FAIL $sc: seed $first gave trace '$t1' then '$t2'"; fail=1; continue
    fi
    echo "ok   $sc: seeds $SEEDS at N=$N, seed $first replays ($t1)"
done
out=$("$SIM" sim/tests/undeclared-drop.txt); rc=$?
if [ $rc -ne 1 ] || ! printf '%s\n' "$out" | grep -q 'VIOLATION seed=1 .*invariant=no-false-failure'; then
    echo "FAIL sim/tests/undeclared-drop.txt: rc=$rc, want 1 and a violation: $out"; fail=1
else
    echo "ok   sim/tests/undeclared-drop.txt: the undeclared fault is reported"
fi
err=$("$SIM" sim/tests/bad-range.txt 2>&1); rc=$?
if [ $rc -ne 2 ] || [ "$err" != "murmer-sim: sim/tests/bad-range.txt:3: bad node range '5-x' (want all, K, A-B, P%-Q% or A-Q%)" ]; then
    echo "FAIL sim/tests/bad-range.txt: rc=$rc: $err"; fail=1
else
    echo "ok   sim/tests/bad-range.txt: refused with its line number"
fi
[ $fail -eq 0 ] && echo "sim: all passed" || echo "sim: FAILED"
exit $fail
