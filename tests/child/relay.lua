-- Adopt two inherited handles with hpass.inherited(2): read integers from
-- the first until the end of the stream and write each doubled to the second.
local hpass = require "hpass"
local r, w = hpass.inherited(2)
while true do
  local n = r:read_int()
  if n == nil then break end
  assert(w:write_int(2 * n))
end
