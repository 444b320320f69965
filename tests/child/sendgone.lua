-- send_handle to a peer that has gone, in a process where SIGPIPE has its
-- default action (hpass children start so, and this script loads no
-- LuaSocket, which ignores SIGPIPE when loaded).  Prints the SIGPIPE bit
-- of the ignored-signal mask, then what send_handle returned; a SIGPIPE
-- would kill the process before the second line.
local hpass = require "hpass"

local f = assert(io.open("/proc/self/status"))
local ign = f:read("*a"):match("SigIgn:%s*(%x+)")
f:close()
local low = tonumber(ign:sub(-4), 16)           -- signals 1 .. 16
print("pipe-ignored " .. math.floor(low / 0x1000) % 2)  -- SIGPIPE is 13

local a, b = hpass.socketpair()
local _, w = hpass.pipe()
b:close()
print(a:send_handle(w))
