--[[
  Create a jackpot instance: store its definition and compiled engine, set every pot to its
  seed and record the seed funding in the ledger. When the instance exists nothing is written:
  the caller compares the stored definition with its own by meaning (app/services/canonical.py),
  so loading the same definitions twice changes nothing.

  KEYS[1]  instance definition (string, JSON)
  KEYS[2]  instance engine (string, JSON in micro-units)
  KEYS[3]  instance state (hash)
  KEYS[4]  instance ledger (stream)
  KEYS[5]  instance meter counters (hash; includes/meters.lua: each pot's seed as seed_funding)
  ARGV[1]  definition JSON (its versioned storage form)
  ARGV[2]  engine JSON: {pots: [{id, seed (micro-units), ...}], ...}
  ARGV[3]  now, epoch milliseconds
  ARGV[4]  initial status: Pending | Active | Paused
  ARGV[5]  timestamp_start, epoch ms, or '' for none
  ARGV[6]  timestamp_end, epoch ms, or '' for none
  ARGV[7..] one drop value per pot in engine order, micro-units ('' for pots without MustDropBy)

  Returns: 1 when created, 0 when the instance already existed (nothing written).
  Errors:  BAD_ARGUMENT when the engine JSON, a seed (an integer 0 <= seed < 2^53) or a drop
           value is malformed; checked before anything is written. The seed funding total is
           summed with includes/money.lua (exact at any size).
]]
local rcall = redis.call

--- @include "includes/money.lua"
--- @include "includes/meters.lua"

if rcall('EXISTS', KEYS[1]) == 1 then
  return 0
end
local ok, engine = pcall(cjson.decode, ARGV[2])
if not ok or type(engine) ~= 'table' or type(engine.pots) ~= 'table' then
  return redis.error_reply('BAD_ARGUMENT engine')
end
local now = tonumber(ARGV[3])
if not now then
  return redis.error_reply('BAD_ARGUMENT now')
end
local seeds, funding = {}, '0'
for i, pot in ipairs(engine.pots) do
  local seed = tonumber(pot.seed)
  if not seed or seed < 0 or seed ~= math.floor(seed) or seed > MAX_SAFE then
    return redis.error_reply('BAD_ARGUMENT seed of pot ' .. tostring(pot.id))
  end
  local drop = ARGV[6 + i]
  if drop == nil or (drop ~= '' and not tonumber(drop)) then
    return redis.error_reply('BAD_ARGUMENT drop value of pot ' .. tostring(pot.id))
  end
  seeds[i] = fmt(seed)
  funding = big_add(funding, seeds[i])
end

local meter = {}
for i, pot in ipairs(engine.pots) do
  meter_add(meter, pot.id, 'seed_funding', seeds[i])
end
meter_add(meter, '*', 'seed_funding', funding)
local meter_update = meter_plan(KEYS[5], now, meter)
-- all checks passed: write
rcall('SET', KEYS[1], ARGV[1])
rcall('SET', KEYS[2], ARGV[2])
rcall('HSET', KEYS[3], 'status', ARGV[4], 'timestamp_start', ARGV[5], 'timestamp_end', ARGV[6],
  'created', ARGV[3], 'last_updated', ARGV[3],
  'total:contributions', 0, 'total:seed_funding', funding, 'total:house', 0, 'total:wins', 0)
for i, pot in ipairs(engine.pots) do
  local prefix = 'pot:' .. pot.id .. ':'
  rcall('HSET', KEYS[3], prefix .. 'value', seeds[i], prefix .. 'reserve', 0,
    prefix .. 'drop_at', ARGV[6 + i], prefix .. 'deficit', 0)
  rcall('XADD', KEYS[4], '*', 'type', 'seed_funding', 'pot', pot.id, 'amount', seeds[i],
    'drop_at', ARGV[6 + i], 'ts', ARGV[3])
end
rcall('XADD', KEYS[4], '*', 'type', 'status', 'status', ARGV[4], 'ts', ARGV[3])
meter_write(KEYS[5], meter_update)
return 1
