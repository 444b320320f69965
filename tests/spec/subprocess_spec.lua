-- What Python's subprocess has, as hpass has it: pipes on the process
-- object, the spawn options executable, umask, uid, gid, groups and a
-- group to join, and run's timeout.  Each test is named after the promise
-- of the manual ("Processes", "Pipes to a child", "Process control") it
-- checks; those marked "CPython:" translate a case of CPython's
-- Lib/test/test_subprocess.py.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"

local socket = require "socket"

local EPERM, ENOENT = R.EPERM or 1, R.ENOENT or 2
-- uid, gid and groups can only be changed by root: as another user the
-- tests check that the change is refused, and say so
local ROOT = (hpass.capture({"id", "-u"})) == "0\n"

-- The process group of pid (field 5 of /proc/PID/stat).
local function pgid(pid)
  local s = H.readfile("/proc/" .. pid .. "/stat")
  return tonumber(s:match("%) %S+ %d+ (%d+)"))
end

-- out, err, ok, how, code of argv spawned with options and pipes on
-- stdout and stderr, read through proc.stdout and proc.stderr.
local function piped(argv, options)
  options = options or {}
  options.stdout, options.stderr = "pipe", "pipe"
  local p, msg, code = hpass.spawn_with_handle(argv, {}, options)
  if not p then return nil, msg, code end
  return p:communicate(nil, 10)
end

local function notroot(what)
  io.stderr:write("# not root: ", what, " checked as refused (EPERM) instead\n")
end


