-- spawn.lua - spawn /bin/true + wait from Lua, against live Lua heap size.
--
--   lua spawn.lua IMPL HEAPS SPAWNS ROUNDS MAXSEC
--
-- IMPL is one of
--   hpass       hpass.spawn_with_handle({"/bin/true"}, w) + proc:wait()   (5.4)
--   hpass_posix_spawn, hpass_procwalk, hpass_closeloop, hpass_closeloop_1024
--               the same, on hpass built for another spawn path (run.sh)
--   luaposix    posix.fork + posix.execp + posix.wait                     (5.3)
--   luv         uv.spawn with the pipe as child fd 3 + uv.run             (5.4)
--   os_execute  os.execute("/bin/true 3")  (through /bin/sh)
-- Each passes /bin/true one argument, the number of an inherited pipe
-- descriptor, as the C baseline (spawn.c) does.  HEAPS is a comma-separated
-- ascending list of sizes in MiB; for each, the live Lua heap is grown to
-- that size, then each round spawns SPAWNS times or until MAXSEC seconds
-- have gone by (at least 3), and prints the mean time per spawn in
-- microseconds:  R spawn/<impl>/<heap> <us>

local B = require "benchlib"

local impl, heaps, spawns, rounds, maxsec =
  arg[1], arg[2], tonumber(arg[3]), tonumber(arg[4]), tonumber(arg[5])
if not (impl and heaps and spawns and rounds and maxsec) then
  B.fail("usage: spawn.lua IMPL HEAPS SPAWNS ROUNDS MAXSEC")
end

local setups = {}

function setups.hpass()
  local hpass = require "hpass"
  local r, w = hpass.pipe()
  assert(r and w, "hpass.pipe failed")
  local spawn_with_handle = hpass.spawn_with_handle
  local argv = {"/bin/true"}
  return function()
    local p, msg = spawn_with_handle(argv, w)
    if not p then B.fail("spawn_with_handle: " .. tostring(msg)) end
    local ok, how, code = p:wait()
    if not ok then B.fail("/bin/true: " .. tostring(how) .. " " .. tostring(code)) end
  end
end

function setups.luaposix()
  local P = require "posix"
  local r, w = P.pipe()
  assert(r and w, "posix.pipe failed")
  local argt = {tostring(w)}
  local fork, execp, wait, _exit = P.fork, P.execp, P.wait, P._exit
  return function()
    local pid, msg = fork()
    if pid == 0 then
      execp("/bin/true", argt)
      _exit(127)
    elseif not pid then
      B.fail("fork: " .. tostring(msg))
    end
    local _, how, code = wait(pid)
    if how ~= "exited" or code ~= 0 then
      B.fail("/bin/true: " .. tostring(how) .. " " .. tostring(code))
    end
  end
end

function setups.luv()
  local uv = require "luv"
  local fds = assert(uv.pipe())
  local opts = {args = {"3"}, stdio = {0, 1, 2, fds.write}}
  local spawn, run = uv.spawn, uv.run
  return function()
    local status, handle
    local err
    handle, err = spawn("/bin/true", opts, function(code, sig)
      status = (code == 0 and sig == 0)
      handle:close()
    end)
    if not handle then B.fail("uv.spawn: " .. tostring(err)) end
    run()
    if not status then B.fail("/bin/true did not exit 0") end
  end
end

function setups.os_execute()
  local execute = os.execute
  return function()
    local ok, how, code = execute("/bin/true 3")
    if not ok then B.fail("/bin/true: " .. tostring(how) .. " " .. tostring(code)) end
  end
end

-- The same, with BENCH_LIVE children alive and never waited for (each a
-- `sleep` that ends when this process does), as a supervisor has them.
local live = {}
function setups.hpass_live()
  local hpass = require "hpass"
  local n = tonumber(os.getenv("BENCH_LIVE") or "") or 2000
  local r, w = hpass.pipe()
  for i = 1, n do
    -- each reads its stdin, which ends with us: none outlives the benchmark
    live[i] = hpass.spawn_with_handle({"head", "-c", "1"}, {}, {stdin = r})
    if not live[i] then B.fail("could not start live child " .. i) end
  end
  r:close()
  live.w = w
  -- let them all start and block on their input: their start-up is not
  -- what is measured (2,000 of them take seconds to start on a slow host)
  B.settle(live)
  B.info("spawn/hpass_live", n .. " live children")
  return setups.hpass()
end

-- the same calls, on a build that starts children another way (run.sh
-- puts that build first on LUA_CPATH)
setups.hpass_posix_spawn = setups.hpass
setups.hpass_procwalk = setups.hpass
setups.hpass_closeloop = setups.hpass
setups.hpass_closeloop_1024 = setups.hpass
setups.hpass_nolive = setups.hpass  -- hpass_live's partner, round by round

if not setups[impl] then B.fail("unknown IMPL " .. impl) end
local spawn1 = setups[impl]()
local now = B.now
local hold = {}

for h in heaps:gmatch("[^,]+") do
  local heap = tonumber(h) or B.fail("bad heap list " .. heaps)
  local key = string.format("spawn/%s/%d", impl, heap)
  B.build_heap(hold, heap)
  B.info(key, string.format("VmRSS %d kB, Lua heap %.0f kB",
                            B.status_kib("VmRSS"), collectgarbage("count")))
  spawn1()  -- warm-up
  for _ = 1, rounds do
    local n, t0 = 0, now()
    local t
    repeat
      spawn1()
      n = n + 1
      t = (now() - t0) / 1e9
    until n >= spawns or (n >= 3 and t >= maxsec)
    B.result(key, t / n * 1e6)
  end
end
assert(#hold >= 0)

-- The live children end now, and are waited for, so that their exit does
-- not run into whatever the benchmark measures next.
if live.w then
  live.w:close()
  for _, p in ipairs(live) do p:wait() end
end
