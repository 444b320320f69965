-- The manual's "Process control", sentence by sentence: groups and
-- sessions, killing a whole tree (also once its leader has ended), children
-- that die with their parent, and hpass.environ().  Each test is named after
-- the promise it checks.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"
local socket = require "socket"

local ESRCH, ECHILD = 3, 10

-- /proc/<pid>/stat: state, pgrp and session of a process, nil if gone.
local function stat(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "rb")
  if not f then return nil end
  local s = f:read("*a")  -- nil when the process went after the open
  f:close()
  if not s then return nil end
  local state, _, pgrp, sid = s:match("%) (%S) (%d+) (%d+) (%d+)")
  return state, tonumber(pgrp), tonumber(sid)
end

-- Alive: listed and not a zombie (a zombie has ended).
local function alive(pid)
  local state = stat(pid)
  return state ~= nil and state ~= "Z"
end

-- Pids of the live processes whose group is pgid.
local function members(pgid)
  local t = {}
  local p = io.popen("ls /proc")
  for name in p:lines() do
    local pid = tonumber(name)
    if pid then
      local state, pgrp = stat(pid)
      if pgrp == pgid and state ~= "Z" then t[#t + 1] = pid end
    end
  end
  p:close()
  return t
end

-- Wait up to `seconds` for f() to be true; its last result.
local function within(seconds, f)
  local deadline = socket.gettime() + seconds
  repeat
    if f() then return true end
    socket.sleep(0.02)
  until socket.gettime() > deadline
  return f()
end

-- A shell with background children and grandchildren, each holding the
-- output pipe; prints "started" once all are there.
local TREE = "sh -c 'sleep 30 & sleep 30 & wait' & sleep 30 & " ..
             "sleep 0.2; echo started; wait"

describe("Process control:", function()
  it("group = true: the child starts a new group and leads it, its id its pid; "
     .. "session = true: a new session, and so a new group too", function()
    local p = assert(hpass.spawn_with_handle({"sleep", "30"}, {}, {group = true}))
    local _, pgrp, sid = stat(p.pid)
    assert.equal(p.pid, pgrp)
    assert.not_equal(p.pid, sid)
    assert(p:kill("KILL"))
    p:wait()
    p = assert(hpass.spawn_with_handle({"sleep", "30"}, {}, {session = true}))
    _, pgrp, sid = stat(p.pid)
    assert.equal(p.pid, pgrp)
    assert.equal(p.pid, sid)
    assert(p:kill("KILL"))
    p:wait()
    -- without either, the child stays in ours
    p = assert(hpass.spawn_with_handle({"sleep", "30"}, {}, {group = false}))
    _, pgrp = stat(p.pid)
    -- our own group as ps sees it: under qemu-user this process's reads
    -- of its own /proc/PID/stat are the emulator's, with 0 for the group
    local ps = io.popen("ps -o pgid= -p " .. H.pid())
    local ours = tonumber(ps:read("*a"))
    ps:close()
    assert.equal(ours, pgrp)
    assert(p:kill("KILL"))
    p:wait()
  end)

  for _, opt in ipairs({"group", "session"}) do
    it("kill(sig, 'group') is kill(-pgid, sig): every process of the group, a "
       .. "three-generation tree (" .. opt .. ")", function()
      local r, w = assert(hpass.pipe())
      local p = assert(hpass.spawn_with_handle({"sh", "-c", TREE}, {},
                                               {stdout = w, [opt] = true}))
      w:close()
      assert(r:settimeout(20))
      local lines = r:lines()
      assert.equal("started", lines())
      local tree = members(p.pid)
      assert.is_true(#tree >= 5, "tree of " .. #tree)
      assert(p:kill("KILL", "group"))
      assert.same({nil, "signal", R.SIGKILL}, {p:wait()})
      assert.is_true(within(5, function() return #members(p.pid) == 0 end))
      for _, pid in ipairs(tree) do assert.is_false(alive(pid)) end
      assert(r:settimeout(20))
      local t0 = socket.gettime()
      assert.is_nil(lines())  -- the read of the pipe ends
      assert.is_true(socket.gettime() - t0 < 5)
      r:close()
    end)
  end

  it("kill(sig, 'group') reaches every member, not only the leader", function()
    local r, w = assert(hpass.pipe())
    local p = assert(hpass.spawn_with_handle({"sh", "-c", TREE}, {},
                                             {stdout = w, group = true}))
    w:close()
    assert(r:settimeout(20))
    assert.equal("started", r:lines()())
    local tree = members(p.pid)
    assert(p:kill("TERM", "group"))
    assert.same({nil, "signal", R.SIGTERM}, {p:wait()})
    assert.is_true(within(5, function() return #members(p.pid) == 0 end))
    for _, pid in ipairs(tree) do assert.is_false(alive(pid)) end
    r:close()
  end)

  it("once the leader was collected its group is not signalled: killing the leader "
     .. "alone, then the group, does not work", function()
    local r, w = assert(hpass.pipe())
    local p = assert(hpass.spawn_with_handle({"sh", "-c", TREE}, {},
                                             {stdout = w, group = true}))
    w:close()
    assert(r:settimeout(20))
    local lines = r:lines()
    assert.equal("started", lines())
    local tree = members(p.pid)
    assert(p:kill("KILL"))
    assert.same({nil, "signal", R.SIGKILL}, {p:wait()})
    assert.equal(#tree - 1, #members(p.pid))
    assert(r:settimeout(0.2))
    local _, err = pcall(lines)
    assert.truthy(tostring(err):find("timeout"), tostring(err))
    -- the leader was collected: its group is not signalled any more
    local ok, msg = p:kill("KILL", "group")
    assert.is_nil(ok)
    assert.equal("process has already ended", msg)
    assert.equal(#tree - 1, #members(p.pid))
    os.execute("kill -9 -" .. p.pid)
    assert.is_true(within(5, function() return #members(p.pid) == 0 end))
    r:close()
  end)

  it("once the leader was collected, kill(sig, 'group') returns nil, 'process has "
     .. "already ended', ESRCH", function()
    local p = assert(hpass.spawn_with_handle({"true"}, {}, {group = true}))
    assert(p:wait())
    local ok, msg, code = p:kill("KILL", "group")
    assert.is_nil(ok)
    assert.equal("process has already ended", msg)
    assert.equal(ESRCH, code)
    assert.equal(ESRCH, select(3, p:kill()))  -- as kill says
  end)

  it("the group is signalled even after its leader has ended, while hpass has not "
     .. "collected it: its members are reached and kill returns true", function()
    local r, w = assert(hpass.pipe())
    local p = assert(hpass.spawn_with_handle({"sh", "-c", "sleep 30 & echo $!"}, {},
                                             {stdout = w, group = true}))
    w:close()
    assert(r:settimeout(20))
    local pid = assert(tonumber(r:read("l")))
    assert.is_true(within(5, function() return stat(p.pid) == "Z" end))  -- ended
    assert.is_true(alive(pid))
    assert.is_true(p:kill("KILL", "group"))
    assert.same({true, "exit", 0}, {p:wait()})    -- then it was collected
    assert.is_true(within(5, function() return not alive(pid) end))
    assert.is_nil(r:read("l"))                     -- no writer holds the pipe
    r:close()
  end)

  it("a leader whose status someone else took is never signalled, nor its group", function()
    local r, w = assert(hpass.pipe())
    local p = assert(hpass.spawn_with_handle({"sh", "-c", "sleep 30 & echo $!"}, {},
                                             {stdout = w, group = true}))
    w:close()
    assert(r:settimeout(20))
    local pid = assert(tonumber(r:read("l")))
    assert.is_true(within(5, function() return stat(p.pid) == "Z" end))
    assert.is_true(R.sig.reapall() >= 1)          -- another library's waitpid(-1)
    assert.same({nil, "process status was collected elsewhere: No child processes",
                 ECHILD}, {p:kill("KILL", "group")})
    socket.sleep(0.1)
    assert.is_true(alive(pid))
    os.execute("kill -9 " .. pid)
    r:close()
  end)

  it("capture's timeout and max_output kill the whole group, also when the child "
     .. "itself has already exited", function()
    local out, _, ok, how = hpass.capture({"sh", "-c", "sleep 30 & echo $!"},
                                          {group = true, timeout = 0.2})
    assert.same({nil, "timeout"}, {ok, how})
    local pid = assert(tonumber(out:match("%d+")))
    assert.is_true(within(5, function() return not alive(pid) end))
    -- a grandchild floods while its parent has exited: the limit ends them
    local r, w = assert(hpass.pipe())
    local res = {hpass.capture({"sh", "-c", '"$0" flood 1 & echo $! >&3', R.relpeer},
                               {group = true, max_output = 65536, handles = {w}})}
    w:close()
    assert.same({nil, "max_output", 65536}, {res[3], res[4], res[5]})
    pid = assert(tonumber(r:read("l")))
    assert.is_true(within(5, function() return not alive(pid) end))
    r:close()
  end)

  it("capture's timeout kills the whole group when the child has one", function()
    local out, _, ok, how = hpass.capture(
      {"sh", "-c", "sleep 30 & echo $!; wait"}, {group = true, timeout = 0.5})
    assert.is_nil(ok)
    assert.equal("timeout", how)
    local pid = assert(tonumber(out:match("%d+")))
    assert.is_true(within(5, function() return not alive(pid) end))
    -- without a group only the shell is killed: the sleep runs on
    out = hpass.capture({"sh", "-c", "sleep 30 >/dev/null & echo $!; wait"},
                        {timeout = 0.5})
    pid = assert(tonumber(out:match("%d+")))
    socket.sleep(0.2)
    assert.is_true(alive(pid))
    os.execute("kill -9 " .. pid)
  end)

  it("spawn_with_handle, run and capture take the options alike", function()
    local leads = {"sh", "-c", "test $(ps -o sid= -p $$) -eq $$"}
    assert.same({true, "exit", 0}, {hpass.run(leads, {}, {session = true})})
    assert.same({nil, "exit", 1}, {hpass.run(leads, {})})
  end)
end)

-- A build without a death signal (macOS; `make test-fallbacks` forces
-- one) refuses the option, and only such a build may.
local nopdeathsig = os.getenv("HPASS_EXPECT_NOPDEATHSIG") == "1"

describe("Process control, die_with_parent:", function()
  it("on macOS, with no death signal, it returns nil, \"option 'die_with_parent': ...\", "
     .. "ENOTSUP (and only there)", function()
    local ok, msg, code = hpass.spawn_with_handle({"true"}, {}, {die_with_parent = true})
    if nopdeathsig then
      assert.is_nil(ok)
      assert.equal("option 'die_with_parent': ", msg:sub(1, 26))
      assert.equal(R.ENOTSUP, code)
    else
      assert.is_truthy(ok, msg)
      assert.same({true, "exit", 0}, {ok:wait()})
    end
  end)

  if nopdeathsig then return end

  -- A Lua parent spawning `sleep 30`, SIGKILLed once it printed the pid.
  local function orphan(flag)
    local r, w = assert(hpass.pipe())
    local parent = assert(hpass.spawn_with_handle(
      {H.lua, H.child("dwp"), flag}, {}, {stdout = w}))
    w:close()
    assert(r:settimeout(20))
    local pid = assert(tonumber(r:lines()()))
    r:close()
    assert.is_true(alive(pid))
    assert(parent:kill("KILL"))
    assert.same({nil, "signal", R.SIGKILL}, {parent:wait()})
    return pid
  end

  it("the child is killed when its parent ends, however it ends (SIGKILL)", function()
    local pid = orphan("on")
    assert.is_true(within(2, function() return not alive(pid) end))
  end)

  it("on Linux it fires when the thread that spawned the child ends, not only the "
     .. "process", function()
    local pid = assert(tonumber(assert(R.sig.inthread([[
      local hpass = require "hpass"
      local p = assert(hpass.spawn_with_handle({"sleep", "30"}, {}, {die_with_parent = true}))
      return tostring(p.pid)]]))))
    assert.is_true(within(2, function() return not alive(pid) end))
    assert(R.sig.reap(pid))  -- our child: the thread's Lua state has gone
  end)

  it("without it the child outlives its parent", function()
    local pid = orphan("off")
    socket.sleep(0.3)
    assert.is_true(alive(pid))
    os.execute("kill -9 " .. pid)
  end)

  it("works with the other options and with capture", function()
    assert.same({"x\n", "", true, "exit", 0},
                {hpass.capture({"echo", "x"}, {die_with_parent = true,
                                               group = true, cwd = "/"})})
  end)
end)

describe("Process control, environ():", function()
  it("is a new table, name -> value, of this process's environment", function()
    local e = hpass.environ()
    assert.equal(os.getenv("PATH"), e.PATH)
    assert.equal(os.getenv("HOME"), e.HOME)
    assert.not_equal(e, hpass.environ())
    local n = 0
    for k, v in pairs(e) do
      n = n + 1
      assert.equal(os.getenv(k), v)
    end
    assert.is_true(n > 0)
  end)

  it("is the environment as it is now, not a copy taken at load time", function()
    assert.is_nil(hpass.environ().HPASS_NOW)
    assert(R.sig.setenv("HPASS_NOW", "1"))
    local e = hpass.environ()
    assert(R.sig.setenv("HPASS_NOW", nil))
    assert.equal("1", e.HPASS_NOW)
    assert.is_nil(hpass.environ().HPASS_NOW)
  end)

  it("leaves out entries without '='", function()
    assert(R.sig.rawenv("HPASS_NO_EQUALS"))
    finally(function() R.sig.rawenv() end)
    local e = hpass.environ()
    for k, v in pairs(e) do
      assert.is_nil((k .. "=" .. v):find("HPASS_NO_EQUALS", 1, true))
    end
    assert.equal(os.getenv("PATH"), e.PATH)
  end)

  it("passed back as env: names added and removed, '=' and any byte in values", function()
    local e = hpass.environ()
    local value = "a=b==c \xff\xfe \xc3\xa9"
    e.HPASS_ADDED = value
    e.HOME = nil
    local out = assert(hpass.capture({"env"}, {env = e}))
    local seen = {}
    for line in out:gmatch("[^\n]+") do
      local k, v = line:match("^([^=]+)=(.*)$")
      if k then seen[k] = v end
    end
    assert.equal(value, seen.HPASS_ADDED)
    assert.is_nil(seen.HOME)
    assert.equal(os.getenv("PATH"), seen.PATH)
    -- and a child's own environ() gives it back
    assert.equal(value, (hpass.capture({H.lua, H.child("environ"), "HPASS_ADDED"},
                                       {env = e})))
    assert.equal("nil", (hpass.capture({H.lua, H.child("environ"), "HOME"},
                                       {env = e})))
  end)
end)

describe("Process control, bad input:", function()
  it("session and die_with_parent must be booleans, group a boolean or a process "
     .. "group id", function()
    for _, opt in ipairs({"group", "session", "die_with_parent"}) do
      for _, v in ipairs({1, "yes", {}}) do
        if not (opt == "group" and v == 1) then
          local msg = H.raises(hpass.spawn_with_handle, {"true"}, {}, {[opt] = v})
          assert.truthy(msg:find("option '" .. opt .. "' must be a boolean"
                                  .. (opt == "group" and " or a process group id" or "")
                                  .. ", got " .. type(v), 1, true), msg)
          assert.truthy(msg:find("bad argument #3", 1, true), msg)
        end
      end
    end
    for _, v in ipairs({0, -1, 1.5, 2 ^ 31, 0 / 0}) do
      local msg = H.raises(hpass.capture, {"true"}, {group = v})
      assert.truthy(msg:find("option 'group' must be a boolean or a process group id "
                             .. "(an integer from 1 to 2147483647)", 1, true), msg)
      assert.truthy(msg:find("bad argument #2", 1, true), msg)
    end
  end)

  it("kill(sig, 'group') raises 'bad argument #2 (process has no group of its own ...)' "
     .. "without group or session; any second argument but 'group' raises", function()
    local p = assert(hpass.spawn_with_handle({"sleep", "30"}, {}))
    local msg = H.raises(function() local r = p:kill("KILL", "group"); return r end)
    assert.truthy(msg:find("bad argument #2 to 'kill' (process has no group of its own",
                           1, true), msg)
    msg = H.raises(p.kill, p, "KILL", "group")    -- not a method call: self is #1
    assert.truthy(msg:find("process has no group of its own", 1, true), msg)
    assert.truthy(msg:find("bad argument #3", 1, true), msg)
    for _, v in ipairs({"grp", "group\0", "GROUP", ""}) do
      msg = H.raises(p.kill, p, "KILL", v)
      assert.truthy(msg:find("'group' expected", 1, true), msg)
    end
    msg = H.raises(p.kill, p, "KILL", {})
    assert.truthy(msg:find("bad argument #3", 1, true), msg)
    msg = H.raises(p.kill, p, "KILL", "group", 1)
    assert.truthy(msg:find("bad argument #4", 1, true), msg)
    assert.truthy(alive(p.pid))  -- nothing was sent
    assert(p:kill("KILL", nil))
    p:wait()
    local g = assert(hpass.spawn_with_handle({"sleep", "30"}, {}, {group = true}))
    msg = H.raises(g.kill, g, "NOSUCH", "group")
    assert.truthy(msg:find("unknown signal name", 1, true), msg)
    assert(g:kill("KILL", "group"))
    g:wait()
  end)

  it("environ takes no arguments", function()
    local msg = H.raises(hpass.environ, 1)
    assert.truthy(msg:find("bad argument #1", 1, true), msg)
  end)
end)
