-- Set the filter bits of keys already known (the rebuild from PostgreSQL); no claim, no stream entry.
-- (bloom_lib.lua is prepended.)
--
-- KEYS[1]  the shard's filter meta hash (k, sizes)
-- KEYS[2..] the shard's filter bitmaps, one per generation, oldest first
-- ARGV[1]  digests, 20 bytes per key (core/shards.py)
-- ARGV[2]  optional "test": only count, set nothing (to measure the false-positive rate)
--
-- Returns how many keys were not in the filter yet (their bits are set now, in the newest generation).
-- Idempotent: setting a bit twice changes nothing.

local k, sizes = filter_layout(KEYS[1])
local digests, only_test = ARGV[1], ARGV[2] == "test"
local added = 0
for d = 1, #digests, 20 do
  if not seen_or_set(digests, d, k, sizes, 2, only_test) then added = added + 1 end
end
if added > 0 and #sizes > 0 and not only_test then call("HINCRBY", KEYS[1], "n:" .. #sizes, added) end
return added
