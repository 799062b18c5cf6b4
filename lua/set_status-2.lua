--[[
  Move an instance through its lifecycle: Pending -> Active <-> Paused -> Terminated.

  KEYS[1]  instance state (hash)
  KEYS[2]  instance ledger (stream)
  ARGV[1]  action: activate | pause | resume | terminate
  ARGV[2]  now, epoch milliseconds
  ARGV[3]  who asked (admin username or 'scheduler'), for the ledger

  Returns: the new status (string); the same status again when the action was already done
           (activate on Active, pause on Paused, terminate on Terminated), so retries are safe.
  Errors:  INSTANCE_NOT_FOUND when the instance has no state;
           INVALID_TRANSITION when the action is not allowed from the current status;
           BAD_ARGUMENT for an unknown action.
]]
local rcall = redis.call
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
return target
