#!/usr/bin/env bash
# check-install.sh — the installed copy is all a program or a plugin needs.
#
#   make check-install        (BUILD=build by default; `make all` first)
#
# 1. `make install PREFIX=<tmp>/prefix`: murmer.pc says that prefix, and
#    `pkg-config --libs murmer` asks for no libuv (murmer.h needs none).
# 2. Out of the tree, with only PKG_CONFIG_PATH and
#    `pkg-config --cflags --libs murmer`: builds every examples/*.c and
#    runs the greeter (LD_LIBRARY_PATH to the installed lib: "Hello,
#    world!") and timers; builds every examples/plugin/*.c as a plugin and
#    a host that loads hello_plugin and typed_plugin and calls them; compiles a file that includes only <murmer.h> under
#    -std=c11 -pedantic -Wall -Wextra -Werror with a uv.h and a cJSON.h that
#    refuse to be included; builds and runs a two-node test on
#    <murmer/testkit.h> the same way.
# 3. `make install DESTDIR=<tmp>/stage PREFIX=/opt/murmer-check`: the files
#    land under DESTDIR and murmer.pc says prefix=/opt/murmer-check.
#
# Prints "check-install: ok" and exits 0, or one line saying what failed
# (with the failing step's output) and exits 1.  Nothing outside the
# temporary folder is written but the build folder.
set -u
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
CC=${CC:-cc}
MAKE=${MAKE:-make}
SRC=$PWD

tmp=$(mktemp -d /tmp/murmer-install.XXXXXX) || exit 1
trap 'rm -rf "$tmp"' EXIT
log=$tmp/log

fail() {
    echo "check-install: $*"
    [ -s "$log" ] && sed 's/^/  /' "$log" | tail -40
    exit 1
}

# step DESCRIPTION CMD...: runs CMD (bounded) with its output in $log.
step() {
    local what=$1
    shift
    timeout 300 "$@" > "$log" 2>&1 || fail "$what failed (rc=$?)"
}

# ---- 1. install into a temporary prefix ----------------------------------
prefix=$tmp/prefix
step "make install PREFIX=$prefix" \
    "$MAKE" -C "$SRC" --no-print-directory BUILD="$BUILD" PREFIX="$prefix" install
for f in include/murmer.h include/murmer_base.h include/murmer/testkit.h lib/libmurmer.so lib/pkgconfig/murmer.pc; do
    [ -e "$prefix/$f" ] || fail "make install did not install $prefix/$f"
done
pc=$prefix/lib/pkgconfig/murmer.pc
grep -qx "prefix=$prefix" "$pc" || fail "murmer.pc does not say prefix=$prefix: $(grep '^prefix=' "$pc")"

export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
unset PKG_CONFIG_SYSROOT_DIR
flags=$(pkg-config --cflags --libs murmer) || fail "pkg-config --cflags --libs murmer failed"
case " $flags " in
*" -I$prefix/include "*) ;;
*) fail "pkg-config --cflags murmer lacks -I$prefix/include: $flags" ;;
esac
case " $flags " in
*" -luv "*) fail "pkg-config --libs murmer asks for libuv, which murmer.h does not need: $flags" ;;
esac

# ---- 2. build and run out of the tree ------------------------------------
out=$tmp/app
mkdir -p "$out"
cp examples/*.c examples/plugin/*.c "$out/"
cd "$out" || exit 1
CFLAGS_OOT=(-std=c11 -Wall -Wextra -Werror)
export LD_LIBRARY_PATH=$prefix/lib

for f in "$SRC"/examples/*.c; do
    b=$(basename "$f" .c)
    # shellcheck disable=SC2086 # $flags is a list of words
    step "building examples/$b.c out of the tree" \
        "$CC" "${CFLAGS_OOT[@]}" -o "$b" "$b.c" $flags
done
step "running the greeter built out of the tree" ./greeter
[ "$(cat "$log")" = "Hello, world!" ] || fail "the greeter printed '$(head -c 200 "$log")', not 'Hello, world!'"
step "running timers built out of the tree" ./timers
[ "$(tail -n 1 "$log")" = "done" ] || fail "timers printed '$(head -c 200 "$log")', not ending in 'done'"

for f in "$SRC"/examples/plugin/*.c; do
    b=$(basename "$f" .c)
    # shellcheck disable=SC2086
    step "building examples/plugin/$b.c out of the tree" \
        "$CC" "${CFLAGS_OOT[@]}" -fPIC -shared -fvisibility=hidden -o "$b.so" "$b.c" $flags
done

cat > host.c << 'EOF'
/* host PLUGIN TYPE MESSAGE JSON: loads PLUGIN, spawns an actor of TYPE and
 * calls it with MESSAGE and JSON. */
#include <murmer.h>
#include <stdio.h>
#include <string.h>

