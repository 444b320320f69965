-- Using inherited handles as Lua files.
--
--   lua5.4 examples/tofile.lua
--
-- The parent starts a copy of this script with two pipes: one to send it
-- text, one to read its answers.  Both sides turn their handles into Lua
-- files with h:tofile(mode), so from then on they use f:write, f:lines and
-- f:close as with any file io.open returns.  The child numbers each line
-- it reads and sends it back in capitals.

local hpass = require "hpass"

local LINES = {"handles become files", "files read lines", "the child answers"}

local function die(...)
  io.stderr:write("tofile: ", table.concat({...}, " "), "\n")
  os.exit(1)
end

if arg[1] == "child" then
  local input, output = hpass.inherited(2)
  if not input then die("bad handles:", output) end
  local fin = assert(input:tofile("r"))
  local fout = assert(output:tofile("w"))
  local n = 0
  for line in fin:lines() do
    n = n + 1
    fout:write(n, ": ", line:upper(), "\n")
  end
  fin:close()
  assert(fout:close())
  return
end

-- The interpreter that runs this script runs the child too.
local i = -1
while arg[i - 1] do i = i - 1 end
local lua = arg[i] or "lua"

local to_r, to_w = assert(hpass.pipe())
local from_r, from_w = assert(hpass.pipe())
local child, err = hpass.spawn_with_handle({lua, arg[0], "child"}, {to_r, from_w})
if not child then die("spawn failed:", err) end
to_r:close()     -- the child has its own copies now
from_w:close()

local out = assert(to_w:tofile("w"))
for _, line in ipairs(LINES) do out:write(line, "\n") end
assert(out:close())  -- the child sees the end of its input
print(("parent: sent %d lines"):format(#LINES))

local back = assert(from_r:tofile("r"))
for line in back:lines() do print("child: " .. line) end
back:close()

local ok, how, code = child:wait()
if not ok then die("child failed:", how, code) end
