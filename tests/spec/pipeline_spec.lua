-- hpass.pipeline, promise by promise (the manual's "Pipelines"): results
-- and pipefail, the gathered error output, one process group, no pipe end
-- where it does not belong, SIGPIPE at its default, the deadline against
-- the worst commands, and nothing leaked after many pipelines.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"
local socket = require "socket"

local now = socket.gettime

local T = 0.1
local BOUND = 0.05
local SLACK = R.sanitizer and 1.5 or 0.4
local IDLE = R.sanitizer and 0.1 or 0.03
-- how many pipelines the leak test runs (make check-subprocess: 1,000)
local RUNS = R.knob("HPASS_PIPELINES", R.sanitizer and 100 or 200)

local timed = R.timed

local function kept(what, t, secs, cpu)
  assert.is_true(secs >= t - 0.002, what .. " returned early: " .. secs)
  assert.is_true(secs < t + BOUND + SLACK,
                 ("%s took %.3f s for a deadline of %.3f s"):format(what, secs, t))
  if cpu then
    assert.is_true(cpu < IDLE, ("%s used %.3f s of CPU"):format(what, cpu))
  end
end

-- The process group of pid (field 5 of /proc/PID/stat).
local function pgid(pid)
  local s = H.readfile("/proc/" .. pid .. "/stat")
  return tonumber(s:match("%) %S+ %d+ (%d+)"))
end

-- Whether pid has ended: gone, or a zombie of someone else's.
local function gone(pid)
  return H.within(5, function()
    local s = H.procstate(pid)
    return s == nil or s == "Z"
  end)
end

-- The first n of the results.
local function first(n, ...)
  return {(table.unpack or unpack)({...}, 1, n)}  -- luacheck: compat
end

local function settled()
  collectgarbage(); collectgarbage()
  return R.sig.nfds()
end


describe("pipeline:", function()
  after_each(H.cleanup)

  it("runs each command's output into the next one's input, no shell involved",
     function()
    local out, err, ok, how, code, st = hpass.pipeline(
      {{"printf", "b\\na\\nc\\n"}, {"sort"}, {"tr", "a-z", "A-Z"}})
    assert.same({"A\nB\nC\n", "", true, "exit", 0}, {out, err, ok, how, code})
    assert.same({{true, "exit", 0}, {true, "exit", 0}, {true, "exit", 0}}, st)
    -- arguments are not split, globbed or expanded
    assert.equal("$HOME *\n", (hpass.pipeline({{"echo", "$HOME *"}, {"cat"}})))
  end)

  it("pipeline{{'sh', '-c', 'yes'}, {'head', '-n', '3'}} returns 'y\\ny\\ny\\n' "
     .. "promptly: the commands before one that exits early get SIGPIPE at its "
     .. "default", function()
    local t0 = now()
    assert.equal("y\ny\ny\n", (hpass.pipeline({{"sh", "-c", "yes"}, {"head", "-n", "3"}})))
    local out, _, ok, how, code, st = hpass.pipeline({{"yes"}, {"head", "-n", "1"}})
    assert.equal("y\n", out)
    assert.same({nil, "signal", R.SIGPIPE or 13}, st[1])
    assert.same({true, "exit", 0}, st[2])
    -- bash's pipefail: the rightmost command that did not succeed
    assert.same({nil, "signal", R.SIGPIPE or 13}, {ok, how, code})
    assert.is_true(now() - t0 < 5)
  end)

  it("ok, how, code follow bash's pipefail: the status of the rightmost command that "
     .. "did not succeed, else success; the 6th result holds each command's own",
     function()
    local _, _, ok, how, code, st = hpass.pipeline(
      {{"sh", "-c", "exit 3"}, {"sh", "-c", "cat; exit 4"}, {"cat"}})
    assert.same({nil, "exit", 4}, {ok, how, code})
    assert.same({{nil, "exit", 3}, {nil, "exit", 4}, {true, "exit", 0}}, st)
    _, _, ok, how, code, st = hpass.pipeline({{"true"}, {"sh", "-c", "kill -TERM $$"}})
    assert.same({nil, "signal", 15}, {ok, how, code})
    assert.same({true, "exit", 0}, st[1])
  end)

  it("gathers the error output of every command into one err", function()
    local out, err = hpass.pipeline({{"sh", "-c", "echo one >&2; echo x"},
                                     {"sh", "-c", "echo two >&2; cat"},
                                     {"sh", "-c", "echo three >&2; cat"}})
    assert.equal("x\n", out)
    local lines = H.lines(err)
    table.sort(lines)
    assert.same({"one", "three", "two"}, lines)
  end)

  it("stderr says otherwise: 'null' drops it, 'stdout' sends each command's into its "
     .. "own output, a handle takes it; err is then nil", function()
    local cmds = {{"sh", "-c", "echo a >&2; echo b"}, {"sh", "-c", "cat; echo c >&2"}}
    assert.same({"b\n", nil, true}, first(3, hpass.pipeline(cmds, {stderr = "null"})))
    local out, err = hpass.pipeline(cmds, {stderr = "stdout"})
    assert.same({"a\nb\nc\n", nil}, {out, err})
    local f = assert(io.open(H.tmpname(), "w+b"))
    assert.same({"b\n", nil, true}, first(3, hpass.pipeline(cmds, {stderr = f})))
    f:seek("set")
    local lines = H.lines(f:read("*a"))  -- "*a": Lua 5.1's files need the star
    table.sort(lines)
    assert.same({"a", "c"}, lines)
    f:close()
  end)

  it("stdout sends the last output to a handle instead; out is then nil", function()
    local name = H.tmpname()
    local f = assert(io.open(name, "wb"))
    local res = {hpass.pipeline({{"echo", "to the file"}, {"cat"}}, {stdout = f})}
    f:close()
    assert.same({nil, "", true, "exit", 0}, {res[1], res[2], res[3], res[4], res[5]})
    assert.equal("to the file\n", H.readfile(name))
    assert.same({nil, nil, true}, first(3, hpass.pipeline({{"echo", "x"}},
                                                          {stdout = "null", stderr = "null"})))
  end)

  it("the options are capture's, given to every command: input and stdin feed the "
     .. "first, env and cwd reach all", function()
    assert.equal("3\n", (hpass.pipeline({{"cat"}, {"wc", "-l"}}, {input = "a\nb\nc\n"})))
    local name = H.tmpname()
    local w = assert(io.open(name, "wb"))
    w:write("from a file\n")
    w:close()
    local f = assert(io.open(name, "rb"))
    assert.equal("from a file\n", (hpass.pipeline({{"cat"}, {"cat"}}, {stdin = f})))
    f:close()
    assert.equal("v v\n", (hpass.pipeline({{"sh", "-c", "echo $V"},
                                          {"sh", "-c", 'read x; echo "$x $V"'}},
                                         {env = {V = "v", PATH = os.getenv("PATH")}})))
    assert.equal("/\n", (hpass.pipeline({{"pwd"}, {"cat"}}, {cwd = "/"})))
  end)

  it("all commands share one process group, of their own", function()
    local script = "cut -d' ' -f5 /proc/$$/stat >&2; cat"
    local cmds = {}
    for i = 1, 4 do cmds[i] = {"sh", "-c", script} end
    local _, err = hpass.pipeline(cmds)
    local groups = H.lines(err)
    assert.equal(4, #groups)
    for i = 2, 4 do assert.equal(groups[1], groups[i]) end
    assert.are_not.equal(pgid(H.pid()), tonumber(groups[1]))
  end)

  it("group = n makes every command join the existing group n", function()
    local leader = assert(hpass.spawn_with_handle({"sleep", "30"}, {}, {group = true}))
    local _, err = hpass.pipeline({{"sh", "-c", "cut -d' ' -f5 /proc/$$/stat >&2"},
                                   {"sh", "-c", "cut -d' ' -f5 /proc/$$/stat >&2"}},
                                  {group = leader.pid})
    assert.same({tostring(leader.pid), tostring(leader.pid)}, H.lines(err))
    assert.is_true(leader:kill("KILL", "group"))
    leader:wait()
  end)

  it("a first command that ends before the others start still shares its group with "
     .. "the rest, or the rest make a new one", function()
    for _ = 1, 20 do
      local out, _, ok = hpass.pipeline({{"true"}, {"sh", "-c", "sleep 0.01; echo x"},
                                         {"cat"}})
      assert.same({"x\n", true}, {out, ok})
    end
  end)

  it("no command inherits another link's pipe end: each has 0, 1 and 2 only, and the "
     .. "end of every stream comes", function()
    local script = "echo $(ls /proc/self/fd) >&2; exec cat"
    local cmds = {}
    for i = 1, 5 do cmds[i] = {"sh", "-c", script} end
    local out, err, ok = hpass.pipeline(cmds, {input = "through\n", timeout = 30})
    assert.same({"through\n", true}, {out, ok})
    -- ls sees 0, 1 (the pipe of $(...)), 2 and its own listing: nothing else
    assert.same({"0 1 2 3", "0 1 2 3", "0 1 2 3", "0 1 2 3", "0 1 2 3"}, H.lines(err))
  end)

  it("a pipeline of 50 commands moves every byte, and leaves the descriptor count "
     .. "unchanged and no zombie", function()
    local before = settled()
    local cmds = {}
    for i = 1, 50 do cmds[i] = {"cat"} end
    local input = string.rep("0123456789abcdef", 65536)  -- 1 MiB
    local out, err, ok, _, _, st = hpass.pipeline(cmds, {input = input, timeout = 60})
    assert.is_true(out == input)
    assert.same({"", true}, {err, ok})
    assert.equal(50, #st)
    assert.equal(before, settled())
    assert.same({0, 0}, {R.sig.children()})
  end)

  it("after many pipelines the descriptor count is unchanged and no zombie remains",
     function()
    local before = settled()
    for i = 1, RUNS do
      local out, _, ok = hpass.pipeline({{"echo", i}, {"cat"}})
      assert.same({i .. "\n", true}, {out, ok})
    end
    -- and when the second command cannot start
    for _ = 1, 20 do
      local res = {hpass.pipeline({{"sleep", "30"}, {"no-such-program-hpass"}})}
      assert.same({nil, "command 2: no-such-program-hpass: No such file or directory",
                   R.ENOENT or 2}, res)
    end
    assert.equal(before, settled())
    assert.same({0, 0}, {R.sig.children()})
  end)

  it("is right under an eager collector, whose finalizers run inside the call", function()
    local restore = R.eager_gc()
    local ok, err = pcall(function()
      for _ = 1, 5 do
        local input = string.rep("x", 200000)
        local res = first(3, hpass.pipeline({{"cat"}, {"cat"}}, {input = input}))
        assert.is_true(res[1] == input, "the output differs from the input")
        assert.same({"", true}, {res[2], res[3]})
      end
    end)
    restore()
    assert(ok, err)
  end)

  it("bad input raises, naming the argument or option: an empty pipeline, a command "
     .. "that is no array, a bad argv, session, group = false", function()
    assert.matches(H.badarg(1, "pipeline") .. " %(no commands%)",
                   H.raises(hpass.pipeline, {}))
    assert.matches(H.badarg(1, "pipeline") .. " %(table expected, got string%)",
                   H.raises(hpass.pipeline, "ls | wc"))
    assert.matches(H.badarg(1, "pipeline") .. " %(command 2 must be an array %(argv%), "
                   .. "got string%)", H.raises(hpass.pipeline, {{"ls"}, "wc"}))
    assert.matches(H.badarg(1, "pipeline") .. " %(commands must be an array, with no holes",
                   H.raises(hpass.pipeline, {{"ls"}, nil, {"wc"}}))
    assert.matches(H.badarg(1, "pipeline") .. " %(commands must be an array, found key 'x'",
                   H.raises(hpass.pipeline, {{"ls"}, x = {"wc"}}))
    assert.matches(H.badarg(1, "pipeline") .. " %(command 2: argv is empty%)",
                   H.raises(hpass.pipeline, {{"true"}, {}}))
    assert.matches(H.badarg(1, "pipeline") .. " %(command 3: argv%[2%] must be a string",
                   H.raises(hpass.pipeline, {{"true"}, {"true"}, {"true", {}}}))
    assert.matches(H.badarg(2, "pipeline") .. " %(option 'session'",
                   H.raises(hpass.pipeline, {{"true"}}, {session = true}))
    assert.matches(H.badarg(2, "pipeline") .. " %(option 'group' must be true or a "
                   .. "process group id", H.raises(hpass.pipeline, {{"true"}}, {group = false}))
    assert.matches(H.badarg(2, "pipeline") .. " %(unknown option 'bogus'%)",
                   H.raises(hpass.pipeline, {{"true"}}, {bogus = 1}))
    assert.matches(H.badarg(2, "pipeline") .. " %(option 'timeout' must be",
                   H.raises(hpass.pipeline, {{"true"}}, {timeout = -1}))
    assert.matches(H.badarg(2, "pipeline") .. " %(options 'input' and 'stdin' together%)",
                   H.raises(hpass.pipeline, {{"true"}}, {input = "", stdin = "null"}))
    assert.matches(H.badarg(3, "pipeline") .. " %(no value expected%)",
                   H.raises(hpass.pipeline, {{"true"}}, nil, 1))
    -- and nothing was left running by a command that was refused
    assert.same({0, 0}, {R.sig.children()})
  end)

  it("an error names the line that called pipeline, also one found only when a command "
     .. "is spawned, on every Lua (5.1 and LuaJIT count a tail call as a level)", function()
    local loadstring = loadstring or load  -- luacheck: compat
    local f = assert(loadstring("local hpass = ...\n"
                                .. "hpass.pipeline({{'true'}, {'true', {}}})\n", "=caller"))
    local ok, msg = pcall(f, hpass)
    assert.is_false(ok)
    assert.matches("^caller:2: " .. H.badarg(1, "pipeline")
                   .. " %(command 2: argv%[2%] must be a string", msg)
    f = assert(loadstring("local hpass = ...\n\nhpass.pipeline({})\n", "=caller"))
    ok, msg = pcall(f, hpass)
    assert.matches("^caller:3: " .. H.badarg(1, "pipeline") .. " %(no commands%)", msg)
    assert.is_false(ok)
  end)

  it("the first call, which loads pipeline's body from its own file, gives nil, msg, "
     .. "errno (EMFILE) as capture does when no descriptor is left; a body that cannot be "
     .. "found raises, naming pipeline, at the caller's line", function()
    local script = H.script([[
      local hpass = require "hpass"
      local held = {}
      while true do
        local r, w = hpass.pipe()
        if not r then break end
        held[#held + 1] = r; held[#held + 1] = w
      end
      while true do
        local g = io.open("/dev/null")
        if not g then break end
        held[#held + 1] = g
      end
      local res = {n = select("#", hpass.pipeline({{"echo", "x"}, {"cat"}})),
                   hpass.pipeline({{"echo", "x"}, {"cat"}})}
      for _, h in ipairs(held) do h:close() end
      io.write(res.n, " ", tostring(res[1]), " ", tostring(res[3]), " ",
               tostring(package.loaded["hpass.pipeline"]), "\n")
      package.path = "/nonexistent/?.lua"
      package.loaded["hpass.pipeline"] = nil
      local ok, msg = pcall(function()
        local out = hpass.pipeline({{"true"}})
        return out
      end)
      io.write(tostring(ok), " ", msg:match("^[^\n]*"), "\n")]])
    local out, ok, how, code = H.capture({"sh", "-c", 'ulimit -n 64 && exec "$0" "$1"',
                                          H.lua, script})
    assert.same({true, "exit", 0}, {ok, how, code}, out)
    local cold, nobody = out:match("^([^\n]*)\n([^\n]*)\n$")
    assert.equal("3 nil " .. R.EMFILE .. " nil", cold)
    assert.matches("^false .-:%d+: hpass.pipeline: its body %(module 'hpass.pipeline', "
                   .. "lua/hpass/pipeline.lua%) cannot be loaded: module 'hpass.pipeline' "
                   .. "not found", nobody)
  end)

  it("a script that never runs a pipeline does not load its body: require 'hpass' "
     .. "leaves hpass.pipeline's file unloaded until the first call, which needs no "
     .. "global require", function()
    local script = H.script([[
      local hpass = require "hpass"
      io.write(tostring(package.loaded["hpass.pipeline"]), " ")
      require = nil
      local out = hpass.pipeline({{"echo", "x"}, {"cat"}})
      io.write(type(package.loaded["hpass.pipeline"]), " ", out)]])
    local out, ok, how, code = H.capture({H.lua, script})
    assert.same({true, "exit", 0}, {ok, how, code}, out)
    assert.equal("nil function x\n", out)
  end)
end)


describe("pipeline's timeout and max_output hold against the worst commands:", function()
  after_each(H.cleanup)

  local function pipeline(t, cmds, options)
    options = options or {}
    options.timeout = t
    local res, secs, cpu = timed(hpass.pipeline, cmds, options)
    assert.same({nil, "timeout", t}, {res[3], res[4], res[5]})
    assert.equal(#cmds, #res[6])
    return res, secs, cpu
  end

  it("commands that never end are killed, all of them, at the deadline, without "
     .. "spinning", function()
    local res, secs, cpu = pipeline(T, {{"sleep", "30"}, {"sleep", "30"}, {"cat"}})
    kept("pipeline", T, secs, cpu)
    for i = 1, 3 do assert.same({nil, "signal", 9}, res[6][i]) end
    assert.same({0, 0}, {R.sig.children()})
  end)

  it("a command that closes its outputs and lingers is killed at the deadline",
     function()
    local res, secs, cpu = pipeline(T, {{"sh", "-c", "echo bye; exec >&- 2>&-; "
                                                     .. "exec sleep 30"}, {"cat"}})
    assert.equal("bye\n", res[1])
    kept("pipeline", T, secs, cpu)
    assert.same({true, "exit", 0}, res[6][2])
    assert.same({nil, "signal", 9}, res[6][1])
  end)

  it("a grandchild that holds the pipes after its parent exited is killed with the "
     .. "group", function()
    local res, secs, cpu = pipeline(T, {{"sh", "-c", "sleep 30 & echo $!"}, {"cat"}})
    local pid = assert(tonumber(res[1]:match("%d+")))
    kept("pipeline", T, secs, cpu)
    assert.is_true(gone(pid))
  end)

  it("a command that floods is stopped at the deadline; without a timeout, at "
     .. "max_output", function()
    local res, secs = pipeline(T, {{R.relpeer, "flood", "1", "2"}, {"cat"}},
                               {max_output = math.huge})
    assert.is_true(#res[1] > 0 and #res[2] > 0)
    kept("pipeline", T, secs)
    local t0 = now()
    local out, err, ok, how, code, st = hpass.pipeline({{"yes"}, {"cat"}},
                                                       {max_output = 1048576})
    assert.same({nil, "max_output", 1048576}, {ok, how, code})
    assert.equal(1048576, #out + #err)
    assert.equal(2, #st)
    assert.is_true(now() - t0 < 5)
    assert.same({0, 0}, {R.sig.children()})
  end)
end)
