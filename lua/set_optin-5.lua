--[[
  Opt one player in or out of one instance, and announce it with an OptInEvent.

  The record lives in the opt-ins hash as fields `<pk>|opted_in`, `<pk>|value`,
  `<pk>|value_raw`, `<pk>|currency`, `<pk>|count`, `<pk>|updated` (see app/store/optins.py).
  - Opting in sets opted_in 1 and replaces the preference with ARGV[4..6] ('' clears it: the
    instance's default contribution applies).
  - Opting out sets opted_in 0 and keeps the stored preference (ARGV[4..6] are ignored); it
    stays visible in the record and the event. Opting in always replaces it, so a player who
    comes back with '' gets the default.
  - `<pk>|count` is created at 0 and never reset here (the contribute script increments it).
  - A call that changes nothing (the record exists with the same opted_in and, when opting in,
    the same preference) writes nothing, keeps `updated`, and publishes no event: retries and
    repeated clicks are harmless. A first call for a player always writes, opt-out included.
  - Opting in is refused once the instance is Terminated or past its timestamp_end; opting
    out is allowed in every status (a player can always leave). Pending and Paused instances
    accept opt-ins. Once a Terminated instance's records are ended (state optins:purged,
    lua/purge_optins-2.lua), an opt-out answers {'0', '', '', '', '0', now} and writes
    nothing.

  KEYS[1]  instance state (hash; read: status, timestamp_end, optins:purged)
  KEYS[2]  instance opt-ins (hash)
  KEYS[3]  instance events (stream, capped near ARGV[12] entries; includes/events.lua); each
           entry has the fields event_id <uuid>, event_type OptInEvent, payload <the envelope>
  KEYS[4]  instance event channel (pub/sub channel name, not a key; in KEYS because it shares
           the instance's hash tag and slot, which SPUBLISH on a cluster requires)
  KEYS[5]  instance events epoch (string, base36 of now_ms, SET NX by the first
           event; includes/events.lua)
  ARGV[1]  opt_in: '1' to opt in, '0' to opt out
  ARGV[2]  now, epoch milliseconds
  ARGV[3]  player key `<operator>:<brand>:<player>` (field prefix in KEYS[2])
  ARGV[4]  preferred value, micro-units of the instance currency, a positive integer without
           leading zeros, or '' for none (use the instance's default)
  ARGV[5]  the preferred value as the player gave it (display string such as '0.5'); '' iff
           ARGV[4] is ''
  ARGV[6]  the currency of ARGV[5]; '' iff ARGV[4] is ''
  ARGV[7]  event id (uuid made by the caller)
  ARGV[8]  instance id, for the event
  ARGV[9]  player id, for the event
  ARGV[10] player brand path `<operator>:<brand>`, for the event (player_brand_id)
  ARGV[11] publish mode: 'publish' | 'spublish' (Redis Cluster)
  ARGV[12] events stream cap, entries (integer >= 1)

  Event (published on KEYS[4] and appended to KEYS[3]), keys in this order:
    {"event_type":"OptInEvent","event_id":ARGV[7],"data":{"instance_id","player_id",
     "ext_player_id" (the operator's player id, = player_id), "player_brand_id",
     "opted_in":bool,
     "preferred_contribution_value": stored preference in the instance currency as a decimal
         string ("0.5", exact, formatted from micro-units) or null,
     "contribution_value": the preference as the player gave it (value_raw) or null,
     "contribution_count": integer, "last_updated": epoch ms integer}}
  Money is always a JSON string, never a number.

  Returns: the resulting record as a flat array of 6 strings:
           {opted_in '1'|'0', value micro-units or '', value_raw or '', currency or '',
            count (digits), updated (epoch ms digits)}
  Errors:  BAD_ARGUMENT when an argument is malformed (checked before anything is read);
           INSTANCE_NOT_FOUND when the instance has no state;
           INSTANCE_TERMINATED when opting in to a Terminated instance;
           INSTANCE_ENDED when opting in at or after the instance's timestamp_end.
]]
local rcall = redis.call

--- @include "includes/events.lua"
--- @include "includes/json.lua"

local opt_in = ARGV[1]
local now = ARGV[2]
local pk = ARGV[3]
local value = ARGV[4]
local value_raw = ARGV[5]
local currency = ARGV[6]
local event_id = ARGV[7]
local mode = ARGV[11]

-- arguments first
if opt_in ~= '1' and opt_in ~= '0' then
  return redis.error_reply('BAD_ARGUMENT opt_in must be 1 or 0')
end
if not string.match(now, '^[1-9]%d*$') then
  return redis.error_reply('BAD_ARGUMENT now must be epoch milliseconds')
end
if pk == '' then
  return redis.error_reply('BAD_ARGUMENT empty player key')
end
if value == '' then
  if value_raw ~= '' or currency ~= '' then
    return redis.error_reply('BAD_ARGUMENT value_raw and currency need a value')
  end
elseif not string.match(value, '^[1-9]%d*$') then
  return redis.error_reply('BAD_ARGUMENT value must be positive micro-units')
elseif value_raw == '' or currency == '' then
  return redis.error_reply('BAD_ARGUMENT a value needs value_raw and currency')
end
if event_id == '' or ARGV[8] == '' or ARGV[9] == '' or ARGV[10] == '' then
  return redis.error_reply('BAD_ARGUMENT event id, instance id, player and brand are required')
end
local emit_error = check_emit_args(ARGV[12], mode)
if emit_error then
  return redis.error_reply('BAD_ARGUMENT ' .. emit_error)
end

-- the instance
local state = rcall('HMGET', KEYS[1], 'status', 'timestamp_end', 'optins:purged')
local status = state[1]
if not status then
  return redis.error_reply('INSTANCE_NOT_FOUND')
end
if opt_in == '1' then
  if status == 'Terminated' then
    return redis.error_reply('INSTANCE_TERMINATED opting in is closed')
  end
  local ends = state[2]
  if ends and ends ~= '' and tonumber(now) >= tonumber(ends) then
    return redis.error_reply('INSTANCE_ENDED at ' .. ends)
  end
end

-- the records of a Terminated instance were ended (lua/purge_optins-2.lua): an opt-out
-- answers a left record and writes nothing (no event either), so none is made again
if state[3] then
  return {'0', '', '', '', '0', now}
end

-- the player's current record
local f_opted_in = pk .. '|opted_in'
local f_value = pk .. '|value'
local f_value_raw = pk .. '|value_raw'
local f_currency = pk .. '|currency'
local f_count = pk .. '|count'
local f_updated = pk .. '|updated'
local old = rcall('HMGET', KEYS[2], f_opted_in, f_value, f_value_raw, f_currency, f_count,
  f_updated)
local exists = old[1] ~= false

local new_value, new_raw, new_currency
if opt_in == '1' then
  new_value, new_raw, new_currency = value, value_raw, currency
else
  new_value, new_raw, new_currency = old[2] or '', old[3] or '', old[4] or ''
end

if exists and old[1] == opt_in and (old[2] or '') == new_value
    and (old[3] or '') == new_raw and (old[4] or '') == new_currency then
  return {opt_in, new_value, new_raw, new_currency, old[5] or '0', old[6] or ''}
end

-- write last
rcall('HSET', KEYS[2], f_opted_in, opt_in, f_value, new_value, f_value_raw, new_raw,
  f_currency, new_currency, f_updated, now)
rcall('HSETNX', KEYS[2], f_count, 0)
local count = rcall('HGET', KEYS[2], f_count)

-- micro-units (digit string) to an exact decimal string, without going through numbers
local function decimal(micros)
  local padded = string.rep('0', 7 - #micros) .. micros
  local frac = (string.gsub(string.sub(padded, -6), '0+$', ''))
  local whole = string.sub(padded, 1, -7)
  if frac == '' then
    return whole
  end
  return whole .. '.' .. frac
end

local preferred = 'null'
if new_value ~= '' then
  preferred = cjson.encode(decimal(new_value))
end

-- built by hand so that integers never pass through Lua numbers (cjson would print 1e+14)
local data = '{"instance_id":' .. cjson.encode(ARGV[8])
  .. ',"player_id":' .. cjson.encode(ARGV[9])
  .. ',"ext_player_id":' .. cjson.encode(ARGV[9])
  .. ',"player_brand_id":' .. cjson.encode(ARGV[10])
  .. ',"opted_in":' .. jbool(opt_in == '1')
  .. ',"preferred_contribution_value":' .. preferred
  .. ',"contribution_value":' .. jstr(new_raw)
  .. ',"contribution_count":' .. count
  .. ',"last_updated":' .. now .. '}'
emit_event(KEYS[3], KEYS[4], KEYS[5], now,
    ARGV[12], mode, 'OptInEvent', event_id, data)
return {opt_in, new_value, new_raw, new_currency, count, now}
