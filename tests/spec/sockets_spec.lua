-- Sockets: socketpair, passing handles to processes that already run
-- (send_handle / recv_handle), and a listening socket shared by pre-forked
-- workers (examples_spec.lua runs the two examples built on them).  Real
-- processes and real sockets, loopback only (127.0.0.1 and Unix
-- socketpairs).  Every wait has
-- a deadline: children run under timeout(1) or stop when a lifeline pipe
-- from this process ends, so a bug fails a test instead of hanging it.
local hpass = require "hpass"
local socket = require "socket"
local H = require "helpers"
local R = require "relhelp"

local unpack = table.unpack or unpack  -- luacheck: compat
local EMFILE, EPIPE, EBADMSG, ENOTSOCK = R.EMFILE, R.EPIPE, R.EBADMSG, R.ENOTSOCK
local FDPEER = H.peer("fdpeer")

-- Whether h (anything with fileno or getfd) becomes readable within secs.
local function readable(h, secs)
  local w = {getfd = function() return h.getfd and h:getfd() or h:fileno() end}
  return socket.select({w}, nil, secs)[w] ~= nil
end

-- The wait triple of p, killing it first if it runs past secs.
local function waitfor(p, secs)
  local deadline = socket.gettime() + secs
  while p:poll() == false do
    if socket.gettime() > deadline then
      p:kill("KILL")
      return p:wait()
    end
    socket.sleep(0.01)
  end
  return p:poll()
end

-- The inode behind descriptor fd, from /proc (the same for all copies).
local function inode(fd)
  return assert(H.readfile("/proc/self/fdinfo/" .. fd):match("ino:%s*(%d+)"))
end

local start = H.start

-- argv under timeout(1), as a bound on a child that is waited for.
local function bounded(secs, ...)
  return {"timeout", tostring(secs), ...}
end


describe("socketpair()", function()
  it("gives two connected close-on-exec handles that carry ints both ways", function()
    local a, b = hpass.socketpair()
    assert.equal("handle", hpass.type(a))
    assert.equal("handle", hpass.type(b))
    assert.is_true(H.cloexec(a:fileno()))
    assert.is_true(H.cloexec(b:fileno()))
    assert.is_true(a:write_int(-7))
    assert.is_true(b:write_int(2147483647))
    assert.equal(-7, b:read_int())
    assert.equal(2147483647, a:read_int())
    a:close()
    assert.is_nil(b:read_int())
    b:close()
  end)
end)


