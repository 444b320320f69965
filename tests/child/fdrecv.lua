-- The receiving side of sockets_spec's handle-passing tests, already
-- running when the handles are sent.  CHANNEL is appended by hpass.
--
--   fdrecv.lua echo CHANNEL
--     For every message, write to each received handle j (in order) the
--     ints j and 1 if it is close-on-exec here (else 0), then close it.
--     Exit 0 at the end of the channel.
--   fdrecv.lua once CHANNEL
--     Receive one message and print "ok N" (N handles, then closed) or
--     "fail MESSAGE CODE", then "leak K": descriptors open now minus before.
local hpass = require "hpass"

local function cloexec(fd)
  local f = assert(io.open("/proc/self/fdinfo/" .. fd))
  local flags = assert(tonumber(f:read("*a"):match("flags:%s*(%d+)"), 8))
  f:close()
  return math.floor(flags / 0x80000) % 2 == 1  -- O_CLOEXEC, octal 02000000
end

local function nfds()
  local n = 0
  for fd = 0, 1023 do
    local f = io.open("/proc/self/fdinfo/" .. fd)
    if f then n = n + 1; f:close() end
  end
  return n
end

local mode = arg[1]
local chan = assert(hpass.handle(arg[#arg]))

if mode == "echo" then
  while true do
    local got = {chan:recv_handle()}
    if got[1] == nil then
      if got[2] ~= nil then error("recv_handle: " .. tostring(got[2])) end
      break
    end
    for j, h in ipairs(got) do
      assert(h:write_int(j))
      assert(h:write_int(cloexec(h:fileno()) and 1 or 0))
      assert(h:close())
    end
  end
elseif mode == "once" then
  local before = nfds()
  local got = {chan:recv_handle()}
  if got[1] then
    print("ok " .. #got)
    for _, h in ipairs(got) do h:close() end
  else
    print("fail " .. tostring(got[2]) .. " " .. tostring(got[3]))
  end
  print("leak " .. (nfds() - before))
else
  error("unknown mode " .. tostring(mode))
end
