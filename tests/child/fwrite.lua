-- Turn the inherited handle into a Lua file (mode arg[1]) and write the
-- other arguments to it with f:write, one line each.
local hpass = require "hpass"
local f = assert(assert(hpass.handle(arg[#arg])):tofile(arg[1]))
for i = 2, #arg - 1 do assert(f:write(arg[i], "\n")) end
assert(f:close())
