# murmer — top-level build.  See README.md and docs/.
#
#   make            library (.so with soname, .a, murmer.pc), CLI, examples
#   make test       deps + build + unit (cmocka) + bats; ends with "N passed, N failed, N skipped"
#   make asan       the same suites under AddressSanitizer + UBSan (build-asan/)
#   make tsan       the multi-shard unit tests under ThreadSanitizer (build-tsan/)
#   make fuzz       libFuzzer targets, bounded (FUZZ_SECONDS per target)
#   make bench      benchmarks (W= selects: W1 W2 W3 W4 W5 swim swim-serf registry mdns cli
#                   hostile sim observe)
#   make sim        the deterministic simulator (build/sim/murmer-sim): every
#                   sim/scenarios/*.txt at SIM_NODES nodes for SIM_SEEDS seeds,
#                   one seed replayed, the parser's errors (sim/check.sh)
#   make hostile    the hostile peer of bench/hostile.sh (build/hostile/mm-hostile)
#   make install    PREFIX=/usr/local, DESTDIR, UNITDIR (systemd units; default
#                   $(PREFIX)/lib/systemd/system)
#
# Sources are found by wildcard: a new lib/**/*.c, tests/unit/test_*.c,
# tests/fuzz/fuzz_*.c or cmd/*.c is picked up without editing this file.

VERSION_MAJOR := $(shell sed -n 's/^\#define MM_VERSION_MAJOR \([0-9]*\).*/\1/p' lib/include/murmer.h)
VERSION_MINOR := $(shell sed -n 's/^\#define MM_VERSION_MINOR \([0-9]*\).*/\1/p' lib/include/murmer.h)
VERSION_PATCH := $(shell sed -n 's/^\#define MM_VERSION_PATCH \([0-9]*\).*/\1/p' lib/include/murmer.h)
VERSION := $(VERSION_MAJOR).$(VERSION_MINOR).$(VERSION_PATCH)

BUILD ?= build
PREFIX ?= /usr/local
DESTDIR ?=
# systemd units (contrib/systemd/): their ExecStart gets $(PREFIX)/bin.
UNITDIR ?= $(PREFIX)/lib/systemd/system
CC ?= cc
WERROR ?= 1
OPT ?= -O2 -g

