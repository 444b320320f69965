-- Interop with what Lua programs already use: plain integer descriptors
-- (luaposix and most C bindings), Lua io files, and LuaSocket sockets.
local hpass = require "hpass"
local socket = require "socket"
local H = require "helpers"
local R = require "relhelp"

local EBADF = R.EBADF

-- Run argv with the given handle(s), its standard output captured.
local function run(argv, handles)
  local out, ok, how, code = H.capture(argv, handles)
  assert.same({true, "exit", 0}, {ok, how, code})
  return out
end

describe("plain descriptor numbers", function()
  after_each(H.cleanup)

  it("work in the integer protocol, also as integral floats", function()
    local r, w = hpass.pipe()
    local rfd, wfd = r:fileno(), w:fileno()
    assert.is_true(hpass.write_int(wfd, 5))
    assert.is_true(hpass.write_int(wfd + 0.0, 6))   -- 5.1 and LuaJIT have only these
    assert.is_true(hpass.write_ints(wfd, {7, 8}))
    assert.equal(5, hpass.read_int(rfd))
    assert.equal(6, hpass.read_int(rfd + 0.0))
    assert.same({7, 8}, hpass.read_ints(rfd, 2))
    assert.matches("descriptor must be an integer", H.raises(hpass.read_int, rfd + 0.5))
    assert.matches("negative", H.raises(hpass.read_int, -1))
    r:close(); w:close()
  end)

  it("pass to a child that uses them without adopting them", function()
    local out = H.tmpname()
    local f = assert(io.open(out, "w"))
    local r, w = hpass.pipe()
    local proc = assert(hpass.spawn_with_handle({H.lua, H.child("rawsum")}, {r:fileno()},
                                                {stdout = f}))
    f:close(); r:close()
    assert.is_true(w:write_ints({1, 2, 3, 1000}))
    w:close()
    assert.same({true, "exit", 0}, {proc:wait()})
    assert.equal("4 1006\n", H.readfile(out))
  end)

  it("h:detach() returns the descriptor number, which the caller now owns: the " ..
     "handle is closed, the descriptor stays open", function()
    local r, w = hpass.pipe()
    local n = w:detach()
    assert.is_number(n)
    assert.equal("closed handle", hpass.type(w))
    assert.matches("closed handle", H.raises(w.detach, w))
    assert.is_true(w:close())                   -- closing the handle is harmless
    assert.is_true(hpass.write_int(n, 77))      -- the descriptor is still open
    assert.equal(77, r:read_int())
    local again = assert(hpass.handle(n))       -- and can be adopted again
    again:close()
    local h, _, code = hpass.handle(n)
    assert.is_nil(h); assert.equal(EBADF, code)
    r:close()
  end)

  it("h:detach(): buffered output is flushed first, and unread buffered input " ..
     "raises", function()
    local r, w = hpass.pipe()
    w:setvbuf("full")
    w:write_int(1); w:write_int(2)
    local n = w:detach()
    assert.same({1, 2}, r:read_ints(2))
    hpass.write_int(n, 3); hpass.write_int(n, 4)
    r:setvbuf("full")
    assert.equal(3, r:read_int())               -- 4 waits in r's buffer
    assert.matches("unread buffered input", H.raises(r.detach, r))
    assert.equal(4, r:read_int())
    assert.is_number(r:detach())
    assert.is_true(hpass.handle(n):close())
  end)
end)

