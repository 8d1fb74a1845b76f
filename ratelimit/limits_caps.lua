-- The rate limits, then the caps of the invoices they let through, in one call (ratelimit/together.py): where
-- one Redis holds every key of both, a single-invoice upload is admitted in one round trip instead of two.
-- limits.lua and caps.lua come before this, each wrapped as a function of its own KEYS and ARGV (``limits`` and
-- ``caps``), so each runs exactly as it does when called alone.
--
-- KEYS     limits.lua's keys, then caps.lua's
-- ARGV[1]  how many of KEYS are limits.lua's;  ARGV[2]  how many arguments follow that are limits.lua's
-- ARGV[3..] limits.lua's arguments, then caps.lua's (none when the request has no invoice going on): caps.lua's
--          five fixed ones, its per-invoice indices (2 bytes each), then a seller and a key per invoice, for
--          every invoice that limits.lua limits, in the same order
--
-- Returns {limits.lua's answer, caps.lua's answer for the invoices the limits let through, in order (an empty
-- table when none is, or the request is refused whole)}.

local nk, na = tonumber(ARGV[1]), tonumber(ARGV[2])
local lk, la = {}, {}
for i = 1, nk do lk[i] = KEYS[i] end
for i = 1, na do la[i] = ARGV[i + 2] end
local limited = limits(lk, la)
local first = na + 3  -- caps.lua's first argument
if limited[1] ~= 0 or ARGV[first] == nil then
  return {limited, {}}
end
local ck, ca = {}, {}
for i = nk + 1, #KEYS do ck[#ck + 1] = KEYS[i] end
for i = 0, 4 do ca[i + 1] = ARGV[first + i] end
local idx, kept, sub = ARGV[first + 5], {}, string.sub
ca[6] = ""
for j = 1, #limited - 3 do
  if limited[3 + j] == 0 then
    kept[#kept + 1] = sub(idx, 2 * j - 1, 2 * j)
    local at = first + 6 + 2 * (j - 1)
    ca[#ca + 1] = ARGV[at]
    ca[#ca + 1] = ARGV[at + 1]
  end
end
if #kept == 0 then
  return {limited, {}}
end
ca[6] = table.concat(kept)
return {limited, caps(ck, ca)}
