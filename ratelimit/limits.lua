-- The request's nonce and its rate limits, all in one call (GCRA: one stored "theoretical arrival time" per
-- limit). The nonce shares the channel's hash tag, so the replay guard costs no round trip of its own.
--
-- KEYS[1]  the channel's request-rate state          "{rl:<channel>}:req"
-- KEYS[2]  the channel's invoice-rate state          "{rl:<channel>}:inv"
-- KEYS[3]  the request's nonce                       "{rl:<channel>}:nonce:<X-Nonce>"
-- KEYS[4..] user and device states, each named once  "{rl:<channel>}:u2:<user ref>", "{rl:<channel>}:d2:<device ref>"
--          (a state holds two arrival times in ms, per minute and per day, as two big-endian doubles: 16 bytes)
-- ARGV[1..4]  channel: request interval ms, request tolerance ms, invoice interval ms, invoice tolerance ms
-- ARGV[5..8]  user:   per-minute interval ms, tolerance ms, per-day interval ms, tolerance ms
-- ARGV[9..12] device: the same
-- ARGV[13]    invoices in the request (the cost of the channel's invoice rate)
-- ARGV[14]    this request's token for the nonce (a retried call finds its own token: not a replay)
-- ARGV[15]    seconds the nonce stays spent
-- ARGV[16]    per invoice to limit, in order, the index into KEYS of its user and of its device, each as 2 bytes
--             (big-endian): one argument for the whole request, read with string.byte
--
-- GCRA: a limit of rate r and burst b has interval T = 1/r and tolerance tau = (b - 1) * T; a cost of n
-- conforms when max(tat, now) + n*T - now <= tau + T; conforming moves tat there. The clock is Redis TIME, so
-- gateways with skewed clocks agree. Nothing is consumed by a request the channel limits refuse.
--
-- Numbers go to redis.call as strings made here (string.format "%d"; the states are packed with struct): a
-- Lua number handed to redis.call is printed with "%.17g" (printf was a sixth of this script's instructions).
--
-- Returns {-1} when the nonce was already spent by another request (a replay: nothing is consumed), else
-- {channel_wait_ms, remaining, reset_ms, wait_1, wait_2, ...}: channel_wait_ms > 0 refuses the whole
-- request (nothing else follows; the nonce stays spent); otherwise remaining and reset_ms describe the channel's request burst, and
-- wait_i is 0 for an invoice let through, else the ms until it would be.

local call = redis.call
local spent = call("GET", KEYS[3])
if spent and spent ~= ARGV[14] then
  return {-1}
end
call("SET", KEYS[3], ARGV[14], "EX", ARGV[15])

local t = call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local A = {}
for i = 1, 12 do A[i] = tonumber(ARGV[i]) end
local max, ceil, fmt = math.max, math.ceil, string.format
local spack, sunpack = struct.pack, struct.unpack

-- The wait (ms) before cost n conforms, and the new tat if it conforms now.
local function gcra(tat, interval, tolerance, n)
  local base = max(tat, now)
  local new_tat = base + n * interval
  local wait = new_tat - now - tolerance - interval
  -- 0.01 ms of slack: the doubles' rounding at today's clock (ratelimit/limits.py, GCRA_SLACK_MS)
  if wait > 0.01 then return ceil(wait), tat end
  return 0, new_tat
end

local req_tat = tonumber(call("GET", KEYS[1])) or 0
local inv_tat = tonumber(call("GET", KEYS[2])) or 0
local req_wait, new_req = gcra(req_tat, A[1], A[2], 1)
local inv_wait, new_inv = gcra(inv_tat, A[3], A[4], tonumber(ARGV[13]))
if req_wait > 0 or inv_wait > 0 then
  return {max(req_wait, inv_wait, 1)}
end
call("SET", KEYS[1], fmt("%.17g", new_req), "PX", fmt("%d", max(ceil(new_req - now), 1)))
call("SET", KEYS[2], fmt("%.17g", new_inv), "PX", fmt("%d", max(ceil(new_inv - now), 1)))
-- What is left of the channel's request burst, and when it is whole again (for the RateLimit header).
local remaining = math.floor((A[2] + A[1] - (new_req - now)) / A[1])

-- Per-entity states, read once, updated in a table, written once each.
local states = {}
local n = #KEYS
if n > 3 then
  local raw = call("MGET", unpack(KEYS, 4, n))
  for i = 4, n do
    local v = raw[i - 3]
    local m, d = 0, 0
    if v then m, d = sunpack(">d>d", v) end
    states[i] = {m, d, false}
  end
end

local result = {0, remaining, max(ceil(new_req - now), 0)}
local u1, u2, u3, u4, d1, d2, d3, d4 = A[5], A[6], A[7], A[8], A[9], A[10], A[11], A[12]
local pairs_of, byte = ARGV[16] or "", string.byte
for j = 1, #pairs_of, 4 do
  local hu, lu, hd, ld = byte(pairs_of, j, j + 3)
  local u, dv = states[hu * 256 + lu], states[hd * 256 + ld]
  local w1, um = gcra(u[1], u1, u2, 1)
  local w2, ud = gcra(u[2], u3, u4, 1)
  local w3, dm = gcra(dv[1], d1, d2, 1)
  local w4, dd = gcra(dv[2], d3, d4, 1)
  local wait = max(w1, w2, w3, w4)
  if wait == 0 then
    u[1], u[2], u[3] = um, ud, true
    dv[1], dv[2], dv[3] = dm, dd, true
  end
  result[#result + 1] = wait
end
for i, state in pairs(states) do
  if state[3] then
    -- Once both arrival times are past, the state is as good as empty: let it expire then.
    call("SET", KEYS[i], spack(">d>d", state[1], state[2]), "PX", fmt("%d", max(ceil(max(state[1], state[2]) - now), 1)))
  end
end
return result
