-- Console control events as signals.  They need a console, which wine
-- gives a program only on a terminal: tools/test-windows.sh runs this file
-- on its own under script(1).  GenerateConsoleCtrlEvent sends Ctrl+C to
-- every process of the console, this one too, which holds INT while it
-- does.  Wine cannot generate Ctrl+Break (ERROR_INVALID_HANDLE) nor close
-- a console, so BREAK and TERM are not shown here (docs/windows.md).

local hpass = require "hpass"
local S = require "support"
local aid = require "testaid"

local tests, test = S.suite()

-- Ctrl+C to the console; this process's own copy arrives as INT.
local function ctrl_c(s)
  assert(aid.ctrlevent("c", 0))
  S.eq(s:read_signal(), "INT", "this process read INT")
end

test("Ctrl+C arrives as INT, once per event, in select too", function()
  local s = assert(hpass.signals{"INT"})
  s:settimeout(10)
  assert(aid.ctrlevent("c", 0))
  local ready = hpass.select({s}, nil, 10)
  S.eq(ready[s], true, "readable")
  S.eq(s:read_signal(), "INT", "first")
  for _ = 1, 3 do assert(aid.ctrlevent("c", 0)) end
  for i = 1, 3 do S.eq(s:read_signal(), "INT", "event " .. i) end
  s:settimeout(0)
  S.eq(s:read_signal(), nil, "no more")
  s:close()
end)

test("a child holds INT while its handle is open; closed, Ctrl+C ends it again", function()
  local s = assert(hpass.signals{"INT"})
  s:settimeout(10)
  local r, w = assert(hpass.pipe())
  local p = assert(hpass.spawn_with_handle({S.lua, S.child, "ctrl", "3000"}, w))
  w:close()
  r:settimeout(20)
  S.eq(r:read("l"), "ready", "the child holds INT")
  ctrl_c(s)
  S.eq(r:read("l"), "INT", "the child read INT")
  S.eq(r:read("l"), "closed", "and let go of it")
  ctrl_c(s)
  S.eq(r:read("l"), nil, "the child ended without a word")
  local ok, how = p:wait(10)
  S.eq(ok, nil, "the default handler ended it: " .. tostring(how))
  r:close()
  s:close()
end)

test("a child started with group (a new process group) does not get Ctrl+C", function()
  local s = assert(hpass.signals{"INT"})
  s:settimeout(10)
  local r, w = assert(hpass.pipe())
  local p = assert(hpass.spawn_with_handle({S.lua, S.child, "ctrl", "1500"}, w,
                                           {group = true}))
  w:close()
  r:settimeout(20)
  S.eq(r:read("l"), "ready", "the child holds INT")
  ctrl_c(s)
  S.eq(r:read("l"), "nil", "nothing came to the child")
  S.eq(r:read("l"), "closed", "closed")
  ctrl_c(s)
  S.eq(r:read("l"), "survived", "Ctrl+C stays off in its group")
  S.eq(p:wait(10), true, "exit 0")
  r:close()
  s:close()
end)

return tests
