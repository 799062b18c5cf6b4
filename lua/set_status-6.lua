--[[
  Move an instance through its lifecycle: Pending -> Active <-> Paused -> Terminated, and
  tell the event stream (an InstanceStatusEvent, which the web processes turn into the
  instance's JackpotUpdateEvent at once instead of at their next update tick).

  Terminating closes the instance's books: nothing can add to its pots any more (contributions
  and boosts are refused), so every pot value and reserve still held goes back to the operator
  in one 'close' ledger entry: the pots read 0 and total:returned grows by the amount, so
  contributions + seed funding + boosts = pots + reserves + house + wins + returned still
  holds. Seed deficits are a record of the operator's funding and stay as they are. A raffle
  whose round is still open (raffle:commitment not '') keeps its pots until that round is
  drawn: its prizes come from the prize pot; the draw's caller then closes with 'close'.
  Money is big values (includes/money.lua), exact at any size, checked before any write.

  KEYS[1]  instance state (hash)
  KEYS[2]  instance ledger (stream)
  KEYS[3]  instance events (stream, capped near ARGV[7] entries; includes/events.lua)
  KEYS[4]  instance event channel (PUBLISH / SPUBLISH target)
  KEYS[5]  instance meter counters (hash; includes/meters.lua): a close adds to 'returned'
  KEYS[6]  instance events epoch (string, base36 of now_ms, SET NX by the first
           event; includes/events.lua)
  ARGV[1]  action: activate | pause | resume | terminate | close (a Terminated instance's
           pots, when terminate left them for a raffle's last draw; nothing when none hold
           money)
  ARGV[2]  now, epoch milliseconds
  ARGV[3]  who asked (admin username or 'scheduler'), for the ledger
  ARGV[4]  the instance id (for the event)
  ARGV[5]  event id of the InstanceStatusEvent
  ARGV[6]  'publish' | 'spublish'
  ARGV[7]  events stream cap, entries (integer >= 1)

  Returns: the new status (string); the same status again when the action was already done
           (activate on Active, pause on Paused, terminate on Terminated), so retries are safe
           (nothing is written then, no event either).
  Side effects of a change: state status and last_updated; a ledger 'status' entry; an
           InstanceStatusEvent {instance_id, status, previous_status, timestamp}
           (app/schemas/events.py). Of a close: the pots' value and reserve fields set to 0,
           total:returned, and a ledger 'close' entry {amount, pot:<id>:value and
           pot:<id>:reserve for each pot that held money, by, ts}.
  Errors (nothing is written when one is answered):
           INSTANCE_NOT_FOUND when the instance has no state;
           INVALID_TRANSITION when the action is not allowed from the current status;
           BAD_ARGUMENT for an unknown action or a bad now, instance id, event id,
           publish mode or cap.
  A corrupt pot value, reserve or total:returned raises a plain script error, also before
  anything is written.
]]
local rcall = redis.call

--- @include "includes/events.lua"
--- @include "includes/money.lua"
--- @include "includes/meters.lua"

local targets = {activate = 'Active', pause = 'Paused', resume = 'Active', terminate = 'Terminated',
  close = 'Terminated'}
local allowed = {
  activate = {Pending = true},
  pause = {Active = true},
  resume = {Paused = true},
  terminate = {Pending = true, Active = true, Paused = true},
  close = {Terminated = true},
}
local target = targets[ARGV[1]]
if not target then
  return redis.error_reply('BAD_ARGUMENT action ' .. tostring(ARGV[1]))
end
if not string.match(ARGV[2] or '', '^%d+$') then
  return redis.error_reply('BAD_ARGUMENT now')
end
local instance_id, event_id = ARGV[4], ARGV[5]
if not instance_id or instance_id == '' or not event_id or event_id == '' then
  return redis.error_reply('BAD_ARGUMENT instance id or event id')
end
local emit_error = check_emit_args(ARGV[7], ARGV[6])
if emit_error then
  return redis.error_reply('BAD_ARGUMENT ' .. emit_error)
end
local current = rcall('HGET', KEYS[1], 'status')
if not current then
  return redis.error_reply('INSTANCE_NOT_FOUND')
end
local action = ARGV[1]
if action ~= 'close' and current == target then
  return current
end
if not allowed[action][current] then
  return redis.error_reply('INVALID_TRANSITION ' .. current .. ' -> ' .. target)
end

-- the close: what the pots still hold, computed and checked before anything is written
local closed, returned, entry = {}, '0', {}
if target == 'Terminated' then
  local state = rcall('HGETALL', KEYS[1])
  local fields = {}
  for i = 1, #state, 2 do
    fields[state[i]] = state[i + 1]
  end
  local open_round = fields['raffle:commitment'] and fields['raffle:commitment'] ~= ''
  if not open_round then
    for i = 1, #state, 2 do
      local name, value = state[i], state[i + 1]
      if string.match(name, '^pot:.*:value$') or string.match(name, '^pot:.*:reserve$') then
        local amount = big(value)
        if not amount then
          error('corrupt state: ' .. name)
        end
        if amount ~= '0' then
          closed[#closed + 1] = name
          entry[#entry + 1] = name
          entry[#entry + 1] = amount
          returned = big_add(returned, amount)
        end
      end
    end
  end
  if #closed > 0 then
    local before = big(fields['total:returned'] or '0')
    if not before then
      error('corrupt state: total:returned')
    end
    closed[#closed + 1] = 'total:returned'
    closed.total = big_add(before, returned)
  end
end

local meter_update = {}
if #closed > 0 then
  local meter = {}
  meter_add(meter, '*', 'returned', returned)
  meter_update = meter_plan(KEYS[5], ARGV[2], meter)
end

-- writes -----------------------------------------------------------------------------------
if action ~= 'close' then
  rcall('HSET', KEYS[1], 'status', target, 'last_updated', ARGV[2])
  rcall('XADD', KEYS[2], '*', 'type', 'status', 'status', target, 'from', current,
    'by', ARGV[3], 'ts', ARGV[2])
  local data = '{"instance_id":' .. cjson.encode(instance_id)
    .. ',"status":' .. cjson.encode(target)
    .. ',"previous_status":' .. cjson.encode(current)
    .. ',"timestamp":' .. ARGV[2] .. '}'
  emit_event(KEYS[3], KEYS[4], KEYS[6], ARGV[2],
    ARGV[7], ARGV[6], 'InstanceStatusEvent', event_id, data)
end
if #closed > 0 then
  local update = {'last_updated', ARGV[2], 'total:returned', closed.total}
  for i = 1, #closed - 1 do
    update[#update + 1] = closed[i]
    update[#update + 1] = '0'
  end
  rcall('HSET', KEYS[1], unpack(update))
  local close = {'type', 'close', 'amount', returned, 'by', ARGV[3], 'ts', ARGV[2]}
  for _, item in ipairs(entry) do
    close[#close + 1] = item
  end
  rcall('XADD', KEYS[2], '*', unpack(close))
  meter_write(KEYS[5], meter_update)
end
return target
