-- Pipes, sockets, errors and streams, within one process.

local hpass = require "hpass"
local S = require "support"

local tests, test = S.suite()

test("pipe carries ints both ways of the protocol", function()
  local r, w = assert(hpass.pipe())
  assert(w:write_int(-7))
  assert(w:write_ints({1, 2, 2147483647, -2147483648}))
  S.eq(r:read_int(), -7)
  local t = assert(r:read_ints(4))
  S.eq(#t, 4, "count")
  S.eq(t[3], 2147483647)
  S.eq(t[4], -2147483648)
  w:close()
  S.eq(r:read_int(), nil, "end of stream")
  r:close()
end)

test("pipe handles are not inheritable", function()
  local aid = require "testaid"
  local r, w = assert(hpass.pipe())
  S.eq(aid.inheritable(r:fileno()), false, "read end")
  S.eq(aid.inheritable(w:fileno()), false, "write end")
  local a, b = assert(hpass.socketpair())
  S.eq(aid.inheritable(a:fileno()), false, "socket a")
  S.eq(aid.inheritable(b:fileno()), false, "socket b")
  r:close(); w:close(); a:close(); b:close()
end)

test("socketpair carries ints both ways", function()
  local a, b = assert(hpass.socketpair())
  assert(a:write_int(1234))
  S.eq(b:read_int(), 1234)
  assert(b:write_int(-1))
  S.eq(a:read_int(), -1)
  a:close()
  S.eq(b:read_int(), nil, "end of stream")
  b:close()
end)

test("write to a pipe with no reader: fail, message, code", function()
  local r, w = assert(hpass.pipe())
  r:close()
  local ok, msg, code = w:write_int(1)
  S.eq(ok, nil, "result")
  S.eq(code, 109, "code (ERROR_BROKEN_PIPE)")
  S.match(msg, "^%S", "message")
  S.match(msg, "[^%.%s]$", "message end")
  w:close()
end)

test("write to a socket whose peer has gone: same code", function()
  local aid = require "testaid"
  local a, b = assert(hpass.socketpair())
  b:close()
  local big = {}
  for i = 1, 16384 do big[i] = i end
  local ok, msg, code
  for _ = 1, 50 do
    ok, msg, code = a:write_ints(big)
    if not ok then break end
    aid.sleep(10)
  end
  S.eq(ok, nil, "result")
  S.eq(code, 109, "code")
  S.match(msg, "^%S", "message")
  a:close()
end)

test("a closed handle raises", function()
  local r, w = assert(hpass.pipe())
  w:close()
  local ok, err = pcall(hpass.write_int, w, 1)
  S.eq(ok, false, "pcall")
  S.match(err, "closed handle", "error")
  ok, err = pcall(w.fileno, w)
  S.eq(ok, false, "fileno")
  S.match(err, "closed handle", "fileno error")
  S.eq(tostring(w), "hpass.handle (closed)")
  assert(w:close(), "second close is fine")
  r:close()
end)

test("adopting a value that is no handle: fail, message, code 6", function()
  local h, msg, code = hpass.handle(999999)
  S.eq(h, nil, "result")
  S.eq(code, 6, "code (ERROR_INVALID_HANDLE)")
  S.match(msg, "^%S", "message")
  h, msg, code = hpass.handle("0")
  S.eq(h, nil, "handle 0 result")
  S.match(msg, "^%S", "handle 0 message")
  S.eq(code, 6, "handle 0")
end)

test("tofile, text and binary", function()
  local r, w = assert(hpass.pipe())
  local f = assert(w:tofile("w"))
  S.eq(hpass.type(w), "closed handle", "moved")
  f:write("one\ntwo\n")
  f:close()
  local g = assert(r:tofile("rb"))
  S.eq(g:read("a"), "one\r\ntwo\r\n", "bytes in the pipe")
  g:close()
end)

test("ints through a Lua file (hp_fromfile)", function()
  local name = S.tmp .. "\\hpass-fromfile.bin"
  local f = assert(io.open(name, "wb"))
  f:write("x")
  assert(hpass.write_int(f, 0x44434241))
  f:close()
  f = assert(io.open(name, "rb"))
  S.eq(f:read("a"), "xABCD")
  f:close()
  os.remove(name)
end)

test("buffered output is flushed when a child ends", function()
  for _, how in ipairs({"return", "os.exit"}) do
    local r, w = assert(hpass.pipe())
    local p = assert(hpass.spawn_with_handle({S.lua, S.child, "buffered", how}, w))
    w:close()
    assert(p:wait())
    S.eq(r:read_int(), 99, "after " .. how)
    r:close()
  end
end)

test("handle(n) takes a HANDLE value: 0, 1 and 2 are not the standard streams "
     .. "(nil, msg, ERROR_INVALID_HANDLE); kill of an ended child is 128", function()
  for n = 0, 2 do
    local h, msg, code = hpass.handle(n)
    S.eq(h, nil, "handle(" .. n .. ")")
    S.eq(type(msg), "string")
    S.eq(code, 6, "handle(" .. n .. ")")
  end
  local p = assert(hpass.spawn_with_handle({S.lua, "-e", "os.exit(0)"}, {}))
  assert(p:wait())
  local res, msg, code = p:kill()
  S.eq(res, nil); S.eq(msg, "process has already ended"); S.eq(code, 128)
end)

return tests
