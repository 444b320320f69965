-- Bytes, lines and capture on Windows: the child's standard streams are
-- pipes handed over in STARTUPINFO, as CreateProcessW wants.

local hpass = require "hpass"
local S = require "support"
local aid = require "testaid"

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

-- Wall and CPU milliseconds that f(...) took, and its results.
local function timed(f, ...)
  local t0, c0 = aid.ticks(), aid.cputime()
  local res = table.pack(f(...))
  return res, aid.ticks() - t0, aid.cputime() - c0
end

test("no deadlock whatever the sizes and interleaving: a child that " ..
     "writes n bytes before it reads n of input, 4 KiB to 1 MiB", function()
  for _, n in ipairs({4096, 65536, 262144, 1048576}) do
    local input = ("0123456789abcdef"):rep(n // 16)
    -- the timeout only keeps a deadlock from hanging the run
    local res, ms = timed(hpass.capture, lua(
      ("io.stdout:write(('x'):rep(%d)) io.stdout:flush() " ..
       "io.stdin:setvbuf('full') local s = io.stdin:read(%d) " ..
       "io.stderr:write(#s == %d and s == ('0123456789abcdef'):rep(%d) " ..
       "and 'same' or 'differs')"):format(n, n, n, n // 16)),
      {input = input, timeout = 60})
    S.eq(res[4], "exit", n .. " bytes: how it ended (" .. ms .. " ms)")
    S.eq(res[3], true, n .. " bytes: ok")
    S.eq(#res[1], n, n .. " bytes: output")
    S.eq(res[2], "same", n .. " bytes: the input as the child read it")
  end
end)

test("capture's timeout kills a child that never reads its input, at " ..
     "the deadline, and sleeps meanwhile", function()
  local res, ms, cpu = timed(hpass.capture, lua(
    "io.stdout:write('started') io.stdout:flush() " ..
    "require('testaid').sleep(20000)"),
    {input = ("x"):rep(1048576), timeout = 0.5})
  S.eq(res[1], "started", "out so far"); S.eq(res[3], nil, "ok")
  S.eq(res[4], "timeout", "how"); S.eq(res[5], 0.5, "the seconds")
  assert(ms >= 480 and ms < 1500, ("returned after %d ms, not 0.5 s"):format(ms))
  assert(cpu < 250, ("used %d ms of CPU in 0.5 s"):format(cpu))
end)

test("capture's timeout holds against a child that floods its output", function()
  local res, ms = timed(hpass.capture, lua(
    "local s = ('x'):rep(65536) for _ = 1, 1024 do io.stdout:write(s) end"),
    {timeout = 0.3})
  S.eq(res[4], "timeout", ("how (after %d ms, %d bytes)"):format(ms, #res[1]))
  assert(ms >= 280 and ms < 1300, ("returned after %d ms, not 0.3 s"):format(ms))
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
