-- Passing a listening socket to a child.
--
--   lua5.4 examples/socket.lua
--
-- The parent makes a TCP socket listening on 127.0.0.1 (a free port) with
-- LuaSocket, and starts a copy of this script that inherits only that
-- socket.  The child serves QUESTIONS connections on it: each brings a
-- number, and gets back its square root.  The parent closes its own copy
-- of the socket at once -- the port stays open, as the child holds it --
-- and then connects as a client.
--
-- Needs LuaSocket (Debian: lua-socket).  hpass passes sockets; it does
-- not make TCP ones.

local hpass = require "hpass"
local socket = require "socket"

local QUESTIONS = {16, 2, 1000}

local function die(...)
  io.stderr:write("socket: ", table.concat({...}, " "), "\n")
  os.exit(1)
end

if arg[1] == "server" then
  local count = tonumber(arg[2])
  local h, err = hpass.handle(arg[#arg])
  if not h then die("bad handle:", err) end
  -- LuaSocket makes no socket object from a descriptor: an unconnected
  -- object takes the one hpass detaches, and listen() (the socket listens
  -- already; this only sets its backlog again) makes it a server object.
  local server = socket.tcp()
  server:setfd(h:detach())
  assert(server:listen(8))
  server:settimeout(30)
  for _ = 1, count do
    local c = assert(server:accept())
    c:settimeout(30)
    local n = tonumber(assert(c:receive("*l")))
    assert(c:send(("%.2f\n"):format(math.sqrt(n))))
    c:close()
  end
  server:close()
  return
end

-- The interpreter that runs this script runs the child too.
local i = -1
while arg[i - 1] do i = i - 1 end
local lua = arg[i] or "lua"

local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
local child, err = hpass.spawn_with_handle({lua, arg[0], "server", tostring(#QUESTIONS)},
                                           server)
if not child then die("spawn failed:", err) end
server:close()  -- the child holds the socket now

for _, n in ipairs(QUESTIONS) do
  local c = assert(socket.tcp())
  c:settimeout(30)
  local ok, cerr = c:connect("127.0.0.1", port)
  if not ok then die("connect failed:", cerr) end
  assert(c:send(n .. "\n"))
  local answer, rerr = c:receive("*l")
  if not answer then die("no answer:", rerr) end
  print(("the child says the square root of %d is %s"):format(n, answer))
  c:close()
end

local ok, how, code = child:wait()
if not ok then die("child failed:", how, code) end
