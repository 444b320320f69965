-- proc:communicate, promise by promise (the manual's "Talking to a child:
-- communicate"): the CPython cases of Lib/test/test_subprocess.py that
-- drive Popen.communicate ("CPython:" in their names), its resumption
-- after a timeout, and its deadline against the worst children, timed
-- as tests/spec/deadline_worst_spec.lua times the other calls.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"

-- The deadline of the calls that wait, the manual's bound past it, what a
-- busy 2-core host or a sanitizer adds, and the CPU a call may use while
-- it only waits (one that polled in a loop for T would use about T).
local T = 0.1
local BOUND = 0.05
local SLACK = R.sanitizer and 1.5 or 0.4
local IDLE = R.sanitizer and 0.1 or 0.03

local timed = R.timed

local function kept(what, t, secs, cpu)
  assert.is_true(secs >= t - 0.002, what .. " returned early: " .. secs)
  assert.is_true(secs < t + BOUND + SLACK,
                 ("%s took %.3f s for a deadline of %.3f s"):format(what, secs, t))
  if cpu then
    assert.is_true(cpu < IDLE, ("%s used %.3f s of CPU"):format(what, cpu))
  end
end

local PIPES = {stdin = "pipe", stdout = "pipe", stderr = "pipe"}

-- argv spawned with pipes on the streams named in `streams` (all three
-- by default); killed (with its group) and collected when the test ends.
local function spawn(argv, streams, options)
  local o = {}
  for k, v in pairs(options or {}) do o[k] = v end
  for k, v in pairs(streams or PIPES) do o[k] = v end
  local p = assert(hpass.spawn_with_handle(argv, {}, o))
  finally(function()
    if o.group then p:kill("KILL", "group") end
    p:kill("KILL")
    p:wait()
  end)
  return p
end

-- A Lua child running code (from a file: check-asan's interpreter takes
-- no -e), with this build on its paths.
local function lua(code)
  local name = H.tmpname()
  local f = assert(io.open(name, "wb"))
  f:write(code)
  f:close()
  return {H.lua, name}
end

-- A child that copies its input to its output slowly: 64 KiB every 10 ms.
local SLOWCAT = [[
  local socket = require "socket"
  while true do
    local s = io.read(65536)
    if not s then break end
    io.write(s)
    io.flush()
    socket.sleep(0.01)
  end]]

-- The 4 bytes write_int sends for n.
local function native(n)
  local r, w = hpass.pipe()
  assert(w:write_int(n))
  w:close()
  local s = r:read(4)
  r:close()
  return s
end

-- n bytes that tell their places apart, block by block: a lost, repeated
-- or reordered block, or a byte more or less, shows.
local function pattern(n)
  local t, filler = {}, string.rep("x", 4087) .. "\n"
  for i = 1, math.ceil(n / 4096) do t[i] = ("%08d"):format(i) .. filler end
  return table.concat(t):sub(1, n)
end


describe("communicate:", function()
  after_each(H.cleanup)

  it("CPython: feeds input to proc.stdin, then closes it (test_communicate_stdin)",
     function()
    local p = spawn({"sh", "-c", 'read x; test "$x" = pear'}, {stdin = "pipe"})
    assert.same({nil, nil, true, "exit", 0}, {p:communicate("pear\n")})
    assert.equal("closed handle", hpass.type(p.stdin))
  end)

  it("CPython: returns out, err, ok, how, code, with nil for a stream that is no pipe "
     .. "(test_communicate_stdout, test_communicate_stderr)", function()
    local p = spawn({"sh", "-c", "printf pineapple; exit 3"}, {stdout = "pipe"})
    assert.same({"pineapple", nil, nil, "exit", 3}, {p:communicate()})
    p = spawn({"sh", "-c", "printf pineapple >&2"}, {stderr = "pipe"})
    assert.same({nil, "pineapple", true, "exit", 0}, {p:communicate()})
  end)

  it("CPython: reads proc.stdout and proc.stderr to their ends while it writes the input "
     .. "(test_communicate)", function()
    local p = spawn({"sh", "-c", "printf pineapple >&2; cat"})
    assert.same({"banana", "pineapple", true, "exit", 0}, {p:communicate("banana")})
  end)

  it("CPython: no deadlock whatever the sizes: 4 MiB each way, past what a pipe holds "
     .. "(test_communicate_pipe_buf)", function()
    local size = 4 * 1048576 + 1
    local p = spawn({"sh", "-c", "head -c 47; head -c " .. size .. " /dev/zero >&2; cat"})
    local input = pattern(size)
    local out, err, ok = p:communicate(input, 60)
    assert.equal(#input, #out)
    assert.is_true(out == input)
    assert.equal(size, #err)
    assert.is_true(ok)
  end)

  it("CPython: what was written to proc.stdin before goes first, also from its buffer "
     .. "(test_writes_before_communicate)", function()
    local p = spawn({"cat"})
    assert.equal(p.stdin, p.stdin:write("banana"))
    assert.same({"bananasplit", "", true, "exit", 0}, {p:communicate("split")})
    p = spawn({"cat"})
    assert.is_true(p.stdin:setvbuf("full"))
    assert.equal(p.stdin, p.stdin:write("ban"))
    assert.is_true(p.stdin:write_int(0x616e616e) ~= nil)
    local out = p:communicate("a")
    assert.equal("ban" .. native(0x616e616e) .. "a", out)
  end)

  it("input the script read ahead of proc.stdout comes first in out", function()
    local p = spawn({"printf", "line1\\nline2\\nrest"}, {stdout = "pipe"})
    p.stdout:settimeout(10)
    assert.equal("line1", p.stdout:read("l"))  -- a line read looks ahead
    assert.same({"line2\nrest", nil, true, "exit", 0}, {p:communicate()})
  end)

  it("CPython: a child that exits without reading its input is no failure "
     .. "(test_communicate_epipe, test_communicate_epipe_only_stdin)", function()
    local big = string.rep("x", 1048576)
    local p = spawn({"true"})
    assert.same({"", "", true, "exit", 0}, {p:communicate(big)})
    p = spawn({"true"}, {stdin = "pipe"})
    assert.is_true((p:wait()))
    assert.same({nil, nil, true, "exit", 0}, {p:communicate(big)})
  end)

  it("CPython: every pipe is closed once communicate has read and written all "
     .. "(test_communicate_pipe_fd_leak)", function()
    collectgarbage(); collectgarbage()
    local before = R.sig.nfds()
    for mask = 1, 7 do
      local streams = {}
      if mask % 2 == 1 then streams.stdin = "pipe" end
      if mask % 4 >= 2 then streams.stdout = "pipe" end
      if mask >= 4 then streams.stderr = "pipe" end
      local p = spawn({"true"}, streams)
      assert.is_true(select(3, p:communicate()))
      for k in pairs(streams) do
        assert.equal("closed handle", hpass.type(p[k]), k)
      end
    end
    assert.equal(before, R.sig.nfds())
  end)

  it("CPython: signals that arrive meanwhile change nothing (test_communicate_eintr)",
     function()
    local s = assert(hpass.signals{"USR1"})
    local p = spawn({"sh", "-c", "sleep 0.05; kill -USR1 $PPID; sleep 0.05; "
                                 .. "kill -USR1 $PPID; sleep 0.05; echo done"},
                    {stdout = "pipe"})
    assert.same({"done\n", nil, true, "exit", 0}, {p:communicate(nil, 10)})
    assert.equal("USR1", s:read_signal())
    s:close()
  end)

  it("CPython: on timeout it returns what came so far, nil, 'timeout', seconds, and a "
     .. "later call resumes and gets the rest (test_communicate_timeout)", function()
    local p = spawn({"sh", "-c", "echo pineapple >&2; sleep 0.3; echo pear >&2; cat"})
    local res = {p:communicate("banana", 0.1)}
    assert.same({"", "pineapple\n", nil, "timeout", 0.1}, res)
    assert.same({"banana", "pear\n", true, "exit", 0}, {p:communicate()})
  end)

  it("CPython: no output is lost when the timeout cuts a child that writes in bursts "
     .. "(test_communicate_timeout_large_output)", function()
    local p = spawn({"sh", "-c", "for i in 1 2 3 4; do head -c 65536 /dev/zero; "
                                 .. "sleep 0.05; done"}, {stdout = "pipe"})
    local first = {p:communicate(nil, 0.08)}
    assert.same({nil, "timeout", 0.08}, {first[3], first[4], first[5]})
    local rest = {p:communicate()}
    assert.same({true, "exit", 0}, {rest[3], rest[4], rest[5]})
    assert.equal(4 * 65536, #first[1] + #rest[1])
  end)

  it("a later communicate resumes where the first stopped: no input byte is sent "
     .. "twice, no output byte lost, none returned twice", function()
    local input = pattern(1048576)
    local p = spawn(lua(SLOWCAT))
    local outs, rounds = {}, 0
    local out, err, ok, how, code = p:communicate(input, 0.03)
    while how == "timeout" do
      rounds = rounds + 1
      outs[#outs + 1] = out
      assert.equal("", err)
      assert.is_false(p:poll())  -- not killed
      out, err, ok, how, code = p:communicate(nil, 0.03)
    end
    outs[#outs + 1] = out
    assert.same({true, "exit", 0}, {ok, how, code})
    assert.is_true(rounds >= 2, "rounds: " .. rounds)
    local all = table.concat(outs)
    assert.equal(#input, #all)
    assert.is_true(all == input, "the output differs from the input")
  end)

  it("input given to a call that resumes raises: only the first call takes input",
     function()
    local p = spawn(lua(SLOWCAT))
    local res = {p:communicate(string.rep("x", 1048576), 0.01)}
    assert.equal("timeout", res[4])
    assert.matches(H.badarg(1, "communicate") .. " %(input after communication started",
                   H.raises(function() local r = p:communicate("more") return r end))
    local out = p:communicate()
    assert.equal(1048576, #res[1] + #out)
  end)

  it("does not kill the child on timeout; called again after the child ended, it "
     .. "returns the status again", function()
    local p = spawn({"sh", "-c", "sleep 0.2; echo late"}, {stdout = "pipe"})
    assert.same({"", nil, nil, "timeout", 0}, {p:communicate(nil, 0)})
    assert.is_false(p:poll())
    assert.same({"late\n", nil, true, "exit", 0}, {p:communicate()})
    assert.same({"", nil, true, "exit", 0}, {p:communicate()})
  end)

  it("is right under an eager collector, whose finalizers run inside the call", function()
    local restore = R.eager_gc()
    local ok, err = pcall(function()
      for _ = 1, 5 do
        local input = pattern(200000)
        local p = spawn({"sh", "-c", "cat; echo e >&2"})
        assert.same({input, "e\n", true, "exit", 0}, {p:communicate(input, 30)})
      end
    end)
    restore()
    assert(ok, err)
  end)

  it("misuse raises, naming communicate: a process without pipes, input that is no "
     .. "string or has no stdin pipe, a bad timeout, an extra argument", function()
    local p = spawn({"true"}, {})
    assert.matches("calling 'communicate' on bad self %(process has no pipes",
                   H.raises(function() local r = p:communicate() return r end))
    assert.matches(H.badarg(1, "communicate") .. " %(process has no pipes",
                   H.raises(p.communicate, p))
    assert.matches(H.badarg(1, "communicate") .. " %(process expected, got number%)",
                   H.raises(p.communicate, 42))
    local q = spawn({"cat"}, {stdout = "pipe"})
    assert.matches(H.badarg(1, "communicate") .. " %(process has no stdin pipe%)",
                   H.raises(function() local r = q:communicate("x") return r end))
    assert.matches(H.badarg(1, "communicate") .. " %(string expected, got number%)",
                   H.raises(function() local r = q:communicate(5) return r end))
    -- "" is no input: taken without a stdin pipe, as after proc.stdin was closed
    local e = spawn({"echo", "hi"}, {stdout = "pipe"})
    assert.same({"hi\n", nil, true, "exit", 0}, {e:communicate("")})
    local c = spawn({"cat"}, {stdin = "pipe", stdout = "pipe"})
    c.stdin:close()
    assert.matches(H.badarg(1, "communicate") .. " %(proc.stdin was closed",
                   H.raises(function() local r = c:communicate("lost") return r end))
    assert.same({"", nil, true, "exit", 0}, {c:communicate("")})
    for _, t in ipairs({-1, 0 / 0, "1"}) do
      assert.matches(H.badarg(2, "communicate") .. " %(timeout must be a non%-negative",
                     H.raises(function() local r = q:communicate(nil, t) return r end))
    end
    assert.matches(H.badarg(3, "communicate") .. " %(no value expected%)",
                   H.raises(function() local r = q:communicate(nil, 1, 2) return r end))
  end)
end)


describe("communicate's timeout holds against the worst child, which it does not kill:",
         function()
  after_each(H.cleanup)

  it("a child that floods both outputs: the call returns at the deadline with what "
     .. "came", function()
    local p = spawn({R.relpeer, "flood", "1", "2"}, {stdout = "pipe", stderr = "pipe"},
                    {group = true})
    local res, secs = timed(p.communicate, p, nil, T)
    assert.same({nil, "timeout", T}, {res[3], res[4], res[5]})
    assert.is_true(#res[1] > 0 and #res[2] > 0)
    kept("communicate", T, secs)
    assert.is_false(p:poll())
  end)

  it("a child that closes its outputs and lingers: the call returns at the deadline, "
     .. "without spinning", function()
    local p = spawn({"sh", "-c", "echo bye; exec >&- 2>&-; exec sleep 30"},
                    {stdout = "pipe", stderr = "pipe"})
    local res, secs, cpu = timed(p.communicate, p, nil, T)
    assert.same({"bye\n", "", nil, "timeout", T}, res)
    kept("communicate", T, secs, cpu)
    assert.is_false(p:poll())
  end)

  it("a grandchild that holds the pipes after the child ended: the call returns at the "
     .. "deadline, without spinning", function()
    local p = spawn({"sh", "-c", "sleep 30 & echo $!"}, {stdout = "pipe"}, {group = true})
    local res, secs, cpu = timed(p.communicate, p, nil, T)
    assert.same({nil, "timeout", T}, {res[3], res[4], res[5]})
    assert.matches("^%d+\n$", res[1])
    kept("communicate", T, secs, cpu)
  end)

  it("a child that never reads its input, or is stopped: the call returns at the "
     .. "deadline, without spinning", function()
    local p = spawn({"cat"})
    assert(p:kill("STOP"))
    assert.is_true(H.within(10, function() return H.procstate(p.pid) == "T" end))
    local res, secs, cpu = timed(p.communicate, p, string.rep("x", 1048576), T)
    assert.same({"", "", nil, "timeout", T}, res)
    kept("communicate", T, secs, cpu)
    -- resumed once the child runs again, it sends the rest
    assert(p:kill("CONT"))
    local out = p:communicate(nil, 30)
    assert.equal(1048576, #out)
  end)
end)
