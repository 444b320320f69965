-- Pipes as Windows makes them besides CreatePipe: message mode, 0-byte
-- messages, PIPE_NOWAIT, disconnected named pipes, overlapped handles.

local hpass = require "hpass"
local S = require "support"
local aid = require "testaid"

local tests, test = S.suite()

local function int(n) return string.pack("i4", n) end

test("a message longer than the read (ERROR_MORE_DATA) is data", function()
  local srv, cli = assert(aid.msgpipe("m"))
  assert(aid.pipe_write(cli, int(7) .. int(9) .. int(11)))
  local h = assert(hpass.handle(srv))
  S.eq(h:read_int(), 7, "first int of the message")
  S.eq(h:read_int(), 9, "second")
  S.eq(h:read_int(), 11, "third")
  h:close(); aid.pipe_close(cli)
end)

test("a 0-byte message is not the end of the stream", function()
  for _, flags in ipairs({"m", ""}) do
    local srv, cli = assert(aid.msgpipe(flags))
    assert(aid.pipe_write(cli, ""))
    assert(aid.pipe_write(cli, ""))
    assert(aid.pipe_write(cli, int(5)))
    aid.pipe_close(cli)
    local h = assert(hpass.handle(srv))
    S.eq(h:read_int(), 5, "int after empty messages (" .. flags .. ")")
    local v, msg = h:read_int()
    S.eq(v, nil, "then the end"); S.eq(msg, nil, "and no error")
    h:close()
  end
end)

test("a disconnected named pipe reads as the end, writes as broken", function()
  local srv, cli = assert(aid.msgpipe(""))
  local h = assert(hpass.handle(cli))
  assert(aid.disconnect(srv))
  local v, msg = h:read_int()
  S.eq(v, nil, "read"); S.eq(msg, nil, "read error")
  local ok, _, code = h:write_int(1)
  S.eq(ok, nil, "write"); S.eq(code, 109, "write code (ERROR_BROKEN_PIPE)")
  h:close(); aid.pipe_close(srv)
end)

test("an overlapped pipe handle", function()
  local srv, cli = assert(aid.msgpipe("o"))
  local h = assert(hpass.handle(srv))
  assert(aid.pipe_write(cli, int(11)))
  S.eq(h:read_int(), 11, "read")
  assert(h:write_int(12))
  S.eq(aid.pipe_read(cli, 4), int(12), "written")
  -- a read that has to wait for the writer
  local t, j = aid.later(cli, 100, int(13))
  S.eq(h:read_int(), 13, "read that waited")
  aid.joined(t, j)
  aid.pipe_close(cli)
  local v, msg = h:read_int()
  S.eq(v, nil, "end"); S.eq(msg, nil, "end error")
  h:close()
end)

test("PIPE_NOWAIT: a read waits for data", function()
  local srv, cli = assert(aid.msgpipe(""))
  assert(aid.setnowait(cli))
  local h = assert(hpass.handle(cli))
  local t, j = aid.later(srv, 100, int(21))
  S.eq(h:read_int(), 21, "read")
  aid.joined(t, j)
  h:close(); aid.pipe_close(srv)
end)

test("PIPE_NOWAIT: a full pipe waits without spinning", function()
  local srv, cli = assert(aid.msgpipe("", 4096))
  assert(aid.setnowait(cli))
  local h = assert(hpass.handle(cli))
  local ints = {}
  for i = 1, 16384 do ints[i] = i end
  local t, j = aid.later(srv, 300)
  local t0, c0 = aid.ticks(), aid.cputime()
  assert(h:write_ints(ints))
  local wall, cpu = aid.ticks() - t0, aid.cputime() - c0
  h:close()
  S.eq(aid.joined(t, j), 65536, "bytes the reader got")
  assert(wall >= 250, "the write waited for the reader: " .. wall .. " ms")
  assert(cpu < wall / 2, ("CPU %d ms in %d ms"):format(cpu, wall))
  aid.pipe_close(srv)
end)

test("PIPE_NOWAIT message mode: a write larger than the buffer", function()
  local srv, cli = assert(aid.msgpipe("m", 1024))
  assert(aid.setnowait(cli))
  local h = assert(hpass.handle(cli))
  local ints = {}
  for i = 1, 2048 do ints[i] = i end
  local t, j = aid.later(srv, 100)
  assert(h:write_ints(ints))
  h:close()
  S.eq(aid.joined(t, j), 8192, "bytes the reader got")
  aid.pipe_close(srv)
end)

return tests
