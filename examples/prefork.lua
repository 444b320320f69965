-- A pre-forked TCP square-root server on 127.0.0.1.  The listening socket
-- is opened once, here, and every worker inherits it through
-- spawn_with_handle.  A supervisor restarts any worker that dies, with the
-- same socket, so the port never closes and connections waiting in its
-- queue are served by the others meanwhile.
--
--   lua5.4 examples/prefork.lua [--workers N] [--port P] [--serve K]
--                               [--no-client] [--no-crash] [--timeout S]
--
-- Protocol: a client sends a number and a newline and gets back
-- "sqrt(N) = R (worker I)".  The server stops after answering K
-- connections (default 12).  Unless --no-client is given it starts a
-- client process that makes those K connections one after another, plus
-- one that sends "crash" halfway (unless --no-crash): the worker that
-- gets it exits without answering, and the supervisor replaces it.  With
-- --no-client, connect yourself, e.g.  echo 81 | nc 127.0.0.1 P
--
-- Needs LuaSocket (Debian: lua-socket) for the listening socket: hpass
-- passes sockets but does not make TCP ones.

local hpass = require "hpass"
local socket = require "socket"

local BACKLOG = 128

io.stdout:setvbuf("line")  -- several processes share this output

local function die(...)
  io.stderr:write("prefork: ", table.concat({...}, " "), "\n")
  os.exit(1)
end



--[[ Worker: prefork.lua worker ID  LISTEN LIFELINE REPORT ]]

local function worker()
  local id = arg[2]
  local life = assert(hpass.handle(arg[#arg - 1]))
  local report = assert(hpass.handle(arg[#arg]))
  -- LuaSocket makes no object from a descriptor: an unconnected object
  -- takes the inherited one, and listen() (it is already listening; this
  -- only sets the backlog again) turns it into a server object.
  local srv = socket.tcp()
  srv:setfd(tonumber(arg[#arg - 2]))
  assert(srv:listen(BACKLOG))
  srv:settimeout(0)  -- another worker may take the connection first
  while true do
    -- the supervisor closes the lifeline to stop us (or dies, same thing);
    -- hpass.select takes LuaSocket objects and hpass handles alike
    local readable = hpass.select({srv, life}, nil)
    if readable[life] then os.exit(0) end
    local c = srv:accept()
    if c then
      c:settimeout(5)
      local line = c:receive("*l")
      if line == "crash" then
        print(("worker %s: asked to crash, exiting without an answer"):format(id))
        os.exit(3)
      end
      local n = tonumber(line)
      if n then
        c:send(("sqrt(%s) = %.3f (worker %s)\n"):format(line, math.sqrt(n), id))
      else
        c:send("send a number\n")
      end
      c:close()
      if not report:write_int(tonumber(id)) then os.exit(0) end
    end
  end
end


--[[ Client: prefork.lua client PORT K CRASHAT ]]

local function client()
  local port, count, crashat = tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4])
  local function ask(request)
    local c = assert(socket.tcp())
    c:settimeout(10)
    assert(c:connect("127.0.0.1", port))
    assert(c:send(request .. "\n"))
    local answer, err = c:receive("*l")
    c:close()
    return answer, err
  end
  for i = 1, count do
    if i == crashat then
      local answer, err = ask("crash")
      print(("client: \"crash\" -> %s"):format(answer or "no answer (" .. err .. ")"))
      -- the connection closes while the worker is still exiting: give the
      -- supervisor a moment to see it gone before the demo moves on
      socket.sleep(0.2)
    end
    local answer, err = ask(tostring(i * i + 1))
    print(("client: %d -> %s"):format(i * i + 1, answer or "no answer (" .. err .. ")"))
  end
end


--[[ Supervisor ]]

local function supervisor()
  local opts = {workers = 3, port = 0, serve = 12, timeout = 30,
                client = true, crash = true}
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "--no-client" then opts.client = false
    elseif a == "--no-crash" then opts.crash = false
    elseif a:match("^%-%-") and opts[a:sub(3)] ~= nil and tonumber(arg[i + 1]) then
      opts[a:sub(3)] = tonumber(arg[i + 1])
      i = i + 1
    else
      die("unknown option " .. a)
    end
    i = i + 1
  end
  local lua = arg[-1] or "lua"

  local srv = assert(socket.bind("127.0.0.1", opts.port, BACKLOG))
  local _, port = srv:getsockname()
  print(("supervisor: listening on 127.0.0.1:%d, starting %d workers")
        :format(port, opts.workers))

  -- workers hold the read end of the lifeline and stop when it ends
  local life_r, life_w = assert(hpass.pipe())
  local report_r, report_w = assert(hpass.pipe())
  local workers, served = {}, {}
  local function start(id)
    local p, err = hpass.spawn_with_handle({lua, arg[0], "worker", id},
                                           {srv, life_r, report_w})
    if not p then die("cannot start a worker:", err) end
    print(("supervisor: worker %d is pid %d"):format(id, p.pid))
    return p
  end
  for id = 1, opts.workers do workers[id] = start(id) end

  local cl
  if opts.client then
    local crashat = opts.crash and math.floor(opts.serve / 2) + 1 or 0
    cl = assert(hpass.spawn_with_handle(
      {lua, arg[0], "client", port, opts.serve, crashat}, {}))
  end

  local answered = 0
  local deadline = socket.gettime() + opts.timeout
  local function left() return math.max(deadline - socket.gettime(), 0) end
  -- supervise until K answers are out and our client (if any) is done:
  -- one select waits for a report, a worker that ends, or the client
  while answered < opts.serve or (cl and cl:poll() == false) do
    local watch = {report_r, cl}
    for _, p in pairs(workers) do watch[#watch + 1] = p end
    local ready, _, err = hpass.select(watch, nil, left())
    if err == "timeout" then die("timed out") end
    if ready[report_r] then
      local id = assert(report_r:read_int())
      served[id] = (served[id] or 0) + 1
      answered = answered + 1
    end
    for id, p in pairs(workers) do
      if ready[p] then
        local _, how, code = p:wait()
        print(("supervisor: worker %d (pid %d) ended (%s %d); restarting it")
              :format(id, p.pid, tostring(how), code or -1))
        workers[id] = start(id)  -- the same listening socket
      end
    end
  end

  if cl and not cl:wait() then die("the client failed") end
  life_w:close()  -- stops the workers
  for _, p in pairs(workers) do
    if p:wait(10) == false then p:kill("KILL"); p:wait() end
  end
  srv:close()
  local t = {}
  for id = 1, opts.workers do t[#t + 1] = ("worker %d: %d"):format(id, served[id] or 0) end
  print(("supervisor: answered %d connections (%s); done"):format(answered, table.concat(t, ", ")))
end


if arg[1] == "worker" then worker()
elseif arg[1] == "client" then client()
else supervisor() end
