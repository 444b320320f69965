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

test("settimeout: a timed write to a socket whose reader keeps up goes " ..
     "out in pieces of its send buffer, not 512 bytes (8 MiB)", function()
  local a, b = assert(hpass.socketpair())
  local t, j = aid.later(b:fileno(), 0)  -- reads b to its end
  local data = ("0123456789abcdef"):rep(524288)
  assert(a:settimeout(10))
  local res, ms = elapsed(a.write, a, data)
  S.eq(res[1], a, ("the write (%s, after %d ms)"):format(tostring(res[2]), ms))
  assert(ms < 3000, ("8 MiB took %d ms"):format(ms))
  a:close()
  S.eq(aid.joined(t, j), #data, "bytes the reader got")
  b:close()
end)

test("settimeout: a write gives up at the deadline also while the reader " ..
     "keeps up, and the stream holds what it said went", function()
  local a, b = assert(hpass.socketpair())
  local t, j = aid.later(b:fileno(), 0)  -- reads b to its end
  assert(a:settimeout(0.5))
  -- 128 MiB, more than goes in 0.5 s, in one call but not one string
  local data = ("x"):rep(16 * 1048576)
  local res, ms = elapsed(a.write, a, data, data, data, data, data, data,
                         data, data)
  S.eq(res[1], nil, "result"); S.eq(res[2], "timeout"); S.eq(res[3], ERROR_TIMEOUT)
  assert(ms >= 480 and ms < 1500, ("gave up after %d ms, not 0.5 s"):format(ms))
  a:close()
  S.eq(aid.joined(t, j), res[4], "bytes in the stream")
  b:close()
end)

test("settimeout: a write to a socket whose reader stops gives up at the " ..
     "deadline, and the stream holds what it said went", function()
  local a, b = assert(hpass.socketpair())
  assert(a:settimeout(0.5))
  local data = ("x"):rep(16 * 1048576)
  local c0 = aid.cputime()
  local res, ms = elapsed(a.write, a, data)
  local cpu = aid.cputime() - c0
  S.eq(res[1], nil, "result"); S.eq(res[2], "timeout"); S.eq(res[3], ERROR_TIMEOUT)
  assert(ms >= 480 and ms < 1500, ("gave up after %d ms, not 0.5 s"):format(ms))
  assert(cpu < 300, ("used %d ms of CPU in 0.5 s"):format(cpu))
  local sent = res[4]
  a:close()
  local t, j = aid.later(b:fileno(), 0)
  S.eq(aid.joined(t, j), sent, "bytes in the stream")
  b:close()
end)

test("settimeout: the flush before a handle is passed to a child gives " ..
     "up at the deadline with 'timeout'", function()
  local a, b = assert(hpass.socketpair())
  assert(a:setvbuf("full", 32 * 1048576))
  assert(a:write(("x"):rep(32 * 1048576)))
  assert(a:settimeout(0.3))
  local res, ms = elapsed(hpass.spawn_with_handle, {S.lua, "-e", ""}, a)
  S.eq(res[1], nil, "result"); S.eq(res[2], "timeout"); S.eq(res[3], ERROR_TIMEOUT)
  assert(ms >= 280 and ms < 1300, ("gave up after %d ms, not 0.3 s"):format(ms))
  assert(a:setvbuf("no") == nil, "the rest still waits in the buffer")
  b:close()
  a:close()
end)

test("select: a pipe that cannot be peeked at (its write end, asked for " ..
     "reading) is an error, not ready", function()
  local r, w = assert(hpass.pipe())
  local rd, wr, msg, code = hpass.select({w}, nil, 0.2)
  S.eq(#rd, 0, "nothing readable"); S.eq(#wr, 0, "nothing writable")
  S.eq(code, 5, "code (ERROR_ACCESS_DENIED): " .. tostring(msg))
  r:close(); w:close()
end)

test("events() is 'w' for a handle opened for writing only, else 'r'", function()
  local r, w = assert(hpass.pipe())
  S.eq(r:events(), "r", "read end"); S.eq(w:events(), "w", "write end")
  local a, b = assert(hpass.socketpair())
  S.eq(a:events(), "r", "socket")
  -- a write end that came through send_handle
  assert(hpass.send_handle(a, w))
  local w2 = assert(hpass.recv_handle(b))
  S.eq(w2:events(), "w", "received write end")
  w2:close(); r:close(); w:close(); a:close(); b:close()
end)

test("a process's pollfd is a handle that is signalled when it ends", function()
  local p = sleeper(200)
  local fd = assert(p:pollfd())
  assert(type(fd) == "number" and fd > 0, "a handle value")
  S.eq(p:events(), "r")
  S.eq(p:wait(5), true)
end)

return tests
