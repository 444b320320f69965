-- pairs.lua - what a binding and Lua add to the system calls of the seed
-- protocol, without a second process: N times, one int written and read
-- back on one pipe.  hpass's write_int/read_int and the minimal binding
-- of bench/floor.c (luaL_checkudata, one conversion, the same pwritev2 and
-- read) take turns, a round of each per partner round (ints.c's "pairs"
-- makes the same system calls from C).
--
--   lua5.4 pairs.lua N ROUNDS
--
-- Prints the nanoseconds per write+read pair, one line of each per round:
--   R pairs/hpass <ns>    R pairs/floor <ns>

local B = require "benchlib"
local hpass = require "hpass"
local F = require "benchfloor"

local n, rounds = tonumber(arg[1]), tonumber(arg[2])
if not (n and rounds) then B.fail("usage: pairs.lua N ROUNDS") end

local now = B.now
local ways = {}

function ways.hpass()
  local r, w = hpass.pipe()
  local write_int, read_int = w.write_int, r.read_int
  local t0 = now()
  for i = 1, n do
    write_int(w, i)
    if read_int(r) ~= i then B.fail("hpass read back the wrong int") end
  end
  local t = now() - t0
  r:close()
  w:close()
  return t
end

function ways.floor()
  local r, w = hpass.pipe()
  local fr, fw = F.wrap(r:fileno()), F.wrap(w:fileno())
  local write_int, read_int = F.write_int, F.read_int
  local t0 = now()
  for i = 1, n do
    write_int(fw, i)
    if read_int(fr) ~= i then B.fail("floor read back the wrong int") end
  end
  local t = now() - t0
  r:close()
  w:close()
  return t
end

ways.hpass()  -- warm-up: the first round pays for the first page faults
ways.floor()
for r = 1, rounds do
  for _, way in ipairs(B.order({"hpass", "floor"}, r)) do
    collectgarbage()
    B.result("pairs/" .. way, ways[way]() / n)
  end
end
