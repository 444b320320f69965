-- report.lua - turn the raw results of bench/run.sh into tables and verdicts.
--
--   lua5.4 report.lua RESULTS MACHINE MODE HEAPS N ROUNDS CAPMIB [MD_OUT DAT_OUT]
--
-- RESULTS holds the lines the benchmark programs printed ("R key value",
-- "I key text") plus the harness's own "SKIP key reason" and "FAIL key
-- reason".  MACHINE holds "name: value" lines.  MODE is "full" or "quick";
-- only a full run judges the targets.  With MD_OUT and DAT_OUT
-- it also writes the results as markdown and the spawn medians as a
-- gnuplot data file.  Exit status: 0 (a missed target is a FAIL line, not
-- a failure of the benchmark); 2 for bad arguments.

local results, machine, mode, heaplist, n, rounds, capmib, md_out, dat_out =
  arg[1], arg[2], arg[3], arg[4], tonumber(arg[5]), tonumber(arg[6]),
  tonumber(arg[7]), arg[8], arg[9]
if not (results and machine and mode and heaplist and n and rounds and capmib) then
  io.stderr:write("usage: report.lua RESULTS MACHINE MODE HEAPS N ROUNDS CAPMIB [MD DAT]\n")
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
local function stats(key)
  local t = samples[key]
  if not t or #t == 0 then return nil end
  local s = {}
  for i = 1, #t do s[i] = t[i] end
  table.sort(s)
  local m = #s
  local med = m % 2 == 1 and s[(m + 1) // 2] or (s[m // 2] + s[m // 2 + 1]) / 2
  return {median = med, min = s[1], max = s[m], n = m}
end

local function median(key)
  local s = stats(key)
  return s and s.median
end

local function fmt(v)
  if v == nil then return "-" end
  local a = math.abs(v)
  if a >= 100 then return string.format("%.0f", v) end
  if a >= 10 then return string.format("%.1f", v) end
  return string.format("%.2f", v)
end

local function cell(key)
  local s = stats(key)
  if not s then return "-" end
  return string.format("%s (%s–%s)", fmt(s.median), fmt(s.min), fmt(s.max))
end
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
  {"hpass_live", "Lua 5.4 hpass with live children never waited for (2,000; 200 quick)"},
  {"hpass_nolive", "the same rounds with none"},
  {"c_posix_spawn_live", "C posix_spawn + waitpid with as many live children"},
  {"c_posix_spawn_nolive", "the same rounds with none"},
}
local int_impls = {
  {"c_perint", "C, one write/read of 4 bytes per int (seed protocol)"},
  {"c_nosig", "C, the same with hpass's calls (pwritev2 RWF_NOSIGNAL)"},
  {"c_batch", "C, 64 KiB batches (pipe bandwidth)"},
  {"hpass_perint", "Lua 5.4 hpass write_int/read_int, unbuffered"},
  {"hpass_buffered", "Lua 5.4 hpass write_int/read_int, setvbuf \"full\""},
  {"hpass_bulk", "Lua 5.4 hpass write_ints/read_ints (bulk)"},
  {"hpass_stream",
   "Lua 5.4 hpass read_ints into a reused table, 16384 at a time"},
  {"luaposix_perint", "Lua 5.3 luaposix write(string.pack) per int, Lua child"},
  {"popen_buffered", "Lua 5.4 buffered io.popen + string.pack, Lua child"},
}
local pair_impls = {
  {"c", "C, pwritev2(RWF_NOSIGNAL) + read of one int, one pipe"},
  {"hpass", "Lua 5.4 hpass write_int + read_int, one pipe"},
}
local capture_impls = {
  {"hpass_capture", "Lua 5.4 hpass.capture{\"head\", \"-c\", n, \"/dev/zero\"}"},
  {"popen_read", "Lua 5.4 io.popen(\"head -c n /dev/zero\"):read(\"a\")"},
}
local mem_rows = {
  {"mem/bare", "bare lua5.4, VmHWM"},
  {"mem/hpass", "lua5.4 + require \"hpass\", VmHWM"},
  {"mem/hpass_load", "added by require \"hpass\" (same process)"},
  {"mem/trivial_load", "added by require of a 1-function C module (floor)"},
  {"mem/hpass_perint", "parent after per-int transfer, VmHWM"},
  {"mem/hpass_perint_growth", "growth during per-int transfer (same process)"},
  {"mem/hpass_buffered", "parent after buffered transfer, VmHWM"},
  {"mem/hpass_buffered_growth", "growth during buffered transfer (same process)"},
}
-- }}}

