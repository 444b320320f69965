-- tests/windows/child.lua - the child side of the Windows tests.
--   child.lua MODE [args...] [handle numbers appended by hpass]

local mode = arg[1]

if mode == "sqrt" then
  -- the seed example's child
  local hpass = require "hpass"
  local r = assert(hpass.handle(arg[#arg]))
  for _ = 1, 8 do
    local n = assert(r:read_int())
    print(("Dad, the square root of %d is %3.2f."):format(n, math.sqrt(n)))
  end

elseif mode == "sleep" then
  -- sleep arg[2] ms and exit: a child that holds whatever it inherited
  require("testaid").sleep(math.tointeger(tonumber(arg[2])))

elseif mode == "exit" then
  os.exit(math.tointeger(tonumber(arg[2])))

elseif mode == "args" then
  -- every argument as the C runtime split it, then as CommandLineToArgvW
  local aid = require "testaid"
  for i = 2, #arg do io.write(("%q"):format(arg[i]), "\n") end
  io.write("--\n")
  local w = aid.argvw()
  for i = 3, #w do io.write(("%q"):format(w[i]), "\n") end

elseif mode == "block" then
  -- read until the parent closes the pipe (or kills us)
  local hpass = require "hpass"
  local r = assert(hpass.handle(arg[#arg]))
  print("ready")
  io.stdout:flush()
  while r:read_int() do end

elseif mode == "sum" then
  -- read ints from a socket until 0, answer with their sum
  local hpass = require "hpass"
  local s = assert(hpass.handle(arg[#arg]))
  local sum = 0
  while true do
    local n = assert(s:read_int())
    if n == 0 then break end
    sum = sum + n
  end
  assert(s:write_int(sum))
  s:close()

elseif mode == "three" then
  -- handles a, b (the same pipe, passed twice) and c: write a*b to c
  local hpass = require "hpass"
  local a, b, c = assert(hpass.inherited(3))
  local x, y = assert(a:read_int()), assert(b:read_int())
  assert(c:write_int(x * y))
  assert(c:write_int(arg[#arg - 2] == arg[#arg - 1] and 1 or 0))
  c:close()
  a:close()

elseif mode == "cat" then
  -- stdin to stdout, and its length to stderr
  local data = io.read("a")
  io.write(data)
  io.stderr:write(#data, "\n")

elseif mode == "recv" then
  -- take a pipe's read end from the socket, sum its ints, answer
  local hpass = require "hpass"
  local s = assert(hpass.handle(arg[#arg]))
  local r = assert(hpass.recv_handle(s))
  local sum = 0
  for _, v in ipairs(r:read_ints(1000) or {}) do sum = sum + v end
  assert(s:write_int(sum))
  s:close()

elseif mode == "recvmix" then
  -- one message with a pipe's read end and a socket: sum the pipe's ints,
  -- answer on the socket with the sum and what the socket is here
  local hpass = require "hpass"
  local aid = require "testaid"
  local ch = assert(hpass.handle(arg[#arg]))
  local r, s = hpass.recv_handle(ch)
  assert(r and s, "two handles")
  local sum = 0
  for _, v in ipairs(r:read_ints(1000) or {}) do sum = sum + v end
  assert(s:write_ints({sum, aid.issocket(s:fileno()) and 1 or 0,
                       aid.inheritable(s:fileno()) and 1 or 0}))
  s:close(); r:close(); ch:close()

elseif mode == "sendexit" then
  -- send a handle and exit at once, before anyone could receive it
  local hpass = require "hpass"
  local ch = assert(hpass.handle(arg[#arg]))
  local r, w = assert(hpass.pipe())
  assert(hpass.send_handle(ch, r))
  r:close(); w:close()
  os.exit(0)

elseif mode == "sendunload" then
  -- send a handle from a Lua state that then closes, unloading hpass
  -- unless the thread that serves the message holds it; this state never
  -- loads hpass.  Say so on stdout, then stay alive until stdin ends.
  local aid = require "testaid"
  assert(aid.in_new_state([[
    local hpass = require "hpass"
    local ch = assert(hpass.handle((...)))
    local r, w = assert(hpass.pipe())
    assert(hpass.send_handle(ch, r))
    assert(w:write_int(321))
  ]], arg[#arg]))
  print("closed")
  io.stdout:flush()
  io.read("l")

elseif mode == "buffered" then
  -- a full-buffered write never flushed by us: exit must flush it
  local hpass = require "hpass"
  local h = assert(hpass.handle(arg[#arg]))
  assert(h:setvbuf("full"))
  assert(h:write_int(99))
  if arg[2] == "os.exit" then os.exit(0) end

elseif mode == "where" then
  local aid = require "testaid"
  print(aid.cwd())
  print(aid.getenv("HPASS_X"))
  print(os.getenv("PATH") == nil and "no PATH" or "PATH")
  local f = io.open("marker.txt", "r")
  print(f and f:read("l") or "no marker")

elseif mode == "env" then
  -- the value of each name given, or "nil"
  local aid = require "testaid"
  for i = 2, #arg do print(aid.getenv(arg[i]) or "nil") end

elseif mode == "tree" then
  -- two children (each holding our stdout), their pids, then wait
  local hpass = require "hpass"
  local lua = os.getenv("HPASS_TEST_LUA")
  local kids = {}
  for i = 1, 2 do
    kids[i] = assert(hpass.spawn_with_handle({lua, arg[0], "sleep", "30000"}, {}))
    print(kids[i].pid)
  end
  print("started")
  io.stdout:flush()
  for i = 1, 2 do kids[i]:wait() end

elseif mode == "forkexit" then
  -- two children that hold our stdout, their pids, then exit at once
  local hpass = require "hpass"
  local lua = os.getenv("HPASS_TEST_LUA")
  for _ = 1, 2 do
    print(assert(hpass.spawn_with_handle({lua, arg[0], "sleep", "30000"}, {})).pid)
  end
  io.stdout:flush()

elseif mode == "sockcheck" then
  -- what select, read_int with a timeout and read("a") at the end do with
  -- the inherited socket, timed (wall and CPU ms), one line each on
  -- stdout; with arg[2] "fake" hpass is told it is no socket, as some
  -- layered providers would
  local hpass = require "hpass"
  local aid = require "testaid"
  if arg[2] == "fake" then assert(aid.fake(hpass.pipe, "socket", true)) end
  local s = assert(hpass.handle(arg[#arg]))
  local function timed(f, ...)
    local t0, c0 = aid.ticks(), aid.cputime()
    local res = table.pack(f(...))
    return res, aid.ticks() - t0, aid.cputime() - c0
  end
  local res, ms, cpu = timed(hpass.select, {s}, nil, 0.5)
  print("select", #res[1], tostring(res[3]), ms, cpu)
  assert(s:settimeout(0.5))
  res, ms, cpu = timed(s.read_int, s)
  print("read_int", tostring(res[1]), tostring(res[2]), tostring(res[3]), ms, cpu)
  assert(s:write_int(1))  -- the parent's cue: send now
  res = timed(hpass.select, {s}, nil, 10)
  print("ready", #res[1])
  print("value", s:read_int())
  assert(s:settimeout(nil))
  res, ms, cpu = timed(s.read, s, "a")
  print("rest", res[1], ms, cpu)
  io.stdout:flush()

elseif mode == "dwp" then
  -- a child that sleeps, with die_with_parent when arg[2] is "on"; its
  -- pid, then wait: the test ends this process and looks at the child
  local hpass = require "hpass"
  local p = assert(hpass.spawn_with_handle(
    {os.getenv("HPASS_TEST_LUA"), arg[0], "sleep", "30000"}, {},
    {die_with_parent = arg[2] == "on"}))
  print(p.pid)
  io.stdout:flush()
  p:wait()

elseif mode == "environ" then
  -- the value hpass.environ() has for each name given, or "nil"
  local e = require("hpass").environ()
  for i = 2, #arg do print(e[arg[i]] or "nil") end

elseif mode == "envnames" then
  -- the names of the environment block, in its order
  local aid = require "testaid"
  for _, n in ipairs(aid.envnames()) do print(n) end

elseif mode == "serve" then
  -- accept arg[2] connections on the inherited listening socket; answer
  -- each integer with itself plus one
  local hpass = require "hpass"
  local aid = require "testaid"
  local l = assert(hpass.handle(arg[#arg]))
  for _ = 1, tonumber(arg[2]) do
    local c = assert(hpass.handle(assert(aid.tcp_accept(l:fileno()))))
    c:settimeout(20)
    assert(c:write_int(assert(c:read_int()) + 1))
    c:close()
  end
  l:close()

elseif mode == "ctrl" then
  -- hold INT, say so on the inherited pipe, write the signal that comes
  -- within arg[2] ms, let go of it and say so, then wait as long again:
  -- the next Ctrl+C ends us
  local hpass = require "hpass"
  local ms = math.tointeger(tonumber(arg[2]))
  local w = assert(hpass.handle(arg[#arg]))
  local s = assert(hpass.signals{"INT"})
  s:settimeout(ms / 1000)
  assert(w:write("ready\n"))
  assert(w:write(tostring(s:read_signal()), "\n"))
  s:close()
  assert(w:write("closed\n"))
  require("testaid").sleep(ms)
  assert(w:write("survived\n"))
  w:close()

else
  io.stderr:write("child.lua: unknown mode ", tostring(mode), "\n")
  os.exit(2)
end
