-- The manual's "Bytes and lines", promise by promise: read, write and
-- lines with io's formats, on pipes, socketpairs and non-blocking LuaSocket
-- connections, in every handle form, mixed with integers, across buffer
-- boundaries, with timeouts, and the look-ahead of line reads.  Each test
-- is named after the sentence it checks.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"

local ETIMEDOUT = R.ETIMEDOUT

local function pack(...) return {n = select("#", ...), ...} end
local unpack = table.unpack or unpack  -- luacheck: compat

-- A writer child: sh -c SCRIPT with its stdout on w; returns the process.
local function writer(script, w)
  local p = assert(hpass.spawn_with_handle({"sh", "-c", script}, {}, {stdout = w}))
  w:close()
  return p
end

describe("Bytes and lines", function()
  after_each(H.cleanup)

  it("read: \"l\" a line without its end, \"L\" with it, \"a\" everything, n up to n " ..
     "bytes, the 5.1 spellings too; nil at the end, \"a\" gives \"\" there, read(0) " ..
     "is \"\" or nil at the end", function()
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

  it("at the end of the stream a format gives nil and the formats after it give " ..
     "nothing, as in io", function()
    local r, w = hpass.pipe()
    w:write("only\n"); w:close()
    local res = pack(r:read("l", "l", "l"))
    assert.equal(2, res.n)                   -- "only", then nil, and no more
    assert.equal("only", res[1]); assert.is_nil(res[2])
    r:close()
  end)

  it("bytes share the handle's buffer with the integer calls: bytes and integers " ..
     "mix on one stream, in order, buffered or not", function()
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

  it("lines reads until the end of the stream: lines far longer than the buffer, " ..
     "and a last line without newline", function()
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

  it("lines reads with the formats, and the handle stays open at the end", function()
    local r, w = hpass.pipe()
    w:write("abcdefg"); w:close()
    local got = {}
    for a, b in r:lines(2, 1) do got[#got + 1] = a .. "|" .. tostring(b) end
    assert.same({"ab|c", "de|f", "g|nil"}, got)
    assert.equal("handle", hpass.type(r))
    r:close()
  end)

  -- 32 MiB, far past any buffer (less under valgrind: HPASS_BIG_MIB is four
  -- times this)
  local big = math.floor(R.knob("HPASS_BIG_MIB", 128) / 4 * 1048576)
  it(("\"a\" reads everything up to the end of the stream: %d MiB in one read"):format(
       math.floor(big / 1048576)), function()
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

  it("these calls wait on non-blocking descriptors: a socketpair, and a LuaSocket " ..
     "connection passed with recv_handle", function()
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

  it("look-ahead: lines are read from a descriptor number a byte at a time, so " ..
     "nothing past the line is taken from the descriptor", function()
    local r, w = hpass.pipe()
    w:write("first\nsecond\n"); w:close()
    local fd = r:fileno()
    assert.equal("first", hpass.read(fd, "l"))
    -- nothing past the line was taken: the handle reads on from there
    assert.equal("second", r:read("l"))
    r:close()
  end)

  it("hpass.read works on a descriptor number and on a Lua file, whose read-ahead " ..
     "comes first", function()
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

  it("on a timeout: nil, \"timeout\", code, and what the read had taken stays in " ..
     "the handle for the next read", function()
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

  -- Formats and what the stream holds: every format but the last can be
  -- met, the last waits for more.
  local cut_short = {
    {{"l", "l"}, "first\nsec"},
    {{"L", "L"}, "first\nsec"},
    {{"l", 10}, "first\nabc"},
    {{5, "l"}, "abcdefg"},
    {{"l", "a"}, "x\nyz"},
    {{2, 2, 2, "L"}, "abcdefgh"},
    {{"l", 0, "l"}, "a\nb"},
    {{"L", "l", "L", 3, "l"}, "1\n2\n3\n456789"},
    {{1, 1, 1, 1, "a"}, "four and more"},
  }

  it("on a timeout, everything a multi-format read had taken stays in the handle, " ..
     "in order, for the next read (every form with a buffer: pipe, socketpair, " ..
     "buffered or not, timeout 0 or not)", function()
    for _, pair in ipairs({hpass.pipe, hpass.socketpair}) do
      for _, mode in ipairs({"no", "full"}) do
        for _, secs in ipairs({0, 0.01}) do
          for _, case in ipairs(cut_short) do
            local formats, data = case[1], case[2]
            local r, w = pair()
            r:setvbuf(mode)
            r:settimeout(secs)
            assert(w:write(data))
            local what = mode .. " " .. table.concat(formats, ",")
            assert.same({nil, "timeout", ETIMEDOUT}, {r:read(unpack(formats))}, what)
            assert(w:write("!"))
            w:close()
            assert.equal(data .. "!", r:read("a"), what)
            r:close()
          end
        end
      end
    end
  end)

  -- A socket whose peer closed with input it never read: a read past the
  -- data there fails with ECONNRESET.
  local function reset_after(data)
    local a, b = hpass.socketpair()
    assert(b:write(data))
    assert(a:write("never read by b"))
    b:close()
    return a
  end

  it("on an error: nil, msg, errno; on an hpass handle a read that fails takes " ..
     "nothing, and the other forms lose what the call had read before it", function()
    local ECONNRESET = R.ECONNRESET
    local a = reset_after("first\nsecond")
    assert.same({nil, "Connection reset by peer", ECONNRESET}, {a:read("l", "l", "l")})
    assert.equal("first", a:read("l"))                 -- it stayed in the handle
    assert.equal("second", a:read("a"))
    a:close()
    a = reset_after("first\nsecond")
    local fd = a:fileno()
    assert.same({nil, "Connection reset by peer", ECONNRESET},
                {hpass.read(fd, "l", "l", "l")})
    assert.is_nil(hpass.read(fd, "l"))                 -- gone with the failed call
    a:close()
  end)

  it("lines: an error raises, as io.lines does, and a timeout loses nothing: what " ..
     "the failed call had taken stays in the handle", function()
    for _, mode in ipairs({"no", "full"}) do
      local r, w = hpass.socketpair()
      r:setvbuf(mode)
      r:settimeout(0)
      assert(w:write("a\nb\nc\nd"))
      local got = {}
      local ok, err = pcall(function()
        for x, y in r:lines("l", "l") do got[#got + 1] = x .. "|" .. y end
      end)
      assert.is_false(ok)
      assert.matches("timeout", err)
      assert.same({"a|b"}, got)             -- "c" was read, then "d" timed out
      assert.equal("c", r:read("l"))
      ok, err = pcall(function() for _ in r:lines() do end end)
      assert.is_false(ok)
      assert.matches("timeout", err)
      w:close()
      assert.equal("d", r:read("a"))
      r:close()
    end
  end)

  it("hpass.read, hpass.write and hpass.lines: the same for every handle form " ..
     "(hpass handle, number, Lua file, getfd() object)", function()
    local forms = {
      handle = function(h) return h end,
      number = function(h) return h:fileno() end,
      file = function(h, mode) return assert(hpass.handle(h:detach()):tofile(mode)) end,
      getfd = function(h) return {getfd = function() return h:fileno() end} end,
    }
    for name, form in pairs(forms) do
      local r, w = hpass.pipe()
      local wf = form(w, "wb")
      assert.equal(wf, hpass.write(wf, "one\n", 2, "\n", 3.5, "\nthree\nfour"))
      if io.type(wf) == "file" then wf:close() elseif name ~= "number" and name ~= "getfd"
        then hpass.close(wf) end
      if name == "number" or name == "getfd" then w:close() end
      local rf = form(r, "rb")
      assert.equal("one", hpass.read(rf, "l"), name)
      assert.same({"2\n", "3.5"}, {hpass.read(rf, "L", "l")}, name)
      local rest = {}
      for l in hpass.lines(rf) do rest[#rest + 1] = l end
      assert.same({"three", "four"}, rest, name)
      assert.is_nil(hpass.read(rf, "l"), name)
      if io.type(rf) == "file" then rf:close() else r:close() end
    end
  end)

  it("write returns nil, msg, errno, k where k bytes of this call went out", function()
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

  it("write: no SIGPIPE, a reader that has gone gives EPIPE", function()
    local r, w = hpass.pipe()
    r:close()
    local ok, _, code = w:write("x")
    assert.is_nil(ok); assert.equal(R.EPIPE, code)
    w:close()
  end)

  it("look-ahead: what a line read took past the line is unread input, which " ..
     "spawn_with_handle, send_handle, setvbuf, tofile and detach refuse until read",
     function()
    for _, pair in ipairs({hpass.pipe, hpass.socketpair}) do
      for _, mode in ipairs({"no", "full"}) do
        local r, w = pair()
        r:setvbuf(mode)
        w:write("one\ntwo\n")
        assert.equal("one", r:read("l"))
        local a, b = hpass.socketpair()
        for _, refuse in ipairs({
          function() return hpass.spawn_with_handle({"true"}, r) end,
          function() return hpass.send_handle(a, r) end,
          function() return r:setvbuf(mode == "no" and "full" or "no") end,
          function() return r:tofile("rb") end,
          function() return r:detach() end,
        }) do
          assert.matches("unread", H.raises(refuse))
        end
        assert.equal("two", r:read("l"))
        -- consumed: it may go now
        local p = assert(hpass.spawn_with_handle({"true"}, r))
        assert.is_true((p:wait()))
        assert.is_true(hpass.send_handle(a, r))
        hpass.recv_handle(b):close()
        a:close(); b:close(); r:close(); w:close()
      end
    end
  end)

  it("look-ahead: an unbuffered handle takes no more than a read returns, but for " ..
     "a line's end and the one byte read(0) takes", function()
    for _, pair in ipairs({hpass.pipe, hpass.socketpair}) do
      local r, w = pair()
      local fd = r:fileno()
      assert(w:write("abcdefghijklmnopqrstuvwxyz"))
      assert.equal("abcd", r:read(4))
      -- nothing else was taken: the handle may go to a child, and the
      -- descriptor itself holds the rest
      local p = assert(hpass.spawn_with_handle({"true"}, r))
      assert.is_true((p:wait()))
      assert.same({"efg", "hi"}, {r:read(3, 2)})
      assert.equal("j", hpass.read(fd, 1))
      assert.equal("", r:read(0))               -- took "k", kept in the handle
      assert.matches("unread", H.raises(hpass.spawn_with_handle, {"true"}, r))
      assert.equal("l", hpass.read(fd, 1))      -- the descriptor is past it
      assert.equal("km", r:read(2))
      assert.equal("nop", hpass.read(fd, 3))
      -- a line read looks past the line, and keeps what it took
      assert(w:write("\nrest"))
      assert.equal("qrstuvwxyz", r:read("l"))
      assert.matches("unread", H.raises(hpass.spawn_with_handle, {"true"}, r))
      w:close()
      assert.equal("rest", r:read("a"))       -- "a" takes all, returns all
      assert.is_nil(hpass.read(fd, 1))
      r:close()
    end
  end)

  it("\"n\" and other formats raise, as do negative counts and non-strings", function()
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
