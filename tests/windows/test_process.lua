-- Process control on Windows: a job object for group/session (the whole
-- tree ends with kill(code, "group")) and for die_with_parent (the tree
-- ends when the parent does), and hpass.environ() from the UTF-16 block.

local hpass = require "hpass"
local S = require "support"
local aid = require "testaid"

local tests, test = S.suite()

-- Wait up to ms milliseconds for f() to be true; its last result.
local function within(ms, f)
  for _ = 1, ms // 20 do
    if f() then return true end
    aid.sleep(20)
  end
  return f()
end

local function gone(pid) return function() return not aid.alive(pid) end end

-- A Lua child that starts two grandchildren holding its stdout: the
-- process, the read end's line iterator, the grandchildren's pids.
local function tree(opts)
  local p, r = assert(S.capture({S.lua, S.child, "tree"}, {}, opts))
  assert(r:settimeout(20))
  local lines = r:lines()
  local pids = {math.tointeger(tonumber(lines())), math.tointeger(tonumber(lines()))}
  S.eq((lines():gsub("\r$", "")), "started")
  return p, r, lines, pids
end

test("kill(code, 'group') ends the child and all it started", function()
  for _, opt in ipairs({"group", "session"}) do
    local p, r, lines, pids = tree({[opt] = true})
    for _, pid in ipairs(pids) do S.eq(aid.alive(pid), true, "grandchild") end
    assert(p:kill(9, "group"))
    S.eq(select(3, p:wait()), 9, "exit code")
    for _, pid in ipairs(pids) do assert(within(5000, gone(pid)), "grandchild lives") end
    S.eq(lines(), nil, "end of the pipe")
    r:close()
  end
end)

test("kill() alone leaves the grandchildren, and the pipe, open; the job is ended "
     .. "even after the leader was collected", function()
  local p, r, lines, pids = tree({group = true})
  assert(p:kill(9))
  S.eq(select(3, p:wait()), 9, "exit code")
  aid.sleep(200)
  for _, pid in ipairs(pids) do S.eq(aid.alive(pid), true, "grandchild") end
  assert(r:settimeout(0.2))
  local ok, err = pcall(lines)
  S.eq(ok, false, "read ends")
  S.match(tostring(err), "timeout")
  r:close()
  -- the leader was collected, but a job is never reused: what is left of
  -- it still ends, and then the job reads as ended
  assert(p:kill(9, "group"))
  for _, pid in ipairs(pids) do assert(within(5000, gone(pid)), "grandchild lives") end
  local res, msg, code = p:kill(9, "group")
  S.eq(res, nil); S.eq(msg, "process has already ended"); S.eq(code, 128)
end)

-- A Lua child that starts two grandchildren holding its stdout and exits
-- at once: the process, the read end, the grandchildren's pids.
local function orphans(opts)
  local p, r = assert(S.capture({S.lua, S.child, "forkexit"}, {}, opts))
  assert(r:settimeout(20))
  local lines = r:lines()
  return p, r, {math.tointeger(tonumber(lines())), math.tointeger(tonumber(lines()))}
end

test("kill(sig, 'group') ends the job also after its leader has ended " ..
     "and was collected", function()
  local p, r, pids = orphans({group = true})
  S.eq(p:wait(10), true, "the leader exits")
  for _, pid in ipairs(pids) do S.eq(aid.alive(pid), true, "grandchild") end
  assert(p:kill(9, "group"))
  for _, pid in ipairs(pids) do assert(within(5000, gone(pid)), "grandchild lives") end
  S.eq(r:read("a"), "", "the pipe ends")
  r:close()
end)

test("capture's timeout kills the whole group, also when the leader " ..
     "has exited and grandchildren hold the pipes", function()
  for _, opt in ipairs({"group", "session"}) do
    local t0 = aid.ticks()
    local out, _, ok, how = hpass.capture({S.lua, S.child, "forkexit"},
                                          {[opt] = true, timeout = 1})
    local ms = aid.ticks() - t0
    S.eq(ok, nil, opt); S.eq(how, "timeout", opt)
    assert(ms < 2500, ("%s: returned after %d ms, not 1 s"):format(opt, ms))
    for pid in out:gmatch("(%d+)\r?\n") do
      assert(within(2000, gone(math.tointeger(tonumber(pid)))),
             opt .. ": grandchild lives")
    end
  end
end)

