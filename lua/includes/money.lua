-- Integer arithmetic on micro-units (1e-6 of a currency) and parts per million.
-- Lua numbers are doubles: every value here stays below 2^53. The contribute script's
-- arithmetic goes through these helpers only, so changing the representation of counters
-- (e.g. to exact 64-bit HINCRBY counters) touches this file and its callers' writes.
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

-- micros as an exact decimal string of units: 1234500000 -> '1234.5'
local function units(x)
  local whole, frac = idiv(x, MICRO)
  if frac == 0 then
    return fmt(whole)
  end
  local digits = string.gsub(string.format('%06d', frac), '0+$', '')
  return fmt(whole) .. '.' .. digits
end
