-- tools/check-docs.lua - the drift between the docs and the code that a
-- command can find, for make check-docs:
--
--   * every make target the docs name is one that `make help` lists;
--   * every function the module exports (hpass.*, and the methods of
--     handles, process objects and signals handles, as the loaded module
--     has them) is in the manual.
--
-- (That every Lua sample of the README and the manual runs is
-- tests/spec/readme_spec.lua's, which make check-docs runs too.)
--
--   lua tools/check-docs.lua HELPFILE FALLBACKS DOC.md ...
--
-- HELPFILE holds the output of `make help`; FALLBACKS the names of
-- test-fallbacks' builds (each a target fallback-NAME, which help lists
-- as fallback-NAME).  The module is loaded from the module paths, so
-- make runs this with the checkout's.  Runs on Lua 5.1 to 5.5.

local helpfile, fallbacks = arg[1], arg[2]
local unpack = rawget(table, "unpack") or rawget(_G, "unpack")
local problems = {}

local function readfile(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

local function problem(fmt, ...)
  problems[#problems + 1] = fmt:format(...)
end

-- {======================================================
-- make targets
-- =======================================================

local targets = {}
for line in readfile(helpfile):gmatch("[^\n]+") do
  local t = line:match("^make (%S+)")
  if t then targets[t] = true end
end
for name in fallbacks:gmatch("%S+") do
  if targets["fallback-NAME"] then targets["fallback-" .. name] = true end
end

-- The targets a doc names: what follows `make` at the start of a code
-- span (`make test`, `make test TESTS=...`), and a code span that is a
-- target's name alone in a list of them (`check-asan`), which is told
-- by its form: check-, test-, fallback-, lint-, bench.
local function named(text)
  local found = {}
  for span in text:gmatch("`([^`\n]+)`") do
    local t = span:match("^make ([%w][%w%-]*)")
    if t and not t:find("=", 1, true) then found[#found + 1] = t end
    if span:match("^check%-[%w%-]+$") or span:match("^test%-[%w%-]+$") or
       span:match("^fallback%-[%w%-]+$") or span:match("^lint%-[%w%-]+$") or
       span:match("^bench[%w%-]*$") then
      found[#found + 1] = span
    end
  end
  return found
end

-- }======================================================

-- {======================================================
-- exports
-- =======================================================

local hpass = require "hpass"

-- The methods in an object's __index: a table, or the function of
-- process objects, whose methods are its first upvalue.
local function methods(obj)
  local index = getmetatable(obj).__index
  if type(index) == "function" then
    local _, t = debug.getupvalue(index, 1)
    index = t
  end
  local list = {}
  for k, v in pairs(index) do
    if type(v) == "function" then list[#list + 1] = k end
  end
  table.sort(list)
  return list
end

local function exports()
  local r, w = assert(hpass.pipe())
  local proc = assert(hpass.spawn_with_handle({"true"}, {}))
  local sig = assert(hpass.signals({"USR2"}))
  local found = {module = {}}
  for k, v in pairs(hpass) do
    if type(v) == "function" and not k:match("^_") then
      found.module[#found.module + 1] = k
    end
  end
  table.sort(found.module)
  found.handle, found.process, found.signals = methods(r), methods(proc), methods(sig)
  proc:wait()
  r:close(); w:close(); sig:close()
  return found
end

-- How the manual writes a call: hpass.name, or obj:name( for a method.
local forms = {
  module = {"hpass%.NAME[^%w_]"},
  handle = {"hpass%.NAME%(", "h:NAME%("},
  process = {"proc:NAME%(", "p:NAME%("},
  signals = {"s:NAME%("},
}

-- }======================================================

local manual = readfile("docs/manual.md")
for i = 3, #arg do
  local text = readfile(arg[i])
  for _, t in ipairs(named(text)) do
    if not targets[t] then
      problem("%s names `make %s`, which `make help` does not list", arg[i], t)
    end
  end
end
local found = exports()
-- a module function that is also a handle method may be shown as either
-- (the manual says they are one function)
local ismethod = {}
for _, name in ipairs(found.handle) do ismethod[name] = true end
for _, kind in ipairs({"module", "handle", "process", "signals"}) do
  for _, name in ipairs(found[kind]) do
    local ok = false
    local list = {unpack(forms[kind])}
    if kind == "module" and ismethod[name] then list[#list + 1] = forms.handle[2] end
    for _, form in ipairs(list) do
      if manual:find((form:gsub("NAME", name))) then ok = true end
    end
    if not ok then
      problem("docs/manual.md does not show %s function %s (as %s)", kind, name,
              (forms[kind][1]:gsub("NAME", name):gsub("%%", ""):gsub("%[.*", "")))
    end
  end
end

if #problems > 0 then
  io.stderr:write("tools/check-docs.lua: the docs and the code disagree:\n  ",
                  table.concat(problems, "\n  "), "\n")
  os.exit(1)
end
print(("tools/check-docs.lua: %d docs name only targets of `make help`; the manual "
       .. "shows the %d module functions and the %d, %d and %d methods of handles, "
       .. "processes and signals"):format(#arg - 2, #found.module, #found.handle,
                                         #found.process, #found.signals))
