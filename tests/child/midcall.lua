-- Finalizers that close what a call uses, run at every point of the call
-- that allocates.  For each case named on the command line, the call runs
-- once per k = 1, 2, ... with a finalizer that closes the case's file or
-- handle at the k-th collection cycle after the call starts, until a run
-- ends before the finalizer did.  A fresh interpreter has a small heap, so
-- under an eager collector a cycle ends every few allocations: the k-th
-- run closes the file at about the k-th allocation of the call.
--
-- Prints one line per case: "name ok before during other", counting runs
-- that returned the right result, raised "attempt to use a closed ..."
-- (closed before the call resolved it), raised "... was closed during the
-- call", or did anything else (printed on stderr).  Under check-asan this
-- interpreter is instrumented, so a use of a freed FILE ends it with a
-- report.
local hpass = require "hpass"

local newproxy = rawget(_G, "newproxy")
local function onfinal(f)
  if newproxy then
    local p = newproxy(true)
    getmetatable(p).__gc = f
    return p
  end
  return setmetatable({}, {__gc = f})
end

-- fn runs in a finalizer at the k-th cycle from now: a chain of finalizers,
-- each arming the next.  Returns a function telling whether it ran.
local function at_cycle(k, fn)
  local n, fired = 0, false
  local function arm()
    onfinal(function()
      n = n + 1
      if n >= k then fired = true; fn() else arm() end
    end)
  end
  arm()
  return function() return fired end
end

local LINE = string.rep("abcdefghij", 2000)          -- longer than any io buffer
local TEXT = LINE .. "\nsecond\n" .. string.rep("z", 30000)
local INTS = {}
for i = 1, 3000 do INTS[i] = i * 7 - 5000 end

-- A Lua file on the read end of a pipe holding s (fits the pipe).
local function rfile(s)
  local r, w = hpass.pipe()
  assert(w:write(s)); w:close()
  return assert(r:tofile("rb"))
end

local function ints(t)
  local r, w = hpass.pipe()
  assert(w:write_ints(t)); w:close()
  return assert(r:tofile("rb"))
end

-- A Lua file on the write end of a pipe, and its reader.
local function wfile()
  local r, w = hpass.pipe()
  r:setvbuf("full")
  return assert(w:tofile("wb")), r
end

local function same(a, b)
  if #a ~= #b then return false end
  for i = 1, #a do if a[i] ~= b[i] then return false end end
  return true
end

-- Each case: setup() -> ctx with ctx.victim (closed by the finalizer);
-- call(ctx) -> whether the result is right; done(ctx) cleans up.
local cases = {}

