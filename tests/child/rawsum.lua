-- Use the inherited descriptor as a plain number, as code written for
-- luaposix would, without adopting it: sum the ints read until the end of
-- the stream and print "COUNT SUM".
local hpass = require "hpass"
local fd = assert(tonumber(arg[#arg]))
local n, sum = 0, 0
while true do
  local v, err = hpass.read_int(fd)
  if v == nil then
    if err then io.stderr:write(err, "\n"); os.exit(3) end
    break
  end
  n, sum = n + 1, sum + v
end
print(n .. " " .. sum)
