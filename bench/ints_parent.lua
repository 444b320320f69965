-- ints_parent.lua - send N native 4-byte ints to a Lua child.
--
--   lua ints_parent.lua IMPL[,IMPL...] N ROUNDS FIFO   timing: R ints/<impl> <ns/int>
--   lua ints_parent.lua IMPL N 1 - mem                 memory: R mem/<impl> <VmHWM kB>
--                                                        R mem/<impl>_growth <kB>
--
-- IMPL (the child, bench/ints_child.lua, reads the same way):
--   hpass_perint     hpass.write_int per int, unbuffered (the seed's protocol)
--   hpass_buffered   the same calls after w:setvbuf("full"), then w:flush()
--   hpass_bulk       hpass.write_ints(w, t) / hpass.read_ints(h, N)
--   hpass_stream     hpass.write_ints(w, t) / hpass.read_ints(h, 16384, buf)
--                    into one reused table (each chunk's count and ends checked)
--   luaposix_perint  posix.write(w, string.pack("=i4", i)) per int      (5.3)
--   popen_buffered   io.popen(child, "w"):write(string.pack("=i4", i))   (5.4)
-- and Lua's floors (bench/floor.c), the partners of hpass's rounds:
--   floor_perint     the minimal binding's write_int / read_int per int
--   floor_bulk       no transfer: the child walks a table of N ints into a C
--                    buffer and fills a new table from it, and times that
--   floor_stream     the same, filling one reused table 16384 at a time
--   floor_pipe_bulk  the minimal binding's bulk transfer: the parent walks the
--                    table into a C buffer and writes it, the child reads it
--                    into a C buffer and fills a new table (what any binding
--                    pays for the pipe between two processes)
--   floor_pipe_stream  the same, the child filling one reused table 16384 at
--                    a time
-- Several IMPLs, comma-separated, take turns: each round runs one of each,
-- in the order of benchlib's B.order (partner rounds).
-- The ints are 1..N.  The child opens FIFO (a named pipe made by run.sh),
-- writes "ready" when it can read and "done ok" once it holds all N ints,
-- so the time runs from the first int written to the last int received and
-- excludes the child's start-up (a floor child, which receives nothing,
-- says "done ok <ns>" with the time it measured itself).  In memory mode
-- there is no FIFO and no clock; the parent prints its peak RSS after the
-- transfer, and how much it grew during the transfer (from just after the
-- module was loaded).

local B = require "benchlib"

local impls, n, rounds, fifo, mode =
  arg[1], tonumber(arg[2]), tonumber(arg[3]), arg[4], arg[5]
if not (impls and n and rounds and fifo) then
  B.fail("usage: ints_parent.lua IMPL[,IMPL...] N ROUNDS FIFO|- [mem]")
end
local mem = mode == "mem"
if mem then fifo = "-" end
local lua = arg[-1]
local dir = arg[0]:match("^(.*)/[^/]*$") or "."
local child = dir .. "/ints_child.lua"

local function shquote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Each starter launches the child and returns send(), which writes the N
-- ints, and finish(), which ends the stream and collects the child.
local starters = {}

local function hpass_starter(kind)
  return function(impl)
    local hpass = require "hpass"
    local r, w = hpass.pipe()
    if not r then B.fail("hpass.pipe: " .. tostring(w)) end
    local p, msg = hpass.spawn_with_handle({lua, child, impl, n, fifo}, r)
    if not p then B.fail("spawn_with_handle: " .. tostring(msg)) end
    r:close()
    local send
    if kind == "floor" then  -- the child measures itself
      send = function() end
    elseif kind == "floor_pipe" then
      local F = require "benchfloor"
      local t = {}
      for i = 1, n do t[i] = i end
      local fw, buf, walk, fsend = F.wrap(w:fileno()), F.buffer(n), F.walk, F.send
      send = function()
        walk(t, buf)
        fsend(fw, buf)
      end
    elseif kind == "floor_perint" then
      local F = require "benchfloor"
      local fw, write_int = F.wrap(w:fileno()), F.write_int
      send = function()
        for i = 1, n do
          local ok, err = write_int(fw, i)
          if not ok then B.fail("write_int: " .. tostring(err)) end
        end
      end
    elseif kind == "perint" or kind == "buffered" then
      if kind == "buffered" then assert(w:setvbuf("full")) end
      local write_int = hpass.write_int
      send = function()
        for i = 1, n do
          local ok, err = write_int(w, i)
          if not ok then B.fail("write_int: " .. tostring(err)) end
        end
        if kind == "buffered" then
          local ok, err = w:flush()
          if not ok then B.fail("flush: " .. tostring(err)) end
        end
      end
    else
      local t = {}
      for i = 1, n do t[i] = i end
      local write_ints = hpass.write_ints
      send = function()
        local ok, err = write_ints(w, t)
        if not ok then B.fail("write_ints: " .. tostring(err)) end
      end
    end
    local function finish()
      w:close()
      local ok, how, code = p:wait()
      if not ok then B.fail("child: " .. tostring(how) .. " " .. tostring(code)) end
    end
    return send, finish
  end
end

starters.hpass_perint = hpass_starter("perint")
starters.hpass_buffered = hpass_starter("buffered")
starters.hpass_bulk = hpass_starter("bulk")
starters.hpass_stream = hpass_starter("bulk")
starters.floor_perint = hpass_starter("floor_perint")
starters.floor_bulk = hpass_starter("floor")
starters.floor_stream = hpass_starter("floor")
starters.floor_pipe_bulk = hpass_starter("floor_pipe")
starters.floor_pipe_stream = hpass_starter("floor_pipe")

function starters.luaposix_perint(impl)
  local P = require "posix"
  local r, w = P.pipe()
  if not r then B.fail("posix.pipe: " .. tostring(w)) end
  io.stdout:flush()
  local pid = P.fork()
  if pid == 0 then
    P.close(w)
    P.execp(lua, {child, impl, tostring(n), fifo, tostring(r)})
    P._exit(127)
  elseif not pid then
    B.fail("fork failed")
  end
  P.close(r)
  local write, pack = P.write, string.pack
  local function send()
    for i = 1, n do
      local k, err = write(w, pack("=i4", i))
      if k ~= 4 then B.fail("posix.write: " .. tostring(err)) end
    end
  end
  local function finish()
    P.close(w)
    local _, how, code = P.wait(pid)
    if how ~= "exited" or code ~= 0 then
      B.fail("child: " .. tostring(how) .. " " .. tostring(code))
    end
  end
  return send, finish
end

function starters.popen_buffered(impl)
  local cmd = table.concat({"exec", shquote(lua), shquote(child), impl, n,
                            shquote(fifo)}, " ")
  local f = assert(io.popen(cmd, "w"))
  local pack = string.pack
  local function send()
    for i = 1, n do
      local ok, err = f:write(pack("=i4", i))
      if not ok then B.fail("write: " .. tostring(err)) end
    end
    local ok, err = f:flush()
    if not ok then B.fail("flush: " .. tostring(err)) end
  end
  local function finish()
    local ok, how, code = f:close()
    if not ok then B.fail("child: " .. tostring(how) .. " " .. tostring(code)) end
  end
  return send, finish
end

local list = {}
for impl in impls:gmatch("[^,]+") do
  if not starters[impl] then B.fail("unknown IMPL " .. impl) end
  list[#list + 1] = impl
end
if mem and #list ~= 1 then B.fail("memory mode takes one IMPL") end

if mem and impls:match("^hpass") then require "hpass" end
if mem and impls:match("^luaposix") then require "posix" end
local hwm0 = B.status_kib("VmHWM")

-- One round of impl: R ints/<impl> <ns per int> (or its memory).
local function round(impl)
  local send, finish = starters[impl](impl)
  if mem then
    send()
    finish()
    local hwm = B.status_kib("VmHWM")
    B.result("mem/" .. impl, hwm)
    B.result("mem/" .. impl .. "_growth", hwm - hwm0)
    return
  end
  local ctl = assert(io.open(fifo, "r"))
  local line = ctl:read("l")
  if line ~= "ready" then B.fail("child did not start: " .. tostring(line)) end
  collectgarbage()
  local t0 = B.now()
  send()
  line = ctl:read("l")
  local t1 = B.now()
  ctl:close()
  local ok, own = (line or ""):match("^(done ok) ?(%d*)$")
  if not ok then B.fail("child got wrong data: " .. tostring(line)) end
  finish()
  B.result("ints/" .. impl, (own ~= "" and tonumber(own) or t1 - t0) / n)
end

for r = 1, rounds do
  for _, impl in ipairs(B.order(list, r)) do round(impl) end
end
