--[[
  Claim the scheduled transitions that are due. A claimed item is pushed `lease` ms into the
  future rather than removed, so a scheduler that dies mid-way leaves it to be claimed again;
  the caller removes it when done. Two schedulers never claim the same item at once.

  KEYS[1]  schedule (sorted set, member "<action>|<instance_id>", score = due epoch ms)
  ARGV[1]  now, epoch milliseconds
  ARGV[2]  maximum number of items to claim
  ARGV[3]  lease, milliseconds

  Returns: array of claimed members (possibly empty).
  Errors:  BAD_ARGUMENT when a number does not parse.
]]
local rcall = redis.call
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
if not now or not limit or not lease or limit < 1 or lease < 1 then
  return redis.error_reply('BAD_ARGUMENT now, limit and lease must be positive numbers')
end
local due = rcall('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, limit)
local until_ms = string.format('%d', now + lease)
for _, member in ipairs(due) do
  rcall('ZADD', KEYS[1], until_ms, member)
end
return due