describe("Pipes to a child:", function()
  after_each(H.cleanup)

  it("CPython: stdin = \"pipe\" gives proc.stdin, the write end of the child's "
     .. "standard input (test_stdin_pipe)", function()
    local p = assert(hpass.spawn_with_handle(
      {"sh", "-c", 'read x; test "$x" = pear'}, {}, {stdin = "pipe"}))
    assert.equal("handle", hpass.type(p.stdin))
    assert.equal(p.stdin, p.stdin:write("pear\n"))
    p.stdin:close()
    assert.same({true, "exit", 0}, {p:wait()})
    assert.is_nil(p.stdout)
    assert.is_nil(p.stderr)
  end)

  it("CPython: stdout = \"pipe\" and stderr = \"pipe\" give proc.stdout and proc.stderr, "
     .. "hpass handles with everything handles do (test_stdout_pipe, test_stderr_pipe)",
     function()
    local p = assert(hpass.spawn_with_handle(
      {"sh", "-c", "echo orange; echo strawberry >&2; echo peach"}, {},
      {stdout = "pipe", stderr = "pipe"}))
    assert.is_nil(p.stdin)
    p.stdout:settimeout(10)
    p.stderr:settimeout(10)
    assert.equal("orange", p.stdout:read("l"))
    local ready = hpass.select({p.stderr}, nil, 10)
    assert.is_true(ready[p.stderr])
    assert.equal("strawberry\n", p.stderr:read("a"))
    local rest = {}
    for l in p.stdout:lines() do rest[#rest + 1] = l end
    assert.same({"peach"}, rest)
    assert.same({true, "exit", 0}, {p:wait()})
  end)

  it("CPython: with stderr = \"stdout\" only proc.stdout exists, and carries both "
     .. "(test_stdout_stderr_pipe)", function()
    local p = assert(hpass.spawn_with_handle(
      {"sh", "-c", "printf apple; printf orange >&2"}, {},
      {stdout = "pipe", stderr = "stdout"}))
    assert.is_nil(p.stderr)
    p.stdout:settimeout(10)
    assert.equal("appleorange", p.stdout:read("a"))
    assert.is_true((p:wait()))
  end)

  it("CPython: the child's ends are closed in this process once it has them, so the "
     .. "end of the output comes when the child ends (test_stdin_none, "
     .. "test_communicate_pipe_fd_leak)", function()
    collectgarbage(); collectgarbage()  -- handles earlier tests dropped
    local before = R.sig.nfds()
    local p = assert(hpass.spawn_with_handle({"sh", "-c", "read x; echo $x"}, {},
                                             {stdin = "pipe", stdout = "pipe",
                                              stderr = "pipe"}))
    -- three pipes: only this process's three ends are open here
    assert.equal(before + 3, R.sig.nfds())
    p.stdin:write("bye\n")
    p.stdin:close()
    p.stdout:settimeout(10)
    assert.equal("bye\n", p.stdout:read("a"))  -- would wait for ever otherwise
    assert.is_true((p:wait()))
    p.stdout:close(); p.stderr:close()
    assert.equal(before, R.sig.nfds())
  end)

  it("CPython: no pipe of one child reaches another child (test_pipe_cloexec)", function()
    local p1 = assert(hpass.spawn_with_handle({"cat"}, {}, {stdin = "pipe", stdout = "pipe",
                                                            stderr = "pipe"}))
    local out = hpass.capture({"ls", "/proc/self/fd"})
    local fds = {}
    for n in out:gmatch("%d+") do fds[tonumber(n)] = true end
    for _, h in ipairs({p1.stdin, p1.stdout, p1.stderr}) do
      if h:fileno() > 3 then assert.is_nil(fds[h:fileno()], "inherited " .. h:fileno()) end
    end
    assert.equal("", (p1:communicate("")))
  end)

  it("CPython: proc.stdout passed on as another child's stdin makes a pipeline by hand "
     .. "(test_pipe_cloexec_real_tools)", function()
    local p1 = assert(hpass.spawn_with_handle({"cat"}, {}, {stdin = "pipe", stdout = "pipe"}))
    local p2 = assert(hpass.spawn_with_handle({"grep", "zxcvbn"}, {},
                                              {stdin = p1.stdout, stdout = "pipe"}))
    p1.stdout:close()  -- p2 has it now
    local data = string.rep("zxcvbn", 4) .. "\n"
    p1.stdin:write(data)
    p1.stdin:close()
    local ready = hpass.select({p2.stdout}, nil, 10)
    assert.is_true(ready[p2.stdout], "the child hung")
    p2.stdout:settimeout(10)
    assert.equal(data, p2.stdout:read("a"))
    assert.is_true((p1:wait()))
    assert.is_true((p2:wait()))
  end)

  it("CPython: a spawn that fails closes the pipes it made (test_leaking_fds_on_error)",
     function()
    -- handles earlier tests dropped: the pipes of a dropped process go a
    -- cycle after it on Lua 5.1, whose weak-keyed tables are no ephemerons
    -- (the pipes table keeps them while the process awaits its finalizer)
    collectgarbage(); collectgarbage(); collectgarbage()
    local before = R.sig.nfds()
    for _ = 1, 300 do
      local p, msg, code = hpass.spawn_with_handle({"/nonexistent/nonexisting_i_hope"}, {},
                                                   {stdout = "pipe", stderr = "pipe"})
      assert.is_nil(p)
      assert.equal(ENOENT, code, msg)
    end
    assert.equal(before, R.sig.nfds())
  end)

  it("\"pipe\" where nothing could use it raises: in run, capture and pipeline, which "
     .. "return once the child has ended", function()
    for _, k in ipairs({"stdin", "stdout", "stderr"}) do
      assert.matches(H.badarg(3, "run") .. " %(option '" .. k .. "': \"pipe\" has no use",
                     H.raises(hpass.run, {"true"}, {}, {[k] = "pipe"}))
      assert.matches(H.badarg(2, "pipeline") .. " %(option '" .. k .. "': \"pipe\"",
                     H.raises(hpass.pipeline, {{"true"}}, {[k] = "pipe"}))
    end
    assert.matches(H.badarg(2, "capture") .. " %(option 'stderr': \"pipe\"",
                   H.raises(hpass.capture, {"true"}, {stderr = "pipe"}))
    assert.matches(H.badarg(2, "capture") .. " %(option 'stdin': \"pipe\"",
                   H.raises(hpass.capture, {"true"}, {stdin = "pipe"}))
    -- and "pipe" is no handle in the handles or listen
    assert.matches(H.badarg(2, "spawn_with_handle"),
                   H.raises(hpass.spawn_with_handle, {"true"}, "pipe"))
  end)

  it("a process held in a to-be-closed variable has its pipes closed before it is "
     .. "waited for, so a child writing to a pipe nobody reads ends", function()
    if H.version < 5.4 then return pending("needs <close> (Lua 5.4)") end
    local f = assert(load([[
      local hpass = ...
      local pid
      do
        local p <close> = assert(hpass.spawn_with_handle({"yes"}, {}, {stdout = "pipe"}))
        pid = p.pid
      end
      return pid
    ]]))
    local pid = f(hpass)
    assert.is_nil(H.procstate(pid))  -- ended and collected
  end)
end)


describe("Processes: the spawn options", function()
  after_each(H.cleanup)

  it("CPython: executable = path runs path with argv as given, so argv[1] can differ "
     .. "(test_executable)", function()
    local out, _, ok, how, code = piped({"-login-shell", "-c", 'echo "$0"; exit 47'},
                                        {executable = "/bin/sh"})
    assert.equal("-login-shell\n", out)
    assert.same({nil, "exit", 47}, {ok, how, code})
    -- a name without '/' is looked for in PATH, as argv[1] would be
    out = piped({"doesnotexist", "-c", 'echo "$0"'}, {executable = "sh"})
    assert.equal("doesnotexist\n", out)
    -- run, capture and pipeline take it too
    assert.equal("zz\n", (hpass.capture({"zz", "-c", 'echo "$0"'}, {executable = "sh"})))
    assert.same({nil, "exit", 47}, {hpass.run({"x", "-c", "exit 47"}, {},
                                              {executable = "sh"})})
    assert.equal("yy\n", (hpass.pipeline({{"yy", "-c", 'echo "$0"'}, {"cat", "-c", "cat"}},
                                         {executable = "sh"})))
  end)

  it("CPython: executable takes precedence over argv[1]; when it cannot start, the "
     .. "message names it (test_executable_takes_precedence)", function()
    assert.same({true, "exit", 0}, {hpass.run({"sh", "-c", "exit 0"}, {})})
    assert.same({nil, "/nonexistent/nonexisting_i_hope: No such file or directory", ENOENT},
                {hpass.run({"sh", "-c", "exit 0"}, {},
                           {executable = "/nonexistent/nonexisting_i_hope"})})
    assert.matches("option 'executable' must be a string, got number",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {executable = 1}))
    assert.matches("option 'executable': contains a zero byte",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {executable = "sh\0"}))
  end)

  it("CPython: umask = n sets the child's umask (test_umask)", function()
    local dir = H.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir " .. dir))
    local name = dir .. "/beans"
    assert.is_true((hpass.run({"sh", "-c", ': > "$1"', "sh", name}, {}, {umask = 43})))
    -- 0666 without 0053 is 0624; the execute bits are ignored
    local mode = hpass.capture({"stat", "-c", "%a", name})
    assert.equal("624\n", mode)
    os.execute("rm -rf " .. dir)
    assert.equal("0022\n", (hpass.capture({"sh", "-c", "umask"}, {umask = 18})))
    assert.equal("0777\n", (hpass.capture({"sh", "-c", "umask"}, {umask = 511})))
    assert.equal("0000\n", (hpass.capture({"sh", "-c", "umask"}, {umask = 0})))
  end)

  it("umask: anything but an integer from 0 to 511 raises 'option umask must be an " ..
     "integer from 0 to 511 (0777)', whatever its type", function()
    for _, v in ipairs({-1, 512, 1.5, 0 / 0, math.huge, "022", "18", true, {}}) do
      assert.matches(H.badarg(3, "spawn_with_handle")
                     .. " %(option 'umask' must be an integer from 0 to 511 %(0777%)%)",
                     H.raises(hpass.spawn_with_handle, {"true"}, {}, {umask = v}))
    end
    assert.matches(H.badarg(2, "capture") .. " %(option 'umask' must be an integer from 0 "
                   .. "to 511 %(0777%)%)", H.raises(hpass.capture, {"true"}, {umask = "022"}))
  end)

  it("CPython: uid sets the child's user, as a number or a name looked up before the "
     .. "spawn (test_user; needs root)", function()
    if ROOT then
      assert.equal("65534\n", (hpass.capture({"id", "-u"}, {uid = 65534})))
      assert.equal("65534\n", (hpass.capture({"id", "-u"}, {uid = "nobody"})))
      assert.equal("0\n", (hpass.capture({"id", "-u"}, {uid = 0})))
      -- the same through the posix_spawn-free and the joining paths
      assert.equal("65534\n", (hpass.pipeline({{"id", "-u"}}, {uid = "nobody"})))
    else
      notroot("uid")
      assert.same({nil, "option 'uid': Operation not permitted", EPERM},
                  {hpass.capture({"id", "-u"}, {uid = 0 + 65534 - 1})})
    end
  end)

  it("CPython: gid sets the child's group (test_group; needs root)", function()
    if ROOT then
      assert.equal("65534\n", (hpass.capture({"id", "-g"}, {gid = 65534})))
      assert.equal("65534\n", (hpass.capture({"id", "-g"}, {gid = "nogroup"})))
    else
      notroot("gid")
      assert.same({nil, "option 'gid': Operation not permitted", EPERM},
                  {hpass.capture({"id", "-g"}, {gid = 65533})})
    end
  end)

  it("CPython: groups sets the child's supplementary groups, numbers or names "
     .. "(test_extra_groups; needs root)", function()
    if ROOT then
      local out = hpass.capture({"id", "-G"}, {groups = {65534, "adm"}, gid = 65534})
      local got = {}
      for g in out:gmatch("%d+") do got[tonumber(g)] = true end
      assert.same({[65534] = true, [4] = true}, got)
      -- an empty array drops them all: only the group is left
      assert.equal("0\n", (hpass.capture({"id", "-G"}, {groups = {}})))
    else
      notroot("groups")
      assert.same({nil, "option 'groups': Operation not permitted", EPERM},
                  {hpass.capture({"id", "-G"}, {groups = {65534}})})
    end
  end)

  it("uid, gid and groups are set in the order groups, gid, uid, so that a child of "
     .. "root can drop all three (needs root)", function()
    if not ROOT then
      notroot("the order of uid, gid and groups")
      assert.same({nil, "option 'groups': Operation not permitted", EPERM},
                  {hpass.capture({"id"}, {uid = 65534, gid = 65534, groups = {65534}})})
      return
    end
    local out = hpass.capture({"id"}, {uid = "nobody", gid = "nogroup",
                                       groups = {"nogroup"}})
    assert.equal("uid=65534(nobody) gid=65534(nogroup) groups=65534(nogroup)\n", out)
    -- once the user is not root, changing the group is refused: had uid
    -- gone first, this spawn would fail
    local p, msg, code = hpass.spawn_with_handle({"true"}, {}, {uid = 65534, gid = 65534})
    assert.is_truthy(p, msg)
    assert.is_true((p:wait()))
    assert.is_nil(code)
  end)

  it("a child that cannot change its user is a spawn error naming the option (not "
     .. "root, or root dropping to nobody and back)", function()
    -- nobody cannot become root: the child of a child that runs as nobody
    local script = H.script([[
      local hpass = require "hpass"
      print(hpass.capture({"id", "-u"}, {uid = 0}))]])
    os.execute("chmod 644 " .. script)
    local argv = {H.lua, script}
    local out
    if ROOT then
      out = hpass.capture(argv, {uid = "nobody", env = R.childenv()})
    else
      out = hpass.capture(argv, {env = R.childenv()})
    end
    assert.equal("nil\toption 'uid': Operation not permitted\t" .. EPERM .. "\n", out)
  end)

  it("a user or group name that names nobody raises, naming the option", function()
    assert.matches(H.badarg(3, "spawn_with_handle")
                   .. " %(option 'uid': no user named 'no%-such%-user%-hpass'%)",
                   H.raises(hpass.spawn_with_handle, {"true"}, {},
                            {uid = "no-such-user-hpass"}))
    assert.matches("option 'gid': no group named 'no%-such%-group'",
                   H.raises(hpass.run, {"true"}, {}, {gid = "no-such-group"}))
    assert.matches("option 'groups%[2%]': no group named 'nope%-hpass'",
                   H.raises(hpass.capture, {"true"}, {groups = {0, "nope-hpass"}}))
    assert.matches("option 'uid' must be a user name or an integer from 0 to 4294967294",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {uid = -1}))
    assert.matches("option 'gid' must be a group name or an integer",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {gid = 2 ^ 64}))
    assert.matches("option 'uid' must be a user id or name, got table",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {uid = {}}))
    assert.matches("option 'groups' must be an array of group ids or names, got number",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {groups = 4}))
    assert.matches("option 'groups' must be an array, with no holes",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {groups = {1, nil, 3}}))
    assert.matches("option 'groups%[1%]' must be a group name or an integer",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {groups = {-5}}))
    assert.matches("option 'uid': user name is empty or contains a zero byte",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {uid = "ro\0ot"}))
    assert.matches(H.badarg(2, "pipeline") .. " %(option 'uid': no user named",
                   H.raises(hpass.pipeline, {{"true"}}, {uid = "no-such-user-hpass"}))
  end)

  it("CPython: group = n makes the child join the existing process group n; group = "
     .. "true stays a new group (test_process_group_0)", function()
    local leader = assert(hpass.spawn_with_handle({"sleep", "30"}, {}, {group = true}))
    assert.equal(leader.pid, pgid(leader.pid))
    assert.are_not.equal(pgid(H.pid()), leader.pid)
    local member = assert(hpass.spawn_with_handle({"sleep", "30"}, {}, {group = leader.pid}))
    assert.equal(leader.pid, pgid(member.pid))
    -- a joined member signals the group it joined, its leader included
    assert.is_true(member:kill("KILL", "group"))
    assert.same({nil, "signal", 9}, {leader:wait()})
    assert.same({nil, "signal", 9}, {member:wait()})
  end)

  it("a group that cannot be joined is a spawn error naming the option", function()
    local gone = assert(hpass.spawn_with_handle({"true"}, {}, {group = true}))
    assert.is_true((gone:wait()))
    assert.same({nil, "option 'group': Operation not permitted", EPERM},
                {hpass.run({"true"}, {}, {group = gone.pid})})
    assert.matches("options 'group' %(a process group to join%) and 'session' together",
                   H.raises(hpass.spawn_with_handle, {"true"}, {},
                            {group = gone.pid, session = true}))
  end)
