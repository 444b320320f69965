# hpass - build, run, test and install.  `make help` lists the targets;
# the quality targets (sanitizers, coverage, lint, every Lua, other
# platforms, benchmarks) are in quality.mk, included at the end.
#
# LUA_VERSION selects the interpreter: 5.1, 5.2, 5.3, 5.4 (default), 5.5
# or jit.

LUA_VERSION ?= 5.4

ifeq ($(LUA_VERSION),jit)
LUA ?= luajit
LUA_INCDIR ?= /usr/include/luajit-2.1
LUA_PKGS = luajit:luajit libluajit-5.1-dev:$(LUA_INCDIR)/lua.h
LUA_ABI = 5.1
else ifeq ($(LUA_VERSION),5.5)
# Lua 5.5.0 is no Debian package yet: `make deps` builds it, and the C
# modules busted needs, from ../shared/third_party/lua-5.5.0.tar.gz
# (tools/test-toolchain.sh lua5.5 --prepare), and stops, saying so, where
# that file is missing.  busted's Lua files come from a copy that Lua 5.5
# compiles (build/lua5.5-deps/share).
LUA55 = $(CURDIR)/build/lua5.5-deps
LUA ?= $(LUA55)/lua/lua
LUA_INCDIR ?= $(LUA55)/lua/include
LUA_PREPARE = tools/test-toolchain.sh lua5.5 --prepare
LUA_EXTRA_PATH = $(LUA55)/share/?.lua;$(LUA55)/share/?/init.lua
LUA_EXTRA_CPATH = $(LUA55)/cmod/?.so
# The two event-loop tests of tests/spec/deadline_spec.lua need luv and
# cqueues, which Debian builds for Lua 5.1-5.4 only (and luv's source is
# not on every mirror): left out by name on 5.5, and run on every other.
LUA_SKIP = --filter-out=luv%spolls --filter-out=cqueues%.poll
LUA_ABI = 5.5
else
LUA ?= lua$(LUA_VERSION)
LUA_INCDIR ?= /usr/include/lua$(LUA_VERSION)
LUA_DEVPKG = $(if $(filter 5.1,$(LUA_VERSION)),liblua5.1-0-dev,liblua$(LUA_VERSION)-dev)
LUA_PKGS = lua$(LUA_VERSION):lua$(LUA_VERSION) $(LUA_DEVPKG):$(LUA_INCDIR)/lua.h
LUA_ABI = $(LUA_VERSION)
endif

PREFIX ?= /usr/local
LUA_LIBDIR ?= $(PREFIX)/lib/lua/$(LUA_ABI)
LUA_SHAREDIR ?= $(PREFIX)/share/lua/$(LUA_ABI)
INSTALL ?= install

CC ?= cc
CFLAGS ?= -O2 -g
WARN = -std=c99 -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes \
       -Wshadow -Wpointer-arith -Wdeclaration-after-statement
HP_CFLAGS = $(WARN) -fPIC -fvisibility=hidden -I$(LUA_INCDIR) $(CFLAGS)
LIBFLAG ?= -shared

# The C sources are listed once, in the rockspec (LuaRocks builds from it,
# and a rockspec cannot read another file); tools/sources.lua prints them,
# run by any Lua there is.  Before `make deps` has installed one there may
# be none, so the list is read each time it is used (after deps, in the
# targets that install Lua first), and a target that finds none stops
# with NOSRC's message.
LUAS = lua5.4 lua5.3 lua5.2 lua5.1 luajit lua
ANY_LUA = $(LUAS) $(filter-out $(LUAS),$(LUA))
HOST_LUA = $(shell for l in $(ANY_LUA); do command -v $$l && break; done \
                   2>/dev/null; true)
