#!/bin/sh
# Runs cmocka unit-test binaries; each is bounded by timeout(1).
# Prints "unit: N passed, N failed" on its last line; exit 1 if any failed.
set -u
pass=0; fail=0; failed=""
for t in "$@"; do
    out=$(timeout 300 "$t" 2>&1); rc=$?
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    p=${p:-0}; f=${f:-0}
    if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
    pass=$((pass + p)); fail=$((fail + f))
    if [ $rc -ne 0 ]; then
        failed="$failed $(basename "$t")"
        printf '%s\n' "$out" | tail -60
        echo "unit: $(basename "$t") FAILED (rc=$rc)"
    else
        echo "unit: $(basename "$t"): $p passed"
    fi
done
echo "unit: $pass passed, $fail failed"
[ $fail -eq 0 ]
