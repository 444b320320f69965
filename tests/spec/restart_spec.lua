-- Restarting a server without losing a connection: examples/hotrestart.lua
-- under a client load, and hpass.server, the machinery it is made of.
--
-- The load's size: HPASS_RESTART_CONNS connections at once (default 100)
-- and HPASS_RESTART_TIMES restarts (default 10).  `make check-restart`
-- runs it at full size (400 connections, 20 restarts).
local hpass = require "hpass"
local server = require "hpass.server"
local socket = require "socket"
local sigpeer = require "sigpeer"
local echoload = require "echoload"
local H = require "helpers"

local EXAMPLE = H.root .. "/examples/hotrestart.lua"
local CONNS = tonumber(os.getenv("HPASS_RESTART_CONNS")) or 100
local TIMES = tonumber(os.getenv("HPASS_RESTART_TIMES")) or 10

-- A free port on 127.0.0.1 (bound and released: free for a moment).
local function freeport()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- One connection, one line, one answer: pid, text (or nil, err).
local function ask(port, line)
  local c = assert(socket.tcp())
  c:settimeout(10)
  local ok, err = c:connect("127.0.0.1", port)
  if not ok then c:close(); return nil, err end
  assert(c:send(line .. "\n"))
  local answer, rerr = c:receive("*l")
  c:close()
  if not answer then return nil, rerr end
  local pid, text = answer:match("^(%d+) (.*)$")
  return tonumber(pid), text
end

-- Wait until the server answers; its pid.
local function until_serving(port, proc)
  for _ = 1, 200 do
    local pid = ask(port, "up?")
    if pid then return pid end
    assert(proc:poll() == false, "the server ended before it served")
    socket.sleep(0.05)
  end
  error("the server did not start serving")
end

local ended = {}  -- pid -> how it ended, for the copies we reaped

-- Until pid has ended: collected by us (an orphan, when we could become
-- the subreaper) or by its parent, or a zombie of some other reaper:
-- true, or false after 20 s.
local function until_gone(pid)
  for _ = 1, 400 do
    for p, how in pairs(sigpeer.reaped()) do ended[p] = how end
    local f = io.open("/proc/" .. pid .. "/stat")
    if not f then return true end
    local state = f:read("*a"):match("%) (%a)")
    f:close()
    if state == "Z" and not ended[pid] then return true end
    socket.sleep(0.05)
  end
  return false
end

-- A server from script on a free port; its stderr goes to a file.
local function start(script, ...)
  local port, errfile = freeport(), H.tmpname()
  local f = assert(io.open(errfile, "w"))
  local proc = assert(hpass.spawn_with_handle({H.lua, script, port, ...}, {},
                                              {stderr = f}))
  f:close()
  local pid = until_serving(port, proc)
  assert.equal(proc.pid, pid)
  return proc, port, errfile
end

-- Stop the server whose newest copy is pid with SIGTERM; every copy must
-- be gone, and have ended with 0 where we see how: the first is our
-- child (waited for before anything else is reaped, so that its status
-- stays for it), the last and every copy orphaned before it ended are
-- reaped by us (a copy that ended while the one before it still drained
-- is collected by that one).
local function finish(proc, pid, pids)
  assert(sigpeer.kill(pid, "TERM"))
  assert.same({true, "exit", 0}, {proc:wait()})
  for _, p in ipairs(pids or {pid}) do
    if p ~= proc.pid then
      assert.is_true(until_gone(p), "pid " .. p)
      assert.is_true(ended[p] == nil or ended[p] == "exit 0", ended[p])
    end
  end
end

