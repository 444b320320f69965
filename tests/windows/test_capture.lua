-- Bytes, lines and capture on Windows: the child's standard streams are
-- pipes handed over in STARTUPINFO, as CreateProcessW wants.

local hpass = require "hpass"
local S = require "support"

local tests, test = S.suite()

-- lua.exe -e CODE: a child whose behaviour is one chunk of Lua.
local function lua(code) return {S.lua, "-e", code} end

test("capture returns output, error and the wait triple", function()
  local out, err, ok, how, code = hpass.capture(
    lua("io.stdout:write('out') io.stderr:write('err') os.exit(3)"))
  S.eq(out, "out", "out"); S.eq(err, "err", "err")
  S.eq(ok, nil); S.eq(how, "exit"); S.eq(code, 3)
end)

test("capture feeds input and moves 4 MiB each way at once", function()
  local input = string.rep("0123456789abcdef", 262144)
  local out, err, ok = hpass.capture(lua(
    "io.stdin:setvbuf('full') local s = io.stdin:read('a') " ..
    "io.stdout:write(s) io.stderr:write(s)"), {input = input})
  S.eq(ok, true, "ok")
  S.eq(#out, #input, "out"); S.eq(#err, #input, "err")
  assert(out == input and err == input, "data differ")
end)

test("capture with stderr merged, and with a timeout", function()
  local out, err = hpass.capture(lua("io.stdout:write('a') io.stdout:flush() " ..
                                     "io.stderr:write('b')"), {stderr = "stdout"})
  S.eq(out, "ab", "merged"); S.eq(err, nil, "no err")
  local o, e, ok, how = hpass.capture(lua("io.stdout:write('x') io.stdout:flush() " ..
                                          "require('testaid').sleep(20000)"), {timeout = 0.5})
  S.eq(o, "x", "partial"); S.eq(e, ""); S.eq(ok, nil); S.eq(how, "timeout")
end)

test("capture of a program that does not exist", function()
  local ok, msg = hpass.capture({"no-such-program-here"})
  S.eq(ok, nil, "result")
  S.match(msg, "no%-such%-program%-here")
end)

test("lines and bytes mixed with integers on a pipe", function()
  local r, w = assert(hpass.pipe())
  assert(w:write("one\r\n", "two\n"))
  assert(w:write_int(7))
  assert(w:write("tail"))
  w:close()
  S.eq(r:read("l"), "one\r", "bytes are bytes: no text mode")
  S.eq(r:read("L"), "two\n")
  S.eq(r:read_int(), 7)
  S.eq(r:read("a"), "tail")
  S.eq(r:read("l"), nil)
  r:close()
end)

test("a 'null' standard stream", function()
  local out = hpass.capture(lua("io.write(io.read('a') or 'nil')"), {stdin = "null"})
  S.eq(out, "", "null input")
end)

return tests
