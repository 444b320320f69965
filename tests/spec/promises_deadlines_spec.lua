-- The manual's "Deadlines and waiting on many", the promises that
-- deadline_spec.lua does not hold: what 0, tiny and huge timeouts mean,
-- how every timeout is read, that a deadline bounds the whole call, and
-- what select flushes, reports and refuses.  Each test is named after the
-- promise it checks.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"
local socket = require "socket"

local ETIMEDOUT, EPIPE, ESRCH = 110, 32, 3
local now = socket.gettime

local function timed(f, ...)
  local t0 = now()
  local res = {f(...)}
  return res, now() - t0
end

-- The bytes of integer v as this machine stores it.
local function intbytes(v)
  local r, w = hpass.pipe()
  assert(w:write_int(v)); w:close()
  local s = assert(r:read(4))
  r:close()
  return s
end

describe("Deadlines and waiting on many:", function()
  after_each(H.cleanup)

  it("nil means no limit, the default", function()
    local r, w = hpass.pipe()
    assert.is_nil(r:timeout())
    local p = assert(hpass.spawn_with_handle({"sh", "-c", 'sleep 0.3; exec "$0" write 9 1 1 "$1"',
                                              H.cpeer}, w))
    w:close()
    local res, secs = timed(r.read_int, r)
    assert.same({9}, res)
    assert.is_true(secs >= 0.25, "waited " .. secs)
    assert.is_true((p:wait()))
    r:close()
  end)

  it("0 means only what is possible now: the call waits for nothing", function()
    local r, w = hpass.pipe()
    r:settimeout(0)
    local res, secs = timed(r.read_int, r)
    assert.same({nil, "timeout", ETIMEDOUT}, res)
    assert.is_true(secs < 0.05, "waited " .. secs)
    assert.is_true(w:write_int(5))
    assert.equal(5, r:read_int())               -- what is there is taken
    assert.equal(0, r:timeout())
    r:close(); w:close()
  end)

  it("past the deadline a read still takes what has arrived, end of stream included: " ..
     "read('a') with 0 on a pipe whose writer has gone returns all of it", function()
    for _, mode in ipairs({"no", "full"}) do
      local r, w = hpass.pipe()
      r:setvbuf(mode)
      r:settimeout(0)
      local data = string.rep("0123456789abcdef", 2048)   -- 32 KiB: several reads
      assert(w:write(data))
      w:close()
      assert.equal(data, r:read("a"), mode)
      assert.is_nil(r:read("l"), mode)
      r:close()
    end
  end)

  it("0 makes at most one write: write_ints to a pipe with room returns after one write",
     function()
    local r, w = hpass.pipe()
    local t = {}
    for i = 1, 100000 do t[i] = i end
    w:settimeout(0)
    local ok, msg, code, k = w:write_ints(t)
    assert.same({nil, "timeout", ETIMEDOUT}, {ok, msg, code})
    -- one write of what a writable pipe takes at once (PIPE_BUF), no more
    assert.is_true(k > 0 and k * 4 <= 4096, tostring(k))
    w:close()
    local got = r:read_ints(200000)
    assert.equal(k, #got)
    assert.equal(k, got[k])
    r:close()
  end)

  it("0 reads only what is there at once, at most 9 reads: read('a') of a flood " ..
     "times out at once, and keeps what it took",
     function()
    local r, w = hpass.pipe()
    local p = assert(hpass.spawn_with_handle({R.relpeer, "flood"}, w))
    w:close()
    assert.is_true(H.within(5, function() return hpass.select({r}, nil, 1)[1] ~= nil end))
    socket.sleep(0.05)                          -- the flood fills the pipe
    r:settimeout(0)
    local res, secs = timed(r.read, r, "a")
    assert.same({nil, "timeout", ETIMEDOUT}, res)
    assert.is_true(secs < 0.05, "took " .. secs)
    -- what the reads took stays in the handle
    r:settimeout(nil)
    local got = assert(r:read(1048576 * 8))
    assert.is_true(#got > 0)
    p:kill("KILL"); p:wait()
    r:close()
  end)

  it("the time counts per call, from its start", function()
    local r, w = hpass.pipe()
    r:settimeout(0.1)
    for _ = 1, 2 do
      local res, secs = timed(r.read_int, r)
      assert.same({nil, "timeout", ETIMEDOUT}, res)
      assert.is_true(secs >= 0.099 and secs < 0.5, "waited " .. secs)
    end
    r:close(); w:close()
  end)

  it("a call waits until its deadline, never less, to the part of a millisecond: " ..
     "1e-9 waits 1 ms", function()
    local r, w = hpass.pipe()
    local p = assert(hpass.spawn_with_handle({"sleep", "60"}, {}))
    r:settimeout(0.0015)
    -- an early end is rare (1 to 2 waits in 100 were, before deadlines
    -- counted the clock's part of a millisecond): many short waits
    local cases = {
      {0.001, function() return p:wait(1e-9) end},
      {0.001, function() return hpass.select({r}, nil, 1e-9) end},
      {0.003, function() return hpass.select({r}, nil, 0.0025) end},
      {0.002, function() return p:wait(0.0015) end},
      {0.002, function() return hpass.read(r, 1) end},   -- 1.5 ms, rounded up
    }
    for k, c in ipairs(cases) do
      local want, shortest = c[1], math.huge
      for _ = 1, 150 do
        local t0 = now()
        c[2]()
        shortest = math.min(shortest, now() - t0)
      end
      -- 20 us for the wall clock that measures it
      assert.is_true(shortest >= want - 2e-5,
                     ("case %d: a wait of %.4f s lasted %.5f s"):format(k, want, shortest))
    end
    p:kill("KILL"); p:wait()
    r:close(); w:close()
  end)

  it("close and garbage collection still flush without a limit", function()
    local data = string.rep("z", 200000)          -- more than the pipe holds
    for _, how in ipairs({"close", "collect"}) do
      local r, w = hpass.pipe()
      local p, out = H.start({"sh", "-c", 'sleep 0.3; exec cat "$0"', "-"}, {},
                             {stdin = r})
      r:close()
      w:setvbuf("full", 1048576)
      assert.equal(w, w:write(data))
      w:settimeout(0.05)
      local t0 = now()
      if how == "close" then
        assert.is_true(w:close())
      else
        w = nil  -- luacheck: ignore
        collectgarbage(); collectgarbage()
      end
      assert.is_true(now() - t0 >= 0.2, how .. " took " .. (now() - t0))
      assert.is_true((p:wait()))
      assert.equal(#data, #H.readfile(out), how)
    end
  end)

  it("timeout() is the timeout as it is kept: whole milliseconds, rounded up", function()
    local r, w = hpass.pipe()
    for _, c in ipairs({{1e-9, 0.001}, {0.0011, 0.002}, {2.5, 2.5}, {0, 0}, {2e12, 2e12}}) do
      assert.is_true(r:settimeout(c[1]))
      assert.equal(c[2], r:timeout())
    end
    r:close(); w:close()
  end)

  it("a value above 10^15 seconds, math.huge included, counts as 10^15 seconds: a very "
     .. "long time, never none or an overflow", function()
    local r, w = hpass.pipe()
    for _, v in ipairs({1e16, 1e300, math.huge}) do
      assert.is_true(r:settimeout(v))
      assert.equal(1e15, r:timeout())
    end
    -- and such a deadline waits: data that comes later is still read
    assert.is_true(w:write_int(3))
    assert.equal(3, r:read_int())
    local p = assert(hpass.spawn_with_handle({"true"}, {}))
    assert.same({true, "exit", 0}, {p:wait(math.huge)})
    local res, secs = timed(hpass.select, {r, p}, nil, math.huge)
    assert.equal(p, res[1][1])
    assert.is_true(secs < 1)
    assert.same({"", "", true, "exit", 0}, {hpass.capture({"true"}, {timeout = math.huge})})
    r:close(); w:close()
  end)

  it("timeouts are read alike by settimeout, wait, select and capture: a negative or NaN "
     .. "value raises, and anything not a number, a string such as '1' included", function()
    local r, w = hpass.pipe()
    local p = assert(hpass.spawn_with_handle({"true"}, {}))
    for _, bad in ipairs({-1, 0 / 0, "1", "0.5", true, {}}) do
      assert.matches(H.badarg(2, "settimeout"), H.raises(r.settimeout, r, bad))
      assert.matches(H.badarg(2, "wait"), H.raises(p.wait, p, bad))
      assert.matches(H.badarg(3, "select"), H.raises(hpass.select, {r}, nil, bad))
      assert.matches(H.badarg(2, "capture") .. " %(option 'timeout'",
                     H.raises(hpass.capture, {"true"}, {timeout = bad}))
    end
    assert.is_true(r:settimeout(1e-9))                 -- tiny: 1 ms
    local res, secs = timed(r.read_int, r)
    assert.same({nil, "timeout", ETIMEDOUT}, res)
    assert.is_true(secs >= 0.0009 and secs < 0.2, "waited " .. secs)
    p:wait()
    r:close(); w:close()
  end)

  it("wait(0) is poll(): false at once while the child runs", function()
    local p = assert(hpass.spawn_with_handle({"sleep", "5"}, {}))
    local res, secs = timed(p.wait, p, 0)
    assert.same({false}, res)
    assert.is_true(secs < 0.05)
    p:kill("KILL")
    assert.same({nil, "signal", 9}, {p:wait()})
  end)

  it("a process that has ended is readable, and wait then returns at once", function()
    local p = assert(hpass.spawn_with_handle({"sh", "-c", "exit 2"}, {}))
    local rd, _, err = hpass.select({p}, nil, 5)
    assert.is_nil(err)
    assert.equal(p, rd[1])
    local res, secs = timed(p.wait, p, 0)
    assert.same({nil, "exit", 2}, res)
    assert.is_true(secs < 0.05)
  end)

  it("a handle is readable on an error, and writable when a write would not block; the "
     .. "call that follows reports the error", function()
    local r, w = hpass.pipe()
    local _, wr = hpass.select(nil, {w}, 0)
    assert.equal(w, wr[1])
    r:close()                                   -- the reader has gone: an error
    _, wr = hpass.select(nil, {w}, 0)
    assert.equal(w, wr[1])
    assert.same({nil, "Broken pipe", EPIPE}, {w:write_int(1)})
    w:close()
  end)

  it("a descriptor number that is ready is in the array only, never a key", function()
    -- 30 ready numbers: as keys, those below 31 would overwrite the array
    local rs, ws, fds = {}, {}, {}
    for i = 1, 30 do
      rs[i], ws[i] = hpass.pipe()
      assert.is_true(ws[i]:write_int(i))
      fds[i] = rs[i]:fileno()
    end
    local h = rs[30]
    fds[30] = h                                  -- and one handle among them
    local rd = hpass.select(fds, nil, 1)
    assert.equal(30, #rd)
    for i = 1, 30 do assert.equal(fds[i], rd[i]) end
    for i = 1, 29 do
      if fds[i] > 30 then assert.is_nil(rd[fds[i]]) end
    end
    assert.is_true(rd[h])
    for i = 1, 30 do rs[i]:close(); ws[i]:close() end
  end)

  it("select writes out the buffered output of its readers before it waits, as a read "
     .. "does", function()
    local a, b = hpass.socketpair()
    local p = assert(hpass.spawn_with_handle({"cat"}, {}, {stdin = b, stdout = b}))
    b:close()
    assert.is_true(a:setvbuf("full"))
    assert.equal(a, a:write("ping\n"))           -- waits in the buffer
    local rd, _, err = hpass.select({a}, nil, 5)
    assert.is_nil(err)
    assert.equal(a, rd[1])                      -- cat got it and answered
    assert.equal("ping", a:read("l"))
    a:close()
    assert.is_true((p:wait()))
  end)

  it("on an OS failure, such as a flush whose reader has gone, select returns readable, "
     .. "writable, message, errno", function()
    local a, b = hpass.socketpair()
    local r, w = hpass.pipe()
    assert.is_true(w:write_int(1))
    b:close()
    assert.is_true(a:setvbuf("full"))
    assert.equal(a, a:write("lost"))
    local res = {hpass.select({r, a}, nil, 1)}
    assert.same({{}, {}, "Broken pipe", EPIPE}, res)
    a:close(); r:close(); w:close()
  end)

  it("proc:pollfd() after the child was collected without it: nil, 'process has "
     .. "already ended', ESRCH", function()
    local p = assert(hpass.spawn_with_handle({"true"}, {}))
    p:wait()
    assert.same({nil, "process has already ended", ESRCH}, {p:pollfd()})
    assert.equal("r", p:events())
    assert.is_nil(p:timeout())
  end)

  it("h:events() is 'w' for a handle opened for writing only, else 'r'; h:pollfd() the "
     .. "descriptor", function()
    local r, w = hpass.pipe()
    local a, b = hpass.socketpair()
    assert.same({"r", "w", "r"}, {r:events(), w:events(), a:events()})
    assert.equal(w:fileno(), w:pollfd())
    r:close(); w:close(); a:close(); b:close()
  end)

  it("a handle with a read cut short by a timeout holds unread input", function()
    local r, w = hpass.pipe()
    r:settimeout(0.05)
    assert.equal(2, R.sig.rawwrite(w:fileno(), intbytes(7):sub(1, 2)))
    assert.same({nil, "timeout", ETIMEDOUT}, {r:read_int()})
    for _, f in ipairs({function() return r:setvbuf("full") end,
                        function() return r:tofile() end,
                        function() return r:detach() end}) do
      assert.matches("unread", H.raises(f))
    end
    r:close(); w:close()
  end)
end)
