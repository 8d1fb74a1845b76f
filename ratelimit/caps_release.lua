-- Give back the cap slots of invoices that do not count: a duplicate of another person's upload, or (when
-- the campaign says so) an invoice found ineligible. Idempotent: a slot is given back once.
--
-- KEYS[i]  person-month hashes, as in caps.lua
-- ARGV[..] pairs: index into KEYS, invoice key
--
-- Returns how many slots were given back.

local call = redis.call
local released = 0
for a = 1, #ARGV, 2 do
  local key = KEYS[tonumber(ARGV[a])]
  local invoice = "i" .. ARGV[a + 1]
  local held = call("HGET", key, invoice)
  if held then
    local bar = string.find(held, "|", 1, true)
    call("HINCRBY", key, "m", -1)
    call("HINCRBY", key, "d" .. string.sub(held, 1, bar - 1), -1)
    call("HINCRBY", key, "s" .. string.sub(held, bar + 1), -1)
    call("HDEL", key, invoice)
    released = released + 1
  end
end
return released
