-- Deadlines measured, not assumed: every call that takes a deadline,
-- against the worst a peer can do -- never read, flood, close its outputs
-- and linger, leave a grandchild holding the pipes, or be stopped with
-- SIGSTOP.  Each call returns within its deadline plus the bound of the
-- manual ("Deadlines and waiting on many"), and uses almost no CPU while
-- it only waits.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"
local socket = require "socket"

local unpack = table.unpack or unpack  -- luacheck: compat
local ETIMEDOUT = 110
local now = socket.gettime

-- The deadline of the calls that wait, and of those that face a flood
-- (shorter: a flood fills memory as fast as it can be copied).
local T, TF = 0.1, 0.1
-- The manual's bound past a deadline (capture adds the copy of what it
-- gathered), and what a busy 2-core host, a sanitizer or an emulated CPU
-- adds to it.
local BOUND = 0.05
local SLACK = R.slow and 1.5 or 0.4
-- CPU a call may use while it only waits, in seconds: a call that polled
-- in a loop for T would use about T.
local IDLE = R.slow and 0.1 or 0.03

-- The largest overshoot seen, by kind of call, reported at the end: calls
-- that only waited, calls that moved bytes to the end (a flood, a peer that
-- drains), and capture.
local worst = {wait = 0, move = 0, capture = 0}

-- The results of f(...), its wall and CPU time.  The collector runs first:
-- its work on the garbage of earlier calls (a flood's buffers, tables of
-- millions of integers) is no part of the call measured.
local timed = R.timed

-- That a call that took secs kept its deadline t; with cpu, that it waited
-- without spinning.  (Deadlines count in whole milliseconds.)
local function kept(what, t, secs, cpu)
  assert.is_true(secs >= t - 0.002, what .. " returned early: " .. secs)
  assert.is_true(secs < t + BOUND + SLACK,
                 ("%s took %.3f s for a deadline of %.3f s"):format(what, secs, t))
  if cpu then
    assert.is_true(cpu < IDLE, ("%s used %.3f s of CPU"):format(what, cpu))
  end
  local kind = what == "capture" and "capture" or cpu and "wait" or "move"
  if secs - t > worst[kind] then worst[kind], worst[kind .. "_what"] = secs - t, what end
end

-- A child that is killed when the test ends, however it ends.
local function child(argv, handles, options)
  local p = assert(hpass.spawn_with_handle(argv, handles or {}, options))
  finally(function()
    p:kill("KILL")
    p:wait()
  end)
  return p
end

-- A child that holds the other ends of our pipes and is stopped: it never
-- reads nor writes.  cat reads stdin, writes stdout.
local function stopped(options)
  local p = child({"cat"}, {}, options)
  assert(p:kill("STOP"))
  -- until it has stopped, a cat woken by the signal may still take what
  -- has come meanwhile
  assert.is_true(H.within(10, function() return H.procstate(p.pid) == "T" end))
  return p
end

-- w made full: nothing more can be written until its reader reads.
local function fill(w)
  w:settimeout(0)
  local chunk = string.rep("x", 4096)
  repeat until not w:write(chunk)
end

-- A pipe whose write end a flooding child holds: its read end.
local function flooded()
  local r, w = hpass.pipe()
  local p = child({R.relpeer, "flood"}, w)
  w:close()
  return r, p
end

local function finish(p)
  p:kill("KILL")
  p:wait()
end


