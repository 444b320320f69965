-- tests/windows/run.lua - a plain-Lua test runner for the Windows build,
-- run by tools/test-windows.sh under wine (busted is not available there).
--
-- Each test file returns a list of {name, function}.  A test passes when
-- its function returns without raising.  One line per test, then exactly
-- "N passed, N failed"; the exit status is 0 only when nothing failed.

local files = {
  "test_io.lua", "test_seed.lua", "test_spawn.lua", "test_lookup.lua",
  "test_pipes.lua", "test_crt.lua", "test_send.lua", "test_deadline.lua",
  "test_capture.lua", "test_process.lua", "test_servers.lua",
  "test_inherited.lua", "test_subprocess.lua",
}

-- HPASS_TEST_FILES="a.lua b.lua" runs only those (the second C runtime)
if (os.getenv("HPASS_TEST_FILES") or "") ~= "" then
  files = {}
  for f in os.getenv("HPASS_TEST_FILES"):gmatch("%S+") do files[#files + 1] = f end
end

local dir = os.getenv("HPASS_TEST_DIR") or arg[0]:match("^(.*)[/\\]") or "."
package.path = dir .. "\\?.lua;" .. package.path

-- HPASS_TEST_REPORT=FILE writes the report there (a run under script(1),
-- whose terminal shows the console's own output)
local say = print
if (os.getenv("HPASS_TEST_REPORT") or "") ~= "" then
  local out = assert(io.open(os.getenv("HPASS_TEST_REPORT"), "w"))
  out:setvbuf("line")
  say = function(...)
    local t = {}
    for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
    out:write(table.concat(t, "\t"), "\n")
  end
end

local passed, failed = 0, 0

-- wall-clock milliseconds, when the test helper module is there
local okaid, aid = pcall(require, "testaid")
local ticks = okaid and aid.ticks or function() return 0 end

local function report(ok, name, err, ms)
  local time = ms and (" (%d ms)"):format(ms) or ""
  if ok then
    passed = passed + 1
    say("ok     " .. name .. time)
  else
    failed = failed + 1
    say("FAILED " .. name .. time)
    say("       " .. tostring(err):gsub("\n", "\n       "))
  end
end

for _, file in ipairs(files) do
  local chunk, lerr = loadfile(dir .. "\\" .. file)
  local ok, tests = false, lerr
  if chunk then ok, tests = xpcall(chunk, debug.traceback) end
  if not ok then
    report(false, file, tests)
  else
    for _, t in ipairs(tests) do
      local t0 = ticks()
      local tok, terr = xpcall(t[2], debug.traceback)
      report(tok, file:gsub("%.lua$", "") .. ": " .. t[1], terr, ticks() - t0)
      collectgarbage()
    end
  end
end

say(("%d passed, %d failed"):format(passed, failed))
os.exit(failed == 0 and 0 or 1)
