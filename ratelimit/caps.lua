-- Reserve campaign-cap slots for invoices, per person, atomically (one call per cap shard).
--
-- KEYS[i]  person-month hashes "{cNN}:cap:<person's first 24 hex digits>:<yyyymm>" (in the compact form,
--          "{cNN}:cap:<yymm><those 96 bits in base64>": core/keys.py cap), each named once; fields:
--            "m"           invoices of the person this month
--            "d<dd>"       invoices of the person on day dd
--            "s<seller>"   invoices of the person from that seller this month
--            "i<key>"      the reservation of one invoice: "<dd>|<seller>"
--          where <seller> is as ARGV gives it: the tax id, or in the compact form 6 bytes of its digest
--          (ratelimit/caps.py): this script and caps_release.lua read both forms alike
-- ARGV[1]  cap per day, ARGV[2] cap per month, ARGV[3] cap per seller per month
-- ARGV[4]  time to live of a person-month hash, seconds (a little over a month), set when the hash is new
-- ARGV[5]  the day "dd" the invoices count in (a request's invoices share their upload time)
-- ARGV[6]  per invoice, in order, its index into KEYS as 2 bytes (big-endian): one argument for the request
-- ARGV[7]  "1" while a month of these hashes may have hashes of the name before issue 19 (the whole person):
--          KEYS then names each hash twice, short names first, long ones after in the same order, and a hash
--          found only under its long name is renamed when first met (ratelimit/caps.py); "0" otherwise
-- ARGV[8..] pairs per invoice, in order: seller (tax id or digest), invoice key
--
-- Returns one value per invoice: "new" (reserved now), "held" (this invoice already holds a slot for this
-- person: no second slot), or the cap that refuses it: "person_daily_cap", "person_monthly_cap",
-- "seller_person_monthly_cap". Atomic: concurrent requests for one person cannot exceed a cap together.

-- Counts go to Redis as strings and come back through tables, not as Lua numbers: a number handed to
-- redis.call is printed with "%.17g", and the per-invoice indices travel as bytes; together about a quarter
-- of this script's instructions before.
local call = redis.call
local cap_day, cap_month, cap_seller = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl = ARGV[4]
local dd = ARGV[5]
local day = "d" .. dd
-- Counts as the strings Redis stores and back, each worked out once per call (not made up front: a
-- single-invoice call needs two or three of them).
local NUM, VAL = {}, {}
local function count(v)
  if not v then return 0 end
  local n = VAL[v]
  if not n then
    n = tonumber(v)
    VAL[v] = n
  end
  return n
end
local function text(n)
  local s = NUM[n]
  if not s then
    s = string.format("%d", n)
    NUM[n] = s
  end
  return s
end
-- A hash without "m" does not exist (a hash is made with it, and a slot given back leaves it at 0): only then,
-- and once a call, is a hash of the long name looked for (ARGV[7]).
local long_from = ARGV[7] == "1" and #KEYS / 2 or nil
local looked = {}
local results = {}
local idx, byte = ARGV[6], string.byte
for a = 8, #ARGV, 2 do
  local j = a - 7
  local hi, lo = byte(idx, j, j + 1)
  local k = hi * 256 + lo
  local key = KEYS[k]
  local seller = ARGV[a]
  local s = "s" .. seller
  local invoice = "i" .. ARGV[a + 1]
  local v = call("HMGET", key, invoice, "m", day, s)
  if long_from and not v[2] and not looked[k] then
    looked[k] = true
    if call("EXISTS", KEYS[long_from + k]) == 1 then
      call("RENAME", KEYS[long_from + k], key)
      v = call("HMGET", key, invoice, "m", day, s)
    end
  end
  local month_n, day_n, seller_n = count(v[2]), count(v[3]), count(v[4])
  local answer
  if v[1] then
    answer = "held"
  elseif day_n >= cap_day then
    answer = "person_daily_cap"
  elseif month_n >= cap_month then
    answer = "person_monthly_cap"
  elseif seller_n >= cap_seller then
    answer = "seller_person_monthly_cap"
  else
    call("HSET", key, "m", text(month_n + 1), day, text(day_n + 1), s, text(seller_n + 1), invoice, dd .. "|" .. seller)
    if month_n == 0 then call("EXPIRE", key, ttl) end
    answer = "new"
  end
  results[#results + 1] = answer
end
return results
