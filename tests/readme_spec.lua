-- The README's Lua samples run, each as a script of its own, so that the
-- documentation cannot go stale: every fenced ```lua block must exit 0.
local H = require "helpers"

local function blocks(path)
  local text = H.readfile(path)
  local list = {}
  for code in text:gmatch("```lua\n(.-)\n```") do list[#list + 1] = code end
  return list
end

describe("README.md", function()
  after_each(H.cleanup)

  local list = blocks(H.dir .. "/../README.md")

  it("has Lua samples", function()
    assert.is_true(#list >= 4, "found " .. #list)
  end)

  for i, code in ipairs(list) do
    local first = code:match("[^\n]*")
    it(("sample %d runs (%s)"):format(i, first), function()
      local name = H.tmpname()
      local f = assert(io.open(name, "w"))
      f:write(code, "\n")
      f:close()
      local out, ok, how, status = H.capture({H.lua, name}, {})
      assert.same({true, "exit", 0}, {ok, how, status}, out)
    end)
  end
end)
