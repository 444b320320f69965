-- mem.lua - what require costs in memory: hpass against a C module that
-- does nothing (bench/nothing.c, the floor: what require of any C module
-- costs).
--
--   lua5.4 mem.lua bare      ->  R mem/bare <VmHWM kB>
--   lua5.4 mem.lua hpass     ->  R mem/hpass <VmHWM kB>, and the three below
--   lua5.4 mem.lua nothing   ->  the same three for require "benchnothing":
--       R mem/<what>_load     kB require added to the peak resident set (VmHWM)
--       R mem/<what>_private  kB of private dirty pages it added: memory this
--                             process alone holds (heap, data, relocations)
--       R mem/<what>_code     kB of clean file pages it added: code and
--                             read-only data mapped from the page cache, shared
--                             by every process that maps them
--       R mem/<what>_heap     kB the Lua heap holds more after require (after a
--                             full collection): part of the private pages
--
-- The peak resident set counts a module's code: on the first touch of a
-- page of it the kernel maps the pages around that one too (fault-around,
-- 64 KiB on Linux), so about as much of the text as the module has, used
-- or not.  Those pages come from the page cache, clean, and are not the
-- memory a process pays for; the private pages are.  Both are measured
-- inside one process, just before and just after require (the absolute
-- peaks of two processes differ by tens of kB from run to run).

local what = arg[1]
local modules = {hpass = "hpass", nothing = "benchnothing"}
if what ~= "bare" and not modules[what] then
  io.stderr:write("usage: mem.lua bare|hpass|nothing\n")
  os.exit(2)
end

local function field(path, name)
  local f = assert(io.open(path, "r"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("\n?" .. name .. ":%s*(%d+)"))
end

local function sample()
  local s = {hwm = assert(field("/proc/self/status", "VmHWM"))}
  -- Linux 4.14 and later: the sums of /proc/self/smaps
  if io.open("/proc/self/smaps_rollup", "r") then
    s.private = field("/proc/self/smaps_rollup", "Private_Dirty")
    s.code = field("/proc/self/smaps_rollup", "Private_Clean")
             + field("/proc/self/smaps_rollup", "Shared_Clean")
  end
  return s
end

if what == "bare" then
  io.stdout:write(string.format("R mem/bare %d\n", sample().hwm))
  os.exit(0)
end
sample()  -- the same work twice first, so that both samples below find it done
sample()
collectgarbage()
local heap = collectgarbage("count")
local before = sample()
require(modules[what])
local after = sample()
collectgarbage()
heap = collectgarbage("count") - heap
if what == "hpass" then io.stdout:write(string.format("R mem/hpass %d\n", after.hwm)) end
io.stdout:write(string.format("R mem/%s_load %d\n", what, after.hwm - before.hwm))
if after.private then
  io.stdout:write(string.format("R mem/%s_private %d\nR mem/%s_code %d\n", what,
                                after.private - before.private, what,
                                after.code - before.code))
end
io.stdout:write(string.format("R mem/%s_heap %.1f\n", what, heap))
