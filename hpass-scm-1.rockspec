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
dependencies = {
  "lua >= 5.1, < 5.5",
}
local function make_plat(plat)
  local modules = {
    ["hpass"] = "lua/hpass.lua",
  }
  if plat == "win32" or plat == "mingw32" then
    modules["hpass.core"] = {
      sources = {"lua_hpass.c", "hpass_win32.c"},
      libraries = {"ws2_32"},
    }
  else
    modules["hpass.core"] = {
      sources = {"lua_hpass.c", "hpass_posix.c"},
      defines = {"_GNU_SOURCE"},
    }
  end
  return {modules = modules}
end
build = {
  type = "builtin",
  modules = make_plat("unix").modules,
  platforms = {
    unix = make_plat("unix"),
    win32 = make_plat("win32"),
    mingw32 = make_plat("mingw32"),
  },
}
test = {
  type = "command",
  command = "make test",
}
