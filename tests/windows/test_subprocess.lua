-- Pipes on the process object, communicate, pipeline, run's timeout and
-- the spawn options on Windows: executable and pipes work as on POSIX;
-- umask, uid, gid, groups and a group to join raise.

local hpass = require "hpass"
local S = require "support"
local aid = require "testaid"

local tests, test = S.suite()

local function lua(code) return {S.lua, "-e", code} end

test("\"pipe\" gives proc.stdin, proc.stdout and proc.stderr; with stderr = " ..
     "\"stdout\" only proc.stdout", function()
  local p = assert(hpass.spawn_with_handle(lua(
    "local s = io.read('a') io.stdout:write(s:upper()) io.stderr:write('e')"), {},
    {stdin = "pipe", stdout = "pipe", stderr = "pipe"}))
  S.eq(hpass.type(p.stdin), "handle", "stdin")
  p.stdin:write("pear")
  p.stdin:close()
  S.eq(p.stdout:read("a"), "PEAR", "stdout")
  S.eq(p.stderr:read("a"), "e", "stderr")
  S.eq(p:wait(), true, "ok")
  p.stdout:close(); p.stderr:close()
  local q = assert(hpass.spawn_with_handle(lua(
    "io.stdout:write('a') io.stdout:flush() io.stderr:write('b')"), {},
    {stdout = "pipe", stderr = "stdout"}))
  S.eq(q.stderr, nil, "no proc.stderr")
  S.eq(q.stdin, nil, "no proc.stdin")
  S.eq(q.stdout:read("a"), "ab", "merged")
  q:wait()
  q.stdout:close()
end)

test("communicate feeds and drains without deadlock, 1 MiB each way", function()
  local input = ("0123456789abcdef"):rep(65536)
  local p = assert(hpass.spawn_with_handle(lua(
    "io.stdin:setvbuf('full') local s = io.read('a') io.stdout:write(s) " ..
    "io.stderr:write(#s)"), {}, {stdin = "pipe", stdout = "pipe", stderr = "pipe"}))
  local out, err, ok, how, code = p:communicate(input, 60)
  S.eq(#out, #input, "out"); assert(out == input, "data differ")
  S.eq(err, tostring(#input), "err")
  S.eq(ok, true); S.eq(how, "exit"); S.eq(code, 0)
  S.eq(hpass.type(p.stdout), "closed handle", "pipes closed after")
end)

test("communicate's timeout leaves the child running, and a later call resumes",
     function()
  local p = assert(hpass.spawn_with_handle(lua(
    "io.stdout:write('a') io.stdout:flush() require('testaid').sleep(600) " ..
    "io.stdout:write(io.read('a'))"), {}, {stdin = "pipe", stdout = "pipe"}))
  local t0 = aid.ticks()
  local out, err, ok, how, secs = p:communicate("b", 0.2)
  local ms = aid.ticks() - t0
  S.eq(out, "a", "so far"); S.eq(err, nil); S.eq(ok, nil)
  S.eq(how, "timeout"); S.eq(secs, 0.2)
  assert(ms >= 180 and ms < 1500, ("returned after %d ms"):format(ms))
  S.eq(p:poll(), false, "still running")
  out, err, ok = p:communicate(nil, 30)
  S.eq(err, nil, "no stderr pipe")
  S.eq(out, "b", "the rest, input sent once"); S.eq(ok, true)
end)

test("pipeline joins commands by pipes; pipefail and each one's triple", function()
  local out, err, ok, how, code, st = hpass.pipeline({
    lua("io.write('b\\na\\n') io.stderr:write('1')"),
    lua("local t = {} for l in io.lines() do t[#t + 1] = l end table.sort(t) " ..
        "io.write(table.concat(t, ',')) io.stderr:write('2') os.exit(3)"),
    lua("io.write(io.read('a'):upper())")})
  S.eq(out, "A,B", "out")
  S.eq(#err, 2, "err of all")
  S.eq(ok, nil); S.eq(how, "exit"); S.eq(code, 3)
  S.eq(st[1][1], true); S.eq(st[2][3], 3); S.eq(st[3][1], true)
end)

test("pipeline's timeout ends every command", function()
  local t0 = aid.ticks()
  local res = table.pack(hpass.pipeline({lua("require('testaid').sleep(20000)"),
                                         lua("io.read('a')")}, {timeout = 0.3}))
  local ms = aid.ticks() - t0
  S.eq(res[4], "timeout", "how"); S.eq(res[5], 0.3)
  assert(ms < 3000, ("returned after %d ms"):format(ms))
  S.eq(#res[6], 2, "statuses")
end)

test("run's timeout ends the child", function()
  local ok, how, secs = hpass.run(lua("require('testaid').sleep(20000)"), {},
                                  {timeout = 0.2})
  S.eq(ok, nil); S.eq(how, "timeout"); S.eq(secs, 0.2)
end)

test("executable runs the program with argv as given", function()
  local out = hpass.capture({"not-lua-at-all", "-e", "io.write(arg[0])"},
                            {executable = S.lua})
  S.eq(out, "not-lua-at-all", "argv[1] as the program sees it")
  local p, msg = hpass.spawn_with_handle({S.lua}, {}, {executable = S.dir .. "\\nope.exe"})
  S.eq(p, nil, "missing")
  S.match(msg, "nope.exe")
end)

test("umask, uid, gid, groups and a numeric group raise", function()
  for _, o in ipairs({{umask = 18}, {uid = 0}, {gid = 0}, {groups = {}}}) do
    local k = next(o)
    local ok, msg = pcall(hpass.spawn_with_handle, {S.lua, "-e", ""}, {}, o)
    S.eq(ok, false, k)
    S.match(msg, "option '" .. k .. "' is not supported on this system")
  end
  local ok, msg = pcall(hpass.run, {S.lua, "-e", ""}, {}, {group = 5})
  S.eq(ok, false)
  S.match(msg, "option 'group' must be a boolean on this system")
end)

return tests
