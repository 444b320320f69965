-- The manual's "Integers", promise by promise: write_int, read_int,
-- write_ints and read_ints.  Each test is named after the sentence it
-- checks; core_spec.lua holds the first tests of write_int and read_int.
local hpass = require "hpass"
local H = require "helpers"

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
