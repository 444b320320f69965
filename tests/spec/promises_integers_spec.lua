-- The manual's "Integers", promise by promise: write_int, read_int,
-- write_ints and read_ints.  Each test is named after the sentence it
-- checks; core_spec.lua holds the first tests of write_int and read_int.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"

describe("Integers: write_ints and read_ints", function()
  it("write_ints returns true, or nil, msg, errno, written: how many integers went out " ..
     "before the failure", function()
    local r, w = hpass.pipe()
    -- a reader that takes 1,000 integers (4,000 bytes, perhaps a little
    -- more in one read) and goes
    local proc = assert(hpass.spawn_with_handle({"head", "-c", "4000"}, {},
                                                {stdin = r, stdout = "null"}))
    r:close()
    local t = {}
    for i = 1, 1000000 do t[i] = i end
    local ok, msg, code, written = w:write_ints(t)
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.equal(R.EPIPE, code)
    assert.equal("number", type(written))
    assert.is_true(written % 1 == 0 and written >= 1000 and written < 1000000,
                   tostring(written))
    assert.is_true((proc:wait()))
    w:close()
  end)

  it("write_ints writes t[i..j], by default all of t; read_ints gives an array of up " ..
     "to count integers, nil at a clean end with nothing read", function()
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

  it("read_ints with a table t: the integers go into t[1], t[2], ... and t is the " ..
     "array; entries an earlier read left are set to nil, so #t is the count",
     function()
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

  it("read_ints with a table t: t is also the partial result", function()
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

  it("write_ints checks every element before anything is written: a bad element " ..
     "raises 'element k: ...'", function()
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

  it("read_ints: a truncated integer after some integers gives nil, msg, nil, " ..
     "partial, the integers that came before", function()
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

  it("write_ints and read_ints mix with buffered single integers, in order", function()
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

  it("write_ints carries a million integers through a child intact", function()
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

  it("write_ints checks every element before anything is written, in ranges of every " ..
     "length: a bad last element leaves nothing written", function()
    for _, n in ipairs({1, 4095, 4096, 4097, 300000}) do
      local r, w = hpass.pipe()
      local t = {}
      for i = 1, n do t[i] = i end
      t[n] = 2 ^ 31
      assert.matches("element " .. n .. ": integer out of 32%-bit range",
                     H.raises(w.write_ints, w, t))
      t[n] = "x"
      assert.matches("element " .. n .. ": number expected, got string",
                     H.raises(w.write_ints, w, t, 1))
      w:close()
      assert.is_nil(r:read_int(), n)              -- nothing was written
      r:close()
    end
  end)

  it("write_ints writes ranges of every length whole, in order", function()
    for _, n in ipairs({1, 4095, 4096, 4097, 20000}) do
      local r, w = hpass.pipe()
      local proc, out = H.start({H.lua, H.child("sum")}, r)
      r:close()
      local t = {}
      for i = 1, n + 2 do t[i] = i end
      assert.is_true(w:write_ints(t, 2, n + 1))
      w:close()
      assert.is_true((proc:wait()))
      assert.equal(string.format("%d\t%d\n", n, n * (n + 3) / 2), H.readfile(out), n)
    end
  end)

  it("write_ints: without a deadline, 4096 integers (16 KiB) per system call",
     function()
    local out, ok = H.capture({H.lua, H.child("writecalls"), "100000"})
    assert.is_true(ok)
    local calls = tonumber(out)
    assert.is_true(calls >= 1 and calls <= math.ceil(100000 / 4096), out .. " writes")
  end)

  it("read_ints: a count larger than what comes costs no memory up front: a wait that " ..
     "times out with nothing read leaves the heap as it was", function()
    local r, w = hpass.pipe()
    r:settimeout(0)
    collectgarbage(); collectgarbage("stop")
    local before = collectgarbage("count")
    assert.same({nil, "timeout"}, {(function(a, b) return a, b end)(r:read_ints(2^30))})
    local grew = collectgarbage("count") - before
    collectgarbage("restart")
    assert.is_true(grew < 256, ("the heap grew by %.0f KiB"):format(grew))
    assert(w:write_ints({1, 2, 3}))
    r:settimeout(nil)
    w:close()
    assert.same({1, 2, 3}, r:read_ints(2^30))
    r:close()
  end)

  it("read_ints: the array is shorter than count only when the stream ends", function()
    local r, w = hpass.pipe()
    -- 20 integers, a byte at a time with pauses: read_ints must wait
    local p = assert(hpass.spawn_with_handle({R.relpeer, "slow", "20"}, w))
    w:close()
    local t = r:read_ints(10)
    assert.equal(10, #t)
    t = r:read_ints(25)
    assert.equal(10, #t)                    -- the stream ended after 20
    for i = 1, 10 do assert.equal(9 + i, t[i]) end
    assert.is_nil(r:read_ints(5))
    assert.is_true((p:wait()))
    r:close()
  end)
end)
