-- pipeline.lua - three cats moving MIB MiB: hpass.pipeline against the same
-- pipeline run by sh.
--
--   lua5.4 pipeline.lua [MIB [ROUNDS]]      (defaults: 100 MiB, 5 rounds)
--
-- Two forms, each timed in both ways, the order alternating per round:
--   file     the data comes from a file, the output goes to /dev/null:
--            hpass.pipeline({{"cat"}, {"cat"}, {"cat"}}, {stdin = f,
--            stdout = "null"}) against hpass.run({"sh", "-c", "cat | cat |
--            cat"}, {}, the same streams)
--   capture  the data is a string fed to the first cat, the last one's
--            output captured into a string: pipeline(..., {input = data})
--            against capture({"sh", "-c", "cat | cat | cat"}, {input = data})
-- Prints one line per measured round, as bench/report.lua reads them
-- ("R pipeline/<form>_<way> <ms>"), then the medians and their ratio.
-- Run it with this checkout's module on the paths (make repl's), for
-- example: LUA_PATH="$PWD/lua/?.lua;;" LUA_CPATH="$PWD/build/lua5.4/?.so;;"

local hpass = require "hpass"
local now = require("hpass.core")._now  -- the monotonic clock of deadlines

local mib = tonumber(arg[1]) or 100
local rounds = tonumber(arg[2]) or 5
local bytes = math.floor(mib * 1048576)

local data = string.rep("0123456789abcdef", bytes // 16)
local name = os.tmpname()
do
  local f = assert(io.open(name, "wb"))
  assert(f:write(data))
  f:close()
end

local SH = {"sh", "-c", "cat | cat | cat"}
local CATS = {{"cat"}, {"cat"}, {"cat"}}

local ways = {
  file_shell = function()
    local f = assert(io.open(name, "rb"))
    local ok, how, code = hpass.run(SH, {}, {stdin = f, stdout = "null"})
    f:close()
    assert(ok, tostring(how) .. " " .. tostring(code))
  end,
  file_hpass = function()
    local f = assert(io.open(name, "rb"))
    local _, _, ok, how, code = hpass.pipeline(CATS, {stdin = f, stdout = "null"})
    f:close()
    assert(ok, tostring(how) .. " " .. tostring(code))
  end,
  capture_shell = function()
    local out, _, ok = hpass.capture(SH, {input = data, max_output = math.huge})
    assert(ok and #out == #data)
  end,
  capture_hpass = function()
    local out, _, ok = hpass.pipeline(CATS, {input = data, max_output = math.huge})
    assert(ok and #out == #data)
  end,
}

local times = {}
local function measure(way)
  collectgarbage()
  collectgarbage()
  local t0 = now()
  ways[way]()
  local ms = (now() - t0) * 1000
  times[way] = times[way] or {}
  table.insert(times[way], ms)
  io.stdout:write(("R pipeline/%s %.3f\n"):format(way, ms))
  io.stdout:flush()
end

for r = 1, rounds do
  for _, form in ipairs({"file", "capture"}) do
    local a, b = form .. "_shell", form .. "_hpass"
    if r % 2 == 0 then a, b = b, a end
    measure(a)
    measure(b)
  end
end
os.remove(name)

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or (t[n // 2] + t[n // 2 + 1]) / 2
end

for _, form in ipairs({"file", "capture"}) do
  local s, h = median(times[form .. "_shell"]), median(times[form .. "_hpass"])
  io.stdout:write(("I pipeline/%s %d MiB through 3 cats, median of %d: sh %.1f ms, "
                   .. "hpass.pipeline %.1f ms, ratio %.3f\n")
                  :format(form, mib, rounds, s, h, h / s))
end
