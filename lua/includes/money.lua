-- Integer arithmetic on micro-units (1e-6 of a currency) and parts per million.
-- Lua numbers are doubles, exact below 2^53 only. Two kinds of values:
--   small  a Lua number, an integer proven below 2^53 (uint); ordinary arithmetic is exact
--          as long as results stay below 2^53 (mul_ppm and idiv keep them there);
--   big    a decimal string of a non-negative integer of any size ('0', '123', no leading
--          zeros): pot values, reserves and lifetime totals, which may pass 2^53. big_add,
--          big_sub and big_cmp work on 15-digit limbs, big_mul_ppm (a share of a big value)
--          on 9-digit limbs, each product below 2^53, so every Lua operation on them is
--          exact too.
-- Checked arithmetic (the end of this file) is what every script writes money with: sums,
-- differences and products of big values at any size, and stored_add for the fields whose
-- range the store limits (pot values and reserves, at most INT64_MAX); a result that cannot be
-- represented is nil, so a script finds it among its checks, before its first write.
local MAX_SAFE = 9007199254740991
local MICRO = 1000000

-- a non-negative integer given as decimal digits, below 2^53; else nil
local function uint(s)
  if type(s) ~= 'string' or #s > 16 or not string.match(s, '^%d+$') then
    return nil
  end
  local n = tonumber(s)
  if n > MAX_SAFE then
    return nil
  end
  return n
end

-- an integer as decimal digits, never in exponent form
local function fmt(n)
  return string.format('%d', n)
end

-- exact floor division of integers 0 <= a < 2^53, b >= 1: quotient and remainder
local function idiv(a, b)
  local q = math.floor(a / b)
  local r = a - q * b
  if r < 0 then
    q = q - 1
    r = r + b
  elseif r >= b then
    q = q + 1
    r = r - b
  end
  return q, r
end

-- floor(c * ppm / 1e6) without an intermediate above 2^53 (c < 2^53, 0 <= ppm <= 1e6)
local function mul_ppm(c, ppm)
  local hi, lo = idiv(c, MICRO)
  local low_part = idiv(lo * ppm, MICRO)
  return hi * ppm + low_part
end

-- big values ---------------------------------------------------------------------------------
local LIMB = 1000000000000000
local LIMB_DIGITS = 15
local INT64_MAX = '9223372036854775807'

-- s if it is a big value (a decimal string of a non-negative integer, no leading zeros)
local function big(s)
  if type(s) ~= 'string' or not string.match(s, '^%d+$') then
    return nil
  end
  if #s > 1 and string.sub(s, 1, 1) == '0' then
    return nil
  end
  return s
end

-- a value (small or big) as a big one
local function as_big(x)
  if type(x) == 'number' then
    return fmt(x)
  end
  return x
end

-- a value (small or big) as a Lua number when that is exact: a small value, or a big one
-- of at most 15 digits (below 1e15 < 2^53); else nil. The fast path of the big operations:
-- most values are that small, and plain arithmetic on them costs far less than limbs.
local function as_small(x)
  if type(x) == 'number' then
    return x
  end
  if #x <= LIMB_DIGITS then
    return tonumber(x)
  end
  return nil
end

