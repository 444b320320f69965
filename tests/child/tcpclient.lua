-- The client side of sockets_spec's pre-fork tests, in its own process:
-- opens COUNT connections to HOST:PORT, all held open at once, sends
-- request 1000 + i on connection i, then reads the replies in order.
--
--   tcpclient.lua HOST PORT COUNT  PROGRESS
--
-- PROGRESS (appended by hpass) gets the number of replies read after
-- every 100.  Prints "served ID K" per worker ID, then "failed K" (no
-- reply) and "bad K" (a wrong reply); bad replies go to stderr.
local hpass = require "hpass"
local socket = require "socket"

local host, port, count = arg[1], tonumber(arg[2]), tonumber(arg[3])
local progress = assert(hpass.handle(arg[#arg]))

local conns = {}
for i = 1, count do
  local c = assert(socket.tcp())
  c:settimeout(20)
  assert(c:connect(host, port))
  assert(c:send((1000 + i) .. "\n"))
  conns[i] = c
end

local served, failed, bad = {}, 0, 0
for i = 1, count do
  local line = conns[i]:receive("*l")
  conns[i]:close()
  if line == nil then
    failed = failed + 1
  else
    local n, root, id = line:match("^(%d+) (%S+) (%S+)$")
    local want = 1000 + i
    if tonumber(n) == want and root == ("%.3f"):format(math.sqrt(want)) then
      served[id] = (served[id] or 0) + 1
    else
      bad = bad + 1
      io.stderr:write("bad reply to ", want, ": ", line, "\n")
    end
  end
  if i % 100 == 0 then assert(progress:write_int(i)) end
end
for id, k in pairs(served) do print("served " .. id .. " " .. k) end
print("failed " .. failed)
print("bad " .. bad)
