-- The Winsock Programmer's FAQ example "How to pass a socket handle",
-- scripted: run with no argument, this is the parent.  It makes a pipe,
-- starts itself with the read end (whose number the child finds as its
-- last argument), writes 1000, 2000, ... 8000 as native ints and waits.
-- Run with a handle number, it is the child: it reads the 8 integers and
-- prints their square roots.
--
--   lua5.4 examples/fdpass.lua

local hpass = require "hpass"

local NUMPROBLEM = 8

local function die(...)
  io.stderr:write(table.concat({...}, " "), "\n")
  os.exit(1)
end

if #arg == 0 then
  -- parent
  local r, w = assert(hpass.pipe())
  local lua = arg[-1] or "lua"
  local child, err = hpass.spawn_with_handle({lua, arg[0]}, r)
  if not child then die("spawn failed:", err) end
  r:close()  -- the child has its own copy now
  for problem = 1000, NUMPROBLEM * 1000, 1000 do
    local ok, werr = w:write_int(problem)
    if not ok then die("parent write failed:", werr) end
    print(("Son, what is the square root of %d?"):format(problem))
  end
  w:close()
  local ok, how, code = child:wait()
  if not ok then die("child failed:", how, code) end
else
  -- child
  local r, err = hpass.handle(arg[#arg])
  if not r then die("bad handle:", err) end
  for _ = 1, NUMPROBLEM do
    local problem, rerr = r:read_int()
    if not problem then die("child read failed:", rerr or "end of stream") end
    print(("Dad, the square root of %d is %3.2f."):format(problem, math.sqrt(problem)))
  end
  r:close()
end
