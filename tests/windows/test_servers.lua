-- Servers on Windows: a listening socket passed with `handles` to a child
-- that serves on it; `listen` and listen_fds, which have no protocol here;
-- console control events as signals.

local hpass = require "hpass"
local S = require "support"
local aid = require "testaid"

local tests, test = S.suite()

-- One connection to port: send n, read back what the server answers.
local function ask(port, n)
  local c = assert(hpass.handle(assert(aid.tcp_connect(port))))
  c:settimeout(20)
  assert(c:write_int(n))
  local a = assert(c:read_int())
  c:close()
  return a
end

test("a listening socket passed with handles: the child serves on it", function()
  local ls, port = assert(aid.tcp_listen())
  local l = assert(hpass.handle(ls))
  local p = assert(hpass.spawn_with_handle({S.lua, S.child, "serve", "3"}, l))
  l:close()                         -- the child holds the socket now
  for n = 1, 3 do S.eq(ask(port, n * 10), n * 10 + 1, "answer " .. n) end
  local ok, how, code = p:wait()
  S.eq(ok, true, "child ok " .. tostring(how) .. " " .. tostring(code))
end)

test("listen raises, and says to pass listening sockets with handles", function()
  local ls = assert(aid.tcp_listen())
  local l = assert(hpass.handle(ls))
  local ok, err = pcall(hpass.spawn_with_handle, {S.lua, S.child, "exit", "0"}, {},
                        {listen = {l}})
  S.eq(ok, false, "raised")
  S.match(err, "option 'listen' is not supported on this system %(pass listening "
               .. "sockets with handles%)")
  l:close()
end)

test("listen_fds finds nothing: two empty arrays", function()
  local h, names = hpass.listen_fds()
  S.eq(type(h), "table", "handles")
  S.eq(#h, 0, "no handles")
  S.eq(#names, 0, "no names")
end)

test("signals: INT, BREAK and TERM can be caught; POSIX's cannot; one handle per event", function()
  local s = assert(hpass.signals{"INT", "BREAK"})
  S.eq(hpass.type(s), "signals", "type")
  S.eq(tostring(s), "hpass.signals (INT, BREAK)", "tostring")
  local ok, err = pcall(hpass.signals, {"HUP"})
  S.eq(ok, false, "HUP raised")
  S.match(err, "signal 'HUP' cannot be caught")
  ok, err = pcall(hpass.signals, {"TERM", "INT"})
  S.eq(ok, false, "second INT raised")
  S.match(err, "signal 'INT' is already caught by another signals handle")
  s:settimeout(0)
  local name, why = s:read_signal()
  S.eq(name, nil, "nothing yet")
  S.eq(why, "timeout", "timeout")
  local _, _, serr = hpass.select({s}, nil, 0.05)
  S.eq(serr, "timeout", "select: nothing")
  S.eq(s:close(), true, "close")
  S.eq(s:close(), true, "close again")
  s = assert(hpass.signals{"INT", "TERM"})  -- free again
  s:close()
end)

return tests
