# quality.mk - the quality targets of hpass, included by the Makefile:
# sanitizers, valgrind, coverage, lint, every Lua, LuaRocks, Windows under
# wine, the POSIX fallbacks and other C libraries, benchmarks.  .ci/run
# runs them; each installs what it needs.

HELP += \
  check-all      'the suite on Lua 5.1, 5.2, 5.3, 5.4, 5.5 and LuaJIT' \
  check-abi51    'Lua 5.1 and LuaJIT, each on a build with the headers of the other' \
  check-luarocks 'luarocks make into a temporary tree (5.1-5.4), run the example' \
  check-asan     'the suite with AddressSanitizer + UBSan' \
  check-valgrind 'the suite under valgrind memcheck' \
  check-restart  'hotrestart.lua under 400 connections, restarted 20 times' \
  check-stress   'the stress at length: 10,000 leak cycles, 1,024 live children' \
  check-stream   'the stream against its model: 10 seeds of 20,000 random steps' \
  check-subprocess 'pipes, communicate, pipeline at full size, and the pipeline benchmark' \
  coverage       'line coverage of the C sources (fails below 95%)' \
  lint           'lint-lua and lint-c' \
  lint-lua       'luacheck over lua/ examples/ tests/ bench/ tools/' \
  lint-c         'the source lists, cppcheck, clang-tidy, function and file sizes' \
  check-docs     'make targets and exports named in the docs, Lua samples run' \
  test-windows   'cross-build for Windows and test under wine' \
  test-fallbacks 'the suite on builds with each platform choice forced' \
  fallback-NAME  'one build of test-fallbacks (NAME: one of FALLBACKS)' \
  test-oldkernel 'the suite as on Linux < 5.9 (tools/oldkernel)' \
  test-noproc    'the /proc-free specs without /proc, as on an old kernel' \
  test-musl      'Lua 5.4, busted and hpass built with musl-gcc, the suite' \
  test-m32       'the same for 32-bit x86 (gcc -m32)' \
  test-aarch64   'the same for 64-bit ARM (zig cc), run under qemu-user' \
  test-mips      'the same for big-endian MIPS (zig cc), under qemu-user' \
  check-macos    'compile and link for x86-64 and arm64 macOS (zig cc, Apple headers)' \
  bench          'benchmarks against the floors of Lua, C and the Lua peers (docs/bench-results.md)' \
  bench-quick    'the benchmarks with small counts (what CI runs)' \
  time-test      'time make test and write it to docs/test-time.md'

# {======================================================
# Reliability: sanitizers, valgrind, coverage
# =======================================================

.PHONY: run-suite check-asan check-valgrind coverage

# The suite against an already built $(BUILD), nothing built first.
run-suite:
	$(RUN_ENV) $(PROVE) $(TESTS)

# AddressSanitizer + UBSan.  Debian's lua5.4 is not instrumented, and
# preloading the ASan runtime would reach every program the tests start
# (procps' ps hangs under it), so the suite runs on build/asan/lua, a
# minimal interpreter (tests/peers/sanlua.c) linked with the runtime.  Lua
# children get it through HPASS_TEST_LUA and load this build through
# LUA_CPATH, so they are checked too; other programs run as usual.  The
# interpreter closes its state at exit, so LeakSanitizer is on.
SAN_CFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
             -fno-sanitize-recover=all
SAN_LUA = $(CURDIR)/build/asan/lua
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:exitcode=86:strict_string_checks=1 \
          UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 HPASS_SANITIZER=asan \
          HPASS_STRESS_CYCLES=$(STRESS_CYCLES)

build/asan/lua: tests/peers/sanlua.c
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -Wall -Wextra -Werror $(SAN_CFLAGS) -I$(LUA_INCDIR) \
	  -o $@ $< -llua$(LUA_VERSION) -lm

check-asan: deps
	@tools/deps.sh $(TEST_PKGS)
	@$(MAKE) --no-print-directory VARIANT=asan CFLAGS='$(SAN_CFLAGS)' \
	  all test-helpers build/asan/lua
	$(SAN_ENV) $(MAKE) --no-print-directory VARIANT=asan LUA=$(SAN_LUA) run-suite

