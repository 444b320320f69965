--- hpass.server: restarting a server without losing a connection.
--
-- A server takes its listening sockets by name, inherited from the copy
-- that started it or made afresh; on a signal it starts a new copy of
-- itself, hands it the sockets, and waits until the new copy says it is
-- ready; then it stops accepting and finishes its connections while the
-- new copy serves.  The sockets go over systemd's socket-activation
-- protocol (spawn's `listen` option, `hpass.listen_fds`), so a copy
-- started by systemd with a socket unit finds its sockets the same way;
-- readiness is one line, "READY=1" as in sd_notify, on a pipe the new copy
-- inherits under the name "hpass.ready".
--
--   local srv = assert(server.new())
--   local sock = assert(srv:listener("web", make, adopt))
--   srv:ready()                          -- the copy before us may go
--   ...                                  -- on SIGHUP:
--   local up = assert(srv:upgrade())     -- returns at once
--   local ok, why = up:wait()            -- or up:status() from a loop
--   if ok then srv:stop(30) end          -- then finish the connections
--
-- POSIX only: Windows has no such protocol (`listen` raises there).

local hpass = require "hpass"
local core = require "hpass.core"

local error, ipairs, pairs, select, setmetatable, type =
      error, ipairs, pairs, select, setmetatable, type
local remove = table.remove
local unpack = table.unpack or unpack  -- luacheck: compat

-- The results of a call as a count and a table, so that a failure can be
-- handed on exactly as it came, nothing added.
local function results(...)
  return select("#", ...), {...}
end

local server = {}

-- The name the readiness pipe goes by among the inherited descriptors.
server.READY_NAME = "hpass.ready"

-- Seconds an upgrade waits for the new copy to report ready, by default.
server.READY_TIMEOUT = 10

--- The command line that started this process: the interpreter with its
-- own options, the script and its arguments (from the global `arg`).
function server.command(args)
  args = args or _G.arg
  if type(args) ~= "table" or args[0] == nil then
    error("bad argument #1 to 'command' (no script arguments: pass argv)", 2)
  end
  local first = 0
  while args[first - 1] ~= nil do first = first - 1 end
  local argv = {}
  for i = first, #args do argv[#argv + 1] = args[i] end
  return argv
end


local Server = {}
Server.__index = Server

--- A server: the sockets this process inherited (hpass.listen_fds, which
-- also removes the protocol's variables from the environment), by name;
-- `srv.pid` is this process's id.
-- @return the server, or fail, msg, code when the variables are malformed
function server.new()
  local handles, names, code = hpass.listen_fds()
  if not handles then return nil, names, code end
  local self = setmetatable({inherited = {}, objects = {}, names = {},
                             pid = core._pid()}, Server)
  for i, h in ipairs(handles) do
    local name = names[i]
    if name == server.READY_NAME and not self.notify then
      self.notify = h
    else
      local list = self.inherited[name] or {}
      list[#list + 1] = h
      self.inherited[name] = list
    end
  end
  return self
end

--- The listening socket called `name`: the first inherited one of that
-- name, turned into what the server uses by `adopt(handle)` (by default
-- the hpass handle itself), or else a new one from `make()`.  Either way
-- it is handed to the next copy under that name.
-- @return the socket, or what `make` or `adopt` returned on failure
function Server:listener(name, make, adopt)
  if type(name) ~= "string" then
    error("bad argument #1 to 'listener' (name expected)", 2)
  end
  if type(make) ~= "function" then
    error("bad argument #2 to 'listener' (function expected)", 2)
  end
  local list, n, got = self.inherited[name]
  if list and #list > 0 then
    local h = remove(list, 1)
    if adopt then n, got = results(adopt(h)) else got = {h} end
  else
    n, got = results(make())
  end
  local obj = got[1]
  if not obj then return unpack(got, 1, n) end
  self.objects[#self.objects + 1] = obj
  self.names[#self.names + 1] = name
  return obj
end

--- Inherited sockets no listener took (a name this copy no longer uses):
-- closed, so that they do not stay open for nothing.  Returns how many.
function Server:close_unused()
  local n = 0
  for name, list in pairs(self.inherited) do
    for _, h in ipairs(list) do h:close(); n = n + 1 end
    self.inherited[name] = nil
  end
  return n
end

--- Tell the copy that started this one that we serve: it then stops
-- accepting.  True at once when nobody waits (not started by `upgrade`).
-- @return true, or fail, msg, code when the message could not be written
function Server:ready()
  local notify = self.notify
  if not notify then return true end
  self.notify = nil
  local ok, err, code = notify:write("READY=1\n")
  notify:close()
  if not ok then return nil, err, code end
  return true
end

--- Stop accepting: every listener of this process is closed (the new
-- copy holds its own), and the connections have `drain` seconds (default
-- no limit) to finish, as `drain_left` tells.
function Server:stop(drain)
  for i = #self.objects, 1, -1 do
    local obj = self.objects[i]
    if obj.close then obj:close() end
    self.objects[i], self.names[i] = nil, nil
  end
  self:close_unused()
  self.stopping = true
  self.deadline = drain and core._now() + drain or nil
  return true
end

--- Seconds left to finish the connections after `stop`: nil before
-- `stop` or without a limit, 0 once it has passed.
function Server:drain_left()
  if not self.deadline then return nil end
  local left = self.deadline - core._now()
  return left > 0 and left or 0
end


local Upgrade = {}
Upgrade.__index = Upgrade

--- Start a new copy (argv, by default this process's own command line),
-- handing it every listener under its name and a pipe to report ready
-- on.  Returns at once: the upgrade can sit in `hpass.select` with the
-- server's other handles (it is readable once the copy reported or
-- ended), and `status` or `wait` tell the outcome.  Options: `timeout`,
-- the seconds the copy has to report ready (server.READY_TIMEOUT), and
-- `env`, `cwd`, `stdout` and `stderr` as for spawn_with_handle.
-- @return the upgrade, or fail, msg, code when the copy could not start
function Server:upgrade(argv, options)
  options = options or {}
  argv = argv or server.command()
  if self.stopping then error("server was stopped", 2) end
  local r, w = assert(hpass.pipe())
  local listen, names = {}, {}
  for i, obj in ipairs(self.objects) do
    listen[i], names[i] = obj, self.names[i]
  end
  listen[#listen + 1], names[#names + 1] = w, server.READY_NAME
  local proc, err, code = hpass.spawn_with_handle(argv, {}, {
    listen = listen, listen_names = names,
    env = options.env, cwd = options.cwd, stdout = options.stdout,
    stderr = options.stderr,
  })
  w:close()  -- the copy holds its own: its end closes when it ends
  if not proc then
    r:close()
    return nil, err, code
  end
  r:settimeout(0)
  local timeout = options.timeout or server.READY_TIMEOUT
  return setmetatable({proc = proc, pipe = r, timeout = timeout,
                       deadline = core._now() + timeout}, Upgrade)
end

-- The upgrade failed: the copy is stopped and collected.
local function fail(self, why)
  self.pipe:close()
  if self.proc:poll() == false then self.proc:kill("KILL") end
  self.proc:wait()
  self.failed = why
  return nil, why
end

-- How a copy whose end of the pipe closed went, for messages: it has
-- ended, or is given a second to, or it is killed.
local function howended(proc)
  local ok, how, code = proc:wait(1)
  if ok == false then return "it closed the pipe and kept running: killed" end
  if how == "signal" then return "killed by signal " .. tostring(code) end
  return "exit " .. tostring(code)
end

--- The descriptor of the readiness pipe (for hpass.select and loops).
function Upgrade:getfd()
  if self.done or self.failed then return -1 end
  return self.pipe:fileno()
end

--- Seconds left before the copy must have reported ready (0: none).
function Upgrade:remaining()
  local left = self.deadline - core._now()
  return left > 0 and left or 0
end

--- Without waiting: true once the copy reported ready; false while it
-- may still; fail, why once it failed (it exited first, or its time ran
-- out: then it is killed).  A failed upgrade changes nothing here.
function Upgrade:status()
  if self.done then return true end
  if self.failed then return nil, self.failed end
  while true do
    local line, err = self.pipe:read("l")
    if line == "READY=1" then
      self.pipe:close()
      self.done = true
      return true
    elseif line == nil and err == nil then  -- end of stream: it is gone
      return fail(self, ("the new copy (pid %d) ended before it was ready (%s)")
                  :format(self.proc.pid, howended(self.proc)))
    elseif line == nil and err ~= "timeout" then
      return fail(self, "reading the new copy's readiness: " .. tostring(err))
    elseif line == nil then
      break
    end
  end
  if self:remaining() == 0 then
    return fail(self, ("the new copy (pid %d) did not report ready within %g s")
                :format(self.proc.pid, self.timeout))
  end
  return false
end

--- Wait until the copy reported ready (true), or failed (fail, why).
function Upgrade:wait()
  while true do
    local ok, why = self:status()
    if ok then return true end
    if ok == nil then return nil, why end
    hpass.select({self.pipe}, nil, self:remaining())
  end
end

--- Give up: the copy is killed and collected.
function Upgrade:cancel()
  if self.done or self.failed then return end
  fail(self, "cancelled")
end

return server