-- a decimal string as limbs of `digits` digits (15 unless given), the lowest first
local function limbs(s, digits)
  digits = digits or LIMB_DIGITS
  local t, i = {}, #s
  while i > 0 do
    local j = math.max(1, i - digits + 1)
    t[#t + 1] = tonumber(string.sub(s, j, i))
    i = j - 1
  end
  return t
end

-- limbs of `digits` digits (15 unless given), the lowest first, as a decimal string
local function unlimbs(t, digits)
  local width = '%0' .. (digits or LIMB_DIGITS) .. 'd'
  local n = #t
  while n > 1 and t[n] == 0 do
    n = n - 1
  end
  local parts = {fmt(t[n])}
  for i = n - 1, 1, -1 do
    parts[#parts + 1] = string.format(width, t[i])
  end
  return table.concat(parts)
end

-- -1, 0 or 1 as a <, = or > b (values small or big)
local function big_cmp(a, b)
  local x, y = as_small(a), as_small(b)
  if x and y then
    return x < y and -1 or (x > y and 1 or 0)
  end
  a, b = as_big(a), as_big(b)
  if #a ~= #b then
    return #a < #b and -1 or 1
  end
  if a == b then
    return 0
  end
  return a < b and -1 or 1
end

-- a + b as a big value (a, b small or big)
local function big_add(a, b)
  local x, y = as_small(a), as_small(b)
  if x and y and x + y <= MAX_SAFE then -- a sum at or past 2^53 rounds to 2^53 or more
    return fmt(x + y)
  end
  local r, carry = {}, 0
  x, y = limbs(as_big(a)), limbs(as_big(b))
  for i = 1, math.max(#x, #y) do
    local s = (x[i] or 0) + (y[i] or 0) + carry
    carry = 0
    if s >= LIMB then
      s, carry = s - LIMB, 1
    end
    r[i] = s
  end
  if carry > 0 then
    r[#r + 1] = carry
  end
  return unlimbs(r)
end

-- a - b as a big value, for a >= b (a, b small or big)
local function big_sub(a, b)
  local x, y = as_small(a), as_small(b)
  if x and y then
    return fmt(x - y)
  end
  local r, borrow = {}, 0
  x, y = limbs(as_big(a)), limbs(as_big(b))
  for i = 1, #x do
    local d = x[i] - (y[i] or 0) - borrow
    borrow = 0
    if d < 0 then
      d, borrow = d + LIMB, 1
    end
    r[i] = d
  end
  return unlimbs(r)
end

-- a * m as a big value (a small or big, m an integer 0 <= m <= 1e6), in 9-digit limbs so
-- that every product stays below 2^53
local function big_mul_small(a, m)
  local parts, carry = limbs(as_big(a), 9), 0
  for k = 1, #parts do
    carry, parts[k] = idiv(parts[k] * m + carry, 1000000000)
  end
  parts[#parts + 1] = carry
  return unlimbs(parts, 9)
end

-- floor(x * ppm / 1e6) for a value x small or big (0 <= ppm <= 1e6): x = q * 1e6 + r, so
-- it is q * ppm + floor(r * ppm / 1e6), both exact
local function big_mul_ppm(x, ppm)
  local s = as_big(x)
  if #s <= 15 then
    return fmt(mul_ppm(tonumber(s), ppm))
  end
  local q, r = string.sub(s, 1, -7), tonumber(string.sub(s, -6))
  return big_add(big_mul_small(q, ppm), idiv(r * ppm, MICRO))
end

-- micros (small or big) as an exact decimal string of units: 1234500000 -> '1234.5'
local function units(x)
  local s = string.rep('0', 7 - #as_big(x)) .. as_big(x)
  local whole, frac = string.sub(s, 1, -7), string.gsub(string.sub(s, -6), '0+$', '')
  whole = string.gsub(whole, '^0+(%d)', '%1')
  if frac == '' then
    return whole
  end
  return whole .. '.' .. frac
end

-- checked arithmetic -------------------------------------------------------------------------
-- a - b as a big value (a, b small or big), nil when b > a: money never goes below zero
local function checked_sub(a, b)
  if big_cmp(a, b) < 0 then
    return nil
  end
  return big_sub(a, b)
end

-- a + b as a big value when it is at most INT64_MAX (a pot value or reserve: what Redis
-- integers hold), else nil
local function stored_add(a, b)
  local sum = big_add(a, b)
  if big_cmp(sum, INT64_MAX) > 0 then
    return nil
  end
  return sum
end

-- a * b as a big value (a, b small or big, any size): schoolbook on 7-digit limbs, so each
-- product is below 1e14 and a column of up to 90 of them (630 digits) stays below 2^53
local function big_mul(a, b)
  local x, y = limbs(as_big(a), 7), limbs(as_big(b), 7)
  local r = {}
  for k = 1, #x + #y do
    r[k] = 0
  end
  for i = 1, #x do
    for j = 1, #y do
      r[i + j - 1] = r[i + j - 1] + x[i] * y[j]
    end
    local carry = 0
    for k = 1, #r do -- normalise after each row: every column is then below 1e7 again
      local q, rem = idiv(r[k] + carry, 10000000)
      r[k], carry = rem, q
    end
  end
  return unlimbs(r, 7)
end

-- the smaller of two values (small or big), as given
local function big_min(a, b)
  if big_cmp(a, b) <= 0 then
    return a
  end
  return b
end
