-- The verified-answer cache (workers/verify.py Cache.put): each of KEYS set to the ARGV after the first, in order,
-- expiring ARGV[1] seconds from now. A few calls a batch and shard (workers/verify.py PUT_CHUNK keys each): one SET a
-- key through redis-py's pipeline cost the worker 40 µs of CPU an invoice (benchmarks/cache_put_cost.py), all of
-- it before the pipeline's first await.
local ttl = ARGV[1]
for i, key in ipairs(KEYS) do
    redis.call('SET', key, ARGV[i + 1], 'EX', ttl)
end
return #KEYS
