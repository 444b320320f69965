-- Turn the inherited handle into a Lua file (mode arg[1], default "r") and
-- print its lines numbered, "1: text", read with f:lines().
local hpass = require "hpass"
local h = assert(hpass.handle(arg[#arg]))
local f = assert(h:tofile(#arg > 1 and arg[1] or "r"))
assert(io.type(f) == "file", "not a Lua file")
local n = 0
for line in f:lines() do
  n = n + 1
  print(n .. ": " .. line)
end
assert(f:close())
