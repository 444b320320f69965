-- SIGPIPE around hpass writes, seen from inside: prints "name value" lines
-- that tests/spec/reliability_spec.lua compares with what it expects.  Run with
-- and without HPASS_NO_RWF_NOSIGNAL, so both ways hpass avoids the signal
-- are covered.
local hpass = require "hpass"
local sig = require "sigpeer"

local function report(name, ...)
  local t = {}
  for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
  io.write(name, " ", table.concat(t, " "), "\n")
end

-- a pipe whose reader has gone, and its write end's number
local function broken()
  local r, w = hpass.pipe()
  r:close()
  return w
end

sig.catch("PIPE")  -- the user's own handler, counting

local _
local w = broken()
local ok, msg, code = w:write_int(1)
report("pipe", ok, code, msg ~= nil, sig.count("PIPE"), sig.pending("PIPE"),
       sig.blocked("PIPE"))
w:close()

local a, b = hpass.socketpair()
b:close()
ok, _, code = a:write_int(1)
report("socket", ok, code, sig.count("PIPE"))
a:close()

-- a write made outside hpass still raises the user's SIGPIPE
w = broken()
ok, _, code = sig.rawwrite(w:fileno(), "x")
report("raw", ok, code, sig.count("PIPE"))

-- the user blocked SIGPIPE and one is pending: hpass must leave it there
sig.block("PIPE")
sig.rawwrite(w:fileno(), "x")
local before = sig.pending("PIPE")
ok, _, code = w:write_int(1)
report("pending", before, ok, code, sig.pending("PIPE"), sig.blocked("PIPE"))
sig.unblock("PIPE")
report("delivered", sig.count("PIPE"), sig.pending("PIPE"))

-- blocked, nothing pending: hpass must leave nothing pending
sig.block("PIPE")
ok, _, code = w:write_int(1)
report("clean", ok, code, sig.pending("PIPE"), sig.blocked("PIPE"))
sig.unblock("PIPE")
report("after", sig.count("PIPE"))
w:close()

-- with the default disposition the write fails and we live on
sig.default("PIPE")
w = broken()
ok, _, code = w:write_int(1)
report("default", ok, code)
w:close()

-- children still die of SIGPIPE in pipelines
local out = os.tmpname()
os.execute("(yes; echo $? > " .. out .. ") | head -n 1 > /dev/null")
local f = assert(io.open(out))
report("os.execute", f:read("*n"))
f:close()
f = assert(io.open(out, "w"))
local proc = assert(hpass.spawn_with_handle(
    {"sh", "-c", "(yes; echo $? >&2) | head -n 1 > /dev/null"}, {}, {stderr = f}))
f:close()
proc:wait()
f = assert(io.open(out))
report("spawn", f:read("*n"))
f:close()
os.remove(out)
report("alive", true)