# valgrind memcheck on the interpreter that runs busted.  Children are not
# traced: they run natively, and the Lua ones are checked by check-asan.
# Memory still held when busted exits is no error, memory nothing points to
# ("definitely lost") is.  A spawn is more than ten times slower under
# valgrind, so the spawn-heavy tests run shorter here (their full size
# runs in make test and check-asan).
# Tests tagged #novalgrind are left out: valgrind runs a vfork child as a
# copy, so an exec that fails is not reported back to posix_spawn, and it
# enforces the descriptor limit itself, for some calls only.
VALGRIND = valgrind --quiet --error-exitcode=99 --leak-check=full \
           --errors-for-leak-kinds=definite --show-leak-kinds=definite
VALGRIND_ENV = HPASS_SANITIZER=valgrind HPASS_STRESS_CYCLES=1000 HPASS_BIG_MIB=8 \
               HPASS_ZOMBIE_SPAWNS=200 HPASS_CHURN_SPAWNS=30
# Without TESTS, VALGRIND_TESTS: the specs that drive the module's own C
# code in the traced process, every argument reader, buffer, handle form,
# handle passing, capture, select and wait among them (docs/testing.md
# names what is left out, and why).
VALGRIND_TESTS = tests/spec/badinput_spec.lua \
                 tests/spec/promises_buffering_spec.lua \
                 tests/spec/promises_integers_spec.lua \
                 tests/spec/promises_bytes_spec.lua tests/spec/capture_spec.lua \
                 tests/spec/core_spec.lua tests/spec/deadline_spec.lua \
                 tests/spec/hardening_spec.lua tests/spec/random_spec.lua \
                 tests/spec/sockets_spec.lua tests/spec/signals_spec.lua \
                 tests/spec/activation_spec.lua tests/spec/subprocess_spec.lua \
                 tests/spec/communicate_spec.lua tests/spec/pipeline_spec.lua
