--- hpass.pipeline: the body of hpass.pipeline, which loads this file on its
-- first call, so that a script that never runs a pipeline does not hold
-- it in memory.  Not a module of its own for users: hpass.pipeline checks
-- its arguments, then calls the function this file returns, given the
-- helpers it shares with hpass.lua.

local ipairs, next, pcall, rawget, type = ipairs, next, pcall, rawget, type
local huge, max = math.huge, math.max

-- Kills every process of procs: through its group when the pipeline made
-- one (a member not yet collected reaches the whole group, grandchildren
-- included), else one by one; then collects each, whose triple goes to
-- the same place of statuses.
local function killall(procs, statuses, bygroup)
  for _, p in ipairs(procs) do
    if bygroup then p:kill("KILL", "group") end
    p:kill("KILL")
  end
  for i, p in ipairs(procs) do
    statuses[i] = {p:wait()}
  end
end

-- hpass.pipeline once its arguments are checked: n commands in cmds,
-- opts the options for spawn, c capture's own (input, timeout, max and
-- handles); h holds the helpers of hpass.lua it uses.
return function(h, n, cmds, opts, c)
  local core, spawn, WINDOWS = h.core, h.spawn, h.WINDOWS
  local closeall, ended, reraise, unpack = h.closeall, h.ended, h.reraise, h.unpack
  local group = opts.group
  local input, timeout, limit = c.input, c.timeout, c.max
  local stdin, stdout, stderr = opts.stdin, opts.stdout, opts.stderr
  local mine = {}  -- every handle of ours: closed whatever happens
  local function pipe()
    local r, w, code = core.pipe()
    if r then mine[#mine + 1] = r; mine[#mine + 1] = w end
    return r, w, code
  end
  local procs, statuses = {}, {}
  local bygroup = type(group) ~= "number"  -- a group of the pipeline's own
  local function abort()
    killall(procs, statuses, bygroup)
    closeall(unpack(mine))
  end
  local outr, outw, errr, errw, inr, inw, msg, code
  if stdout == nil then outr, msg, code = pipe() end
  outw = outr and msg
  if stderr == nil and (outr or stdout ~= nil) then errr, msg, code = pipe() end
  errw = errr and msg
  if input ~= nil and (outr or stdout ~= nil) and (errr or stderr ~= nil) then
    inr, msg, code = pipe()
  end
  inw = inr and msg
  if (stdout == nil and not outr) or (stderr == nil and not errr)
     or (input ~= nil and not inr) then
    abort()
    return nil, msg, code  -- the pipe that failed: message, errno
  end
  local prev, leader = inr or stdin, nil
  for i = 1, n do
    local r, w
    if i < n then
      r, w, code = pipe()
      if not r then
        abort()
        return nil, w, code
      end
    end
    local o = {}
    for k, v in next, opts do o[k] = v end
    o.stdin, o.stdout, o.stderr = prev, w or outw or stdout, errw or stderr
    if WINDOWS then o.group = true          -- a job of each one's own
    elseif type(group) == "number" then o.group = group
    else o.group = leader and leader.pid or true end
    local ok, proc
    ok, proc, msg, code = pcall(spawn, rawget(cmds, i), c.handles, o)
    if ok and not proc and leader and type(msg) == "string"
       and msg:find("^option 'group'") then
      -- the group is gone: every command before ended and was collected
      -- (a spawn reaps what has ended), so this one starts a new one
      o.group = true
      ok, proc, msg, code = pcall(spawn, rawget(cmds, i), c.handles, o)
      leader = nil
    end
    closeall(w, prev ~= stdin and prev or nil)  -- the children have their copies
    prev = r
    if not (ok and proc) then
      abort()
      if not ok then reraise("pipeline", proc, true, i, 4) end
      return nil, ("command %d: %s"):format(i, msg), code
    end
    procs[i] = proc
    if o.group == true and not leader and not WINDOWS then leader = proc end
  end
  closeall(outw, errw)
  -- one deadline for the output and for the end of every command
  local dl = timeout and core._now() + timeout
  local first, second, none = outr or errr, outr and errr, nil
  local out, err, stop
  if first or inw then
    if not first then
      none, msg, code = ended()
      if not none then abort(); return nil, msg, code end
      first = none
    end
    out, err, stop = core._pump(first, second, inw, input, timeout,
                                limit ~= huge and limit or nil)
    closeall(none)
    if out == nil then
      abort()
      return nil, err, stop  -- an OS failure: message, errno
    end
    if not outr then out, err = nil, errr and out or nil end
  end
  closeall(unpack(mine))
  if stop == nil then
    for i, p in ipairs(procs) do
      local a, b, d = p:wait(dl and max(0, dl - core._now()))
      if a == false then
        stop = "timeout"
        break
      end
      statuses[i] = {a, b, d}
    end
  end
  if stop ~= nil then
    killall(procs, statuses, bygroup)
    return out, err, nil, stop, stop == "timeout" and timeout or limit, statuses
  end
  for i = n, 1, -1 do
    if statuses[i][1] ~= true then
      local st = statuses[i]
      return out, err, st[1], st[2], st[3], statuses
    end
  end
  return out, err, true, "exit", 0, statuses
end
