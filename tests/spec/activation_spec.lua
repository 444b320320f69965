-- systemd's socket activation, both ways: hpass.listen_fds receives sockets
-- as sd_listen_fds_with_names(3) does, and spawn's `listen` option passes
-- them as systemd does (the manual's "Servers" section).
local hpass = require "hpass"
local socket = require "socket"
local H = require "helpers"

local unpack = table.unpack or unpack  -- luacheck: compat

local const = require("sigpeer").const  -- this system's errno numbers
local EINVAL, EBADF = const.EINVAL, const.EBADF
local ACTIVATE = "systemd-socket-activate"
local PROXYD = "/lib/systemd/systemd-socket-proxyd"
local CHILD = H.child("listenfds")

-- A free port on 127.0.0.1 (bound and released: free for a moment).
local function freeport()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- Connect to port, retrying while nothing listens yet; one line back.
local function fetch(port)
  for _ = 1, 200 do
    local c = socket.tcp()
    c:settimeout(20)
    if c:connect("127.0.0.1", port) then
      local line, err = c:receive("*l")
      c:close()
      return line, err
    end
    c:close()
    socket.sleep(0.05)
  end
  error("nothing listens on port " .. port)
end

-- This process's environment with the protocol's variables set as given
-- (false: removed), for the env option.
local function environ(vars)
  local e = hpass.environ()
  for k, v in pairs(vars) do e[k] = v or nil end
  return e
end

-- systemd-socket-activate passes only the variables it is told: those
-- that point the child at this checkout's hpass.
local function activate(...)
  local argv = {ACTIVATE}
  for _, v in ipairs({"LUA_PATH", "LUA_CPATH", "LUA_PATH_5_4", "LUA_CPATH_5_4",
                      "LUA_PATH_5_3", "LUA_CPATH_5_3", "LUA_PATH_5_2", "LUA_CPATH_5_2"}) do
    if os.getenv(v) then argv[#argv + 1] = "-E"; argv[#argv + 1] = v end
  end
  for _, a in ipairs({...}) do argv[#argv + 1] = a end
  return H.start(argv, {}, {stderr = "null"})  -- it tells what it does there
end

-- listenfds.lua run with descriptor 3 open (a socket) and the variables
-- given; "$$" as LISTEN_PID is the child's own pid (sh execs it).  Its
-- output lines.
local function received(vars, mode)
  local a, b = assert(hpass.socketpair())
  local pid = vars.LISTEN_PID
  vars.LISTEN_PID = pid ~= "$$" and pid or nil
  local argv = {"sh", "-c", (pid == "$$" and "LISTEN_PID=$$; export LISTEN_PID; " or "")
                .. 'exec "$0" "$@"', H.lua, CHILD, mode or "report"}
  local out, ok = H.capture(argv, a, {env = environ(vars)})
  a:close(); b:close()
  assert.is_true(ok, out)
  return H.lines(out)
end

describe("hpass.listen_fds", function()
  after_each(H.cleanup)

  it("takes the sockets systemd-socket-activate passes, with their --fdname names", function()
    local p1, p2 = freeport(), freeport()
    local proc, out = activate("-l", "127.0.0.1:" .. p1, "-l", "127.0.0.1:" .. p2,
                               "--fdname=web:admin", H.lua, CHILD, "serve")
    assert.equal("web", fetch(p1))          -- the first connection starts it
    assert.equal("admin", fetch(p2))
    assert.same({true, "exit", 0}, {proc:wait()})
    assert.same({"ok\t2", "3\tweb\ttrue", "4\tadmin\ttrue", "env\t-\t-\t-", "args\t"},
                H.lines(H.readfile(out)))
  end)

  it("names are \"unknown\" when systemd gives none", function()
    local p1 = freeport()
    local proc, out = activate("-l", "127.0.0.1:" .. p1, H.lua, CHILD, "serve")
    assert.equal("unknown", fetch(p1))
    assert.same({true, "exit", 0}, {proc:wait()})
    assert.same({"ok\t1", "3\tunknown\ttrue"}, {unpack(H.lines(H.readfile(out)), 1, 2)})
  end)

  it("keep_env = true leaves the variables set; they are removed otherwise", function()
    local kept = received({LISTEN_PID = "$$", LISTEN_FDS = "1", LISTEN_FDNAMES = "web"}, "keep")
    assert.equal("ok\t1", kept[1])
    assert.matches("^env\t%d+\t1\tweb$", kept[3])
    local gone = received({LISTEN_PID = "$$", LISTEN_FDS = "1", LISTEN_FDNAMES = "web"})
    assert.same({"ok\t1", "3\tweb\ttrue", "env\t-\t-\t-"}, {gone[1], gone[2], gone[3]})
  end)

  it("another process's LISTEN_PID, or none, gives two empty arrays, and the variables go",
     function()
    for _, vars in ipairs({
      {LISTEN_PID = "1", LISTEN_FDS = "1"},
      {LISTEN_PID = false, LISTEN_FDS = "1"},
      {LISTEN_PID = "$$", LISTEN_FDS = false},
    }) do
      local lines = received(vars)
      assert.equal("ok\t0", lines[1])
      assert.equal("env\t-\t-\t-", lines[2])
    end
  end)

  it("an empty name between separators is a name", function()
    local a, b = assert(hpass.socketpair())
    local out = H.capture({"sh", "-c", 'LISTEN_PID=$$ exec "$0" "$@"', H.lua, CHILD},
                          {a, b}, {env = environ({LISTEN_FDS = "2", LISTEN_FDNAMES = ":b"})})
    a:close(); b:close()
    assert.same({"ok\t2", "3\t\ttrue", "4\tb\ttrue"}, {unpack(H.lines(out), 1, 3)})
  end)

  for _, case in ipairs({
    {"LISTEN_PID", "abc", "LISTEN_PID='abc' is not a process id"},
    {"LISTEN_PID", "-5", "LISTEN_PID='%-5' is not a process id"},
    {"LISTEN_PID", "0", "LISTEN_PID='0' is not a process id"},
    {"LISTEN_PID", "", "LISTEN_PID='' is not a process id"},
    {"LISTEN_PID", " 12", "LISTEN_PID=' 12' is not a process id"},
    {"LISTEN_PID", "99999999999999999999", "is not a process id"},
    {"LISTEN_FDS", "0", "LISTEN_FDS='0' is not a positive number"},
    {"LISTEN_FDS", "-1", "LISTEN_FDS='%-1' is not a positive number"},
    {"LISTEN_FDS", "x", "LISTEN_FDS='x' is not a positive number"},
    {"LISTEN_FDS", "", "LISTEN_FDS='' is not a positive number"},
    {"LISTEN_FDS", "1x", "LISTEN_FDS='1x' is not a positive number"},
    {"LISTEN_FDS", "+1", "LISTEN_FDS='%+1' is not a positive number"},
    {"LISTEN_FDS", "99999999999999999999", "is not a positive number"},
    {"LISTEN_FDS", "2147483647", "LISTEN_FDS=2147483647 goes past the descriptor limit"},
    {"LISTEN_FDS", "10000000", "LISTEN_FDS=10000000 goes past the descriptor limit"},
    {"LISTEN_FDNAMES", "a:b", "LISTEN_FDNAMES='a:b' has 2 names for LISTEN_FDS=1"},
    {"LISTEN_FDNAMES", "", "LISTEN_FDNAMES='' has 0 names for LISTEN_FDS=1"},
    {"LISTEN_FDS", "2", "LISTEN_FDS: descriptor 4: Bad file descriptor", EBADF},
  }) do
    local var, value, msg, code = case[1], case[2], case[3], case[4] or EINVAL
    it(("malformed %s=%q gives fail, msg; nothing is adopted; the variables go"):format(var, value),
       function()
      local vars = {LISTEN_PID = "$$", LISTEN_FDS = "1"}
      vars[var] = value
      local lines = received(vars)
      local got, gcode = lines[1]:match("^fail\t(.*)\t(%d+)$")
      assert.matches(msg, got)
      assert.equal(code, tonumber(gcode))
      assert.equal("fd3\tfalse", lines[2])   -- not touched: still inheritable
      assert.equal("env\t-\t-\t-", lines[3])
    end)
  end

  it("misuse raises", function()
    assert.matches("boolean expected", H.raises(hpass.listen_fds, 1))
    assert.matches("no value expected", H.raises(hpass.listen_fds, true, 2))
  end)
end)


describe("the listen option", function()
  after_each(H.cleanup)

  it("passes sockets as descriptors 3, 4, ... ahead of the handles, with LISTEN_FDS, "
     .. "LISTEN_PID and LISTEN_FDNAMES", function()
    local a = assert(socket.bind("127.0.0.1", 0))
    local r, w = assert(hpass.pipe())
    local fd = ("%d"):format(a:getfd())
    local inheritable = H.cloexec(fd)
    local out = H.capture({H.lua, CHILD, "report", "x"}, {w},
                          {listen = {a, r}, listen_names = {"web", "pipe"}})
    local lines = H.lines(out)
    assert.same({"ok\t2", "3\tweb\ttrue", "4\tpipe\ttrue", "env\t-\t-\t-"},
                {unpack(lines, 1, 4)})
    -- the handles follow, and only their numbers are on the command line
    assert.equal("args\tx 5", lines[5])
    assert.equal(inheritable, H.cloexec(fd))    -- ours are as they were
    assert.is_true(H.cloexec(r:fileno()))
    a:close(); r:close(); w:close()
  end)

  it("LISTEN_PID is the child's own pid, set in the child", function()
    local a = assert(hpass.socketpair())
    local out = H.capture({"sh", "-c", 'echo "$$ $LISTEN_PID $LISTEN_FDS ${LISTEN_FDNAMES-unset}"'},
                          {}, {listen = {a}})
    local pid, lpid, n, names = out:match("^(%d+) (%d+) (%d+) (%S+)\n$")
    assert.equal(pid, lpid)
    assert.equal("1", n)
    assert.equal("unset", names)           -- no names given: none set
    a:close()
  end)

  it("with env: that environment, its LISTEN_* replaced; without: ours plus LISTEN_*", function()
    local a = assert(hpass.socketpair())
    local script = 'echo "${X-unset} ${HPASS_TEST_LUA-unset} $LISTEN_FDS '
                   .. '${LISTEN_FDNAMES-unset} $(($$ - LISTEN_PID))"'
    local out = H.capture({"sh", "-c", script}, {},
                          {listen = {a}, env = {X = "1", PATH = os.getenv("PATH"),
                                                LISTEN_FDS = "7", LISTEN_PID = "1",
                                                LISTEN_FDNAMES = "old"}})
    assert.equal("1 unset 1 unset 0\n", out)
    out = H.capture({"sh", "-c", script}, {}, {listen = {a}, listen_names = {"n"}})
    assert.equal("unset " .. H.lua .. " 1 n 0\n", out)
    -- a parent whose own environment holds stale ones: replaced too
    local spawner = H.tmpname()
    local f = assert(io.open(spawner, "w"))
    f:write(("local hpass = require 'hpass'\n"
             .. "local a = hpass.socketpair()\n"
             .. "assert(hpass.run({'sh', '-c', %q}, {}, {listen = {a}}))\n"):format(script))
    f:close()
    out = H.capture({H.lua, spawner}, {}, {env = environ({X = "2", LISTEN_FDS = "9",
                    LISTEN_PID = "1", LISTEN_FDNAMES = "stale"})})
    assert.equal("2 " .. H.lua .. " 1 unset 0\n", out)
    a:close()
  end)

  it("takes every handle form, and run and capture take it too", function()
    local a, b = assert(hpass.socketpair())
    local f = assert(io.open(H.tmpname(), "w"))
    local s = assert(socket.bind("127.0.0.1", 0))
    local out = H.capture({H.lua, CHILD}, {}, {listen = {a, b:fileno(), f, s},
                                               listen_names = {"h", "n", "f", "s"}})
    assert.same({"ok\t4", "3\th\ttrue", "4\tn\ttrue", "5\tf\ttrue", "6\ts\ttrue"},
                {unpack(H.lines(out), 1, 5)})
    assert.same({true, "exit", 0},
                {hpass.run({"sh", "-c", '[ "$LISTEN_FDS" = 1 ] && [ "$LISTEN_PID" = $$ ]'},
                           {}, {listen = {a}})})
    local got = hpass.capture({"sh", "-c", 'echo $LISTEN_FDS $LISTEN_FDNAMES'},
                              {listen = {a, b}, listen_names = {"x", "y"}})
    assert.equal("2 x:y\n", got)
    a:close(); b:close(); f:close(); s:close()
  end)

  it("drives systemd-socket-proxyd: a client reaches the proxied server", function()
    local backend = assert(socket.bind("127.0.0.1", 0))
    local _, bport = backend:getsockname()
    local front = assert(socket.bind("127.0.0.1", 0))
    local _, fport = front:getsockname()
    local proxy = assert(hpass.spawn_with_handle({PROXYD, "127.0.0.1:" .. bport}, {},
                                                 {listen = {front}}))
    front:close()                           -- the proxy holds it now
    local c = assert(socket.tcp())
    c:settimeout(20)
    assert(c:connect("127.0.0.1", fport))
    backend:settimeout(20)
    local b = assert(backend:accept())
    b:settimeout(20)
    assert(c:send("through the proxy\n"))
    assert.equal("through the proxy", b:receive("*l"))
    assert(b:send("and back\n"))
    assert.equal("and back", c:receive("*l"))
    c:close(); b:close(); backend:close()
    assert(proxy:kill())
    assert.same({nil, "signal", 15}, {proxy:wait()})
  end)

  it("an hpass child finds by name what its parent passed", function()
    local a, b = assert(hpass.socketpair())
    local out = H.capture({H.lua, CHILD}, {}, {listen = {b}, listen_names = {"chan"}})
    assert.equal("3\tchan\ttrue", H.lines(out)[2])
    a:close(); b:close()
  end)

  it("a handle that is not open: fail, \"option 'listen[k]': ...\", EBADF", function()
    local a = assert(hpass.socketpair())
    local proc, msg, code = hpass.spawn_with_handle({"true"}, {}, {listen = {a, 999}})
    assert.is_nil(proc)
    assert.equal("option 'listen[2]': Bad file descriptor", msg)
    assert.equal(EBADF, code)
    a:close()
  end)

  it("a getfd() that closes another listen handle mid-call is reported, not used", function()
    local a, b = assert(hpass.socketpair())
    local sneaky = {getfd = function() a:close(); return b:fileno() end}
    assert.matches("option 'listen%[1%]': attempt to use a closed handle",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {listen = {a, sneaky}}))
    b:close()
  end)

  it("refuses bad listen and listen_names values", function()
    local a, b = assert(hpass.socketpair())
    local c = assert(hpass.socketpair())
    c:close()
    local function raises(opts) return H.raises(hpass.spawn_with_handle, {"true"}, {}, opts) end
    assert.matches("option 'listen' must be an array of handles, got number", raises{listen = 3})
    assert.matches("option 'listen' must be an array of handles, got userdata", raises{listen = a})
    assert.matches("option 'listen' must hold 1 or more handles", raises{listen = {}})
    assert.matches("no holes", raises{listen = {a, nil, b}})
    assert.matches("no holes", raises{listen = {[2] = a}})
    assert.matches("no holes", raises{listen = {a, web = b}})
    assert.matches("option 'listen%[2%]': attempt to use a closed handle", raises{listen = {a, c}})
    assert.matches("option 'listen_names' without 'listen'", raises{listen_names = {"x"}})
    assert.matches("option 'listen_names' must be a table, got string",
                   raises{listen = {a}, listen_names = "x"})
    assert.matches("has 1 names for 2 listening handles",
                   raises{listen = {a, b}, listen_names = {"x"}})
    for _, bad in ipairs({"a:b", "", ("n"):rep(256), "a\0b", "tab\t", "caf\195\169", 7}) do
      assert.matches("option 'listen_names': element 1 must",
                     raises{listen = {a}, listen_names = {bad}})
    end
    -- 255 printable bytes are fine
    assert(hpass.run({"true"}, {}, {listen = {a}, listen_names = {("n"):rep(255)}}))
    a:close(); b:close()
  end)
end)
