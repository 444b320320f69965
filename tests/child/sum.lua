-- Read ints until the end of the stream; print the count and the sum.
local hpass = require "hpass"
local r = assert(hpass.handle(arg[#arg]))
local n, sum = 0, 0
while true do
  local v, err = r:read_int()
  if v == nil then
    if err then io.stderr:write(err, "\n"); os.exit(3) end
    break
  end
  n, sum = n + 1, sum + v
end
print(n, sum)
