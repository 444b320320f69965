-- The manual's "Deadlines and waiting on many": settimeout on every
-- blocking call, wait(seconds), select over handles and processes, and the
-- polling protocol event loops use.  Each test is named after the promise
-- it checks; promises_deadlines_spec.lua holds the rest of the section, and
-- deadline_worst_spec.lua every deadline against the worst peer.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"
local socket = require "socket"

local sig = R.sig
local ETIMEDOUT = R.ETIMEDOUT
local now = socket.gettime
-- CPU a wait of 1 s may use: valgrind runs each of the few wake-ups of a
-- wait without pidfds (which it does not know) at its own cost; a busy
-- wait would use the whole second
local IDLE = R.sanitizer and 0.05 or 0.01

-- Runs f, returning its results packed, the wall time and the CPU time it took.
local function timed(f, ...)
  local t0, c0 = now(), os.clock()
  local res = {f(...)}
  return res, now() - t0, os.clock() - c0
end

-- The bytes of integer v as this machine stores it (what write_int sends).
local function intbytes(v)
  local r, w = hpass.pipe()
  assert(w:write_int(v)); w:close()
  local f = assert(r:tofile("rb"))
  local s = f:read(4)
  f:close()
  return s
end

describe("settimeout", function()
  after_each(H.cleanup)

  it("gives up after seconds with nil, 'timeout', ETIMEDOUT, and waits without busy "
     .. "waiting", function()
    local r, w = hpass.pipe()
    assert.is_true(r:settimeout(1))
    assert.equal(1, r:timeout())
    local res, secs, cpu = timed(r.read_int, r)
    assert.same({nil, "timeout", ETIMEDOUT}, res)
    assert.is_true(secs >= 0.99 and secs < 1.5, "waited " .. secs)
    assert.is_true(cpu < IDLE, "used " .. cpu .. " s of CPU")
    r:close(); w:close()
  end)

  it("does not give up when the data comes in time", function()
    local r, w = hpass.pipe()
    r:settimeout(5)
    local proc = assert(hpass.spawn_with_handle(
      {"sh", "-c", 'sleep 0.2; exec "$0" write 7 1 1 "$1"', H.cpeer}, w))
    w:close()
    local res, secs = timed(r.read_int, r)
    assert.same({7}, res)
    assert.is_true(secs < 2)
    assert.is_true((proc:wait()))
    r:close()
  end)

  it("a read that times out partway through an integer keeps its bytes, and the next "
     .. "read returns the whole integer; until then spawn refuses the handle", function()
    for _, buffered in ipairs({false, true}) do
      local r, w = hpass.pipe()
      if buffered then r:setvbuf("full", 64) end
      r:settimeout(0.1)
      local b = intbytes(123456789)
      assert.equal(2, sig.rawwrite(w:fileno(), b:sub(1, 2)))
      assert.same({nil, "timeout", ETIMEDOUT}, {r:read_int()})
      -- the handle now holds input: it cannot be handed to a child
      assert.matches("unread buffered input",
                     H.raises(hpass.spawn_with_handle, {"true"}, r))
      assert.equal(2, sig.rawwrite(w:fileno(), b:sub(3, 4)))
      assert.equal(123456789, r:read_int())
      -- read_ints: the whole integers, then the rest of a cut one
      assert.equal(10, sig.rawwrite(w:fileno(), intbytes(1) .. intbytes(2) .. b:sub(1, 2)))
      local ok, msg, code, partial = r:read_ints(5)
      assert.same({nil, "timeout", ETIMEDOUT, {1, 2}}, {ok, msg, code, partial})
      assert.equal(2, sig.rawwrite(w:fileno(), b:sub(3, 4)))
      w:close()
      assert.same({123456789}, r:read_ints(5))
      r:close()
    end
  end)

  it("a write never leaves part of an integer in the stream; write_ints that times out "
     .. "returns nil, 'timeout', code, k", function()
    for _, buffered in ipairs({false, true}) do
      local r, w = hpass.pipe()
      if buffered then w:setvbuf("full", 4096) end
      w:settimeout(0.2)
      local t = {}
      for i = 1, 100000 do t[i] = i end          -- more than a pipe holds
      local ok, msg, code, written = w:write_ints(t)
      assert.same({nil, "timeout", ETIMEDOUT}, {ok, msg, code})
      assert.is_true(written > 0 and written < 100000, tostring(written))
      -- single writes: each either goes whole or not at all
      local accepted = 0
      for i = 1, 2000 do
        if w:write_int(written + i) then accepted = accepted + 1 else break end
      end
      w:settimeout(nil)
      local reader, out = H.start({H.lua, H.child("sum")}, r)
      r:close()
      assert.is_true(w:close())
      assert.is_true((reader:wait()))
      local n = written + accepted
      assert.equal(("%d\t%d\n"):format(n, n * (n + 1) / 2), H.readfile(out))
    end
  end)

  it("flush that times out keeps what it could not send", function()
    local r, w = hpass.pipe()
    w:setvbuf("full", 1048576)
    for i = 1, 100000 do assert.is_true(w:write_int(i)) end   -- 400 kB buffered
    w:settimeout(0.1)
    assert.same({nil, "timeout", ETIMEDOUT}, {w:flush()})
    w:settimeout(nil)
    local reader, out = H.start({H.lua, H.child("sum")}, r)
    r:close()
    assert.is_true(w:close())
    assert.is_true((reader:wait()))
    assert.equal(("100000\t%d\n"):format(100000 * 100001 / 2), H.readfile(out))
  end)

  it("recv_handle and send_handle give up after seconds", function()
    local a, b = hpass.socketpair()
    b:settimeout(0.1)
    local res, secs = timed(b.recv_handle, b)
    assert.same({nil, "timeout", ETIMEDOUT}, res)
    assert.is_true(secs >= 0.09)
    a:settimeout(0.1)
    repeat until not a:write_ints({1, 2, 3, 4, 5, 6, 7, 8})  -- fill the channel
    local r = hpass.pipe()
    assert.same({nil, "timeout", ETIMEDOUT}, {a:send_handle(r)})
    r:close(); a:close(); b:close()
  end)

  it("a negative, NaN or non-number timeout raises, a numeric string too; nil means no "
     .. "limit", function()
    local r, w = hpass.pipe()
    for _, bad in ipairs({-1, 0 / 0, "soon", "1", {}, true}) do
      assert.matches(H.badarg(2, "settimeout"),
                     H.raises(r.settimeout, r, bad))
    end
    assert.is_true(r:settimeout(nil))
    assert.is_nil(r:timeout())
    r:close(); w:close()
  end)
end)


