-- Reports what hpass.listen_fds finds, for tests/spec/activation_spec.lua.
--
--   listenfds.lua [keep|serve] [ARG...]
--
-- Prints "ok N" and a line "fd name cloexec" per handle, or "fail msg
-- code" and whether descriptor 3 is close-on-exec; then the protocol's
-- variables as they are afterwards ("-" when unset) and the arguments
-- after the first.  keep: listen_fds(true).  serve: then accepts one
-- connection on each socket, in order, and answers with its name.
local hpass = require "hpass"

local mode = arg[1]
io.stdout:setvbuf("line")

-- "true"/"false" from /proc (O_CLOEXEC is octal 02000000), or "closed"
local function cloexec(fd)
  local f = io.open("/proc/self/fdinfo/" .. fd)
  if not f then return "closed" end
  local flags = tonumber(f:read("*a"):match("flags:%s*(%d+)"), 8)
  f:close()
  return tostring(math.floor(flags / 0x80000) % 2 == 1)
end

local handles, names, code = hpass.listen_fds(mode == "keep" or nil)
if handles then
  print("ok", #handles)
  for i, h in ipairs(handles) do print(h:fileno(), names[i], cloexec(h:fileno())) end
else
  print("fail", names, code)
  print("fd3", cloexec(3))
end
print("env", os.getenv("LISTEN_PID") or "-", os.getenv("LISTEN_FDS") or "-",
      os.getenv("LISTEN_FDNAMES") or "-")
print("args", table.concat(arg, " ", 2))
if mode == "serve" then
  local socket = require "socket"
  for i, h in ipairs(handles) do
    local s = socket.tcp()
    s:close()
    s:setfd(h:detach())
    assert(s:listen(8))
    s:settimeout(20)
    local c = assert(s:accept())
    c:send(names[i] .. "\n")
    c:close()
    s:close()
  end
end
