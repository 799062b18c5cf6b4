--[[
  Backfill an instance's meter counters once (jackpot-gateway backfill-meters): add what the
  ledger entries written before the counters existed contribute (app/services/meters.py
  computes it from a replay up to an entry read atomically with the counters, so every entry
  after it is counted by its own script and none twice). Big values (includes/money.lua).

  KEYS[1]  instance meter counters (hash; includes/meters.lua)
  ARGV[1]  the ledger entry id the amounts were computed up to (kept in field 'backfilled')
  ARGV[2 .. ] pairs: counter field, amount to add (a decimal string of a non-negative integer)

  Returns: 1 when added, 0 when the counters were backfilled before (nothing written).
  Errors:  BAD_ARGUMENT when an id, a field or an amount is malformed (nothing written).
]]
local rcall = redis.call

--- @include "includes/args.lua"
--- @include "includes/money.lua"

if not string.match(ARGV[1] or '', '^%d+%-%d+$') or #ARGV % 2 ~= 1 then
  return bad('entry id or field, amount pairs')
end
if rcall('HEXISTS', KEYS[1], 'backfilled') == 1 then
  return 0
end
local fields = {}
for i = 2, #ARGV, 2 do
  if not big(ARGV[i + 1]) or not string.find(ARGV[i], '|', 1, true) then
    return bad('field ' .. tostring(ARGV[i]))
  end
  fields[#fields + 1] = ARGV[i]
end
local update = {'backfilled', ARGV[1]}
for start = 1, #fields, 1000 do
  local chunk = {unpack(fields, start, math.min(#fields, start + 999))}
  local held = rcall('HMGET', KEYS[1], unpack(chunk))
  for k, field in ipairs(chunk) do
    local current = big(held[k] or '0')
    if not current then
      error('corrupt meter counter ' .. field)
    end
    update[#update + 1] = field
    update[#update + 1] = big_add(current, ARGV[2 * (start + k - 1) + 1])
  end
end
rcall('HSET', KEYS[1], unpack(update))
return 1
