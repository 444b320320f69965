-- A process that holds a signals handle, for tests/spec/signals_spec.lua.
--
--   sigholder.lua storm     catches many signals, says "ready", keeps
--                           spawning, waiting and moving bytes (every
--                           call must succeed) until a line comes on
--                           stdin, then prints "NAME count" per signal
--   sigholder.lua ignored   started with SIGHUP ignored: prints what it
--                           sees before, while and after a handle holds it
--   sigholder.lua blocked   started with SIGUSR1 blocked: the same
local hpass = require "hpass"
local sigpeer = require "sigpeer"

local mode = arg[1]
io.stdout:setvbuf("line")

if mode == "storm" then
  local names = {"HUP", "INT", "TERM", "USR1", "USR2", "QUIT", "ALRM",
                 "PIPE", "CHLD", "WINCH"}
  local s = assert(hpass.signals(names))
  s:settimeout(0)
  local input = assert(hpass.handle(0))
  local counts = {}
  for _, n in ipairs(names) do counts[n] = 0 end
  print("ready")
  local r, w = assert(hpass.pipe())
  local rounds = 0
  while true do
    local ready = assert(hpass.select({s, input}, nil, 0))
    while true do
      local name = s:read_signal()
      if not name then break end
      counts[name] = counts[name] + 1
    end
    if ready[input] and rounds > 0 then break end  -- one round at least
    -- the work a signal may interrupt: every call must succeed
    local p = assert(hpass.spawn_with_handle({"true"}, {}))
    assert(w:write_ints({1, 2, 3}))
    local got = assert(r:read_ints(3))
    assert(got[3] == 3)
    local ok, how, code = p:wait()
    assert(ok, ("child: %s %s"):format(tostring(how), tostring(code)))
    rounds = rounds + 1
  end
  while true do  -- what came meanwhile
    local name = s:read_signal()
    if not name then break end
    counts[name] = counts[name] + 1
  end
  for _, n in ipairs(names) do print(n, counts[n]) end
  print("rounds", rounds)
  s:close()
  os.exit(0)
end

local sig = mode == "ignored" and "HUP" or "USR1"
local function state(when)
  print(when, sigpeer.disposition(sig), tostring(sigpeer.blocked(sig)),
        tostring(sigpeer.pending(sig)))
end
state("start")
sigpeer.raise(sig, 1)          -- ignored: nothing; blocked: pending
state("raised")
local s = assert(hpass.signals{sig})
s:settimeout(0)
state("open")
sigpeer.raise(sig, 1)
print("read", s:read_signal(), s:read_signal() or "none")
s:close()
state("closed")
sigpeer.raise(sig, 1)          -- as at the start again
state("end")