describe("wait(seconds)", function()
  it("returns false when the time runs out, without spinning; the child keeps running",
     function()
    local p = assert(hpass.spawn_with_handle({"sleep", "5"}, {}))
    local res, secs, cpu = timed(p.wait, p, 1)
    assert.same({false}, res)
    assert.is_true(secs >= 0.99 and secs < 1.5, "waited " .. secs)
    assert.is_true(cpu < IDLE, "used " .. cpu .. " s of CPU")
    assert.is_false(p:poll())
    assert.is_true(p:kill("KILL"))
    assert.same({nil, "signal", R.SIGKILL}, {p:wait(5)})
  end)

  it("returns the triple as soon as the child ends; wait(0) is poll()", function()
    local p = assert(hpass.spawn_with_handle({"sh", "-c", "sleep 0.2; exit 3"}, {}))
    local res, secs = timed(p.wait, p, 10)
    assert.same({nil, "exit", 3}, res)
    assert.is_true(secs < 2)
    assert.same({nil, "exit", 3}, {p:wait(0)})
  end)
end)


describe("signals", function()
  it("that interrupt a wait neither shorten nor lengthen it", function()
    assert.is_true(sig.catch("ALRM"))       -- a handler without SA_RESTART
    local before = sig.count("ALRM")
    assert.is_true(sig.timer(2000))         -- every 2 ms
    local ok, err = pcall(function()
      local r, w = hpass.pipe()
      r:settimeout(0.5)
      local res, secs = timed(r.read_int, r)
      assert.same({nil, "timeout", ETIMEDOUT}, res)
      assert.is_true(secs >= 0.49 and secs < 0.8, "read waited " .. secs)
      local p = assert(hpass.spawn_with_handle({"sleep", "5"}, {}))
      res, secs = timed(p.wait, p, 0.5)
      assert.same({false}, res)
      assert.is_true(secs >= 0.49 and secs < 0.8, "wait waited " .. secs)
      res, secs = timed(hpass.select, {r, p}, nil, 0.5)
      assert.equal("timeout", res[3])
      assert.is_true(secs >= 0.49 and secs < 0.8, "select waited " .. secs)
      p:kill("KILL"); p:wait()
      r:close(); w:close()
    end)
    sig.timer(0)
    sig.ignore("ALRM")    -- drops a signal still pending, before "default"
    sig.default("ALRM")
    assert(ok, err)
    assert.is_true(sig.count("ALRM") - before > 100, "few signals arrived")
  end)
end)


