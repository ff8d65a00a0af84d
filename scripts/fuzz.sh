#!/bin/sh
# Builds and runs every libFuzzer target tests/fuzz/fuzz_*.c, each for
# FUZZ_SECONDS (default 30).  Exits non-zero if a target fails to build or
# finds a crash, leak, sanitizer report or timeout.
#
# A target names the library sources it needs on a line of its own:
#     /* FUZZ_SOURCES: lib/wire.c lib/buf.c lib/util.c */
# Corpora live in build-fuzz/corpus/<name>/ (kept between runs) and are
# seeded from tests/fuzz/corpus/<name>/ when that exists.  A crashing input
# is written to build-fuzz/<name>-crash-*; replay it with
#     build-fuzz/<name> build-fuzz/<name>-crash-<hash>
#
# Environment: FUZZ_SECONDS, FUZZ_BUILD (build-fuzz), FUZZ_CC (clang),
# FUZZ_TARGETS (space-separated names, default all), FUZZ_ARGS (extra
# libFuzzer flags).
set -u

FUZZ_SECONDS=${FUZZ_SECONDS:-30}
OUT=${FUZZ_BUILD:-build-fuzz}
CC=${FUZZ_CC:-clang}
PKGS="libuv libcjson gnutls nettle hogweed libsodium"

if ! command -v "$CC" >/dev/null 2>&1; then
    echo "fuzz: $CC not found (install clang and libclang-rt-14-dev)" >&2
    exit 1
fi
PKG_CFLAGS=$(pkg-config --cflags $PKGS) || exit 1
PKG_LIBS=$(pkg-config --libs $PKGS) || exit 1
CFLAGS="-g -O1 -std=c11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
-fno-sanitize-recover=undefined -fno-omit-frame-pointer -Ilib -Ilib/include"

mkdir -p "$OUT/corpus" || exit 1
pass=0
fail=0
failed=""
for src in tests/fuzz/fuzz_*.c; do
    [ -f "$src" ] || continue
    name=$(basename "$src" .c)
    if [ -n "${FUZZ_TARGETS:-}" ]; then
        case " $FUZZ_TARGETS " in
        *" $name "*) ;;
        *) continue ;;
        esac
    fi
    sources=$(sed -n 's|^/\*[[:space:]]*FUZZ_SOURCES:\(.*\)\*/.*$|\1|p' "$src" |
        head -n 1)
    echo "fuzz: $name: building ($src$sources)"
    # shellcheck disable=SC2086
    if ! $CC $CFLAGS $PKG_CFLAGS -o "$OUT/$name" "$src" $sources \
        $PKG_LIBS -lpthread -lm >"$OUT/$name.build.log" 2>&1; then
        cat "$OUT/$name.build.log" >&2
        echo "fuzz: $name: build FAILED"
        fail=$((fail + 1))
        failed="$failed $name"
        continue
    fi
    corpus="$OUT/corpus/$name"
    mkdir -p "$corpus"
    if [ -d "tests/fuzz/corpus/$name" ]; then
        cp -f "tests/fuzz/corpus/$name"/* "$corpus"/ 2>/dev/null || true
    fi
    echo "fuzz: $name: running for ${FUZZ_SECONDS}s"
    # shellcheck disable=SC2086
    "$OUT/$name" -max_total_time="$FUZZ_SECONDS" -timeout=10 \
        -artifact_prefix="$OUT/$name-" -print_final_stats=1 ${FUZZ_ARGS:-} \
        "$corpus" >"$OUT/$name.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ]; then
        tail -n 60 "$OUT/$name.log" >&2
        echo "fuzz: $name: FAILED (rc=$rc, log $OUT/$name.log)"
        fail=$((fail + 1))
        failed="$failed $name"
    else
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$OUT/$name.log")
        echo "fuzz: $name: ok (${runs:-?} runs, corpus $(ls "$corpus" | wc -l))"
        pass=$((pass + 1))
    fi
done
[ -n "$failed" ] && echo "fuzz: failed:$failed"
echo "fuzz: $pass passed, $fail failed"
[ $fail -eq 0 ] && [ $pass -gt 0 ]
