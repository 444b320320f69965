-- The Lua samples of the README and the manual run, each as a script of
-- its own, so that the documentation cannot go stale: every fenced ```lua
-- block must exit 0.
local H = require "helpers"

local function blocks(path)
  local text = H.readfile(path)
  local list = {}
  for code in text:gmatch("```lua\n(.-)\n```") do list[#list + 1] = code end
  return list
end

for _, doc in ipairs({{"README.md", 5}, {"docs/manual.md", 2}}) do
  describe(doc[1], function()
    after_each(H.cleanup)

    local list = blocks(H.root .. "/" .. doc[1])

    it("has its Lua samples", function()
      assert.is_true(#list >= doc[2], "found " .. #list)
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
end
