-- Spawning: exactly the given handles, quoting, options, errors, wait, kill.

local hpass = require "hpass"
local S = require "support"
local aid = require "testaid"

local tests, test = S.suite()

-- A leak shows as a late end of stream: a child holding a copy of the
-- write end keeps the pipe open until it exits.  (Adopting the parent's
-- handle value in the child would prove nothing on real Windows, where
-- that value is often some other valid handle of the child's.)
local function end_after(lr, lw, spawn)
  assert(aid.setinherit(lw:fileno(), true))
  local wait = spawn()
  lw:close()
  local t0 = aid.ticks()
  local v, msg = lr:read_int()
  local ms = aid.ticks() - t0
  S.eq(v, nil, "read"); S.eq(msg, nil, "read error")
  wait()
  lr:close()
  return ms
end

test("a handle not passed does not reach the child", function()
  local lr, lw = assert(hpass.pipe())
  local ms = end_after(lr, lw, function()
    local p = assert(hpass.spawn_with_handle({S.lua, S.child, "sleep", "2000"}, {}))
    return function() assert(p:kill()); p:wait() end
  end)
  assert(ms < 1000, ("end of stream after %d ms: the child had a copy"):format(ms))
end)

test("the leak test notices a leak (CreateProcess inheriting all)", function()
  local lr, lw = assert(hpass.pipe())
  local ms = end_after(lr, lw, function()
    local h = assert(aid.spawn_all(('"%s" "%s" sleep 2000'):format(S.lua, S.child), true))
    return function() S.eq(aid.waitproc(h), 0, "child exit") end
  end)
  assert(ms >= 1500, ("end of stream after %d ms: no leak seen"):format(ms))
end)

test("the passed handle keeps the parent's copy non-inheritable", function()
  local r, w = assert(hpass.pipe())
  local p = assert(S.capture({S.lua, S.child, "sqrt"}, r))
  S.eq(aid.inheritable(r:fileno()), false, "parent's read end")
  for n = 1000, 8000, 1000 do assert(w:write_int(n)) end
  w:close()
  assert(p:wait())
  r:close()
end)

test("arguments survive quoting", function()
  local args = {
    "plain", "", "a b", "tab\there", 'quote"in', [[back\slash]], [[trail\]],
    [[trail space\ ]], [[two\\]], [[x\"y]], [[x\\"y]], '"', [[\]], " lead",
    [[\\server\share\]], "%PATH%", "a&b|c<d>", "new\nline",
  }
  local wide = {"héllo wörld", "日本語", "emoji 😀"}
  local argv = {S.lua, S.child, "args"}
  for _, a in ipairs(args) do argv[#argv + 1] = a end
  for _, a in ipairs(wide) do argv[#argv + 1] = a end
  local out, ok = S.run(argv, {})
  assert(ok, "child failed")
  local crt, w = out:match("^(.-)%-%-\n(.*)$")
  assert(crt, "no separator in " .. out)
  local want = {}
  for _, a in ipairs(args) do want[#want + 1] = ("%q"):format(a) .. "\n" end
  local n = #want
  S.eq(crt:sub(1, #table.concat(want)), table.concat(want), "C runtime argv")
  for _, a in ipairs(wide) do want[#want + 1] = ("%q"):format(a) .. "\n" end
  S.eq(w, table.concat(want), "CommandLineToArgvW")
  assert(n > 0)
end)

test("cwd and env options", function()
  local d = S.tmp .. "\\hpass cwd ü"
  assert(aid.mkdir(d))
  assert(aid.writefile(d .. "\\marker.txt", "marker here\n"))
  local env = {
    HPASS_X = "välue with spaces",
    LUA_PATH = os.getenv("LUA_PATH"),
    LUA_CPATH = os.getenv("LUA_CPATH"),
    SystemRoot = os.getenv("SystemRoot"),
  }
  local out, ok = S.run({S.lua, S.child, "where"}, {}, {cwd = d, env = env})
  assert(ok, "child failed: " .. out)
  S.eq(out, d .. "\nvälue with spaces\nno PATH\nmarker here\n", "child saw")
end)

test("stdin and stderr options", function()
  local ir, iw = assert(hpass.pipe())
  local er, ew = assert(hpass.pipe())
  local p, out = S.capture({S.lua, S.child, "cat"}, {}, {stdin = ir, stderr = ew})
  assert(p, out)
  ir:close(); ew:close()
  local f = assert(iw:tofile("w"))
  f:write("through stdin\n")
  f:close()
  S.eq(S.readall(out), "through stdin\n", "stdout")
  S.eq(S.readall(er), "14\n", "stderr")
  assert(p:wait())
end)

test("an empty environment", function()
  local p = assert(hpass.spawn_with_handle({S.lua, S.child, "exit", "7"}, {}, {env = {}}))
  S.eq(select(3, p:wait()), 7, "exit code")
end)

test("program not found: fail, message, code", function()
  local r, w = assert(hpass.pipe())
  local p, msg, code = hpass.spawn_with_handle({"Z:\\no\\such\\dir\\prog.exe"}, r)
  S.eq(p, nil, "result")
  assert(code == 2 or code == 3, "code " .. tostring(code))
  S.match(msg, "^Z:\\no\\such\\dir\\prog%.exe: %S", "message")
  S.match(msg, "[^%.%s]$", "message end")
  p, msg, code = hpass.spawn_with_handle({"hpass-no-such-program"}, r)
  S.eq(p, nil, "bare name")
  S.match(msg, "hpass%-no%-such%-program", "bare name message")
  S.eq(code, 2, "bare name code (ERROR_FILE_NOT_FOUND)")
  S.eq(aid.inheritable(r:fileno()), false, "still not inheritable")
  r:close(); w:close()
end)

test("spawn with a closed handle raises, with a bad number fails", function()
  local r, w = assert(hpass.pipe())
  r:close()
  local ok, err = pcall(hpass.spawn_with_handle, {S.lua, S.child, "sqrt"}, r)
  S.eq(ok, false, "pcall")
  S.match(err, "closed handle", "error")
  local p, msg, code = hpass.spawn_with_handle({S.lua, S.child, "sqrt"}, 999999)
  S.eq(p, nil, "bad number")
  S.eq(code, 6, "code (ERROR_INVALID_HANDLE)")
  S.match(msg, "%S", "message")
  w:close()
end)

test("wait gives the exit code, all 32 bits of it", function()
  for _, c in ipairs({0, 3, 255, 256, 70000, -1}) do
    local p = assert(hpass.spawn_with_handle({S.lua, S.child, "exit", tostring(c)}, {}))
    local ok, how, code = p:wait()
    local want = c & 0xffffffff
    S.eq(ok, c == 0 or nil, "ok for " .. c)
    S.eq(how, "exit", "how for " .. c)
    S.eq(code, want, "code for " .. c)
    local ok2, how2, code2 = p:wait()
    assert(ok2 == ok and how2 == how and code2 == code, "second wait")
  end
end)

test("poll, kill and wait", function()
  local r, w = assert(hpass.pipe())
  local p, out = S.capture({S.lua, S.child, "block"}, r)
  assert(p, out)
  r:close()
  local f = assert(out:tofile("r"))
  S.eq(f:read("l"), "ready", "child started")
  S.eq(p:poll(), false, "poll while running")
  assert(p:kill(0), "kill 0 only checks")
  S.eq(p:poll(), false, "still running")
  assert(p:kill())
  local ok, how, code = p:wait()
  S.eq(ok, nil, "ok")
  S.eq(how, "exit")
  S.eq(code, 15, "TERM as exit code")
  local k, msg, kcode = p:kill()
  S.eq(k, nil, "kill after wait")
  S.match(msg, "already", "message")
  assert(kcode, "code")
  f:close(); w:close()
end)

test("kill with a signal name", function()
  local r, w = assert(hpass.pipe())
  local p = assert(hpass.spawn_with_handle({S.lua, S.child, "block"}, r))
  assert(p:kill("KILL"))
  S.eq(select(3, p:wait()), 9, "KILL as exit code")
  local ok = pcall(p.kill, p, "STOP")
  S.eq(ok, false, "STOP has no meaning here")
  r:close(); w:close()
end)

test("a socket passed to a child", function()
  local a, b = assert(hpass.socketpair())
  local p = assert(hpass.spawn_with_handle({S.lua, S.child, "sum"}, b))
  b:close()
  for i = 1, 100 do assert(a:write_int(i)) end
  assert(a:write_int(0))
  S.eq(a:read_int(), 5050, "sum")
  S.eq(a:read_int(), nil, "then the end")
  assert(p:wait())
  a:close()
end)

test("three handles, one of them twice", function()
  local r1, w1 = assert(hpass.pipe())
  local r2, w2 = assert(hpass.pipe())
  local p = assert(hpass.spawn_with_handle({S.lua, S.child, "three"}, {r1, r1, w2}))
  r1:close(); w2:close()
  assert(w1:write_int(5))
  assert(w1:write_int(6))
  S.eq(r2:read_int(), 30, "product")
  S.eq(r2:read_int(), 1, "same number twice")
  assert(p:wait())
  w1:close(); r2:close()
end)

return tests
