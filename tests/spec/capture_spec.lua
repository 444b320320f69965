-- hpass.capture: a child's output and error as strings, its input fed,
-- with no deadlock whatever the sizes, and timeouts; "null" and "stdout"
-- as standard streams.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"
local socket = require "socket"

local function pack(...) return {n = select("#", ...), ...} end

describe("capture", function()
  after_each(H.cleanup)

  it("returns output, error and the wait triple", function()
    assert.same({"out\n", "err\n", nil, "exit", 3},
                {hpass.capture({"sh", "-c", "echo out; echo err >&2; exit 3"})})
    assert.same({"", "", true, "exit", 0}, {hpass.capture({"true"})})
  end)

  it("feeds input, then closes it", function()
    assert.same({"fed\n", "", true, "exit", 0},
                {hpass.capture({"cat"}, {input = "fed\n"})})
    assert.same({"0\n", "", true, "exit", 0},
                {hpass.capture({"wc", "-c"}, {input = ""})})
  end)

  it("keeps every byte value, zeros included", function()
    local t = {}
    for i = 0, 255 do t[#t + 1] = string.char(i) end
    local all = table.concat(t):rep(1000)
    local out, err, ok = hpass.capture({"cat"}, {input = all})
    assert.is_true(ok); assert.equal("", err)
    assert.is_true(out == all, "bytes differ")
  end)

  -- 64 MiB (less under valgrind: HPASS_BIG_MIB is twice this)
  local mib = math.floor(R.knob("HPASS_BIG_MIB", 128) / 2)
  it(("moves %d MiB on each stream at once without deadlock"):format(mib), function()
    local input = string.rep("0123456789abcdef", mib * 65536)
    local t0 = socket.gettime()
    local out, err, ok = hpass.capture({"sh", "-c", "tee /dev/stderr"}, {input = input})
    assert.is_true(ok)
    assert.equal(#input, #out); assert.equal(#input, #err)
    assert.is_true(out == input and err == input, "data differ")
    assert.is_true(socket.gettime() - t0 < 60)
  end)

  it("does not fail when the child exits without reading its input", function()
    local input = string.rep("x", 8 * 1048576)
    assert.same({"", "", true, "exit", 0}, {hpass.capture({"true"}, {input = input})})
    assert.same({"xx", "", true, "exit", 0},
                {hpass.capture({"head", "-c", "2"}, {input = input})})
  end)

  it("kills the child when the time runs out and returns what came", function()
    local t0 = socket.gettime()
    local res = pack(hpass.capture({"sh", "-c", "echo partial; echo e >&2; exec sleep 30"},
                                   {timeout = 0.5}))
    local secs = socket.gettime() - t0
    assert.same({n = 5, "partial\n", "e\n", nil, "timeout", 0.5}, res)
    assert.is_true(secs >= 0.49 and secs < 3, "took " .. secs)
    local _, zombies = R.sig.children()
    assert.equal(0, zombies)
  end)

  it("returns nil, message, errno when the program cannot start", function()
    local ok, msg, code = hpass.capture({"/nonexistent/program"})
    assert.is_nil(ok); assert.matches("/nonexistent/program", msg); assert.equal(R.ENOENT, code)
  end)

  it("merges stderr into stdout, or drops it, and then returns err as nil", function()
    assert.same({"a\nb\nc\n", nil, true, "exit", 0},
                {hpass.capture({"sh", "-c", "echo a; echo b >&2; echo c"},
                               {stderr = "stdout"})})
    assert.same({"a\n", nil, true, "exit", 0},
                {hpass.capture({"sh", "-c", "echo a; echo b >&2"}, {stderr = "null"})})
    assert.same({"", "", true, "exit", 0},
                {hpass.capture({"cat"}, {stdin = "null"})})
  end)

  it("takes spawn_with_handle's options and handles", function()
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

  it("raises for misuse, naming capture", function()
    local bad = H.badarg(2, "capture")
    local function raises(pat, ...) assert.matches(pat, H.raises(hpass.capture, ...)) end
    raises(H.badarg(1, "capture"), "true")
    raises(bad .. " %(table expected, got string%)", {"true"}, "x")
    raises(bad .. " %(option 'input' must be a string", {"true"}, {input = 1})
    raises(bad .. " %(option 'timeout' must be a non%-negative number", {"true"}, {timeout = -1})
    raises(bad .. " %(option 'timeout'", {"true"}, {timeout = 0 / 0})
    raises(bad .. " %(option 'stdout' is what capture takes", {"true"}, {stdout = 1})
    raises(bad .. " %(options 'input' and 'stdin' together", {"true"}, {input = "", stdin = 0})
    raises(bad .. " %(unknown option 'bogus'%)", {"true"}, {bogus = 1})
    raises(bad .. " %(option 'handles': handles must be an array", {"true"}, {handles = {a = 1}})
    raises("bad argument #3 to 'capture' %(no value expected%)", {"true"}, {}, 1)
  end)
end)


describe("standard streams by name", function()
  after_each(H.cleanup)

  it("'null' is the null device for any stream", function()
    local p, out = H.start({"sh", "-c", "cat; echo done; echo e >&2"}, {},
                           {stdin = "null", stderr = "null"})
    assert.is_true((p:wait()))
    assert.equal("done\n", H.readfile(out))
  end)

  it("stderr 'stdout' follows stdout, redirected or inherited", function()
    local out = H.tmpname()
    local p = assert(hpass.spawn_with_handle({"sh", "-c", "echo a; echo b >&2"}, {},
                                             {stdout = assert(io.open(out, "w")),
                                              stderr = "stdout"}))
    assert.is_true((p:wait()))
    assert.equal("a\nb\n", H.readfile(out))
  end)

  it("other names raise", function()
    local bad = H.badarg(3, "spawn_with_handle")
    assert.matches(bad .. " %(option 'stdout': 'stdout' names no stream",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {stdout = "stdout"}))
    assert.matches("option 'stdin': 'nul' names no stream",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {stdin = "nul"}))
  end)
end)
