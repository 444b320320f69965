-- The manual's "Capturing a child's output" and "Standard streams by
-- name", sentence by sentence: a child's output and error as strings, its
-- input fed, with no deadlock whatever the sizes, a timeout and a limit on
-- the output; "null" and "stdout" as standard streams.  Each test is named
-- after the promise it checks; how the timeout holds against the worst
-- children is in deadline_worst_spec.lua.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"
local socket = require "socket"

local function pack(...) return {n = select("#", ...), ...} end

describe("Capturing a child's output:", function()
  after_each(H.cleanup)

  it("returns out, err, ok, how, code: its output and error as strings, then the wait "
     .. "triple", function()
    assert.same({"out\n", "err\n", nil, "exit", 3},
                {hpass.capture({"sh", "-c", "echo out; echo err >&2; exit 3"})})
    assert.same({"", "", true, "exit", 0}, {hpass.capture({"true"})})
  end)

  -- valgrind enforces the descriptor limit itself, for some calls only
  it("its pipes that cannot be made give nil, msg, errno (EMFILE) and leave nothing open "
     .. "#novalgrind", function()
    local fds0, open = R.sig.nfds(), R.sig.fds()
    -- limits that leave 1, 3 and 5 numbers free: no pipe, then one or two
    for _, want in ipairs({1, 3, 5}) do
      local limit, free = 0, 0
      while free < want do
        if not open[limit] then free = free + 1 end
        limit = limit + 1
      end
      local old = R.sig.nofile(limit)
      local ok, res = pcall(function()
        return pack(hpass.capture({"true"}, {input = "x"}))
      end)
      R.sig.nofile(old)
      assert(ok, res)
      assert.same({n = 3, nil, res[2], R.EMFILE}, res)
      assert.is_string(res[2])
      assert.equal(fds0, R.sig.nfds())
    end
  end)

  it("captures change no mapping of the process's memory: after 100 kept outputs every "
     .. "mapping is of a kind there was before (a hint such as MADV_HUGEPAGE over part of "
     .. "the heap would split it for good)", function()
    -- in a process of its own, whose mappings no capture has touched yet
    local script = H.script([[
      local hpass = require "hpass"
      -- LuaJIT's compiled code gets executable mappings of its own
      if rawget(_G, "jit") then jit.off() end
      -- the kinds of mapping there are: their VmFlags lines
      local function kinds()
        local k = {}
        for line in io.lines("/proc/self/smaps") do
          local flags = line:match("^VmFlags:%s*(.-)%s*$")
          if flags then k[flags] = (k[flags] or 0) + 1 end
        end
        return k
      end
      local before, kept = kinds(), {}
      -- outputs of 300 KiB, kept, so that each buffer lands somewhere new
      for i = 1, 100 do
        local out, err, ok = hpass.capture({"head", "-c", "300000", "/dev/zero"})
        assert(ok and #out == 300000, err)
        kept[i] = out .. i
      end
      for flags, n in pairs(kinds()) do
        if not before[flags] then print(n .. " new mappings with VmFlags '" .. flags .. "'") end
      end
      print(#kept)]])
    local out, err, ok, how, code = hpass.capture({H.lua, script}, {timeout = 60})
    assert.same({true, "exit", 0}, {ok, how, code}, err)
    assert.equal("100\n", out)
  end)

  it("input is fed to its standard input, which is then closed", function()
    assert.same({"fed\n", "", true, "exit", 0},
                {hpass.capture({"cat"}, {input = "fed\n"})})
    assert.same({"0\n", "", true, "exit", 0},
                {hpass.capture({"wc", "-c"}, {input = ""})})
  end)

  it("bytes are kept as they are, zeros included", function()
    local t = {}
    for i = 0, 255 do t[#t + 1] = string.char(i) end
    local all = table.concat(t):rep(1000)
    local out, err, ok = hpass.capture({"cat"}, {input = all})
    assert.is_true(ok); assert.equal("", err)
    assert.is_true(out == all, "bytes differ")
  end)

  -- 64 MiB (less under valgrind: HPASS_BIG_MIB is twice this)
  local mib = math.floor(R.knob("HPASS_BIG_MIB", 128) / 2)
  it(("no deadlock whatever the sizes of input, output and error (%d MiB on each at "
      .. "once); max_output = math.huge means no limit"):format(mib), function()
    local input = string.rep("0123456789abcdef", mib * 65536)
    local t0 = socket.gettime()
    -- with max_output = math.huge: no limit, beyond the default of 64 MiB
    local out, err, ok = hpass.capture({"sh", "-c", "tee /dev/stderr"},
                                       {input = input, max_output = math.huge})
    assert.is_true(ok)
    assert.equal(#input, #out); assert.equal(#input, #err)
    assert.is_true(out == input and err == input, "data differ")
    assert.is_true(socket.gettime() - t0 < 60)
  end)

  it("a child that exits without reading all its input is no failure", function()
    local input = string.rep("x", 8 * 1048576)
    assert.same({"", "", true, "exit", 0}, {hpass.capture({"true"}, {input = input})})
    assert.same({"xx", "", true, "exit", 0},
                {hpass.capture({"head", "-c", "2"}, {input = input})})
  end)

  it("when the timeout runs out the child is killed and the result is out_so_far, "
     .. "err_so_far, nil, 'timeout', seconds", function()
    local t0 = socket.gettime()
    local res = pack(hpass.capture({"sh", "-c", "echo partial; echo e >&2; exec sleep 30"},
                                   {timeout = 0.5}))
    local secs = socket.gettime() - t0
    assert.same({n = 5, "partial\n", "e\n", nil, "timeout", 0.5}, res)
    assert.is_true(secs >= 0.49 and secs < 3, "took " .. secs)
    local _, zombies = R.sig.children()
    assert.equal(0, zombies)
  end)

  it("max_output: past it the child is killed and the result is out, err, nil, "
     .. "'max_output', max_output, out and err holding the first bytes, together", function()
    local out, err, ok, how, code = hpass.capture({R.relpeer, "flood", "1", "2"},
                                                  {max_output = 100000, group = true})
    assert.same({nil, "max_output", 100000}, {ok, how, code})
    assert.equal(100000, #out + #err)
    assert.is_true(out == ("y"):rep(#out) and err == ("y"):rep(#err))
    assert.same({"", "", nil, "max_output", 0}, {hpass.capture({"echo", "x"}, {max_output = 0})})
    assert.same({"", "", true, "exit", 0}, {hpass.capture({"true"}, {max_output = 0})})
  end)

  it("a child that writes exactly max_output bytes and exits is no overflow", function()
    local function zeros(n) return ("0"):rep(n) end
    assert.same({zeros(600), zeros(400), true, "exit", 0},
                {hpass.capture({"sh", "-c", "printf %0600d 0; printf %0400d 0 >&2"},
                               {max_output = 1000})})
    local out, err, ok, how, code = hpass.capture(
      {"sh", "-c", "printf %0600d 0; printf %0401d 0 >&2"}, {max_output = 1000})
    assert.same({nil, "max_output", 1000}, {ok, how, code})
    assert.equal(1000, #out + #err)
  end)

  -- the default at full size; under valgrind (HPASS_BIG_MIB below 128)
  -- the same path at a smaller limit given explicitly
  local big = R.knob("HPASS_BIG_MIB", 128) >= 128
  it("max_output is 64 MiB by default", function()
    local limit = big and 67108864 or 1048576
    local out, err, ok, how, code = hpass.capture({"head", "-c", tostring(limit + 1),
                                                   "/dev/zero"},
                                                  {max_output = not big and limit or nil})
    assert.same({limit, "", nil, "max_output", limit}, {#out, err, ok, how, code})
  end)

  it("if the program cannot start: nil, msg, errno", function()
    local ok, msg, code = hpass.capture({"/nonexistent/program"})
    assert.is_nil(ok); assert.matches("/nonexistent/program", msg); assert.equal(R.ENOENT, code)
  end)

  it("stderr = 'stdout' merges the error output into the output, stderr = 'null' drops "
     .. "it; err is then nil", function()
    assert.same({"a\nb\nc\n", nil, true, "exit", 0},
                {hpass.capture({"sh", "-c", "echo a; echo b >&2; echo c"},
                               {stderr = "stdout"})})
    assert.same({"a\n", nil, true, "exit", 0},
                {hpass.capture({"sh", "-c", "echo a; echo b >&2"}, {stderr = "null"})})
    assert.same({"", "", true, "exit", 0},
                {hpass.capture({"cat"}, {stdin = "null"})})
  end)

  it("takes the options of spawn_with_handle, and handles passed as it passes them",
     function()
    local out = hpass.capture({"sh", "-c", 'echo "$X"; pwd'}, {env = {X = "set"}, cwd = "/"})
    assert.equal("set\n/\n", out)
    local r, w = hpass.pipe()
    out = hpass.capture({"sh", "-c", 'echo to-handle >&"$1"; echo to-out', "sh"},
                        {handles = {w}})
    w:close()
    assert.equal("to-out\n", out)
    assert.equal("to-handle", r:read("l"))
    r:close()
  end)

  it("leaves no descriptor open", function()
    local fds = R.sig.nfds()
    for _ = 1, 20 do hpass.capture({"sh", "-c", "echo x; echo y >&2"}, {input = "z"}) end
    hpass.capture({"sleep", "5"}, {timeout = 0.05})
    assert.equal(fds, R.sig.nfds())
  end)

  it("misuse raises as capture's own error; stdout cannot be given, nor stdin with input",
     function()
    local bad = H.badarg(2, "capture")
    local function raises(pat, ...) assert.matches(pat, H.raises(hpass.capture, ...)) end
    raises(H.badarg(1, "capture"), "true")
    raises(bad .. " %(table expected, got string%)", {"true"}, "x")
    raises(bad .. " %(option 'input' must be a string", {"true"}, {input = 1})
    raises(bad .. " %(option 'timeout' must be a non%-negative number", {"true"}, {timeout = -1})
    raises(bad .. " %(option 'timeout'", {"true"}, {timeout = 0 / 0})
    raises(bad .. " %(option 'timeout'", {"true"}, {timeout = "1"})
    for _, v in ipairs({-1, 1.5, 0 / 0, "10", true}) do
      raises(bad .. " %(option 'max_output' must be a non%-negative integer or math.huge%)",
             {"true"}, {max_output = v})
    end
    raises(bad .. " %(option 'stdout' is what capture takes", {"true"}, {stdout = 1})
    raises(bad .. " %(options 'input' and 'stdin' together", {"true"}, {input = "", stdin = 0})
    raises(bad .. " %(unknown option 'bogus'%)", {"true"}, {bogus = 1})
    raises(bad .. " %(option 'handles': handles must be an array", {"true"}, {handles = {a = 1}})
    raises("bad argument #3 to 'capture' %(no value expected%)", {"true"}, {}, 1)
  end)
end)


describe("Standard streams by name:", function()
  after_each(H.cleanup)

  it("stdin, stdout or stderr may be 'null', the null device, in spawn_with_handle, "
     .. "capture and run", function()
    local p, out = H.start({"sh", "-c", "cat; echo done; echo e >&2"}, {},
                           {stdin = "null", stderr = "null"})
    assert.is_true((p:wait()))
    assert.equal("done\n", H.readfile(out))
    assert.same({true, "exit", 0},
                {hpass.run({"sh", "-c", "echo x; test -c /dev/stdout"}, {}, {stdout = "null"})})
    assert.same({"", nil, true, "exit", 0},
                {hpass.capture({"sh", "-c", "cat; echo e >&2"}, {stdin = "null",
                                                                 stderr = "null"})})
  end)

  it("stderr 'stdout' goes wherever the child's standard output goes: redirected", function()
    local out = H.tmpname()
    local p = assert(hpass.spawn_with_handle({"sh", "-c", "echo a; echo b >&2"}, {},
                                             {stdout = assert(io.open(out, "w")),
                                              stderr = "stdout"}))
    assert.is_true((p:wait()))
    assert.equal("a\nb\n", H.readfile(out))
  end)

  it("stderr 'stdout' goes wherever the child's standard output goes: inherited", function()
    -- a Lua child whose output is captured starts sh with only stderr =
    -- "stdout": sh's error output joins the Lua child's own output
    local script = H.script([[
      local hpass = require "hpass"
      io.stdout:setvbuf("no")
      assert(hpass.run({"sh", "-c", "echo a; echo b >&2"}, {}, {stderr = "stdout"}))]])
    assert.same({"a\nb\n", "", true, "exit", 0}, {hpass.capture({H.lua, script})})
  end)

  it("other names raise", function()
    local bad = H.badarg(3, "spawn_with_handle")
    assert.matches(bad .. " %(option 'stdout': 'stdout' names no stream",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {stdout = "stdout"}))
    assert.matches("option 'stdin': 'nul' names no stream",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {stdin = "nul"}))
  end)
end)
