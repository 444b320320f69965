-- A TCP line-echo server that restarts without losing a connection.
--
--   lua5.4 examples/hotrestart.lua PORT [--ready-timeout S] [--drain-timeout S]
--
-- It listens on 127.0.0.1:PORT and answers each line with "<pid> <line>".
--
--   SIGHUP   start a new copy of this script (read again from disk) and
--            hand it the listening socket; once the copy reports ready
--            (within --ready-timeout, default 10 s), stop accepting,
--            finish the connections already open, and exit.  If the copy
--            fails to start or to report ready, keep serving and say why
--            on stderr.
--   SIGTERM, SIGINT
--            stop accepting, finish the open connections, exit 0.
--
-- Connections still open --drain-timeout seconds (default 30) after
-- accepting stopped are closed.  The socket's queue is shared with the
-- new copy, so a client that connects during a restart is answered by
-- one of the two, never refused.  The machinery is hpass.server; the
-- signals arrive as a handle among the connections, in hpass.select.
--
-- Needs LuaSocket (Debian: lua-socket).  POSIX only.

local hpass = require "hpass"
-- first, so that a SIGHUP or SIGTERM from now on is ours to handle
local signals = assert(hpass.signals{"HUP", "TERM", "INT"})
signals:settimeout(0)
local server = require "hpass.server"
local socket = require "socket"

local BACKLOG = 1024

local srv = assert(server.new())
local PID = srv.pid

local function say(...)
  io.stderr:write("hotrestart[", PID, "]: ", table.concat({...}, " "), "\n")
end

local port = tonumber(arg[1])
local ready_timeout, drain_timeout = 10, 30
for i = 2, #arg, 2 do
  local v = tonumber(arg[i + 1])
  if arg[i] == "--ready-timeout" and v then ready_timeout = v
  elseif arg[i] == "--drain-timeout" and v then drain_timeout = v
  else port = nil end
end
if not port then
  io.stderr:write("usage: hotrestart.lua PORT [--ready-timeout S] [--drain-timeout S]\n")
  os.exit(2)
end

-- The listening socket: inherited from the copy before us, or made here.
local listener = assert(srv:listener("echo",
  function() return socket.bind("127.0.0.1", port, BACKLOG) end,
  function(h)
    -- LuaSocket makes no object from a descriptor: an object whose own
    -- socket is closed takes the inherited one, and listen() (it listens
    -- already; this sets the backlog again) makes it a server object.
    local s = assert(socket.tcp())
    s:close()
    s:setfd(h:detach())
    assert(s:listen(BACKLOG))
    return s
  end))
listener:settimeout(0)  -- the other copy may take a connection first

local conns, count = {}, 0   -- connection -> partial line
local upgrade                -- a restart waiting for the new copy

local function drop(c)
  c:close()
  conns[c] = nil
  count = count - 1
end

-- Every whole line that has come: answered.
local function serve(c)
  while true do
    local line, err, part = c:receive("*l", conns[c])
    if line then
      conns[c] = ""
      c:settimeout(5)  -- a client that does not read for 5 s is dropped
      local ok = c:send(PID .. " " .. line .. "\n")
      c:settimeout(0)
      if not ok then return drop(c) end
    elseif err == "timeout" then
      conns[c] = part
      return
    else
      return drop(c)  -- closed by the client (or reset)
    end
  end
end

local function accept()
  while true do
    local c = listener:accept()
    if not c then return end
    c:settimeout(0)
    conns[c] = ""
    count = count + 1
  end
end

local function stop(why)
  if upgrade then upgrade:cancel(); upgrade = nil end
  accept()  -- what the queue holds now is ours to answer
  srv:stop(drain_timeout)
  say(why, "- stopped accepting,", count, "connections to finish")
end

local function onsignal(sig)
  if sig == "HUP" and not srv.stopping then
    if upgrade then return say("SIGHUP: a restart is already under way") end
    local err
    upgrade, err = srv:upgrade(nil, {timeout = ready_timeout})
    if not upgrade then say("restart failed: cannot start a new copy:", err) end
  elseif sig ~= "HUP" and not srv.stopping then
    stop("SIG" .. sig)
  end
end

assert(srv:ready())
say("serving on 127.0.0.1:" .. port)
while not srv.stopping or next(conns) do
  local readers = {signals}
  if not srv.stopping then readers[2] = listener end
  if upgrade then readers[#readers + 1] = upgrade end
  for c in pairs(conns) do readers[#readers + 1] = c end
  local wait = upgrade and upgrade:remaining() or srv:drain_left()
  local ready = hpass.select(readers, nil, wait)
  for _ = 1, 100 do
    local sig = signals:read_signal()
    if not sig then break end
    onsignal(sig)
  end
  if upgrade then
    local ok, why = upgrade:status()
    if ok then
      upgrade = nil
      stop("handed over")
    elseif ok == nil then
      upgrade = nil
      say("restart failed, still serving:", why)
    end
  end
  if ready[listener] and not srv.stopping then accept() end
  for c in pairs(conns) do
    if ready[c] then serve(c) end
  end
  if srv:drain_left() == 0 then
    say("drain time is over, closing", count, "connections")
    for c in pairs(conns) do drop(c) end
  end
end
signals:close()
say("done")
os.exit(0)
