-- Hardening: Lua code that runs in the middle of a call (metamethods,
-- getfd(), finalizers) cannot crash hpass or change what the call uses;
-- every promise holds for every handle form; processes whose status
-- someone else took; limits and edges.  Every case here failed before
-- the fix it guards; under make check-asan and check-valgrind they also
-- prove the memory safety.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"

local sig = R.sig
local unpack = table.unpack or unpack  -- luacheck: compat
local ECHILD, ESRCH, EAGAIN = R.ECHILD, R.ESRCH, R.EAGAIN

local onfinal, eager_gc = R.onfinal, R.eager_gc

-- The lines a child wrote, and its wait triple.
local function output(argv, handles, options)
  local out, ok, how, code = H.capture(argv, handles, options)
  return out, ok, how, code
end

describe("Lua code run in the middle of a call", function()
  after_each(H.cleanup)

  it("options are read once, raw: an __index or __pairs on them is not run", function()
    local opts = setmetatable({}, {
      __index = {env = 42, cwd = {}},
      __pairs = function() error("__pairs must not run") end,
    })
    local out, ok = output({"sh", "-c", "echo $HOME"}, {}, opts)
    assert.is_true(ok)
    assert.equal((os.getenv("HOME") or "") .. "\n", out)
  end)

  it("argv is read raw: __len and __index are not run", function()
    local argv = setmetatable({}, {
      __len = function() return 3 end,
      __index = function() error("__index must not run") end,
    })
    assert.matches(H.badarg(1, "spawn_with_handle") .. " %(argv is empty%)",
                   H.raises(hpass.spawn_with_handle, argv, {}))
  end)

  it("a getfd() that rewrites the options cannot change what was read", function()
    local out = H.tmpname()
    local f = assert(io.open(out, "w"))
    local opts
    local sneak = {getfd = function()
      opts.env = 42; opts.cwd = {}; opts.stdin = "x"; opts.bogus = true
      collectgarbage(); collectgarbage()
      return 1
    end}
    opts = {env = {A = "1"}, stdout = f, stderr = sneak}
    local proc = assert(hpass.spawn_with_handle({"/usr/bin/env"}, {}, opts))
    f:close()
    assert.same({true, "exit", 0}, {proc:wait()})
    assert.equal("A=1\n", H.readfile(out))
  end)

  it("a handle that a getfd() (and the finalizers it runs) drops from your table is " ..
     "still the one passed", function()
    local r, w = hpass.pipe()
    local spare_r, spare_w = hpass.pipe()
    local handles
    local sneak = {getfd = function()
      handles[1] = nil
      collectgarbage(); collectgarbage()
      return spare_r:fileno()
    end}
    handles = {r, sneak}
    r = nil  -- luacheck: ignore r (the handles table holds the only reference)
    local out = H.tmpname()
    local f = assert(io.open(out, "w"))
    local proc = assert(hpass.spawn_with_handle({H.lua, H.child("sum2")}, handles,
                                                {stdout = f}))
    f:close(); spare_r:close(); spare_w:close()
    collectgarbage(); collectgarbage()
    assert.is_true(w:write_ints({1, 2, 3}))
    w:close()
    assert.same({true, "exit", 0}, {proc:wait()})
    assert.equal("3 6\n", H.readfile(out))
  end)

  it("a getfd() that closes an earlier handle is caught before anything is passed", function()
    local r, w = hpass.pipe()
    local sneak = {getfd = function() r:close(); return w:fileno() end}
    local fds = sig.nfds()
    assert.matches("element 1: attempt to use a closed handle",
                   H.raises(hpass.spawn_with_handle, {"true"}, {r, sneak}))
    w:close()
    assert.equal(fds - 2, sig.nfds())
  end)

  it("a getfd() that raises leaves nothing behind", function()
    local fds = sig.nfds()
    local bad = {getfd = function() error({"my error"}) end}
    local ok, err = pcall(hpass.spawn_with_handle, {"true"}, {bad})
    assert.is_false(ok)
    assert.same({"my error"}, err)
    assert.equal(fds, sig.nfds())
    local _, zombies = sig.children()
    assert.equal(0, zombies)
  end)

  it("finalizers that grow env, argv and handles during the call change nothing read", function()
    local restore = eager_gc()
    local outcomes = {}
    for round = 1, 200 do
      local env, argv, handles = {A = "1"}, {"true"}, {}
      for _ = 1, 20 do
        onfinal(function()
          for i = 1, 50 do env["X" .. round .. "_" .. i] = "v" end
          argv[#argv + 1] = "x"
          handles[#handles + 1] = 0
        end)
      end
      local ok, proc = pcall(hpass.spawn_with_handle, argv, handles, {env = env})
      local what = ok and (proc and "started" or "failed")
                   or tostring(proc):match("changed while being read") and "refused"
                   or tostring(proc)
      outcomes[what] = (outcomes[what] or 0) + 1
      if ok and proc then assert.is_true((proc:wait())) end
    end
    restore()
    for what in pairs(outcomes) do
      assert.is_true(what == "started" or what == "refused", what)
    end
  end)

  it("finalizers that close the handle under read_ints are caught", function()
    local restore = eager_gc()
    for _ = 1, 100 do
      local r, w = hpass.pipe()
      w:write_ints({1, 2, 3}); w:close()
      onfinal(function() r:close() end)
      local ok, t = pcall(hpass.read_ints, r, 3)
      if ok then
        assert.same({1, 2, 3}, t)
      else
        assert.matches("handle was closed during the call", t)
      end
      r:close()
    end
    restore()
  end)

  it("finalizers that close the handle under read, write and capture are caught", function()
    local restore = eager_gc()
    local calls = {
      function(r) return r:read("l") end,
      function(r) return r:read("a") end,
      function(r) return r:read(5) end,
      function(r) return r:read("L", 2, "l") end,
    }
    for round = 1, 400 do
      local r, w = hpass.pipe()
      assert(w:write(string.rep("line\n", 50))); w:close()
      onfinal(function() r:close() end)
      local f = calls[round % #calls + 1]
      local ok, res = pcall(f, r)
      if not ok then assert.matches("closed", res) else assert.is_string(res) end
      r:close()
      local r2, w2 = hpass.pipe()
      onfinal(function() w2:close() end)
      ok, res = pcall(w2.write, w2, 1.5, 2, "x")
      if not ok then assert.matches("closed", res) end
      r2:close(); w2:close()
    end
    restore()
  end)

  it("finalizers that call hpass inside hpass calls are harmless", function()
    local restore = eager_gc()
    local errors = 0
    local r, w = hpass.pipe()
    for i = 1, 2000 do
      onfinal(function()
        local ok = pcall(function()
          local a, b = hpass.pipe()
          assert(b:write_int(7)); assert(a:read_int() == 7)
          a:close(); b:close()
        end)
        if not ok then errors = errors + 1 end
      end)
      assert.is_true(w:write_int(i))
      assert.equal(i, r:read_int())
    end
    restore()
    collectgarbage(); collectgarbage()
    r:close(); w:close()
    assert.equal(0, errors)
  end)

  it("select: a handle that a getfd() (and the finalizers it runs) drops from your " ..
     "list is still the one waited on, and the one reported", function()
    local r, w = hpass.pipe()
    assert(w:write("x"))
    local spare_r, spare_w = hpass.pipe()
    local readers
    local sneak = {getfd = function()
      readers[1] = nil
      collectgarbage(); collectgarbage()
      return spare_r:fileno()
    end}
    readers = {r, sneak}
    r = nil  -- luacheck: ignore r (the list holds the only reference)
    local rd, _, err = hpass.select(readers, nil, 5)
    assert.is_nil(err)
    assert.equal(1, #rd)
    assert.equal("handle", hpass.type(rd[1]))
    assert.is_true(rd[rd[1]])
    assert.equal("x", rd[1]:read(1))
    rd[1]:close(); w:close(); spare_r:close(); spare_w:close()
  end)

  it("select: finalizers that rewrite the lists while select makes its results change " ..
     "nothing read: only what was listed and ready is reported", function()
    local restore = eager_gc()
    local ready_r, ready_w = hpass.pipe()
    assert(ready_w:write("x"))
    local idle = {}
    for i = 1, 8 do idle[i] = {hpass.pipe()} end
    local outcomes, idlefd = {}, idle[2][1]:fileno()
    for _ = 1, 300 do
      local readers = {}
      for i = 1, 8 do readers[i] = idle[i][1] end
      readers[9] = ready_r
      for _ = 1, 10 do
        onfinal(function()
          for i = 1, 9 do readers[i] = idle[1][1] end
          readers[10] = idlefd
        end)
      end
      local rd, _, err = hpass.select(readers, nil, 0.01)
      if err then
        assert.equal("timeout", err)  -- the finalizers ran before select read the list
        assert.equal(0, #rd)
        outcomes.timeout = true
      else
        assert.equal(1, #rd)
        assert.equal(ready_r, rd[1])
        assert.is_true(rd[ready_r])
        assert.is_nil(rd[idle[1][1]])
        outcomes.ready = true
      end
    end
    restore()
    assert.is_true(outcomes.ready)
    ready_r:close(); ready_w:close()
    for i = 1, 8 do idle[i][1]:close(); idle[i][2]:close() end
  end)
end)


describe("every handle form keeps the promises", function()
  after_each(H.cleanup)

  it("a Lua file whose reader has gone gives EPIPE, never SIGPIPE", function()
    local out, ok, how, code = output({H.lua, H.child("filepipe")}, {})
    assert.same({true, "exit", 0}, {ok, how, code}, out)
    local lines = H.lines(out)
    assert.equal(6, #lines, out)
    for i = 1, 5 do
      assert.matches("^[%w_]+ " .. R.EPIPE .. " ", lines[i])
    end
    assert.equal("done\t5", lines[6])
  end)

  it("read_int takes what a Lua file read ahead, and spawn refuses such a file", function()
    local r, w = hpass.pipe()
    assert.is_true(w:write_ints({1, 2, 3, 4})); w:close()
    local f = assert(r:tofile("rb"))
    assert.equal(4, #f:read(4))              -- stdio read the other 12 bytes
    assert.matches("file has unread buffered input",
                   H.raises(hpass.spawn_with_handle, {"true"}, f))
    assert.matches("option 'stdin': file has unread buffered input",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {stdin = f}))
    local a, b = hpass.socketpair()
    assert.matches("file has unread buffered input", H.raises(hpass.send_handle, a, f))
    a:close(); b:close()
    assert.equal(2, hpass.read_int(f))
    assert.same({3, 4}, hpass.read_ints(f, 5))
    assert.is_nil(hpass.read_int(f))
    f:close()
  end)

  it("send_handle and recv_handle wait on a non-blocking channel", function()
    -- recv: the message comes later
    local a, b = hpass.socketpair()
    assert.is_true(sig.nonblock(a:fileno()))
    local proc = assert(hpass.spawn_with_handle({H.lua, H.child("sendlater")}, b))
    b:close()
    local got = {hpass.recv_handle(a)}
    assert.equal(1, #got)
    assert.equal("handle", hpass.type(got[1]))
    got[1]:close(); a:close()
    assert.is_true((proc:wait()))
    -- send: the channel is full until a reader drains it
    a, b = hpass.socketpair()
    assert.is_true(sig.nonblock(a:fileno()))
    local n = 0
    while true do
      local ok, _, code = sig.rawwrite(a:fileno(), string.rep("x", 4096))
      if not ok then assert.equal(EAGAIN, code); break end
      n = n + 1
    end
    assert.is_true(n > 0)
    local drain = assert(hpass.spawn_with_handle(
      {"sh", "-c", "sleep 0.3; exec cat >/dev/null"}, {}, {stdin = b}))
    b:close()
    local r = hpass.pipe()
    assert.is_true(hpass.send_handle(a, r))
    r:close(); a:close()
    assert.is_true((drain:wait()))
  end)
end)


describe("a child whose status someone else took", function()
  local function lost(p)
    local ok, msg, code = p:wait()
    assert.is_nil(ok)
    assert.matches("collected elsewhere", msg)
    assert.equal(ECHILD, code)
    assert.same({ok, msg, code}, {p:poll()})
    assert.same({ok, msg, code}, {p:kill()})
    assert.matches("lost%)$", tostring(p))
  end

  it("with SIGCHLD ignored, is lost and never signalled again", function()
    assert.is_true(sig.ignore("CHLD"))
    local ok, err = pcall(function()
      local p = assert(hpass.spawn_with_handle({"true"}, {}))
      os.execute("sleep 0.2")
      lost(p)
    end)
    sig.default("CHLD")
    assert(ok, err)
  end)

  it("reaped by another library's waitpid(-1), is lost", function()
    local p = assert(hpass.spawn_with_handle({"true"}, {}))
    os.execute("sleep 0.2")
    assert.is_true(sig.reapall() >= 1)
    lost(p)
  end)

  it("that has ended is not signalled: kill collects it first", function()
    local p = assert(hpass.spawn_with_handle({"true"}, {}))
    os.execute("sleep 0.2")
    local ok, msg, code = p:kill("KILL")
    assert.is_nil(ok); assert.matches("already ended", msg); assert.equal(ESRCH, code)
    assert.same({true, "exit", 0}, {p:wait()})
  end)
end)


describe("limits and edges", function()
  after_each(H.cleanup)

  it("adopting a standard stream leaves it inherited", function()
    for fd = 0, 2 do
      local h = assert(hpass.handle(fd))
      assert.is_false(H.cloexec(fd))
      h:detach()
    end
    local out = H.tmpname()
    local proc = assert(hpass.spawn_with_handle({"sh", "-c", "echo still >&2"}, {},
                                                {stderr = assert(io.open(out, "w"))}))
    assert.is_true((proc:wait()))
    assert.equal("still\n", H.readfile(out))
  end)

  it("closes a pidfd that arrives beside the handles (SO_PASSPIDFD)", function()
    local SOL_SOCKET, SO_PASSPIDFD = R.SOL_SOCKET, R.SO_PASSPIDFD
    local a, b = hpass.socketpair()
    assert.is_true(sig.setsockopt(b:fileno(), SOL_SOCKET, SO_PASSPIDFD, 1))
    local r, w = hpass.pipe()
    collectgarbage()  -- no handle an earlier test dropped closes during the count
    collectgarbage()
    local fds = sig.nfds()
    assert.is_true(hpass.send_handle(a, r, w))
    local x, y = hpass.recv_handle(b)
    assert.equal("handle", hpass.type(x)); assert.equal("handle", hpass.type(y))
    assert.equal(fds + 2, sig.nfds())        -- the two handles, no pidfd
    x:close(); y:close()
    -- refused messages too: bytes without handles, with a pidfd attached
    assert.equal(2, sig.rawwrite(a:fileno(), "zz"))
    local ok, _, code = hpass.recv_handle(b)
    assert.is_nil(ok); assert.is_number(code)
    assert.equal(fds, sig.nfds())
    a:close(); b:close(); r:close(); w:close()
  end)

  it("indices beyond 2^31 do not wrap on any Lua", function()
    local _, w = hpass.pipe()
    assert.matches("element 4294967297: number expected, got nil",
                   H.raises(hpass.write_ints, w, {7}, 2 ^ 32 + 1, 2 ^ 32 + 1))
    assert.matches("element 0: number expected, got nil",
                   H.raises(hpass.write_ints, w, {7}, 0, 1))
    assert.matches("element %-5: number expected",
                   H.raises(hpass.write_ints, w, {7}, -5, -5))
    w:close()
  end)

  it("spawns with 8,200 handles", function()
    local limit = sig.nofile()
    if limit < 17000 then assert(sig.nofile(17000)) end
    local pipes = {}
    for i = 1, 4100 do
      local r, w = hpass.pipe()
      pipes[2 * i - 1], pipes[2 * i] = r, w
    end
    local proc, out = H.start({"sh", "-c", 'echo "$#"', "sh"}, pipes)
    assert.same({true, "exit", 0}, {proc:wait()})
    assert.equal("8200\n", H.readfile(out))
    for _, h in ipairs(pipes) do h:close() end
    sig.nofile(limit)
  end)

  it("a handles table that is not an array raises", function()
    local r = hpass.pipe()
    local bad = H.badarg(2, "spawn_with_handle")
    assert.matches(bad .. " %(handles must be an array, found key 'stdout'%)",
                   H.raises(hpass.spawn_with_handle, {"true"}, {stdout = r}))
    assert.matches(bad .. " %(handles must be an array, with no holes%)",
                   H.raises(hpass.spawn_with_handle, {"true"}, {[2] = r}))
    assert.matches(bad .. " %(handles must be an array, found key 'a'%)",
                   H.raises(hpass.spawn_with_handle, {"true"}, {a = 1}))
    assert.matches(bad .. " %(handles must be an array, found a boolean key%)",
                   H.raises(hpass.spawn_with_handle, {"true"}, {[true] = r}))
    r:close()
  end)

  it("unknown options raise, also with a zero byte in the name", function()
    local bad = H.badarg(3, "spawn_with_handle")
    assert.matches(bad .. " %(unknown option 'stdoot'%)",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {stdoot = 1}))
    assert.matches(bad .. " %(unknown option 'env%.%.%.' %(with a zero byte%)%)",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {["env\0x"] = {}}))
    assert.matches(bad .. " %(option names must be strings%)",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {1}))
  end)

  it("errors name the element or option at fault", function()
    local r = hpass.pipe()
    r:close()
    local function bad(n) return H.badarg(n, "spawn_with_handle") end
    assert.matches(bad(2) .. " %(element 2: attempt to use a closed handle%)",
                   H.raises(hpass.spawn_with_handle, {"true"}, {0, r}))
    assert.matches(bad(3) .. " %(option 'stdout': attempt to use a closed handle%)",
                   H.raises(hpass.spawn_with_handle, {"true"}, {}, {stdout = r}))
    assert.matches(bad(1) .. " %(argv%[2%] must be a string, got table%)",
                   H.raises(hpass.spawn_with_handle, {"true", {}}, {}))
  end)

  it("a failed start names the part that failed", function()
    local ENOENT, EBADF = R.ENOENT, R.EBADF
    local ok, msg, code = hpass.spawn_with_handle({"/bin/pwd"}, {}, {cwd = "/nonexistent"})
    assert.is_nil(ok); assert.equal(ENOENT, code)
    assert.matches("^cwd '/nonexistent': ", msg)
    ok, msg, code = hpass.spawn_with_handle({"/no/such/program"}, {})
    assert.is_nil(ok); assert.equal(ENOENT, code)
    assert.matches("^/no/such/program: ", msg)
    local r, w = hpass.pipe()
    ok, msg, code = hpass.spawn_with_handle({"true"}, {r, 1000})
    assert.is_nil(ok); assert.equal(EBADF, code)
    assert.matches("^handle 2: ", msg)
    ok, msg, code = hpass.spawn_with_handle({"true"}, {}, {stdout = 1000})
    assert.is_nil(ok); assert.equal(EBADF, code)
    assert.matches("^stdout: ", msg)
    r:close(); w:close()
  end)

  it("run names itself in misuse errors, at the caller's line", function()
    local line = debug.getinfo(1, "l").currentline + 1
    local ok, err = pcall(function() local res = hpass.run("true", {}); return res end)
    assert.is_false(ok)
    assert.matches("hardening_spec%.lua:" .. line ..
                   ": bad argument #1 to 'run' %(table expected", err)
    ok, err = pcall(function() local res = hpass.run({"true"}, {}, nil, "x"); return res end)
    assert.is_false(ok)
    assert.matches("bad argument #4 to 'run' %(no value expected%)", err)
  end)

  it("kill echoes an unknown signal name", function()
    local p = assert(hpass.spawn_with_handle({"true"}, {}))
    assert.matches("unknown signal name 'FOO'", H.raises(p.kill, p, "FOO"))
    p:wait()
  end)

  it("arguments a function does not take raise", function()
    local p = assert(hpass.spawn_with_handle({"true"}, {}))
    local r, w = hpass.pipe()
    local cases = {
      {p.wait, {p, 0.1, 1}, 3}, {p.poll, {p, 0.1}, 2}, {p.kill, {p, "TERM", nil, 1}, 4},
      {hpass.read_int, {r, 10}, 2}, {hpass.write_int, {w, 1, 2}, 3},
      {hpass.close, {r, true}, 2}, {hpass.flush, {w, 1}, 2}, {hpass.pipe, {1}, 1},
      {hpass.socketpair, {"stream"}, 1}, {hpass.handle, {3, "r"}, 2},
      {hpass.recv_handle, {r, 1}, 2},
      {hpass.spawn_with_handle, {{"true"}, {}, {}, 1}, 4},
    }
    for i, c in ipairs(cases) do
      -- c[3] arguments: the length of a list with a nil in it is any border
      local err = H.raises(c[1], unpack(c[2], 1, c[3]))
      assert.matches("bad argument #" .. c[3] .. " to '[^']*' %(no value expected%)", err,
                     nil, false, "case " .. i)
    end
    p:wait(); r:close(); w:close()
  end)

  it("handle objects have only handle methods", function()
    local r, w = hpass.pipe()
    for _, name in ipairs({"pipe", "socketpair", "handle", "spawn_with_handle",
                           "type", "_VERSION", "run", "inherited"}) do
      assert.is_nil(r[name], name)
    end
    for _, name in ipairs({"read_int", "write_int", "read_ints", "write_ints",
                           "send_handle", "recv_handle", "close", "fileno",
                           "setvbuf", "flush", "tofile", "detach"}) do
      assert.equal(hpass[name], r[name], name)
    end
    r:close(); w:close()
  end)
end)
