-- luacheck configuration (make lint-lua).
--
-- The module, the examples, the test suite and its child scripts run on
-- Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT, so they may use only what all of
-- these have: std "min", the intersection of their standard libraries.
-- A version-specific name (unpack, loadstring, math.type) is used behind
-- `x or y` or a version check, on a line marked `-- luacheck: compat` (or
-- `-- luacheck: std max+busted` in a spec).
std = "min"
max_line_length = 100

-- Specs: busted's globals as well.
files["tests/**/*_spec.lua"] = {std = "min+busted"}

-- The Windows tests run under wine with Lua 5.4 only (tools/test-windows.sh).
files["tests/windows"] = {std = "lua54"}

-- The benchmarks run on Lua 5.4 (and luaposix's on 5.3): string.pack, utf8.
files["bench"] = {std = "lua53+lua54"}
