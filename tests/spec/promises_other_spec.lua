-- The manual's "Other": the version string.
local hpass = require "hpass"
local H = require "helpers"

describe("Other:", function()
  it("hpass._VERSION holds the version string, such as 'hpass 0.2.0', the version the "
     .. "changelog describes", function()
    local v = hpass._VERSION
    assert.is_string(v)
    local number = assert(v:match("^hpass (%d+%.%d+%.%d+)$"), v)
    assert.equal(v, require("hpass.core")._VERSION)
    assert.truthy(H.readfile(H.root .. "/CHANGELOG.md"):find("\n## " .. number, 1, true),
                  "no section for " .. number .. " in CHANGELOG.md")
  end)
end)
