-- Bytes and lines on handles: read, write and lines with io's formats,
-- on pipes, socketpairs and non-blocking LuaSocket connections, mixed with
-- integers, across buffer boundaries, with timeouts.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"

local ETIMEDOUT = R.ETIMEDOUT

local function pack(...) return {n = select("#", ...), ...} end

-- A writer child: sh -c SCRIPT with its stdout on w; returns the process.
local function writer(script, w)
  local p = assert(hpass.spawn_with_handle({"sh", "-c", script}, {}, {stdout = w}))
  w:close()
  return p
end

describe("read, write and lines", function()
  after_each(H.cleanup)

  it("read io's formats, and give fail at the end", function()
    local r, w = hpass.pipe()
    assert.equal(w, w:write("one\n", "two\n", 3, "\n", 4.5, "\nrest"))
    w:close()
    assert.same({"one", "two\n"}, {r:read("l", "L")})
    assert.equal("3", r:read("*l"))             -- the 5.1 spelling
    assert.equal("4.5", r:read("l"))
    assert.equal("re", r:read(2))
    assert.equal("st", r:read(10))              -- fewer at the end
    assert.is_nil(r:read(1))
    assert.is_nil(r:read("l"))
    assert.equal("", r:read("a"))
    assert.is_nil(r:read(0))
    r:close()
  end)

  it("stop at the first format that finds the end", function()
    local r, w = hpass.pipe()
    w:write("only\n"); w:close()
    local res = pack(r:read("l", "l", "l"))
    assert.equal(2, res.n)                   -- "only", then nil, and no more
    assert.equal("only", res[1]); assert.is_nil(res[2])
    r:close()
  end)

  it("mix with integers on one stream, in order, buffered or not", function()
    for _, mode in ipairs({"no", "full"}) do
      local r, w = hpass.pipe()
      r:setvbuf(mode, 16); w:setvbuf(mode, 16)
      assert(w:write("head\n"))
      assert(w:write_int(42))
      assert(w:write_ints({1, 2, 3}))
      assert(w:write("tail line\nlast"))
      w:close()
      assert.equal("head", r:read("l"))
      assert.equal(42, r:read_int())
      assert.same({1, 2, 3}, r:read_ints(3))
      assert.equal("tail line", r:read("l"))
      assert.equal("last", r:read("l"))          -- no newline at the end
      assert.is_nil(r:read("l"))
      r:close()
    end
  end)

  it("read lines far longer than the buffer, and a last line without newline", function()
    local r, w = hpass.pipe()
    local p = writer('head -c 300000 /dev/zero | tr "\\0" a; printf "\\nb\\n\\nc"', w)
    local lines = {}
    for l in r:lines() do lines[#lines + 1] = l end
    assert.equal(4, #lines)
    assert.equal(string.rep("a", 300000), lines[1])
    assert.same({"b", "", "c"}, {lines[2], lines[3], lines[4]})
    assert.is_true((p:wait()))
    r:close()
  end)

  it("lines takes formats, and keeps the handle open at the end", function()
    local r, w = hpass.pipe()
    w:write("abcdefg"); w:close()
    local got = {}
    for a, b in r:lines(2, 1) do got[#got + 1] = a .. "|" .. tostring(b) end
    assert.same({"ab|c", "de|f", "g|nil"}, got)
    assert.equal("handle", hpass.type(r))
    r:close()
  end)

  -- 128 MiB (less where the suite runs under valgrind: HPASS_BIG_MIB)
  local big = R.knob("HPASS_BIG_MIB", 128) * 1048576
  it(("read everything: %d MiB in one read('a')"):format(math.floor(big / 1048576)), function()
    local r, w = hpass.pipe()
    local p = writer("head -c " .. big .. " /dev/zero", w)
    local s = r:read("a")
    assert.equal(big, #s)
    assert.is_true(s:find("[^%z]") == nil)
    s = nil  -- luacheck: ignore s
    collectgarbage()
    assert.is_true((p:wait()))
    r:close()
  end)

  it("work on socketpairs and on a LuaSocket connection passed with recv_handle", function()
    local a, b = hpass.socketpair()
    assert(a:write("over a socketpair\n"))
    assert.equal("over a socketpair", b:read("l"))
    -- a non-blocking TCP connection, handed over as a worker gets one
    local client, conn = H.tcppair()
    client:settimeout(0)
    assert.is_true(hpass.send_handle(a, conn))
    conn:close()
    local h = assert(hpass.recv_handle(b))
    local p = assert(hpass.spawn_with_handle(
      {"sh", "-c", 'sleep 0.2; printf "late line\\n"; sleep 0.2; printf "and more"'}, {},
      {stdout = h}))
    -- the handle shares the connection: write through client, read from h
    assert.is_true((p:wait()))
    client:send("from the client\n")
    assert.equal("from the client", h:read("l"))   -- waits despite O_NONBLOCK
    assert(h:write("reply\n"))
    client:settimeout(5)
    assert.equal("late line", client:receive("*l"))
    assert.equal("and more", client:receive(8))
    assert.equal("reply", client:receive("*l"))
    client:close(); h:close(); a:close(); b:close()
  end)

  it("read lines from descriptors and files without taking more than the line", function()
    local r, w = hpass.pipe()
    w:write("first\nsecond\n"); w:close()
    local fd = r:fileno()
    assert.equal("first", hpass.read(fd, "l"))
    -- nothing past the line was taken: the handle reads on from there
    assert.equal("second", r:read("l"))
    r:close()
  end)

  it("read counts and everything from a descriptor number, and from a Lua file", function()
    local r, w = hpass.pipe()
    w:write("abcdef", string.rep("z", 50000)); w:close()    -- fits the pipe
    local fd = r:fileno()
    assert.equal("abc", hpass.read(fd, 3))
    assert.equal(50003, #hpass.read(fd, "a"))
    assert.is_nil(hpass.read(fd, 1))
    r:close()
    local r2, w2 = hpass.pipe()
    w2:write("one\ntwo\n"); w2:close()
    local f = assert(r2:tofile("rb"))
    assert.equal("one", f:read("*l"))       -- stdio read "two\n" ahead
    assert.equal("two", hpass.read(f, "l"))  -- hpass takes it from there
    assert.is_nil(hpass.read(f, "l"))
    f:close()
  end)

  it("keep what a timeout cut short", function()
    local r, w = hpass.pipe()
    r:settimeout(0.1)
    assert(w:write("partial"))
    assert.same({nil, "timeout", ETIMEDOUT}, {r:read("l")})
    assert.same({nil, "timeout", ETIMEDOUT}, {r:read(10)})
    assert.same({nil, "timeout", ETIMEDOUT}, {r:read("a")})
    assert(w:write(" line\nmore"))
    assert.equal("partial line", r:read("l"))
    w:close()
    assert.equal("more", r:read("a"))
    r:close()
  end)

  it("write reports what went before a timeout", function()
    local r, w = hpass.pipe()
    w:settimeout(0.1)
    local huge = string.rep("z", 1048576)
    local ok, msg, code, sent = w:write(huge)
    assert.same({nil, "timeout", ETIMEDOUT}, {ok, msg, code})
    assert.is_true(sent > 0 and sent < #huge, tostring(sent))
    w:close()
    assert.equal(sent, #r:read("a"))
    r:close()
  end)

  it("write gives EPIPE, not SIGPIPE, when the reader has gone", function()
    local r, w = hpass.pipe()
    r:close()
    local ok, _, code = w:write("x")
    assert.is_nil(ok); assert.equal(R.EPIPE, code)
    w:close()
  end)

  it("a handle holding a line's look-ahead is not passed on", function()
    local r, w = hpass.pipe()
    w:write("one\ntwo\n")
    assert.equal("one", r:read("l"))
    assert.matches("unread buffered input", H.raises(hpass.spawn_with_handle, {"true"}, r))
    assert.equal("two", r:read("l"))
    -- consumed: it may go now
    local p = assert(hpass.spawn_with_handle({"true"}, r))
    assert.is_true((p:wait()))
    r:close(); w:close()
  end)

  it("refuse bad formats and arguments", function()
    local r, w = hpass.pipe()
    assert.matches("invalid format", H.raises(r.read, r, "x"))
    assert.matches("invalid format", H.raises(r.read, r, "n"))
    assert.matches("count must not be negative", H.raises(r.read, r, -1))
    assert.matches("string expected", H.raises(w.write, w, {}))
    assert.matches("count 0 needs an hpass handle", H.raises(hpass.read, r:fileno(), 0))
    r:close()
    assert.matches("closed handle", H.raises(r.read, r))
    assert.matches("closed handle", H.raises(r.lines, r))
    w:close()
  end)
end)
