-- Take the due items of a shard's re-check set under a lease.
--
-- KEYS[1]  the shard's re-check sorted set: member = an item (tries + packed invoice), score = due time, ms
-- ARGV[1]  now, ms; ARGV[2] lease, ms; ARGV[3] at most this many items
--
-- Returns the items whose due time has come, after moving each one's due time to now + lease: a worker that
-- dies before committing them loses nothing (they come due again when the lease ends), and two workers do
-- not take the same item while a lease runs. The taker removes an item (ZREM) once it is committed.

local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "LIMIT", 0, tonumber(ARGV[3]))
local until_ms = tonumber(ARGV[1]) + tonumber(ARGV[2])
for _, member in ipairs(due) do
  redis.call("ZADD", KEYS[1], "XX", until_ms, member)
end
return due
