-- What differs between Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT, checked on the
-- interpreter that runs the suite.
local hpass = require "hpass"
local H = require "helpers"

describe("on " .. (H.luajit and "LuaJIT" or _VERSION), function()
  it("argument errors name the function called by name", function()
    -- called from Lua code (not through pcall directly), every version
    -- finds the name; H.badarg covers the pcall case
    local r, w = hpass.pipe()
    local ok, err = pcall(function() local x = hpass.read_int("x"); return x end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to '[%w.]*read_int'", err)
    -- a method call counts arguments after self
    ok, err = pcall(function() local x = r:tofile("x"); return x end)
    assert.is_false(ok)
    assert.matches("bad argument #1 to 'tofile' %(invalid mode%)", err)
    r:close(); w:close()
  end)

  it("integers read back are integers where Lua has them", function()
    local r, w = hpass.pipe()
    w:write_int(7)
    local v = r:read_int()
    assert.equal(7, v)
    if H.version >= 5.3 then
      assert.equal("integer", math.type(v))  -- luacheck: std max+busted
      assert.equal("7", tostring(v))
    else
      assert.is_nil(math.type)  -- luacheck: std max+busted (only floats)
      assert.equal("7", tostring(v))
    end
    -- a float with an integral value is accepted everywhere; others are not
    assert.is_true(w:write_int(8.0))
    assert.equal(8, r:read_int())
    assert.matches("32%-bit range", H.raises(w.write_int, w, 2^31))
    assert.matches("no integer representation", H.raises(w.write_int, w, 0.5))
    r:close(); w:close()
  end)

  it("to-be-closed handles exist exactly from Lua 5.4 on", function()
    local r, w = hpass.pipe()
    local mt = getmetatable(r)
    if H.version >= 5.4 then
      assert.is_function(mt.__close)
    else
      assert.is_nil(mt.__close)
    end
    assert.is_function(mt.__gc)
    r:close(); w:close()
  end)

  it("tofile makes a file the io library of this interpreter accepts", function()
    local r, w = hpass.pipe()
    local fw = assert(w:tofile("w"))
    local fr = assert(r:tofile("r"))
    assert.equal("file", io.type(fw))
    assert.is_true(io.output(fw) == fw)     -- io functions take it too
    io.write("via io.write\n")
    io.output(io.stdout)
    fw:close()
    assert.equal("via io.write", fr:read("*l"))
    assert.is_nil(fr:read("*l"))
    assert.is_true(fr:close())
    assert.matches("closed file", H.raises(fr.read, fr))
  end)
end)
