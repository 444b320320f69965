-- The manual's Conventions, promise by promise: the handle-argument forms
-- and Lua code in the middle of a call.  Each test is named after the
-- sentence it checks.
local hpass = require "hpass"
local H = require "helpers"

-- The cases of tests/child/midcall.lua, each a call that takes a Lua file
-- (or, for the calls that take only hpass handles, a handle).
local FILE_READS = {"read_l", "read_L", "read_count", "read_all", "read_formats",
                    "lines", "lines_formats", "read_int", "read_ints"}
local FILE_OTHERS = {"write_int", "write_ints", "write", "select", "spawn",
                     "spawn_stdio", "capture", "capture_stderr", "send_handle",
                     "send_channel", "recv_channel"}
local HANDLE_ONLY = {"tofile", "detach", "flush", "setvbuf"}

-- Runs the midcall child on the cases; its counts by case.
local function midcall(cases)
  local argv = {H.lua, H.child("midcall")}
  for _, c in ipairs(cases) do argv[#argv + 1] = c end
  local out, ok, how, code = H.capture(argv)
  assert.same({true, "exit", 0}, {ok, how, code}, out)
  local counts = {}
  for name, a, b, c, d in out:gmatch("(%S+) (%d+) (%d+) (%d+) (%d+)\n") do
    counts[name] = {ok = tonumber(a), before = tonumber(b), during = tonumber(c),
                    other = tonumber(d)}
  end
  for _, c in ipairs(cases) do assert.is_table(counts[c], "no result for " .. c) end
  return counts
end

describe("Conventions: Lua code in the middle of a call", function()
  after_each(H.cleanup)

  it("finalizers that the collector runs during a call cannot reach what the call is " ..
     "using: a Lua file a finalizer closes at any point of any call is reported, " ..
     "never used", function()
    local cases = {}
    for _, list in ipairs({FILE_READS, FILE_OTHERS, HANDLE_ONLY}) do
      for _, c in ipairs(list) do cases[#cases + 1] = c end
    end
    local counts = midcall(cases)
    local during = 0
    for _, c in ipairs(cases) do
      -- the right result, or the close reported: nothing else
      assert.equal(0, counts[c].other, c)
      assert.is_true(counts[c].ok >= 1, c)
    end
    for _, c in ipairs(FILE_READS) do during = during + counts[c].during end
    -- the reads allocate as they go: some finalizers ran inside them
    assert.is_true(during > 0, "no finalizer ran inside a read")
  end)
end)
