-- Several children at once, each with its own pair of pipes.
--
--   lua5.4 examples/workers.lua
--
-- The parent starts WORKERS copies of this script.  Each inherits exactly
-- two handles: the read end of its task pipe and the write end of its
-- result pipe (their numbers are its last two arguments).  The parent
-- deals the numbers 1..NUMBERS out to the workers in turn as native ints,
-- then closes the task pipes.  Each worker reads until the end of its
-- stream, and writes back how many numbers it got and the sum of their
-- squares.
--
-- The end of the stream arrives only because no sibling holds a copy of
-- another worker's task pipe: each child inherits its own handles and
-- nothing else.  With descriptors leaking into every child, the first
-- worker would wait for the end of its input until the last one exited.

local hpass = require "hpass"

local WORKERS, NUMBERS = 3, 12

local function die(...)
  io.stderr:write("workers: ", table.concat({...}, " "), "\n")
  os.exit(1)
end

if arg[1] == "worker" then
  local tasks, results = hpass.inherited(2)
  if not tasks then die("bad handles:", results) end
  local count, sum = 0, 0
  while true do
    local n, err = tasks:read_int()
    if not n then
      if err then die("worker read failed:", err) end
      break  -- the parent closed the pipe: no more work
    end
    count, sum = count + 1, sum + n * n
  end
  assert(results:write_int(count))
  assert(results:write_int(sum))
  tasks:close()
  results:close()
  return
end

-- The interpreter that runs this script runs the workers too.
local i = -1
while arg[i - 1] do i = i - 1 end
local lua = arg[i] or "lua"

local workers = {}
for k = 1, WORKERS do
  local task_r, task_w = assert(hpass.pipe())
  local result_r, result_w = assert(hpass.pipe())
  local proc, err = hpass.spawn_with_handle({lua, arg[0], "worker"}, {task_r, result_w})
  if not proc then die("spawn failed:", err) end
  task_r:close()    -- the worker has its own copies now
  result_w:close()
  workers[k] = {proc = proc, tasks = task_w, results = result_r}
end

for n = 1, NUMBERS do
  local w = workers[(n - 1) % WORKERS + 1]
  local ok, err = w.tasks:write_int(n)
  if not ok then die("write failed:", err) end
end
for _, w in ipairs(workers) do w.tasks:close() end

local total = 0
for k, w in ipairs(workers) do
  local count, sum = w.results:read_int(), w.results:read_int()
  if not (count and sum) then die("worker", k, "sent no result") end
  w.results:close()
  local ok, how, code = w.proc:wait()
  if not ok then die("worker", k, "failed:", how, code) end
  print(("worker %d: %d numbers, sum of squares %d"):format(k, count, sum))
  total = total + sum
end
print(("all workers: sum of squares of 1..%d is %d"):format(NUMBERS, total))
