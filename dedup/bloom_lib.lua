-- Shared by the dedup scripts (prepended to each when loaded, see dedup/scripts.py): the blocked Bloom
-- filter's test-and-set. A 256-bit block is read with one GETRANGE and written with at most one SETRANGE.
--
-- A block is eight big-endian 32-bit words; bit b of word w is bit (b % 8) of byte 4w + 3 - floor(b / 8).
-- The bits are tested and set byte by byte with plain arithmetic (no bit-library call per bit), and offsets go
-- to Redis as strings made by string.format("%d"): a Lua number handed to redis.call is printed with "%.17g",
-- which cost more than the rest of the test-and-set.

local call, byte, char, fmt, sunpack = redis.call, string.byte, string.char, string.format, struct.unpack

-- Of each bit position 0-255 in a block: its byte (1-based) and its mask there, worked out when first needed (a
-- whole table made up front cost a single-invoice call more than its bits).
local BYTE, MASK = {}, {}
local function place(pos)
  local w, b = math.floor(pos / 32), pos % 32
  local i, m = 4 * w + 3 - math.floor(b / 8) + 1, 2 ^ (b % 8)
  BYTE[pos], MASK[pos] = i, m
  return i, m
end

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
  local bytes, off
  for g = 1, ngen do
    local start = (block % sizes[g]) * 32
    off = fmt("%d", start)
    bytes = {byte(call("GETRANGE", KEYS[first + g - 1], off, fmt("%d", start + 31)), 1, 32)}
    local all = true
    for t = 1, k do
      local pos = p[t]
      local i, m = BYTE[pos], MASK[pos]
      if not i then i, m = place(pos) end
      local v = bytes[i]
      if v % (m + m) < m then
        all = false
        bytes[i] = v + m
      end
    end
    if all then return true end
  end
  if only_test then return false end
  call("SETRANGE", KEYS[first + ngen - 1], off, char(unpack(bytes)))
  return false
end
