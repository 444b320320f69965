-- Started by `relpeer ignpipe`, so SIGPIPE is ignored and blocked here.
-- Prints "name value" lines about this process, about a child started
-- with spawn_with_handle and about one started by os.execute.
local hpass = require "hpass"

local function report(name, ...)
  local t = {}
  for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
  io.write(name, " ", table.concat(t, " "), "\n")
end

local function masks(status)
  return status:match("SigBlk:%s*(%x+)"), status:match("SigIgn:%s*(%x+)")
end

local function readall(name)
  local f = assert(io.open(name, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local out = os.tmpname()

-- an hpass write to a broken pipe in this state
local r, w = hpass.pipe()
r:close()
local ok, _, code = w:write_int(1)
w:close()
report("write", ok, code)

report("self", masks(readall("/proc/self/status")))

local f = assert(io.open(out, "w"))
local proc = assert(hpass.spawn_with_handle({"cat", "/proc/self/status"}, {},
                                            {stdout = f}))
f:close()
proc:wait()
report("spawned", masks(readall(out)))

f = assert(io.open(out, "w"))
proc = assert(hpass.spawn_with_handle(
    {"sh", "-c", "(yes; echo $? >&2) | head -n 1 > /dev/null"}, {}, {stderr = f}))
f:close()
proc:wait()
report("spawn-yes", tonumber((readall(out):match("%d+"))))

-- os.execute passes the ignored SIGPIPE on, as POSIX says it must
os.execute("(yes 2>/dev/null; echo $? > " .. out .. ") | head -n 1 > /dev/null")
report("os.execute-yes", tonumber((readall(out):match("%d+"))))

-- and this process is as it was
report("self-after", masks(readall("/proc/self/status")))
os.remove(out)