-- {{{ targets
local targets = {}
local function target(id, what, value, op, limit, why)
  targets[#targets + 1] = {id = id, what = what, value = value, op = op,
                           limit = limit, why = why}
end
local function ratio(a, b)
  local x, y = median(a), median(b)
  if x and y and y ~= 0 then return x / y end
end
-- Why a result is missing: a SKIP line whose key starts the result's
-- implementation name ("luaposix" covers "luaposix_perint"), else a plain
-- "no result" (a program that failed).
local function why_missing(...)
  for _, k in ipairs({...}) do
    if not samples[k] then
      local impl = k:match("^%a+/([%w_]+)") or k
      for _, sk in ipairs(skipped_order) do
        if impl:sub(1, #sk) == sk then return "skipped: " .. skips[sk] end
      end
      return "no result for " .. k
    end
  end
end

local H0, HB = "/" .. heaps[1], "/" .. big
target("1a", string.format("spawn, heap %d MiB: hpass / C posix_spawn", heaps[1]),
       ratio("spawn/hpass" .. H0, "spawn/c_posix_spawn" .. H0), "<=", 1.10,
       why_missing("spawn/hpass" .. H0, "spawn/c_posix_spawn" .. H0))
target("1b", string.format("spawn: hpass at %d MiB / hpass at %d MiB", big, heaps[1]),
       ratio("spawn/hpass" .. HB, "spawn/hpass" .. H0), "<=", 1.10,
       why_missing("spawn/hpass" .. HB, "spawn/hpass" .. H0))
target("1c", string.format("spawn, heap %d MiB: luaposix / hpass", big),
       ratio("spawn/luaposix" .. HB, "spawn/hpass" .. HB), ">=", 25,
       why_missing("spawn/luaposix" .. HB, "spawn/hpass" .. HB))
target("1d", string.format("spawn, heap %d MiB: luv / hpass", big),
       ratio("spawn/luv" .. HB, "spawn/hpass" .. HB), ">=", 25,
       why_missing("spawn/luv" .. HB, "spawn/hpass" .. HB))
for _, h in ipairs(heaps) do
  -- "ahead of every Lua peer": the fastest peer over hpass
  local best, bname
  for _, p in ipairs({"luaposix", "luv", "os_execute"}) do
    local v = median("spawn/" .. p .. "/" .. h)
    if v and (not best or v < best) then best, bname = v, p end
  end
  local hv = median("spawn/hpass/" .. h)
  target("1e", string.format("spawn, heap %d MiB: fastest Lua peer (%s) / hpass",
                             h, bname or "none"),
         best and hv and best / hv, ">=", 1.0,
         why_missing("spawn/hpass/" .. h) or (not best and "no Lua peer ran"))
end
target("2", "per-int unbuffered: hpass / C one-syscall-per-int",
       ratio("ints/hpass_perint", "ints/c_perint"), "<=", 1.20,
       why_missing("ints/hpass_perint", "ints/c_perint"))
target("2c", "per-int unbuffered: hpass / C making the same system calls",
       ratio("ints/hpass_perint", "ints/c_nosig"), "<=", 1.15,
       why_missing("ints/hpass_perint", "ints/c_nosig"))
target("2d", "one process, write+read pairs: hpass / C making the same calls",
       ratio("pairs/hpass", "pairs/c"), "<=", 1.10,
       why_missing("pairs/hpass", "pairs/c"))
target("2b", "per-int unbuffered: luaposix per int / hpass (ahead of peer)",
       ratio("ints/luaposix_perint", "ints/hpass_perint"), ">=", 1.0,
       why_missing("ints/luaposix_perint", "ints/hpass_perint"))
target("3a", "buffered: C one-syscall-per-int / hpass buffered",
       ratio("ints/c_perint", "ints/hpass_buffered"), ">=", 4,
       why_missing("ints/c_perint", "ints/hpass_buffered"))
target("3b", "buffered: io.popen buffered / hpass buffered",
       ratio("ints/popen_buffered", "ints/hpass_buffered"), ">=", 2,
       why_missing("ints/popen_buffered", "ints/hpass_buffered"))
target("4", "bulk, a new table: hpass throughput / C 64 KiB batches",
       ratio("ints/c_batch", "ints/hpass_bulk"), ">=", 0.20,
       why_missing("ints/c_batch", "ints/hpass_bulk"))
target("4b", "bulk, a reused table: hpass throughput / C 64 KiB batches",
       ratio("ints/c_batch", "ints/hpass_stream"), ">=", 0.20,
       why_missing("ints/c_batch", "ints/hpass_stream"))
-- Loading any C module costs lua5.4 a floor of resident pages (dlopen,
-- relocations, package tables): measured as mem/trivial_load, above 64
-- KiB on the machines this ran on.  5a counts what hpass adds beyond it.
do
  local all, floor = median("mem/hpass_load"), median("mem/trivial_load")
  target("5a", "memory: KiB require \"hpass\" adds beyond a 1-function C module",
         all and floor and all - floor, "<=", 64,
         why_missing("mem/hpass_load", "mem/trivial_load"))
end
target("5b", string.format("memory: peak RSS growth (KiB), %d-int per-int transfer", n),
       median("mem/hpass_perint_growth"), "<=", 1024,
       why_missing("mem/hpass_perint_growth"))
target("5c", string.format("memory: peak RSS growth (KiB), %d-int buffered transfer", n),
       median("mem/hpass_buffered_growth"), "<=", 1024,
       why_missing("mem/hpass_buffered_growth"))

-- Every other spawn path this machine can run, against C posix_spawn.
for _, im in ipairs({{"posix_spawn", "posix_spawn + addclosefrom_np"},
                     {"procwalk", "child walking /proc/self/fd"},
                     {"closeloop_1024", "child polling to a limit of 1024"}}) do
  local a, b = "spawn/hpass_" .. im[1] .. H0, "spawn/c_posix_spawn" .. H0
  if median(a) then
    target("1f", string.format("spawn, heap %d MiB: hpass %s build / C posix_spawn",
                                heaps[1], im[2]), ratio(a, b), "<=", 1.10, why_missing(a, b))
  end
end
target("7", string.format("spawn, heap %d MiB: hpass with live children / with none", heaps[1]),
       ratio("spawn/hpass_live" .. H0, "spawn/hpass_nolive" .. H0), "<=", 1.10,
       why_missing("spawn/hpass_live" .. H0, "spawn/hpass_nolive" .. H0))
target("6", string.format("capture %g MiB: hpass.capture / io.popen():read('a')", capmib),
       ratio("capture/hpass_capture", "capture/popen_read"), "<=", 1.0,
       why_missing("capture/hpass_capture", "capture/popen_read"))

-- Reference ratios: not targets, but the limits this machine sets on them.
local refs = {}
local function ref(what, value) refs[#refs + 1] = {what = what, value = value} end
ref(string.format("same as 1b for C: posix_spawn at %d MiB / at %d MiB", big, heaps[1]),
    ratio("spawn/c_posix_spawn" .. HB, "spawn/c_posix_spawn" .. H0))
ref(string.format("ceiling of 1c here: luaposix / C posix_spawn at %d MiB", big),
    ratio("spawn/luaposix" .. HB, "spawn/c_posix_spawn" .. HB))
ref(string.format("ceiling of 1d here: luv / C posix_spawn at %d MiB", big),
    ratio("spawn/luv" .. HB, "spawn/c_posix_spawn" .. HB))
ref(string.format("C fork+execve / C posix_spawn at %d MiB", big),
    ratio("spawn/c_fork_exec" .. HB, "spawn/c_posix_spawn" .. HB))
ref(string.format("spawn, heap %d MiB: hpass / hpass posix_spawn build", heaps[1]),
    ratio("spawn/hpass" .. H0, "spawn/hpass_posix_spawn" .. H0))
ref(string.format("spawn, heap %d MiB: hpass posix_spawn build / C posix_spawn", heaps[1]),
    ratio("spawn/hpass_posix_spawn" .. H0, "spawn/c_posix_spawn" .. H0))
ref(string.format("spawn: hpass posix_spawn build at %d MiB / at %d MiB", big, heaps[1]),
    ratio("spawn/hpass_posix_spawn" .. HB, "spawn/hpass_posix_spawn" .. H0))
for _, im in ipairs({"procwalk", "closeloop"}) do
  ref(string.format("spawn, heap %d MiB: hpass %s build / C posix_spawn%s", heaps[1], im,
                    im == "closeloop" and " (at the machine's limit)" or ""),
      ratio("spawn/hpass_" .. im .. H0, "spawn/c_posix_spawn" .. H0))
  ref(string.format("spawn: hpass %s build at %d MiB / at %d MiB", im, big, heaps[1]),
      ratio("spawn/hpass_" .. im .. HB, "spawn/hpass_" .. im .. H0))
end
ref(string.format("same as 7 for C: posix_spawn with live children / with none, heap %d MiB",
                  heaps[1]),
    ratio("spawn/c_posix_spawn_live" .. H0, "spawn/c_posix_spawn_nolive" .. H0))
ref("floor of 5a here: KiB added by require of a 1-function C module",
    median("mem/trivial_load"))

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
-- }}}

-- {{{ text output
local out = {}
local function p(...) out[#out + 1] = table.concat({...}) end

local function pad(s, w) return s .. string.rep(" ", w - utf8.len(s)) end
local function lpad(s, w) return string.rep(" ", w - utf8.len(s)) .. s end

p("== Machine")
for _, kv in ipairs(mach) do p(pad(kv[1] .. ":", 12), kv[2]) end
p(string.format("mode:       %s (%d rounds, %d for spawn at %d MiB; medians, min–max in brackets)",
                mode, rounds, rounds * 9, heaps[1]))
p("")
p(string.format("== spawn /bin/true N + wait, µs per spawn, by parent heap"))
do
  local line = pad("", 42)
  for _, h in ipairs(heaps) do line = line .. lpad(h .. " MiB", 24) end
  p(line)
  for _, im in ipairs(spawn_impls) do
    line = pad(im[2], 42)
    for _, h in ipairs(heaps) do
      line = line .. lpad(cell("spawn/" .. im[1] .. "/" .. h), 24)
    end
    p(line)
  end
end
p("")
-- one table of implementations: a heading, then a row each
local function section(title, impls, prefix)
  p("== ", title)
  for _, im in ipairs(impls) do p(pad(im[2], 58), lpad(cell(prefix .. im[1]), 26)) end
  p("")
end
section(string.format("%d native 4-byte ints parent -> child, ns per int", n),
        int_impls, "ints/")
section(string.format("%d write+read pairs in one process, ns per pair", n),
        pair_impls, "pairs/")
section(string.format("a child's %g MiB of output into one Lua string, ms", capmib),
        capture_impls, "capture/")
p("== memory, kB (kernel's VmHWM = peak RSS)")
for _, r in ipairs(mem_rows) do p(pad(r[2], 58), lpad(cell(r[1]), 26)) end
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
-- The benchmarks themselves keep one or two processes busy, so a load
-- average up to about 2 after the run is ours; before it, above 1 is not.
local busy
for _, kv in ipairs(mach) do
  local l = tonumber(kv[2]:match("^(%S+)"))
  if (kv[1] == "load" and l and l > 1.0)
     or (kv[1] == "load after" and l and l > 2.5) then
    busy = true
  end
end
if busy then
  p("WARNING: other work was running (see the load lines);",
    " timings are noisy, rerun when the machine is quiet")
  p("")
end
p("== targets (ratios of medians measured side by side in this run)")
if quick then
  p("quick mode: small N and few rounds; these verdicts are not judged")
end
for _, t in ipairs(targets) do
  p(pad(t.id, 4), pad(t.what, 62), lpad(fmt(t.value), 8), "  ",
    pad(t.op == "<=" and "≤" or "≥", 2), pad(fmt(t.limit), 6), " ",
    quick and t.verdict:lower() or t.verdict,
    t.value == nil and t.why and ("  (" .. t.why .. ")") or "")
end
p("")
p("reference (what this machine allows; not targets):")
for _, r in ipairs(refs) do p("    ", pad(r.what, 62), lpad(fmt(r.value), 8)) end
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
  local function mdcell(key)
    local s = stats(key)
    if not s then return "–" end
    return string.format("%s (%s–%s)", fmt(s.median), fmt(s.min), fmt(s.max))
  end
  w("# hpass benchmark results")
  w("")
  w("Generated by `bench/run.sh` (`make bench`) on ", os.date("!%Y-%m-%d %H:%M UTC"),
    ". Every number below was measured in that one run; medians, with")
  w("min–max over ", rounds, " rounds (", rounds * 9, " for spawn at ", heaps[1],
    " MiB) in brackets. Absolute times depend on the")
  w("machine (on this VM a system call costs about 1 µs); compare ratios.")
  w("")
  w("| machine | |")
  w("|---|---|")
  for _, kv in ipairs(mach) do w("| ", kv[1], " | ", kv[2], " |") end
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
    for _, h in ipairs(heaps) do
      line = line .. " " .. mdcell("spawn/" .. im[1] .. "/" .. h) .. " |"
    end
    w(line)
  end
  w("")
  -- one table of implementations: a heading, its unit, their rows
  local function mdsection(title, unit, impls, prefix)
    w("## ", title)
    w("")
    w("| | ", unit, " |")
    w("|---|---|")
    for _, im in ipairs(impls) do
      w("| ", im[2], " | ", mdcell(prefix .. im[1]), " |")
    end
    w("")
  end
  mdsection(n .. " native 4-byte ints, parent → child, ns per int", "ns per int",
            int_impls, "ints/")
  mdsection(n .. " write+read pairs in one process, ns per pair", "ns per pair",
            pair_impls, "pairs/")
  mdsection("A child's " .. capmib .. " MiB of output into one Lua string, ms", "ms",
            capture_impls, "capture/")
  w("## Memory, kB (VmHWM, peak resident set)")
  w("")
  w("| | kB |")
  w("|---|---|")
  for _, r in ipairs(mem_rows) do w("| ", r[2], " | ", mdcell(r[1]), " |") end
  w("")
  w("## Targets")
  w("")
  if busy then
    w("**Other work was running during this run (see the load lines above);")
    w("the timings are noisy.**")
    w("")
  end
  w("| | target | measured | limit | |")
  w("|---|---|---|---|---|")
  for _, t in ipairs(targets) do
    w("| ", t.id, " | ", t.what, " | ", fmt(t.value), " | ",
      t.op == "<=" and "≤ " or "≥ ", fmt(t.limit), " | ", t.verdict,
      t.value == nil and t.why and (" (" .. t.why .. ")") or "", " |")
  end
  w("")
  w("Reference ratios (what this machine allows; not targets):")
  w("")
  for _, r in ipairs(refs) do w("- ", r.what, ": ", fmt(r.value)) end
  if #skipped_order > 0 then
    w("")
    w("Skipped: ")
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
  for _, h in ipairs(heaps) do
    local row = {tostring(h)}
    for _, im in ipairs(spawn_impls) do
      local v = median("spawn/" .. im[1] .. "/" .. h)
      row[#row + 1] = v and string.format("%.1f", v) or "?"
    end
    f:write(table.concat(row, " "), "\n")
  end
  f:close()
end
-- }}}

os.exit(0)
