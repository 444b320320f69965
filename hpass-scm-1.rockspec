rockspec_format = "3.0"
package = "hpass"
version = "scm-1"
source = {
  url = "git+https://example.invalid/hpass.git",
}
description = {
  summary = "Pipes, sockets and children that inherit exactly the handles they are given",
  detailed = [[
    hpass creates pipes and sockets, starts child processes that inherit
    exactly the handles passed to them (their numbers on the command line),
    and speaks a binary integer protocol over them, with all handle passing
    and I/O done in C: close-on-exec from birth, posix_spawn, no SIGPIPE.
  ]],
  license = "MIT",
}
-- Tested on Lua 5.1, 5.2, 5.3, 5.4, 5.5 and LuaJIT 2.1 (which LuaRocks counts
-- as 5.1); `make check-all` runs the suite on each.  Windows: 8 / Server
-- 2012 or later (see the README's Windows section).
dependencies = {
  "lua >= 5.1, < 5.6",
}
-- Whole module tables per platform: LuaRocks merges a platform's table
-- into the common one key by key, which would mix the two source lists.
-- These lists are the only ones: the Makefile and tools/test-windows.sh
-- read them through tools/sources.lua, and `make lint-c` checks that
-- every top-level *.c is in the list of each platform its name says
-- ("posix": unix; "win32": win32 and mingw32; neither: all three).
local function make_plat(plat)
  local modules = {
    ["hpass"] = "lua/hpass.lua",
    ["hpass.server"] = "lua/hpass/server.lua",
    ["hpass.pipeline"] = "lua/hpass/pipeline.lua",
  }
  if plat == "win32" or plat == "mingw32" then
    modules["hpass.core"] = {
      sources = {"lua_hpass.c", "lua_handle.c", "lua_ints.c", "lua_bytes.c",
                 "lua_spawn.c", "lua_spawnargs.c", "lua_capture.c", "lua_select.c",
                 "lua_passing.c", "lua_signal.c", "lua_listen.c",
                 "lua_base_compat.c", "lua_base_result.c", "lua_base_handle.c",
                 "lua_base_arg.c",
                 "hpass_io_win32.c", "hpass_file_win32.c", "hpass_spawn_win32.c",
                 "hpass_send_win32.c", "hpass_poll_win32.c", "hpass_signal_win32.c"},
      libraries = {"ws2_32", "advapi32"},
    }
  else
    modules["hpass.core"] = {
      sources = {"lua_hpass.c", "lua_handle.c", "lua_ints.c", "lua_bytes.c",
                 "lua_spawn.c", "lua_spawnargs.c", "lua_capture.c", "lua_select.c",
                 "lua_passing.c", "lua_signal.c", "lua_listen.c",
                 "lua_base_compat.c", "lua_base_result.c", "lua_base_handle.c",
                 "lua_base_arg.c",
                 "hpass_io_posix.c", "hpass_file_posix.c", "hpass_spawn_posix.c",
                 "hpass_send_posix.c", "hpass_poll_posix.c", "hpass_signal_posix.c",
                 "hpass_ids_posix.c"},
      defines = {"_GNU_SOURCE"},
    }
  end
  return {modules = modules}
end
build = {
  type = "builtin",
  platforms = {
    unix = make_plat("unix"),
    win32 = make_plat("win32"),
    mingw32 = make_plat("mingw32"),
  },
}
-- `luarocks test` runs the suite (make test) on the interpreter LuaRocks
-- was asked for: the script runs under it and passes on its version.
test = {
  type = "command",
  script = "tools/rocks-test.lua",
}