describe("Lua io files", function()
  after_each(H.cleanup)

  it("pass to a child that writes into them with f:write", function()
    local name = H.tmpname()
    local f = assert(io.open(name, "w"))
    f:write("parent first\n")              -- in f's buffer: flushed before the spawn
    run({H.lua, H.child("fwrite"), "w", "child one", "child two"}, f)
    f:write("parent last\n")               -- the offset is shared with the child
    f:close()
    assert.equal("parent first\nchild one\nchild two\nparent last\n", H.readfile(name))
  end)

  it("pass to a child that reads on from where the parent stopped", function()
    local name = H.tmpname()
    local f = assert(io.open(name, "w"))
    f:write("one\ntwo\nthree\n"); f:close()
    f = assert(io.open(name, "r"))
    assert.equal("one", f:read("*l"))      -- f has read ahead: the spawn puts it back
    local out = run({H.lua, H.child("lines")}, f)
    assert.equal("1: two\n2: three\n", out)
    assert.is_nil(f:read("*l"))            -- the child read the rest
    f:close()
  end)

  it("are made from inherited pipes: f:lines in the child", function()
    local r, w = hpass.pipe()
    local proc, out = H.start({H.lua, H.child("lines")}, r)
    r:close()
    local fw = assert(w:tofile("w"))
    assert.equal("closed handle", hpass.type(w))
    fw:write("alpha\n", "beta\n", "gamma\n")
    assert.is_true(fw:close())
    assert.same({true, "exit", 0}, {proc:wait()})
    assert.equal("1: alpha\n2: beta\n3: gamma\n", H.readfile(out))
  end)

  it("are made from inherited pipes: f:write in the child, f:read here", function()
    local r, w = hpass.pipe()
    local proc = assert(hpass.spawn_with_handle(
      {H.lua, H.child("fwrite"), "w", "x", "yy", "zzz"}, w))
    w:close()
    local fr = assert(r:tofile("r"))
    assert.equal("x\nyy\nzzz\n", fr:read("*a"))
    assert.same({true, "exit", 0}, {proc:wait()})
    fr:close()
  end)

  it("are made from sockets, both ways with mode r+", function()
    local a, b = hpass.socketpair()
    local fa = assert(a:tofile("r+"))
    local fb = assert(b:tofile("r+"))
    fa:setvbuf("no"); fb:setvbuf("no")
    fa:write("ping\n")
    assert.equal("ping", fb:read("*l"))
    fb:write("pong\n")
    assert.equal("pong", fa:read("*l"))
    fa:close(); fb:close()
  end)

  it("tofile: io sees a file; closing or collecting it closes the descriptor", function()
    local before = H.nfds()
    local r, w = hpass.pipe()
    local fr = assert(r:tofile())          -- mode "r" by default
    assert.equal("file", io.type(fr))
    assert.equal("closed handle", hpass.type(r))
    assert.is_true(fr:close())
    assert.equal("closed file", io.type(fr))
    assert.is_true(w:close())
    assert.equal(before, H.nfds())
    for _ = 1, 20 do
      local r2, w2 = hpass.pipe()
      r2:tofile("r"); w2:tofile("w")       -- dropped at once
    end
    collectgarbage(); collectgarbage()
    assert.equal(before, H.nfds())
  end)

  it("tofile checks its mode and the handle", function()
    local r, w = hpass.pipe()
    for _, mode in ipairs({"", "x", "rw", "r+x", "wb+", "+"}) do
      local err = H.raises(r.tofile, r, mode)
      assert.matches(H.badarg(2, "tofile") .. " %(invalid mode%)", err)
    end
    assert.equal("handle", hpass.type(r))  -- still open after the refusals
    r:close()
    assert.matches("closed handle", H.raises(r.tofile, r, "r"))
    local f = assert(w:tofile("ab"))
    f:close()
  end)
end)

describe("LuaSocket", function()
  after_each(H.cleanup)

  it("a listening socket passes to a child that accepts on it", function()
    local server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    local proc = H.start({H.lua, H.child("accept"), "2", "child"}, server)
    server:close()                          -- the child has its own copy
    for _, word in ipairs({"hello", "again"}) do
      local c = assert(socket.tcp())
      c:settimeout(20)
      assert(c:connect("127.0.0.1", port))
      assert(c:send(word .. "\n"))
      assert.equal("child: " .. word, c:receive("*l"))
      c:close()
    end
    assert.same({true, "exit", 0}, {proc:wait()})
  end)

  it("sockets work in the integer protocol through getfd", function()
    local client, conn = H.tcppair()
    assert.is_true(hpass.write_int(conn, 42))
    assert.is_true(hpass.write_ints(conn, {-1, 2147483647}))
    assert.equal(42, hpass.read_int(client))
    assert.same({-1, 2147483647}, hpass.read_ints(client, 2))
    assert(conn:send("text\n"))             -- LuaSocket's own I/O goes on as before
    assert.equal("text", client:receive("*l"))
    client:close(); conn:close()
    assert.matches("closed socket", H.raises(hpass.read_int, conn))
  end)

  it("a connected socket becomes a Lua file in a child", function()
    local client, conn = H.tcppair()
    -- LuaSocket makes every socket non-blocking, and the child's copy
    -- shares that mode; stdio does not wait on EAGAIN, so all the data and
    -- the end of the stream are there before the child reads
    assert(client:send("over tcp\nto a file\n"))
    client:close()
    local proc, out = H.start({H.lua, H.child("lines")}, conn)
    conn:close()
    assert.same({true, "exit", 0}, {proc:wait()})
    assert.equal("1: over tcp\n2: to a file\n", H.readfile(out))
  end)

  it("a descriptor LuaSocket gives up becomes a handle", function()
    local a = assert(socket.bind("127.0.0.1", 0))
    local n = a:getfd()
    a:setfd(-1)                             -- LuaSocket forgets it ...
    a:close()
    local h = assert(hpass.handle(n))       -- ... and hpass owns it
    assert.is_true(H.cloexec(h:fileno()))
    assert.is_true(h:close())
    local again, _, code = hpass.handle(n)
    assert.is_nil(again); assert.equal(EBADF, code)
  end)
end)
