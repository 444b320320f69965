-- The seed: the Winsock FAQ's fdpass example, with hpass, under Windows.

local hpass = require "hpass"
local S = require "support"

local tests, test = S.suite()

local function expected()
  local lines = {}
  for n = 1000, 8000, 1000 do
    lines[#lines + 1] = ("Dad, the square root of %d is %3.2f.\n"):format(n, math.sqrt(n))
  end
  return table.concat(lines)
end

-- Parent side: pipe, spawn with the read end, write 1000..8000, compare.
local function seed(lua, child)
  local r, w = assert(hpass.pipe())
  local p, out = S.capture({lua, child, "sqrt"}, r)
  assert(p, out)
  r:close()
  for n = 1000, 8000, 1000 do assert(w:write_int(n)) end
  w:close()
  S.eq(S.readall(out), expected(), "child output")
  local ok, how, code = p:wait()
  S.eq(ok, true, "wait")
  S.eq(how, "exit")
  S.eq(code, 0)
end

test("parent writes 1000..8000, child prints square roots", function()
  seed(S.lua, S.child)
end)

test("same, with lua.exe and the script in a directory with spaces", function()
  local aid = require "testaid"
  local d = S.tmp .. "\\hpass dir with space"
  assert(aid.mkdir(d))
  S.copy(S.lua, d .. "\\lua.exe")
  S.copy(S.lua:gsub("[^\\]*$", "lua54.dll"), d .. "\\lua54.dll")
  S.copy(S.child, d .. "\\child script.lua")
  seed(d .. "\\lua.exe", d .. "\\child script.lua")
end)

test("a bare program name is found in PATH", function()
  -- "lua" has no directory: it is looked for in PATH alone
  local aid = require "testaid"
  local path = os.getenv("PATH")
  assert(aid.setenv("PATH", "Z:\\no\\such;" .. S.lua:match("^(.*)\\") .. ";" .. path))
  local ok, err = pcall(seed, "lua", S.child)
  assert(aid.setenv("PATH", path))
  assert(ok, err)
end)

return tests
