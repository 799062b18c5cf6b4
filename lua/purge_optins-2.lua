--[[
  End the opt-in records of a Terminated instance (the scheduler runs it OPTIN_RETENTION_DAYS
  after the termination, app/services/admin/instances.py): the whole opt-ins hash goes
  (UNLINK: Redis frees a big one in the background) and the state remembers when, so that a
  later opt-out (allowed in every status, lua/set_optin-5.lua) answers without writing a
  record again.
  Running it twice is harmless.

  KEYS[1]  instance state (hash: status; gets optins:purged)
  KEYS[2]  instance opt-ins (hash; app/store/optins.py)
  ARGV[1]  now, epoch ms

  Returns: 1 when the records were ended now, 0 when they had been before.
  Errors (nothing is written when one is answered):
    BAD_ARGUMENT        ARGV[1] is not epoch ms
    INSTANCE_NOT_FOUND  the instance has no state
    INVALID_TRANSITION  the instance is not Terminated (its players may still contribute)
]]
local rcall = redis.call
if not string.match(ARGV[1] or '', '^[1-9]%d*$') then
  return redis.error_reply('BAD_ARGUMENT now must be epoch milliseconds')
end
local state = rcall('HMGET', KEYS[1], 'status', 'optins:purged')
if not state[1] then
  return redis.error_reply('INSTANCE_NOT_FOUND')
end
if state[1] ~= 'Terminated' then
  return redis.error_reply('INVALID_TRANSITION ' .. state[1] .. ' is not Terminated')
end
if state[2] then
  return 0
end
rcall('UNLINK', KEYS[2])
rcall('HSET', KEYS[1], 'optins:purged', ARGV[1])
return 1
