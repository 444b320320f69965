-- Handles inherited by a child behave as in the parent, also when the
-- system does not say what they are: the worker/prefork pattern, where a
-- child is handed a socket.

local hpass = require "hpass"
local S = require "support"
local aid = require "testaid"

local tests, test = S.suite()

-- The child's report: one line per check, its words split on spaces.
local function report(r)
  local lines = {}
  for line in r:lines() do
    local words = {}
    for w in line:gsub("\r$", ""):gmatch("%S+") do words[#words + 1] = w end
    lines[words[1]] = words
  end
  return lines
end

-- a waited for about 0.5 s (ms), and slept meanwhile (cpu ms)
local function halfsecond(what, ms, cpu)
  ms, cpu = tonumber(ms), tonumber(cpu)
  assert(ms >= 480 and ms < 1500, what .. " waited " .. ms .. " ms, not 0.5 s")
  assert(cpu < 150, what .. " used " .. cpu .. " ms of CPU waiting 0.5 s")
end

-- Hand socket b to a child in mode sockcheck (how: "real" or "fake"), play
-- its peer on a, and check what it reports.
local function sockcheck(a, b, how)
  local p, r = assert(S.capture({S.lua, S.child, "sockcheck", how}, b))
  b:close()
  assert(a:settimeout(20))
  S.eq(a:read_int(), 1, "the child's cue")
  assert(a:write_int(42))
  assert(a:write("tail"))
  a:close()
  assert(r:settimeout(20))
  local got = report(r)
  r:close()
  S.eq(p:wait(10), true, "the child ends well")
  local sel = assert(got.select, "select line")
  S.eq(sel[2], "0", "select: nothing readable")
  S.eq(sel[3], "timeout", "select's err")
  halfsecond("select", sel[4], sel[5])
  local ri = assert(got.read_int, "read_int line")
  S.eq(ri[2], "nil"); S.eq(ri[3], "timeout"); S.eq(ri[4], "1460")
  halfsecond("read_int", ri[5], ri[6])
  S.eq(got.ready[2], "1", "readable once the parent wrote")
  S.eq(got.value[2], "42", "the integer")
  S.eq(got.rest[2], "tail", "read('a') to the end")
  local cpu = tonumber(got.rest[4])
  assert(cpu < 500, "read('a') used " .. cpu .. " ms of CPU")
end

test("a socket inherited by a child keeps its deadlines (select, " ..
     "read_int) and its end of stream, as in the parent", function()
  local a, b = assert(hpass.socketpair())
  sockcheck(a, b, "real")
end)

test("a socket Winsock does not report as one, opened for overlapped " ..
     "I/O, is waited on by the system: deadlines hold, no spinning", function()
  local x, y = aid.tcppair()
  local a, b = assert(hpass.handle(x)), assert(hpass.handle(y))
  sockcheck(a, b, "fake")
end)

test("a handle of a kind hpass does not know, without overlapped I/O: " ..
     "a deadline is an error at once, never readiness; read('a') ends", function()
  local a, b = assert(hpass.socketpair())
  assert(aid.fake(hpass.pipe, "socket", true))
  local ok, err = pcall(function()
    local t0, c0 = aid.ticks(), aid.cputime()
    local res = table.pack(hpass.select({b}, nil, 0.5))
    S.eq(#res[1], 0, "select: nothing readable"); S.eq(res[4], 50, "select: its code")
    assert(b:settimeout(0.5))
    res = table.pack(b:read_int())
    S.eq(res[1], nil, "read_int"); S.eq(res[3], 50, "read_int's code")
    local ms = aid.ticks() - t0
    assert(ms < 300, "the errors took " .. ms .. " ms")
    assert(aid.cputime() - c0 < 150, "CPU")
    assert(b:settimeout(nil))
    assert(a:write("all of it"))
    a:close()
    S.eq(b:read("a"), "all of it", "read('a')")
    S.eq(b:read("a"), "", "read('a') at the end")
  end)
  assert(aid.fake(hpass.pipe, "socket", false))
  b:close()
  assert(ok, err)
end)

return tests
