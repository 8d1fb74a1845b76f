-- Shared by the dedup scripts (prepended to each when loaded, see dedup/scripts.py): the blocked Bloom
-- filter's test-and-set. A 256-bit block is read with one GETRANGE and written with at most one SETRANGE.

local band, bor, lshift, rshift = bit.band, bit.bor, bit.lshift, bit.rshift
local sunpack, spack, byte, call = struct.unpack, struct.pack, string.byte, redis.call
local WORDS = ">i4i4i4i4i4i4i4i4"  -- a 256-bit block as eight 32-bit words

-- Read a meta hash's k and block counts per generation (oldest first).
local function filter_layout(meta_key)
  local meta = call("HMGET", meta_key, "k", "sizes", "ready")
  local sizes = {}
  for v in string.gmatch(meta[2] or "", "%d+") do sizes[#sizes + 1] = tonumber(v) end
  return tonumber(meta[1]) or 0, sizes, meta[3] == "1"
end

-- Has the filter seen the key whose digest starts at byte d of digests (all k bits set in some generation)?
-- If not, set its bits in the newest generation (unless only_test). Bitmaps are KEYS[first], KEYS[first + 1], ...
local function seen_or_set(digests, d, k, sizes, first, only_test)
  local ngen = #sizes
  if ngen == 0 or k == 0 then return false end
  local block = sunpack(">I4", digests, d + 4)
  local p = {byte(digests, d + 8, d + 7 + k)}
  local w, off
  for g = 1, ngen do
    off = (block % sizes[g]) * 32
    w = {sunpack(WORDS, call("GETRANGE", KEYS[first + g - 1], off, off + 31))}
    local all = true
    for t = 1, k do
      local pos = p[t]
      local i = rshift(pos, 5) + 1
      local m = lshift(1, band(pos, 31))
      if band(w[i], m) == 0 then
        all = false
        w[i] = bor(w[i], m)
      end
    end
    if all then return true end
  end
  if only_test then return false end
  call("SETRANGE", KEYS[first + ngen - 1], off, spack(WORDS, w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8]))
  return false
end
