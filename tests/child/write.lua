-- Write FIRST, FIRST+STEP, ... (COUNT ints) to the inherited handle.
local hpass = require "hpass"
local first, step, count = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3])
local w = assert(hpass.handle(arg[#arg]))
for i = 0, count - 1 do assert(w:write_int(first + i * step)) end
w:close()
