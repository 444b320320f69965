-- Helpers of the reliability, bad-input and random specs.
local hpass = require "hpass"
local H = require "helpers"

local R = {}

--- f(...) timed after two full collections, so that the collector's work
-- on the garbage of earlier calls is no part of it: the results as an
-- array, the wall seconds and the CPU seconds it took.
function R.timed(f, ...)
  local now = require("socket").gettime
  collectgarbage()
  collectgarbage()
  local t0, c0 = now(), os.clock()
  local res = {f(...)}
  return res, now() - t0, os.clock() - c0
end

--- The test-only module for signals and descriptors (tests/peers/sigpeer.c).
R.sig = require "sigpeer"

-- A suite started under nohup (SIGHUP ignored) or as a background job of
-- a script (SIGINT and SIGQUIT ignored) would hand that on to every child,
-- as exec does, and a child told to hang up would not: the specs start
-- from the defaults, as an interactive shell gives them.
for _, name in ipairs({"HUP", "INT", "QUIT", "TERM", "USR1", "USR2"}) do
  if R.sig.disposition(name) == "ignore" then R.sig.default(name) end
end

--- The misbehaving peer (tests/peers/relpeer.c).
R.relpeer = H.peer("relpeer")

--- "asan" or "valgrind" when the suite runs under one of them.
R.sanitizer = os.getenv("HPASS_SANITIZER")

--- true when every instruction costs several: under a sanitizer, or
-- under qemu-user's emulation of another CPU (make test-aarch64/-mips).
R.slow = R.sanitizer ~= nil or os.getenv("HPASS_EXPECT_QEMU") ~= nil

--- errno and signal numbers as this system's headers give them (R.EPIPE,
-- R.SIGUSR1, ...): they differ between CPUs (MIPS's are not x86's).
for k, v in pairs(R.sig.const) do R[k] = v end

--- An object whose finalizer runs f (tables have no __gc before 5.2).
function R.onfinal(f)
  local np = rawget(_G, "newproxy")
  if np then
    local p = np(true)
    getmetatable(p).__gc = f
    return p
  end
  return setmetatable({}, {__gc = f})
end

--- The collector at its most eager: a step at nearly every allocation, so
-- that finalizers run inside hpass calls.  Returns a function restoring it.
function R.eager_gc()
  if pcall(collectgarbage, "param", "pause") then
    -- Lua 5.5: the parameters are set through "param" ("setpause" and
    -- "setstepmul" are gone), and they are the incremental mode's
    local mode = collectgarbage("incremental")
    local pause = collectgarbage("param", "pause", 0)
    local mul = collectgarbage("param", "stepmul", 1000)
    return function()
      collectgarbage("param", "pause", pause)
      collectgarbage("param", "stepmul", mul)
      collectgarbage(mode)
    end
  end
  local pause = collectgarbage("setpause", 0)
  local mul = collectgarbage("setstepmul", 1000)
  return function()
    collectgarbage("setpause", pause)
    collectgarbage("setstepmul", mul)
  end
end

--- A number from the environment, or the default.
function R.knob(name, default)
  return tonumber(os.getenv(name) or "") or default
end

--- An environment for children given an explicit `env`: what they need to
-- find and load this build (and its sanitizer runtime), plus `extra`.
function R.childenv(extra)
  local env = {}
  for _, k in ipairs({"PATH", "HOME", "LUA_PATH", "LUA_CPATH", "LD_PRELOAD",
                      "ASAN_OPTIONS", "UBSAN_OPTIONS", "HPASS_TEST_LUA",
                      "HPASS_SANITIZER", "GCOV_PREFIX",
                      "GCOV_PREFIX_STRIP"}) do
    env[k] = os.getenv(k)
  end
  for k, v in pairs(extra or {}) do env[k] = v end
  return env
end

--- Whether signal `sig` is in the hexadecimal signal mask `hex` of
-- /proc/PID/status (bit sig-1).
function R.inmask(hex, sig)
  local digit = #hex - math.floor((sig - 1) / 4)
  local v = tonumber(hex:sub(digit, digit), 16)
  return math.floor(v / 2 ^ ((sig - 1) % 4)) % 2 == 1
end

--- package.searchpath, which Lua 5.1 lacks.
function R.searchpath(name, path)
  name = name:gsub("%.", "/")
  for template in path:gmatch("[^;]+") do
    local file = template:gsub("%?", name)
    local f = io.open(file)
    if f then f:close(); return file end
  end
end

--- Spawns (each spawn reaps the children that have ended) until this
-- process is down to `kids` children, for at most 10 s; returns how many
-- children it has then, and how many of them are zombies.
function R.settle(kids)
  local total, zombies
  for _ = 1, 100 do
    assert(hpass.run({"true"}, {}))
    total, zombies = R.sig.children()
    if total <= kids then break end
    os.execute("sleep 0.1")
  end
  return total, zombies
end

--- Resident memory of this process in kB.
function R.rss()
  return tonumber(H.readfile("/proc/self/status"):match("VmRSS:%s*(%d+)"))
end

--- Lua heap in kB after a full collection.
function R.heap()
  collectgarbage(); collectgarbage()
  return collectgarbage("count")
end

--- Exit status of `yes` in `yes | head -n 1` run by `sh` through
-- os.execute: 141 when it dies of SIGPIPE, 1 when SIGPIPE was ignored or
-- blocked (it then sees EPIPE and gives up).
function R.yes_status_os()
  local out = H.tmpname()
  os.execute("(yes; echo $? > " .. out .. ") | head -n 1 > /dev/null")
  return tonumber(H.readfile(out))
end

--- The same pipeline, as a `sh` started by spawn_with_handle.
R.yes_script = "(yes; echo $? >&2) | head -n 1 > /dev/null"

return R
