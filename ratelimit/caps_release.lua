-- Give back the cap slots of invoices that do not count: a duplicate of another person's upload, or (when
-- the campaign says so) an invoice found ineligible. Idempotent: a slot is given back once.
--
-- KEYS[i]  person-month hashes, as in caps.lua (with their long names after them when ARGV[1] is "1")
-- ARGV[1]  "1" while a month of these hashes may have hashes of the name before issue 19, as in caps.lua
-- ARGV[2..] pairs: index into KEYS, invoice key
--
-- Returns how many slots were given back.

local call = redis.call
local long_from = ARGV[1] == "1" and #KEYS / 2 or nil
local looked = {}
local released = 0
for a = 2, #ARGV, 2 do
  local k = tonumber(ARGV[a])
  local key = KEYS[k]
  local invoice = "i" .. ARGV[a + 1]
  local held = call("HGET", key, invoice)
  if not held and long_from and not looked[k] then
    -- Not held under the short name: a hash of the long name, if the short one is not there yet, is moved.
    looked[k] = true
    if call("EXISTS", key) == 0 and call("EXISTS", KEYS[long_from + k]) == 1 then
      call("RENAME", KEYS[long_from + k], key)
      held = call("HGET", key, invoice)
    end
  end
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
