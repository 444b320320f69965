-- Print how many write system calls write_ints makes for COUNT integers
-- into a pipe that cat drains (/proc/self/io counts them).  A child of
-- its own, so that what runs the specs (valgrind) adds no writes.
local hpass = require "hpass"
local count = tonumber(arg[1])
local function syscw()
  local f = assert(io.open("/proc/self/io"))
  local n = tonumber(f:read("*a"):match("syscw:%s*(%d+)"))
  f:close()
  return n
end
local r, w = hpass.pipe()
local p = assert(hpass.spawn_with_handle({"sh", "-c", "exec cat >/dev/null"}, {},
                                         {stdin = r}))
r:close()
local t = {}
for i = 1, count do t[i] = i end
local before = syscw()
assert(w:write_ints(t))
local calls = syscw() - before
w:close()
assert(p:wait())
print(calls)