describe("select", function()
  after_each(H.cleanup)

  it("returns readable, writable: arrays that also have each ready object as a key",
     function()
    local r1, w1 = hpass.pipe()
    local r2, w2 = hpass.pipe()
    assert.is_true(w2:write_int(5))
    local rd, wr, err = hpass.select({r1, r2}, {w1}, 1)
    assert.is_nil(err)
    assert.same({r2}, {rd[1], rd[2]})
    assert.is_true(rd[r2]); assert.is_nil(rd[r1])
    assert.equal(w1, wr[1]); assert.is_true(wr[w1])
    for _, h in ipairs({r1, w1, r2, w2}) do h:close() end
  end)

  it("err is 'timeout' when nothing became ready in time; either list may be nil or {}",
     function()
    local r, w = hpass.pipe()
    local res, secs, cpu = timed(hpass.select, {r}, nil, 0.3)
    assert.same({}, res[1]); assert.same({}, res[2]); assert.equal("timeout", res[3])
    assert.is_true(secs >= 0.29 and secs < 0.8)
    assert.is_true(cpu < IDLE, "used " .. cpu .. " s of CPU")
    res = {hpass.select(nil, {}, 0)}
    assert.equal("timeout", res[3])
    r:close(); w:close()
  end)

  it("a handle is readable with input already buffered, in the handle or a Lua file",
     function()
    local r, w = hpass.pipe()
    r:setvbuf("full")
    assert.is_true(w:write_ints({1, 2}))
    assert.equal(1, r:read_int())            -- 2 now waits in r's buffer
    local rd = hpass.select({r}, nil, 0)
    assert.is_true(rd[r])
    local r2, w2 = hpass.pipe()
    assert.is_true(w2:write_ints({1, 2}))
    local f = assert(r2:tofile("rb"))
    assert.equal(4, #f:read(4))              -- stdio holds the second
    rd = hpass.select({f}, nil, 0)
    assert.is_true(rd[f])
    f:close(); r:close(); w:close(); w2:close()
  end)

  it("a handle is readable at the end of its stream; a process once it has ended",
     function()
    local r, w = hpass.pipe()
    w:close()
    local p = assert(hpass.spawn_with_handle({"true"}, {}))
    local q = assert(hpass.spawn_with_handle({"sleep", "5"}, {}))
    local t0 = now()
    local seen = {}
    while not (seen[r] and seen[p]) and now() - t0 < 5 do
      local rd = hpass.select({r, p, q}, nil, 5)
      for _, x in ipairs(rd) do seen[x] = true end
    end
    assert.is_true(seen[r]); assert.is_true(seen[p]); assert.is_nil(seen[q])
    assert.same({true, "exit", 0}, {p:wait()})
    q:kill("KILL"); q:wait()
    r:close()
  end)

  it("wakes for the first child of many to end", function()
    local procs = {}
    for i = 1, 5 do
      procs[i] = assert(hpass.spawn_with_handle({"sleep", i == 3 and "0.2" or "5"}, {}))
    end
    local rd, _, err = hpass.select(procs, nil, 5)
    assert.is_nil(err)
    assert.equal(1, #rd)
    assert.equal(procs[3], rd[1]); assert.is_true(rd[procs[3]])
    for i, p in ipairs(procs) do
      if i ~= 3 then p:kill("KILL") end
      p:wait()
    end
  end)

  it("readers may hold handles in any form and process objects; a ready number is in "
     .. "the array only", function()
    local r, w = hpass.pipe()
    assert.is_true(w:write_int(1))
    local client, conn = H.tcppair()
    assert(client:send("x"))
    local rd
    for _ = 1, 50 do  -- until both are seen
      rd = hpass.select({r:fileno(), conn}, nil, 2)
      if #rd == 2 then break end
      socket.sleep(0.01)
    end
    assert.same({r:fileno(), conn}, {rd[1], rd[2]})
    assert.is_true(rd[conn])
    client:close(); conn:close(); r:close(); w:close()
  end)

  -- #novalgrind: valgrind enforces the descriptor limit itself
  it("has no FD_SETSIZE limit, and raises for more objects than poll takes #novalgrind",
     function()
    local r, w = hpass.pipe()
    local limit = sig.nofile()
    local many = {}
    for i = 1, 1500 do many[i] = r end        -- above FD_SETSIZE (1024)
    assert.equal("timeout", select(3, hpass.select(many, nil, 0)))
    assert(sig.nofile(1024))
    local ok, err = pcall(hpass.select, many, nil, 0)
    sig.nofile(limit)
    assert.is_false(ok)
    assert.matches("too many objects for select %(1500%)", err)
    r:close(); w:close()
  end)

  it("a closed handle raises; a process among the writers raises", function()
    local r, w = hpass.pipe()
    r:close()
    assert.matches("element 1: attempt to use a closed handle",
                   H.raises(hpass.select, {r}, nil, 0))
    local p = assert(hpass.spawn_with_handle({"true"}, {}))
    assert.matches("process cannot be waited on for writing",
                   H.raises(hpass.select, nil, {p}, 0))
    p:wait(); w:close()
  end)
end)


-- A process's pollfd, or, where the kernel has no pidfds (before 5.3, or
-- tools/oldkernel), the documented refusal -- then the loop tests below
-- can only watch handles.
local ENOSYS = 38
local function procfd(p)
  local fd, msg, code = p:pollfd()
  if fd then return fd end
  assert.equal(ENOSYS, code, msg)
  return nil
end

describe("event loops", function()
  it("luv polls a process's pollfd and a handle's", function()
    local uv = require "luv"
    local p = assert(hpass.spawn_with_handle({"sleep", "0.2"}, {}))
    if not procfd(p) then  -- no pidfd: a handle only
      local r, w = hpass.pipe()
      local hp = uv.new_poll(r:pollfd())
      local seen = false
      hp:start("r", function() seen = true; hp:stop() end)
      assert(w:write_int(1))
      uv.run("once")
      hp:close(); uv.run("nowait")
      assert.is_true(seen)
      assert.same({true, "exit", 0}, {p:wait()})
      r:close(); w:close()
      return
    end
    local r, w = hpass.pipe()
    local events = {}
    local pp = uv.new_poll(assert(p:pollfd()))
    pp:start("r", function() events[#events + 1] = "proc"; pp:stop() end)
    local hp = uv.new_poll(r:pollfd())
    hp:start("r", function() events[#events + 1] = "data"; hp:stop() end)
    local timer = uv.new_timer()
    timer:start(100, 0, function() assert(w:write_int(1)) end)
    local guard = uv.new_timer()
    guard:start(5000, 0, function() uv.stop() end)
    while #events < 2 and uv.run("once") do end
    guard:stop()
    for _, x in ipairs({pp, hp, timer, guard}) do x:close() end
    uv.run("nowait")
    assert.same({"data", "proc"}, events)
    assert.same({true, "exit", 0}, {p:wait()})   -- the loop saw it first
    r:close(); w:close()
  end)

  it("cqueues.poll takes processes and handles", function()
    local cqueues = require "cqueues"
    local p = assert(hpass.spawn_with_handle({"sleep", "0.2"}, {}))
    if not procfd(p) then  -- no pidfd: a handle only
      local r, w = hpass.pipe()
      local got
      local cq = cqueues.new()
      cq:wrap(function() got = cqueues.poll(r) end)
      cq:wrap(function() assert(w:write_int(1)) end)
      assert(cq:loop(5))
      assert.equal(r, got)
      assert.same({true, "exit", 0}, {p:wait()})
      r:close(); w:close()
      return
    end
    local r, w = hpass.pipe()
    local order = {}
    local cq = cqueues.new()
    cq:wrap(function()
      local x = cqueues.poll(r)
      order[#order + 1] = x == r and "data" or tostring(x)
    end)
    cq:wrap(function()
      local x = cqueues.poll(p)
      order[#order + 1] = x == p and "proc" or tostring(x)
    end)
    cq:wrap(function()
      cqueues.sleep(0.05)
      assert(w:write_int(1))
    end)
    assert(cq:loop(5))
    assert.same({"data", "proc"}, order)
    assert.same({true, "exit", 0}, {p:wait()})
    r:close(); w:close()
  end)
end)
