-- Random use: seeded sequences of API calls, misuse and closes included,
-- checked against a model after every step.  A failure names the seed and
-- the step; HPASS_RANDOM_SEED=n replays one seed, HPASS_RANDOM_STEPS sets
-- the length of each run.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"

local sig = R.sig

-- Bytes kept in flight per channel, well under what a pipe holds (64 kB),
-- so that no write can block.
local MAXBYTES = 32768

-- Any int32, from two 16-bit halves (Lua 5.1's math.random takes int
-- bounds and overflows on wider ranges).
local function randint32()
  return math.random(0, 65535) * 65536 + math.random(0, 65535) - 2147483648
end

--[[
  The model of one channel (a pipe, or a socket pair used one way):
    r, w       the handles, or nil once closed
    q          the ints written and not yet read, in order
    sure       how many of q have certainly reached the OS (the rest may
               still wait in w's buffer)
    rbuf, wbuf whether r and w are buffered
]]
local Run = {}
Run.__index = Run

local function newrun(seed)
  local self = setmetatable({seed = seed, chans = {}, dropped = 0, log = {}}, Run)
  self.fds0 = sig.nfds()
  return self
end

function Run:note(fmt, ...)
  self.log[#self.log + 1] = fmt:format(...)
  if #self.log > 12 then table.remove(self.log, 1) end
end

function Run:check(cond, what)
  if not cond then
    error(("seed %d, step %d: %s\nlast steps:\n  %s"):format(
      self.seed, self.step, what, table.concat(self.log, "\n  ")), 0)
  end
end

function Run:pick()
  if #self.chans == 0 then return nil end
  return self.chans[math.random(#self.chans)]
end

function Run:openfds()
  local n = 0
  for _, c in ipairs(self.chans) do
    if c.r then n = n + 1 end
    if c.w then n = n + 1 end
  end
  return n
end

-- Marks the ints in w's buffer as delivered (after a flush or a close).
local function delivered(c) c.sure = #c.q end

-- The operations: each checks its own results against the model.
local ops = {}

function ops.new(self)
  if #self.chans >= 8 then return end
  local a, b
  if math.random(2) == 1 then a, b = hpass.pipe() else a, b = hpass.socketpair() end
  self:check(hpass.type(a) == "handle" and hpass.type(b) == "handle", "new handles")
  self.chans[#self.chans + 1] = {r = a, w = b, q = {}, sure = 0}
  self:note("new")
end

function ops.write(self)
  local c = self:pick()
  if not c or not c.w or #c.q * 4 + 4 > MAXBYTES then return end
  local v = randint32()
  local ok, msg, code = c.w:write_int(v)
  self:note("write_int %d (reader %s, %s)", v, c.r and "open" or "closed",
            c.wbuf and "buffered" or "unbuffered")
  if c.r then
    self:check(ok == true, "write_int failed: " .. tostring(msg))
    c.q[#c.q + 1] = v
    if not c.wbuf then c.sure = #c.q end
  elseif c.wbuf then
    -- the buffer may take it, or a flush to the missing reader fails
    self:check(ok == true or code == R.EPIPE, "buffered write_int: " .. tostring(msg))
  else
    self:check(ok == nil and code == R.EPIPE, "write_int without a reader")
  end
end

function ops.write_ints(self)
  local c = self:pick()
  local n = math.random(0, 50)
  if not c or not c.w or (#c.q + n) * 4 > MAXBYTES then return end
  local t = {}
  for i = 1, n do t[i] = randint32() end
  local ok, msg, code = c.w:write_ints(t)
  self:note("write_ints %d", n)
  if c.r then
    self:check(ok == true, "write_ints failed: " .. tostring(msg))
    for i = 1, n do c.q[#c.q + 1] = t[i] end
    if not c.wbuf then c.sure = #c.q end
  else
    self:check(ok == true or code == R.EPIPE, "write_ints without a reader")
  end
end

function ops.read(self)
  local c = self:pick()
  if not c or not c.r then return end
  if c.w and c.sure == 0 then return end    -- it would wait
  local v, msg = c.r:read_int()
  self:note("read_int -> %s", tostring(v))
  if #c.q == 0 then
    self:check(v == nil and msg == nil, "end of stream expected, got " .. tostring(v))
  else
    self:check(v == c.q[1], ("read_int gave %s, expected %d"):format(tostring(v), c.q[1]))
    table.remove(c.q, 1)
    c.sure = math.max(c.sure - 1, 0)
  end
end

function ops.read_ints(self)
  local c = self:pick()
  if not c or not c.r then return end
  local n = math.random(1, 40)
  if c.w and c.sure < n then return end     -- it would wait
  local t = c.r:read_ints(n)
  self:note("read_ints %d -> %s", n, t and #t or "nil")
  local want = math.min(n, #c.q)
  if want == 0 then
    self:check(t == nil, "read_ints at the end should fail")
    return
  end
  self:check(type(t) == "table" and #t == want, "read_ints count")
  for i = 1, want do
    self:check(t[i] == c.q[1], ("read_ints element %d"):format(i))
    table.remove(c.q, 1)
  end
  c.sure = math.max(c.sure - want, 0)
end

function ops.flush(self)
  local c = self:pick()
  if not c or not c.w then return end
  local ok, _, code = c.w:flush()
  self:note("flush")
  if c.r then
    self:check(ok == true, "flush failed")
    delivered(c)
  else
    self:check(ok == true or code == R.EPIPE, "flush without a reader")
  end
end

function ops.setvbuf(self)
  local c = self:pick()
  if not c then return end
  local which = math.random(2) == 1 and "r" or "w"
  local h = c[which]
  if not h then return end
  local mode = math.random(2) == 1 and "full" or "no"
  local size = ({4, 6, 64, 4096, 65536})[math.random(5)]
  local ok, res, _, code = pcall(h.setvbuf, h, mode, size)
  self:note("setvbuf %s %s %d", which, mode, size)
  if not ok then
    -- a read end may hold input it read ahead: then it must refuse
    self:check(which == "r" and c.rbuf and tostring(res):find("unread"),
               "setvbuf raised: " .. tostring(res))
    return
  end
  if which == "w" then
    self:check(res == true or (not c.r and code == R.EPIPE), "setvbuf flush")
    if c.r then delivered(c) end
    c.wbuf = mode == "full"
  else
    self:check(res == true, "setvbuf on a read end")
    c.rbuf = mode == "full"
  end
end

function ops.close(self)
  local c = self:pick()
  if not c then return end
  local which = math.random(2) == 1 and "r" or "w"
  local h = c[which]
  if not h then return end
  local ok, _, code = h:close()
  self:note("close %s", which)
  self:check(hpass.type(h) == "closed handle", "closed handle type")
  self:check(h:close() == true, "second close")
  if which == "w" then
    self:check(ok == true or (not c.r and code == R.EPIPE), "close of the write end")
    if c.r then delivered(c) end
    c.w = nil
  else
    self:check(ok == true, "close of the read end")
    c.r, c.q, c.sure = nil, {}, 0
  end
  c.closed = c.closed or {}
  c.closed[#c.closed + 1] = h
  if not c.r and not c.w then self:forget(c) end
end

function Run:forget(c)
  for i, x in ipairs(self.chans) do
    if x == c then table.remove(self.chans, i); return end
  end
end

-- Drop both ends without closing them: the collector must close them.
function ops.drop(self)
  local c = self:pick()
  if not c then return end
  self.dropped = self.dropped + (c.r and 1 or 0) + (c.w and 1 or 0)
  self:forget(c)
  self:note("drop")
end

function ops.collect(self)
  collectgarbage(); collectgarbage()
  self.dropped = 0
  self:note("collect")
  self:check(sig.nfds() == self.fds0 + self:openfds(), "descriptors after a collection")
end

-- Misuse: must raise and change nothing.
function ops.misuse(self)
  local c = self:pick()
  local cases = {
    function() return hpass.write_int(c and c.w or 1000, 0 / 0) end,
    function() return hpass.write_int(c and c.w or 1000, 2 ^ 31) end,
    function() return hpass.read_int("x") end,
    function() return hpass.read_ints(c and c.r or 1000, -1) end,
    function() return hpass.write_ints(c and c.w or 1000, {1, "x"}) end,
    function() return hpass.setvbuf(c and (c.w or c.r) or 1000, "bogus") end,
    function() return hpass.spawn_with_handle({}, {}) end,
  }
  if c and c.closed then
    local h = c.closed[1]
    cases[#cases + 1] = function() return h:read_int() end
    cases[#cases + 1] = function() return h:write_int(1) end
    cases[#cases + 1] = function() return h:fileno() end
  end
  local k = math.random(#cases)
  local ok, err = pcall(cases[k])
  self:note("misuse %d", k)
  self:check(not ok and type(err) == "string", "misuse " .. k .. " did not raise")
end

-- A child writes into a channel, after what is already there.
function ops.spawn(self)
  local c = self:pick()
  local n = math.random(0, 20)
  if not c or not c.w or not c.r or (#c.q + n) * 4 > MAXBYTES then return end
  local first = math.random(-1000, 1000)
  local proc = hpass.spawn_with_handle({H.cpeer, "write", tostring(first), "3",
                                        tostring(n)}, c.w)
  self:check(proc ~= nil, "spawn failed")
  delivered(c)                          -- buffered output went first
  local ok, how, code = proc:wait()
  self:check(ok == true, ("child: %s %s"):format(tostring(how), tostring(code)))
  for i = 0, n - 1 do c.q[#c.q + 1] = first + 3 * i end
  c.sure = #c.q
  self:note("spawn writing %d", n)
  local _, zombies = sig.children()
  self:check(zombies == 0, "zombies after wait")
end

-- The same, through tables that fight back: metamethods that must not
-- run, and a getfd() that rewrites argv and options, drops the channel
-- from the handles, leaves garbage with finalizers and collects it.
function ops.hostile_spawn(self)
  local c = self:pick()
  local n = math.random(0, 20)
  if not c or not c.w or not c.r or (#c.q + n) * 4 > MAXBYTES then return end
  local first = math.random(-1000, 1000)
  local spare_r, spare_w = hpass.pipe()
  local argv = {"sh", "-c", 'exec "$0" write "$1" 3 "$2" "$3"', H.cpeer,
                tostring(first), tostring(n)}
  local opts = {}
  local handles
  local function refuse(what) return function() error(what .. " ran", 0) end end
  setmetatable(argv, {__index = refuse("argv __index"), __len = refuse("argv __len")})
  setmetatable(opts, {__index = refuse("options __index"),
                      __pairs = refuse("options __pairs")})
  local sneak = {getfd = function()
    rawset(argv, 1, "false"); rawset(argv, 7, {})
    rawset(opts, "env", 42); rawset(opts, "bogus", true)
    handles[1] = nil
    for _ = 1, math.random(0, 3) do R.onfinal(function() local _ = {{}, {}} end) end
    if math.random(2) == 1 then collectgarbage() end
    return spare_r:fileno()
  end}
  handles = {c.w, sneak}
  local proc, msg = hpass.spawn_with_handle(argv, handles, opts)
  spare_r:close(); spare_w:close()
  self:check(proc ~= nil, "hostile spawn failed: " .. tostring(msg))
  delivered(c)
  local ok, how, code = proc:wait()
  self:check(ok == true, ("child: %s %s"):format(tostring(how), tostring(code)))
  for i = 0, n - 1 do c.q[#c.q + 1] = first + 3 * i end
  c.sure = #c.q
  self:note("hostile spawn writing %d", n)
end

-- Garbage whose finalizer allocates and calls hpass, so that finalizers
-- run inside later hpass calls (the more so under an eager collector).
function ops.finalizer(self)
  R.onfinal(function()
    local ok, err = pcall(function()
      local a, b = hpass.pipe()
      assert(b:write_int(7)); assert(a:read_int() == 7)
      local t = {}
      for i = 1, 20 do t[i] = {i} end
      assert(#t == 20)
      a:close(); b:close()
    end)
    if not ok then self.finerr = tostring(err) end
  end)
  self:note("finalizer")
end

local WEIGHTS = {
  {"new", 6}, {"write", 20}, {"write_ints", 6}, {"read", 18}, {"read_ints", 6},
  {"flush", 5}, {"setvbuf", 5}, {"close", 6}, {"drop", 2}, {"collect", 2},
  {"misuse", 6}, {"spawn", 2}, {"hostile_spawn", 2}, {"finalizer", 4},
}
local TOTAL = 0
for _, w in ipairs(WEIGHTS) do TOTAL = TOTAL + w[2] end

local function randomop()
  local x = math.random(TOTAL)
  for _, w in ipairs(WEIGHTS) do
    x = x - w[2]
    if x <= 0 then return w[1] end
  end
end

-- Checks that hold after every step.
function Run:invariants()
  local seen = {}
  for _, c in ipairs(self.chans) do
    for _, which in ipairs({"r", "w"}) do
      local h = c[which]
      if h then
        self:check(hpass.type(h) == "handle", "open handle type")
        local fd = h:fileno()
        self:check(not seen[fd], "two handles share descriptor " .. fd)
        seen[fd] = true
      end
    end
    self:check(c.sure >= 0 and c.sure <= #c.q, "model: sure out of range")
  end
  local n, open = sig.nfds(), self.fds0 + self:openfds()
  self:check(n >= open and n <= open + self.dropped,
             ("descriptors: %d open, model says %d (+%d dropped)"):format(n, open, self.dropped))
end

function Run:go(steps)
  for step = 1, steps do
    self.step = step
    local name = randomop()
    ops[name](self)
    self:invariants()
    self:check(self.finerr == nil, "a finalizer's hpass calls failed: " .. tostring(self.finerr))
  end
  -- wind down: everything closes cleanly, nothing is left behind
  for _, c in ipairs(self.chans) do
    if c.w then c.w:close() end
    if c.r then
      if #c.q > 0 or c.sure > 0 then
        local t = c.r:read_ints(#c.q + 1)
        self:check(#c.q == 0 or (t and #t == #c.q), "ints left at the end")
        for i = 1, #c.q do self:check(t[i] == c.q[i], "left-over int " .. i) end
      end
      c.r:close()
    end
  end
  self.chans = {}
  ops.collect(self)
end

describe("random use", function()
  local steps = R.knob("HPASS_RANDOM_STEPS", 3000)
  local only = R.knob("HPASS_RANDOM_SEED", nil)
  local seeds = only and {only} or {1, 2, 3, 20240611}

  for _, seed in ipairs(seeds) do
    it(("keeps the model's invariants (seed %d, %d steps)"):format(seed, steps), function()
      math.randomseed(seed)
      local run = newrun(seed)
      run:go(steps)
      assert.equal(run.fds0, sig.nfds())
    end)
  end

  -- finalizers then run at nearly every allocation, inside hpass calls
  local seed = only or 7
  local third = math.floor(steps / 3)
  it(("keeps them under an eager collector (seed %d, %d steps)"):format(seed, third),
     function()
    math.randomseed(seed)
    local restore = R.eager_gc()
    local run = newrun(seed)
    local ok, err = pcall(run.go, run, math.floor(steps / 3))
    restore()
    assert(ok, err)
    assert.equal(run.fds0, sig.nfds())
  end)
end)
