-- An upload's admission and claim in one call (gateway/together.py): the nonce and rate limits, then the caps of
-- the invoices the limits let through, then, when every invoice got through both, their claim and enqueue.
-- limits.lua, caps.lua and claim_enqueue.lua (with bloom_lib.lua) come before this, each wrapped as a function of
-- its own KEYS and ARGV (``limits``, ``caps``, ``claim``), so each runs exactly as it does when called alone.
--
-- KEYS     limits.lua's keys, then caps.lua's, then claim_enqueue.lua's
-- ARGV[1..3]  how many of KEYS are limits.lua's, caps.lua's, claim_enqueue.lua's
-- ARGV[4..5]  how many of the arguments that follow are limits.lua's, caps.lua's (the rest are the claim's)
-- ARGV[6..]   limits.lua's arguments, then caps.lua's (none when the request has no invoice going on): its five
--             fixed ones, its per-invoice indices (2 bytes each), its flag of long names (caps.lua's ARGV[7]),
--             then a seller and a key per invoice, for every invoice that limits.lua limits, in the same order;
--             then claim_enqueue.lua's (none: no claim here)
--
-- Returns {limits.lua's answer, caps.lua's answer for the invoices the limits let through, in order (an empty
-- table when none is, or the request is refused whole), claim_enqueue.lua's answer or false (nothing claimed:
-- an invoice was refused by the limits or the caps, or no claim was asked)}.

local nk, nc, nq = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local na, nca = tonumber(ARGV[4]), tonumber(ARGV[5])
local function slice(t, from, count)
  local out = {}
  for i = 1, count do out[i] = t[from + i - 1] end
  return out
end
local limited = limits(slice(KEYS, 1, nk), slice(ARGV, 6, na))
local first = 6 + na  -- caps.lua's first argument
if limited[1] ~= 0 or nca == 0 then
  return {limited, {}, false}
end
local ca = slice(ARGV, first, 5)
local idx, kept, sub = ARGV[first + 5], {}, string.sub
ca[6] = ""
ca[7] = ARGV[first + 6]
local waits = #limited - 3
for j = 1, waits do
  if limited[3 + j] == 0 then
    kept[#kept + 1] = sub(idx, 2 * j - 1, 2 * j)
    local at = first + 7 + 2 * (j - 1)
    ca[#ca + 1] = ARGV[at]
    ca[#ca + 1] = ARGV[at + 1]
  end
end
if #kept == 0 then
  return {limited, {}, false}
end
ca[6] = table.concat(kept)
local reserved = caps(slice(KEYS, nk + 1, nc), ca)
local claimed = false
if nq > 0 and #kept == waits then
  local all = true
  for _, answer in ipairs(reserved) do
    if answer ~= "new" and answer ~= "held" then all = false end
  end
  if all then
    claimed = claim(slice(KEYS, nk + nc + 1, nq), slice(ARGV, first + nca, #ARGV - first - nca + 1))
  end
end
return {limited, reserved, claimed}
