-- Each call that flushes a Lua file, on a file whose pipe has lost its
-- reader and that holds buffered output: every one must return
-- fail, message, EPIPE, and this process must live to print "done".
-- Prints "NAME CODE" per call.
local hpass = require "hpass"

local function pipefile()
  local r, w = hpass.pipe()
  local f = assert(w:tofile("w"))
  f:setvbuf("full")
  r:close()
  assert(f:write("buffered"))   -- waits in the file's buffer
  return f
end

local calls = {
  write_int = function(f) return hpass.write_int(f, 1) end,
  write_ints = function(f) return hpass.write_ints(f, {1, 2}) end,
  spawn = function(f) return hpass.spawn_with_handle({"true"}, f) end,
  stdout = function(f) return hpass.spawn_with_handle({"true"}, {}, {stdout = f}) end,
  send_handle = function(f)
    local a, b = hpass.socketpair()
    local res = {hpass.send_handle(a, f)}
    a:close(); b:close()
    return (table.unpack or unpack)(res, 1, 3)  -- luacheck: compat
  end,
}
local files = {}
for _, name in ipairs({"write_int", "write_ints", "spawn", "stdout", "send_handle"}) do
  local f = pipefile()
  local ok, msg, code = calls[name](f)
  if ok and name ~= "spawn" and name ~= "stdout" then ok = ok == true end
  io.write(name, " ", tostring(ok and "ok" or code), " ", tostring(msg), "\n")
  files[#files + 1] = f
end
print("done", #files)
io.stdout:flush()
-- closing the files at exit writes their buffers again, with the reader
-- still gone: that SIGPIPE is stdio's own, not a call's
require("sigpeer").ignore("PIPE")
