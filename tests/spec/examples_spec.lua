-- Every example runs, with the interpreter of the suite, and prints what
-- it says it prints.
local H = require "helpers"

local EXAMPLES = H.root .. "/examples/"

-- Output of an example run with the arguments given, under timeout(1)
-- so that a hang fails the test; it must exit with 0.
local function output(name, ...)
  local out, ok, how, code = H.capture({"timeout", "60", H.lua, EXAMPLES .. name, ...}, {})
  assert.same({true, "exit", 0}, {ok, how, code})
  return out
end

-- Its output lines.
local function run(name, ...)
  return H.lines(output(name, ...))
end

describe("examples", function()
  after_each(H.cleanup)

  it("fdpass.lua asks 8 questions and gets 8 answers", function()
    local lines = run("fdpass.lua")
    assert.equal(16, #lines)
    -- parent and child share the output: count each side's lines
    local asked, answered = {}, {}
    for _, l in ipairs(lines) do
      local q = l:match("^Son, what is the square root of (%d+)%?$")
      local n, root = l:match("^Dad, the square root of (%d+) is ([%d.]+)%.$")
      if q then asked[#asked + 1] = tonumber(q) end
      if n then
        answered[#answered + 1] = tonumber(n)
        assert.equal(("%3.2f"):format(math.sqrt(tonumber(n))), root)
      end
    end
    local want = {}
    for n = 1000, 8000, 1000 do want[#want + 1] = n end
    assert.same(want, asked)
    assert.same(want, answered)
  end)

  it("workers.lua: three children at once, each sees the end of its input", function()
    local lines = run("workers.lua")
    local workers, numbers, total = 3, 12, 0
    for k = 1, workers do
      local count, sum = 0, 0
      for n = k, numbers, workers do count, sum = count + 1, sum + n * n end
      assert.equal(("worker %d: %d numbers, sum of squares %d"):format(k, count, sum),
                   lines[k])
      total = total + sum
    end
    assert.equal(("all workers: sum of squares of 1..%d is %d"):format(numbers, total),
                 lines[workers + 1])
    assert.equal(workers + 1, #lines)
  end)

  it("tofile.lua: both sides use f:write and f:lines on inherited handles", function()
    local lines = run("tofile.lua")
    local sent = {"handles become files", "files read lines", "the child answers"}
    assert.equal(("parent: sent %d lines"):format(#sent), lines[1])
    for k, s in ipairs(sent) do
      assert.equal(("child: %d: %s"):format(k, s:upper()), lines[k + 1])
    end
    assert.equal(#sent + 1, #lines)
  end)

  it("socket.lua: a child serves on the listening socket it inherited", function()
    local lines = run("socket.lua")
    local questions = {16, 2, 1000}
    for k, n in ipairs(questions) do
      assert.equal(("the child says the square root of %d is %.2f"):format(n, math.sqrt(n)),
                   lines[k])
    end
    assert.equal(#questions, #lines)
  end)

  it("prefork.lua serves K connections, restarts the crashed worker, exits", function()
    local s = output("prefork.lua", "--workers", "3", "--serve", "10")
    local answers = 0
    for n, root in s:gmatch("client: (%d+) %-> sqrt%(%d+%) = ([%d.]+)") do
      assert.equal(("%.3f"):format(math.sqrt(tonumber(n))), root)
      answers = answers + 1
    end
    assert.equal(10, answers)
    assert.matches("ended %(exit 3%); restarting it", s)
    assert.matches("answered 10 connections", s)
  end)

  it("handoff.lua hands K connections to running workers, exits", function()
    local s = output("handoff.lua", "--workers", "2", "--serve", "6")
    local answers, by = 0, {}
    for n, root, id in s:gmatch("client: (%d+) %-> sqrt%(%d+%) = ([%d.]+) %(worker (%d)%)") do
      assert.equal(("%.3f"):format(math.sqrt(tonumber(n))), root)
      answers = answers + 1
      by[id] = true
    end
    assert.equal(6, answers)
    assert.is_true(by["1"] and by["2"])
    assert.matches("handed 6 connections to 2 workers", s)
  end)

  it("hotrestart.lua answers \"<pid> <line>\" and exits 0 on SIGTERM", function()
    -- restarts under load: tests/spec/restart_spec.lua
    local hpass = require "hpass"
    local socket = require "socket"
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    local errfile = H.tmpname()
    local f = assert(io.open(errfile, "w"))
    local p = assert(hpass.spawn_with_handle({H.lua, EXAMPLES .. "hotrestart.lua", port},
                                             {}, {stderr = f}))
    f:close()
    local answer
    for _ = 1, 100 do
      local c = socket.connect("127.0.0.1", port)
      if c then
        c:settimeout(10)
        assert(c:send("hello\n"))
        answer = c:receive("*l")
        c:close()
        break
      end
      socket.sleep(0.05)
    end
    assert.equal(p.pid .. " hello", answer)
    assert(p:kill("TERM"))
    assert.same({true, "exit", 0}, {p:wait(10)})
    assert.matches("serving on 127.0.0.1:" .. port, H.readfile(errfile))
  end)

  it("every example is run here", function()
    local p = assert(io.popen('ls "' .. EXAMPLES .. '"'))
    local names = {}
    for name in p:lines() do
      if name:match("%.lua$") then names[#names + 1] = name end
    end
    p:close()
    assert.is_true(#names >= 4)
    local spec = H.readfile(H.dir .. "/spec/examples_spec.lua")
    for _, name in ipairs(names) do
      -- this spec runs an example by naming its file in a string
      assert.is_truthy(spec:find('"' .. name .. '"', 1, true),
                       "examples_spec.lua does not run examples/" .. name)
    end
  end)
end)
