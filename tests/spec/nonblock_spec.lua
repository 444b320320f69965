-- hpass calls block until done, also on descriptors that other code made
-- non-blocking (LuaSocket keeps every socket so).
local hpass = require "hpass"
local H = require "helpers"

-- A connected TCP pair in LuaSocket's non-blocking mode.
local function tcppair()
  local client, conn = H.tcppair()
  client:settimeout(0)
  conn:settimeout(0)
  return client, conn
end

describe("non-blocking descriptors", function()
  it("read_int waits for data instead of failing with EAGAIN", function()
    local client, conn = tcppair()
    -- the child writes only after a pause, so the read must wait
    local proc = assert(hpass.spawn_with_handle(
      {"sh", "-c", 'sleep 0.3; exec "$0" write 5 1 3 "$1"', H.cpeer}, client))
    client:close()
    assert.same({5, 6, 7}, {hpass.read_int(conn), hpass.read_int(conn), hpass.read_int(conn)})
    assert.is_nil(hpass.read_int(conn))
    assert.is_true((proc:wait()))
    conn:close()
  end)

  it("write_ints waits for room instead of failing with EAGAIN", function()
    local client, conn = tcppair()
    local proc, out = H.start({H.lua, H.child("sum")}, client)
    client:close()
    local t = {}
    for i = 1, 200000 do t[i] = i end     -- far more than a socket buffer
    assert.is_true(hpass.write_ints(conn, t))
    for i = 1, 1000 do assert.is_true(hpass.write_int(conn, i)) end
    conn:close()
    assert.is_true((proc:wait()))
    assert.equal("201000\t" .. string.format("%d", 200000 * 200001 / 2 + 500500) .. "\n",
                 H.readfile(out))
  end)
end)