# avahi-client is opened with dlopen on first use (lib/discovery/avahi_dl.c):
# its headers are needed, its libraries are not linked.
PKGS := libuv libngtcp2 libngtcp2_crypto_gnutls gnutls nettle hogweed libsodium libcjson
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) avahi-client 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -ldl -lpthread
# OpenSSL only for unit tests that check our key and certificate files
# against a second implementation (test_identity, test_certkey); the
# library itself never links it.
TEST_PKG_LIBS = $(shell pkg-config --libs libcrypto 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wwrite-strings -Wformat=2 -Wvla -Wno-unused-parameter
ifeq ($(WERROR),1)
WARN += -Werror
endif
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -fPIC $(WARN) $(OPT) -MMD -MP
SAN ?=
CFLAGS_ALL = $(BASE_CFLAGS) $(SAN) $(EXTRA_CFLAGS)
LIB_CFLAGS = $(CFLAGS_ALL) -fvisibility=hidden -ffunction-sections -fdata-sections -Ilib -Ilib/include $(PKG_CFLAGS)
LDFLAGS_ALL = $(SAN) $(EXTRA_LDFLAGS)

# lib/local_client.c is the front binary's, not the library's (below).
LIB_SRC := $(filter-out lib/local_client.c,$(sort $(shell find lib -name '*.c')))
LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_SRC := $(sort $(wildcard cli/*.c cmd/*.c))
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_HELP_SRC := $(sort $(wildcard tests/unit/helpers/*.c))
UNIT_HELP_OBJ := $(UNIT_HELP_SRC:%.c=$(BUILD)/obj/%.o)
BENCH_SRC := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
EXAMPLE_SRC := $(sort $(wildcard examples/*.c))
EXAMPLE_BIN := $(EXAMPLE_SRC:examples/%.c=$(BUILD)/%)
PLUGIN_SRC := $(sort $(wildcard examples/plugin/*.c))
PLUGIN_SO := $(PLUGIN_SRC:examples/plugin/%.c=$(BUILD)/plugins/%.so)
TEST_PLUGIN_SRC := $(sort $(wildcard tests/plugins/*.c))
TEST_PLUGIN_SO := $(TEST_PLUGIN_SRC:tests/plugins/%.c=$(BUILD)/plugins/%.so)

SONAME := libmurmer.so.$(VERSION_MAJOR)
SO := $(BUILD)/libmurmer.so.$(VERSION)
STATIC := $(BUILD)/libmurmer.a
PC := $(BUILD)/murmer.pc
CLI_BIN := $(if $(CLI_SRC),$(BUILD)/murmer $(BUILD)/murmer-full)

.PHONY: all lib cli examples deps run test unit bats asan tsan fuzz bench hostile sim install \
        clean format check-format man check check-pure check-layers check-install

all: lib $(CLI_BIN) examples $(PLUGIN_SO) $(TEST_PLUGIN_SO)

lib: $(SO) $(BUILD)/libmurmer.so $(STATIC) $(PC)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CFLAGS) -c $< -o $@

$(SO): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,$(SONAME) -o $@ $(LIB_OBJ) $(LDFLAGS_ALL) $(PKG_LIBS) -lm

$(BUILD)/libmurmer.so: $(SO)
	ln -sf libmurmer.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf libmurmer.so.$(VERSION) $@

$(STATIC): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

# murmer.pc for PREFIX; `make install` writes it again for the PREFIX it
# installs to (a build made with another PREFIX is still right).
PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@VERSION@|$(VERSION)|g' lib/murmer.pc.in
$(PC): lib/murmer.pc.in lib/include/murmer.h
	@mkdir -p $(BUILD)
	$(PC_SED) > $@

# The CLI and the examples use only murmer.h and link the shared library
# (rpath $ORIGIN so binaries run in place from the build folder).
CLIENT_CFLAGS = $(CFLAGS_ALL) -Ilib/include -Icli $(shell pkg-config --cflags libuv libcjson)
CLIENT_LIBS = -L$(BUILD) -lmurmer -Wl,-rpath,'$$ORIGIN' $(shell pkg-config --libs libuv libcjson) -ldl -lpthread

$(BUILD)/obj/cli/%.o: cli/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CLIENT_CFLAGS) -c $< -o $@
$(BUILD)/obj/cmd/%.o: cmd/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CLIENT_CFLAGS) -c $< -o $@

# The CLI is two programs (docs/design.md, The local control socket):
# murmer-full, every command, linked with libmurmer (GnuTLS, ngtcp2); and
# murmer, the program users run: libc, libuv and cJSON only.  It serves
# FRONT_CMDS over the node's local socket (lib/local_client.c instead of
# the QUIC client.c; --gc-sections keeps only what they reach, so any
# reference into TLS or QUIC fails this link) and execs murmer-full with
# the same argv for everything else.  (murmer-full cannot be dlopen'ed
# instead: libmurmer's initial-exec TLS does not fit a dlopen.)
$(BUILD)/murmer-full: $(CLI_OBJ) $(BUILD)/libmurmer.so
	$(CC) -o $@ $(CLI_OBJ) $(LDFLAGS_ALL) $(CLIENT_LIBS) -rdynamic

FRONT_CMDS := force-leave lookup members oplog partitions ping
FRONT_OBJ := $(BUILD)/obj-front/cli/front/main.o \
  $(FRONT_CMDS:%=$(BUILD)/obj-front/cmd/%.o) \
  $(BUILD)/obj/cli/options.o $(BUILD)/obj/cli/output.o $(BUILD)/obj/cli/interrupt.o \
  $(addprefix $(BUILD)/obj/lib/,local_client.o client_cmds.o wire.o buf.o err.o \
    endpoint.o util.o identity.o session.o membership/swim.o membership/idx.o)
FRONT_LIBS = $(shell pkg-config --libs libcjson libuv) -lpthread -lm
$(BUILD)/obj-front/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CLIENT_CFLAGS) -Ilib -DMM_CLI_FRONT -ffunction-sections -c $< -o $@
$(BUILD)/murmer: $(FRONT_OBJ)
	$(CC) -o $@ $(FRONT_OBJ) $(LDFLAGS_ALL) -Wl,--gc-sections -Wl,--as-needed $(FRONT_LIBS)

examples: $(EXAMPLE_BIN)
$(BUILD)/%: examples/%.c $(BUILD)/libmurmer.so
	$(CC) $(CLIENT_CFLAGS) -o $@ $< $(LDFLAGS_ALL) $(CLIENT_LIBS)

# One plugin per examples/plugin/*.c.
$(PLUGIN_SO): $(BUILD)/plugins/%.so: examples/plugin/%.c lib/include/murmer.h lib/include/murmer_base.h lib/include/murmer_typed.h
	@mkdir -p $(dir $@)
	$(CC) $(CLIENT_CFLAGS) -fvisibility=hidden -shared -o $@ $< $(LDFLAGS_ALL) $(shell pkg-config --libs libcjson)

$(BUILD)/plugins/%.so: tests/plugins/%.c lib/include/murmer.h lib/include/murmer_base.h
	@mkdir -p $(dir $@)
	$(CC) $(CLIENT_CFLAGS) -fvisibility=hidden -shared -o $@ $< $(LDFLAGS_ALL)

# Unit tests link the static library so that mm__* internals are reachable.
UNIT_CFLAGS = $(CFLAGS_ALL) -Ilib -Ilib/include -Itests/unit $(PKG_CFLAGS)
$(BUILD)/obj/tests/unit/helpers/%.o: tests/unit/helpers/%.c
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -c $< -o $@
$(BUILD)/tests/%: tests/unit/%.c $(STATIC) $(UNIT_HELP_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -rdynamic -o $@ $< $(UNIT_HELP_OBJ) -Wl,--whole-archive $(STATIC) -Wl,--no-whole-archive $(LDFLAGS_ALL) $(PKG_LIBS) $(TEST_PKG_LIBS) -lcmocka -lm -ldl

# The hostile peer of bench/hostile.sh links the static library too.
HOSTILE_BIN := $(BUILD)/hostile/mm-hostile
hostile: $(HOSTILE_BIN)
$(HOSTILE_BIN): tests/hostile/mm-hostile.c $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(STATIC) $(LDFLAGS_ALL) $(PKG_LIBS) -lm -ldl

$(BUILD)/bench/%: bench/%.c $(BUILD)/libmurmer.so
	@mkdir -p $(dir $@)
	$(CC) $(CLIENT_CFLAGS) -Ilib -o $@ $< $(LDFLAGS_ALL) -L$(BUILD) -lmurmer -Wl,-rpath,'$$ORIGIN/..' $(shell pkg-config --libs libuv libcjson) -lpthread -lm

# The simulator links the static library: the SWIM and oplog cores are
# its nodes (docs/design.md, The simulator).
SIM_SRC := $(sort $(wildcard sim/*.c))
SIM_BIN := $(BUILD)/sim/murmer-sim
SIM_NODES ?= 40
SIM_SEEDS ?= 1..3
sim: $(SIM_BIN)
	@SIM=$(SIM_BIN) SIM_NODES=$(SIM_NODES) SIM_SEEDS=$(SIM_SEEDS) sh sim/check.sh
$(SIM_BIN): $(SIM_SRC) sim/sim.h $(STATIC)
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -Isim -o $@ $(SIM_SRC) $(STATIC) $(LDFLAGS_ALL) $(PKG_LIBS) -lm -ldl

deps:
	@sh scripts/deps.sh

# The README's first command: the main job.
run: deps
	@$(MAKE) --no-print-directory all
	@if [ -x $(BUILD)/murmer ]; then exec $(BUILD)/murmer start --demo $(ARGS); \
	 else exec $(BUILD)/greeter; fi

unit: lib $(UNIT_BIN)
	@BUILD=$(BUILD) sh scripts/run-unit.sh $(UNIT_BIN)

bats: all
	@BUILD=$(BUILD) bash scripts/run-bats.sh

# The whole suite: prints one closing line "N passed, N failed, N skipped".
test: deps
	@$(MAKE) --no-print-directory all hostile $(SIM_BIN) $(UNIT_BIN)
	@BUILD=$(BUILD) bash scripts/run-all-tests.sh $(UNIT_BIN)

asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g" \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  all hostile build-asan/sim/murmer-sim $(UNIT_SRC:tests/unit/%.c=build-asan/tests/%)
	@BUILD=build-asan MM_SANITIZED=1 \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	  bash scripts/run-all-tests.sh $(UNIT_SRC:tests/unit/%.c=build-asan/tests/%)

TSAN_TESTS ?= test_shards test_router
tsan:
	@$(MAKE) --no-print-directory BUILD=build-tsan OPT="-O1 -g" SAN="-fsanitize=thread" \
	  lib $(TSAN_TESTS:%=build-tsan/tests/%)
	@BUILD=build-tsan TSAN_OPTIONS=halt_on_error=1 sh scripts/run-unit.sh $(TSAN_TESTS:%=build-tsan/tests/%)

FUZZ_SECONDS ?= 30
fuzz:
	@FUZZ_SECONDS=$(FUZZ_SECONDS) sh scripts/fuzz.sh

W ?=
bench: all $(BENCH_BIN) $(HOSTILE_BIN) $(SIM_BIN)
	@BUILD=$(BUILD) W="$(W)" bash bench/run.sh

man:
	@sh scripts/man.sh $(BUILD)/man

install: all man
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	  $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions $(DESTDIR)$(PREFIX)/share/zsh/site-functions \
	  $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	install -m 0755 $(SO) $(DESTDIR)$(PREFIX)/lib/
	ln -sf libmurmer.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf libmurmer.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/libmurmer.so
	install -m 0644 $(STATIC) $(DESTDIR)$(PREFIX)/lib/
	install -m 0644 lib/include/murmer.h lib/include/murmer_base.h lib/include/murmer_typed.h $(DESTDIR)$(PREFIX)/include/
	install -d $(DESTDIR)$(PREFIX)/include/murmer
	install -m 0644 lib/include/murmer/testkit.h $(DESTDIR)$(PREFIX)/include/murmer/
	$(PC_SED) > $(DESTDIR)$(PREFIX)/lib/pkgconfig/murmer.pc
	chmod 0644 $(DESTDIR)$(PREFIX)/lib/pkgconfig/murmer.pc
	if [ -n "$(CLI_BIN)" ]; then install -d $(DESTDIR)$(PREFIX)/libexec/murmer && \
	  $(CC) -o $(DESTDIR)$(PREFIX)/libexec/murmer/murmer $(CLI_OBJ) $(LDFLAGS_ALL) \
	  -L$(BUILD) -lmurmer -Wl,-rpath,$(PREFIX)/lib $(shell pkg-config --libs libuv libcjson) -ldl -lpthread -rdynamic && \
	  install -m 0755 $(BUILD)/murmer $(DESTDIR)$(PREFIX)/bin/murmer; fi
	if ls $(BUILD)/man/*.1 >/dev/null 2>&1; then install -m 0644 $(BUILD)/man/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/; fi
	if [ -f completions/murmer.bash ]; then install -m 0644 completions/murmer.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/murmer; fi
	if [ -f completions/_murmer ]; then install -m 0644 completions/_murmer $(DESTDIR)$(PREFIX)/share/zsh/site-functions/; fi
	if [ -f completions/murmer.fish ]; then install -m 0644 completions/murmer.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/; fi
	install -d $(DESTDIR)$(UNITDIR)
	for u in contrib/systemd/*.service; do \
	  sed 's|/usr/local/bin/murmer|$(PREFIX)/bin/murmer|' $$u > $(DESTDIR)$(UNITDIR)/$${u##*/} && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; done

# Installs into a temporary PREFIX (and a DESTDIR), then builds the greeter,
# the example plugin and a program that includes only <murmer.h> out of the
# tree with nothing but `pkg-config --cflags --libs murmer`, and runs them.
# tests/bats/07-install.bats runs it in `make test`.
check-install: all
	@BUILD=$(BUILD) CC="$(CC)" MAKE="$(MAKE)" bash scripts/check-install.sh

FORMAT_SRC = $(shell find lib cli cmd tests/unit tests/fuzz examples bench sim -name '*.[ch]' 2>/dev/null)
format:
	clang-format -i $(FORMAT_SRC)
check-format:
	@clang-format --dry-run --Werror $(FORMAT_SRC)
	@echo "check-format: the tree matches .clang-format"

# The rules that run.  Each part also runs alone:
#   make check-pure    the sans-I/O cores compile with a uv.h (and socket
#                      headers) that refuse to be included: tests/poison
#                      comes first on the include path, so an include of
#                      <uv.h> from a core, or from any header it pulls in,
#                      stops the build.  murmer_base.h compiles alone too,
#                      and murmer.h alone under -std=c11 -pedantic.
#   make check-install the installed copy is enough: scripts/check-install.sh
#                      (a bats file runs it in `make test`)
#   make check-format  the tree matches .clang-format
#   make check-layers  cluster.c only composes: no module but node.c (the
#                      node's life: new, start, leave, free) calls into it
check: check-pure check-layers check-format

PURE_SRC := lib/wire.c lib/buf.c lib/oplog.c lib/membership/swim.c \
            lib/membership/idx.c lib/membership/seal.c lib/supervisor.c lib/hlc.c lib/jsonv.c
PURE_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -Itests/poison -Ilib -Ilib/include
check-pure:
	@set -e; for f in $(PURE_SRC); do \
	  $(CC) $(PURE_CFLAGS) -fsyntax-only $$f; done
	@printf '#include <murmer_base.h>\n' | \
	  $(CC) -std=c11 -Wall -Wextra -Werror -Itests/poison -Ilib/include -fsyntax-only -x c -
	@printf '#include <murmer.h>\n' | \
	  $(CC) -std=c11 -pedantic -Wall -Wextra -Werror -Itests/poison -Ilib/include -fsyntax-only -x c -
	@printf '#include <murmer/testkit.h>\n' | \
	  $(CC) -std=c11 -pedantic -Wall -Wextra -Werror -Itests/poison -Ilib/include -fsyntax-only -x c -
	@echo "check-pure: $(words $(PURE_SRC)) pure cores, murmer_base.h, murmer.h and murmer/testkit.h (-std=c11 -pedantic) compile without libuv"

check-layers:
	@bad=$$(grep -rn 'mm__cluster_[a-z_]*(' lib --include='*.c' --include='*.h' | \
	  grep -v '^lib/cluster\.[ch]:' | \
	  grep -vE '^lib/node\.c:[0-9]+:.*mm__cluster_(new|free|start|leave)\(' ); \
	if [ -n "$$bad" ]; then echo "check-layers: only node.c may call into cluster.c (new/free/start/leave):"; \
	  echo "$$bad"; exit 1; fi
	@echo "check-layers: cluster.c is called only by node.c, for the node's life"

clean:
	rm -rf build build-asan build-tsan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
