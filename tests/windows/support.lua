-- tests/windows/support.lua - what the Windows tests share.

local hpass = require "hpass"

local S = {}

-- Windows paths set by tools/test-windows.sh.
S.lua = assert(os.getenv("HPASS_TEST_LUA"), "HPASS_TEST_LUA not set")
S.dir = assert(os.getenv("HPASS_TEST_DIR"), "HPASS_TEST_DIR not set")
S.child = S.dir .. "\\child.lua"
S.tmp = assert(os.getenv("TEMP") or os.getenv("TMP"), "no TEMP")

-- A list of tests, in order.
function S.suite()
  local list = {}
  return list, function(name, fn) list[#list + 1] = {name, fn} end
end

function S.eq(got, want, what)
  if got ~= want then
    error(("%s: expected %s, got %s"):format(what or "value",
          ("%q"):format(tostring(want)), ("%q"):format(tostring(got))), 2)
  end
end

function S.match(s, pat, what)
  if type(s) ~= "string" or not s:find(pat) then
    error(("%s: %q does not match %q"):format(what or "value",
          tostring(s), pat), 2)
  end
end

-- Start argv with the given handles and its stdout on a pipe: the process
-- and the read end, or fail, msg, code.
function S.capture(argv, handles, opts)
  local r, w = assert(hpass.pipe())
  opts = opts or {}
  opts.stdout = w
  local p, msg, code = hpass.spawn_with_handle(argv, handles, opts)
  w:close()  -- the child has its own copy
  if not p then
    r:close()
    return nil, msg, code
  end
  return p, r
end

-- Everything left on a read end, in text mode, then closed.
function S.readall(r)
  local f = assert(r:tofile("r"))
  local s = f:read("a")
  f:close()
  return s
end

-- Run to the end: stdout, then the wait triple.
function S.run(argv, handles, opts)
  local p, r = S.capture(argv, handles, opts)
  if not p then error("spawn failed: " .. tostring(r), 2) end
  local out = S.readall(r)
  return out, p:wait()
end

function S.copy(from, to)
  local f = assert(io.open(from, "rb"))
  local data = f:read("a")
  f:close()
  f = assert(io.open(to, "wb"))
  assert(f:write(data))
  assert(f:close())
end

return S
