-- hpass.signals: signals as a handle (the manual's "Servers" section).
local hpass = require "hpass"
local sig = require "sigpeer"
local H = require "helpers"
local R = require "relhelp"

local ETIMEDOUT = sig.const.ETIMEDOUT

-- Every signal that the handle s holds right now, in order.
local function drain(s)
  local t = {}
  s:settimeout(0)
  while true do
    local name, err = s:read_signal()
    if not name then
      assert.equal("timeout", err)
      return t
    end
    t[#t + 1] = name
  end
end

describe("signals", function()
  after_each(function()
    H.cleanup()
    collectgarbage(); collectgarbage()  -- a failed test's handle lets go
  end)

  it("read_signal returns the name of each signal that arrived, oldest first", function()
    local s = assert(hpass.signals{"HUP", "USR1", "TERM"})
    sig.raise("USR1", 2)
    sig.raise("HUP", 1)
    sig.raise("TERM", 1)
    sig.raise("USR1", 1)
    assert.same({"USR1", "USR1", "HUP", "TERM", "USR1"}, drain(s))
    s:close()
  end)

  it("\"SIGHUP\" and \"HUP\" name the same signal; one listed twice counts once", function()
    local s = assert(hpass.signals{"SIGHUP", "HUP"})
    assert.equal("hpass.signals (HUP)", tostring(s))
    sig.raise("HUP", 1)
    assert.same({"HUP"}, drain(s))
    s:close()
  end)

  it("every delivery is reported once: a burst of 70,000, past what the pipe holds", function()
    local s = assert(hpass.signals{"USR1", "USR2"})
    sig.raise("USR1", 50000)
    sig.raise("USR2", 20000)
    local got = drain(s)
    local n = {USR1 = 0, USR2 = 0}
    for _, name in ipairs(got) do n[name] = n[name] + 1 end
    assert.same({USR1 = 50000, USR2 = 20000}, n)
    s:close()
  end)

  it("read_signal follows settimeout: 0 is only what waits now, a limit is kept", function()
    local s = assert(hpass.signals{"USR1"})
    s:settimeout(0)
    assert.same({nil, "timeout", ETIMEDOUT}, {s:read_signal()})
    assert.equal(0, s:timeout())
    s:settimeout(0.2)
    local t0 = os.clock()
    local socket = require "socket"
    local w0 = socket.gettime()
    assert.same({nil, "timeout", ETIMEDOUT}, {s:read_signal()})
    local waited = socket.gettime() - w0
    assert.is_true(waited >= 0.19 and waited < 2, waited)
    assert.is_true(os.clock() - t0 < 0.1)             -- asleep, not spinning
    s:settimeout(nil)
    assert.is_nil(s:timeout())
    sig.raise("USR1", 1)
    assert.equal("USR1", s:read_signal())              -- no limit: waits, gets it
    s:close()
  end)

  it("survives EINTR: a storm of other signals neither shortens nor lengthens a wait", function()
    local s = assert(hpass.signals{"USR1"})
    local socket = require "socket"
    sig.catch("ALRM")                                  -- no SA_RESTART
    sig.timer(1000)
    s:settimeout(0.3)
    local w0 = socket.gettime()
    local r = {s:read_signal()}
    local waited = socket.gettime() - w0
    sig.timer(0)
    sig.default("ALRM")
    assert.same({nil, "timeout", ETIMEDOUT}, r)
    assert.is_true(waited >= 0.29 and waited < 2, waited)
    assert.is_true(sig.count("ALRM") > 10)
    s:close()
  end)

  it("is readable in hpass.select with handles and processes, together", function()
    local s = assert(hpass.signals{"USR2"})
    local r, w = assert(hpass.pipe())
    local pid = H.pid()
    -- a child that signals us, writes to the pipe and ends
    local p = assert(hpass.spawn_with_handle(
        {"sh", "-c", "kill -USR2 " .. pid .. "; echo x >&3; exec 3>&-"}, w))
    w:close()
    local seen, watch = {}, {s, r, p}
    for _ = 1, 3 do
      local ready = hpass.select(watch, nil, 10)
      watch = {}
      if ready[s] then seen.s = true; assert.same({"USR2"}, drain(s)) end
      if ready[r] then seen.r = true; assert.equal("x", r:read("l")) end
      if ready[p] then seen.p = true end
      -- what was seen is watched no more (the pipe stays readable at its end)
      if not seen.s then watch[#watch + 1] = s end
      if not seen.r then watch[#watch + 1] = r end
      if not seen.p then watch[#watch + 1] = p end
      if #watch == 0 then break end
    end
    assert.same({s = true, r = true, p = true}, seen)
    assert.same({true, "exit", 0}, {p:wait()})
    local ready, _, err = hpass.select({s}, nil, 0)    -- nothing waits now
    assert.equal("timeout", err)
    assert.is_nil(ready[s])
    r:close(); s:close()
  end)

  it("luv polls its pollfd, and cqueues.poll takes it", function()
    local uv = require "luv"
    local s = assert(hpass.signals{"USR1"})
    local fired = false
    local poll = uv.new_poll(s:pollfd())
    poll:start("r", function() fired = true; poll:stop() end)
    sig.raise("USR1", 1)
    uv.run("once")
    poll:close(); uv.run("nowait")
    assert.is_true(fired)
    assert.same({"USR1"}, drain(s))
    local cqueues = require "cqueues"
    local cq = cqueues.new()
    local got
    cq:wrap(function() got = cqueues.poll(s) end)
    assert(cq:step(0))
    sig.raise("USR1", 1)
    assert(cq:loop(5))
    assert.equal(s, got)
    assert.equal("r", s:events())
    assert.same({"USR1"}, drain(s))
    s:close()
  end)

  it("closing restores exactly the disposition before: handler, flags and mask", function()
    sig.catchx("USR1", true, "HUP")                    -- SA_RESTART, HUP masked
    local before = sig.action("USR1")
    local s = assert(hpass.signals{"USR1"})
    assert.is_not.equal(before, sig.action("USR1"))
    s:close()
    assert.equal(before, sig.action("USR1"))
    sig.raise("USR1", 3)
    assert.equal(3, sig.count("USR1"))                 -- its own handler again
    for _, how in ipairs({"ignore", "default"}) do
      sig[how]("USR2")
      before = sig.action("USR2")
      s = assert(hpass.signals{"USR2"})
      assert.is_true(s:close())
      assert.is_true(s:close())                        -- again: true
      assert.equal(before, sig.action("USR2"))
    end
    sig.default("USR1")
  end)

  it("collecting restores it too, and so does <close> on Lua 5.4", function()
    sig.ignore("USR2")
    local before = sig.action("USR2")
    do local s = assert(hpass.signals{"USR2"}); assert(s) end
    collectgarbage(); collectgarbage()
    assert.equal(before, sig.action("USR2"))
    if H.version >= 5.4 then
      local f = assert(load([[
        local hpass = ...
        local s <close> = assert(hpass.signals{"USR2"})
        return require("sigpeer").action("USR2")]]))
      assert.is_not.equal(before, f(hpass))
      assert.equal(before, sig.action("USR2"))
    end
    sig.default("USR2")
  end)

  it("a handle dropped without close holds its signals until the collector takes it", function()
    do local s = assert(hpass.signals{"USR1"}); assert(s) end
    local ok = pcall(hpass.signals, {"USR1"})    -- may or may not be collected yet
    collectgarbage(); collectgarbage()
    local s = assert(hpass.signals{"USR1"})
    s:close()
    if not ok then collectgarbage() end
  end)

  it("CHLD arrives when a child ends, and collects nobody", function()
    local s = assert(hpass.signals{"CHLD"})
    local p = assert(hpass.spawn_with_handle({"true"}, {}))
    s:settimeout(10)
    assert.equal("CHLD", s:read_signal())
    assert.same({true, "exit", 0}, {p:wait()})    -- still ours to collect
    s:close()
  end)

  it("two signals handles for one signal raise; once closed, it can be had again", function()
    local a = assert(hpass.signals{"HUP", "USR1"})
    assert.matches("signal 'USR1' is already caught by another signals handle",
                   H.raises(hpass.signals, {"USR2", "USR1"}))
    assert.equal("handler", sig.disposition("HUP"))
    assert.equal("default", sig.disposition("USR2"))   -- the refused call changed nothing
    a:close()
    local b = assert(hpass.signals{"USR1"})
    b:close()
  end)

  it("an inherited ignored signal is caught while the handle is open, "
     .. "then ignored again", function()
    local out = H.capture({"sh", "-c", "trap '' HUP; exec \"$0\" \"$@\"", H.lua,
                           H.child("sigholder"), "ignored"})
    assert.same({
      "start\tignore\tfalse\tfalse",
      "raised\tignore\tfalse\tfalse",    -- ignored: nothing arrives
      "open\thandler\tfalse\tfalse",
      "read\tHUP\tnone",                 -- caught while open
      "closed\tignore\tfalse\tfalse",
      "end\tignore\tfalse\tfalse",       -- and the process lives on
    }, H.lines(out))
  end)

  it("an inherited blocked signal is unblocked while open (one pending arrives), "
     .. "blocked again after", function()
    local out = H.capture({H.peer("relpeer"), "block", tostring(sig.const.SIGUSR1), H.lua,
                           H.child("sigholder"), "blocked"})
    assert.same({
      "start\tdefault\ttrue\tfalse",
      "raised\tdefault\ttrue\ttrue",     -- pending, not delivered
      "open\thandler\tfalse\tfalse",     -- delivered when the handle opened
      "read\tUSR1\tUSR1",
      "closed\tdefault\ttrue\tfalse",
      "end\tdefault\ttrue\ttrue",
    }, H.lines(out))
  end)

  it("no signal kills the process while a signals handle holds it, nor breaks its calls", function()
    local inr, inw = assert(hpass.pipe())
    local outr, outw = assert(hpass.pipe())
    local p = assert(hpass.spawn_with_handle({H.lua, H.child("sigholder"), "storm"}, {},
                                             {stdin = inr, stdout = outw}))
    inr:close(); outw:close()
    outr:settimeout(30)
    assert.equal("ready", outr:read("l"))
    local names = {"HUP", "INT", "TERM", "USR1", "USR2", "QUIT", "ALRM", "PIPE", "WINCH"}
    for _ = 1, 300 do
      for _, n in ipairs(names) do assert(sig.kill(p.pid, n)) end
    end
    assert(inw:write("stop\n"))
    local counts = {}
    for line in outr:lines() do
      local n, c = line:match("^(%w+)\t(%d+)$")
      counts[n] = tonumber(c)
    end
    assert.same({true, "exit", 0}, {p:wait()})
    for _, n in ipairs(names) do
      assert.is_true(counts[n] >= 1 and counts[n] <= 300, n .. " " .. tostring(counts[n]))
    end
    assert.is_true(counts.rounds >= 1)
    inw:close(); outr:close()
  end)

  it("children start with default dispositions and an empty mask", function()
    local s = assert(hpass.signals{"USR1", "HUP", "TERM"})
    local out = H.capture({"cat", "/proc/self/status"})
    assert.matches("\nSigBlk:%s*0+\n", out)
    assert.matches("\nSigCgt:%s*0+\n", out)          -- cat catches nothing
    s:close()
  end)

  it("is a type of its own; closed, it raises 'attempt to use a closed handle'", function()
    local s = assert(hpass.signals{"USR1"})
    assert.equal("signals", hpass.type(s))
    assert.is_number(s:pollfd())
    assert.equal(s:pollfd(), s:getfd())
    s:close()
    assert.equal("closed signals", hpass.type(s))
    assert.equal("hpass.signals (closed)", tostring(s))
    assert.matches("attempt to use a closed handle", H.raises(s.read_signal, s))
    assert.matches("attempt to use a closed handle", H.raises(hpass.select, {s}, nil, 0))
  end)

  -- #novalgrind: valgrind enforces the descriptor limit itself
  it("an OS failure gives fail, msg, code and catches nothing #novalgrind", function()
    collectgarbage(); collectgarbage()
    local limit = sig.nofile()
    assert(sig.nofile(3))                          -- no descriptor left for the pipe
    local s, msg, code = hpass.signals{"USR1"}
    sig.nofile(limit)
    assert.is_nil(s)
    assert.is_string(msg)                          -- the C library's words
    assert.equal(sig.const.EMFILE, code)
    assert.equal("default", sig.disposition("USR1"))
    s = assert(hpass.signals{"USR1"})              -- nothing was left caught
    s:close()
  end)

  it("refuses what it cannot catch and what is no signal name", function()
    assert.matches("table expected", H.raises(hpass.signals))
    assert.matches("table expected", H.raises(hpass.signals, "HUP"))
    assert.matches("empty list", H.raises(hpass.signals, {}))
    for _, n in ipairs({"KILL", "STOP", "SEGV", "SIGBUS", "FPE", "ILL", "ABRT"}) do
      assert.matches("element 1: signal '" .. n .. "' cannot be caught",
                     H.raises(hpass.signals, {n}))
    end
    assert.matches("element 2: unknown signal name 'FOO'", H.raises(hpass.signals, {"HUP", "FOO"}))
    assert.matches("unknown signal name", H.raises(hpass.signals, {"HUP\0"}))
    assert.matches("element 1: signal name expected, got number", H.raises(hpass.signals, {1}))
    assert.matches("no value expected", H.raises(hpass.signals, {"HUP"}, 1))
    assert.equal("default", sig.disposition("HUP"))
    local s = assert(hpass.signals{"USR1"})
    assert.matches("no value expected", H.raises(s.read_signal, s, 1))
    assert.matches("non%-negative", H.raises(s.settimeout, s, -1))
    s:close()
  end)

  it("open, signal and collect under an eager collector leave nothing behind", function()
    collectgarbage(); collectgarbage()
    local before = sig.nfds()
    local restore = R.eager_gc()  -- "setpause" is gone in Lua 5.5
    for i = 1, 200 do
      local s = assert(hpass.signals{"USR1", "USR2"})
      sig.raise(i % 2 == 0 and "USR1" or "USR2", 3)
      if i % 3 == 0 then s:close() end
      s = nil  -- luacheck: ignore (dropped, then collected before the next)
      for _ = 1, 50 do local _ = {} end
      collectgarbage()
    end
    restore()
    collectgarbage(); collectgarbage()
    assert.equal(before, sig.nfds())
    assert.equal("default", sig.disposition("USR1"))
    assert.equal("default", sig.disposition("USR2"))
  end)
end)
