-- Leave the claims of an upload answered 503, because its replicas did not acknowledge them in time, for the
-- channel's retry to find as its own (dedup/claim_enqueue.lua answers that retry "accepted"). One call per shard.
--
-- KEYS[1]  the shard's in-flight hash
-- KEYS[2]  the shard's unacked hash: invoice key -> claim
-- ARGV[1]  the upload's claim prefix "<channel>|<accepted_at_ms>|<request id>|"
-- ARGV[2]  how long the unacked hash is kept after its last mark, seconds
-- ARGV[3..] the invoice keys the upload sent to this shard
--
-- Returns how many claims were left for the retry: those of this upload (a key another upload claimed keeps
-- that upload's claim, and a key this upload took back keeps its mark).

local prefix, marked = ARGV[1], 0
for i = 3, #ARGV do
  local claim = redis.call("HGET", KEYS[1], ARGV[i])
  if claim and string.sub(claim, 1, #prefix) == prefix then
    redis.call("HSET", KEYS[2], ARGV[i], claim)
    marked = marked + 1
  end
end
if marked > 0 then redis.call("EXPIRE", KEYS[2], ARGV[2]) end
return marked
