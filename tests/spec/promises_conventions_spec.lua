-- The manual's Conventions, promise by promise: the handle-argument forms
-- and Lua code in the middle of a call.  Each test is named after the
-- sentence it checks.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"

local unpack = table.unpack or unpack  -- luacheck: compat
local loadstring = loadstring or load  -- luacheck: compat

local EBADF, EPIPE = 9, 32

-- The cases of tests/child/midcall.lua, each a call that takes a Lua file
-- (or, for the calls that take only hpass handles, a handle).
local FILE_READS = {"read_l", "read_L", "read_count", "read_all", "read_formats",
                    "lines", "lines_formats", "read_int", "read_ints"}
local FILE_OTHERS = {"write_int", "write_ints", "write", "select", "spawn",
                     "spawn_stdio", "capture", "capture_stderr", "send_handle",
                     "send_channel", "recv_channel", "communicate", "pipeline"}
local HANDLE_ONLY = {"tofile", "detach", "flush", "setvbuf", "select_handle"}

-- Runs the midcall child on the cases; its counts by case.
local function midcall(cases)
  local argv = {H.lua, H.child("midcall")}
  for _, c in ipairs(cases) do argv[#argv + 1] = c end
  local out, ok, how, code = H.capture(argv)
  assert.same({true, "exit", 0}, {ok, how, code}, out)
  local counts = {}
  for name, a, b, c, d in out:gmatch("(%S+) (%d+) (%d+) (%d+) (%d+)\n") do
    counts[name] = {ok = tonumber(a), before = tonumber(b), during = tonumber(c),
                    other = tonumber(d)}
  end
  for _, c in ipairs(cases) do assert.is_table(counts[c], "no result for " .. c) end
  return counts
end

describe("Conventions: results and errors", function()
  after_each(H.cleanup)

  -- ASan reserves more address space than any such limit, and qemu-user
  -- needs its own: the limit cannot be set there
  local nolimit = R.sanitizer == "asan" or os.getenv("HPASS_EXPECT_QEMU")
  if nolimit then
    pending("running out of memory raises Lua's own memory error (no address-space "
            .. "limit under ASan or qemu-user)")
  else
    it("running out of memory raises Lua's own memory error, also for a handle's "
       .. "buffers, which live outside the collector", function()
      -- a memory error calls no message handler: its message comes as it is
      local script = H.script([[
local hpass = require "hpass"
local r, w = hpass.pipe()
local ok, msg = xpcall(function() return w:setvbuf("full", 2^30) end,
                       function(m) return "handler: " .. tostring(m) end)
io.write(tostring(ok), "|", tostring(msg), "|", tostring(w:setvbuf("full", 4096)))
r:close(); w:close()
]])
      local out, ok, how, code = H.capture({"sh", "-c", 'ulimit -v 400000 && exec "$0" "$1"',
                                            H.lua, script})
      assert.same({true, "exit", 0}, {ok, how, code}, out)
      assert.equal("false|not enough memory|true", out)
    end)
  end
end)

describe("Conventions: Lua code in the middle of a call", function()
  after_each(H.cleanup)

  it("finalizers that the collector runs during a call cannot reach what the call is " ..
     "using: a Lua file a finalizer closes at any point of any call is reported, " ..
     "never used", function()
    local cases = {}
    for _, list in ipairs({FILE_READS, FILE_OTHERS, HANDLE_ONLY}) do
      for _, c in ipairs(list) do cases[#cases + 1] = c end
    end
    local counts = midcall(cases)
    local during = 0
    for _, c in ipairs(cases) do
      -- the right result, or the close reported: nothing else
      assert.equal(0, counts[c].other, c)
      assert.is_true(counts[c].ok >= 1, c)
    end
    for _, c in ipairs(FILE_READS) do during = during + counts[c].during end
    -- the reads allocate as they go: some finalizers ran inside them
    assert.is_true(during > 0, "no finalizer ran inside a read")
  end)
end)


describe("Conventions: results and errors", function()
  after_each(H.cleanup)

  it("misuse raises 'bad argument #N to name (...)': a wrong type, a bad option, a " ..
     "value out of range, a closed handle", function()
    local r, w = hpass.pipe()
    assert.matches(H.badarg(2, "write_int") .. " %(number expected, got string%)",
                   H.raises(hpass.write_int, w, "1"))
    assert.matches(H.badarg(2, "setvbuf") .. " %(invalid option 'line'%)",
                   H.raises(hpass.setvbuf, w, "line"))
    assert.matches(H.badarg(2, "write_int") .. " %(integer out of 32%-bit range%)",
                   H.raises(hpass.write_int, w, 2^31))
    r:close()
    assert.matches(H.badarg(1, "read") .. " %(attempt to use a closed handle%)",
                   H.raises(hpass.read, r))
    assert.matches("attempt to use a closed handle", H.raises(r.read_int, r))
    w:close()
  end)

  it("a closed handle is misuse: every function that takes a handle names itself " ..
     "and the argument; a method call's bad self reads 'calling name on bad self'",
     function()
    local r, w = hpass.pipe()
    r:close()
    local args = {settimeout = {1}, setvbuf = {"no"}, write = {"x"}, write_int = {1},
                  write_ints = {{1}}, read = {1}}
    for _, name in ipairs{"read", "read_int", "read_ints", "lines", "write",
                          "write_int", "write_ints", "settimeout", "timeout",
                          "fileno", "flush", "setvbuf", "tofile", "detach", "events",
                          "pollfd"} do
      local extra = args[name] or {}
      assert.matches(H.badarg(1, name) .. " %(attempt to use a closed handle%)",
                     H.raises(hpass[name], r, unpack(extra)), name)
      if r[name] then
        -- a method call, not a tail call: LuaJIT counts self in a tail call
        local method = loadstring("local o = ... local res = o:" .. name .. "() return res")
        assert.matches("calling '" .. name .. "' on bad self %(attempt to use a closed " ..
                       "handle%)", H.raises(method, r), name)
      end
    end
    local s = hpass.signals{"USR1"}
    s:close()
    for _, name in ipairs{"getfd", "pollfd", "fileno", "read_signal"} do
      assert.matches(H.badarg(1, name) .. " %(attempt to use a closed handle%)",
                     H.raises(s[name], s), name)
    end
    w:close()
  end)

  it("an OS failure returns nil, message, errno", function()
    local r, w = hpass.pipe()
    r:close()
    assert.same({nil, "Broken pipe", EPIPE}, {hpass.write_int(w, 1)})
    local fd = w:detach()
    R.sig.rawclose(fd)
    local ok, msg, code = hpass.read_int(fd)        -- no longer open
    assert.same({nil, EBADF}, {ok, code})
    assert.is_string(msg)
  end)

  it("arguments a function does not take raise 'no value expected'", function()
    local r, w = hpass.pipe()
    assert.matches(H.badarg(2, "read_int") .. " %(no value expected%)",
                   H.raises(hpass.read_int, r, 5))
    assert.matches(H.badarg(3, "write_int") .. " %(no value expected%)",
                   H.raises(hpass.write_int, w, 1, 2))
    assert.matches(H.badarg(2, "type") .. " %(no value expected%)",
                   H.raises(hpass.type, 1, 2))
    assert.matches(H.badarg(2, "type") .. " %(no value expected%)",
                   H.raises(hpass.type, r, "extra"))
    r:close(); w:close()
  end)
end)


describe("Conventions: the forms of a handle argument", function()
  after_each(H.cleanup)

  it("a Lua file: its output buffer is flushed before hpass writes to the descriptor, " ..
     "so the stream keeps the order of the writes", function()
    local r, w = hpass.pipe()
    local f = assert(w:tofile("wb"))
    f:setvbuf("full")
    f:write("before\n")                       -- held in f's buffer
    assert.is_true(hpass.write_int(f, 7))
    assert.equal(f, hpass.write(f, "after\n"))
    f:write("last\n")
    f:close()
    assert.equal("before", r:read("l"))
    assert.equal(7, r:read_int())
    assert.same({"after", "last"}, {r:read("l", "l")})
    r:close()
  end)

  it("a Lua file: input it has read ahead comes first in read_int, read_ints and " ..
     "read, as f:read would give it", function()
    local r, w = hpass.pipe()
    assert.is_true(w:write_ints({1, 2, 3, 4, 5}))
    assert(w:write("tail\n"))
    w:close()
    local f = assert(r:tofile("rb"))
    assert.equal(4, #f:read(4))              -- stdio read the rest ahead
    assert.equal(2, hpass.read_int(f))
    assert.same({3, 4}, hpass.read_ints(f, 2))
    assert.equal(5, hpass.read_int(f))
    assert.equal("tail", hpass.read(f, "l"))
    f:close()
  end)

  it("a Lua file that leaves this process: a flush gives its read-ahead back to a " ..
     "seekable file, and input that still waits in a pipe raises", function()
    local name = H.tmpname()
    local f = assert(io.open(name, "wb"))
    f:write("one\ntwo\nthree\n")
    f:close()
    f = assert(io.open(name, "rb"))
    assert.equal("one", f:read("*l"))         -- stdio read it all ahead
    local out, _, ok = hpass.capture({"cat"}, {stdin = f})
    assert.is_true(ok)
    assert.equal("two\nthree\n", out)     -- from where f stood
    f:close()
    local r, w = hpass.pipe()
    w:write("a\nb\n"); w:close()
    local p = assert(r:tofile("rb"))
    assert.equal("a", p:read("*l"))
    assert.matches("file has unread buffered input",
                   H.raises(hpass.spawn_with_handle, {"true"}, p))
    local a, b = hpass.socketpair()
    assert.matches("file has unread buffered input", H.raises(hpass.send_handle, a, p))
    a:close(); b:close(); p:close()
  end)

  it("an object with getfd(): found without running Lua code, in the object or " ..
     "through the __index tables of its metatables; integral floats are accepted; " ..
     "each getfd() runs once", function()
    local r, w = hpass.pipe()
    local calls = 0
    local function getfd() calls = calls + 1; return r:fileno() + 0.0 end
    local direct = {getfd = getfd}
    local class = setmetatable({}, {__index = setmetatable({}, {__index = {getfd = getfd}})})
    local ran = false
    local hidden = setmetatable({}, {__index = function() ran = true; return getfd end})
    for _, obj in ipairs({direct, class}) do
      calls = 0
      assert.is_true(w:write_int(9))
      assert.equal(9, hpass.read_int(obj))
      assert.equal(1, calls)
    end
    assert.matches(H.badarg(1, "read_int"), H.raises(hpass.read_int, hidden))
    assert.is_false(ran)                      -- an __index function is not run
    local half = {getfd = function() return r:fileno() + 0.5 end}
    assert.matches("getfd%(%) did not return a descriptor number",
                   H.raises(hpass.read_int, half))
    r:close(); w:close()
  end)
end)

