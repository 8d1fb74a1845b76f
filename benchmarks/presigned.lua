-- wrk script: sends pre-signed requests from a file, each once, and counts statuses and accepted invoices.
--
--   [WRK_RATE=R] wrk -t1 -cC -dDs -s benchmarks/presigned.lua URL -- FILE
--
-- FILE holds complete HTTP/1.1 requests separated by a NUL byte (benchmarks/presign.py writes it): every
-- request has its own nonce, so none may be sent twice (a replay is a 401). WRK_RATE in the environment, when
-- given, holds the offered rate to that many requests/s: each request waits for the next free slot of a
-- schedule shared by the thread's connections (use -t1, and enough connections to cover the latency). wrk
-- looks for delay() when it loads the script, before init() sees the args: hence the environment.
-- done() prints one JSON line: requests, statuses, accepted invoices, latency percentiles (µs), and
-- "wrapped" (how many requests were sent beyond the end of the file: the run is void if it is not 0).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  reqs = {}
  local pos = 1
  while true do
    local nul = string.find(data, "\0", pos, true)
    if not nul then break end
    reqs[#reqs + 1] = string.sub(data, pos, nul - 1)
    pos = nul + 1
  end
  idx, wrapped, accepted = 0, 0, 0
  statuses = {}
end

function request()
  if not reqs then -- wrk calls request() once on its main state to check the script, before any init()
    return wrk.format("POST", "/v1/invoices")
  end
  idx = idx + 1
  if idx > #reqs then
    wrapped = wrapped + 1
    idx = 1
  end
  return reqs[idx]
end

local rate = tonumber(os.getenv("WRK_RATE") or "0")
if rate > 0 then
  local ffi = require("ffi")
  ffi.cdef([[
    typedef struct { long tv_sec; long tv_usec; } timeval_t;
    int gettimeofday(timeval_t *tv, void *tz);
  ]])
  local tv = ffi.new("timeval_t")
  local function now_ms()
    ffi.C.gettimeofday(tv, nil)
    return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000
  end
  local interval, next_slot = 1000 / rate, 0
  function delay()
    local now = now_ms()
    local slot = math.max(next_slot, now)
    next_slot = slot + interval
    return math.floor(slot - now)
  end
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 202 then
    local _, n = string.gsub(body, '"status":"accepted"', "")
    accepted = accepted + n
  end
end

function done(summary, latency, requests)
  local total_accepted, total_wrapped, merged = 0, 0, {}
  for _, t in ipairs(threads) do
    total_accepted = total_accepted + t:get("accepted")
    total_wrapped = total_wrapped + t:get("wrapped")
    for s, n in pairs(t:get("statuses")) do
      merged[s] = (merged[s] or 0) + n
    end
  end
  local parts = {}
  for s, n in pairs(merged) do
    parts[#parts + 1] = string.format('"%d": %d', s, n)
  end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": %d, "accepted": %d, "wrapped": %d, "statuses": {%s},'
      .. ' "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    total_accepted, total_wrapped, table.concat(parts, ", "),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
