-- report.lua - turn the raw results of bench/run.sh into tables and verdicts.
--
--   lua5.4 report.lua RESULTS MACHINE MODE HEAPS N NI ROUNDS IROUNDS PER CAPMIB SEL
--                     [MD_OUT DAT_OUT]
--
-- RESULTS holds the lines the benchmark programs printed ("R key value",
-- "I key text") plus the harness's own "SKIP key reason" and "FAIL key
-- reason".  MACHINE holds "name: value" lines.  MODE is "full" or "quick";
-- only a full run judges the targets.  The other arguments are run.sh's
-- counts.  With MD_OUT and DAT_OUT it also writes the results as markdown
-- and the spawn medians as a gnuplot data file.  Exit status: 0 (a missed
-- target is a FAIL line, not a failure of the benchmark); 2 for bad
-- arguments.
--
-- A judged ratio is the median of the ratios of partner rounds: run.sh
-- runs a round of each partner one right after the other, so the k-th
-- result of the one and the k-th of the other make a pair.

local results, machine, mode, heaplist = arg[1], arg[2], arg[3], arg[4]
local n, ni, rounds, irounds, per, capmib, sel =
  tonumber(arg[5]), tonumber(arg[6]), tonumber(arg[7]), tonumber(arg[8]),
  tonumber(arg[9]), tonumber(arg[10]), tonumber(arg[11])
local md_out, dat_out = arg[12], arg[13]
if not (results and machine and mode and heaplist and n and ni and rounds
        and irounds and per and capmib and sel) then
  io.stderr:write("usage: report.lua RESULTS MACHINE MODE HEAPS N NI ROUNDS IROUNDS",
                  " PER CAPMIB SEL [MD DAT]\n")
  os.exit(2)
end
local quick = mode == "quick"

