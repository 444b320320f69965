-- The manual's "Buffering", promise by promise: unbuffered handles,
-- setvbuf, flush, when buffered output goes out, and what a flush that
-- runs out of time leaves in the stream.  Each test is named after the
-- sentence it checks.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"

local ETIMEDOUT = R.ETIMEDOUT

local function sum(t) local s = 0 for i = 1, #t do s = s + t[i] end return s end

describe("Buffering", function()
  after_each(H.cleanup)

  it("buffered output goes out on flush, when the buffer is full, and on close", function()
    local r, w = hpass.pipe()
    assert.is_true(w:setvbuf("full", 16))
    assert.is_true(w:write_int(1))
    assert.is_true(w:flush())
    assert.equal(1, r:read_int())
    for i = 1, 5 do w:write_int(i) end          -- 20 bytes > 16: 4 went out
    assert.equal(1, r:read_int())
    assert.equal(2, r:read_int())
    assert.equal(3, r:read_int())
    assert.equal(4, r:read_int())
    w:close()                                   -- close flushes the 5th
    assert.equal(5, r:read_int())
    assert.is_nil(r:read_int())
    assert.is_true(r:close())
  end)

  it("buffered output goes out on garbage collection", function()
    local r, w = hpass.pipe()
    w:setvbuf("full")
    w:write_int(7)
    w = nil -- luacheck: no unused
    collectgarbage(); collectgarbage()
    assert.equal(7, r:read_int())
    assert.is_nil(r:read_int())
    r:close()
  end)

  for _, how in ipairs({"exit", "end", "gc", "close"}) do
    it("buffered output goes out when the process exits, by " .. how, function()
      local r, w = hpass.pipe()
      local proc = assert(hpass.spawn_with_handle({H.lua, H.child("bufexit"), how, "10000"}, w))
      w:close()
      local t = r:read_ints(20000)
      assert.equal(10000, #t)
      assert.equal(10000 * 10001 / 2, sum(t))
      assert.is_true((proc:wait()))
      r:close()
    end)
  end

  it("a closing state that unloads hpass leaves its exit handler callable: the module stays loaded",
     function()
    -- glibc's loader says when it unmaps a library (LD_DEBUG=files);
    -- other C libraries say nothing, and then the exit status alone speaks
    local env = hpass.environ()
    env.LD_DEBUG = "files"
    local out, err, ok, how, code = hpass.capture(
      {H.lua, H.child("bufexit"), "close", "10", "1"}, {env = env, timeout = 30})
    assert.is_true(ok, tostring(how) .. " " .. tostring(code) .. "\n" .. err)
    assert.equal(40, #out)
    if err:find("generating link map", 1, true) and os.getenv("HPASS_EXPECT_NOPIN") then
      -- a build for glibc < 2.34: the handler belongs to the library and
      -- glibc runs it as the library is unloaded, before the unmap
      assert.matches("calling fini: [^\n]*hpass/core%.so", err)
    elseif err:find("generating link map", 1, true) then
      assert.matches("hpass/core%.so[^\n]*as NODELETE", err)
      assert.is_nil(err:find("hpass/core%.so[^\n]*destroying link map"))
    end
  end)

  it("a finalizer that runs as the state closes, after the loader's own, can still "
     .. "call hpass: the module stays loaded (LuaJIT ran such a finalizer into unmapped "
     .. "code)", function()
    local script = H.script([[
      local hpass = require "hpass"
      local newproxy = rawget(_G, "newproxy")
      local function fin()
        local r, w = hpass.pipe()
        assert(w:write("late")); w:close()
        io.stdout:write(r:read("a"), "\n")
        r:close()
      end
      if newproxy then
        KEEP = newproxy(true)
        getmetatable(KEEP).__gc = fin
      else
        KEEP = setmetatable({}, {__gc = fin})
      end]])
    local out, err, ok, how, code = hpass.capture({H.lua, script}, {timeout = 30})
    assert.same({true, "exit", 0}, {ok, how, code}, err)
    assert.equal("late\n", out)
  end)

  it("buffered output goes out before the handle is passed to spawn_with_handle", function()
    local r, w = hpass.pipe()
    w:setvbuf("full")
    w:write_int(1); w:write_int(2)
    local proc = assert(hpass.spawn_with_handle({H.cpeer, "write", "3", "1", "2"}, w))
    assert.is_true((proc:wait()))
    w:close()
    assert.same({1, 2, 3, 4}, r:read_ints(10))
    r:close()
  end)

  it("setvbuf(\"full\"): reads fetch as much as is available, up to size, in one call",
     function()
    local r, w = hpass.pipe()
    for i = 1, 100 do w:write_int(i) end
    w:close()
    r:setvbuf("full")
    assert.equal(1, r:read_int())
    -- everything else now sits in r's buffer: the descriptor itself is at EOF
    assert.is_nil(hpass.read_int(r:fileno()))
    for i = 2, 100 do assert.equal(i, r:read_int()) end
    assert.is_nil(r:read_int())
    r:close()
  end)

  it("input read ahead but not consumed cannot reach a child: spawn_with_handle, " ..
     "send_handle, setvbuf, tofile and detach raise on a handle that holds some",
     function()
    local r, w = hpass.pipe()
    w:write_int(1); w:write_int(2)
    r:setvbuf("full")
    assert.equal(1, r:read_int())
    local err = H.raises(hpass.spawn_with_handle, {"true"}, r)
    assert.matches(H.badarg(2, "spawn_with_handle") .. " %(handle has unread buffered input%)", err)
    assert.matches("unread", H.raises(r.setvbuf, r, "no"))
    assert.matches("unread", H.raises(r.tofile, r, "r"))
    assert.matches("unread", H.raises(r.detach, r))
    local a, b = hpass.socketpair()
    assert.matches("unread", H.raises(hpass.send_handle, a, r))
    a:close(); b:close()
    assert.equal(2, r:read_int())
    assert.is_true(r:setvbuf("no"))
    r:close(); w:close()
  end)

  it("buffered output goes out before a read on the same handle has to wait for data",
     function()
    local a, b = hpass.socketpair()
    a:setvbuf("full")
    a:write_int(1)            -- held in a's buffer
    b:write_int(2)
    assert.equal(2, a:read_int())  -- reading flushed the request first
    assert.equal(1, b:read_int())
    a:close(); b:close()
  end)

  it("setvbuf and flush raise on misuse and on a closed handle", function()
    local r, w = hpass.pipe()
    assert.matches(H.badarg(2, "setvbuf"), H.raises(hpass.setvbuf, r, "line"))
    assert.matches("invalid option 'line'", H.raises(hpass.setvbuf, r, "line"))
    assert.matches("size out of range", H.raises(hpass.setvbuf, r, "full", 2))
    assert.matches("size out of range", H.raises(hpass.setvbuf, r, "full", 2^40))
    r:close()
    assert.matches("closed handle", H.raises(hpass.setvbuf, r, "full"))
    assert.matches("closed handle", H.raises(hpass.flush, r))
    w:close()
  end)

  it("flush: nil, msg, errno when it fails, and the unsent bytes are dropped", function()
    local r, w = hpass.pipe()
    w:setvbuf("full")
    assert.is_true(w:write_int(1))
    r:close()
    local ok, msg, code = w:flush()
    assert.is_nil(ok); assert.matches("[Bb]roken pipe", msg); assert.equal(R.EPIPE, code)
    assert.is_true(w:close())  -- the failed bytes were dropped, not kept
  end)

  it("a handle is unbuffered by default: each write_int is one system call, and the " ..
     "integer is visible to the reader straight away", function()
    for _, pair in ipairs({hpass.pipe, hpass.socketpair}) do
      local r, w = pair()
      r:settimeout(0)
      for i = 1, 3 do
        assert.is_true(w:write_int(i))
        assert.equal(i, r:read_int())        -- there already: no wait at all
      end
      assert.equal(w, w:write("x"))
      assert.equal("x", r:read(1))
      r:close(); w:close()
    end
  end)

  it("an unbuffered read never takes more bytes than it returns, so a handle can be " ..
     "read from and then passed on to a child without losing anything", function()
    for _, pair in ipairs({hpass.pipe, hpass.socketpair}) do
      local reads = {
        function(r) return r:read_int() end,
        function(r) return r:read_ints(2) end,
        function(r) return r:read(5) end,
        function(r) return r:read(3, 2) end,
      }
      for _, read in ipairs(reads) do
        local r, w = pair()
        assert.is_true(w:write_ints({1, 2}))
        assert(w:write("and the rest\n"))
        w:close()
        assert.is_truthy(read(r))
        local out, _, ok = hpass.capture({"cat"}, {stdin = r})
        assert.is_true(ok)
        local f = assert(io.open(H.tmpname(), "w+b"))
        hpass.write_ints(f, {1, 2}); f:write("and the rest\n"); f:seek("set")
        local whole = f:read("*a"); f:close()
        -- what the read returned and what the child got make the stream
        assert.equal(whole:sub(-#out), out)
        assert.is_true(#out > 0 and #out < #whole)
        r:close()
      end
    end
  end)

  it("setvbuf(\"full\") holds 65536 bytes by default and returns true; setvbuf " ..
     "returns the result of flushing; setvbuf(\"no\") flushes first", function()
    local r, w = hpass.pipe()
    r:settimeout(0)
    assert.is_true(w:setvbuf("full"))
    assert(w:write(string.rep("x", 65536)))
    assert.same({nil, "timeout", ETIMEDOUT}, {r:read(1)})   -- all held
    assert(w:write("y"))                                    -- full: out it goes
    assert.equal(65536, #r:read(65536))
    assert.is_true(w:setvbuf("no"))                         -- flushes "y"
    assert.equal("y", r:read(1))
    assert.is_true(w:setvbuf("full", 16))
    assert.is_true(w:write_int(5))
    r:close()
    local ok, msg, code = w:setvbuf("full", 32)             -- its flush fails
    assert.is_nil(ok); assert.matches("[Bb]roken pipe", msg); assert.equal(R.EPIPE, code)
    w:close()
  end)

  if H.version >= 5.4 then
    it("buffered output goes out when a <close> variable goes out of scope", function()
      local r, w = hpass.pipe()
      local f = assert(load([[
        local w <close> = ...
        w:setvbuf("full")
        w:write_int(77)
      ]]))
      f(w)
      assert.equal("closed handle", hpass.type(w))
      assert.equal(77, r:read_int())
      r:close()
    end)
  end

  -- A writer whose pipe is full but for one page: a flush with a deadline
  -- sends one page's worth and then runs out of time.
  local function nearly_full()
    local r, w = hpass.pipe()
    assert.is_true(w:setvbuf("full", 65536))
    w:settimeout(0)
    -- a write with no time left takes what fits until its deadline, which
    -- may come before the pipe is full: write until it takes nothing
    local filled, n = 0
    repeat
      local ok, _, _, wrote = w:write(string.rep("f", 1048576))  -- bypasses the buffer
      assert.is_nil(ok)
      filled, n = filled + wrote, wrote
    until n == 0
    assert.equal(4096, #r:read(4096))
    return r, w, filled - 4096
  end

  it("a flush that runs out of time stops only between two units, an integer or a " ..
     "byte of write's: a buffer of bytes and integers never leaves part of an " ..
     "integer in the stream", function()
    -- lead bytes, then rounds of k integers and j bytes: up to 60 runs of
    -- integers, more than a buffer tracks (it flushes first, as when full)
    for _, lead in ipairs({0, 1, 2, 3}) do
      for _, rounds in ipairs({1, 5, 60}) do
        local r, w, filler = nearly_full()
        local units, stream = {}, {}   -- what the buffer accepted, in order
        local function accept(ok, what, size)
          if ok then units[#units + 1] = size; stream[#stream + 1] = what end
        end
        accept(w:write(string.rep("L", lead)), string.rep("L", lead), lead)
        for i = 1, rounds do
          for k = 1, math.ceil(2000 / rounds) + i % 3 do   -- 8 kB of integers
            local v = i * 1000 + k
            local ok = w:write_int(v)
            accept(ok, v, 4)
          end
          local b = string.rep(string.char(97 + i % 26), 1 + i % 7)
          accept(w:write(b), b, #b)
        end
        local ok, msg = w:flush()
        assert.is_nil(ok); assert.equal("timeout", msg)
        R.sig.rawclose(w:fileno())      -- what the buffer still holds is dropped
        local got = r:read("a"):sub(filler + 1)
        -- got ends between two units of what was accepted
        local at, i = 0, 0
        while at < #got do
          i = i + 1
          local size = units[i]
          at = at + (size == 4 and 4 or math.min(size, #got - at))
        end
        assert.equal(#got, at, ("lead %d, %d rounds: an integer cut"):format(lead, rounds))
        -- and what got there is what was written, in order
        local f = assert(io.open(H.tmpname(), "w+b"))
        for _, x in ipairs(stream) do
          if type(x) == "number" then hpass.write_int(f, x) else f:write(x) end
        end
        f:seek("set")
        assert.equal(f:read(#got), got)
        f:close()
        assert.is_true(#got > 0)
        r:close(); pcall(w.close, w)
      end
    end
  end)
end)
