-- Lua files are handled through Lua's own C runtime, whichever runtime
-- hpass was linked with (tools/test-windows.sh runs this file and test_io
-- again with hpass and testaid on ucrt and Lua on msvcrt, and with Lua on
-- ucrt and hpass and testaid on msvcrt).

local hpass = require "hpass"
local S = require "support"
local aid = require "testaid"

local tests, test = S.suite()

test("which C runtime this run links hpass with", function()
  local want = assert(os.getenv("HPASS_TEST_CRT"), "HPASS_TEST_CRT not set")
  S.eq(aid.owncrt():lower(), want, "testaid's runtime")
end)

test("read-ahead of a Lua file, as Lua's runtime keeps it", function()
  local name = S.tmp .. "\\hpass-crt.bin"
  local f = assert(io.open(name, "wb"))
  assert(f:write("0123456789"))
  S.eq(aid.readahead(f), 0, "while writing")
  f:close()
  f = assert(io.open(name, "rb"))
  S.eq(aid.readahead(f), 0, "before reading")
  S.eq(f:read(1), "0", "first byte")
  S.eq(aid.readahead(f), 9, "after one byte")
  S.eq(aid.take(f, 4), "1234", "taken")
  S.eq(aid.readahead(f), 5, "left")
  S.eq(f:read("a"), "56789", "the rest, through Lua")
  S.eq(aid.readahead(f), 0, "at the end")
  f:close()
  f = assert(io.open(name, "r+b"))
  S.eq(f:read(2), "01", "update stream")
  S.eq(aid.readahead(f), 8, "update stream reading")
  assert(f:seek("cur"))
  assert(f:write("X"))
  S.eq(aid.readahead(f), 0, "update stream writing")
  f:close()
  os.remove(name)
end)

test("a Lua file whose reader has gone: broken pipe, 109", function()
  local r, w = assert(hpass.pipe())
  local f = assert(w:tofile("wb"))
  assert(f:setvbuf("full"))
  assert(f:write("x"))
  r:close()
  local ok, msg, code = hpass.write_int(f, 1)
  S.eq(ok, nil, "write_int")
  S.eq(code, 109, "code (ERROR_BROKEN_PIPE): " .. tostring(msg))
  f:close()
end)

test("a file from tofile is Lua's to write, read and close", function()
  local r, w = assert(hpass.pipe())
  local f = assert(w:tofile("wb"))
  assert(hpass.write_int(f, 0x64636261))
  assert(f:write("tail"))
  assert(f:close())
  local g = assert(r:tofile("rb"))
  S.eq(g:read("a"), "abcdtail", "bytes")
  assert(g:close())
end)

return tests