check-valgrind: deps
	@tools/deps.sh $(TEST_PKGS) valgrind:valgrind
	@$(MAKE) --no-print-directory all test-helpers
	$(RUN_ENV) $(VALGRIND_ENV) \
	  prove --exec '$(VALGRIND) $(LUA) $(BUSTED) -o TAP --exclude-tags=novalgrind' \
	  $(if $(filter-out tests/spec/*_spec.lua,$(TESTS)),$(TESTS),$(VALGRIND_TESTS))

# The leak stress of tests/spec/reliability_spec.lua at length: make test
# runs 1,000 spawn/write/read/wait cycles, this 10,000 (a leak of one
# descriptor, child or heap block per cycle shows in either; the long
# form shows slow growth that the short one could miss).
STRESS_CYCLES = 10000
.PHONY: check-stress
check-stress: deps
	@tools/deps.sh $(TEST_PKGS)
	@$(MAKE) --no-print-directory all test-helpers
	$(RUN_ENV) HPASS_STRESS_CYCLES=$(STRESS_CYCLES) HPASS_STRESS_LIVE=1024 HPASS_ZOMBIE_SPAWNS=1000 \
	  $(PROVE) tests/spec/reliability_spec.lua tests/spec/core_spec.lua

# examples/hotrestart.lua under the full load (tests/spec/restart_spec.lua
# runs it smaller in make test): 400 connections at once, 20 restarts.
.PHONY: check-restart
check-restart: deps
	@tools/deps.sh $(TEST_PKGS)
	@$(MAKE) --no-print-directory all test-helpers
	$(RUN_ENV) HPASS_RESTART_CONNS=400 HPASS_RESTART_TIMES=20 \
	  $(PROVE) tests/spec/restart_spec.lua

# Pipes, communicate and pipelines at full size: 1,000 pipelines in the
# leak test (make test runs 200), then three cats moving 100 MiB through
# hpass.pipeline against sh -c 'cat | cat | cat' (bench/pipeline.lua).
SUBPROCESS_TESTS = tests/spec/subprocess_spec.lua tests/spec/communicate_spec.lua \
                   tests/spec/pipeline_spec.lua
.PHONY: check-subprocess
check-subprocess: deps
	@tools/deps.sh $(TEST_PKGS)
	@$(MAKE) --no-print-directory all test-helpers
	$(RUN_ENV) HPASS_PIPELINES=1000 $(PROVE) $(SUBPROCESS_TESTS)
	$(RUN_ENV) $(LUA) bench/pipeline.lua 100 5

# The model-based random test of the stream (tests/spec/stream_model_spec.lua)
# at length: make test runs it for a few hundred steps on a new seed each
# time; this runs STREAM_STEPS steps on each of STREAM_SEEDS.  A failure
# names its seed, and HPASS_STREAM_SEED=n with HPASS_STREAM_STEPS replays it.
STREAM_STEPS = 20000
STREAM_SEEDS = 1 2 3 4 5 6 7 8 9 10
.PHONY: check-stream
check-stream: deps
	@tools/deps.sh $(TEST_PKGS)
	@$(MAKE) --no-print-directory all test-helpers
	@for s in $(STREAM_SEEDS); do \
	  echo "=== check-stream: seed $$s, $(STREAM_STEPS) steps"; \
	  $(RUN_ENV) HPASS_STREAM_SEED=$$s HPASS_STREAM_STEPS=$(STREAM_STEPS) \
	    $(PROVE) tests/spec/stream_model_spec.lua || exit 1; \
	done

# gcov line coverage of the C sources by the suite (Lua children included:
# they load the same build and add to its counts); fails below COVER_MIN.
# The stress test adds nothing to coverage after its first cycles, so it
# runs 1,000 of them here.  Report: build/coverage/hpass/report/*.gcov.
COVER_MIN = 95
# the child's fallbacks (a walk of /proc/self/fd, the loop up to the
# limit) run when tests/spec/portable_spec.lua runs under test-oldkernel
# and test-noproc, and the waits without pidfds when
# tests/spec/deadline_spec.lua runs under test-oldkernel
COVER_VARS = VARIANT=coverage CFLAGS='-O0 -g --coverage' LDEXTRA=--coverage
coverage: deps
	@tools/deps.sh $(TEST_PKGS)
	@rm -f build/coverage/hpass/*.gcda
	@$(MAKE) --no-print-directory $(COVER_VARS) all test-helpers
	HPASS_STRESS_CYCLES=1000 $(MAKE) --no-print-directory VARIANT=coverage run-suite
	$(MAKE) --no-print-directory $(COVER_VARS) test-oldkernel \
	  TESTS='tests/spec/portable_spec.lua tests/spec/deadline_spec.lua'
	$(MAKE) --no-print-directory $(COVER_VARS) test-noproc NOPROC_TESTS=tests/spec/portable_spec.lua
	$(if $(SRC),,$(NOSRC))@tools/coverage.sh build/coverage/hpass $(COVER_MIN) $(SRC)

# }======================================================


# {======================================================
# Lint
# =======================================================

.PHONY: lint lint-lua lint-c
lint: lint-lua lint-c

# What a command can find of the docs' drift from the code
# (tools/check-docs.lua): every make target README.md and docs/*.md name
# is in `make help`, and every function the module exports is in the
# manual; then every Lua sample of the README and the manual runs
# (tests/spec/readme_spec.lua).
.PHONY: check-docs
check-docs: deps
	@tools/deps.sh $(TEST_PKGS)
	@$(MAKE) --no-print-directory all test-helpers
	@$(MAKE) --no-print-directory help > $(BUILD)/help.txt
	$(RUN_ENV) $(LUA) tools/check-docs.lua $(BUILD)/help.txt '$(FALLBACKS)' \
	  README.md $(wildcard docs/*.md)
	$(RUN_ENV) $(PROVE) tests/spec/readme_spec.lua

# luacheck over every Lua file (config: .luacheckrc).
lint-lua:
	@tools/deps.sh lua-check:luacheck
	luacheck lua examples tests bench tools

# cppcheck and clang-tidy (config: .clang-tidy, .cppcheck-suppressions).
# The rockspec's lists first: every top-level *.c is in the list of each
# platform it belongs to (tools/sources.lua), so none is left out.
# Then the measures of the house on every platform's files: no file over
# 1,000 lines, no function over 70 (tools/check-size.sh, with pmccabe).
lint-c:
	$(if $(SRC),,$(NOSRC))@$(HOST_LUA) tools/sources.lua --check $(wildcard *.c)
	@tools/deps.sh cppcheck:cppcheck clang-tidy:clang-tidy pmccabe:pmccabe
	tools/check-size.sh $(wildcard *.c)
	cppcheck --quiet --force --error-exitcode=1 --std=c99 --inline-suppr \
	  --enable=warning,style,performance,portability \
	  --suppressions-list=.cppcheck-suppressions -I$(LUA_INCDIR) $(SRC)
	clang-tidy --quiet $(SRC) -- $(WARN) -I$(LUA_INCDIR)

# }======================================================


# {======================================================
# Every Lua: 5.1, 5.2, 5.3, 5.4, 5.5 and LuaJIT; LuaRocks
# =======================================================

LUA_VERSIONS = 5.1 5.2 5.3 5.4 5.5 jit

# Lua 5.1 and LuaJIT search the same lib/lua/5.1 folders, so a module
# built with either's headers is loaded by the other: check-abi51 runs, on
# each, the specs where the two differ (io files, errors, numbers) against
# the module built with the other's headers.  check-all runs the whole
# suite on each interpreter's own build.
ABI51_INCDIR_LUA = /usr/include/lua5.1
ABI51_INCDIR_JIT = /usr/include/luajit-2.1
ABI51_TESTS = tests/spec/core_spec.lua tests/spec/promises_buffering_spec.lua \
              tests/spec/promises_integers_spec.lua tests/spec/compat_spec.lua \
              tests/spec/interop_spec.lua tests/spec/examples_spec.lua

.PHONY: check-all check-abi51 check-luarocks

# The suite on every interpreter, each with its own build folder; runs them
# all, then fails if any failed.
check-all:
	@failed=; \
	for v in $(LUA_VERSIONS); do \
	  echo "=== check-all: Lua $$v"; \
	  $(MAKE) --no-print-directory test LUA_VERSION=$$v || failed="$$failed $$v"; \
	done; \
	echo "=== check-all: Lua 5.1 / LuaJIT cross-loading"; \
	$(MAKE) --no-print-directory check-abi51 || failed="$$failed abi51"; \
	if [ -n "$$failed" ]; then echo "check-all: FAILED:$$failed"; exit 1; fi; \
	echo "check-all: passed on $(LUA_VERSIONS) and cross-loading"

check-abi51:
	$(MAKE) --no-print-directory test LUA_VERSION=jit VARIANT=luajit-abi51 \
	  LUA_INCDIR=$(ABI51_INCDIR_LUA) TESTS='$(ABI51_TESTS)'
	$(MAKE) --no-print-directory test LUA_VERSION=5.1 VARIANT=lua5.1-abijit \
	  LUA_INCDIR=$(ABI51_INCDIR_JIT) TESTS='$(ABI51_TESTS)'

# `luarocks make` into a temporary tree for Lua 5.1 to 5.4, offline, then
# examples/fdpass.lua with only that tree on the module paths.
check-luarocks:
	@tools/deps.sh gcc:gcc luarocks:luarocks lua5.1:lua5.1 lua5.2:lua5.2 \
	  lua5.3:lua5.3 lua5.4:lua5.4 liblua5.1-0-dev:/usr/include/lua5.1/lua.h \
	  liblua5.2-dev:/usr/include/lua5.2/lua.h liblua5.3-dev:/usr/include/lua5.3/lua.h \
	  liblua5.4-dev:/usr/include/lua5.4/lua.h
	tools/luarocks-check.sh 5.1 5.2 5.3 5.4

# }======================================================

# {======================================================
# Portability: Windows, forced fallbacks, old kernels, no /proc, other C
# libraries
# =======================================================

# Cross-builds Lua 5.4 (Debian's source) and hpass with mingw-w64 and runs
# tests/windows/ under wine; installs the toolchain when missing.
.PHONY: test-windows
test-windows:
	tools/test-windows.sh

# Each choice of hpass_posix.h forced with -D (FB_<name>), built with gcc
# and clang, and the specs that reach it (FB_TESTS_<name>, below) run on
# the gcc build:
#   glibc2.28   as for glibc 2.28: no _np file actions, which the build
#               must not need (tools/check-glibc-symbols.sh)
#   glibc2.25   as for glibc < 2.26: pwritev2 through its system call
#   closefrom   posix_spawn + addclosefrom_np + addchdir_np, FreeBSD's path
#   nocloexec   the flags macOS lacks: no pipe2, SOCK_CLOEXEC,
#               MSG_CMSG_CLOEXEC, sigtimedwait, pwritev2
#   nosignal    no MSG_NOSIGNAL: writes to sockets, and hp_sendfds's
#               sendmsg, block SIGPIPE around them
#   apple       macOS's path, which cannot run here: compiled (not linked)
#               with gcc and clang, tools/apple-decls.h standing in for the
#               two declarations of macOS's <spawn.h> that glibc's lacks
#               (make check-macos compiles it against macOS's own headers)
#   freebsd, otherbsd  the BSDs' choices, compiled only (below)
#   procwalk    the child closes by walking /proc/self/fd (no close_range)
#   closeloop   the child closes every number up to the limit
#   nopdeathsig no death signal (macOS): die_with_parent is refused with
#               ENOTSUP; only tests/spec/process_spec.lua, told to expect it
FALLBACKS = glibc2.28 glibc2.25 closefrom nocloexec nosignal procwalk closeloop \
            nopdeathsig apple freebsd otherbsd
FB_glibc2.28 = -DHPASS_GLIBC=228
FB_glibc2.25 = -DHPASS_GLIBC=225
FB_closefrom = -DHPASS_SPAWN=HPASS_SPAWN_CLOSEFROM
FB_nocloexec = -DHPASS_HAVE_PIPE2=0 -DHPASS_HAVE_SOCK_CLOEXEC=0 \
               -DHPASS_HAVE_MSG_CMSG_CLOEXEC=0 -DHPASS_HAVE_SIGTIMEDWAIT=0 \
               -DHPASS_PWRITEV2=0
FB_nosignal = -DHPASS_HAVE_MSG_NOSIGNAL=0 -DHPASS_PWRITEV2=0
FB_procwalk = -DHPASS_HAVE_CLOSE_RANGE=0
FB_closeloop = -DHPASS_HAVE_CLOSE_RANGE=0 -DHPASS_HAVE_PROCFD=0
FB_nopdeathsig = -DHPASS_PDEATHSIG=0
FB_TESTS_nopdeathsig = tests/spec/process_spec.lua
# Each forced build runs the specs that reach what it changes: the spawn
# paths (how a child starts and what it closes), or the I/O paths (how
# pipes and sockets are made, written without SIGPIPE, passed).
FB_SPAWN_TESTS = tests/spec/core_spec.lua tests/spec/portable_spec.lua \
                 tests/spec/process_spec.lua tests/spec/hardening_spec.lua \
                 tests/spec/capture_spec.lua tests/spec/reliability_spec.lua \
                 tests/spec/activation_spec.lua tests/spec/subprocess_spec.lua
FB_IO_TESTS = tests/spec/core_spec.lua tests/spec/promises_bytes_spec.lua \
              tests/spec/promises_buffering_spec.lua \
              tests/spec/promises_integers_spec.lua tests/spec/sockets_spec.lua \
              tests/spec/hardening_spec.lua tests/spec/interop_spec.lua \
              tests/spec/reliability_spec.lua
FB_TESTS_glibc2.28 = $(FB_SPAWN_TESTS)
FB_TESTS_closefrom = $(FB_SPAWN_TESTS)
FB_TESTS_procwalk = $(FB_SPAWN_TESTS)
FB_TESTS_closeloop = $(FB_SPAWN_TESTS)
FB_TESTS_glibc2.25 = $(FB_IO_TESTS)
FB_TESTS_nocloexec = $(FB_IO_TESTS) tests/spec/deadline_spec.lua \
                     tests/spec/signals_spec.lua
FB_TESTS_nosignal = $(FB_IO_TESTS)
FB_ENV_nopdeathsig = HPASS_EXPECT_NOPDEATHSIG=1
FB_GLIBC_glibc2.28 = 2.28
FB_GLIBC_glibc2.25 = 2.25
# before glibc 2.34 the module cannot pin itself (no dladdr without libdl):
# the exit handler runs when the library is unloaded instead
FB_ENV_glibc2.28 = HPASS_EXPECT_NOPIN=1
FB_ENV_glibc2.25 = HPASS_EXPECT_NOPIN=1

.PHONY: test-fallbacks test-oldkernel test-noproc test-musl test-m32
test-fallbacks: deps
	@tools/deps.sh $(TEST_PKGS) clang:clang binutils:nm \
	  libbsd-dev:/usr/include/bsd/unistd.h
	@$(MAKE) --no-print-directory test-helpers
	@failed=; \
	for v in $(FALLBACKS); do \
	  echo "=== test-fallbacks: $$v"; \
	  $(MAKE) --no-print-directory fallback-$$v || failed="$$failed $$v"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-fallbacks: FAILED:$$failed"; exit 1; fi; \
	echo "test-fallbacks: passed on $(FALLBACKS)"

FB_apple = -D_GNU_SOURCE -include tools/apple-decls.h \
           -DHPASS_SPAWN=HPASS_SPAWN_APPLE -DHPASS_HAVE_ADDCHDIR_NP=0 $(FB_nocloexec)
# FreeBSD 13.1 and later, and FreeBSD before 13.1, NetBSD and OpenBSD:
# their choices of hpass_posix.h, with __linux__ undefined so that the
# code takes the branches those systems take, compiled (not linked) on
# glibc's declarations, with libbsd's overlay adding the BSD functions
# their libcs declare (getmode, setmode, strlcpy, ...) to the standard
# headers, so that a name clash with those fails here too;
# tools/freebsd-decls stands in for FreeBSD's <sys/procctl.h>.  Their own
# headers are checked by no build here.
FB_BSD = -D_GNU_SOURCE -isystem /usr/include/bsd -DLIBBSD_OVERLAY \
         -U__linux__ -U__gnu_linux__ -Ulinux -DHPASS_HAVE_PROCFD=0 \
         -DHPASS_PWRITEV2=0 -DHPASS_HAVE_CLOSEFROM=1
FB_freebsd = $(FB_BSD) -Itools/freebsd-decls -DHPASS_SPAWN=HPASS_SPAWN_CLOSEFROM \
             -DHPASS_HAVE_ADDCHDIR_NP=1 -DHPASS_PDEATHSIG=2 -DHPASS_HAVE_CLOSE_RANGE=1
FB_otherbsd = $(FB_BSD) -DHPASS_SPAWN=HPASS_SPAWN_CHILD -DHPASS_HAVE_ADDCHDIR_NP=0 \
              -DHPASS_PDEATHSIG=0 -DHPASS_HAVE_CLOSE_RANGE=0 -DHPASS_HAVE_SIGTIMEDWAIT=0
COMPILE_ONLY = apple freebsd otherbsd
$(addprefix fallback-,$(COMPILE_ONLY)): fallback-%:
	$(if $(SRC),,$(NOSRC))for c in $(CC) clang; do \
	  for f in $(SRC); do \
	    $$c $(WARN) -fPIC -I$(LUA_INCDIR) -O2 $(FB_$*) -c $$f -o /dev/null || exit 1; \
	  done; \
	done

fallback-%:
	$(MAKE) --no-print-directory CC=clang VARIANT=fallback-$*-clang \
	  CFLAGS='-O2 $(FB_$*)' all
	$(MAKE) --no-print-directory VARIANT=fallback-$* CFLAGS='-O2 -g $(FB_$*)' all test-helpers
	$(if $(FB_GLIBC_$*),tools/check-glibc-symbols.sh \
	  build/fallback-$*/hpass/core.so $(FB_GLIBC_$*))
	$(FB_ENV_$*) $(MAKE) --no-print-directory VARIANT=fallback-$* run-suite \
	  $(if $(FB_TESTS_$*),TESTS='$(FB_TESTS_$*)')

# A kernel older than 5.9 (and 5.3): tools/oldkernel makes close_range,
# pwritev2, pidfd_open and clone3 fail with ENOSYS for the whole run.
tools/bin/oldkernel: tools/oldkernel.c
	@mkdir -p tools/bin
	$(CC) -std=c99 -Wall -Wextra -Werror -O2 -o $@ $<

OLDKERNEL_PROVE = prove --exec '$(CURDIR)/tools/bin/oldkernel $(LUA) $(BUSTED) -o TAP'
test-oldkernel: deps
	@tools/deps.sh $(TEST_PKGS)
	@$(MAKE) --no-print-directory all test-helpers tools/bin/oldkernel
	$(RUN_ENV) HPASS_EXPECT_OLDKERNEL=1 $(OLDKERNEL_PROVE) $(TESTS)

# No /proc (a private mount namespace with an empty tmpfs over it), also
# under the old-kernel launcher: children are then closed by the loop up
# to the limit.  Only the specs that do not read /proc themselves run.
NOPROC_TESTS = tests/spec/portable_spec.lua tests/spec/badinput_spec.lua \
               tests/spec/promises_buffering_spec.lua tests/spec/compat_spec.lua \
               tests/spec/nonblock_spec.lua tests/spec/examples_spec.lua
test-noproc: deps
	@tools/deps.sh $(TEST_PKGS) util-linux:unshare
	@$(MAKE) --no-print-directory all test-helpers tools/bin/oldkernel
	$(RUN_ENV) HPASS_EXPECT_NOPROC=1 HPASS_EXPECT_OLDKERNEL=1 \
	  unshare --mount --propagation private \
	  sh -c 'mount -t tmpfs none /proc && exec "$$@"' noproc \
	  $(OLDKERNEL_PROVE) $(NOPROC_TESTS)

# Lua 5.4, the C modules busted needs, hpass and its test module, all built
# with musl-gcc from Debian's sources, and the whole suite on them
# (tools/test-toolchain.sh; cached in build/musl).
test-musl:
	tools/test-toolchain.sh musl

# The same for 32-bit x86 with glibc (gcc -m32; gcc-multilib), in build/m32.
# Where the kernel runs no 32-bit programs, they run under qemu-user, and
# then only these specs (the integer widths, the I/O paths, spawning):
# the whole suite under emulation takes longer than CI has.
M32_EMULATED_TESTS = tests/spec/core_spec.lua tests/spec/promises_integers_spec.lua \
                     tests/spec/promises_bytes_spec.lua tests/spec/promises_buffering_spec.lua \
                     tests/spec/hardening_spec.lua tests/spec/process_spec.lua \
                     tests/spec/sockets_spec.lua
test-m32:
	HPASS_EMULATED_TESTS='$(M32_EMULATED_TESTS)' tools/test-toolchain.sh m32 \
	  $(if $(filter-out tests/spec/*_spec.lua,$(TESTS)),$(TESTS))

# The same for 64-bit ARM and for big-endian 32-bit MIPS (OpenWrt's CPU,
# whose signal and errno numbers differ from x86's), built with zig cc
# for glibc and run under qemu-user: the whole suite on aarch64, and on
# MIPS the specs of MIPS_TESTS (docs/testing.md says why those).
MIPS_TESTS = tests/spec/core_spec.lua tests/spec/promises_bytes_spec.lua \
             tests/spec/hardening_spec.lua tests/spec/process_spec.lua \
             tests/spec/interop_spec.lua tests/spec/sockets_spec.lua
.PHONY: test-aarch64 test-mips
# CI runs these on ARM (make test-aarch64 SUBSET=1): the whole suite under
# emulation takes over ten minutes of CI's time.
AARCH64_TESTS = $(MIPS_TESTS) tests/spec/promises_integers_spec.lua \
                tests/spec/promises_buffering_spec.lua tests/spec/capture_spec.lua \
                tests/spec/subprocess_spec.lua tests/spec/communicate_spec.lua
test-aarch64:
	tools/test-toolchain.sh aarch64 $(if $(filter-out tests/spec/*_spec.lua,$(TESTS)),$(TESTS),$(if $(SUBSET),$(AARCH64_TESTS)))

test-mips:
	tools/test-toolchain.sh mips $(if $(filter-out tests/spec/*_spec.lua,$(TESTS)),$(TESTS),$(MIPS_TESTS))

# macOS cannot run here, but its headers can be compiled against:
# tools/check-macos.sh builds every POSIX source for x86-64 (10.13) and
# arm64 (11.0) macOS with Zig's C compiler and Apple's libc headers,
# with WARN and availability errors, links the module and checks what it
# needs from the system (tools/macos-symbols.txt).  fallback-apple, in
# test-fallbacks, still builds the same code with gcc and clang.
.PHONY: check-macos
check-macos:
	$(if $(SRC),,$(NOSRC))WARN='$(WARN)' tools/check-macos.sh $(SRC)

# }======================================================


# {======================================================
# Benchmarks
# =======================================================

.PHONY: bench bench-quick time-test
# How long make test takes, written where the README points.
time-test: deps
	@tools/deps.sh $(TEST_PKGS)
	tools/time-test.sh

# Benchmarks against Lua's floor (bench/floor.c and bench/nothing.c, built
# by bench/run.sh in a folder of its own and never installed), C and the
# Lua peers.  bench writes docs/bench-results.md; bench-quick, what CI runs,
# takes about a minute and reports without judging (it fails only when a
# benchmark program does).
bench: all
	bench/run.sh

bench-quick: all
	bench/run.sh --quick

# }======================================================
