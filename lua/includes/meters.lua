-- Meter counters: what the regulators' meter report shows (app/services/treasury.py), kept
-- by every script that moves money, in the same step as its ledger entry, so the report reads
-- counters instead of replaying the ledger. Needs includes/money.lua.
--
-- One hash per instance (KEYS: '{jp:<id>}:meter', app/store/keys.py instance_meter), fields:
--   '<scope>|<figure>'             cumulative, since the instance was created
--   '<yyyymmdd>|<scope>|<figure>'  the UTC day of the caller's now_ms
-- scope: a pot id, or '*' for the whole instance. Figures:
--   pot:      hits, contributions (its value + reserve parts), wins, rejected, seed_funding,
--             boosts
--   instance: contributions (the whole amounts, house included), house, wins, rejected,
--             seed_funding, boosts, returned
-- Values are big values (decimal strings of non-negative integers of any size,
-- includes/money.lua): a counter only grows; a rejected win counts in 'rejected' (the report
-- shows wins - rejected), so the counters stay exact at every size. Ids never contain '|'.
-- The rules (which ledger entry adds what) are those of app/services/books.py's replay.
--
-- meter_day(now_ms) 'yyyymmdd' of the UTC day (now_ms an integer below 2^53, number or string)
-- meter_add(adds, scope, figure, amount) queue an increment (amount small or big; 0 skipped)
-- meter_plan(key, now_ms, adds) the HSET arguments of the new values (one HMGET); call it
--   among the checks: a corrupt counter raises an error before the first write
-- meter_write(key, plan) one HSET (nothing when the plan is empty)

local METER_DAY_MS = 86400000

local function meter_day(now)
  local days = idiv(tonumber(now), METER_DAY_MS)
  -- civil date from days since 1970-01-01 (H. Hinnant's algorithm), integers only
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  local y = yoe + era * 400
  if m <= 2 then
    y = y + 1
  end
  return string.format('%04d%02d%02d', y, m, d)
end

local function meter_add(adds, scope, figure, amount)
  amount = as_big(amount)
  if amount == '0' then
    return
  end
  local name = scope .. '|' .. figure
  if adds[name] then
    adds[name] = big_add(adds[name], amount)
  else
    adds.names = adds.names or {}
    adds.names[#adds.names + 1] = name
    adds[name] = amount
  end
end

local function meter_plan(key, now, adds)
  local names = adds.names or {}
  if #names == 0 then
    return {}
  end
  local day = meter_day(now) .. '|'
  local fields = {}
  for i, name in ipairs(names) do
    fields[2 * i - 1] = name
    fields[2 * i] = day .. name
  end
  local held = redis.call('HMGET', key, unpack(fields))
  local plan = {}
  for i, field in ipairs(fields) do
    local current = big(held[i] or '0')
    if not current then
      error('corrupt meter counter ' .. field)
    end
    plan[2 * i - 1] = field
    plan[2 * i] = big_add(current, adds[names[math.floor((i + 1) / 2)]])
  end
  return plan
end

local function meter_write(key, plan)
  if #plan > 0 then
    redis.call('HSET', key, unpack(plan))
  end
end
