-- ints_child.lua - the reading side of ints_parent.lua.
--
--   lua ints_child.lua IMPL N FIFO|- [HANDLE]
--
-- Reads N ints that must be 1..N, then expects the end of the stream.
-- With a FIFO it writes "ready" there before the first read and "done ok"
-- (or "done bad <i>") as soon as it holds all N ints; checks that cannot be
-- done on the fly (bulk) come after "done".  Exit status 0 means every int
-- arrived once, in order, and nothing followed.
--
-- The floors of bulk transfer (floor_bulk, floor_stream) receive nothing:
-- the child makes a table of N ints, then times a walk of it into a C
-- buffer and a fill from that buffer into a new table (or into one reused
-- table, 16384 at a time, as hpass_stream reads), and says "done ok <ns>".
-- floor_pipe_bulk and floor_pipe_stream receive through the minimal
-- binding (bench/floor.c): read(2) into a C buffer, then the fill.

local impl, n, fifo, hnum = arg[1], tonumber(arg[2]), arg[3], arg[#arg]
if not (impl and n and fifo) then
  io.stderr:write("usage: ints_child.lua IMPL N FIFO|- [HANDLE]\n")
  os.exit(2)
end

local function fail(msg)
  io.stderr:write("ints_child: ", impl, ": ", tostring(msg), "\n")
  os.exit(1)
end

-- Each reader sets up the stream and returns receive() -> index of the
-- first wrong int or nil, plus at_eof() -> true when nothing follows.
local readers = {}

local function hpass_reader(kind)
  return function()
    local hpass = require "hpass"
    local h, err = hpass.handle(hnum)
    if not h then error("hpass.handle: " .. tostring(err)) end
    if kind == "buffered" then assert(h:setvbuf("full")) end
    local function at_eof()
      local v, e = h:read_int()
      return v == nil and e == nil
    end
    if kind == "stream" then
      -- Chunks of 16384 into one reused table.  C's batch reader checks
      -- its array after the clock stops; a reused table cannot wait, and
      -- a Lua loop over every int would time the loop, not the transfer.
      -- So each chunk's count and both ends are checked here (a lost or
      -- repeated int moves them); tests/ check every int's value.
      local read_ints, buf, base = hpass.read_ints, {}, 0
      return function()
        while base < n do
          local want = n - base < 16384 and n - base or 16384
          local t, e = read_ints(h, want, buf)
          if not t then error("read_ints: " .. tostring(e)) end
          local got = #t
          if got > 0 and (t[1] ~= base + 1 or t[got] ~= base + got) then
            return base + 1
          end
          base = base + got
          if got < want then return base + 1 end
        end
      end, at_eof
    end
    if kind == "bulk" then
      local read_ints = hpass.read_ints
      return function()
        local t, e = read_ints(h, n)
        if not t then error("read_ints: " .. tostring(e)) end
        return nil, t
      end, at_eof, function(t)
        if #t ~= n then return #t + 1 end
        for i = 1, n do
          if t[i] ~= i then return i end
        end
      end
    end
    local read_int = hpass.read_int
    return function()
      for i = 1, n do
        local v = read_int(h)
        if v ~= i then return i end
      end
    end, at_eof
  end
end

readers.hpass_perint = hpass_reader("perint")
readers.hpass_buffered = hpass_reader("buffered")
readers.hpass_bulk = hpass_reader("bulk")
readers.hpass_stream = hpass_reader("stream")

function readers.floor_perint()
  local F = require "benchfloor"
  local u, read_int = F.wrap(tonumber(hnum)), F.read_int
  return function()
    for i = 1, n do
      if read_int(u) ~= i then return i end
    end
  end, function()
    return read_int(u) == nil
  end
end

-- A floor of bulk transfer: walk and fill in this process, timed here.
local function floor_reader(reuse)
  return function()
    local F = require "benchfloor"
    local now = require("benchclock").now
    local src = {}
    for i = 1, n do src[i] = i end
    local buf = F.buffer(n)
    local walk, fill = F.walk, F.fill
    collectgarbage()
    return function()
      local t0 = now()
      walk(src, buf)
      local t
      if reuse then
        t = {}
        for base = 0, n - 1, 16384 do
          local m = n - base < 16384 and n - base or 16384
          fill(buf, t, m)
          if t[1] ~= 1 or t[m] ~= m then return base + 1 end
        end
      else
        t = fill(buf)
      end
      local ns = now() - t0
      if not reuse and (#t ~= n or t[n] ~= n) then return #t + 1 end
      return nil, nil, ns
    end, function() return true end
  end
end
readers.floor_bulk = floor_reader(false)
readers.floor_stream = floor_reader(true)

-- The minimal binding's bulk reader: read(2) into a C buffer, then fill.
local function floor_pipe_reader(reuse)
  return function()
    local F = require "benchfloor"
    local u = F.wrap(tonumber(hnum))
    local buf = F.buffer(reuse and 16384 or n)
    local recv, fill = F.recv, F.fill
    return function()
      if not reuse then
        local got = recv(u, buf, n)
        local t = fill(buf, nil, got)
        if got ~= n or t[n] ~= n then return got + 1 end
        return
      end
      local t, base = {}, 0
      while base < n do
        local want = n - base < 16384 and n - base or 16384
        local got = recv(u, buf, want)
        fill(buf, t, got)
        if got > 0 and (t[1] ~= base + 1 or t[got] ~= base + got) then return base + 1 end
        base = base + got
        if got < want then return base + 1 end
      end
    end, function()
      return recv(u, buf, 1) == 0
    end
  end
end
readers.floor_pipe_bulk = floor_pipe_reader(false)
readers.floor_pipe_stream = floor_pipe_reader(true)

function readers.luaposix_perint()
  local P = require "posix"
  local fd = tonumber(hnum)
  local read, unpack = P.read, string.unpack
  return function()
    for i = 1, n do
      local s = read(fd, 4)
      if not s or #s ~= 4 or unpack("=i4", s) ~= i then return i end
    end
  end, function()
    local s = read(fd, 1)
    return s == ""
  end
end

function readers.popen_buffered()
  local f, unpack = io.stdin, string.unpack
  return function()
    for i = 1, n do
      local s = f:read(4)
      if not s or #s ~= 4 or unpack("=i4", s) ~= i then return i end
    end
  end, function()
    return f:read(1) == nil
  end
end

local ctl

-- The parent waits on the FIFO, so any error here is reported there too
-- (instead of leaving the parent blocked until run.sh's timeout).
local function main()
  local setup = readers[impl]
  if not setup then error("unknown IMPL " .. tostring(impl)) end
  local receive, at_eof, check = setup()
  if fifo ~= "-" then
    ctl = assert(io.open(fifo, "w"))
    ctl:write("ready\n")
    ctl:flush()
  end
  local bad, got, ns = receive()
  if ctl then
    ctl:write(bad and ("done bad " .. bad) or "done ok",
              ns and string.format(" %d", ns) or "", "\n")
    ctl:close()
    ctl = nil
  end
  if not bad and check then bad = check(got) end
  if bad then error("int " .. bad .. " wrong or missing") end
  if not at_eof() then error("data after the last int") end
end

local ok, err = pcall(main)
if not ok then
  if fifo ~= "-" then
    ctl = ctl or io.open(fifo, "w")
    if ctl then
      ctl:write("error in child: ", tostring(err):gsub("\n", " "), "\n")
      ctl:close()
    end
  end
  fail(err)
end
os.exit(0)