-- A script of its own for code (the sanitizer's interpreter has no -e).
local function scriptof(code)
  local name = H.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(code, "\n")
  f:close()
  return name
end

local function copyof(path)
  local name = H.tmpname() .. ".lua"
  local f = assert(io.open(name, "w"))
  f:write(H.readfile(path))
  f:close()
  return name
end

describe("restarting examples/hotrestart.lua", function()
  -- orphaned copies become ours, so that how they ended can be seen
  -- (not under qemu-user, which refuses the prctl: then only that they did)
  setup(function() sigpeer.subreaper(true) end)
  teardown(function() sigpeer.subreaper(false) end)
  after_each(H.cleanup)

  it("under a load of " .. CONNS .. " connections, SIGHUP " .. TIMES ..
     " times: none refused or reset, every line answered right, a new pid each time", function()
    local proc, port, errfile = start(EXAMPLE)
    -- connections of 4 lines each, so that new ones keep coming during
    -- every handover; 2 answers per connection between restarts
    local r = echoload.run(port, {conns = CONNS, lines = 4, restarts = TIMES,
                                  gap = 2 * CONNS, timeout = 60 + TIMES * 6,
                                  first = proc.pid})
    assert.same({}, r.errors)
    assert.equal(TIMES, #r.hups)
    assert.equal(TIMES + 1, #r.pids)           -- a new pid each time
    for k = 1, TIMES do                        -- ... answering after SIGHUP k
      assert.equal(r.pids[k], r.hups[k])
    end
    assert.is_true(r.connections > CONNS * TIMES / 2)  -- they came and went
    finish(proc, r.pids[#r.pids], r.pids)
    local log = H.readfile(errfile)
    local handed = 0
    for _ in log:gmatch("handed over") do handed = handed + 1 end
    assert.equal(TIMES, handed)
    assert.is_nil(log:find("restart failed", 1, true), log)
  end)

  it("a new copy that crashes on start leaves the old one serving, and says why", function()
    local script = copyof(EXAMPLE)
    local proc, port, errfile = start(script)
    local good = H.readfile(script)
    local f = assert(io.open(script, "w"))
    f:write("error('broken release')\n")
    f:close()
    local c = assert(socket.connect("127.0.0.1", port))  -- open across it all
    c:settimeout(10)
    assert(proc:kill("HUP"))
    local log
    for _ = 1, 200 do
      log = H.readfile(errfile)
      if log:find("restart failed", 1, true) then break end
      socket.sleep(0.05)
    end
    assert.matches("restart failed, still serving: the new copy %(pid %d+%) ended "
                   .. "before it was ready %(exit 1%)", log)
    assert.equal(proc.pid, (ask(port, "still there")))
    assert(c:send("same connection\n"))
    assert.equal(proc.pid .. " same connection", c:receive("*l"))
    -- the release fixed, the next SIGHUP hands over
    f = assert(io.open(script, "w"))
    f:write(good)
    f:close()
    assert(proc:kill("HUP"))
    local pid
    for _ = 1, 200 do
      pid = ask(port, "who?")
      if pid ~= proc.pid then break end
      socket.sleep(0.05)
    end
    assert.is_true(pid ~= proc.pid)
    -- the old copy finishes the connection it has before it goes
    assert(c:send("after the handover\n"))
    assert.equal(proc.pid .. " after the handover", c:receive("*l"))
    c:close()
    finish(proc, pid)
  end)

  it("a new copy that never reports ready is killed after --ready-timeout, "
     .. "the old one serves on", function()
    local script = copyof(EXAMPLE)
    local proc, port, errfile = start(script, "--ready-timeout", "0.5")
    local f = assert(io.open(script, "w"))
    f:write("require('hpass.server').new()\nwhile true do end\n")  -- never ready
    f:close()
    assert(proc:kill("HUP"))
    local log
    for _ = 1, 200 do
      log = H.readfile(errfile)
      if log:find("restart failed", 1, true) then break end
      socket.sleep(0.05)
    end
    local pid = tonumber(log:match("the new copy %(pid (%d+)%) did not report ready within 0%.5 s"))
    assert.is_number(pid, log)
    assert.is_true(until_gone(pid))            -- killed and collected
    assert.matches("restart failed, still serving", log)
    assert.equal(proc.pid, (ask(port, "still there")))
    finish(proc, proc.pid)
  end)

  for _, signal in ipairs({"TERM", "INT"}) do
    it("SIG" .. signal .. ": stops accepting, finishes its connections, exits 0", function()
      local proc, port = start(EXAMPLE)
      local c = assert(socket.connect("127.0.0.1", port))
      c:settimeout(10)
      assert(c:send("first\n"))                   -- accepted, surely
      assert.equal(proc.pid .. " first", c:receive("*l"))
      assert(proc:kill(signal))
      socket.sleep(0.2)
      assert.is_false(proc:poll())                -- a connection is open
      assert.is_nil(ask(port, "anyone?"))         -- but nobody accepts
      assert(c:send("last words\n"))
      assert.equal(proc.pid .. " last words", c:receive("*l"))
      c:close()
      assert.same({true, "exit", 0}, {proc:wait(10)})
    end)
  end

  it("SIGTERM: what waits in the queue is accepted and answered first", function()
    local proc, port = start(EXAMPLE)
    assert(proc:kill("STOP"))                     -- nothing is accepted now
    local queued = {}
    for i = 1, 5 do
      queued[i] = assert(socket.connect("127.0.0.1", port))  -- in the queue
      queued[i]:settimeout(10)
      assert(queued[i]:send("queued " .. i .. "\n"))
    end
    assert(proc:kill("TERM"))                     -- waits for CONT
    assert(proc:kill("CONT"))
    for i = 1, 5 do
      assert.equal(proc.pid .. " queued " .. i, queued[i]:receive("*l"))
      queued[i]:close()
    end
    assert.same({true, "exit", 0}, {proc:wait(10)})
  end)

  it("connections still open --drain-timeout seconds after stopping are closed", function()
    local proc, port, errfile = start(EXAMPLE, "--drain-timeout", "0.5")
    local c = assert(socket.connect("127.0.0.1", port))
    c:settimeout(10)
    assert(c:send("hi\n"))
    assert.equal(proc.pid .. " hi", c:receive("*l"))
    assert(proc:kill("TERM"))
    local t0 = socket.gettime()
    local line, err = c:receive("*l")
    assert.same({nil, "closed"}, {line, err})     -- it hangs up on us
    local waited = socket.gettime() - t0
    assert.is_true(waited >= 0.4 and waited < 5, waited)
    c:close()
    assert.same({true, "exit", 0}, {proc:wait(10)})
    assert.matches("drain time is over, closing 1 connections", H.readfile(errfile))
  end)
end)

describe("hpass.server", function()
  after_each(H.cleanup)

  it("new() without inherited sockets: listener() makes them", function()
    local srv = assert(server.new())
    assert.equal(H.pid(), srv.pid)
    local made = 0
    local h = assert(srv:listener("web", function() made = made + 1; return hpass.pipe() end))
    assert.equal("handle", hpass.type(h))
    assert.equal(1, made)
    assert.is_true(srv:ready())                -- nobody waits: true at once
    srv:stop()
    assert.equal("closed handle", hpass.type(h))
  end)

  it("listener(): what make returns on failure (nil, msg) is returned, no value added",
     function()
    local function count(...) return {select("#", ...), ...} end
    local srv = assert(server.new())
    assert.same({2, nil, "no"}, count(srv:listener("web", function() return nil, "no" end)))
    assert.same({3, nil, "no", 5},
                count(srv:listener("web", function() return nil, "no", 5 end)))
    assert.same({1, false}, count(srv:listener("web", function() return false end)))
    srv:stop()
  end)

  it("stop() closes the listeners and the inherited sockets no listener took; drain_left",
     function()
    local a = assert(socket.bind("127.0.0.1", 0))
    local b = assert(socket.bind("127.0.0.1", 0))
    local script = H.script([[
local srv = assert(require("hpass.server").new())
local h = assert(srv:listener("web", error))
local function open(fd) local f = io.open("/proc/self/fdinfo/" .. fd); if f then f:close() end
                        return f ~= nil end
print(h:fileno(), open(3), open(4), srv:drain_left())
srv:stop(10)
local left = srv:drain_left()
print(open(3), open(4), srv.stopping, left > 9 and left <= 10)
srv = assert(require("hpass.server").new())
srv:stop()
print(srv:drain_left())
]])
    local out, ok = H.capture({H.lua, script}, {}, {listen = {a, b}, listen_names = {"web", "old"}})
    assert.is_true(ok, out)
    assert.same({"3\ttrue\ttrue\tnil", "false\tfalse\ttrue\ttrue", "nil"}, H.lines(out))
    a:close(); b:close()
  end)

  it("cancel() kills a copy still starting; remaining() counts down to 0", function()
    local srv = assert(server.new())
    local up = assert(srv:upgrade({"sleep", "30"}, {timeout = 0.3}))
    local left = up:remaining()
    assert.is_true(left > 0 and left <= 0.301, left)
    assert.is_false(up:status())
    up:cancel()
    assert.same({nil, "signal", 9}, {up.proc:wait()})
    assert.same({nil, "cancelled"}, {up:status()})
    up = assert(srv:upgrade({"sleep", "30"}, {timeout = 0.2}))
    socket.sleep(0.3)
    assert.equal(0, up:remaining())
    local ok, why = up:status()
    assert.is_nil(ok)
    assert.matches("did not report ready within 0.2 s", why)
    assert.same({nil, "signal", 9}, {up.proc:wait()})
  end)

  it("upgrade() that cannot start the copy returns fail, msg, code and changes nothing", function()
    local srv = assert(server.new())
    local r, w = assert(hpass.pipe())
    assert(srv:listener("x", function() return r end))
    local up, msg, code = srv:upgrade({"/nonexistent/program"})
    assert.is_nil(up)
    assert.matches("No such file", msg)
    assert.is_number(code)
    assert.equal("handle", hpass.type(r))
    srv:stop()
    w:close()
  end)

  it("hands listeners over by name, and the copy's ready() completes the upgrade", function()
    local srv = assert(server.new())
    local a = assert(socket.bind("127.0.0.1", 0))
    local _, port = a:getsockname()
    assert(srv:listener("web", function() return a end))
    local script = H.script([[
local hpass = require "hpass"
local srv = assert(require("hpass.server").new())
local h = assert(srv:listener("web", error))
assert(srv:listener("other", function() return "made" end) == "made")
io.write(hpass.type(h), " ", tostring(os.getenv("LISTEN_FDS")), "\n")
io.stdout:flush()
assert(srv:ready())
local socket = require "socket"
local s = socket.tcp(); s:close(); s:setfd(h:detach()); assert(s:listen(8))
s:settimeout(10)
local c = assert(s:accept())
c:send("from the copy\n")
c:close()
]])
    local out = H.tmpname()
    local of = assert(io.open(out, "w"))
    local up = assert(srv:upgrade({H.lua, script}, {timeout = 10, stdout = of}))
    of:close()
    assert.same({1, true}, {select("#", up:wait()), up:wait()})   -- true alone
    -- an hpass handle, and LISTEN_* gone from its environment
    assert.equal("handle nil\n", H.readfile(out))
    assert.is_true(up:status())
    srv:stop()                                  -- our copy of the socket closes
    local c = assert(socket.connect("127.0.0.1", port))
    c:settimeout(10)
    assert.equal("from the copy", c:receive("*l"))
    c:close()
    assert.same({true, "exit", 0}, {up.proc:wait()})
  end)

  it("a copy that exits before ready(): fail, why with its exit status", function()
    local srv = assert(server.new())
    local up = assert(srv:upgrade({H.lua, scriptof("os.exit(7)")}))
    local ok, why = up:wait()
    assert.is_nil(ok)
    assert.matches("ended before it was ready %(exit 7%)", why)
    assert.equal(2, select("#", up:wait()))                       -- nil, why
    assert.same({nil, why}, {up:status()})
  end)

  it("an upgrade sits in hpass.select: readable once the copy reported", function()
    local srv = assert(server.new())
    local up = assert(srv:upgrade({H.lua, scriptof("require('hpass.server').new():ready()")}))
    local ready = hpass.select({up}, nil, 10)
    assert.is_true(ready[up])
    assert.is_true(up:status())
    assert.same({true, "exit", 0}, {up.proc:wait()})
  end)

  it("command() is this process's command line, interpreter options included", function()
    assert.same({"lua5.4", "-e", "x=1", "s.lua", "a", "b"},
                server.command({[-3] = "lua5.4", [-2] = "-e", [-1] = "x=1",
                                [0] = "s.lua", "a", "b"}))
  end)
end)
