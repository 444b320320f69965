-- benchlib.lua - helpers shared by the Lua benchmarks (Lua 5.3 and 5.4).
--
-- Result lines go to standard output in the form that bench/report.lua
-- reads:  "R <key> <value>"  (one measured round) and "I <key> <text>"
-- (information, such as the resident set size after building a heap).

local M = {}

local clock
-- Monotonic time in nanoseconds (bench/benchclock.c).  Loaded on first use
-- so that the memory benchmarks do not count it.
function M.now()
  if not clock then clock = require("benchclock").now end
  return clock()
end

-- A field of /proc/self/status in kB (VmRSS, VmHWM, ...).
function M.status_kib(field)
  local f = assert(io.open("/proc/self/status", "r"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match(field .. ":%s*(%d+)"))
end

function M.result(key, value)
  io.stdout:write(string.format("R %s %.3f\n", key, value))
  io.stdout:flush()
end

function M.info(key, text)
  io.stdout:write("I ", key, " ", text, "\n")
  io.stdout:flush()
end

-- Grow the live Lua heap to about `mib` MiB, adding to the array `hold`
-- (which the caller keeps alive): three quarters as distinct 64 KiB
-- strings, one quarter as tables of 1024 integers (so the collector has
-- real objects to walk).  Every page is written, so it is resident.
function M.build_heap(hold, mib)
  if mib <= 0 then return hold end
  local target = mib * 1024           -- KiB, as collectgarbage("count")
  local base = string.rep("h", 65536 - 24)
  local n = #hold
  while collectgarbage("count") < target do
    n = n + 1
    if n % 4 == 0 then
      local t = {}
      for i = 1, 1024 do t[i] = i + n end
      hold[n] = t
    else
      hold[n] = base .. string.format("%08d", n)
    end
  end
  collectgarbage()
  collectgarbage()
  return hold
end

-- The order of partner round r: impls as given in odd rounds, reversed
-- in even ones (A B, B A, A B, ...), so that a drift of the machine's
-- speed within a pair weighs on each partner alike.  The report divides
-- the partners of one round (the k-th result of each) and takes the
-- median of those ratios.
function M.order(impls, r)
  if r % 2 == 1 then return impls end
  local o = {}
  for i = #impls, 1, -1 do o[#o + 1] = impls[i] end
  return o
end

function M.fail(msg)
  io.stderr:write(arg and arg[0] or "bench", ": ", tostring(msg), "\n")
  os.exit(1)
end

return M
