--[[
  Seed boost: add operator money to one pot's value or to its reseed reserve, atomically with
  its ledger entry. A boost id seen before is a replay: nothing changes and the first result is
  answered again; the same id with another pot, target or amount is refused.

  Money is integer micro-units (1e-6) of the instance currency. A boost to the value of a
  capped pot lifts it to max_value at most; the rest goes to the pot's reserve (as for
  contributions). Conservation: total:boosts grows by the amount, and pot value + reserve by
  the same amount, so contributions + seed funding + boosts = pots + reserves + house + wins +
  returned.
  Pot values and reserves are exact up to 2^63 - 1 (as in contribute-13.lua: a boost that
  would take one beyond is refused); total:boosts, like every lifetime total, is an exact
  decimal string of any size (big values of includes/money.lua).

  KEYS[1]  instance engine (string, JSON, see app/services/engine.py)
  KEYS[2]  instance state (hash)
  KEYS[3]  instance ledger (stream, never trimmed)
  KEYS[4]  instance boosts (hash: boost id -> '<pot>|<target>|<amount>|<to_value>|<to_reserve>')
  KEYS[5]  instance meter counters (hash; includes/meters.lua: boosts of the pot and instance)
  ARGV[1]  now, epoch ms (integer)
  ARGV[2]  boost id (non-empty, no '|')
  ARGV[3]  pot id
  ARGV[4]  target: 'value' | 'reserve'
  ARGV[5]  amount, micros (integer, 1 <= amount < 2^53)
  ARGV[6]  who asked (admin username or 'cli'), for the ledger

  Returns: {replay, to_value, to_reserve}: replay 0 for a new boost, 1 for a repeat of the id;
           to_value and to_reserve are decimal strings of micros adding up to the amount.
  Ledger:  'boost' {id, pot, target, amount, value (to_value), reserve (to_reserve), by, ts}.
  Errors (nothing is written when one is answered):
    BAD_ARGUMENT         an ARGV is malformed
    INSTANCE_NOT_FOUND   no engine or no state for the instance
    INSTANCE_TERMINATED  the instance is Terminated: its money is settled
    POT_NOT_FOUND        the engine has no such pot
    POT_NOT_PROGRESSIVE  a boost to the value of a fixed (non-progressive) pot
    BOOST_ID_REUSED      the boost id was used for another pot, target or amount
    AMOUNT_OVERFLOW      the pot's value or reserve would pass 2^63 - 1 micro-units
]]
local rcall = redis.call

--- @include "includes/args.lua"
--- @include "includes/money.lua"
--- @include "includes/meters.lua"

-- 1. arguments --------------------------------------------------------------------------
local now = ARGV[1]
if not string.match(now or '', '^%d+$') or #now > 16 then
  return bad('now_ms')
end
local boost_id, pot_id, target, by = ARGV[2], ARGV[3], ARGV[4], ARGV[6]
if boost_id == '' or string.find(boost_id, '|', 1, true) then
  return bad('boost id')
end
if target ~= 'value' and target ~= 'reserve' then
  return bad('target')
end
local amount = uint(ARGV[5])
if not amount or amount < 1 then
  return bad('amount')
end

-- 2. replay ---------------------------------------------------------------------------------
local seen = rcall('HGET', KEYS[4], boost_id)
if seen then
  local p, t, a, to_value, to_reserve = string.match(seen, '^(.*)|(%a+)|(%d+)|(%d+)|(%d+)$')
  if p ~= pot_id or t ~= target or a ~= fmt(amount) then
    return redis.error_reply('BOOST_ID_REUSED ' .. boost_id)
  end
  return {1, to_value, to_reserve}
end

-- 3. instance and pot -------------------------------------------------------------------------
local engine_raw = rcall('GET', KEYS[1])
local status = rcall('HGET', KEYS[2], 'status')
if not engine_raw or not status then
  return redis.error_reply('INSTANCE_NOT_FOUND')
end
if status == 'Terminated' then
  return redis.error_reply('INSTANCE_TERMINATED')
end
local pot = nil
for _, candidate in ipairs(cjson.decode(engine_raw).pots) do
  if candidate.id == pot_id then
    pot = candidate
  end
end
if not pot then
  return redis.error_reply('POT_NOT_FOUND ' .. pot_id)
end
if target == 'value' and not pot.progressive then
  return redis.error_reply('POT_NOT_PROGRESSIVE ' .. pot_id)
end

local prefix = 'pot:' .. pot_id .. ':'
local held = rcall('HMGET', KEYS[2], prefix .. 'value', prefix .. 'reserve', 'total:boosts')
local value, reserve, boosts = big(held[1] or '0'), big(held[2] or '0'), big(held[3] or '0')
if not value or not reserve or not boosts then
  error('corrupt state of pot ' .. pot_id)
end
local to_value, to_reserve = 0, amount
if target == 'value' then
  to_value, to_reserve = amount, 0
  if pot.max_value >= 0 then
    -- max_value is small: a value at or above it has no room
    local room = 0
    if big_cmp(value, pot.max_value) < 0 then
      room = pot.max_value - uint(value)
    end
    if to_value > room then
      to_value, to_reserve = room, amount - room
    end
  end
end
value, reserve = stored_add(value, to_value), stored_add(reserve, to_reserve)
if not value or not reserve then
  return redis.error_reply('AMOUNT_OVERFLOW pot ' .. pot_id .. ' would pass 2^63 - 1')
end

local meter = {}
meter_add(meter, pot_id, 'boosts', amount)
meter_add(meter, '*', 'boosts', amount)
local meter_update = meter_plan(KEYS[5], now, meter)
-- 4. writes --------------------------------------------------------------------------------------
rcall('HSET', KEYS[2], prefix .. 'value', value, prefix .. 'reserve', reserve,
  'total:boosts', big_add(boosts, amount), 'last_updated', now)
rcall('XADD', KEYS[3], '*', 'type', 'boost', 'id', boost_id, 'pot', pot_id, 'target', target,
  'amount', fmt(amount), 'value', fmt(to_value), 'reserve', fmt(to_reserve), 'by', by, 'ts', now)
meter_write(KEYS[5], meter_update)
rcall('HSET', KEYS[4], boost_id,
  pot_id .. '|' .. target .. '|' .. fmt(amount) .. '|' .. fmt(to_value) .. '|' .. fmt(to_reserve))
return {0, fmt(to_value), fmt(to_reserve)}
