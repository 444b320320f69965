--- hpass: pipes, sockets and children that inherit exactly the handles
-- they are given, with a binary integer protocol over them.
--
-- All handle passing and I/O is done by the C core (hpass.core); this file
-- re-exports it and adds helpers written on top of it.

local core = require "hpass.core"

local error, ipairs, next, pairs, pcall, rawget, require, select, setmetatable, type =
  error, ipairs, next, pairs, pcall, rawget, require, select, setmetatable, type
local unpack = table.unpack or unpack  -- luacheck: compat
local pack = table.pack or function(...)  -- luacheck: compat
  return {n = select("#", ...), ...}
end
local huge = math.huge

local getinfo = debug and debug.getinfo  -- luacheck: ignore debug
local spawn = core.spawn_with_handle
local pipes = core._pipes          -- process -> {stdin = h, stdout = h, stderr = h}
local WINDOWS = package.config:sub(1, 1) == "\\"

local hpass = {}
for name, value in pairs(core) do
  if name:sub(1, 1) ~= "_" or name == "_VERSION" then hpass[name] = value end
end

--- The handles a parent passed to this process: the last `n` command-line
-- arguments (default 1) adopted as handle objects, in order.
-- @param args the script's `arg` table (default: the global `arg`)
-- @return the handles, or fail, message, errno for the first bad one
function hpass.inherited(n, args)
  n = n == nil and 1 or n
  args = args == nil and _G.arg or args
  if type(n) ~= "number" or n < 0 or n % 1 ~= 0 then
    error("bad argument #1 to 'inherited' (count expected)", 2)
  end
  if type(args) ~= "table" then
    error("bad argument #2 to 'inherited' (table expected, got "
          .. type(args) .. ")", 2)
  end
  if n > #args then
    error("bad argument #1 to 'inherited' (only " .. #args
          .. " command-line arguments)", 2)
  end
  local handles = {}
  for i = 1, n do
    local v = args[#args - n + i]
    if type(v) ~= "string" or not v:match("^%d+$") then
      for j = 1, i - 1 do handles[j]:close() end
      error("bad argument #2 to 'inherited' (argument " .. (#args - n + i)
            .. " is not a handle number)", 2)
    end
    local h, msg, code = core.handle(v)
    if not h then
      for j = 1, i - 1 do handles[j]:close() end
      return nil, msg, code
    end
    handles[i] = h
  end
  return unpack(handles, 1, n)
end

-- An error raised by spawn_with_handle as `name`'s own, at `level` (the
-- caller's caller by default, 3 from here).  `handles`, when given, says
-- which argument and option of `name` spawn's argument #2 came from; its
-- argument #3 (options) is then argument #2.  `cmd`, when given, is the
-- command of a pipeline whose argv was at fault.  Errors of Lua code the
-- call ran (a getfd() method) go as they are.
local function reraise(name, e, handles, cmd, level)
  if type(e) ~= "string" then error(e, 0) end
  local n, why = e:match("^bad argument #(%d+) to '[^']*' %((.*)%)$")
  if not n then error(e, 0) end
  if cmd and n == "1" then why = ("command %d: %s"):format(cmd, why) end
  if handles and n == "2" then why = "option 'handles': " .. why
  elseif handles and n == "3" then n = "2" end
  error(("bad argument #%s to '%s' (%s)"):format(n, name, why), level or 3)
end

local function closeall(...)
  for i = 1, select("#", ...) do
    local h = select(i, ...)
    if h then h:close() end
  end
end

local STREAMS = {"stdin", "stdout", "stderr"}

-- The standard stream of options (read raw) that asks for "pipe", if any.
local function pipeopt(options)
  if type(options) ~= "table" then return nil end
  for _, k in ipairs(STREAMS) do
    if rawget(options, k) == "pipe" then return k end
  end
  return nil
end

-- Raises for "pipe" in options of a call that returns only once the child
-- has ended (run, capture, pipeline): nothing could use such a pipe.
local function nopipe(name, options, arg)
  local k = pipeopt(options)
  if k then
    error(("bad argument #%d to '%s' (option '%s': \"pipe\" has no use here: "
           .. "%s returns once the child has ended)"):format(arg, name, k, name), 3)
  end
end

-- Whether options give the child a process group of its own, which a
-- timeout then kills whole: group = true or session = true (group = n
-- joins someone else's group, which is not ours to kill).
local function owngroup(options)
  return options ~= nil and (rawget(options, "group") == true
                             or rawget(options, "session") == true)
end

-- Raises unless t is a timeout: nil, or a number not negative (nor NaN).
local function checktimeout(name, arg, t, what)
  if t ~= nil and (type(t) ~= "number" or t ~= t or t < 0) then
    error(("bad argument #%d to '%s' (%s must be a non-negative number)")
          :format(arg, name, what), 3)
  end
end


--- Spawn as the core does; a standard stream given as "pipe" becomes a
-- pipe whose other end is the process object's proc.stdin, proc.stdout
-- or proc.stderr.  The child's ends are closed here once it has them, so
-- that the end of its output comes when the child (and whoever it handed
-- them on to) has closed them.
function hpass.spawn_with_handle(argv, handles, options, ...)
  if not pipeopt(options) then return spawn(argv, handles, options, ...) end
  local opts, ends, theirs = {}, {}, {}
  for k, v in next, options do opts[k] = v end  -- raw, as spawn reads
  for i, k in ipairs(STREAMS) do
    if opts[k] == "pipe" then
      local r, w, code = core.pipe()
      if not r then
        closeall(unpack(theirs))
        for _, h in pairs(ends) do h:close() end
        return nil, "option '" .. k .. "': " .. w, code
      end
      if i == 1 then opts[k], ends[k] = r, w else opts[k], ends[k] = w, r end
      theirs[#theirs + 1] = opts[k]
    end
  end
  local ok, proc, msg, code = pcall(spawn, argv, handles, opts, ...)
  closeall(unpack(theirs))  -- the child has its own copies
  if not (ok and proc) then
    for _, h in pairs(ends) do h:close() end
    if not ok then reraise("spawn_with_handle", proc) end
    return nil, msg, code
  end
  pipes[proc] = ends
  return proc
end


-- What communicate keeps of a process between calls: the input (the
-- string given to the first call, after what stdin held in its buffer)
-- and how many of its bytes have gone.
local talks = setmetatable({}, {__mode = "k"})

local function isopen(h)
  return h ~= nil and core.type(h) == "handle"
end

-- A read end already at its end: stands for the outputs when there are
-- none, so that _pump can still feed the input and keep the deadline.
local function ended()
  local r, w, code = core.pipe()
  if not r then return nil, w, code end
  w:close()
  return r
end

-- Raises "bad argument #n to 'communicate' (msg)" at the caller of the
-- method, counting as Lua counts its own: without self when it is called
-- as a method (p:communicate(x)), where a bad self is "calling
-- 'communicate' on bad self".  n is the method's count.
local function commerror(n, msg)
  local ar = getinfo and getinfo(2, "n")
  if not (ar and ar.namewhat == "method") then n = n + 1 end
  if n == 0 then error("calling 'communicate' on bad self (" .. msg .. ")", 3) end
  error(("bad argument #%d to 'communicate' (%s)"):format(n, msg), 3)
end

--- proc:communicate([input [, timeout]]): feeds input to proc.stdin
-- (then closes it) while it reads proc.stdout and proc.stderr to their
-- ends, without deadlock, then waits for the child: out, err, ok, how,
-- code.  When timeout runs out first: what came meanwhile, nil,
-- "timeout", timeout; the child runs on, and a later call resumes where
-- this one stopped.  out (err) is nil when stdout (stderr) is no pipe.
local function communicate(proc, input, timeout, ...)
  if select("#", ...) > 0 then commerror(3, "no value expected") end
  if core.type(proc) ~= "process" then
    commerror(0, "process expected, got " .. (core.type(proc) or type(proc)))
  end
  local ends = pipes[proc]
  if not ends then
    commerror(0, "process has no pipes: spawn it with stdin, stdout or stderr = "
                 .. "\"pipe\"")
  end
  if input ~= nil and type(input) ~= "string" then
    commerror(1, "string expected, got " .. type(input))
  end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout < 0) then
    commerror(2, "timeout must be a non-negative number")
  end
  local talk = talks[proc]
  if input ~= nil and input ~= "" and (talk or not ends.stdin) then
    commerror(1, talk and "input after communication started: only the first call "
                          .. "takes input" or "process has no stdin pipe")
  end
  if input ~= nil and input ~= "" and not isopen(ends.stdin) then
    commerror(1, "proc.stdin was closed: the input could not go")
  end
  local sin, sout, serr = ends.stdin, ends.stdout, ends.stderr
  if not talk then
    local pending = isopen(sin) and select(2, core._takebuffered(sin)) or ""
    talk = {input = pending .. (input or ""), done = 0}
    talks[proc] = talk
  end
  local inh = isopen(sin) and sin or nil
  local outh = isopen(sout) and sout or nil
  local errh = isopen(serr) and serr or nil
  -- what the script read ahead of the outputs comes first
  local aout = outh and core._takebuffered(outh) or ""
  local aerr = errh and core._takebuffered(errh) or ""
  local first, second, none = outh or errh, outh and errh, nil
  local out, err, stop, left, done = "", "", nil, timeout
  if first or inh then
    if not first then
      local code
      none, out, code = ended()
      if not none then return nil, out, code end
      first = none
    end
    out, err, stop, left, done = core._pump(first, second, inh, talk.input, timeout,
                                            nil, talk.done)
    closeall(none)
    if out == nil then return nil, err, stop end  -- an OS failure: message, errno
    if inh then talk.done = done end
    if not outh then out, err = "", out end
  end
  if stop == nil then  -- both outputs have ended: they are done with
    closeall(outh, errh)
  end
  out = sout and aout .. out or nil
  err = serr and aerr .. (err or "") or nil
  if stop == nil then
    local ok, how, code = proc:wait(left)
    if ok ~= false then return out, err, ok, how, code end
  end
  return out, err, nil, "timeout", timeout
end
core._procmethods.communicate = communicate


--- Run argv with the given handle(s) and wait for it: the triple of
-- os.execute, or fail, message, errno if it could not start.  With the
-- option timeout (seconds), a child still running then is killed (its
-- whole group when it has one of its own), collected, and the result is
-- nil, "timeout", timeout.  Misuse is reported as run's own, at the
-- caller's line.
function hpass.run(argv, handle, options, ...)
  if select("#", ...) > 0 then
    error("bad argument #4 to 'run' (no value expected)", 2)
  end
  nopipe("run", options, 3)
  local timeout
  if type(options) == "table" and rawget(options, "timeout") ~= nil then
    local opts = {}
    for k, v in next, options do opts[k] = v end
    timeout, opts.timeout = opts.timeout, nil
    checktimeout("run", 3, timeout, "option 'timeout'")
    options = opts
  end
  local ok, proc, msg, code = pcall(spawn, argv, handle, options)
  if not ok then reraise("run", proc) end
  if not proc then return nil, msg, code end
  if timeout == nil then return proc:wait() end
  local done, how, status = proc:wait(timeout)
  if done ~= false then return done, how, status end
  proc:kill("KILL", owngroup(options) and "group" or nil)
  proc:wait()
  return nil, "timeout", timeout
end

-- What capture holds of a child's output and error together when its
-- options do not say (max_output): 64 MiB.
local MAX_OUTPUT = 64 * 1048576

-- The options capture and pipeline share, read raw from options into
-- opts (the rest), checked, as `name`'s argument #2.
local function readcapture(name, options)
  if options ~= nil and type(options) ~= "table" then
    error(("bad argument #2 to '%s' (table expected, got %s)")
          :format(name, type(options)), 3)
  end
  local opts, c = {}, {handles = {}, max = MAX_OUTPUT}
  for k, v in next, options or {} do  -- raw, as spawn_with_handle reads
    if k == "input" then c.input = v
    elseif k == "timeout" then c.timeout = v
    elseif k == "max_output" then c.max = v
    elseif k == "handles" then c.handles = v
    else opts[k] = v end
  end
  if c.input ~= nil and type(c.input) ~= "string" then
    error(("bad argument #2 to '%s' (option 'input' must be a string, got %s)")
          :format(name, type(c.input)), 3)
  end
  checktimeout(name, 2, c.timeout, "option 'timeout'")
  local m = c.max
  if type(m) ~= "number" or m < 0 or (m % 1 ~= 0 and m ~= huge) then
    error(("bad argument #2 to '%s' (option 'max_output' must be a "
           .. "non-negative integer or math.huge)"):format(name), 3)
  end
  if c.input ~= nil and opts.stdin ~= nil then
    error(("bad argument #2 to '%s' (options 'input' and 'stdin' together)")
          :format(name), 3)
  end
  return opts, c
end

--- Run argv and capture its output: `out, err, ok, how, code`, where out
-- and err are its standard output and error as strings (err is nil when
-- stderr is not captured: merged with "stdout" or redirected), then the
-- wait triple.  Options: those of spawn_with_handle, plus `input` (a
-- string fed to its standard input, which is then closed), `timeout`
-- (seconds for the whole capture, the wait for the child included; when
-- they run out the child, or with `group`/`session` its whole group, is
-- killed and the result is `out_so_far, err_so_far, nil, "timeout",
-- seconds`), `max_output` (bytes out and err may hold together, 64 MiB
-- by default, math.huge for no limit; past it the child is killed in the
-- same way and the result is `out, err, nil, "max_output", max_output`)
-- and `handles` (passed as spawn_with_handle passes them).  If the
-- program cannot start: nil, message, errno.
function hpass.capture(argv, options, ...)
  if select("#", ...) > 0 then
    error("bad argument #3 to 'capture' (no value expected)", 2)
  end
  local opts, c = readcapture("capture", options)
  if opts.stdout ~= nil then
    error("bad argument #2 to 'capture' (option 'stdout' is what capture takes)", 2)
  end
  nopipe("capture", opts, 2)
  local input, timeout, limit = c.input, c.timeout, c.max
  -- the pipes; one that cannot be made (EMFILE) is an OS failure, returned
  local p = {}  -- output, error, input: read and write ends
  local function pipe(i)
    local r, w, code = core.pipe()
    if not r then
      closeall(p[1], p[2], p[3], p[4], p[5], p[6])
      return nil, w, code
    end
    p[i], p[i + 1] = r, w
    return true
  end
  local made, pmsg, pcode = pipe(1)
  if made and opts.stderr == nil then made, pmsg, pcode = pipe(3) end
  if made and input ~= nil then made, pmsg, pcode = pipe(5) end
  if not made then return nil, pmsg, pcode end
  local outr, outw, errr, errw, inr, inw = p[1], p[2], p[3], p[4], p[5], p[6]
  if errw then opts.stderr = errw end
  if inr then opts.stdin = inr end
  opts.stdout = outw
  local ok, proc, msg, code = pcall(spawn, argv, c.handles, opts)
  closeall(outw, errw, inr)  -- the child has its own copies
  if not ok then
    closeall(outr, errr, inw)
    reraise("capture", proc, true)
  end
  if not proc then
    closeall(outr, errr, inw)
    return nil, msg, code
  end
  -- one deadline for the output and for the end of the child
  local out, err, stop, left = core._pump(outr, errr, inw, input, timeout,
                                          limit ~= huge and limit or nil)
  closeall(outr, errr, inw)
  if out ~= nil and stop == nil then
    local ended_, how, status = proc:wait(left)
    if ended_ ~= false then return out, err, ended_, how, status end
    stop = "timeout"  -- the outputs closed, but the child runs on
  end
  -- a child with a group of its own takes the whole group with it
  proc:kill("KILL", owngroup(opts) and "group" or nil)
  proc:wait()
  if out == nil then return nil, err, stop end  -- an OS failure: message, errno
  return out, err, nil, stop, stop == "timeout" and timeout or limit
end


-- pipeline's commands: a non-empty array of tables (argv arrays, which
-- spawn_with_handle checks); their number.
local function checkcmds(cmds)
  if type(cmds) ~= "table" then
    error("bad argument #1 to 'pipeline' (table expected, got " .. type(cmds) .. ")", 3)
  end
  local n, top = 0, 0
  for k in next, cmds do
    if type(k) ~= "number" or k < 1 or k % 1 ~= 0 then
      error("bad argument #1 to 'pipeline' (commands must be an array, found key '"
            .. tostring(k) .. "')", 3)
    end
    n = n + 1
    if k > top then top = k end
  end
  if n == 0 then error("bad argument #1 to 'pipeline' (no commands)", 3) end
  if top ~= n then
    error("bad argument #1 to 'pipeline' (commands must be an array, with no holes)", 3)
  end
  for i = 1, n do
    local argv = rawget(cmds, i)
    if type(argv) ~= "table" then
      error(("bad argument #1 to 'pipeline' (command %d must be an array (argv), "
             .. "got %s)"):format(i, type(argv)), 3)
    end
  end
  return n
end

-- What the body of pipeline (lua/hpass/pipeline.lua, loaded by its first
-- call) takes from this file; the body itself, once loaded.
local helpers = {core = core, spawn = spawn, WINDOWS = WINDOWS, closeall = closeall,
                 ended = ended, reraise = reraise, unpack = unpack}
local pipeline

-- pipeline's body, loaded now: the function, or fail, message, errno
-- when no descriptor is left to read its file with (what capture returns
-- when it cannot make its pipes).  Any other failure to load it raises,
-- naming pipeline, at the caller of pipeline.
local function loadbody()
  local ok, body = pcall(require, "hpass.pipeline")
  if ok and type(body) == "function" then return body end
  local r, w, code = core.pipe()  -- a search finds no file it cannot open
  if not r then return nil, w, code end
  r:close()
  w:close()
  error("hpass.pipeline: its body (module 'hpass.pipeline', lua/hpass/pipeline.lua) "
        .. (ok and "is no function" or "cannot be loaded: " .. tostring(body)), 3)
end

--- Run cmds, an array of argv arrays, with each command's standard output
-- going to the next one's standard input, as a shell's `a | b | c` does,
-- no shell involved: `out, err, ok, how, code, statuses`.  out is the
-- last command's output, err the error output of all of them; ok, how,
-- code is the triple of the rightmost command that did not succeed, else
-- success (bash's pipefail); statuses[i] is command i's own triple, as
-- an array.  The options are capture's, given to every command, plus
-- stdout (a handle the last command writes to instead; out is then nil).
-- All commands share one process group (each has a job of its own on
-- Windows), which a timeout or max_output kills whole.
function hpass.pipeline(cmds, options, ...)
  if select("#", ...) > 0 then
    error("bad argument #3 to 'pipeline' (no value expected)", 2)
  end
  local n = checkcmds(cmds)
  local opts, c = readcapture("pipeline", options)
  nopipe("pipeline", opts, 2)
  if opts.session ~= nil then
    error("bad argument #2 to 'pipeline' (option 'session': the commands share one "
          .. "process group, which a session of its own would leave)", 2)
  end
  local group = opts.group
  if group ~= nil and group ~= true and type(group) ~= "number" then
    error("bad argument #2 to 'pipeline' (option 'group' must be true or a process "
          .. "group id, got " .. tostring(group) .. ")", 2)
  end
  if not pipeline then
    local body, msg, code = loadbody()
    if not body then return nil, msg, code end
    pipeline = body
  end
  -- not a tail call, so that on every Lua (5.1 counts a tail call as a
  -- level) a bad command's error is raised two levels up from the body
  local r = pack(pipeline(helpers, n, cmds, opts, c))
  return unpack(r, 1, r.n)
end

return hpass