describe("a deadline holds against the worst peer:", function()
  after_each(H.cleanup)

  it("read_int, read_ints, read and lines return at the deadline, without spinning, "
     .. "when the peer is stopped", function()
    local r, w = hpass.pipe()
    local ir, iw = hpass.pipe()
    local p = stopped({stdin = ir, stdout = w})
    w:close(); ir:close()
    r:settimeout(T)
    for _, c in ipairs({{"read_int"}, {"read_ints", 10}, {"read", "a"}, {"read", "l"},
                        {"read", 10}}) do
      local what = c[1] .. "(" .. tostring(c[2] or "") .. ")"
      local res, secs, cpu = timed(r[c[1]], r, unpack(c, 2))
      assert.same({nil, "timeout", ETIMEDOUT}, {res[1], res[2], res[3]}, what)
      kept(what, T, secs, cpu)
    end
    local res, secs, cpu = timed(pcall, r:lines())
    assert.is_false(res[1])
    assert.matches("timeout", res[2])
    kept("lines", T, secs, cpu)
    finish(p)
    r:close(); iw:close()
  end)

  it("read_ints, read and lines stop at the deadline when the peer floods", function()
    for _, c in ipairs({{"read_ints", 2 ^ 30}, {"read", "a"}, {"read", "l"},
                        {"read", 2 ^ 40}}) do
      local r, p = flooded()
      r:settimeout(TF)
      local what = c[1] .. "(" .. tostring(c[2]) .. ")"
      local res, secs = timed(r[c[1]], r, unpack(c, 2))
      assert.same({nil, "timeout", ETIMEDOUT}, {res[1], res[2], res[3]}, what)
      kept(what, TF, secs)
      finish(p)
      r:close()
    end
    local r, p = flooded()
    r:settimeout(TF)
    local res, secs = timed(pcall, r:lines())
    assert.is_false(res[1])
    assert.matches("timeout", res[2])
    kept("lines", TF, secs)
    finish(p)
    r:close()
  end)

  it("write_int, write_ints, write, flush, setvbuf, tofile and detach return at the "
     .. "deadline, without spinning, when the peer is stopped", function()
    local r, w = hpass.pipe()
    local p = stopped({stdin = r, stdout = "null"})
    r:close()
    fill(w)
    w:settimeout(T)
    local function times_out(what, expect, f, ...)
      local res, secs, cpu = timed(f, ...)
      assert.same(expect, res, what)
      kept(what, T, secs, cpu)
    end
    times_out("write_int", {nil, "timeout", ETIMEDOUT}, w.write_int, w, 1)
    times_out("write_ints", {nil, "timeout", ETIMEDOUT, 0}, w.write_ints, w, {1, 2, 3})
    times_out("write", {nil, "timeout", ETIMEDOUT, 0}, w.write, w, "abc")
    -- buffered: what waits in the buffer cannot go out
    assert.is_true(w:setvbuf("full"))
    assert.equal(w, w:write("abc"))
    times_out("flush", {nil, "timeout", ETIMEDOUT}, w.flush, w)
    times_out("setvbuf", {nil, "timeout", ETIMEDOUT}, w.setvbuf, w, "no")
    times_out("tofile", {nil, "timeout", ETIMEDOUT}, w.tofile, w, "w")
    times_out("detach", {nil, "timeout", ETIMEDOUT}, w.detach, w)
    finish(p)
    w:close()
  end)

  it("write and write_ints stop at the deadline when the peer drains as fast as it can",
     function()
    local r, w = hpass.pipe()
    local p = child({"cat"}, {}, {stdin = r, stdout = "null"})
    r:close()
    local big = string.rep("x", 64 * 1048576)
    w:settimeout(TF)
    local res, secs = timed(w.write, w, big)
    assert.same({nil, "timeout", ETIMEDOUT}, {res[1], res[2], res[3]})
    assert.is_true(res[4] > 0 and res[4] < #big, tostring(res[4]))
    kept("write", TF, secs)
    local t = {}
    for i = 1, 2 ^ 20 do t[i] = i end
    res, secs = timed(w.write_ints, w, t)
    if res[1] then  -- all went before the deadline
      assert.is_true(secs < TF, "write_ints took " .. secs)
    else
      assert.same({nil, "timeout", ETIMEDOUT}, {res[1], res[2], res[3]})
      kept("write_ints", TF, secs)
    end
    w:close()
    assert.is_true((p:wait()))
  end)

  it("send_handle and recv_handle return at the deadline, without spinning, when the "
     .. "peer is stopped", function()
    local a, b = hpass.socketpair()
    local p = stopped({stdin = b, stdout = b})
    b:close()
    a:settimeout(T)
    local res, secs, cpu = timed(a.recv_handle, a)
    assert.same({nil, "timeout", ETIMEDOUT}, res)
    kept("recv_handle", T, secs, cpu)
    fill(a)
    a:settimeout(T)
    local x = hpass.pipe()
    res, secs, cpu = timed(a.send_handle, a, x)
    assert.same({nil, "timeout", ETIMEDOUT}, res)
    kept("send_handle", T, secs, cpu)
    finish(p)
    a:close(); x:close()
  end)

  it("the flush before spawn_with_handle passes a handle returns nil, 'timeout', "
     .. "ETIMEDOUT at the deadline", function()
    local r, w = hpass.pipe()
    local p = stopped({stdin = r, stdout = "null"})
    r:close()
    fill(w)
    assert.is_true(w:setvbuf("full"))
    assert.equal(w, w:write("abc"))
    w:settimeout(T)
    local res, secs, cpu = timed(hpass.spawn_with_handle, {"true"}, w)
    assert.same({nil, "timeout", ETIMEDOUT}, res)
    kept("spawn's flush", T, secs, cpu)
    res, secs, cpu = timed(hpass.spawn_with_handle, {"true"}, {}, {stdout = w})
    assert.same({nil, "timeout", ETIMEDOUT}, res)
    kept("spawn's flush of stdout", T, secs, cpu)
    finish(p)
    w:close()
  end)

  it("wait(seconds) returns false at the deadline, without spinning, for a child that "
     .. "is stopped or lingers with its outputs closed", function()
    local a = child({"sleep", "30"})
    assert(a:kill("STOP"))
    local b = child({"sh", "-c", "exec >&- 2>&-; exec sleep 30"})
    for _, p in ipairs({a, b}) do
      local res, secs, cpu = timed(p.wait, p, T)
      assert.same({false}, res)
      kept("wait", T, secs, cpu)
      finish(p)
    end
  end)

  it("select returns at the deadline, without spinning, over a stopped peer, a stopped "
     .. "child and a buffered request that cannot go out", function()
    local r, w = hpass.pipe()
    local ir, iw = hpass.pipe()
    local p = stopped({stdin = ir, stdout = w})
    w:close(); ir:close()
    fill(iw)
    local res, secs, cpu = timed(hpass.select, {r, p}, {iw}, T)
    assert.same({{}, {}, "timeout"}, res)
    kept("select", T, secs, cpu)
    -- a request in a buffer, to a peer that never reads: select flushes
    -- it first (as a read does), and the flush too stops at the deadline
    local a, b = hpass.socketpair()
    local q = stopped({stdin = b, stdout = b})
    b:close()
    fill(a)
    assert.is_true(a:setvbuf("full"))
    assert.equal(a, a:write("request"))
    res, secs, cpu = timed(hpass.select, {a}, nil, T)
    assert.same({{}, {}, "timeout"}, res)
    kept("select with a buffered request", T, secs, cpu)
    finish(p); finish(q)
    r:close(); iw:close(); a:close()
  end)
end)


describe("capture's timeout holds against the worst child:", function()
  after_each(H.cleanup)

  teardown(function()  -- the last describe: every overshoot is known
    io.stderr:write(("# deadline_worst: largest overshoot %.1f ms waiting (%s), "
                     .. "%.1f ms moving bytes (%s), %.1f ms in capture\n")
                    :format(worst.wait * 1000, worst.wait_what or "-",
                            worst.move * 1000, worst.move_what or "-",
                            worst.capture * 1000))
  end)

  -- capture(argv, options) with timeout t: the result, and the seconds it
  -- took; asserts the documented timeout result.
  local function capture(t, argv, options)
    options = options or {}
    options.timeout = t
    local res, secs, cpu = timed(hpass.capture, argv, options)
    assert.is_string(res[1])
    assert.same({nil, "timeout", t}, {res[3], res[4], res[5]})
    return res, secs, cpu
  end

  it("a child that closes its outputs and lingers is killed at the deadline", function()
    local res, secs, cpu = capture(T, {"sh", "-c", "echo bye; exec >&- 2>&-; exec sleep 30"})
    assert.equal("bye\n", res[1])
    kept("capture", T, secs, cpu)
    assert.equal(0, select(2, R.sig.children()))  -- killed and collected
  end)

  it("a child that floods both outputs is stopped at the deadline", function()
    for _, group in ipairs({true, false}) do
      local res, secs = capture(TF, {R.relpeer, "flood", "1", "2"},
                                {group = group, max_output = math.huge})
      assert.is_true(#res[1] > 0 and #res[2] > 0)
      kept("capture", TF, secs)
    end
  end)

  it("a child that never reads its input, or is stopped, is killed at the deadline",
     function()
    local res, secs, cpu = capture(T, {"sleep", "30"}, {input = string.rep("x", 1048576)})
    assert.equal("", res[1])
    kept("capture", T, secs, cpu)
    res, secs, cpu = capture(T, {"sh", "-c", "echo x; kill -STOP $$"})
    assert.equal("x\n", res[1])
    kept("capture", T, secs, cpu)
    assert.equal(0, select(2, R.sig.children()))
  end)

  it("with group, a grandchild that holds the pipes after its parent exited is killed",
     function()
    local res, secs, cpu = capture(T, {"sh", "-c", "sleep 30 & echo $!"}, {group = true})
    local pid = assert(tonumber(res[1]:match("%d+")))
    kept("capture", T, secs, cpu)
    -- gone, or a zombie of init's until it is collected: it has ended
    assert.is_true(H.within(5, function()
      local state = H.procstate(pid)
      return state == nil or state == "Z"
    end))
    -- without a group only the child is the capture's: the grandchild lives on
    res, secs = capture(T, {"sh", "-c", "sleep 30 & echo $!"})
    pid = assert(tonumber(res[1]:match("%d+")))
    kept("capture", T, secs)
    assert.is_true(H.procstate(pid) == "S" or H.procstate(pid) == "R")
    os.execute("kill -9 " .. pid)
  end)

  it("an endless writer without a timeout ends at max_output", function()
    local t0 = now()
    local out, err, ok, how, code = hpass.capture({R.relpeer, "flood", "1", "2"},
                                                  {max_output = 1048576, group = true})
    assert.same({nil, "max_output", 1048576}, {ok, how, code})
    assert.equal(1048576, #out + #err)
    assert.is_true(now() - t0 < 5)
  end)
end)
