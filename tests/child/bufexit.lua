-- Write COUNT ints through a fully buffered handle, then leave by the
-- route named in arg[1]: "exit" (os.exit, state not closed), "end" (end
-- of script, state closed), "gc" (dropped handle, state closed), "close"
-- (os.exit(0, true): the state is closed, and unloads hpass, before the
-- process's exit handlers run; Lua 5.1 does not close it).
local hpass = require "hpass"
local how, count = arg[1], tonumber(arg[2])
local w = assert(hpass.handle(arg[#arg]))
assert(w:setvbuf("full", 4096))
for i = 1, count do assert(w:write_int(i)) end
if how == "exit" then os.exit(0) end
if how == "close" then os.exit(0, true) end
if how == "gc" then w = nil; collectgarbage() end -- luacheck: no unused
