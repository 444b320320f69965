-- Which program runs, and with which environment: no batch files (cmd.exe
-- would reparse their arguments), no current-directory lookup, and an
-- environment block as Windows keeps one.

local hpass = require "hpass"
local S = require "support"
local aid = require "testaid"

local tests, test = S.suite()

local ERR_BATCH, ERR_ENVCASE = 0x20000001, 0x20000002
local luadir = S.lua:match("^(.*)\\")

-- A folder of its own under TEMP, made empty.
local function folder(name)
  local d = S.tmp .. "\\" .. name
  assert(aid.mkdir(d))
  return d
end

-- A copy of lua.exe (and the DLL it needs) under another name.
local function plant(dir, name)
  S.copy(S.lua, dir .. "\\" .. name)
  S.copy(luadir .. "\\lua54.dll", dir .. "\\lua54.dll")
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

test("batch files are refused, however the name is spelt", function()
  local d = folder("hpass-bat")
  local marker = d .. "\\ran.txt"
  os.remove(marker)
  -- run, the file would leave a marker (and the injected echo another)
  local body = "@echo off\r\necho ran> \"" .. marker .. "\"\r\n"
  for _, f in ipairs({"x.bat", "y.cmd", "Z.BAT"}) do
    assert(aid.writefile(d .. "\\" .. f, body))
  end
  local names = {"x.bat", "X.BAT", "x.Bat", "y.cmd", "y.CMD", "Z.BAT", "z.bat",
                 "x.bat.", "x.bat. ", "x.bat . .", "y.cmd ..", "x.bat::$DATA"}
  local args = {'"&echo INJECTED> "' .. marker .. '"', "%PATH%", "^&", '"', "a b"}
  local refused = 0
  for _, n in ipairs(names) do
    local argv = {d .. "\\" .. n}
    for _, a in ipairs(args) do argv[#argv + 1] = a end
    local p, msg, code = hpass.spawn_with_handle(argv, {})
    S.eq(p, nil, n)
    if code == ERR_BATCH then
      refused = refused + 1
      S.match(msg, "batch files are not run", n .. " message")
      S.eq(msg:sub(1, #argv[1] + 2), argv[1] .. ": ", n .. " names the program")
    else
      -- only a name Windows itself cannot open may fail otherwise
      S.eq(code, 2, n .. " code")
      S.match(n, "::", n .. " not found")
    end
  end
  assert(refused >= #names - 1, "refused " .. refused)
  -- found by a bare name through PATH: neither PATHEXT's .bat nor .cmd
  local p, _, code = hpass.spawn_with_handle({"x"}, {}, {env = {PATH = d}})
  S.eq(p, nil, "bare x")
  S.eq(code, 2, "bare x code")
  aid.sleep(200)
  S.eq(exists(marker), false, "no batch file ran")
end)

test("cmd.exe itself still runs, by its full path", function()
  local sys = assert(os.getenv("SystemRoot")) .. "\\system32\\cmd.exe"
  local out, ok = S.run({sys, "/d", "/c", "echo hi"}, {})
  assert(ok, "cmd failed")
  S.eq(out, "hi\n", "cmd output")
end)

test("a bare name is not looked for in the current or the program's folder", function()
  -- lua.exe sits in the current directory and next to the running lua.exe
  S.eq(aid.cwd():lower(), luadir:lower(), "test runs next to lua.exe")
  local p, msg, code = hpass.spawn_with_handle({"lua", "-e", "os.exit(3)"}, {})
  S.eq(p, nil, "lua found by a bare name")
  S.eq(code, 2, "code")
  S.match(msg, "^lua: ", "message")
  -- the same name found through the env option's PATH
  local _, ok, how, c = S.run({"lua", "-e", "os.exit(3)"}, {},
                              {env = {PATH = "Z:\\no;" .. luadir}})
  S.eq(ok, nil, "ok"); S.eq(how, "exit", "how"); S.eq(c, 3, "exit code")
  -- "." and relative PATH entries are not the current directory either
  p, _, code = hpass.spawn_with_handle({"lua"}, {}, {env = {PATH = ".;lua;"}})
  S.eq(p, nil, "relative PATH")
  S.eq(code, 2, "relative PATH code")
  -- an env without PATH finds no bare name, whatever the parent's PATH
  local path = os.getenv("PATH")
  assert(aid.setenv("PATH", luadir .. ";" .. path))
  p, _, code = hpass.spawn_with_handle({"lua"}, {}, {env = {X = "1"}})
  assert(aid.setenv("PATH", path))
  S.eq(p, nil, "env without PATH")
  S.eq(code, 2, "env without PATH code")
end)

test("a program planted in the cwd folder is not found by a bare name", function()
  local d = folder("hpass-plant")
  plant(d, "hpassplant.exe")
  local p, _, code = hpass.spawn_with_handle({"hpassplant"}, {}, {cwd = d})
  S.eq(p, nil, "planted program ran")
  S.eq(code, 2, "code")
  -- the parent's PATH is searched when no env is given
  local path = os.getenv("PATH")
  assert(aid.setenv("PATH", d .. ";" .. path))
  local ok, out
  ok, out = pcall(S.run, {"hpassplant", "-e", "io.write(arg[0])"}, {})
  assert(aid.setenv("PATH", path))
  assert(ok, out)
  S.eq(out, "hpassplant", "ran through the parent's PATH")
end)

test("relative names with a folder are relative to cwd; .exe, then .com", function()
  local d = folder("hpass-rel")
  assert(aid.mkdir(d .. "\\sub"))
  plant(d .. "\\sub", "prog.exe")
  plant(d .. "\\sub", "only.com")
  local out, ok = S.run({"sub\\prog", "-e", "io.write('exe')"}, {}, {cwd = d})
  assert(ok, "sub\\prog failed")
  S.eq(out, "exe", "sub\\prog")
  out, ok = S.run({"sub/only", "-e", "io.write('com')"}, {}, {cwd = d})
  assert(ok, "sub/only failed")
  S.eq(out, "com", "sub/only")
  -- without cwd the same name is looked for where the parent runs
  local p, _, code = hpass.spawn_with_handle({"sub\\prog"}, {})
  S.eq(p, nil, "sub\\prog without cwd")
  S.eq(code, 2, "code")
  -- a cwd that is not there, or not a folder, is named as such
  local msg
  p, msg, code = hpass.spawn_with_handle({"sub\\prog"}, {}, {cwd = d .. "\\none"})
  S.eq(p, nil, "missing cwd")
  S.eq(code, 2, "missing cwd code (ERROR_FILE_NOT_FOUND)")
  S.match(msg, "%S", "missing cwd message")
  assert(aid.writefile(d .. "\\afile", "x"))
  p, _, code = hpass.spawn_with_handle({"sub\\prog"}, {}, {cwd = d .. "\\afile"})
  S.eq(p, nil, "cwd is a file")
  S.eq(code, 267, "cwd is a file code (ERROR_DIRECTORY)")
end)

local function childenv(env, ...)
  env.LUA_PATH = os.getenv("LUA_PATH")
  env.LUA_CPATH = os.getenv("LUA_CPATH")
  local out, ok = S.run({S.lua, S.child, ...}, {}, {env = env})
  assert(ok, "child failed: " .. out)
  return out
end

test("names that differ only in case are refused", function()
  for _, env in ipairs({{PATH = "a", Path = "b"}, {Foo = "1", FOO = "2"},
                        {SystemRoot = "x", SYSTEMROOT = "y"}}) do
    local p, msg, code = hpass.spawn_with_handle({S.lua, "-v"}, {}, {env = env})
    S.eq(p, nil, "result")
    S.eq(code, ERR_ENVCASE, "code")
    S.match(msg, "in different case", "message")
  end
end)

test("the block is sorted ignoring case", function()
  local env = {b_x = "1", A = "2", c = "3", B = "4", a_z = "5", ["Zeta"] = "6",
               ["_u"] = "7", ["é"] = "8"}
  local names = {}
  -- wine adds entries of its own (SystemDrive, WINE*) at the end of the
  -- child's block, so only the names given here are checked
  for n in childenv(env, "envnames"):gmatch("[^\n]+") do
    if env[n] then names[#names + 1] = n end
  end
  S.eq(#names, 10, "names given")
  for i = 2, #names do
    assert(names[i - 1]:upper() < names[i]:upper(),
           ("%q before %q"):format(names[i - 1], names[i]))
  end
end)

test("SystemRoot and =X: entries are carried unless set", function()
  local root = assert(aid.getenv("SystemRoot"))
  assert(aid.setenv("=Q:", "Q:\\hpass"))
  local out = childenv({HPASS_X = "1"}, "env", "SystemRoot", "=Q:", "HPASS_X")
  S.eq(out, root .. "\nQ:\\hpass\n1\n", "carried")
  -- (wine sets SystemRoot in every new process itself, so it cannot show
  -- that a caller's own SystemRoot wins, nor that it is carried)
  assert(aid.setenv("=Q:", nil))
  out = childenv({}, "env", "=Q:", "SystemRoot")
  S.eq(out, "nil\n" .. root .. "\n", "not set in the parent")
end)

return tests
