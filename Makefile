# hpass - build, run, test and install.  `make help` lists the targets;
# the quality targets (sanitizers, coverage, lint, every Lua, other
# platforms, benchmarks) are in quality.mk, included at the end.
#
# LUA_VERSION selects the interpreter: 5.1, 5.2, 5.3, 5.4 (default) or jit.

LUA_VERSION ?= 5.4

ifeq ($(LUA_VERSION),jit)
LUA ?= luajit
LUA_INCDIR ?= /usr/include/luajit-2.1
LUA_PKGS = luajit:luajit libluajit-5.1-dev:$(LUA_INCDIR)/lua.h
LUA_ABI = 5.1
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
HERE_PATH = '$(CURDIR)/lua/?.lua;;'
HERE_CPATH = '$(CURDIR)/$(BUILD)/?.so;;'
RUN_ENV = LUA_PATH=$(HERE_PATH) LUA_CPATH=$(HERE_CPATH) \
          LUA_PATH_5_2=$(HERE_PATH) LUA_CPATH_5_2=$(HERE_CPATH) \
          LUA_PATH_5_3=$(HERE_PATH) LUA_CPATH_5_3=$(HERE_CPATH) \
          LUA_PATH_5_4=$(HERE_PATH) LUA_CPATH_5_4=$(HERE_CPATH) \
          LUA_INIT= LUA_INIT_5_2= LUA_INIT_5_3= LUA_INIT_5_4= \
          HPASS_TEST_LUA='$(LUA)'

BUSTED = /usr/bin/busted
TEST_PKGS = gcc:gcc make:make perl:prove procps:ps lua-busted:busted \
            lua-socket:/usr/share/lua/5.1/socket.lua \
            lua-luv:/usr/share/doc/lua-luv/copyright \
            lua-cqueues:/usr/share/lua/5.1/cqueues.lua
TESTS ?= tests/spec/*_spec.lua
PROVE = prove --exec '$(LUA) $(BUSTED) -o TAP'

.PHONY: all help deps demo test check test-helpers repl install uninstall clean
all: $(MODULE)

# `make help`: each file lists its targets in HELP, name and description.
HELP = \
  all            'build the module (the default)' \
  deps           'install the compiler and Lua when missing (as root)' \
  demo           'run the seed example (examples/fdpass.lua)' \
  test           'build and run the test suite (LUA_VERSION=5.1..5.4|jit)' \
  check          'the same as test' \
  repl           'Lua REPL with hpass loaded from this checkout' \
  install        'install into PREFIX (DESTDIR honoured)' \
  uninstall      'remove what install put in PREFIX' \
  clean          'remove build/ and the test programs'

help:
	@printf '%-15s %s\n' $(HELP) help 'this list' | sed 's/^/make /'

deps:
	@tools/deps.sh gcc:gcc make:make $(LUA_PKGS)

$(MODULE): $(SRC) $(HDR)
	$(if $(SRC),,$(NOSRC))@mkdir -p $(dir $@)
	$(CC) $(HP_CFLAGS) $(LIBFLAG) -o $@ $(SRC) $(LDEXTRA)

demo: deps
	@$(MAKE) --no-print-directory all
	$(RUN_ENV) $(LUA) examples/fdpass.lua

test: deps
	@tools/deps.sh $(TEST_PKGS)
	@$(MAKE) --no-print-directory all test-helpers
	$(RUN_ENV) $(PROVE) $(TESTS)

check: test

repl: deps
	@$(MAKE) --no-print-directory all
	@$(RUN_ENV) $(LUA) -i -e 'hpass = require "hpass"'

install: $(MODULE)
	$(INSTALL) -d $(DESTDIR)$(LUA_LIBDIR)/hpass $(DESTDIR)$(LUA_SHAREDIR)/hpass
	$(INSTALL) -m 755 $(MODULE) $(DESTDIR)$(LUA_LIBDIR)/hpass/core.so
	$(INSTALL) -m 644 lua/hpass.lua $(DESTDIR)$(LUA_SHAREDIR)/hpass.lua
	$(INSTALL) -m 644 lua/hpass/server.lua $(DESTDIR)$(LUA_SHAREDIR)/hpass/server.lua

uninstall:
	rm -f $(DESTDIR)$(LUA_LIBDIR)/hpass/core.so $(DESTDIR)$(LUA_SHAREDIR)/hpass.lua \
	  $(DESTDIR)$(LUA_SHAREDIR)/hpass/server.lua

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
PEER_CFLAGS = -std=c99 -Wall -Wextra -Werror -O2
TEST_HELPERS = tests/bin/cpeer tests/bin/relpeer tests/bin/fdpeer \
               tests/bin/portpeer $(BUILD)/sigpeer.so
test-helpers: $(TEST_HELPERS)

tests/bin/%: tests/peers/%.c
	@mkdir -p tests/bin
	$(CC) $(PEER_CFLAGS) -o $@ $<

tests/bin/relpeer tests/bin/portpeer: tests/bin/%: tests/peers/%.c
	@mkdir -p tests/bin
	$(CC) $(PEER_CFLAGS) -static -o $@ $< 2>/dev/null || \
	  $(CC) $(PEER_CFLAGS) -o $@ $<

$(BUILD)/sigpeer.so: tests/peers/sigpeer.c
	@mkdir -p $(dir $@)
	$(CC) $(PEER_CFLAGS) -fPIC -I$(LUA_INCDIR) $(LIBFLAG) -o $@ $< -pthread

include quality.mk
