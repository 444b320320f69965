-- Buffered handles (setvbuf/flush) and the bulk functions.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"

local function sum(t) local s = 0 for i = 1, #t do s = s + t[i] end return s end

describe("buffered handles", function()
  after_each(H.cleanup)

  it("hold output until flush, close or a full buffer", function()
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

  it("flush on garbage collection", function()
    local r, w = hpass.pipe()
    w:setvbuf("full")
    w:write_int(7)
    w = nil -- luacheck: no unused
    collectgarbage(); collectgarbage()
    assert.equal(7, r:read_int())
    assert.is_nil(r:read_int())
    r:close()
  end)

  for _, how in ipairs({"exit", "end", "gc"}) do
    it("flush when the process leaves by " .. how, function()
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

  it("flush before the handle is passed to a child", function()
    local r, w = hpass.pipe()
    w:setvbuf("full")
    w:write_int(1); w:write_int(2)
    local proc = assert(hpass.spawn_with_handle({H.cpeer, "write", "3", "1", "2"}, w))
    assert.is_true((proc:wait()))
    w:close()
    assert.same({1, 2, 3, 4}, r:read_ints(10))
    r:close()
  end)

  it("read ahead, so the pipe is drained in few calls", function()
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

  it("refuse to hand unread input to a child or change mode over it", function()
    local r, w = hpass.pipe()
    w:write_int(1); w:write_int(2)
    r:setvbuf("full")
    assert.equal(1, r:read_int())
    local err = H.raises(hpass.spawn_with_handle, {"true"}, r)
    assert.matches(H.badarg(2, "spawn_with_handle") .. " %(handle has unread buffered input%)", err)
    assert.matches("unread", H.raises(r.setvbuf, r, "no"))
    assert.matches("unread", H.raises(r.tofile, r, "r"))
    assert.equal(2, r:read_int())
    assert.is_true(r:setvbuf("no"))
    r:close(); w:close()
  end)

  it("send buffered requests before waiting for the reply", function()
    local a, b = hpass.socketpair()
    a:setvbuf("full")
    a:write_int(1)            -- held in a's buffer
    b:write_int(2)
    assert.equal(2, a:read_int())  -- reading flushed the request first
    assert.equal(1, b:read_int())
    a:close(); b:close()
  end)

  it("check their arguments", function()
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

  it("report a broken pipe when the buffer is flushed", function()
    local r, w = hpass.pipe()
    w:setvbuf("full")
    assert.is_true(w:write_int(1))
    r:close()
    local ok, msg, code = w:flush()
    assert.is_nil(ok); assert.matches("[Bb]roken pipe", msg); assert.equal(R.EPIPE, code)
    assert.is_true(w:close())  -- the failed bytes were dropped, not kept
  end)
end)

describe("bulk integers", function()
  it("write_ints and read_ints round-trip, in ranges", function()
    local r, w = hpass.pipe()
    local t = {}
    for i = 1, 5000 do t[i] = (i % 2 == 0) and i or -i end
    assert.is_true(w:write_ints(t))
    assert.is_true(w:write_ints(t, 2, 3))
    assert.is_true(w:write_ints(t, 4, 3))       -- empty range
    w:close()
    local got = r:read_ints(5000)
    assert.same(t, got)
    assert.same({2, -3}, r:read_ints(5))        -- fewer at the end
    assert.is_nil(r:read_ints(5))               -- clean end
    assert.same({}, r:read_ints(0))
    r:close()
  end)

  it("read_ints fills a table of the caller's, and #t is the count", function()
    local r, w = hpass.pipe()
    local src = {}
    for i = 1, 2500 do src[i] = i * 3 end     -- 10 KB: fits in the pipe
    assert.is_true(w:write_ints(src))
    w:close()
    local t = {}
    local counts, total = {}, 0
    while true do
      local got = r:read_ints(1000, t)
      if not got then break end
      assert.equal(t, got)                      -- the same table back
      for i = 1, #t do total = total + t[i] end
      counts[#counts + 1] = #t
      if #t < 1000 then                         -- 501..1000 were cleared
        for i = #t + 1, 1000 do assert.is_nil(t[i]) end
      end
    end
    assert.same({1000, 1000, 500}, counts)
    assert.equal(3 * 2500 * 2501 / 2, total)
    assert.is_nil(t[1])                         -- the clean end clears t
    -- a short read after a long one: #t is still the count
    r, w = hpass.pipe()
    assert.is_true(w:write_ints({1, 2, 3, 4, 5, 6}))
    w:close()
    t = {}
    assert.equal(t, r:read_ints(4, t))
    assert.equal(4, #t)
    assert.equal(t, r:read_ints(1, t))
    assert.same({5}, t)
    assert.equal(t, r:read_ints(3, t))
    assert.same({6}, t)
    r:close()
    r:close()
    -- a clean end clears the integers, and other keys stay
    r, w = hpass.pipe()
    w:close()
    t = {7, 8, name = "x"}
    assert.is_nil(r:read_ints(2, t))
    assert.same({nil, nil, name = "x"}, t)
    r:close()
  end)

  it("read_ints gives the caller's table as the partial result", function()
    local r, w = hpass.pipe()
    w:write_int(10)
    local f = w:tofile("wb")
    f:write("\1\2")
    f:close()
    local t = {1, 2, 3, 4}
    local res, msg, code, partial = r:read_ints(4, t)
    assert.is_nil(res)
    assert.matches("truncated", msg)
    assert.is_nil(code)
    assert.equal(t, partial)
    assert.same({10}, t)
    r:close()
  end)

  it("validate every element before writing any", function()
    local r, w = hpass.pipe()
    local err = H.raises(w.write_ints, w, {1, 2, 2^31, 4})
    assert.matches(H.badarg(2, "write_ints") .. " %(element 3: integer out of 32%-bit range%)", err)
    err = H.raises(w.write_ints, w, {1, 2, "3"})
    assert.matches("element 3: number expected, got string", err)
    err = H.raises(w.write_ints, w, {1, 2}, 1, 3)
    assert.matches("element 3: number expected, got nil", err)
    assert.matches("bad argument #2", H.raises(w.write_ints, w, 5))
    assert.matches("bad argument #2", H.raises(r.read_ints, r, -1))
    assert.matches("bad argument #2", H.raises(r.read_ints, r, "x"))
    assert.matches(H.badarg(3, "read_ints") .. " %(table expected, got number%)",
                   H.raises(r.read_ints, r, 1, 5))
    w:close()
    assert.is_nil(r:read_int())                  -- nothing was written
    r:close()
  end)

  it("return what was read before a truncated integer", function()
    local r, w = hpass.pipe()
    w:write_int(10); w:write_int(20)       -- (no string.pack before Lua 5.3)
    local f = w:tofile("wb")
    f:write("\1\2\3")
    f:close()
    local t, msg, code, partial = r:read_ints(5)
    assert.is_nil(t)
    assert.matches("truncated", msg)
    assert.is_nil(code)
    assert.same({10, 20}, partial)
    r:close()
  end)

  it("mix with buffered single integers in order", function()
    local r, w = hpass.pipe()
    w:setvbuf("full")
    w:write_int(1)
    w:write_ints({2, 3})
    w:write_int(4)
    w:close()
    r:setvbuf("full")
    assert.equal(1, r:read_int())
    assert.same({2, 3, 4}, r:read_ints(3))
    r:close()
  end)

  it("carry a million integers through a child intact", function()
    local r, w = hpass.pipe()
    local proc, out = H.start({H.lua, H.child("sum")}, r)
    r:close()
    local t = {}
    for i = 1, 1000000 do t[i] = i end
    assert.is_true(w:write_ints(t))
    w:close()
    assert.is_true((proc:wait()))
    assert.equal("1000000\t500000500000\n", H.readfile(out))
  end)
end)
