-- A pre-fork worker for sockets_spec: answers the square-root protocol
-- (request "N\n", reply "N ROOT ID\n") on an inherited listening socket,
-- one connection at a time, until its lifeline pipe ends.
--
--   tcpworker.lua ID DELAY_MS  LISTEN LIFELINE READY
--
-- The last three arguments are the descriptors hpass appends.  The worker
-- writes its ID on READY once it is serving, and waits DELAY_MS before
-- each reply so that a test can kill it while it holds a connection.
local hpass = require "hpass"
local socket = require "socket"

local id, delay = arg[1], tonumber(arg[2]) / 1000
local listenfd = tonumber(arg[#arg - 2])
local life = assert(hpass.handle(arg[#arg - 1]))
local ready = assert(hpass.handle(arg[#arg]))

-- LuaSocket has no constructor from a descriptor: an unconnected object
-- takes the inherited one, and listen() (already listening: it only sets
-- the backlog again) makes it a server object.
local srv = socket.tcp()
srv:setfd(listenfd)
assert(srv:listen(1024))
srv:settimeout(0)  -- the other workers may take a connection first

-- socket.select takes anything with a getfd method
local lifeline = {getfd = function() return life:fileno() end}

assert(ready:write_int(tonumber(id)))
ready:close()

while true do
  local readable = socket.select({srv, lifeline}, nil, 5)
  if readable[lifeline] then os.exit(0) end  -- the test closed its end
  local c = srv:accept()
  if c then
    c:settimeout(10)
    local line = c:receive("*l")
    local n = tonumber(line)
    if delay > 0 then socket.sleep(delay) end
    if n then c:send(("%d %.3f %s\n"):format(n, math.sqrt(n), id)) end
    c:close()
  end
end
