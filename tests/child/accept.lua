-- A LuaSocket server on an inherited listening socket: accept COUNT
-- (arg[1]) connections; on each, read one line and answer "NAME: LINE",
-- NAME being arg[2].
local hpass = require "hpass"
local socket = require "socket"

local count, name = tonumber(arg[1]), arg[2]
-- hpass checks the descriptor and makes it close-on-exec; detach then
-- hands it to LuaSocket, which has no constructor from a descriptor: an
-- unconnected object takes it, and listen() (the socket already listens:
-- this only sets the backlog again) makes that a server object.
local h = assert(hpass.handle(arg[#arg]))
local server = socket.tcp()
server:setfd(h:detach())
assert(server:listen(8))
server:settimeout(20)
for _ = 1, count do
  local c = assert(server:accept())
  c:settimeout(20)
  local line = assert(c:receive("*l"))
  assert(c:send(name .. ": " .. line .. "\n"))
  c:close()
end
server:close()
