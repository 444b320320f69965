-- tools/sources.lua - the C sources of hpass.core, as the rockspec lists
-- them.  The rockspec is the one list: LuaRocks builds from it and a
-- rockspec cannot read another file, so the Makefile and
-- tools/test-windows.sh ask this script instead of keeping copies.
--
--   lua tools/sources.lua PLATFORM ...    the sources of each PLATFORM
--                                         (unix, win32, mingw32), each
--                                         once, on one line
--   lua tools/sources.lua --check FILE ...
--                                         fails unless every FILE (the
--                                         top level's *.c) is listed for
--                                         the platforms it belongs to, and
--                                         every listed source is a FILE
--
-- A file belongs to the platforms its name says: "posix" in it, unix;
-- "win32", win32 and mingw32; neither, all of them.  Runs on Lua 5.1 to
-- 5.4 and LuaJIT.

local root = arg and arg[0] and arg[0]:match("^(.*)/tools/[^/]*$") or "."
local rockspec = root .. "/hpass-scm-1.rockspec"
local MODULE = "hpass.core"

local function die(msg)
  io.stderr:write("tools/sources.lua: ", msg, "\n")
  os.exit(1)
end

-- The rockspec run as LuaRocks runs it: in an empty environment, its
-- globals (build, ...) landing in that table.
local function load_rockspec(path)
  local f = io.open(path, "rb")
  if not f then die("cannot open " .. path) end
  local text = f:read("*a")
  f:close()
  local env, chunk, err = {}
  local setfenv = rawget(_G, "setfenv")  -- Lua 5.1 and LuaJIT
  if setfenv then
    chunk, err = (rawget(_G, "loadstring") or load)(text, "@" .. path)
    if chunk then setfenv(chunk, env) end
  else
    chunk, err = load(text, "@" .. path, "t", env)
  end
  if not chunk then die(err) end
  local ok, msg = pcall(chunk)
  if not ok then die(tostring(msg)) end
  return env
end

local spec = load_rockspec(rockspec)
local platforms = spec.build and spec.build.platforms or {}

-- The sources listed for plat (an array, possibly empty).
local function sources(plat)
  local p = platforms[plat]
  local m = p and p.modules and p.modules[MODULE]
  return m and m.sources or {}
end

-- The platforms a file belongs to, by its name.
local function owners(file)
  if file:find("posix", 1, true) then return {unix = true} end
  if file:find("win32", 1, true) then return {win32 = true, mingw32 = true} end
  return {unix = true, win32 = true, mingw32 = true}
end

local function check(files)
  local problems, present = {}, {}
  for _, file in ipairs(files) do present[file:match("[^/]*$")] = true end
  for _, plat in ipairs({"unix", "win32", "mingw32"}) do
    local listed = {}
    for _, src in ipairs(sources(plat)) do
      listed[src] = true
      if not present[src] then
        problems[#problems + 1] = ("%s: %s is listed but is no file here"):format(plat, src)
      elseif not owners(src)[plat] then
        problems[#problems + 1] = ("%s: %s is listed, but its name says another platform")
                                  :format(plat, src)
      end
    end
    for _, file in ipairs(files) do
      local name = file:match("[^/]*$")
      if owners(name)[plat] and not listed[name] then
        problems[#problems + 1] = ("%s: %s is not listed"):format(plat, name)
      end
    end
  end
  if #problems > 0 then
    die("the sources of " .. MODULE .. " in hpass-scm-1.rockspec and the *.c files"
        .. " disagree:\n  " .. table.concat(problems, "\n  "))
  end
  io.write(("tools/sources.lua: %d files, listed for unix, win32 and mingw32\n")
           :format(#files))
end

if arg[1] == "--check" then
  local files = {}
  for i = 2, #arg do files[#files + 1] = arg[i] end
  check(files)
else
  if #arg == 0 then die("usage: lua tools/sources.lua PLATFORM ... | --check FILE ...") end
  local out, seen = {}, {}
  for _, plat in ipairs(arg) do
    local list = sources(plat)
    if #list == 0 then die("no sources of " .. MODULE .. " for " .. plat .. " in " .. rockspec) end
    for _, src in ipairs(list) do
      if not seen[src] then
        seen[src] = true
        out[#out + 1] = src
      end
    end
  end
  io.write(table.concat(out, " "), "\n")
end
