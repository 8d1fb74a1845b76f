-- The request's nonce and its rate limits, all in one call (GCRA: one stored "theoretical arrival time" per
-- limit). The nonce shares the channel's hash tag, so the replay guard costs no round trip of its own.
--
-- KEYS[1]  the request's nonce                       "{rl:<channel>}:nonce:<X-Nonce>"
-- KEYS[2]  the channel's states                      "{rl:<channel>}:ch"
-- KEYS[3..] user and device states, each named once  "{rl:<channel>}:u2:<user ref>", "{rl:<channel>}:d2:<device ref>"
--          (a state holds two arrival times in ms as two big-endian doubles, 16 bytes: the channel's request and
--          invoice rates; a user's or a device's per minute and per day)
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
-- Every state is read by one MGET and written by one SET with its expiry; the nonce is spent by one SET NX GET.
--
-- Numbers go to redis.call as strings made here (string.format "%d"; the states are packed with struct): a
-- Lua number handed to redis.call is printed with "%.17g" (printf was a sixth of this script's instructions).
--
-- Returns {-1} when the nonce was already spent by another request (a replay: nothing is consumed), else
-- {channel_wait_ms, remaining, reset_ms, wait_1, wait_2, ...}: channel_wait_ms > 0 refuses the whole
-- request (nothing else follows; the nonce stays spent); otherwise remaining and reset_ms describe the channel's request burst, and
-- wait_i is 0 for an invoice let through, else the ms until it would be.

local call = redis.call
local spent = call("SET", KEYS[1], ARGV[14], "NX", "EX", ARGV[15], "GET")
if spent and spent ~= ARGV[14] then
  return {-1}
end

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

-- Every state, read once; a missing one is two zeros.
local raw = call("MGET", unpack(KEYS, 2, #KEYS))
local states = {}
for i = 2, #KEYS do
  local v = raw[i - 1]
  local a, b = 0, 0
  if v then a, b = sunpack(">d>d", v) end
  states[i] = {a, b, false}
end

-- Write a state whose times moved, to expire once both arrival times are past (it is as good as empty then).
local function save(i, state)
  call("SET", KEYS[i], spack(">d>d", state[1], state[2]), "PX", fmt("%d", max(ceil(max(state[1], state[2]) - now), 1)))
end

local channel = states[2]
local req_wait, new_req = gcra(channel[1], A[1], A[2], 1)
local inv_wait, new_inv = gcra(channel[2], A[3], A[4], tonumber(ARGV[13]))
if req_wait > 0 or inv_wait > 0 then
  return {max(req_wait, inv_wait, 1)}
end
channel[1], channel[2] = new_req, new_inv
save(2, channel)
-- What is left of the channel's request burst, and when it is whole again (for the RateLimit header).
local remaining = math.floor((A[2] + A[1] - (new_req - now)) / A[1])

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
for i = 3, #KEYS do
  if states[i][3] then save(i, states[i]) end
end
return result
