-- Deduplicate invoice keys of one intake shard and enqueue the new ones, in one atomic step.
-- (bloom_lib.lua is prepended.)
--
-- KEYS[1]  the shard's in-flight hash: invoice key -> "<channel>|<accepted_at_ms>|<request id>|<person tag>"
-- KEYS[2]  the shard's intake stream
-- KEYS[3]  the shard's filter meta hash: k, sizes (blocks per generation, oldest first), ready, n:<generation>
-- KEYS[4]  the shard's duplicates hash: "<channel>|<invoice key>" -> upload time (ms), for another channel's key
--          in flight (the status route reads it until the workers have recorded the duplicate)
-- KEYS[5]  the shard's unacked hash: invoice key -> the claim of an upload answered 503 because replicas did
--          not acknowledge it in time (dedup/claim.py marks them): the same channel's retry takes it as its own
-- KEYS[6..] the shard's filter bitmaps, one per generation, oldest first (as many as "sizes" lists)
-- ARGV[1]  channel of the request
-- ARGV[2]  accepted-at time, Unix ms
-- ARGV[3]  request id (unique per request: a retried call recognises its own claims)
-- ARGV[4]  mode: "check" (normal) or "force" (keys the caller proved new: false positives of the filter)
-- ARGV[5]  digests, 20 bytes per invoice in order (core/shards.py)
-- ARGV[6]  the request's tally decided before the claim (msgpack rows, core/contract.py), or "": on the first
--          shard's "check" call only
-- ARGV[7]  the industries of this call's invoices, in order (msgpack list), copied into the entry
-- ARGV[8..] triples: invoice key, packed invoice (what the workers decode), person tag; no key twice in one call
--
-- Returns one value per pair, in order:
--   ""      new: claimed, its filter bits set, enqueued
--   "?"     (check mode only) the filter has seen it but it is not in flight: the caller must look in
--           PostgreSQL, then either report a duplicate or call again in force mode
--   "+"..c  the channel's own earlier upload, claim c, answered 503 (not acknowledged by replicas): accepted
--           now, at c's time; it was enqueued then, and is not again
--   other   the in-flight claim of the upload that got there first: a duplicate
--
-- Test-and-set is atomic (a script runs alone), so two concurrent uploads of one key cannot both be new, and
-- a claim, its filter bits and its stream entry reach the AOF (and the replicas) together. Idempotent: a
-- retried call finds its own claims and answers "" again without enqueuing twice (a retry whose first run
-- claimed nothing writes its entry again: its tally part is the first's, which the workers count once). Every
-- call writes something, that retry too (one of its claims again), so that a WAIT after it covers what it
-- answers for. While the filter is not ready (lost, or being rebuilt) every key is checked exactly, and filter
-- bits are still set. Duplicates uploaded by another channel ride in the stream entry (field "~<key>") so that
-- the workers record them, and are noted in KEYS[4] meanwhile (HSETNX: a retried call notes nothing twice).
--
-- Every call adds one entry, which carries the call's outcomes for the daily reports (core/contract.py): one
-- character per invoice, "a" new, "d" a duplicate, "m" seen by the filter and not in flight (a duplicate unless
-- the force call that follows claims it), "r" the channel's own unacknowledged upload taken back (counted as a
-- duplicate: its first upload counted it as accepted); in force mode "A" new (no longer a duplicate), "D" and
-- "R" still one.

local channel, force, digests = ARGV[1], ARGV[4] == "force", ARGV[5]
local prefix = channel .. "|" .. ARGV[2] .. "|" .. ARGV[3] .. "|"
local k, sizes, ready_flag = filter_layout(KEYS[3])
local ngen = #sizes
local ready = ready_flag and ngen > 0 and k > 0
local unacked = call("EXISTS", KEYS[5]) == 1  -- rarely: a look per key only then
local own = channel .. "|"

-- The claim of the channel's own earlier upload that was answered 503 for want of replicas, if ``owner`` (the
-- key's claim in flight, or nil) is one.
local function left_for_retry(key, owner)
  if not unacked or (owner and string.sub(owner, 1, #own) ~= own) then return nil end
  local left = call("HGET", KEYS[5], key)
  if left and string.sub(left, 1, #own) == own and (not owner or owner == left) then return left end
  return nil
end

local results, claims, outcomes = {}, {}, {}
local fields = {"~request", ARGV[3], "~channel", channel, "~at", ARGV[2], "~mode", ARGV[4]}
if ARGV[6] ~= "" then
  fields[#fields + 1] = "~tally"
  fields[#fields + 1] = ARGV[6]
end
local new, mine, mine_key, mine_claim = 0, 0, nil, nil
local new_code, dup_code, retaken_code = force and "A" or "a", force and "D" or "d", force and "R" or "r"
for i = 8, #ARGV, 3 do
  local key = ARGV[i]
  local claim = prefix .. ARGV[i + 2]
  local d = (i - 8) / 3 * 20 + 1
  local answer = ""
  local bits_seen = seen_or_set(digests, d, k, sizes, 6)
  if bits_seen or force or not ready then
    local owner = call("HGET", KEYS[1], key)
    local left = owner ~= claim and left_for_retry(key, owner)
    if owner == claim then
      answer = "mine"  -- a retry of this very request: its first run did everything
    elseif left then
      answer = "+" .. left
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
    outcomes[#outcomes + 1] = new_code
  elseif answer == "mine" then
    answer = ""
    mine, mine_key, mine_claim = mine + 1, key, claim
    outcomes[#outcomes + 1] = new_code
  elseif string.sub(answer, 1, 1) == "+" then
    outcomes[#outcomes + 1] = retaken_code
  elseif answer == "?" then
    outcomes[#outcomes + 1] = "m"
  else
    if string.sub(answer, 1, #channel + 1) ~= channel .. "|" then
      fields[#fields + 1] = "~" .. key
      fields[#fields + 1] = ""
      call("HSETNX", KEYS[4], channel .. "|" .. key, ARGV[2])
    end
    outcomes[#outcomes + 1] = dup_code
  end
  results[#results + 1] = answer
end
if new > 0 then
  call("HSET", KEYS[1], unpack(claims))
  if ngen > 0 then call("HINCRBY", KEYS[3], "n:" .. ngen, new) end
elseif mine > 0 then
  call("HSET", KEYS[1], mine_key, mine_claim)  -- the same value: a write all the same, for the WAIT to cover
end
if mine == 0 then  -- else a retry of this very call, whose first run wrote its entry with its claims
  fields[#fields + 1] = "~outcomes"
  fields[#fields + 1] = table.concat(outcomes)
  fields[#fields + 1] = "~industries"
  fields[#fields + 1] = ARGV[7]
  call("XADD", KEYS[2], "*", unpack(fields))
end
return results
