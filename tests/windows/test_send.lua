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
  local res = table.pack(hpass.recv_handle(b))
  S.eq(res.n, 1, "a clean end is one result")
  S.eq(res[1], nil, "clean end of stream")
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

test("a socket, within one process, outlives the sender's copy", function()
  local a, b = assert(hpass.socketpair())
  local x, y = assert(hpass.socketpair())
  assert(hpass.send_handle(a, y))
  y:close()  -- the message keeps a copy of its own
  local y2 = assert(hpass.recv_handle(b))
  S.eq(aid.issocket(y2:fileno()), true, "Winsock knows the received socket")
  S.eq(aid.inheritable(y2:fileno()), false, "received socket inheritable")
  assert(x:write_int(5))
  S.eq(y2:read_int(), 5, "x to the received end")
  assert(y2:write_int(6))
  S.eq(x:read_int(), 6, "the received end to x")
  x:close(); y2:close(); a:close(); b:close()
end)

test("a pipe and a socket in one message to a running child", function()
  local a, b = assert(hpass.socketpair())
  local p = assert(hpass.spawn_with_handle({S.lua, S.child, "recvmix"}, b))
  b:close()
  local r, w = assert(hpass.pipe())
  local x, y = assert(hpass.socketpair())
  assert(hpass.send_handle(a, r, y))
  r:close(); y:close()  -- before the child can have received them
  assert(w:write_ints({10, 20, 30}))
  w:close()
  S.eq(x:read_int(), 60, "the sum, on the passed socket")
  S.eq(x:read_int(), 1, "a socket Winsock knows, in the child")
  S.eq(x:read_int(), 0, "inheritable in the child")
  S.eq(x:read_int(), nil, "the child closed the socket")
  assert(p:wait())
  x:close(); a:close()
end)

