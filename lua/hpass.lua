--- hpass: pipes, sockets and children that inherit exactly the handles
-- they are given, with a binary integer protocol over them.
--
-- All handle passing and I/O is done by the C core (hpass.core); this file
-- re-exports it and adds helpers written on top of it.

local core = require "hpass.core"

local error, pairs, pcall, select, type = error, pairs, pcall, select, type
local unpack = table.unpack or unpack  -- luacheck: compat

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

-- An error raised by spawn_with_handle as `name`'s own, at the caller's
-- caller (level 3 from here).  `handles`, when given, says which argument
-- and option of `name` spawn's argument #2 came from; its argument #3
-- (options) is then argument #2.  Errors of Lua code the call ran (a
-- getfd() method) go as they are.
local function reraise(name, e, handles)
  if type(e) ~= "string" then error(e, 0) end
  local n, why = e:match("^bad argument #(%d+) to '[^']*' %((.*)%)$")
  if not n then error(e, 0) end
  if handles and n == "2" then why = "option 'handles': " .. why
  elseif handles and n == "3" then n = "2" end
  error(("bad argument #%s to '%s' (%s)"):format(n, name, why), 3)
end

--- Run argv with the given handle(s) and wait for it: the triple of
-- os.execute, or fail, message, errno if it could not start.  Misuse is
-- reported as run's own, at the caller's line.
function hpass.run(argv, handle, options, ...)
  if select("#", ...) > 0 then
    error("bad argument #4 to 'run' (no value expected)", 2)
  end
  local ok, proc, msg, code = pcall(core.spawn_with_handle, argv, handle, options)
  if not ok then reraise("run", proc) end
  if not proc then return nil, msg, code end
  return proc:wait()
end

local function closeall(...)
  for i = 1, select("#", ...) do
    local h = select(i, ...)
    if h then h:close() end
  end
end

-- What capture holds of a child's output and error together when its
-- options do not say (max_output): 64 MiB.
local MAX_OUTPUT = 64 * 1048576

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
  if options ~= nil and type(options) ~= "table" then
    error("bad argument #2 to 'capture' (table expected, got " .. type(options) .. ")", 2)
  end
  local opts, input, timeout, handles, max = {}, nil, nil, {}, MAX_OUTPUT
  for k, v in next, options or {} do  -- raw, as spawn_with_handle reads
    if k == "input" then input = v
    elseif k == "timeout" then timeout = v
    elseif k == "max_output" then max = v
    elseif k == "handles" then handles = v
    else opts[k] = v end
  end
  if input ~= nil and type(input) ~= "string" then
    error("bad argument #2 to 'capture' (option 'input' must be a string, got "
          .. type(input) .. ")", 2)
  end
  if timeout ~= nil and (type(timeout) ~= "number" or timeout ~= timeout or timeout < 0) then
    error("bad argument #2 to 'capture' (option 'timeout' must be a non-negative number)", 2)
  end
  if type(max) ~= "number" or max < 0 or (max % 1 ~= 0 and max ~= math.huge) then
    error("bad argument #2 to 'capture' (option 'max_output' must be a "
          .. "non-negative integer or math.huge)", 2)
  end
  if opts.stdout ~= nil then
    error("bad argument #2 to 'capture' (option 'stdout' is what capture takes)", 2)
  end
  if input ~= nil and opts.stdin ~= nil then
    error("bad argument #2 to 'capture' (options 'input' and 'stdin' together)", 2)
  end
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
  local ok, proc, msg, code = pcall(core.spawn_with_handle, argv, handles, opts)
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
                                          max ~= math.huge and max or nil)
  closeall(outr, errr, inw)
  if out ~= nil and stop == nil then
    local ended, how, status = proc:wait(left)
    if ended ~= false then return out, err, ended, how, status end
    stop = "timeout"  -- the outputs closed, but the child runs on
  end
  -- a child with a group of its own takes the whole group with it
  proc:kill("KILL", (opts.group or opts.session) and "group" or nil)
  proc:wait()
  if out == nil then return nil, err, stop end  -- an OS failure: message, errno
  return out, err, nil, stop, stop == "timeout" and timeout or max
end

return hpass
