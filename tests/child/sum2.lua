-- Sum the ints read from the first of two inherited handles; print
-- "COUNT SUM".
local hpass = require "hpass"
local r = assert(hpass.handle(arg[#arg - 1]))
local n, sum = 0, 0
for v in function() return r:read_int() end do n, sum = n + 1, sum + v end
print(n .. " " .. sum)