test("200 handles in one message, pipes and sockets", function()
  local a, b = assert(hpass.socketpair())
  local send, keep = {}, {}
  for i = 1, 100 do
    local r, w = assert(hpass.pipe())
    keep[i] = r
    send[#send + 1] = w
  end
  for _ = 1, 50 do
    local x, y = assert(hpass.socketpair())
    send[#send + 1] = x
    send[#send + 1] = y
  end
  assert(hpass.send_handle(a, table.unpack(send)))
  for _, h in ipairs(send) do h:close() end
  local got = table.pack(hpass.recv_handle(b))
  S.eq(got.n, 200, "handles received")
  for i = 1, 200 do
    S.eq(aid.inheritable(got[i]:fileno()), false, "inheritable #" .. i)
  end
  for i = 1, 100 do
    assert(got[i]:write_int(i))
    got[i]:close()
    S.eq(keep[i]:read_int(), i, "through received pipe " .. i)
    keep[i]:close()
  end
  for i = 101, 200, 2 do
    assert(got[i]:write_int(i))
    S.eq(got[i + 1]:read_int(), i, "through received socket pair " .. i)
    got[i]:close(); got[i + 1]:close()
  end
  a:close(); b:close()
end)

test("a sender that has gone: fail, message, code, at once", function()
  local a, b = assert(hpass.socketpair())
  local p = assert(hpass.spawn_with_handle({S.lua, S.child, "sendexit"}, b))
  b:close()
  assert(p:wait())
  local t0 = aid.ticks()
  local h, msg, code = hpass.recv_handle(a)
  S.eq(h, nil, "result")
  S.eq(code, 2, "code (ERROR_FILE_NOT_FOUND: its pipe went with it)")
  S.match(msg, "%S", "message")
  assert(aid.ticks() - t0 < 5000, "no wait")
  a:close()
end)

test("the sender's state closes before the message is received", function()
  local a, b = assert(hpass.socketpair())
  local r, w = assert(hpass.pipe())
  local p, out = assert(S.capture({S.lua, S.child, "sendunload"}, b,
                                  {stdin = r}))
  b:close(); r:close()
  local f = assert(out:tofile("r"))
  S.eq(f:read("l"), "closed", "the child's state is closed")
  local got = assert(hpass.recv_handle(a))
  S.eq(got:read_int(), 321, "through the received pipe")
  w:close()  -- the child may exit now
  S.eq(f:read("a"), "", "nothing more from the child")
  f:close()
  local ok, _, code = p:wait()
  S.eq(ok, true, "the child exits normally (" .. tostring(code) .. ")")
  got:close(); a:close()
end)

-- A message taken off the channel raw (11 ints), and the name of its pipe.
local function intercept(ch)
  local t = assert(ch:read_ints(11))
  local name = string.pack("<i4i4i4i4", t[4], t[5], t[6], t[7])
  name = name:gsub(".", function(c) return ("%02x"):format(c:byte()) end)
  return t, ("hpass-%d-%s"):format(t[2], name)
end

test("a stranger without the secret is turned away", function()
  local a, b = assert(hpass.socketpair())
  local r, w = assert(hpass.pipe())
  assert(hpass.send_handle(a, r))
  r:close()
  local msg, name = intercept(b)
  local x = assert(aid.pipe_open(name))
  assert(aid.pipe_write(x, string.pack("<I4", 4) .. ("\0"):rep(16)))
  S.eq(aid.pipe_read(x, 1), "", "what a wrong secret gets")
  aid.pipe_close(x)
  -- the rightful receiver, handed the message, still gets the handle
  local c, d = assert(hpass.socketpair())
  assert(c:write_ints(msg))
  local got = assert(hpass.recv_handle(d))
  assert(w:write_int(9))
  S.eq(got:read_int(), 9, "through the received pipe")
  got:close(); w:close(); a:close(); b:close(); c:close(); d:close()
end)

test("a pipe of the right name served by another process is not trusted", function()
  -- a message from pid 4 (never this process), its pipe made here
  local msg = {0x32487068, 4, 1, 0x11111111, 0x22222222, 0x33333333, 0x44444444,
               0x55555555, 0x66666666, 0x77777777, 0x08888888}
  local hex = string.pack("<I4I4I4I4", msg[4], msg[5], msg[6], msg[7])
                :gsub(".", function(c) return ("%02x"):format(c:byte()) end)
  local srv = assert(aid.pipe_serve("hpass-4-" .. hex))
  -- what an impostor would answer once a receiver has connected
  local t, j = aid.later(srv, 200, "E" .. string.pack("<I4", 1234))
  local a, b = assert(hpass.socketpair())
  assert(a:write_ints(msg))
  local h, m, code = hpass.recv_handle(b)
  S.eq(h, nil, "result")
  S.eq(code, 5, "code (ERROR_ACCESS_DENIED): " .. tostring(m))
  aid.joined(t, j)
  S.eq(aid.pipe_read(srv, 20), "", "what the impostor was told")
  aid.pipe_close(srv)
  a:close(); b:close()
end)

test("a stranger who says nothing only delays the receiver", function()
  local a, b = assert(hpass.socketpair())
  local r, w = assert(hpass.pipe())
  assert(hpass.send_handle(a, r))
  r:close()
  local msg, name = intercept(b)
  local x = assert(aid.pipe_open(name))  -- holds the pipe's one instance
  local c, d = assert(hpass.socketpair())
  assert(c:write_ints(msg))
  local t0 = aid.ticks()
  local got = assert(hpass.recv_handle(d))
  local ms = aid.ticks() - t0
  assert(ms >= 3000 and ms < 20000, ("waited %d ms, not about 5 s"):format(ms))
  S.eq(aid.pipe_read(x, 1), "", "what the silent stranger gets")
  aid.pipe_close(x)
  assert(w:write_int(8))
  S.eq(got:read_int(), 8, "through the received pipe")
  got:close(); w:close(); a:close(); b:close(); c:close(); d:close()
end)

-- Wall and CPU milliseconds that f(...) took, and its results.
local function timed(f, ...)
  local t0, c0 = aid.ticks(), aid.cputime()
  local res = table.pack(f(...))
  return res, aid.ticks() - t0, aid.cputime() - c0
end

-- recv_handle gave up with fail, "timeout", ERROR_TIMEOUT after about
-- secs, and slept meanwhile.
local function timedout(res, ms, cpu, secs)
  S.eq(res[1], nil, "result"); S.eq(res[2], "timeout"); S.eq(res[3], 1460)
  assert(ms >= secs * 1000 - 20 and ms < secs * 1000 + 1000,
         ("gave up after %d ms, not %g s"):format(ms, secs))
  assert(cpu < 100 + secs * 200, ("used %d ms of CPU in %g s"):format(cpu, secs))
end

test("recv_handle's timeout covers the whole message: a peer that sends " ..
     "4 of its 44 bytes; the rest, when it comes, completes it", function()
  local a, b = assert(hpass.socketpair())
  local r, w = assert(hpass.pipe())
  assert(hpass.send_handle(a, r))
  r:close()
  local msg = string.pack(("<i4"):rep(11), table.unpack((intercept(b))))
  local c, d = assert(hpass.socketpair())
  assert(c:write(msg:sub(1, 4)))
  assert(d:settimeout(0.5))
  local res, ms, cpu = timed(hpass.recv_handle, d)
  timedout(res, ms, cpu, 0.5)
  assert(c:write(msg:sub(5)))
  local got = assert(hpass.recv_handle(d))
  assert(w:write_int(6))
  S.eq(got:read_int(), 6, "through the received pipe")
  got:close(); w:close(); a:close(); b:close(); c:close(); d:close()
end)

test("recv_handle's timeout covers the rendezvous: another process holds " ..
     "the sender's pipe; once it lets go, the message is received", function()
  local a, b = assert(hpass.socketpair())
  local r, w = assert(hpass.pipe())
  assert(hpass.send_handle(a, r))
  r:close()
  local msg, name = intercept(b)
  local x = assert(aid.pipe_open(name))  -- holds the pipe's one instance
  local c, d = assert(hpass.socketpair())
  assert(c:write_ints(msg))
  assert(d:settimeout(1))
  local res, ms, cpu = timed(hpass.recv_handle, d)
  timedout(res, ms, cpu, 1)
  aid.pipe_close(x)
  assert(d:settimeout(10))
  local got = assert(hpass.recv_handle(d))
  assert(w:write_int(7))
  S.eq(got:read_int(), 7, "through the received pipe")
  got:close(); w:close(); a:close(); b:close(); c:close(); d:close()
end)

-- Messages recv_handle must refuse with fail, message, code: the ints
-- written on the channel, whether the writer then closes it, the code.
local bad_messages = {
  {"bytes that are no message", {0x31487068, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
   false, 13},  -- "hpH1": ERROR_INVALID_DATA
  -- "hpH2", a pid of 4 and a count of 1, then 16 bytes for the name and
  -- 16 for the secret
  {"a message naming a pipe nobody serves",
   {0x32487068, 4, 1, 0x12345678, 0x1abcdef0, 0, 0, 0, 0, 0, 0},
   false, 2},   -- ERROR_FILE_NOT_FOUND
  {"a peer that closes mid-message", {0x32487068, 4}, true, 13},
}

for _, case in ipairs(bad_messages) do
  local name, ints, close, want = case[1], case[2], case[3], case[4]
  test(name .. ": fail, message, code", function()
    local a, b = assert(hpass.socketpair())
    assert(a:write_ints(ints))
    if close then a:close() end
    local h, msg, code = hpass.recv_handle(b)
    S.eq(h, nil, "result")
    S.eq(code, want, "code")
    S.match(msg, "%S", "message")
    a:close(); b:close()
  end)
end

return tests