SRC = $(if $(HOST_LUA),$(shell $(HOST_LUA) tools/sources.lua unix))
HDR = $(wildcard *.h)
NOSRC = $(error no C sources: $(if $(HOST_LUA),tools/sources.lua found none in \
          hpass-scm-1.rockspec,no Lua interpreter to read hpass-scm-1.rockspec \
          with ($(strip $(ANY_LUA))); `make deps` installs $(LUA)))

# One build folder per interpreter (and per instrumentation), so that
# `make check-all` can keep them side by side.
VARIANT ?= lua$(LUA_VERSION)
BUILD = build/$(VARIANT)
MODULE = $(BUILD)/hpass/core.so

# What tests, the REPL and the demo find: this checkout, not an install.
# The versioned variables (LUA_PATH_5_4, ...) win over the plain ones in
# Lua 5.2 and later, so a user's own must not point the suite elsewhere.
# LUA_INIT could run anything before the suite: it is cleared too.
# Test programs are found through HPASS_TEST_BIN.
HERE_PATH = '$(CURDIR)/lua/?.lua;$(if $(LUA_EXTRA_PATH),$(LUA_EXTRA_PATH););'
HERE_CPATH = '$(CURDIR)/$(BUILD)/?.so;$(if $(LUA_EXTRA_CPATH),$(LUA_EXTRA_CPATH););'
RUN_ENV = LUA_PATH=$(HERE_PATH) LUA_CPATH=$(HERE_CPATH) \
          LUA_PATH_5_2=$(HERE_PATH) LUA_CPATH_5_2=$(HERE_CPATH) \
          LUA_PATH_5_3=$(HERE_PATH) LUA_CPATH_5_3=$(HERE_CPATH) \
          LUA_PATH_5_4=$(HERE_PATH) LUA_CPATH_5_4=$(HERE_CPATH) \
          LUA_PATH_5_5=$(HERE_PATH) LUA_CPATH_5_5=$(HERE_CPATH) \
          LUA_INIT= LUA_INIT_5_2= LUA_INIT_5_3= LUA_INIT_5_4= LUA_INIT_5_5= \
          HPASS_TEST_LUA='$(LUA)' HPASS_TEST_BIN='$(abspath $(TEST_BIN))'

BUSTED = /usr/bin/busted
TEST_PKGS = gcc:gcc make:make perl:prove procps:ps lua-busted:busted \
            lua-socket:/usr/share/lua/5.1/socket.lua \
            lua-luv:/usr/share/doc/lua-luv/copyright \
            lua-cqueues:/usr/share/lua/5.1/cqueues.lua
