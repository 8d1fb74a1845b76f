-- Reserve campaign-cap slots for invoices, per person, atomically (one call per cap shard).
--
-- KEYS[i]  person-month hashes "{cNN}:cap:<person>:<yyyymm>", each named once; fields:
--            "m"           invoices of the person this month
--            "d<dd>"       invoices of the person on day dd
--            "s<seller>"   invoices of the person from that seller this month
--            "i<key>"      the reservation of one invoice: "<dd>|<seller>"
-- ARGV[1]  cap per day, ARGV[2] cap per month, ARGV[3] cap per seller per month
-- ARGV[4]  time to live of a person-month hash, seconds (a little over a month)
-- ARGV[5..] triples per invoice, in order: index into KEYS, day "dd", "<seller>|<invoice key>"
--
-- Returns one value per invoice: "new" (reserved now), "held" (this invoice already holds a slot for this
-- person: no second slot), or the cap that refuses it: "person_daily_cap", "person_monthly_cap",
-- "seller_person_monthly_cap". Atomic: concurrent requests for one person cannot exceed a cap together.

local call = redis.call
local cap_day, cap_month, cap_seller = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl = tonumber(ARGV[4])
local results, touched = {}, {}
for a = 5, #ARGV, 3 do
  local key = KEYS[tonumber(ARGV[a])]
  local day = "d" .. ARGV[a + 1]
  local bar = string.find(ARGV[a + 2], "|", 1, true)
  local seller = "s" .. string.sub(ARGV[a + 2], 1, bar - 1)
  local invoice = "i" .. string.sub(ARGV[a + 2], bar + 1)
  local v = call("HMGET", key, invoice, "m", day, seller)
  local month_n, day_n, seller_n = tonumber(v[2]) or 0, tonumber(v[3]) or 0, tonumber(v[4]) or 0
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
    call("HSET", key, "m", month_n + 1, day, day_n + 1, seller, seller_n + 1,
         invoice, ARGV[a + 1] .. "|" .. string.sub(seller, 2))
    touched[key] = true
    answer = "new"
  end
  results[#results + 1] = answer
end
for key in pairs(touched) do call("EXPIRE", key, ttl) end
return results
