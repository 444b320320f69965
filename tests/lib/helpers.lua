-- Shared helpers for the hpass test suite.
local hpass = require "hpass"

local H = {}

H.lua = os.getenv("HPASS_TEST_LUA") or "lua5.4"
--- The tests/ folder (this file is in tests/lib/), and the checkout's root.
H.dir = (debug.getinfo(1, "S").source:match("^@(.*)/lib/[^/]*$")) or "tests"
H.root = H.dir .. "/.."
--- A test program built from tests/peers/ (make test-helpers), in
-- tests/bin or where HPASS_TEST_BIN says (the cross builds' own).
local bindir = os.getenv("HPASS_TEST_BIN") or (H.dir .. "/bin")
function H.peer(name)
  return bindir .. "/" .. name
end
H.cpeer = H.peer("cpeer")

--- Path of a child script in tests/child/.
function H.child(name)
  return H.dir .. "/child/" .. name .. ".lua"
end

--- A fresh temporary file name (removed by H.cleanup).
local temps = {}
function H.tmpname()
  local name = os.tmpname()
  temps[#temps + 1] = name
  return name
end

--- A temporary file holding the Lua script src: its name (removed by
-- H.cleanup).  A file, not `lua -e`, which the sanitizers' interpreter
-- does not take.
function H.script(src)
  local name = H.tmpname()
  local f = assert(io.open(name, "w"))
  assert(f:write(src))
  f:close()
  return name
end

function H.cleanup()
  for i = #temps, 1, -1 do
    os.remove(temps[i])
    temps[i] = nil
  end
end

function H.readfile(name)
  local f = assert(io.open(name, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

--- Start argv with the given handle(s) and options, its standard output
-- going to a fresh temporary file; returns the process and the file's name.
function H.start(argv, handles, options)
  local out = H.tmpname()
  local f = assert(io.open(out, "wb"))
  options = options or {}
  options.stdout = f
  local proc = assert(hpass.spawn_with_handle(argv, handles or {}, options))
  f:close()
  return proc, out
end

--- Run argv as H.start does and wait; returns the output and the wait
-- triple.
function H.capture(argv, handles, options)
  local proc, out = H.start(argv, handles, options)
  local ok, how, code = proc:wait()
  return H.readfile(out), ok, how, code
end

--- Lines of s as an array.
function H.lines(s)
  local t = {}
  for l in s:gmatch("[^\n]+") do t[#t + 1] = l end
  return t
end

--- Descriptors open in this process (Linux /proc).
function H.openfds()
  local p = io.popen("ls /proc/" .. H.pid() .. "/fd")
  local t = {}
  for l in p:lines() do t[#t + 1] = tonumber(l) end
  p:close()
  table.sort(t)
  return t
end

--- The state letter of process pid (/proc/PID/stat: "R", "S", "T" when
-- stopped, "Z" when it has ended and waits to be collected), or nil when
-- there is no such process.
function H.procstate(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "rb")
  if not f then return nil end
  local s = f:read("*a")  -- nil when the process went after the open
  f:close()
  return s and s:match("%) (%S) ")
end

--- Wait up to `seconds` for f() to be true; its last result.
function H.within(seconds, f)
  local socket = require "socket"
  local deadline = socket.gettime() + seconds
  repeat
    if f() then return true end
    socket.sleep(0.01)
  until socket.gettime() > deadline
  return f()
end

--- This process's pid, from /proc/self/stat read by this process.
function H.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("*n")
  f:close()
  return pid
end

--- Count of descriptors open in this process, without spawning anything.
function H.nfds()
  local n = 0
  local p = io.open("/proc/self/fd")
  if p then p:close() end
  for fd = 0, 1023 do
    local f = io.open("/proc/self/fd/" .. fd)
    if f then n = n + 1; f:close() end
  end
  return n
end

--- Whether descriptor fd of this process is close-on-exec: /proc shows
-- O_CLOEXEC (octal 02000000) in the flags of fdinfo.  Plain arithmetic
-- instead of `&`, which Lua 5.1, 5.2 and LuaJIT do not have.
function H.cloexec(fd)
  local info = H.readfile("/proc/self/fdinfo/" .. fd)
  local flags = assert(tonumber(info:match("flags:%s*(%d+)"), 8))
  return math.floor(flags / 0x80000) % 2 == 1
end

--- Lua 5.x version as a number (5.1 for LuaJIT), and whether this is LuaJIT.
H.version = tonumber(_VERSION:match("%d+%.%d+"))
H.luajit = type(rawget(_G, "jit")) == "table"

--- Pattern for "bad argument #n to 'name'".  hpass names its own
-- function on every Lua version, also under pcall (Lua's own functions say
-- '?' there before 5.3).
function H.badarg(n, name)
  return "bad argument #" .. n .. " to '" .. name .. "'"
end

--- A connected pair of loopback TCP sockets (LuaSocket): client, server
-- side.  The listening socket is closed again; connect and accept are
-- bounded by a timeout, so a broken loopback fails instead of hanging.
function H.tcppair()
  local socket = require "socket"
  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  local client = assert(socket.tcp())
  client:settimeout(20)
  assert(client:connect("127.0.0.1", port))
  server:settimeout(20)
  local conn = assert(server:accept())
  server:close()
  return client, conn
end

--- Error message of a call that must raise.
function H.raises(f, ...)
  local ok, err = pcall(f, ...)
  assert(not ok, "expected an error")
  return tostring(err)
end

return H
