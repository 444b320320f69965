-- The seed's child: read COUNT ints from the inherited handle, print roots.
local hpass = require "hpass"
local count = tonumber(arg[1])
local r = assert(hpass.handle(arg[#arg]))
for _ = 1, count do
  local n = assert(r:read_int())
  print(("Dad, the square root of %d is %3.2f."):format(n, math.sqrt(n)))
end