test("capture's timeout ends the whole job", function()
  local out, _, ok, how = hpass.capture({S.lua, S.child, "tree"},
                                        {group = true, timeout = 1})
  S.eq(ok, nil); S.eq(how, "timeout")
  for pid in out:gmatch("(%d+)\r?\n") do
    assert(within(5000, gone(math.tointeger(tonumber(pid)))), "grandchild lives")
  end
end)

-- A Lua parent that starts a sleeper; the parent is ended with
-- TerminateProcess (Windows' SIGKILL).  The sleeper's pid.
local function orphan(flag)
  local p, r = assert(S.capture({S.lua, S.child, "dwp", flag}, {}))
  assert(r:settimeout(20))
  local pid = math.tointeger(tonumber(r:lines()()))
  r:close()
  S.eq(aid.alive(pid), true, "sleeper")
  assert(p:kill(9))
  S.eq(select(3, p:wait()), 9)
  return pid
end

test("die_with_parent: the child ends when its parent is killed", function()
  assert(within(2000, gone(orphan("on"))), "child outlived its parent")
end)

test("a process object collected while its die_with_parent child runs " ..
     "does not end the child, whatever the job's limits read", function()
  -- what wine reports, and what hpass must not go by
  assert(aid.fake(hpass.pipe, "joblimits", true))
  local ok, err = pcall(function()
    local p = assert(hpass.spawn_with_handle({S.lua, S.child, "sleep", "30000"}, {},
                                             {die_with_parent = true}))
    local pid = p.pid
    p = nil  -- luacheck: ignore 311
    collectgarbage(); collectgarbage()
    aid.sleep(500)
    local alive = aid.alive(pid)
    aid.terminate(pid)
    S.eq(alive, true, "the child after its object was collected")
  end)
  assert(aid.fake(hpass.pipe, "joblimits", false))
  assert(ok, err)
end)

test("without die_with_parent the child outlives its parent", function()
  local pid = orphan("off")
  aid.sleep(300)
  S.eq(aid.alive(pid), true, "child")
  assert(aid.terminate(pid))
end)

test("environ() reads the live environment, in UTF-8", function()
  local value = "a=b==c \xc3\xa9\xe2\x82\xac"
  assert(aid.setenv("HPASS_ENVIRON_T", value))
  local e = hpass.environ()
  S.eq(e.HPASS_ENVIRON_T, value, "set at run time")
  S.eq(e.PATH or e.Path, aid.getenv("PATH"), "PATH")
  for k in pairs(e) do
    assert(k:sub(1, 1) ~= "=", "hidden drive entry " .. k)
  end
  assert(aid.setenv("HPASS_ENVIRON_T", nil))
  S.eq(hpass.environ().HPASS_ENVIRON_T, nil, "removed")
end)

test("environ() round trip through a child", function()
  local e = hpass.environ()
  e.HPASS_ADDED = "x=y \xc3\xa9"
  e.TEMP, e.TMP = nil, nil
  local out = S.run({S.lua, S.child, "environ", "HPASS_ADDED", "TEMP", "TMP"},
                    {}, {env = e})
  S.eq(out, "x=y \xc3\xa9\nnil\nnil\n")
end)

test("bad input: options and the group argument", function()
  local ok, msg = pcall(hpass.spawn_with_handle, {S.lua, "-e", ""}, {}, {group = 1})
  S.eq(ok, false)
  S.match(msg, "option 'group' must be a boolean on this system")
  local p = assert(hpass.spawn_with_handle({S.lua, S.child, "sleep", "30000"}, {}))
  ok, msg = pcall(p.kill, p, 9, "group")
  S.eq(ok, false)
  S.match(msg, "process has no group of its own")
  assert(p:kill(9))
  p:wait()
end)

return tests
