-- Claim invoice keys and enqueue the newly claimed ones, in one atomic step.
--
-- KEYS[1]  claims hash: invoice key -> "<channel>|<accepted_at_ms>|<request id>" of the accepted upload
-- KEYS[2]  intake stream
-- ARGV[1]  channel of the request
-- ARGV[2]  accepted-at time, Unix ms
-- ARGV[3]  request id (unique per request: a retried call recognises its own claims)
-- ARGV[4..] pairs: invoice key, packed invoice (what the workers decode)
--
-- Returns one value per pair, in order: "" when the key was new (claimed now and enqueued), else the claim
-- of the earlier upload. A key twice in one request is new once, then a duplicate of itself.
--
-- Idempotent: when a client retries the call after a lost answer, every key whose claim is this request's
-- is answered "" again and nothing is written twice (the first run, being atomic, did it all).
--
-- Atomicity: a script runs alone and its writes reach the AOF together, so a claim and its stream entry
-- survive or vanish together. Duplicates uploaded by another channel ride in the same entry (field
-- "~<key>") so that the workers record them. Nothing is written when no key is new or duplicated elsewhere.

local channel = ARGV[1]
local claim = channel .. "|" .. ARGV[2] .. "|" .. ARGV[3]
local results = {}
local seen = {}
local fields = {"~request", ARGV[3], "~channel", channel, "~at", ARGV[2]}
local added = 0
for i = 4, #ARGV, 2 do
  local key = ARGV[i]
  if redis.call("HSETNX", KEYS[1], key, claim) == 1 then
    results[#results + 1] = ""
    seen[key] = true
    fields[#fields + 1] = key
    fields[#fields + 1] = ARGV[i + 1]
    added = added + 1
  else
    local owner = redis.call("HGET", KEYS[1], key)
    if owner == claim and not seen[key] then
      -- A retry of this very request: its first run claimed and enqueued the key.
      results[#results + 1] = ""
      seen[key] = true
    else
      results[#results + 1] = owner
      if string.sub(owner, 1, #channel + 1) ~= channel .. "|" then
        fields[#fields + 1] = "~" .. key
        fields[#fields + 1] = ""
        added = added + 1
      end
    end
  end
end
if added > 0 then
  redis.call("XADD", KEYS[2], "*", unpack(fields))
end
return results
