-- The tax service's rate, shared by every worker process: reserve ARGV[2] call slots, ARGV[1] µs apart.
-- KEYS[1]: the next free start time (µs since the epoch, Redis TIME as the clock).
-- Returns how many µs from now the first reserved slot starts; the others follow one interval apart.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, slots = tonumber(ARGV[1]), tonumber(ARGV[2])
local at = tonumber(redis.call('GET', KEYS[1]) or '0')
if at < now then at = now end
local after = at + interval * slots
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', math.ceil((after - now) / 1000) + 1000)
return math.floor(at - now)