int
main(int argc, char **argv)
{
    mm_node_config cfg;
    mm_node *n = NULL;
    mm_endpoint ep;
    mm_msg *reply = NULL;
    char err[256] = "";
    size_t len = 0;
    int rc, status = 1;

    if (argc != 5) return 2;
    mm_node_config_init(&cfg);
    cfg.name = "check-install";
    if ((rc = mm_node_new(&n, &cfg)) != 0) {
        fprintf(stderr, "host: mm_node_new: %s\n", mm_strerror(rc));
        return 1;
    }
    if ((rc = mm_node_load_plugin(n, argv[1], err, sizeof(err))) != 0) {
        fprintf(stderr, "host: load %s: %s (%s)\n", argv[1], err, mm_strerror(rc));
        mm_node_free(n);
        return 1;
    }
    if ((rc = mm_node_start_thread(n)) != 0 ||
        (rc = mm_spawn(n, argv[2], NULL, &ep)) != 0 ||
        (rc = mm_call(n, &ep, mm_msg_new_json(argv[3], argv[4], strlen(argv[4])), &reply)) != 0) {
        fprintf(stderr, "host: %s\n", mm_strerror(rc));
    } else {
        const void *data = mm_msg_data(reply, &len);
        printf("%.*s\n", (int)len, (const char *)data);
        status = 0;
    }
    mm_msg_free(reply);
    mm_node_stop(n);
    mm_node_join(n);
    mm_node_free(n);
    return status;
}
EOF
# shellcheck disable=SC2086
step "building a plugin host out of the tree" "$CC" "${CFLAGS_OOT[@]}" -o host host.c $flags
step "loading the plugin built out of the tree" ./host "$out/hello_plugin.so" hello hello '"world"'
[ "$(cat "$log")" = '"Hello from a plugin, world!"' ] ||
    fail "the plugin answered '$(head -c 200 "$log")'"
step "loading the typed plugin built out of the tree" \
    ./host "$out/typed_plugin.so" account deposit '{"amount":5}'
[ "$(cat "$log")" = '{"balance":5}' ] ||
    fail "the typed plugin answered '$(head -c 200 "$log")'"

# murmer.h alone, under -std=c11 -pedantic, with uv.h and cJSON.h poisoned.
mkdir -p poison
for h in uv.h cJSON.h; do
    printf '#error "%s must not be needed by murmer.h"\n' "$h" > "poison/$h"
done
cat > only.c << 'EOF'
#include <murmer.h>

int
main(void)
{
    return mm_err_exit_code(MM_ENOTFOUND) == MM_EXIT_NOTFOUND ? 0 : 1;
}
EOF
# shellcheck disable=SC2086
step "compiling a file that includes only <murmer.h> (-std=c11 -pedantic)" \
    "$CC" -std=c11 -pedantic -Wall -Wextra -Werror -Ipoison -o only only.c $flags
step "running the program that includes only <murmer.h>" ./only

# The test kit: <murmer/testkit.h> alone, -std=c11 -pedantic, poisoned too;
# two nodes, one cut off and healed.
cat > tk.c << 'EOF'
#include <murmer/testkit.h>
#include <stdio.h>

int
main(void)
{
    mm_tk *tk = NULL;
    int rc = mm_tk_cluster_start(&tk, 2, NULL);
    if (rc == 0) rc = mm_tk_partition(tk, (const int[]){0, 1});
    if (rc == 0) rc = mm_tk_wait_state(tk, 1, MM_TK_FAILED, 0);
    if (rc == 0) rc = mm_tk_heal(tk);
    if (rc == 0) rc = mm_tk_wait_converged(tk, 0);
    if (rc != 0) fprintf(stderr, "tk: %s\n", mm_tk_error());
    mm_tk_stop(tk);
    return rc == 0 ? 0 : 1;
}
EOF
# shellcheck disable=SC2086
step "compiling a test on <murmer/testkit.h> (-std=c11 -pedantic)" \
    "$CC" -std=c11 -pedantic -Wall -Wextra -Werror -Ipoison -o tk tk.c $flags
step "running the test kit program built out of the tree" ./tk
cd "$SRC" || exit 1

# ---- 3. DESTDIR ----------------------------------------------------------
stage=$tmp/stage
step "make install DESTDIR=$stage PREFIX=/opt/murmer-check" \
    "$MAKE" -C "$SRC" --no-print-directory BUILD="$BUILD" DESTDIR="$stage" \
    PREFIX=/opt/murmer-check install
spc=$stage/opt/murmer-check/lib/pkgconfig/murmer.pc
[ -f "$spc" ] || fail "make install DESTDIR=... did not install $spc"
[ -e "$stage/opt/murmer-check/include/murmer.h" ] || fail "DESTDIR install lacks include/murmer.h"
[ -e "$stage/opt/murmer-check/include/murmer/testkit.h" ] || fail "DESTDIR install lacks include/murmer/testkit.h"
grep -qx "prefix=/opt/murmer-check" "$spc" ||
    fail "DESTDIR's murmer.pc does not say prefix=/opt/murmer-check: $(grep '^prefix=' "$spc")"
if grep -q "$stage" "$spc"; then fail "DESTDIR's murmer.pc names the staging folder"; fi
: > "$log"
echo "check-install: ok"
