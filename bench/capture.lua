-- capture.lua - a child's whole output into one Lua string.
--
--   lua5.4 capture.lua IMPL MIB
--
-- IMPL is one of
--   hpass_capture   hpass.capture({"head", "-c", bytes, "/dev/zero"})
--   popen_read      io.popen("head -c bytes /dev/zero"):read("a")
-- Prints the time it took, in milliseconds:  R capture/<impl> <ms>

local B = require "benchlib"

local impl, mib = arg[1], tonumber(arg[2])
if not (impl and mib) then B.fail("usage: capture.lua IMPL MIB") end
local bytes = math.floor(mib * 1048576)

local run
if impl == "hpass_capture" then
  local hpass = require "hpass"
  local argv = {"head", "-c", tostring(bytes), "/dev/zero"}
  run = function()
    local out, err, ok = hpass.capture(argv, {max_output = math.huge})
    if not ok then B.fail("capture: " .. tostring(err)) end
    return #out
  end
elseif impl == "popen_read" then
  local cmd = "head -c " .. bytes .. " /dev/zero"
  run = function()
    local f = assert(io.popen(cmd, "r"))
    local out = f:read("a")
    f:close()
    return #out
  end
else
  B.fail("unknown implementation " .. impl)
end

collectgarbage()
local t0 = B.now()
local got = run()
local ms = (B.now() - t0) / 1e6
if got ~= bytes then B.fail(("read %d bytes, expected %d"):format(got, bytes)) end
B.result("capture/" .. impl, ms)
