-- After a pause, send one pipe end on the inherited channel.
local hpass = require "hpass"
local chan = assert(hpass.handle(arg[#arg]))
os.execute("sleep 0.3")
local r, w = hpass.pipe()
assert(hpass.send_handle(chan, r))
r:close(); w:close()