local heaps = {}
for h in heaplist:gmatch("[^,]+") do heaps[#heaps + 1] = tonumber(h) end
local big = heaps[#heaps]

-- {{{ read
local samples, skips, fails, skipped_order = {}, {}, {}, {}
for line in io.lines(results) do
  local key, value = line:match("^R (%S+) (%S+)")
  if key then
    local t = samples[key] or {}
    samples[key] = t
    t[#t + 1] = tonumber(value)
  else
    local kind, k, reason = line:match("^(%u+) (%S+) ?(.*)")
    if kind == "SKIP" then
      if not skips[k] then skipped_order[#skipped_order + 1] = k end
      skips[k] = reason
    elseif kind == "FAIL" then
      fails[#fails + 1] = k .. ": " .. reason
    end
  end
end
local mach = {}
for line in io.lines(machine) do
  local k, v = line:match("^([^:]+):%s*(.*)$")
  if k then mach[#mach + 1] = {k, v} end
end
-- }}}

-- {{{ statistics
-- median, min, max, quartiles and count of a list of numbers (nil: none)
local function describe(t)
  if not t or #t == 0 then return nil end
  local s = {}
  for i = 1, #t do s[i] = t[i] end
  table.sort(s)
  local m = #s
  local function at(q)  -- the q-quantile, interpolated
    local x = 1 + (m - 1) * q
    local lo = math.floor(x)
    return s[lo] + (s[math.min(lo + 1, m)] - s[lo]) * (x - lo)
  end
  return {median = at(0.5), min = s[1], max = s[m], q1 = at(0.25), q3 = at(0.75),
          n = m, sorted = s}
end

local function stats(key) return describe(samples[key]) end

local function median(key)
  local s = stats(key)
  return s and s.median
end

-- The values of f(a[k], b[k], ...) for the pairs k of partner rounds.
local function paired(f, ...)
  local lists, m = {}, math.huge
  for i, key in ipairs({...}) do
    lists[i] = samples[key]
    if not lists[i] then return nil end
    m = math.min(m, #lists[i])
  end
  local out = {}
  for k = 1, m do
    local row = {}
    for i = 1, #lists do row[i] = lists[i][k] end
    local v = f(table.unpack(row))
    if v then out[#out + 1] = v end
  end
  return out
end

local function quotient(x, y) if y ~= 0 then return x / y end end
local function difference(x, y) return x - y end

-- A 95 % interval of a median of m values from their order statistics
-- (the normal approximation of the binomial): half its width, relative
-- to the median, says how far another run may land.
local function spread(d)
  if not d or d.n < 10 or d.median == 0 then return nil end
  local h = 0.98 * math.sqrt(d.n)
  local lo = d.sorted[math.max(1, math.floor(d.n / 2 - h))]
  local hi = d.sorted[math.min(d.n, math.ceil(d.n / 2 + 1 + h))]
  return math.max(hi - d.median, d.median - lo) / math.abs(d.median)
end

local function fmt(v)
  if v == nil then return "-" end
  local a = math.abs(v)
  if a >= 100 then return string.format("%.0f", v) end
  if a >= 10 then return string.format("%.1f", v) end
  return string.format("%.2f", v)
end

local function cellof(d)
  if not d then return "-" end
  return string.format("%s (%s–%s)", fmt(d.median), fmt(d.min), fmt(d.max))
end
local function cell(key) return cellof(stats(key)) end
-- }}}

-- {{{ what is reported
local spawn_impls = {
  {"c_posix_spawn", "C posix_spawn + waitpid"},
  {"c_fork_exec", "C fork + execve + waitpid"},
  {"hpass", "Lua 5.4 hpass spawn_with_handle + wait"},
  {"luaposix", "Lua 5.3 luaposix fork/execp/wait"},
  {"luv", "Lua 5.4 luv uv.spawn + uv.run"},
  {"os_execute", "Lua 5.4 os.execute (via /bin/sh)"},
  {"hpass_posix_spawn", "Lua 5.4 hpass, posix_spawn + addclosefrom_np build"},
  {"hpass_procwalk", "Lua 5.4 hpass, child closing by /proc/self/fd walk"},
  {"hpass_closeloop", "Lua 5.4 hpass, child polling every number to the limit"},
  {"hpass_closeloop_1024", "the same with a descriptor limit of 1024"},
}
local live_impls = {
  {"hpass_live", "Lua 5.4 hpass with live children never waited for (2,000; 200 quick)"},
  {"hpass_nolive", "the same rounds with none"},
  {"c_posix_spawn_live", "C posix_spawn + waitpid with as many live children"},
  {"c_posix_spawn_nolive", "the same rounds with none"},
}
-- Each hpass call against its floor: key stem, what, unit, hpass key,
-- floor key, what the floor is, and (bulk) the minimal binding's own
-- transfer across two processes, for information.
local floor_rows = {
  {"pairs", string.format("%d write_int + read_int pairs, one process, one pipe", ni),
   "ns per pair", "floor/pairs/hpass", "floor/pairs/floor",
   "minimal binding: luaL_checkudata, one conversion, pwritev2 / read"},
  {"perint", string.format("%d ints parent → child, one write_int / read_int each", ni),
   "ns per int", "floor/ints/hpass_perint", "floor/ints/floor_perint",
   "the same minimal binding on both sides"},
  {"bulk", string.format("%d ints parent → child, write_ints / read_ints (a new table)", n),
   "ns per int", "floor/ints/hpass_bulk", "floor/ints/floor_bulk",
   "one process: walk a table into a C buffer, fill a new table from it",
   "floor/ints/floor_pipe_bulk"},
  {"stream", string.format("%d ints parent → child, read_ints into a reused table", n),
   "ns per int", "floor/ints/hpass_stream", "floor/ints/floor_stream",
   "the same walk, the fill into one table 16384 at a time",
   "floor/ints/floor_pipe_stream"},
  {"select", string.format("select over %d idle handles and one ready one", sel),
   "µs per call", "floor/select/hpass", "floor/select/poll",
   "C: poll(2) over the same descriptors, then a look at each entry"},
}
local int_impls = {
  {"c_perint", "C, one write/read of 4 bytes per int (seed protocol)"},
  {"c_nosig", "C, the same with hpass's calls (pwritev2 RWF_NOSIGNAL)"},
  {"c_batch", string.format("C, %d ints in 64 KiB batches (pipe bandwidth)", n)},
  {"hpass_perint", "Lua 5.4 hpass write_int/read_int, unbuffered"},
  {"hpass_buffered", string.format("Lua 5.4 hpass write_int/read_int, setvbuf \"full\" (%d ints)",
                                    n)},
  {"luaposix_perint", "Lua 5.3 luaposix write(string.pack) per int, Lua child"},
  {"popen_buffered", string.format("Lua 5.4 buffered io.popen + string.pack, Lua child (%d ints)",
                                   n)},
}
local capture_impls = {
  {"capture/hpass_capture", "Lua 5.4 hpass.capture{\"head\", \"-c\", n, \"/dev/zero\"}"},
  {"capture/popen_read", "Lua 5.4 io.popen(\"head -c n /dev/zero\"):read(\"a\")"},
}
local pipeline_impls = {
  {"pipeline/file_hpass", "hpass.pipeline{{\"cat\"}, {\"cat\"}, {\"cat\"}}, file → /dev/null"},
  {"pipeline/file_shell", "hpass.run{\"sh\", \"-c\", \"cat | cat | cat\"}, file → /dev/null"},
  {"pipeline/capture_hpass", "hpass.pipeline, input string → captured string"},
  {"pipeline/capture_shell", "hpass.capture of sh -c 'cat | cat | cat', the same"},
}
local mem_rows = {
  {"mem/bare", "bare lua5.4, VmHWM"},
  {"mem/hpass", "lua5.4 + require \"hpass\", VmHWM"},
  {"mem/hpass_load", "peak RSS added by require \"hpass\""},
  {"mem/nothing_load", "peak RSS added by require of a C module that does nothing"},
  {"mem/hpass_private", "private pages added by require \"hpass\""},
  {"mem/nothing_private", "private pages added by require of the module that does nothing"},
  {"mem/hpass_heap", "of those, Lua heap added by require \"hpass\""},
  {"mem/hpass_code", "clean file pages (code) added by require \"hpass\""},
  {"mem/nothing_code", "clean file pages (code) added by the module that does nothing"},
  {"mem/hpass_perint", string.format("parent after a %d-int per-int transfer, VmHWM", n)},
  {"mem/hpass_perint_growth", "growth during that transfer (same process)"},
  {"mem/hpass_buffered", string.format("parent after a %d-int buffered transfer, VmHWM", n)},
  {"mem/hpass_buffered_growth", "growth during that transfer (same process)"},
}
-- }}}

-- {{{ targets
local targets = {}
-- A judged target: d describes the values of its pairs (nil: not measured).
local function target(id, what, d, op, limit, why)
  targets[#targets + 1] = {id = id, what = what, d = d, value = d and d.median,
                           op = op, limit = limit, why = why}
end
local function pairratio(a, b) return describe(paired(quotient, a, b)) end
-- Why a result is missing: a SKIP line whose key starts a part of the
-- result's key ("luaposix" covers "ints/luaposix_perint", "pipeline"
-- covers "pipeline/file_hpass"), else a plain "no result" (a program
-- that failed).
local function why_missing(...)
  for _, k in ipairs({...}) do
    if not samples[k] then
      for part in k:gmatch("[^/]+") do
        for _, sk in ipairs(skipped_order) do
          if part:sub(1, #sk) == sk then return "skipped: " .. skips[sk] end
        end
      end
      return "no result for " .. k
    end
  end
end
-- the ratio target a / b of partner rounds
local function ptarget(id, what, a, b, op, limit)
  target(id, what, pairratio(a, b), op, limit, why_missing(a, b))
end

local H0, HB = "/" .. heaps[1], "/" .. big
local S0, SB = "spawn/%s" .. H0, "sweep/spawn/%s" .. HB
local function s0(impl) return S0:format(impl) end
local function sb(impl) return SB:format(impl) end

ptarget("1a", string.format("spawn, heap %d MiB: hpass / C posix_spawn", heaps[1]),
        s0("hpass"), s0("c_posix_spawn"), "<=", 1.10)
ptarget("1b", string.format("spawn: hpass at %d MiB / hpass at %d MiB", big, heaps[1]),
        sb("hpass"), "sweep/spawn/hpass" .. H0, "<=", 1.10)
-- 1c and 1d: a peer's fork of a big heap against hpass, which forks
-- none.  No spawner can be further ahead than C's posix_spawn is (the
-- ceiling), and where a fork costs little against an exec that ceiling
-- is below 25: then the limit is nine tenths of it.
for _, peer in ipairs({{"1c", "luaposix"}, {"1d", "luv"}}) do
  local ceiling = pairratio(sb(peer[2]), sb("c_posix_spawn"))
  local limit = ceiling and math.min(25, 0.9 * ceiling.median) or 25
  ptarget(peer[1], string.format("spawn, heap %d MiB: %s / hpass (limit 25, or 0.9 × %s / "
                                 .. "C posix_spawn where that is less)", big, peer[2], peer[2]),
          sb(peer[2]), sb("hpass"), ">=", limit)
end
for i, h in ipairs(heaps) do
  -- "ahead of every Lua peer": the fastest peer of each round over hpass
  local fmtk = i == 1 and S0 or "sweep/spawn/%s/" .. h
  local keys, names = {fmtk:format("hpass")}, {}
  for _, p in ipairs({"luaposix", "luv", "os_execute"}) do
    if samples[fmtk:format(p)] then
      keys[#keys + 1] = fmtk:format(p)
      names[#names + 1] = p
    end
  end
  local d = #keys > 1 and describe(paired(function(hv, ...)
    return quotient(math.min(...), hv)
  end, table.unpack(keys)))
  target("1e", string.format("spawn, heap %d MiB: fastest Lua peer (%s) / hpass", h,
                             #names > 0 and table.concat(names, ", ") or "none"),
         d or nil, ">=", 1.0, why_missing(keys[1]) or (#keys == 1 and "no Lua peer ran"))
end
for _, im in ipairs({{"posix_spawn", "posix_spawn + addclosefrom_np"},
                     {"procwalk", "child walking /proc/self/fd"},
                     {"closeloop_1024", "child polling to a limit of 1024"}}) do
  if samples[s0("hpass_" .. im[1])] then
    ptarget("1f", string.format("spawn, heap %d MiB: hpass %s build / C posix_spawn",
                                heaps[1], im[2]),
            s0("hpass_" .. im[1]), s0("c_posix_spawn"), "<=", 1.10)
  end
end
ptarget("7", string.format("spawn, heap %d MiB: hpass with live children / with none",
                           heaps[1]),
        s0("hpass_live"), s0("hpass_nolive"), "<=", 1.10)
ptarget("2a", "per int, one process: hpass / the minimal binding",
        "floor/pairs/hpass", "floor/pairs/floor", "<=", 1.10)
ptarget("2b", "per int, two processes: hpass / the minimal binding",
        "floor/ints/hpass_perint", "floor/ints/floor_perint", "<=", 1.10)
ptarget("2c", "per int, two processes: luaposix / hpass (ahead of a peer)",
        "ints/luaposix_perint", "ints/hpass_perint", ">=", 1.0)
ptarget("3a", "buffered: C one-syscall-per-int / hpass buffered",
        "ints/c_perint", "ints/hpass_buffered", ">=", 4)
ptarget("3b", "buffered: io.popen buffered / hpass buffered",
        "ints/popen_buffered", "ints/hpass_buffered", ">=", 2)
ptarget("4a", "bulk, a new table: hpass / Lua's floor (walk + fill)",
        "floor/ints/hpass_bulk", "floor/ints/floor_bulk", "<=", 1.3)
ptarget("4b", "bulk, a reused table: hpass / Lua's floor (walk + fill)",
        "floor/ints/hpass_stream", "floor/ints/floor_stream", "<=", 1.3)
target("5a", "memory: private KiB require \"hpass\" adds beyond a module doing nothing",
       describe(paired(difference, "mem/hpass_private", "mem/nothing_private")), "<=", 64,
       why_missing("mem/hpass_private", "mem/nothing_private"))
target("5b", string.format("memory: peak RSS growth (KiB), %d-int per-int transfer", n),
       stats("mem/hpass_perint_growth"), "<=", 1024, why_missing("mem/hpass_perint_growth"))
target("5c", string.format("memory: peak RSS growth (KiB), %d-int buffered transfer", n),
       stats("mem/hpass_buffered_growth"), "<=", 1024,
       why_missing("mem/hpass_buffered_growth"))
ptarget("6", string.format("capture %g MiB: hpass.capture / io.popen():read('a')", capmib),
        "capture/hpass_capture", "capture/popen_read", "<=", 1.0)
ptarget("8", string.format("select over %d idle handles + 1 ready: hpass / C poll", sel),
        "floor/select/hpass", "floor/select/poll", "<=", 1.5)
ptarget("9a", string.format("pipeline of 3 cats, %g MiB file → /dev/null: hpass / sh", capmib),
        "pipeline/file_hpass", "pipeline/file_shell", "<=", 1.10)
ptarget("9b", string.format("pipeline of 3 cats, %g MiB string → string: hpass / sh", capmib),
        "pipeline/capture_hpass", "pipeline/capture_shell", "<=", 1.10)

local nfail = 0
for _, t in ipairs(targets) do
  if t.value == nil then
    t.verdict = "n/a"
  else
    local ok = (t.op == "<=" and t.value <= t.limit)
            or (t.op == ">=" and t.value >= t.limit)
    t.verdict = ok and "PASS" or "FAIL"
    if not ok then nfail = nfail + 1 end
  end
end

-- Against C: information, not targets.  Each with the same ratio for
-- Lua's floor, which says how much of the gap is Lua's own (ratios of the
-- medians of this run; the partners did not run side by side).
local function mratio(a, b)
  local x, y = median(a), median(b)
  if x and y and y ~= 0 then return x / y end
end
local againstc = {
  {"per int, two processes: hpass / C write(2) + read(2) per int",
   mratio("floor/ints/hpass_perint", "ints/c_perint"),
   mratio("floor/ints/floor_perint", "ints/c_perint"),
   "two calls from Lua into C per int, and pwritev2(RWF_NOSIGNAL) where C " ..
   "calls write(2): hpass makes no SIGPIPE (C with pwritev2 / C with write: " ..
   fmt(mratio("ints/c_nosig", "ints/c_perint")) .. ")"},
  {"per int, two processes: hpass / C making the same calls",
   mratio("floor/ints/hpass_perint", "ints/c_nosig"),
   mratio("floor/ints/floor_perint", "ints/c_nosig"),
   "two calls from Lua into C per int, which the minimal binding pays too"},
  {"per int, one process: hpass / C making the same calls",
   mratio("floor/pairs/hpass", "pairs/c"), mratio("floor/pairs/floor", "pairs/c"),
   "the same two calls into C per pair, without a second process to hide them"},
  {"bulk, a new table: hpass / C 64 KiB batches",
   mratio("floor/ints/hpass_bulk", "ints/c_batch"),
   mratio("floor/ints/floor_bulk", "ints/c_batch"),
   "a Lua table: C copies an array, Lua walks one table and fills another"},
  {"bulk, a reused table: hpass / C 64 KiB batches",
   mratio("floor/ints/hpass_stream", "ints/c_batch"),
   mratio("floor/ints/floor_stream", "ints/c_batch"),
   "the same walk and fill, into a table that is already there"},
}

-- Reference ratios: not targets, but the limits this machine sets on them.
local refs = {}
local function ref(what, value) refs[#refs + 1] = {what = what, value = value} end
local function pref(what, a, b)
  local d = pairratio(a, b)
  ref(what, d and d.median)
end
pref(string.format("same as 1b for C: posix_spawn at %d MiB / at %d MiB", big, heaps[1]),
     sb("c_posix_spawn"), "sweep/spawn/c_posix_spawn" .. H0)
pref(string.format("ceiling of 1c here: luaposix / C posix_spawn at %d MiB", big),
     sb("luaposix"), sb("c_posix_spawn"))
pref(string.format("ceiling of 1d here: luv / C posix_spawn at %d MiB", big),
     sb("luv"), sb("c_posix_spawn"))
pref(string.format("C fork+execve / C posix_spawn at %d MiB", big),
     sb("c_fork_exec"), sb("c_posix_spawn"))
pref(string.format("spawn, heap %d MiB: hpass / hpass posix_spawn build", heaps[1]),
     s0("hpass"), s0("hpass_posix_spawn"))
pref(string.format("spawn: hpass posix_spawn build at %d MiB / at %d MiB", big, heaps[1]),
     sb("hpass_posix_spawn"), "sweep/spawn/hpass_posix_spawn" .. H0)
for _, im in ipairs({"procwalk", "closeloop"}) do
  pref(string.format("spawn, heap %d MiB: hpass %s build / C posix_spawn%s", heaps[1], im,
                     im == "closeloop" and " (at the machine's limit)" or ""),
       s0("hpass_" .. im), s0("c_posix_spawn"))
  pref(string.format("spawn: hpass %s build at %d MiB / at %d MiB", im, big, heaps[1]),
       sb("hpass_" .. im), "sweep/spawn/hpass_" .. im .. H0)
end
pref(string.format("same as 7 for C: posix_spawn with live children / with none, heap %d MiB",
                   heaps[1]),
     s0("c_posix_spawn_live"), s0("c_posix_spawn_nolive"))
do
  local d = describe(paired(difference, "mem/hpass_load", "mem/nothing_load"))
  local c = describe(paired(difference, "mem/hpass_code", "mem/nothing_code"))
  ref("memory: peak RSS (KiB) require \"hpass\" adds beyond a module doing nothing",
      d and d.median)
  ref("of which clean file pages (KiB): hpass's code, mapped from the page cache",
      c and c.median)
end
-- }}}

-- {{{ text output
local out = {}
local function p(...) out[#out + 1] = table.concat({...}) end

local function pad(s, w) return s .. string.rep(" ", math.max(0, w - utf8.len(s))) end
local function lpad(s, w) return string.rep(" ", math.max(0, w - utf8.len(s))) .. s end

-- the interquartile range of a target's pairs and the median's margin
local function tspread(t)
  if not t.d or t.d.n < 2 then return "" end
  local m = spread(t.d)
  return string.format("[%s–%s] n=%d%s", fmt(t.d.q1), fmt(t.d.q3), t.d.n,
                       m and string.format(" ±%.0f%%", 100 * m) or "")
end

-- One judged value per kind of target: a ratio or a number of KiB.
local busy
for _, kv in ipairs(mach) do
  local l = tonumber(kv[2]:match("^(%S+)"))
  -- The benchmarks themselves keep one or two processes busy, so a load
  -- average up to about 2 after the run is ours; before it, above 1 is not.
  if (kv[1] == "load" and l and l > 1.0)
     or (kv[1] == "load after" and l and l > 2.5) then
    busy = true
  end
end

p("== Machine")
for _, kv in ipairs(mach) do p(pad(kv[1] .. ":", 12), kv[2]) end
p(string.format("mode:       %s (medians, min–max in brackets; judged ratios are medians of "
                .. "partner pairs)", mode))
p("")
p("== spawn /bin/true N + wait, µs per spawn, by parent heap")
do
  local line = pad("", 58)
  for _, h in ipairs(heaps) do line = line .. lpad(h .. " MiB", 24) end
  p(line)
  for _, im in ipairs(spawn_impls) do
    line = pad(im[2], 58)
    for i, h in ipairs(heaps) do
      line = line .. lpad(cell(i == 1 and s0(im[1]) or "sweep/spawn/" .. im[1] .. "/" .. h), 24)
    end
    p(line)
  end
  for _, im in ipairs(live_impls) do p(pad(im[2], 58), lpad(cell(s0(im[1])), 24)) end
end
p("")
p("== hpass against Lua's floor (partner rounds, median of pair ratios)")
for _, r in ipairs(floor_rows) do
  local d = pairratio(r[4], r[5])
  p(r[2], ", ", r[3])
  p("    ", pad("hpass", 72), lpad(cell(r[4]), 26))
  p("    ", pad("floor: " .. r[6], 72), lpad(cell(r[5]), 26))
  p("    ", pad("hpass / floor", 72), lpad(cellof(d), 26))
  if r[7] then
    p("    ", pad("the minimal binding across two processes (walk, write, read, fill)", 72),
      lpad(cell(r[7]), 26))
    p("    ", pad("that / floor: what the pipe costs any binding", 72),
      lpad(cellof(pairratio(r[7], r[5])), 26))
  end
end
p("")
local function section(title, impls, prefix)
  p("== ", title)
  for _, im in ipairs(impls) do p(pad(im[2], 58), lpad(cell(prefix .. im[1]), 26)) end
  p("")
end
section(string.format("%d native 4-byte ints parent -> child, ns per int", ni),
        int_impls, "ints/")
p(string.format("== %d write+read pairs in one process, ns per pair", ni))
p(pad("C, pwritev2(RWF_NOSIGNAL) + read of one int, one pipe", 58), lpad(cell("pairs/c"), 26))
p("")
section(string.format("a child's %g MiB of output into one Lua string, ms", capmib),
        capture_impls, "")
if samples["pipeline/file_hpass"] then
  section(string.format("3 cats moving %g MiB, ms", capmib), pipeline_impls, "")
end
p("== memory, kB (VmHWM = peak RSS; pages from /proc/self/smaps_rollup)")
for _, r in ipairs(mem_rows) do p(pad(r[2], 64), lpad(cell(r[1]), 20)) end
p("")
if #skipped_order > 0 then
  p("== skipped")
  for _, k in ipairs(skipped_order) do p(pad(k, 20), skips[k]) end
  p("")
end
if #fails > 0 then
  p("== benchmark programs that FAILED")
  for _, f in ipairs(fails) do p(f) end
  p("")
end
if busy then
  p("WARNING: other work was running (see the load lines);",
    " timings are noisy, rerun when the machine is quiet")
  p("")
end
p("== targets (medians of partner pairs: [middle half of the pairs], n pairs,"
  .. " ±95% margin of the median)")
if quick then
  p("quick mode: small counts and few rounds; these verdicts are not judged")
end
for _, t in ipairs(targets) do
  p(pad(t.id, 4), pad(t.what, 74), lpad(fmt(t.value), 7), "  ",
    pad(t.op == "<=" and "≤" or "≥", 2), pad(fmt(t.limit), 5), " ",
    pad(quick and t.verdict:lower() or t.verdict, 5), " ", tspread(t),
    t.value == nil and t.why and ("  (" .. t.why .. ")") or "")
end
p("")
p("against C (information: hpass / C, Lua's floor / C, what separates hpass from C):")
for _, c in ipairs(againstc) do
  p("    ", pad(c[1], 62), lpad(fmt(c[2]), 7), lpad(fmt(c[3]), 7), "  ", c[4])
end
p("")
p("reference (what this machine allows; not targets):")
for _, r in ipairs(refs) do p("    ", pad(r.what, 74), lpad(fmt(r.value), 8)) end
if not quick then
  p("")
  p(nfail == 0 and "all targets met" or (nfail .. " target(s) missed"))
end
io.write(table.concat(out, "\n"), "\n")
-- }}}

-- {{{ markdown and plot data
if md_out then
  local m = {}
  local function w(...) m[#m + 1] = table.concat({...}) end
  w("# hpass benchmark results")
  w("")
  w("Generated by `bench/run.sh` (`make bench`) on ", os.date("!%Y-%m-%d %H:%M UTC"),
    ". Every number below was measured")
  w("in that one run; medians, with min–max in brackets. Absolute times depend on")
  w("the machine and on what else runs on it; compare ratios. Each judged ratio is")
  w("the median of the ratios of partner rounds: a round of hpass and a round of")
  w("what it is judged against, one right after the other, in alternating order.")
  w("Where Lua itself sets the cost, the partner is Lua's floor, measured by a C")
  w("module built only for the benchmark (`bench/floor.c`): a minimal binding of")
  w("one int per call, the walk and fill of a table of integers, C's `poll`, and")
  w("the require of a C module that does nothing (`bench/nothing.c`).")
  w("")
  w("| machine | |")
  w("|---|---|")
  for _, kv in ipairs(mach) do w("| ", kv[1], " | ", kv[2], " |") end
  w("")
  w("## Targets")
  w("")
  if busy then
    w("**Other work was running during this run (see the load lines above);")
    w("the timings are noisy.**")
    w("")
  end
  w("Measured: the median of the pairs; then the middle half of the pairs, how")
  w("many pairs, and the margin of the median (half its 95% interval).")
  w("")
  w("| | target | measured | limit | | pairs |")
  w("|---|---|---|---|---|---|")
  for _, t in ipairs(targets) do
    w("| ", t.id, " | ", t.what, " | ", fmt(t.value), " | ",
      t.op == "<=" and "≤ " or "≥ ", fmt(t.limit), " | ", t.verdict,
      t.value == nil and t.why and (" (" .. t.why .. ")") or "", " | ", tspread(t), " |")
  end
  w("")
  w("Against C, for information (ratios of this run's medians): hpass / C, then")
  w("Lua's floor / C, and what separates hpass from C.")
  w("")
  w("| | hpass / C | floor / C | what separates them |")
  w("|---|---|---|---|")
  for _, c in ipairs(againstc) do
    w("| ", c[1], " | ", fmt(c[2]), " | ", fmt(c[3]), " | ", c[4], " |")
  end
  w("")
  w("Reference ratios (what this machine allows; not targets):")
  w("")
  for _, r in ipairs(refs) do w("- ", r.what, ": ", fmt(r.value)) end
  w("")
  w("## hpass against Lua's floor")
  w("")
  w("| | hpass | Lua's floor | hpass / floor |")
  w("|---|---|---|---|")
  for _, r in ipairs(floor_rows) do
    w("| ", r[2], ", ", r[3], "; floor: ", r[6], " | ", cell(r[4]), " | ", cell(r[5]),
      " | ", cellof(pairratio(r[4], r[5])), " |")
  end
  w("")
  w("What the pipe between two processes costs any binding, for information: the")
  w("minimal binding's own bulk transfer (the parent walks the table into a C buffer")
  w("and writes it, the child reads it and fills its table), in the same partner")
  w("rounds.")
  w("")
  w("| | minimal binding, two processes | that / floor |")
  w("|---|---|---|")
  for _, r in ipairs(floor_rows) do
    if r[7] then
      w("| ", r[2], ", ", r[3], " | ", cell(r[7]), " | ", cellof(pairratio(r[7], r[5])), " |")
    end
  end
  w("")
  w("## Spawn `/bin/true N` + wait, µs per spawn, by parent heap")
  w("")
  w("![spawn time against parent heap size](spawn-vs-heap.png)")
  w("")
  local hdr, sep = "| |", "|---|"
  for _, h in ipairs(heaps) do
    hdr = hdr .. " " .. h .. " MiB |"
    sep = sep .. "---|"
  end
  w(hdr)
  w(sep)
  for _, im in ipairs(spawn_impls) do
    local line = "| " .. im[2] .. " |"
    for i, h in ipairs(heaps) do
      line = line .. " " .. cell(i == 1 and s0(im[1]) or "sweep/spawn/" .. im[1] .. "/" .. h)
             .. " |"
    end
    w(line)
  end
  for _, im in ipairs(live_impls) do
    w("| ", im[2], " | ", cell(s0(im[1])), string.rep(" | –", #heaps - 1), " |")
  end
  w("")
  w("The first column comes from ", rounds * 9, " short rounds, the others from ", rounds,
    " rounds of the sweep.")
  w("")
  -- one table of implementations: a heading, its unit, their rows
  local function mdsection(title, unit, impls, prefix)
    w("## ", title)
    w("")
    w("| | ", unit, " |")
    w("|---|---|")
    for _, im in ipairs(impls) do w("| ", im[2], " | ", cell(prefix .. im[1]), " |") end
    w("")
  end
  mdsection(ni .. " native 4-byte ints, parent → child", "ns per int", int_impls, "ints/")
  w("C, pwritev2(RWF_NOSIGNAL) + read of one int on one pipe, in one process: ",
    cell("pairs/c"), " ns per pair.")
  w("")
  mdsection("A child's " .. capmib .. " MiB of output into one Lua string", "ms",
            capture_impls, "")
  if samples["pipeline/file_hpass"] then
    mdsection("3 cats moving " .. capmib .. " MiB", "ms", pipeline_impls, "")
  end
  w("## Memory, kB")
  w("")
  w("VmHWM is the peak resident set; the pages are from `/proc/self/smaps_rollup`,")
  w("just before and just after require, in one process.")
  w("")
  w("| | kB |")
  w("|---|---|")
  for _, r in ipairs(mem_rows) do w("| ", r[2], " | ", cell(r[1]), " |") end
  if #skipped_order > 0 then
    w("")
    w("Skipped: ")
    w("")
    for _, k in ipairs(skipped_order) do w("- ", k, ": ", skips[k]) end
  end
  w("")
  w("Regenerate with `make bench` (or `bench/run.sh`); the plot alone from")
  w("`docs/spawn-vs-heap.dat` with `bench/plot.sh`.")
  local f = assert(io.open(md_out, "w"))
  f:write(table.concat(m, "\n"), "\n")
  f:close()
end

if dat_out then
  local f = assert(io.open(dat_out, "w"))
  f:write("# spawn /bin/true N + wait: median µs per spawn (bench/run.sh, ",
          os.date("!%Y-%m-%d %H:%M UTC"), "); ? = not measured\n")
  local cols = {"heap_MiB"}
  for _, im in ipairs(spawn_impls) do cols[#cols + 1] = im[1] end
  f:write("# ", table.concat(cols, " "), "\n")
  for i, h in ipairs(heaps) do
    local row = {tostring(h)}
    for _, im in ipairs(spawn_impls) do
      local v = median(i == 1 and s0(im[1]) or "sweep/spawn/" .. im[1] .. "/" .. h)
      row[#row + 1] = v and string.format("%.1f", v) or "?"
    end
    f:write(table.concat(row, " "), "\n")
  end
  f:close()
end
-- }}}

os.exit(0)