TESTS ?= tests/spec/*_spec.lua
PROVE = prove --exec '$(LUA) $(BUSTED) -o TAP$(if $(LUA_SKIP), $(LUA_SKIP))'
# make test runs two spec files at a time: most of its time is waiting
# (deadlines, children), and the timing specs keep margins for a busy
# 2-core machine.  JOBS=1 runs them one by one.
JOBS ?= 2

.PHONY: all help deps demo test check test-helpers repl install uninstall clean
all: $(MODULE)

# `make help`: each file lists its targets in HELP, name and description.
HELP = \
  all            'build the module (the default)' \
  deps           'install the compiler and Lua when missing (as root)' \
  demo           'run the seed example (examples/fdpass.lua)' \
  test           'build and run the test suite (LUA_VERSION=5.1..5.5|jit)' \
  test-helpers   'build the programs the tests use (tests/peers/)' \
  check          'the same as test' \
  repl           'Lua REPL with hpass loaded from this checkout' \
  install        'install into PREFIX (DESTDIR honoured)' \
  uninstall      'remove what install put in PREFIX' \
  clean          'remove build/ and the test programs'

help:
	@printf '%-15s %s\n' $(HELP) help 'this list' | sed 's/^/make /'

deps:
	@tools/deps.sh gcc:gcc make:make $(LUA_PKGS)
	$(if $(LUA_PREPARE),@$(LUA_PREPARE))

$(MODULE): $(SRC) $(HDR)
	$(if $(SRC),,$(NOSRC))@mkdir -p $(dir $@)
	$(CC) $(HP_CFLAGS) $(LIBFLAG) -o $@ $(SRC) $(LDEXTRA)

demo: deps
	@$(MAKE) --no-print-directory all
	$(RUN_ENV) $(LUA) examples/fdpass.lua

test: deps
	@tools/deps.sh $(TEST_PKGS)
	@$(MAKE) --no-print-directory all test-helpers
	$(if $(LUA_SKIP),@echo 'left out on Lua $(LUA_VERSION) (no luv or cqueues for it): $(LUA_SKIP)')
	$(RUN_ENV) $(PROVE) -j$(JOBS) $(TESTS)

check: test

repl: deps
	@$(MAKE) --no-print-directory all
	@$(RUN_ENV) $(LUA) -i -e 'hpass = require "hpass"'

install: $(MODULE)
	$(INSTALL) -d $(DESTDIR)$(LUA_LIBDIR)/hpass $(DESTDIR)$(LUA_SHAREDIR)/hpass
	$(INSTALL) -m 755 $(MODULE) $(DESTDIR)$(LUA_LIBDIR)/hpass/core.so
	$(INSTALL) -m 644 lua/hpass.lua $(DESTDIR)$(LUA_SHAREDIR)/hpass.lua
	$(INSTALL) -m 644 lua/hpass/server.lua $(DESTDIR)$(LUA_SHAREDIR)/hpass/server.lua
	$(INSTALL) -m 644 lua/hpass/pipeline.lua $(DESTDIR)$(LUA_SHAREDIR)/hpass/pipeline.lua

uninstall:
	rm -f $(DESTDIR)$(LUA_LIBDIR)/hpass/core.so $(DESTDIR)$(LUA_SHAREDIR)/hpass.lua \
	  $(DESTDIR)$(LUA_SHAREDIR)/hpass/server.lua \
	  $(DESTDIR)$(LUA_SHAREDIR)/hpass/pipeline.lua

clean:
	rm -rf build tests/bin *.gcov

# Programs the tests use, none of them part of hpass: C peers that speak
# the protocol with plain read/write (cpeer), misbehave on purpose
# (relpeer), send malformed handle messages (fdpeer) or report what a
# child sees without /proc (portpeer), and a Lua module that installs
# signal handlers and counts descriptors (sigpeer, built per variant and
# found through LUA_CPATH).  relpeer and portpeer are linked statically
# where the C library allows it: relpeer starts faster (the stress test
# starts 10,000 of them), and a child given as many descriptors as its
# limit allows cannot open a shared library.
# The programs go to TEST_BIN (the cross builds put theirs elsewhere).
PEER_CFLAGS = -std=c99 -Wall -Wextra -Werror -O2
TEST_BIN ?= tests/bin
TEST_HELPERS = $(TEST_BIN)/cpeer $(TEST_BIN)/relpeer $(TEST_BIN)/fdpeer \
               $(TEST_BIN)/portpeer $(BUILD)/sigpeer.so
test-helpers: $(TEST_HELPERS)

$(TEST_BIN)/%: tests/peers/%.c
	@mkdir -p $(TEST_BIN)
	$(CC) $(PEER_CFLAGS) -o $@ $<

$(TEST_BIN)/relpeer $(TEST_BIN)/portpeer: $(TEST_BIN)/%: tests/peers/%.c
	@mkdir -p $(TEST_BIN)
	$(CC) $(PEER_CFLAGS) -static -o $@ $< 2>/dev/null || \
	  $(CC) $(PEER_CFLAGS) -o $@ $<

$(BUILD)/sigpeer.so: tests/peers/sigpeer.c
	@mkdir -p $(dir $@)
	$(CC) $(PEER_CFLAGS) -fPIC -I$(LUA_INCDIR) $(LIBFLAG) -o $@ $< -pthread

include quality.mk
