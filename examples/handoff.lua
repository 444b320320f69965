-- Handing accepted connections to workers that already run.  The parent
-- listens on 127.0.0.1 and accepts; each worker was started once with
-- one end of a socketpair and waits in recv_handle.  For every connection
-- the parent reads the request (a number), picks a worker, sends it the
-- connection with send_handle and the number with write_int over the same
-- socketpair, and closes its own copy.  The worker answers on the
-- connection it received.
--
--   lua5.4 examples/handoff.lua [--workers N] [--port P] [--serve K]
--                               [--no-client] [--timeout S]
--
-- The parent stops after K connections (default 8): it closes the
-- socketpairs, and the workers see the end of their channel and exit.
-- Unless --no-client is given it starts a client process that makes the K
-- connections; with --no-client, connect yourself:  echo 81 | nc 127.0.0.1 P
--
-- Needs LuaSocket (Debian: lua-socket) for the listening socket.

local hpass = require "hpass"
local socket = require "socket"

io.stdout:setvbuf("line")  -- several processes share this output

local function die(...)
  io.stderr:write("handoff: ", table.concat({...}, " "), "\n")
  os.exit(1)
end



--[[ Worker: handoff.lua worker ID  CHANNEL ]]

local function worker()
  local id = arg[2]
  local chan = assert(hpass.handle(arg[#arg]))
  print(("worker %s: waiting for connections"):format(id))
  while true do
    local conn, err = chan:recv_handle()
    if not conn then
      if err then die("worker " .. id .. ": " .. err) end
      break  -- the parent closed the channel
    end
    local n = assert(chan:read_int())
    -- the connection is this worker's now: answer, then close our copy
    -- (hpass's own write waits on the socket, which LuaSocket made
    -- non-blocking, where a C stdio file would fail with EAGAIN)
    assert(conn:write(("sqrt(%d) = %.3f (worker %s)\n"):format(n, math.sqrt(n), id)))
    conn:close()
  end
  print(("worker %s: channel closed, exiting"):format(id))
end


--[[ Client: handoff.lua client PORT K ]]

local function client()
  local port, count = tonumber(arg[2]), tonumber(arg[3])
  for i = 1, count do
    local c = assert(socket.tcp())
    c:settimeout(10)
    assert(c:connect("127.0.0.1", port))
    assert(c:send((i * i + 1) .. "\n"))
    local answer, err = c:receive("*l")
    c:close()
    print(("client: %d -> %s"):format(i * i + 1, answer or "no answer (" .. err .. ")"))
  end
end


--[[ Parent ]]

local function parent()
  local opts = {workers = 3, port = 0, serve = 8, timeout = 30, client = true}
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--no-client" then opts.client = false
    elseif a:match("^%-%-") and opts[a:sub(3)] ~= nil and tonumber(arg[i + 1]) then
      opts[a:sub(3)] = tonumber(arg[i + 1])
      i = i + 1
    else
      die("unknown option " .. a)
    end
    i = i + 1
  end
  local lua = arg[-1] or "lua"
  local deadline = socket.gettime() + opts.timeout

  local srv = assert(socket.bind("127.0.0.1", opts.port, 64))
  srv:settimeout(0.2)
  local _, port = srv:getsockname()
  print(("parent: listening on 127.0.0.1:%d"):format(port))

  local channels, workers = {}, {}
  for id = 1, opts.workers do
    local mine, theirs = assert(hpass.socketpair())
    local p, err = hpass.spawn_with_handle({lua, arg[0], "worker", id}, theirs)
    if not p then die("cannot start a worker:", err) end
    theirs:close()  -- the worker has its own copy
    channels[id], workers[id] = mine, p
  end

  local cl
  if opts.client then
    cl = assert(hpass.spawn_with_handle({lua, arg[0], "client", port, opts.serve}, {}))
  end

  local handed = 0
  while handed < opts.serve do
    if socket.gettime() > deadline then die("timed out") end
    local c = srv:accept()
    if c then
      c:settimeout(5)
      local n = tonumber((c:receive("*l")))
      if n and n % 1 == 0 and n >= 0 and n < 2^31 then
        local id = handed % opts.workers + 1
        local ok, err = channels[id]:send_handle(c)
        if ok then ok, err = channels[id]:write_int(n) end
        if not ok then die("cannot hand over:", err) end
        handed = handed + 1
        print(("parent: connection %d (asks for %d) handed to worker %d")
              :format(handed, n, id))
      else
        c:send("send a number\n")
      end
      c:close()  -- the worker's copy stays open
    end
  end

  for _, ch in ipairs(channels) do ch:close() end  -- stops the workers
  -- wait for each until the deadline, then kill it
  local function finish(p)
    local ok = p:wait(math.max(deadline - socket.gettime(), 0))
    if ok ~= false then return ok end
    p:kill("KILL")
    return (p:wait())
  end
  for _, p in ipairs(workers) do finish(p) end
  if cl and not finish(cl) then die("the client failed") end
  srv:close()
  print(("parent: handed %d connections to %d workers; done"):format(handed, opts.workers))
end


if arg[1] == "worker" then worker()
elseif arg[1] == "client" then client()
else parent() end
