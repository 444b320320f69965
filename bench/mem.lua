-- mem.lua - peak resident set size of a bare interpreter and after loading hpass.
--
--   lua5.4 mem.lua bare    ->  R mem/bare <VmHWM kB>
--   lua5.4 mem.lua hpass   ->  R mem/hpass <VmHWM kB>
--                              R mem/hpass_load <kB added by require "hpass">
--   lua5.4 mem.lua trivial ->  R mem/trivial_load <kB added by require "benchclock">
--
-- "trivial" is the reference floor: the same measurement for a C module of
-- one function (bench/benchclock.c), what any C module costs to load.
--
-- The absolute peaks of two processes differ by tens of kB from run to run
-- (address-space layout), so the cost of loading is also measured inside
-- one process: VmHWM just before and just after require "hpass".

local what = arg[1]
if what ~= "bare" and what ~= "hpass" and what ~= "trivial" then
  io.stderr:write("usage: mem.lua bare|hpass|trivial\n")
  os.exit(2)
end

local function hwm()
  local f = assert(io.open("/proc/self/status", "r"))
  local s = f:read("a")
  f:close()
  return assert(tonumber(s:match("VmHWM:%s*(%d+)")))
end

local before = hwm()
if what == "hpass" then
  require "hpass"
  local after = hwm()
  io.stdout:write(string.format("R mem/hpass %d\nR mem/hpass_load %d\n",
                                after, after - before))
elseif what == "trivial" then
  require "benchclock"
  io.stdout:write(string.format("R mem/trivial_load %d\n", hwm() - before))
else
  io.stdout:write(string.format("R mem/bare %d\n", before))
end
