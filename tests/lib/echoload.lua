-- A client load for a line-echo server that answers "<pid> <line>"
-- (examples/hotrestart.lua), with restarts by SIGHUP in the middle of it.
--
-- `conns` connections at once, each sending `lines` lines, one at a time,
-- each awaited and checked, then closing and being replaced by a new one.
-- Meanwhile the newest server process is sent SIGHUP `restarts` times: each
-- time once the previous restart has shown (a new pid answered) and at
-- least `gap` more answers came.  Every failure is recorded: a connection
-- refused, reset or closed by the server, a wrong or missing answer.  Local
-- addresses only.

local hpass = require "hpass"
local socket = require "socket"
local sigpeer = require "sigpeer"

local L = {}

-- Run the load on 127.0.0.1:port.  o: conns, lines, restarts, gap,
-- timeout (seconds for the whole run), first (the first server's pid).
-- Returns a report: answers, connections, pids (in the order each first
-- answered), hups (the pid each SIGHUP went to, in order), errors.
function L.run(port, o)
  local r = {answers = 0, connections = 0, pids = {}, hups = {}, errors = {}}
  local seen, slots = {[o.first] = true}, {}  -- slots[i]: a connection or false
  local newest, since = o.first, 0
  r.pids[1] = o.first
  local deadline = socket.gettime() + o.timeout

  local function failed(msg)
    if #r.errors < 20 then r.errors[#r.errors + 1] = msg end
  end

  local function sendnext(s)
    s.seq = s.seq + 1
    s.want = ("c%d-%d-%d"):format(s.id, s.gen, s.seq)
    s.c:settimeout(5)
    local ok, err = s.c:send(s.want .. "\n")
    s.c:settimeout(0)
    if not ok then failed("send on connection " .. s.id .. ": " .. err) end
    return ok
  end

  local function open(i, gen)
    local c = assert(socket.tcp())
    c:settimeout(10)
    local ok, err = c:connect("127.0.0.1", port)
    if not ok then
      failed("connect: " .. tostring(err))
      c:close()
      slots[i] = false
      return nil
    end
    r.connections = r.connections + 1
    local s = {c = c, id = i, gen = gen, seq = 0, part = ""}
    slots[i] = s
    if not sendnext(s) then c:close(); slots[i] = false end
    return s
  end

  -- One answer: checked, then the next line, or a new connection.
  local function answered(s, line)
    local pid, text = line:match("^(%d+) (.*)$")
    pid = tonumber(pid)
    if text ~= s.want then
      failed(("connection %d: sent %q, got %q"):format(s.id, s.want, line))
    end
    r.answers = r.answers + 1
    since = since + 1
    if pid and not seen[pid] then
      seen[pid] = true
      r.pids[#r.pids + 1] = pid
      newest, since = pid, 0
    end
    if s.seq < o.lines then return sendnext(s) end
    s.c:close()
    slots[s.id] = false
    return open(s.id, s.gen + 1)
  end

  local function receive(s)
    while slots[s.id] == s do
      local line, err, part = s.c:receive("*l", s.part)
      if line then
        s.part = ""
        answered(s, line)
      elseif err == "timeout" then
        s.part = part
        return
      else
        failed(("connection %d lost waiting for %q: %s"):format(s.id, s.want, err))
        s.c:close()
        slots[s.id] = false
        return open(s.id, s.gen + 1)
      end
    end
  end

  for i = 1, o.conns do open(i, 1) end
  -- until every restart has shown, and as many answers again came after
  while #r.hups < o.restarts or #r.pids <= o.restarts or since < o.gap do
    if socket.gettime() > deadline then
      failed(("out of time: %d restarts, %d pids, %d answers"):format(
             #r.hups, #r.pids, r.answers))
      break
    end
    if #r.errors > 0 then break end
    if #r.hups < o.restarts and #r.hups == #r.pids - 1 and since >= o.gap then
      r.hups[#r.hups + 1] = newest
      assert(sigpeer.kill(newest, "HUP"))
    end
    local list = {}
    for i = 1, o.conns do
      if slots[i] then list[#list + 1] = slots[i].c end
    end
    local ready = hpass.select(list, nil, 1)
    for i = 1, o.conns do
      local s = slots[i]
      if s and ready[s.c] then receive(s) end
    end
  end
  for i = 1, o.conns do
    if slots[i] then slots[i].c:close() end
  end
  return r
end

return L