cases.read_l = {
  setup = function() return {victim = rfile(TEXT)} end,
  call = function(c) return hpass.read(c.victim, "l") == LINE end,
}
cases.read_L = {
  setup = function() return {victim = rfile(TEXT)} end,
  call = function(c) return hpass.read(c.victim, "L") == LINE .. "\n" end,
}
cases.read_count = {
  setup = function() return {victim = rfile(TEXT)} end,
  call = function(c) return hpass.read(c.victim, #TEXT) == TEXT end,
}
cases.read_all = {
  setup = function() return {victim = rfile(TEXT)} end,
  call = function(c) return hpass.read(c.victim, "a") == TEXT end,
}
cases.read_formats = {
  setup = function() return {victim = rfile(TEXT)} end,
  call = function(c)
    local a, b, d, e = hpass.read(c.victim, "l", "L", 5, "a")
    return a == LINE and b == "second\n" and d == "zzzzz" and #e == 29995
  end,
}
cases.lines = {
  setup = function() return {victim = rfile(TEXT)} end,
  call = function(c)
    local got = {}
    for l in hpass.lines(c.victim) do got[#got + 1] = l end
    return #got == 3 and got[1] == LINE and got[2] == "second"
  end,
}
cases.lines_formats = {
  setup = function() return {victim = rfile(TEXT)} end,
  call = function(c)
    local n = 0
    for a in hpass.lines(c.victim, 1000, "l") do n = n + #a end
    return n > 0
  end,
}
cases.read_int = {
  setup = function() return {victim = ints({42, 43})} end,
  call = function(c) return hpass.read_int(c.victim) == 42 end,
}
cases.read_ints = {
  setup = function() return {victim = ints(INTS)} end,
  call = function(c) return same(hpass.read_ints(c.victim, #INTS), INTS) end,
}
cases.write_int = {
  setup = function() local f, r = wfile(); return {victim = f, r = r} end,
  call = function(c) return hpass.write_int(c.victim, 9) == true end,
}
cases.write_ints = {
  setup = function() local f, r = wfile(); return {victim = f, r = r} end,
  call = function(c) return hpass.write_ints(c.victim, INTS) == true end,
}
cases.write = {
  setup = function() local f, r = wfile(); return {victim = f, r = r} end,
  call = function(c) return hpass.write(c.victim, "a", 1.5, 2, "b") == c.victim end,
}
cases.select = {
  within = hpass.select,   -- its result lists the victim: checked to its end
  setup = function() return {victim = rfile("x")} end,
  call = function(c)
    local rd = hpass.select({c.victim}, nil, 5)
    return rd[1] == c.victim
  end,
}
-- select over hpass handles alone reads its list in place: the victim
-- is an hpass handle, ready, and its result lists it
cases.select_handle = {
  within = hpass.select,
  setup = function()
    local r, w = hpass.pipe()
    assert(w:write("x"))
    return {victim = r, w = w}
  end,
  call = function(c)
    local rd = hpass.select({c.victim}, nil, 5)
    return rd[1] == c.victim
  end,
}
cases.spawn = {
  setup = function() local f, r = wfile(); return {victim = f, r = r} end,
  call = function(c)
    local p = assert(hpass.spawn_with_handle({"true"}, c.victim))
    return (p:wait())
  end,
}
cases.spawn_stdio = {
  setup = function() local f, r = wfile(); return {victim = f, r = r} end,
  call = function(c)
    local p = assert(hpass.spawn_with_handle({"true"}, {}, {stdout = c.victim,
                                                             stderr = c.victim}))
    return (p:wait())
  end,
}
cases.capture = {
  setup = function() return {victim = rfile("fed\n")} end,
  call = function(c)
    local out, _, ok = hpass.capture({"cat"}, {stdin = c.victim})
    return out == "fed\n" and ok
  end,
}
cases.capture_stderr = {
  setup = function() local f, r = wfile(); return {victim = f, r = r} end,
  call = function(c)
    local out, err, ok = hpass.capture({"sh", "-c", "echo x; echo y >&2"},
                                       {stderr = c.victim})
    return out == "x\n" and err == nil and ok
  end,
}
-- communicate takes the read-ahead of proc.stdout out of it: a pipe
-- closed before the call counts as ended (out ""), one closed during it
-- is reported
cases.communicate = {
  setup = function()
    local p = assert(hpass.spawn_with_handle({"sh", "-c", "echo fed"}, {},
                                             {stdout = "pipe"}))
    return {victim = p.stdout, p = p}
  end,
  call = function(c)
    local out, _, ok = c.p:communicate(nil, 30)
    c.p:wait()
    -- with its pipe closed first, the child may die of SIGPIPE
    return out == "fed\n" and ok or out == ""
  end,
}
cases.pipeline = {
  setup = function() return {victim = rfile("fed\n")} end,
  call = function(c)
    local out, _, ok = hpass.pipeline({{"cat"}, {"cat"}}, {stdin = c.victim})
    return out == "fed\n" and ok
  end,
}
cases.send_handle = {
  setup = function()
    local a, b = hpass.socketpair()
    local f, r = wfile()
    return {victim = f, r = r, a = a, b = b}
  end,
  call = function(c)
    if not hpass.send_handle(c.a, c.victim) then return false end
    local h = hpass.recv_handle(c.b)
    return hpass.type(h) == "handle" and h:close()
  end,
}
cases.send_channel = {
  setup = function()
    local a, b = hpass.socketpair()
    return {victim = assert(a:tofile("r+b")), b = b}
  end,
  call = function(c)
    local r, w = hpass.pipe()
    local ok = hpass.send_handle(c.victim, r)
    r:close(); w:close()
    local h = hpass.recv_handle(c.b)
    return ok and hpass.type(h) == "handle" and h:close()
  end,
}
cases.recv_channel = {
  within = hpass.recv_handle,
  setup = function()
    local a, b = hpass.socketpair()
    local r, w = hpass.pipe()
    assert(hpass.send_handle(b, r))
    r:close(); w:close()
    return {victim = assert(a:tofile("r+b")), b = b}
  end,
  call = function(c)
    local h = hpass.recv_handle(c.victim)
    return hpass.type(h) == "handle" and h:close()
  end,
}
-- hpass handles under the calls that take only them
local function handlecase(f)
  return {
    setup = function()
      local r, w = hpass.pipe()
      w:setvbuf("full")
      assert(w:write("queued"))
      return {victim = w, r = r}
    end,
    call = f,
  }
end
cases.tofile = handlecase(function(c)
  local f = c.victim:tofile("wb")
  local ok = io.type(f) == "file"
  f:close()
  return ok and c.r:read(6) == "queued"
end)
cases.detach = handlecase(function(c)
  local fd = c.victim:detach()
  local ok = c.r:read(6) == "queued"
  hpass.handle(fd):close()
  return ok
end)
cases.flush = handlecase(function(c)
  return c.victim:flush() == true and c.r:read(6) == "queued"
end)
cases.setvbuf = handlecase(function(c)
  return c.victim:setvbuf("no") == true and c.r:read(6) == "queued"
end)

-- never raises: in Lua 5.1 an error in a finalizer reaches the call
local function close(x)
  if io.type(x) == "file" then x:close()
  elseif io.type(x) == nil then hpass.close(x) end
end

-- Whether fn is running, in a frame below the caller's.
local function within(fn)
  for level = 2, 200 do
    local info = debug.getinfo(level, "f")
    if info == nil then return false end
    if info.func == fn then return true end
  end
  return false
end

local function run(name, maxk)
  local case = assert(cases[name], name)
  local count = {ok = 0, before = 0, during = 0, other = 0}
  for k = 1, maxk do
    local c = case.setup()
    local inside = false
    collectgarbage()  -- each run from the same state: a cycle just ended
    local fired = at_cycle(k, function()
      inside = case.within ~= nil and within(case.within)
      close(c.victim)
    end)
    local ok, res = pcall(case.call, c)
    local ran = fired()
    local what
    if ok and res and inside then
      what = "other"   -- closed inside a call that checks to its end: unreported
      io.stderr:write(name, " k=", k, ": closed inside the call, not reported\n")
    elseif ok and res then what = "ok"
    elseif not ok and tostring(res):match("attempt to use a closed") then what = "before"
    elseif not ok and tostring(res):match("was closed during the call") then what = "during"
    else
      what = "other"
      io.stderr:write(name, " k=", k, ": ", tostring(ok), " ", tostring(res), "\n")
    end
    count[what] = count[what] + 1
    pcall(close, c.victim)
    for _, x in pairs(c) do if hpass.type(x) == "handle" then x:close() end end
    -- a run that ended before the finalizer: later ones would too
    if not ran then break end
  end
  print(("%s %d %d %d %d"):format(name, count.ok, count.before, count.during, count.other))
end

local maxk = tonumber(os.getenv("HPASS_MIDCALL_MAX") or "") or 400
-- as eager as each collector gets: a whole cycle at nearly every
-- allocation
if _VERSION == "Lua 5.4" then
  collectgarbage("incremental", 1, 1000)    -- setpause 0 is weaker on 5.4
elseif pcall(collectgarbage, "param", "pause") then
  -- Lua 5.5: no "setpause"; a step at every allocation, each a big one
  collectgarbage("incremental")
  collectgarbage("param", "pause", 0)
  collectgarbage("param", "stepmul", 100000)
  collectgarbage("param", "stepsize", 1)
else
  -- 5.1 and LuaJIT: a step at each allocation of a kilobyte or more, and
  -- so much work per step that it ends the cycle (a read that allocates
  -- its result in a few big blocks takes only a few steps)
  collectgarbage("setpause", 0)
  collectgarbage("setstepmul", 100000)
end
for i = 1, #arg do run(arg[i], maxk) end
