-- Spawn `sleep 30` (with die_with_parent when arg[1] is "on"), print its
-- pid, then wait for it: the test kills this process with SIGKILL and
-- looks whether the sleep outlives it.
local hpass = require "hpass"
local proc = assert(hpass.spawn_with_handle({"sleep", "30"}, {},
                                            {die_with_parent = arg[1] == "on"}))
io.stdout:write(proc.pid, "\n")
io.stdout:flush()
proc:wait()
