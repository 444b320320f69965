# hpass - build, run, test and install.  `make help` lists the targets.
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

SRC = lua_hpass.c hpass_posix.c
HDR = hpass_sys.h

# One build folder per interpreter (and per instrumentation), so that
# `make check-all` can keep them side by side.
VARIANT ?= lua$(LUA_VERSION)
BUILD = build/$(VARIANT)
MODULE = $(BUILD)/hpass/core.so

# What tests, the REPL and the demo find: this checkout, not an install.
RUN_ENV = LUA_PATH='$(CURDIR)/lua/?.lua;;' LUA_CPATH='$(CURDIR)/$(BUILD)/?.so;;' \
          HPASS_TEST_LUA='$(LUA)'

BUSTED = /usr/bin/busted
TEST_PKGS = gcc:gcc make:make perl:prove procps:ps lua-busted:busted \
            lua-socket:/usr/share/lua/5.1/socket.lua
TESTS ?= tests/*_spec.lua
PROVE = prove --exec '$(LUA) $(BUSTED) -o TAP'

.PHONY: all help deps demo test check repl install uninstall clean
all: $(MODULE)

help:
	@echo 'make demo          run the seed example (examples/fdpass.lua)'
	@echo 'make test          build and run the test suite (LUA_VERSION=5.1..5.4|jit)'
	@echo 'make repl          Lua REPL with hpass loaded from this checkout'
	@echo 'make check-all     the suite on Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT'
	@echo 'make check-asan    the suite with AddressSanitizer + UBSan'
	@echo 'make check-valgrind  the suite under valgrind memcheck'
	@echo 'make coverage      line coverage of the C sources'
	@echo 'make lint          luacheck, cppcheck and clang-tidy'
	@echo 'make bench         benchmarks against C and the Lua peers'
	@echo 'make test-windows  cross-build for Windows and test under wine'
	@echo 'make install       install into PREFIX (DESTDIR honoured)'

deps:
	@tools/deps.sh gcc:gcc make:make $(LUA_PKGS)

$(MODULE): $(SRC) $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(HP_CFLAGS) $(LIBFLAG) -o $@ $(SRC) $(LDEXTRA)

demo: deps
	@$(MAKE) --no-print-directory all
	$(RUN_ENV) $(LUA) examples/fdpass.lua

# A C peer that speaks the protocol with plain read/write of native ints.
tests/bin/cpeer: tests/cpeer.c
	@mkdir -p tests/bin
	$(CC) -std=c99 -Wall -Wextra -Werror -O2 -o $@ $<

test: deps
	@tools/deps.sh $(TEST_PKGS)
	@$(MAKE) --no-print-directory all tests/bin/cpeer
	$(RUN_ENV) $(PROVE) $(TESTS)

check: test

repl: deps
	@$(MAKE) --no-print-directory all
	@$(RUN_ENV) $(LUA) -i -e 'hpass = require "hpass"'

install: $(MODULE)
	$(INSTALL) -d $(DESTDIR)$(LUA_LIBDIR)/hpass $(DESTDIR)$(LUA_SHAREDIR)
	$(INSTALL) -m 755 $(MODULE) $(DESTDIR)$(LUA_LIBDIR)/hpass/core.so
	$(INSTALL) -m 644 lua/hpass.lua $(DESTDIR)$(LUA_SHAREDIR)/hpass.lua

uninstall:
	rm -f $(DESTDIR)$(LUA_LIBDIR)/hpass/core.so $(DESTDIR)$(LUA_SHAREDIR)/hpass.lua

clean:
	rm -rf build tests/bin *.gcov
