-- Passing handles to a process that already runs (send_handle/recv_handle).

local hpass = require "hpass"
local S = require "support"
local aid = require "testaid"

local tests, test = S.suite()

test("within one process, in order with other bytes", function()
  local a, b = assert(hpass.socketpair())
  local r, w = assert(hpass.pipe())
  assert(a:write_int(1))
  assert(hpass.send_handle(a, r, w))
  assert(a:write_int(2))
  r:close(); w:close()  -- the sender's copies may go at once
  S.eq(b:read_int(), 1, "before")
  local r2, w2 = hpass.recv_handle(b)
  assert(r2 and w2, "two handles")
  S.eq(b:read_int(), 2, "after")
  S.eq(aid.inheritable(r2:fileno()), false, "received read end")
  S.eq(aid.inheritable(w2:fileno()), false, "received write end")
  assert(w2:write_int(77))
  S.eq(r2:read_int(), 77, "through the received pipe")
  a:close()
  S.eq(hpass.recv_handle(b), nil, "clean end of stream")
  r2:close(); w2:close(); b:close()
end)

test("to a running child", function()
  local a, b = assert(hpass.socketpair())
  local p = assert(hpass.spawn_with_handle({S.lua, S.child, "recv"}, b))
  b:close()
  local r, w = assert(hpass.pipe())
  assert(hpass.send_handle(a, r))
  r:close()
  assert(w:write_ints({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}))
  w:close()
  S.eq(a:read_int(), 55, "the child summed what came through the handle")
  assert(p:wait())
  a:close()
end)

test("bytes that are no message: fail, message, code", function()
  local a, b = assert(hpass.socketpair())
  assert(a:write_ints({0x31487068, 0, 0}))
  local h, msg, code = hpass.recv_handle(b)
  S.eq(h, nil, "result")
  S.eq(code, 13, "code (ERROR_INVALID_DATA)")
  S.match(msg, "%S", "message")
  a:close(); b:close()
end)

return tests
