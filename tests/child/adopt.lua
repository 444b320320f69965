-- Adopt the inherited handle (from its decimal text, or as a number when
-- arg[1] is "number"), report whether it is close-on-exec now, then read
-- one integer from it and print it.
local hpass = require "hpass"
local n = arg[#arg]
local h = assert(hpass.handle(arg[1] == "number" and tonumber(n) or n))
local f = assert(io.open("/proc/self/fdinfo/" .. h:fileno()))
local flags = tonumber(f:read("*a"):match("flags:%s*(%d+)"), 8)
f:close()
local cloexec = math.floor(flags / 0x80000) % 2 == 1
print(h:fileno(), cloexec and "cloexec" or "inheritable", h:read_int())
