-- Deadlines on Windows: settimeout, wait(seconds), select over pipes,
-- sockets and processes, and pollfd.

local hpass = require "hpass"
local S = require "support"
local aid = require "testaid"

local tests, test = S.suite()
local ERROR_TIMEOUT = 1460

-- A child that sleeps ms milliseconds, then exits with code.
local function sleeper(ms, code)
  return assert(hpass.spawn_with_handle(
    {S.lua, "-e", ("require('testaid').sleep(%d) os.exit(%d)"):format(ms, code or 0)}, {}))
end

local function elapsed(f, ...)
  local t0 = aid.ticks()
  local res = {f(...)}
  return res, aid.ticks() - t0
end

test("a read on an empty pipe times out", function()
  local r, w = assert(hpass.pipe())
  r:settimeout(0.3)
  local res, ms = elapsed(r.read_int, r)
  S.eq(res[1], nil, "value")
  S.eq(res[2], "timeout", "message")
  S.eq(res[3], ERROR_TIMEOUT, "code")
  assert(ms >= 280 and ms < 2000, "waited " .. ms .. " ms")
  assert(w:write_int(5))
  S.eq(r:read_int(), 5, "read after the timeout")
  r:close(); w:close()
end)

test("a read on a socket times out, then reads", function()
  local a, b = assert(hpass.socketpair())
  b:settimeout(0.2)
  local res = elapsed(b.read_int, b)
  S.eq(res[2], "timeout", "message")
  assert(a:write_int(9))
  S.eq(b:read_int(), 9, "read after the timeout")
  a:close(); b:close()
end)

test("wait(seconds) returns false, then the triple", function()
  local p = sleeper(600, 4)
  local res, ms = elapsed(p.wait, p, 0.2)
  S.eq(res[1], false, "first wait")
  assert(ms >= 180 and ms < 1000, "waited " .. ms .. " ms")
  res = {p:wait(10)}
  S.eq(res[1], nil); S.eq(res[2], "exit"); S.eq(res[3], 4)
end)

test("select wakes for a process, data and end of stream", function()
  local p = sleeper(300)
  local r, w = assert(hpass.pipe())
  local rd, _, err = hpass.select({p, r}, nil, 5)
  S.eq(err, nil, "err")
  S.eq(rd[1], p, "the process first")
  assert(rd[p] and not rd[r], "only the process")
  assert(w:write_int(1))
  rd = hpass.select({r}, {}, 5)
  assert(rd[r], "data")
  S.eq(r:read_int(), 1)
  w:close()
  rd = hpass.select({r}, nil, 5)
  assert(rd[r], "end of stream")
  S.eq(r:read_int(), nil)
  local a, b = assert(hpass.socketpair())
  local _, wr = hpass.select(nil, {a}, 1)
  S.eq(#wr, 1, "a socket is writable")
  a:close(); b:close()
  local res = {hpass.select({r}, nil, 0)}
  S.eq(#res[1], 1, "end of stream stays readable")
  r:close()
  p:wait()
end)

test("select times out", function()
  local r, w = assert(hpass.pipe())
  local res, ms = elapsed(hpass.select, {r}, nil, 0.3)
  S.eq(res[3], "timeout", "err")
  assert(ms >= 280 and ms < 2000, "waited " .. ms .. " ms")
  r:close(); w:close()
end)

test("a process's pollfd is a handle that is signalled when it ends", function()
  local p = sleeper(200)
  local fd = assert(p:pollfd())
  assert(type(fd) == "number" and fd > 0, "a handle value")
  S.eq(p:events(), "r")
  S.eq(p:wait(5), true)
end)

return tests
