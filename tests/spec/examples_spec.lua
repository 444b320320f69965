-- Every example runs, with the interpreter of the suite, and prints what
-- it says it prints.
local H = require "helpers"

local EXAMPLES = H.root .. "/examples/"

-- Output lines of an example run with no arguments; it must exit with 0.
local function run(name)
  local out, ok, how, code = H.capture({H.lua, EXAMPLES .. name}, {})
  assert.same({true, "exit", 0}, {ok, how, code})
  return H.lines(out)
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

  it("every example is run by some spec", function()
    local p = assert(io.popen('ls "' .. EXAMPLES .. '"'))
    local names = {}
    for name in p:lines() do
      if name:match("%.lua$") then names[#names + 1] = name end
    end
    p:close()
    assert.is_true(#names >= 4)
    p = assert(io.popen('cat "' .. H.dir .. '"/spec/*_spec.lua'))
    local specs = p:read("*a")
    p:close()
    for _, name in ipairs(names) do
      -- a spec runs an example by naming its file in a string
      assert.is_truthy(specs:find('"' .. name .. '"', 1, true),
                       "no spec runs examples/" .. name)
    end
  end)
end)
