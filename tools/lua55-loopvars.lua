-- tools/lua55-loopvars.lua - make Lua files written for Lua 5.4 compile
-- on Lua 5.5, where the control variables of a for loop are read-only.
--
--   lua5.5 tools/lua55-loopvars.lua FILE ...
--
-- Each FILE is rewritten in place, only where Lua 5.5 refuses it: the
-- loop that declares the variable a line assigns to gets a copy of it,
--   for k, v in pairs(t) do          for k_, v in pairs(t) do local k = k_
-- which keeps what the loop did on 5.4 (an assignment never changed the
-- iteration there either).  Line numbers stay as they were.  Used for
-- busted's own files and what they load (tools/test-toolchain.sh
-- --lua5.5), which do this in several places; the suite's files need no
-- rewriting.  Fails when a file still does not compile.

local function die(msg)
  io.stderr:write("lua55-loopvars: ", msg, "\n")
  os.exit(1)
end

local function readlines(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  local lines = {}
  for l in (text .. (text:sub(-1) == "\n" and "" or "\n")):gmatch("(.-)\n") do
    lines[#lines + 1] = l
  end
  return lines
end

-- Whether the for header at the start of s declares name.
local function declares(vars, name)
  for v in vars:gmatch("[%w_]+") do
    if v == name then return true end
  end
  return false
end

-- Give the loop declaring name at or above line n a copy of it.
local function fix(lines, n, name)
  for i = n, 1, -1 do
    local l = lines[i]
    local s, e, vars = l:find("%f[%w_]for%s+([%w_,%s]-)%s+in%f[^%w_]")
    if not s then s, e, vars = l:find("%f[%w_]for%s+([%w_]+)%s*=") end
    if s and declares(vars, name) then
      for j = i, n do
        local from = (j == i) and e + 1 or 1
        local ds, de = lines[j]:find("%f[%w_]do%f[^%w_]", from)
        if ds then
          lines[i] = l:sub(1, s - 1) .. l:sub(s, e):gsub("%f[%w_]" .. name .. "%f[^%w_]",
                                                        name .. "_", 1) .. l:sub(e + 1)
          local shift = (j == i) and #name + 1 or 0
          local lj = lines[j]
          lines[j] = lj:sub(1, de + shift) .. (" local %s = %s_"):format(name, name)
                     .. lj:sub(de + shift + 1)
          return true
        end
      end
    end
  end
  return false
end

for _, path in ipairs(arg) do
  for _ = 1, 200 do
    local ok, err = loadfile(path)
    if ok then break end
    local n, name = err:match(":(%d+): attempt to assign to const variable '([%w_]+)'")
    if not n then die(err) end
    local lines = readlines(path)
    if not fix(lines, tonumber(n), name) then
      die(("%s:%s: no for loop declares '%s'"):format(path, n, name))
    end
    local f = assert(io.open(path, "wb"))
    f:write(table.concat(lines, "\n"), "\n")
    f:close()
  end
  local ok, err = loadfile(path)
  if not ok then die(err) end
end
