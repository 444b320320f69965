-- Print how far the peak resident set rises while write_ints writes COUNT
-- integers to /dev/null, in KiB, or "none" where the peak cannot be reset
-- (Linux: writing 5 to /proc/self/clear_refs).  A child of its own, so that
-- memory freed by earlier tests cannot hide what write_ints takes.
local hpass = require "hpass"
local count = tonumber(arg[1])
local function status()
  local f = assert(io.open("/proc/self/status"))
  local s = f:read("*a")
  f:close()
  return tonumber(s:match("VmHWM:%s*(%d+)")), tonumber(s:match("VmRSS:%s*(%d+)"))
end
local t = {}
for i = 1, count do t[i] = i end
local null = assert(io.open("/dev/null", "wb"))
collectgarbage(); collectgarbage()
local c = io.open("/proc/self/clear_refs", "w")
if not c or not c:write("5") or not c:close() then
  print("none")
  os.exit(0)
end
local hwm, rss = status()
assert(hpass.write_ints(null, t))
local hwm2 = status()
null:close()
print(hwm2 - math.max(hwm, rss))
