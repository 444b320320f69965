-- Run by `luarocks test` under the interpreter LuaRocks targets: runs the
-- test suite (make test) on that same interpreter.
local version = rawget(_G, "jit") and "jit" or _VERSION:match("%d+%.%d+")
local cmd = "make test LUA_VERSION=" .. version
io.stderr:write(cmd, "\n")
local ok = os.execute(cmd)
-- os.execute gives true in Lua 5.2+, a status number in 5.1 and LuaJIT
os.exit((ok == true or ok == 0) and 0 or 1)
