-- select.lua - hpass.select over many idle handles and one ready one,
-- against C's poll(2) over the same descriptors (bench/floor.c).
--
--   lua5.4 select.lua IDLE CALLS ROUNDS
--
-- IDLE pipes nobody writes to, and one holding a byte that nobody reads,
-- so every call finds exactly that one ready.  Each round times CALLS
-- calls of hpass.select(readers) (the read ends as hpass handles, the
-- ready one last) and CALLS of the floor's poll over a pollfd array of
-- the same descriptors, which then looks at each entry as a C loop does;
-- the two take turns (partner rounds).  Prints microseconds per call:
--   R select/hpass <us>    R select/poll <us>

local B = require "benchlib"
local hpass = require "hpass"
local F = require "benchfloor"

local idle, calls, rounds = tonumber(arg[1]), tonumber(arg[2]), tonumber(arg[3])
if not (idle and calls and rounds) then B.fail("usage: select.lua IDLE CALLS ROUNDS") end

local readers, fds, keep = {}, {}, {}
for i = 1, idle + 1 do
  local r, w = hpass.pipe()
  if not r then B.fail("pipe " .. i .. ": " .. tostring(w)) end
  readers[i], fds[i], keep[i] = r, r:fileno(), w
end
assert(keep[idle + 1]:write("x"))
local ready = readers[idle + 1]
local set = F.pollset(fds)

local now = B.now
local ways = {}

function ways.hpass()
  local select = hpass.select
  local t0 = now()
  for _ = 1, calls do
    local r = select(readers, nil)
    if r[1] ~= ready or r[2] ~= nil then B.fail("select found the wrong handles") end
  end
  return now() - t0
end

function ways.poll()
  local poll = F.poll
  local t0 = now()
  for _ = 1, calls do
    if poll(set) ~= 1 then B.fail("poll found the wrong descriptors") end
  end
  return now() - t0
end

ways.hpass()  -- warm-up
ways.poll()
for r = 1, rounds do
  for _, way in ipairs(B.order({"hpass", "poll"}, r)) do
    collectgarbage()
    B.result("select/" .. way, ways[way]() / calls / 1e3)
  end
end