describe("send_handle / recv_handle", function()
  after_each(H.cleanup)

  it("send_handle sends copies: your handles stay open, and each side may close " ..
     "its own at any time; recv_handle's are close-on-exec", function()
    local before = H.nfds()
    local a, b = hpass.socketpair()
    local r, w = hpass.pipe()
    assert.is_true(a:send_handle(w))
    local w2 = b:recv_handle()
    assert.equal("handle", hpass.type(w2))
    assert.are_not.equal(w:fileno(), w2:fileno())
    assert.is_true(H.cloexec(w2:fileno()))
    assert.equal(inode(w:fileno()), inode(w2:fileno()))
    assert.is_true(w:close())      -- the sender's copy goes first
    assert.is_true(w2:write_int(41))
    assert.equal(41, r:read_int())
    assert.is_true(w2:close())     -- the last copy: the reader sees the end
    assert.is_nil(r:read_int())
    r:close(); a:close(); b:close()
    assert.equal(before, H.nfds())
  end)

  it("send_handle takes handle arguments in any of the forms, recv_handle gives " ..
     "them in the order they were sent", function()
    local a, b = hpass.socketpair()
    local r, w = hpass.pipe()
    local tmp = assert(io.tmpfile())
    local tcp = assert(socket.bind("127.0.0.1", 0))
    local raw = r:fileno()
    local sent = {w, tmp, raw, tcp}
    -- descriptors of the originals, to compare inodes (io has no fileno)
    local fds = {w:fileno(), false, raw, math.floor(tcp:getfd())}
    assert.is_true(hpass.send_handle(a, unpack(sent)))
    local got = {b:recv_handle()}
    assert.equal(4, #got)
    for i, h in ipairs(got) do
      assert.equal("handle", hpass.type(h))
      assert.is_true(H.cloexec(h:fileno()))
      if fds[i] then assert.equal(inode(fds[i]), inode(h:fileno())) end
    end
    -- the received copy of the file writes into the same file
    assert.is_true(got[2]:write_int(12345))
    tmp:seek("set", 0)
    assert.equal(4, #tmp:read("*a"))
    for _, h in ipairs(got) do h:close() end
    tmp:close(); tcp:close(); r:close(); w:close(); a:close(); b:close()
  end)

  it("pass 200 descriptors in one message", function()
    local before = H.nfds()
    local a, b = hpass.socketpair()
    local rs, ws, all = {}, {}, {}
    for i = 1, 100 do
      rs[i], ws[i] = hpass.pipe()
      all[#all + 1] = ws[i]
      all[#all + 1] = rs[i]
    end
    assert.is_true(a:send_handle(unpack(all)))
    local got = {b:recv_handle()}
    assert.equal(200, #got)
    for i = 1, 100 do ws[i]:close() end
    for i = 1, 100 do
      -- got[2i-1] is a copy of ws[i], got[2i] of rs[i]
      assert.is_true(H.cloexec(got[2 * i - 1]:fileno()))
      assert.is_true(got[2 * i - 1]:write_int(i))
      assert.equal(i, got[2 * i]:read_int())
      got[2 * i - 1]:close()
      assert.is_nil(rs[i]:read_int())  -- no other copy of the write end
    end
    for _, h in ipairs(got) do h:close() end
    for i = 1, 100 do rs[i]:close() end
    a:close(); b:close()
    assert.equal(before, H.nfds())
  end)

  it("pass 1, several and 200 handles to a process that already runs", function()
    local a, b = hpass.socketpair()
    local child = assert(hpass.spawn_with_handle(
      bounded(30, H.lua, H.child("fdrecv"), "echo"), b))
    b:close()
    for _, k in ipairs({1, 3, 200}) do
      local rs, ws = {}, {}
      for i = 1, k do rs[i], ws[i] = hpass.pipe() end
      assert.is_true(a:send_handle(unpack(ws)))
      for i = 1, k do ws[i]:close() end  -- ours go; the child's copies stay
      for i = 1, k do
        assert.equal(i, rs[i]:read_int())     -- arrived in order
        assert.equal(1, rs[i]:read_int())     -- close-on-exec in the child
        assert.is_nil(rs[i]:read_int())       -- the child closed its copy
        rs[i]:close()
      end
    end
    a:close()  -- the child sees the end of the channel and exits
    assert.same({true, "exit", 0}, {waitfor(child, 30)})
  end)

  it("recv_handle: at a clean end of the channel the result is a single nil", function()
    local a, b = hpass.socketpair()
    a:close()
    local res = {n = select("#", b:recv_handle()), b:recv_handle()}
    assert.equal(1, res.n)
    assert.is_nil(res[1])
    b:close()
  end)

  it("recv_handle: what send_handle did not send gives nil, msg, EBADMSG, and every " ..
     "descriptor that came with it is closed", function()
    local before = H.nfds()
    local a, b = hpass.socketpair()
    local r, w = hpass.pipe()
    assert.is_true(a:write_int(0x01020304))  -- four bytes, no handles
    for _ = 1, 4 do
      local h, msg, code = b:recv_handle()
      assert.is_nil(h)
      assert.is_string(msg)
      assert.equal(EBADMSG, code)
    end
    -- the channel still works for a message sent after the garbage
    assert.is_true(a:send_handle(w))
    local w2 = assert(b:recv_handle())
    w2:close(); w:close(); r:close(); a:close(); b:close()
    assert.equal(before, H.nfds())
  end)

  for _, case in ipairs({
    {"bare", "a byte without descriptors"},
    {"short", "announcing 3 descriptors, sending 1 and exiting"},
    {"extra", "sending 3 descriptors where it announced 1"},
  }) do
    it("report a peer " .. case[2] .. " as an error, and close what came", function()
      local before = H.nfds()
      local a, b = hpass.socketpair()
      local peer = assert(hpass.spawn_with_handle(bounded(10, FDPEER, case[1]), b))
      b:close()
      assert.same({true, "exit", 0}, {waitfor(peer, 10)})
      local h, msg, code = a:recv_handle()
      assert.is_nil(h)
      assert.equal("Bad message", msg)
      assert.equal(EBADMSG, code)
      assert.is_nil(a:recv_handle())  -- then the end of the channel
      a:close()
      assert.equal(before, H.nfds())
    end)
  end

  it("recv_handle: EMFILE when this process has reached its descriptor limit, and " ..
     "what came is closed", function()
    local a, b = hpass.socketpair()
    -- 200 descriptors to a process allowed to open 40
    local child, out = start({"sh", "-c", 'ulimit -n 40 && exec "$@"', "sh",
                              "timeout", "30", H.lua, H.child("fdrecv"), "once"}, b)
    b:close()
    local rs, ws = {}, {}
    for i = 1, 100 do rs[i], ws[i] = hpass.pipe() end
    local all = {}
    for i = 1, 100 do all[2 * i - 1], all[2 * i] = rs[i], ws[i] end
    assert.is_true(a:send_handle(unpack(all)))
    assert.same({true, "exit", 0}, {waitfor(child, 30)})
    local lines = H.lines(H.readfile(out))
    assert.equal("fail Too many open files " .. EMFILE, lines[1])
    assert.equal("leak 0", lines[2])
    -- what the kernel did deliver was closed there: every pipe sees its end
    for i = 1, 100 do ws[i]:close() end
    for i = 1, 100 do assert.is_nil(rs[i]:read_int()); rs[i]:close() end
    a:close()
  end)

  it("send_handle: EPIPE when the receiver has gone, and no signal is raised", function()
    -- in a child: this process has loaded LuaSocket, which ignores SIGPIPE
    local p, out = start(bounded(30, H.lua, H.child("sendgone")))
    assert.same({true, "exit", 0}, {waitfor(p, 30)})
    local lines = H.lines(H.readfile(out))
    assert.equal("pipe-ignored 0", lines[1])
    assert.equal("nil\tBroken pipe\t" .. EPIPE, lines[2])
  end)

  it("send_handle and recv_handle: ch must be a Unix stream socket, else nil, msg, " ..
     "ENOTSOCK", function()
    local r, w = hpass.pipe()
    local ok, msg, code = w:send_handle(r)
    assert.is_nil(ok)
    assert.is_string(msg)
    assert.equal(ENOTSOCK, code)
    local h, _, code2 = r:recv_handle()
    assert.is_nil(h)
    assert.equal(ENOTSOCK, code2)
    r:close(); w:close()
  end)

  it("send_handle: buffered output on ch goes out first; recv_handle takes a " ..
     "channel as a descriptor number", function()
    local a, b = hpass.socketpair()
    local r, w = hpass.pipe()
    a:setvbuf("full")
    assert.is_true(a:write_int(5))  -- waits in a's buffer
    assert.is_true(hpass.send_handle(a, w))
    assert.equal(5, b:read_int())   -- came before the handle
    local w2 = assert(hpass.recv_handle(b:fileno()))
    w2:close(); r:close(); w:close(); a:close(); b:close()
  end)

  it("send_handle: buffered output on the handles goes out first", function()
    local a, b = hpass.socketpair()
    local r, w = hpass.pipe()
    w:setvbuf("full")
    assert.is_true(w:write_int(6))           -- waits in w's buffer
    assert.is_true(hpass.send_handle(a, w))
    local w2 = assert(b:recv_handle())
    assert.is_true(w2:write_int(7))          -- the copy writes after it
    assert.same({6, 7}, r:read_ints(2))
    w2:close(); r:close(); w:close(); a:close(); b:close()
  end)

  it("send_handle: no handle, or more than 253, raises; so do closed handles and " ..
     "a channel holding unread input", function()
    local a, b = hpass.socketpair()
    local r, w = hpass.pipe()
    assert.matches(H.badarg(2, "send_handle") .. " %(handle expected, got no value%)",
                   H.raises(hpass.send_handle, a))
    assert.matches(H.badarg(2, "send_handle"),
                   H.raises(hpass.send_handle, a, "x"))
    local many = {}
    for i = 1, 254 do many[i] = r end
    assert.matches(H.badarg(255, "send_handle") .. " %(too many handles, at most 253",
                   H.raises(hpass.send_handle, a, unpack(many)))
    assert.is_true(hpass.send_handle(a, unpack(many, 1, 253)))  -- the most
    local got = {b:recv_handle()}
    assert.equal(253, #got)
    for _, h in ipairs(got) do h:close() end
    w:close()
    assert.matches("closed handle", H.raises(hpass.send_handle, a, w))
    assert.matches(H.badarg(1, "recv_handle"), H.raises(hpass.recv_handle, {}))
    a:close()
    assert.matches("closed handle", H.raises(hpass.recv_handle, a))
    -- input read ahead into a buffer would lose the handles it carried
    local c, d = hpass.socketpair()
    d:setvbuf("full")
    c:write_int(1); c:write_int(2)
    assert.equal(1, d:read_int())
    assert.matches("unread buffered input", H.raises(hpass.recv_handle, d))
    b:close(); r:close(); c:close(); d:close()
  end)
end)


describe("pre-forked workers sharing a listening socket", function()
  after_each(H.cleanup)

  -- A listening socket (LuaSocket, made here once) and workers that all
  -- inherit it, with a lifeline that stops them when it ends.
  local function pool(nworkers, delay_ms)
    local P = {delay = delay_ms, workers = {}, next = 1}
    P.srv = assert(socket.bind("127.0.0.1", 0, 2048))
    P.port = select(2, P.srv:getsockname())
    P.life_r, P.life_w = hpass.pipe()
    P.ready_r, P.ready_w = hpass.pipe()
    function P.start()
      local id = P.next
      P.next = id + 1
      P.workers[id] = assert(hpass.spawn_with_handle(
        {H.lua, H.child("tcpworker"), id, P.delay}, {P.srv, P.life_r, P.ready_w}))
      return id
    end
    function P.wait_ready(n)
      for _ = 1, n do
        assert(readable(P.ready_r, 30), "a worker did not start")
        assert.is_number(P.ready_r:read_int())
      end
    end
    -- Restart every worker that has ended; returns the ids of the dead.
    function P.supervise()
      local dead = {}
      for id, p in pairs(P.workers) do
        if p:poll() ~= false then
          dead[#dead + 1] = id
          P.workers[id] = nil
          P.start()  -- the same listening socket
        end
      end
      return dead
    end
    function P.stop()
      P.life_w:close()
      local status = {}
      for id, p in pairs(P.workers) do status[id] = {waitfor(p, 20)} end
      P.srv:close(); P.life_r:close(); P.ready_r:close(); P.ready_w:close()
      return status
    end
    for _ = 1, nworkers do P.start() end
    P.wait_ready(nworkers)
    return P
  end

  -- The client process: COUNT connections open at once; its report.
  local function run_client(P, count, progress_w)
    return start({"sh", "-c", 'ulimit -Sn 4096 2>/dev/null; exec "$@"', "sh",
                  "timeout", "90", H.lua, H.child("tcpclient"),
                  "127.0.0.1", P.port, count}, progress_w)
  end

  local function report(out)
    local r = {served = {}, total = 0}
    for _, l in ipairs(H.lines(H.readfile(out))) do
      local id, k = l:match("^served (%d+) (%d+)$")
      if id then
        r.served[tonumber(id)] = tonumber(k)
        r.total = r.total + tonumber(k)
      end
      r.failed = r.failed or tonumber(l:match("^failed (%d+)$"))
      r.bad = r.bad or tonumber(l:match("^bad (%d+)$"))
    end
    return r
  end

  it("serve 1,000 concurrent connections from another process, every worker some", function()
    local P = pool(4, 1)
    local progress_r, progress_w = hpass.pipe()
    local client, out = run_client(P, 1000, progress_w)
    progress_w:close()
    local ok, how, code = waitfor(client, 120)
    progress_r:close()
    local status = P.stop()
    assert.same({true, "exit", 0}, {ok, how, code})
    local r = report(out)
    assert.equal(0, r.bad)
    assert.equal(0, r.failed)
    assert.equal(1000, r.total)
    for id = 1, 4 do
      assert.is_true((r.served[id] or 0) > 0, "worker " .. id .. " served none")
      assert.same({true, "exit", 0}, status[id])
    end
  end)

  it("lose no answered connection when a worker is killed mid-run and restarted", function()
    local P = pool(4, 3)
    local progress_r, progress_w = hpass.pipe()
    local client, out = run_client(P, 1000, progress_w)
    progress_w:close()
    -- kill worker 1 once 200 replies have arrived, so 800 are still to come
    local seen = 0
    while seen < 200 do
      assert(readable(progress_r, 60), "the client made no progress")
      seen = assert(progress_r:read_int())
    end
    assert.is_true(P.workers[1]:kill("KILL"))
    local restarted = {}
    local deadline = socket.gettime() + 120
    while client:poll() == false and socket.gettime() < deadline do
      for _, id in ipairs(P.supervise()) do restarted[#restarted + 1] = id end
      socket.sleep(0.005)
    end
    local ok, how, code = waitfor(client, 1)
    progress_r:close()
    local status = P.stop()
    assert.same({true, "exit", 0}, {ok, how, code})
    assert.same({1}, restarted)   -- the killed one, and only it
    local r = report(out)
    assert.equal(0, r.bad)                 -- every answer is right
    assert.is_true(r.failed <= 1)          -- at most the one it held
    assert.equal(1000, r.total + r.failed)
    assert.is_true((r.served[1] or 0) > 0, "the killed worker served none")
    assert.is_true((r.served[5] or 0) > 0, "its replacement served none")
    for id = 2, 5 do assert.same({true, "exit", 0}, status[id]) end
  end)
end)

