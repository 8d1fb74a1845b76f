-- Deduplicate invoice keys of one intake shard and enqueue the new ones, in one atomic step.
-- (bloom_lib.lua is prepended.)
--
-- KEYS[1]  the shard's in-flight hash: invoice key -> "<channel>|<accepted_at_ms>|<request id>|<person tag>"
-- KEYS[2]  the shard's intake stream
-- KEYS[3]  the shard's filter meta hash: k, sizes (blocks per generation, oldest first), ready, n:<generation>
-- KEYS[4]  the shard's duplicates hash: "<channel>|<invoice key>" -> upload time (ms), for another channel's key
--          in flight (the status route reads it until the workers have recorded the duplicate)
-- KEYS[5..] the shard's filter bitmaps, one per generation, oldest first (as many as "sizes" lists)
-- ARGV[1]  channel of the request
-- ARGV[2]  accepted-at time, Unix ms
-- ARGV[3]  request id (unique per request: a retried call recognises its own claims)
-- ARGV[4]  mode: "check" (normal) or "force" (keys the caller proved new: false positives of the filter)
-- ARGV[5]  digests, 20 bytes per invoice in order (core/shards.py)
-- ARGV[6..] triples: invoice key, packed invoice (what the workers decode), person tag; no key twice in one call
--
-- Returns one value per pair, in order:
--   ""      new: claimed, its filter bits set, enqueued
--   "?"     (check mode only) the filter has seen it but it is not in flight: the caller must look in
--           PostgreSQL, then either report a duplicate or call again in force mode
--   other   the in-flight claim of the upload that got there first: a duplicate
--
-- Test-and-set is atomic (a script runs alone), so two concurrent uploads of one key cannot both be new, and
-- a claim, its filter bits and its stream entry reach the AOF together. Idempotent: a retried call finds its
-- own claims and answers "" again without writing twice. While the filter is not ready (lost, or being
-- rebuilt) every key is checked exactly, and filter bits are still set. Duplicates uploaded by another
-- channel ride in the stream entry (field "~<key>") so that the workers record them, and are noted in KEYS[4]
-- meanwhile.

local channel, force, digests = ARGV[1], ARGV[4] == "force", ARGV[5]
local prefix = channel .. "|" .. ARGV[2] .. "|" .. ARGV[3] .. "|"
local k, sizes, ready_flag = filter_layout(KEYS[3])
local ngen = #sizes
local ready = ready_flag and ngen > 0 and k > 0

local results, claims = {}, {}
local fields = {"~request", ARGV[3], "~channel", channel, "~at", ARGV[2]}
local new, dups = 0, 0
for i = 6, #ARGV, 3 do
  local key = ARGV[i]
  local claim = prefix .. ARGV[i + 2]
  local d = (i - 6) / 3 * 20 + 1
  local answer = ""
  local bits_seen = seen_or_set(digests, d, k, sizes, 5)
  if bits_seen or force or not ready then
    local owner = call("HGET", KEYS[1], key)
    if owner == claim then
      answer = "mine"  -- a retry of this very request: its first run did everything
    elseif owner then
      answer = owner
    elseif not force then
      answer = "?"
    end
  end
  if answer == "" then
    claims[#claims + 1] = key
    claims[#claims + 1] = claim
    fields[#fields + 1] = key
    fields[#fields + 1] = ARGV[i + 1]
    new = new + 1
  elseif answer == "mine" then
    answer = ""
  elseif answer ~= "?" and string.sub(answer, 1, #channel + 1) ~= channel .. "|" then
    fields[#fields + 1] = "~" .. key
    fields[#fields + 1] = ""
    dups = dups + 1
    call("HSETNX", KEYS[4], channel .. "|" .. key, ARGV[2])
  end
  results[#results + 1] = answer
end
if new > 0 then
  call("HSET", KEYS[1], unpack(claims))
  if ngen > 0 then call("HINCRBY", KEYS[3], "n:" .. ngen, new) end
end
if new + dups > 0 then
  call("XADD", KEYS[2], "*", unpack(fields))
end
return results
