-- pairs.lua - what hpass and Lua add to the system calls of the seed
-- protocol, without a second process: N times, one int written with
-- write_int and read back with read_int on one pipe (ints.c's "pairs" makes
-- the same system calls from C).
--
--   lua5.4 pairs.lua N ROUNDS
--
-- Prints the nanoseconds per write+read pair:  R pairs/hpass <ns>

local B = require "benchlib"
local hpass = require "hpass"

local n, rounds = tonumber(arg[1]), tonumber(arg[2])
if not (n and rounds) then B.fail("usage: pairs.lua N ROUNDS") end

local now = B.now
for _ = 1, rounds do
  local r, w = hpass.pipe()
  local write_int, read_int = w.write_int, r.read_int
  local t0 = now()
  for i = 1, n do
    write_int(w, i)
    if read_int(r) ~= i then B.fail("read back the wrong int") end
  end
  B.result("pairs/hpass", (now() - t0) / n)
  r:close()
  w:close()
end
