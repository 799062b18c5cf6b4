--[[
  Move an instance through its lifecycle: Pending -> Active <-> Paused -> Terminated, and
  tell the event stream (an InstanceStatusEvent, which the web processes turn into the
  instance's JackpotUpdateEvent at once instead of at their next update tick).

  KEYS[1]  instance state (hash)
  KEYS[2]  instance ledger (stream)
  KEYS[3]  instance events (stream, capped near ARGV[7] entries; includes/events.lua)
  KEYS[4]  instance event channel (PUBLISH / SPUBLISH target)
  ARGV[1]  action: activate | pause | resume | terminate
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
           (app/schemas/events.py).
  Errors:  INSTANCE_NOT_FOUND when the instance has no state;
           INVALID_TRANSITION when the action is not allowed from the current status;
           BAD_ARGUMENT for an unknown action or a bad now, instance id, event id,
           publish mode or cap.
]]
local rcall = redis.call

--- @include "includes/events.lua"

local targets = {activate = 'Active', pause = 'Paused', resume = 'Active', terminate = 'Terminated'}
local allowed = {
  activate = {Pending = true},
  pause = {Active = true},
  resume = {Paused = true},
  terminate = {Pending = true, Active = true, Paused = true},
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
if current == target then
  return current
end
if not allowed[ARGV[1]][current] then
  return redis.error_reply('INVALID_TRANSITION ' .. current .. ' -> ' .. target)
end
rcall('HSET', KEYS[1], 'status', target, 'last_updated', ARGV[2])
rcall('XADD', KEYS[2], '*', 'type', 'status', 'status', target, 'from', current,
  'by', ARGV[3], 'ts', ARGV[2])
local data = '{"instance_id":' .. cjson.encode(instance_id)
  .. ',"status":' .. cjson.encode(target)
  .. ',"previous_status":' .. cjson.encode(current)
  .. ',"timestamp":' .. ARGV[2] .. '}'
emit_event(KEYS[3], KEYS[4], ARGV[7], ARGV[6], 'InstanceStatusEvent', event_id, data)
return target
