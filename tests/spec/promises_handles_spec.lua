-- The manual's "Handles", promise by promise, for what core_spec.lua,
-- interop_spec.lua and reliability_spec.lua do not already check: close,
-- the descriptor a handle owns, and tofile.  Each test is named after the
-- sentence it checks.
local hpass = require "hpass"
local H = require "helpers"
local R = require "relhelp"

local sig = R.sig
local EPIPE, EINVAL, EAGAIN = 32, 22, 11

-- A descriptor number that nothing in this process has open.
local function freefd()
  local open = sig.fds()
  for n = 200, 1000 do if not open[n] then return n end end
end

-- The descriptor of a Lua file just opened: the one number that appeared.
local function openfile(name, mode)
  local before = sig.fds()
  local f = assert(io.open(name, mode))
  for n in pairs(sig.fds()) do
    if not before[n] then return f, n end
  end
end

describe("Handles", function()
  after_each(H.cleanup)

  it("close flushes buffered output, and returns nil, msg, errno when the flush " ..
     "failed; the handle is closed all the same", function()
    local r, w = hpass.pipe()
    w:setvbuf("full")
    assert.is_true(w:write_int(1))
    assert.is_true(w:close())                  -- flushed
    assert.equal(1, r:read_int())
    r:close()
    r, w = hpass.pipe()
    w:setvbuf("full")
    assert.is_true(w:write_int(1))
    r:close()
    assert.same({nil, "Broken pipe", EPIPE}, {w:close()})
    assert.equal("closed handle", hpass.type(w))
    assert.is_true(w:close())                  -- again: nothing to do
  end)

  it("hpass.handle(n): the handle owns the descriptor, and closing it closes n",
     function()
    local r, w = hpass.pipe()
    local n = freefd()
    assert.equal(n, sig.dup2(w:fileno(), n))
    local h = assert(hpass.handle(n))
    assert.equal(n, h:fileno())
    assert.is_true(sig.fds()[n])
    assert.is_true(h:close())
    assert.is_nil(sig.fds()[n])
    r:close(); w:close()
  end)

  it("h:tofile(): buffered output is flushed first, and the file owns the same " ..
     "descriptor, at the same offset", function()
    local name = H.tmpname()
    local f0, fd = openfile(name, "w+b")
    f0:write("0123456789")
    f0:flush()
    f0:seek("set", 4)                          -- the offset all copies share
    local n = freefd()
    local h = assert(hpass.handle(sig.dup2(fd, n)))
    h:setvbuf("full")
    assert.equal(h, h:write("AB"))             -- held in the buffer
    local f = assert(h:tofile("r+b"))
    assert.equal("closed handle", hpass.type(h))
    assert.is_true(sig.fds()[n])               -- the same descriptor
    assert.equal("6789", f:read("*a"))          -- went on from offset 6
    f:seek("set", 0)
    assert.equal("0123AB6789", f:read("*a"))
    f:close()
    assert.is_nil(sig.fds()[n])                -- closing the file closes it
    f0:close()
  end)

  it("h:tofile(): an OS failure returns nil, msg, errno, and the handle stays open",
     function()
    local r, w = hpass.pipe()
    local ok, msg, code = r:tofile("w")        -- a read end cannot write
    assert.same({nil, EINVAL}, {ok, code})
    assert.is_string(msg)
    assert.equal("handle", hpass.type(r))
    assert.is_true(w:write_int(3))
    assert.equal(3, r:read_int())
    r:close(); w:close()
  end)

  it("h:tofile(): C stdio does not wait on EAGAIN, so on a non-blocking descriptor " ..
     "a read with no data ready fails", function()
    local a, b = hpass.socketpair()
    assert.is_true(sig.nonblock(b:fileno()))
    local f = assert(b:tofile("rb"))
    local ok, _, code = f:read(1)
    assert.is_nil(ok)
    assert.equal(EAGAIN, code)
    f:close(); a:close()
  end)
end)