end)


describe("Processes: run's timeout", function()
  after_each(H.cleanup)

  it("CPython: on timeout the child is killed and collected, and run returns nil, "
     .. "'timeout', seconds (test_call_timeout)", function()
    local t0 = socket.gettime()
    local res = {hpass.run({"sh", "-c", "while :; do :; done"}, {}, {timeout = 0.1})}
    assert.same({nil, "timeout", 0.1}, res)
    assert.equal(0, select(2, R.sig.children()))
    assert.is_true(socket.gettime() - t0 < 5)
    -- without a timeout, or one not reached, run is as before
    assert.same({nil, "exit", 3}, {hpass.run({"sh", "-c", "exit 3"}, {}, {timeout = 10})})
    assert.same({true, "exit", 0}, {hpass.run({"true"}, {}, {timeout = 0 + 10})})
  end)

  it("with a group of its own, the timeout kills the whole group, grandchildren "
     .. "included", function()
    local file = H.tmpname()
    local res = {hpass.run({"sh", "-c", "sleep 30 & echo $! > " .. file .. "; wait"}, {},
                           {timeout = 0.3, group = true})}
    assert.same({nil, "timeout", 0.3}, res)
    local pid = assert(tonumber(H.readfile(file)))
    assert.is_true(H.within(5, function()
      local s = H.procstate(pid)
      return s == nil or s == "Z"
    end))
  end)

  it("timeout must be a non-negative number", function()
    for _, v in ipairs({-1, 0 / 0, "1", {}}) do
      assert.matches(H.badarg(3, "run") .. " %(option 'timeout' must be a non%-negative",
                     H.raises(hpass.run, {"true"}, {}, {timeout = v}))
    end
  end)
end)
