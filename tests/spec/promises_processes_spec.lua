-- The manual's "Processes", sentence by sentence: each test is named after
-- the promise it checks.  (Deeper tests of the same promises: core_spec,
-- portable_spec, reliability_spec, hardening_spec.)
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"
local socket = require "socket"

local loadstr = loadstring or load  -- luacheck: compat
local ECHILD, ESRCH, ENOENT, EACCES, EBADF = 10, 3, 2, 13, 9

-- The standard output of argv run with the handles and options given.
local function output(argv, handles, options)
  local out = H.capture(argv, handles or {}, options)
  return out
end

-- A Lua child running code, which finds this build through LUA_PATH and
-- LUA_CPATH (inherited).
local function luachild(code)
  local name = H.tmpname()
  local f = assert(io.open(name, "w"))
  f:write(code)
  f:close()
  return {H.lua, name}
end

describe("Processes:", function()
  after_each(H.cleanup)

  it("argv is {program, arg1, ...}; no shell is involved", function()
    assert.equal("$HOME * ; a b\n", output({"echo", "$HOME", "*", ";", "a b"}))
  end)

  it("a program name with no '/' is searched for in the parent's PATH, as execvp does",
     function()
    -- the child's env has no PATH: the parent's is what finds `echo`
    assert.equal("found\n", output({"echo", "found"}, {}, {env = {}}))
    local ok, msg, code = hpass.spawn_with_handle({"no-such-program-hpass"}, {})
    assert.same({nil, "no-such-program-hpass: No such file or directory", ENOENT},
                {ok, msg, code})
  end)

  it("arguments must be strings or numbers, with no zero bytes", function()
    assert.equal("42 1.5\n", output({"echo", 42, 1.5}))
    assert.matches("argv%[2%] must be a string, got table",
                   H.raises(hpass.spawn_with_handle, {"echo", {}}, {}))
    assert.matches("argv%[2%] contains a zero byte",
                   H.raises(hpass.spawn_with_handle, {"echo", "a\0b"}, {}))
  end)

  it("handles is one handle argument or an array of them; {} means none; each "
     .. "arrives as 3, 4, ... and its number is appended to the command line", function()
    local r1, w1 = hpass.pipe()
    local r2, w2 = hpass.pipe()
    local show = {"sh", "-c", 'echo "$#:$*"; echo a >&3; echo b >&4', "sh"}
    assert.equal("0:\n", output({"sh", "-c", 'echo "$#:$*"', "sh"}, {}))
    assert.equal("2:3 4\n", output(show, {w1, w2}))
    assert.equal("1:3\n", output({"sh", "-c", 'echo "$#:$*"', "sh"}, w1))
    w1:close(); w2:close()
    assert.equal("a", r1:read("l")); assert.equal("b", r2:read("l"))
    r1:close(); r2:close()
  end)

  it("a handles table with other keys or with holes raises 'handles must be an array'",
     function()
    for _, t in ipairs({{a = 1}, {[2] = 1}, {1, stdout = 1}}) do
      assert.matches(H.badarg(2, "spawn_with_handle") .. " %(handles must be an array",
                     H.raises(hpass.spawn_with_handle, {"true"}, t))
    end
  end)

  it("the child gets its handles, 0, 1 and 2, and nothing else", function()
    local r, w = hpass.pipe()
    local open = output({"sh", "-c", "ls /proc/$$/fd"}, {w})
    assert.equal("0\n1\n2\n3\n", open)
    r:close(); w:close()
  end)

  it("env replaces the environment; cwd is the directory to start in", function()
    assert.equal("X=1\n", output({"env"}, {}, {env = {X = "1"}}))
    assert.equal("/\n", output({"pwd"}, {}, {cwd = "/"}))
  end)

  it("stdin, stdout, stderr take a handle argument; a stream not given is inherited",
     function()
    -- a Lua child whose own stderr is captured starts `sh` with only
    -- stdout given: sh's error output is the Lua child's
    local code = [[
      local hpass = require "hpass"
      local r, w = hpass.pipe()
      local p = assert(hpass.spawn_with_handle({"sh", "-c", "echo out; echo err >&2"},
                                               {}, {stdout = w}))
      w:close()
      io.write("got ", r:read("a"))
      assert(p:wait())]]
    assert.same({"got out\n", "err\n", true, "exit", 0},
                {hpass.capture(luachild(code))})
  end)

  it("group, session and die_with_parent are booleans; another type raises", function()
    assert.matches("option 'session' must be a boolean, got number",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {session = 1}))
  end)

  it("unknown option names raise, as does a name with a zero byte", function()
    assert.matches("unknown option 'bogus'",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {bogus = 1}))
    assert.matches("with a zero byte",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {["cwd\0x"] = "/"}))
  end)

  it("the options table is read raw: what only an __index gives is not seen", function()
    local opts = setmetatable({}, {__index = function() return "/nonexistent" end})
    local p = assert(hpass.spawn_with_handle({"true"}, {}, opts))  -- no cwd seen
    assert.same({true, "exit", 0}, {p:wait()})
  end)

  it("errors name the culprit: element k, option 'stdout', argv[k]", function()
    local r = hpass.pipe()
    r:close()
    assert.matches("element 2: attempt to use a closed handle",
                   H.raises(hpass.spawn_with_handle, {"true"}, {0, r}))
    assert.matches("option 'stdout': attempt to use a closed handle",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {stdout = r}))
    assert.matches("argv%[3%] must be a string",
                   H.raises(hpass.spawn_with_handle, {"true", "x", true}, {}))
  end)

  it("the result is a process object; a start that fails is nil, 'what: message', errno, "
     .. "never an exit with 127", function()
    local p = assert(hpass.spawn_with_handle({"true"}, {}))
    assert.equal("process", hpass.type(p))
    p:wait()
    local function fails(expect, ...)
      assert.same(expect, {hpass.spawn_with_handle(...)})
    end
    fails({nil, "cwd '/nonexistent': No such file or directory", ENOENT},
          {"true"}, {}, {cwd = "/nonexistent"})
    fails({nil, "/etc/passwd: Permission denied", EACCES}, {"/etc/passwd"}, {})
    fails({nil, "stdout: Bad file descriptor", EBADF}, {"true"}, {}, {stdout = 1000})
    fails({nil, "handle 2: Bad file descriptor", EBADF}, {"true"}, {0, 1000})
  end)

  it("never an exit with 127: handles past the soft descriptor limit leave the program "
     .. "free numbers to load its libraries; below it the program gets the parent's limit",
     function()
    -- a parent whose soft limit is 64 passes 100 handles (slots 3..102),
    -- then 10; each child prints its own soft limit
    local code = luachild([[
      local hpass = require "hpass"
      local r, w = assert(hpass.pipe())
      for _, n in ipairs({100, 10}) do
        local list = {}
        for i = 1, n do list[i] = w end
        local out, _, ok, how, code = hpass.capture({"sh", "-c", "ulimit -Sn"},
                                                    {handles = list})
        io.write(tostring(out), " ", tostring(ok), " ", tostring(how), " ", tostring(code), "\n")
      end
      local p = assert(hpass.spawn_with_handle({"true"}, {w, w, w, w, w, w, w, w, w, w, w,
        w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w,
        w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w, w}))
      print(p:wait())]])
    local argv = {"sh", "-c", 'ulimit -Sn 64 && exec "$@"', "sh"}
    for _, a in ipairs(code) do argv[#argv + 1] = a end
    assert.equal("167\n true exit 0\n64\n true exit 0\ntrue\texit\t0\n", output(argv))
  end)

  it("the child starts with an empty signal mask and SIGPIPE and SIGXFSZ at their "
     .. "defaults, whatever the parent did", function()
    local sig = R.sig
    assert(sig.block("USR1")); assert(sig.ignore("PIPE"))
    -- grep reads its own status: sh's own mask is full for a moment while it
    -- starts a command (dash blocks every signal around its vfork)
    local ok, out = pcall(output, {"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"})
    sig.unblock("USR1"); sig.default("PIPE")
    assert(ok, out)
    assert.matches("SigBlk:%s*0+\n", out)
    local ign = assert(out:match("SigIgn:%s*(%x+)"))
    assert.is_false(R.inmask(ign, R.SIGPIPE))
    assert.is_false(R.inmask(ign, 25))  -- SIGXFSZ
  end)

  it("wait returns the triple of os.execute, the same again, and retries EINTR", function()
    local sig = R.sig
    assert.same({true, "exit", 0}, {assert(hpass.spawn_with_handle({"true"}, {})):wait()})
    local p = assert(hpass.spawn_with_handle({"sh", "-c", "sleep 0.2; exit 3"}, {}))
    assert(sig.catch("ALRM"))                -- a handler without SA_RESTART
    assert(sig.timer(2000))
    local ok, res = pcall(function() return {p:wait()} end)
    -- a signal still pending is dropped by "ignore" before "default"
    sig.timer(0); sig.ignore("ALRM"); sig.default("ALRM")
    assert(ok, res)
    assert.same({nil, "exit", 3}, res)
    assert.same({nil, "exit", 3}, {p:wait()})
    p = assert(hpass.spawn_with_handle({"sh", "-c", "kill -TERM $$"}, {}))
    assert.same({nil, "signal", 15}, {p:wait()})
  end)

  it("poll is the triple once the child has ended, false while it runs, and never blocks",
     function()
    local p = assert(hpass.spawn_with_handle({"sleep", "5"}, {}))
    local t0 = socket.gettime()
    assert.is_false(p:poll())
    assert.is_true(socket.gettime() - t0 < 0.05)
    p:kill("KILL")
    assert.is_true(H.within(5, function() return p:poll() ~= false end))
    assert.same({nil, "signal", 9}, {p:poll()})
  end)

  it("kill sends a number or a name (TERM by default) and returns true; unknown names raise",
     function()
    for _, how in ipairs({{nil, 15}, {"HUP", 1}, {"SIGKILL", 9}, {10, 10}}) do
      local p = assert(hpass.spawn_with_handle({"sleep", "5"}, {}))
      assert.is_true(p:kill(how[1]))
      assert.same({nil, "signal", how[2]}, {p:wait()})
    end
    local p = assert(hpass.spawn_with_handle({"sleep", "5"}, {}))
    assert.matches("unknown signal name 'FOO'", H.raises(p.kill, p, "FOO"))
    p:kill("KILL"); p:wait()
  end)

  it("kill first polls: a child that has ended is collected, its status kept for wait, "
     .. "and kill returns nil, 'process has already ended', ESRCH", function()
    local p = assert(hpass.spawn_with_handle({"sh", "-c", "exit 7"}, {}))
    assert.is_true(H.within(5, function() return H.procstate(p.pid) == "Z" end))
    assert.same({nil, "process has already ended", ESRCH}, {p:kill("KILL")})
    assert.is_nil(H.procstate(p.pid))             -- collected
    assert.same({nil, "exit", 7}, {p:wait()})     -- its status kept
  end)

  it("proc.pid is the process id", function()
    local p = assert(hpass.spawn_with_handle({"sh", "-c", "echo $$"}, {}, {stdout = "null"}))
    local out = hpass.capture({"sh", "-c", "echo $$"})
    assert.is_number(p.pid)
    assert.matches("^%d+\n$", out)
    local r, w = hpass.pipe()
    local q = assert(hpass.spawn_with_handle({"sh", "-c", "echo $$"}, {}, {stdout = w}))
    w:close()
    assert.equal(tostring(q.pid), r:read("l"))
    q:wait(); p:wait(); r:close()
  end)

  it("run spawns and waits: the triple, or nil, msg, errno; misuse raises as run's own, "
     .. "at the caller's line", function()
    assert.same({nil, "exit", 4}, {hpass.run({"sh", "-c", "exit 4"}, {})})
    assert.same({nil, "no-such-program-hpass: No such file or directory", ENOENT},
                {hpass.run({"no-such-program-hpass"}, {})})
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, err = pcall(function() hpass.run({"true"}, {}, {bogus = 1}) end)
    assert.is_false(ok)
    assert.matches(":" .. line .. ": bad argument #3 to 'run' %(unknown option 'bogus'%)", err)
  end)

  it("inherited([n [, args]]) adopts the last n arguments as handles, in order", function()
    local r1, w1 = hpass.pipe()
    local r2, w2 = hpass.pipe()
    local code = [[
      local hpass = require "hpass"
      local a, b = hpass.inherited(2)
      a:write("A"); b:write("B")
      local c = hpass.inherited(1, {"x", tostring(b:fileno())})
      assert(c:fileno() == b:fileno())]]
    assert.is_true((hpass.run(luachild(code), {w1, w2})))
    w1:close(); w2:close()
    assert.equal("A", r1:read("a")); assert.equal("B", r2:read("a"))
    r1:close(); r2:close()
  end)

  it("a child nobody waits for is reaped at a later spawn, its status kept in its object",
     function()
    local p = assert(hpass.spawn_with_handle({"sh", "-c", "exit 5"}, {}))
    assert.is_true(H.within(5, function() return H.procstate(p.pid) == "Z" end))
    assert(hpass.run({"true"}, {}))               -- a spawn reaps it
    assert.is_nil(H.procstate(p.pid))
    assert.same({nil, "exit", 5}, {p:poll()})
  end)

  it("a process object collected before wait leaves no zombie, ended or running", function()
    local pids = {}
    for i = 1, 2 do
      local p = assert(hpass.spawn_with_handle({"sh", "-c", i == 1 and "exit 0" or "sleep 0.2"},
                                               {}))
      pids[i] = p.pid
    end
    collectgarbage(); collectgarbage()
    assert.is_true(H.within(5, function()
      assert(hpass.run({"true"}, {}))            -- spawns poll the orphans
      return H.procstate(pids[1]) == nil and H.procstate(pids[2]) == nil
    end))
  end)

  it("hpass only waits for its own pids: statuses other code waits for are left to it",
     function()
    local f = assert(io.popen("sleep 0.2; exit 6"))
    assert(hpass.run({"true"}, {}))
    socket.sleep(0.3)
    assert(hpass.run({"true"}, {}))              -- the popen child has ended by now
    local ok, how, code = f:close()
    if H.version >= 5.2 then  -- 5.1 and LuaJIT return no status from close
      assert.same({nil, "exit", 6}, {ok, how, code})
    else
      assert.is_true(ok)
    end
  end)

  it("once a child has been reaped, kill refuses to signal it", function()
    local p = assert(hpass.spawn_with_handle({"true"}, {}))
    p:wait()
    assert.same({nil, "process has already ended", ESRCH}, {p:kill("KILL")})
  end)

  it("a process in a to-be-closed variable is waited for when it goes out of scope (5.4)",
     function()
    local chunk = loadstr([[
      local hpass, H = ...
      local pid
      do
        local p <close> = assert(hpass.spawn_with_handle({"sleep", "0.1"}, {}))
        pid = p.pid
      end
      return H.procstate(pid)]])
    if H.version < 5.4 then
      assert.is_nil(chunk)  -- the syntax is 5.4's: documented as needing it
    else
      assert.is_nil(chunk(hpass, H))  -- waited for: neither running nor a zombie
    end
  end)

  it("a child whose status someone else took is lost: wait, poll and kill return ECHILD, "
     .. "kill never signals it, tostring says so", function()
    local p = assert(hpass.spawn_with_handle({"true"}, {}))
    assert.is_true(H.within(5, function() return H.procstate(p.pid) == "Z" end))
    assert.equal(1, R.sig.reapall())             -- another library's waitpid(-1)
    local lost = {nil, "process status was collected elsewhere: No child processes", ECHILD}
    assert.same(lost, {p:wait()})
    assert.same(lost, {p:poll()})
    assert.same(lost, {p:kill("KILL")})
    assert.equal("hpass.process (" .. p.pid .. ", lost)", tostring(p))
  end)
end)
