--- hpass: pipes, sockets and children that inherit exactly the handles
-- they are given, with a binary integer protocol over them.
--
-- All handle passing and I/O is done by the C core (hpass.core); this file
-- re-exports it and adds helpers written on top of it.

local core = require "hpass.core"

local error, pairs, pcall, select, type = error, pairs, pcall, select, type
local unpack = table.unpack or unpack  -- luacheck: compat

local hpass = {}
for name, value in pairs(core) do hpass[name] = value end

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

--- Run argv with the given handle(s) and wait for it: the triple of
-- os.execute, or fail, message, errno if it could not start.  Misuse is
-- reported as run's own, at the caller's line.
function hpass.run(argv, handle, options, ...)
  if select("#", ...) > 0 then
    error("bad argument #4 to 'run' (no value expected)", 2)
  end
  local ok, proc, msg, code = pcall(core.spawn_with_handle, argv, handle, options)
  if not ok then
    if type(proc) == "string" and proc:match("^bad argument #%d+ to ") then
      error((proc:gsub("^(bad argument #%d+ to )'[^']*'", "%1'run'")), 2)
    end
    error(proc, 0)  -- raised by Lua code the call ran: as it was
  end
  if not proc then return nil, msg, code end
  return proc:wait()
end

return hpass
