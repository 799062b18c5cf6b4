--[[
  Read what the meter report needs in one atomic step: the instance's live state, the id of
  its latest ledger entry and its meter counters (includes/meters.lua), so the counters and
  the pot values are of the same moment. Read-only; O(fields asked), or O(counters) with 'all'.

  KEYS[1]  instance state (hash)
  KEYS[2]  instance ledger (stream; only its last entry id is read)
  KEYS[3]  instance meter counters (hash; includes/meters.lua)

  ARGV[1]  'fields': ARGV[2..] are the counter fields to read (HMGET); 'all': every counter
           (HGETALL, for a period of many days: the hash holds only the days that happened)
  ARGV[2..] counter fields ('<scope>|<figure>', '<yyyymmdd>|<scope>|<figure>') with 'fields'

  Returns: {last ledger entry id ('' when empty), {state field1, value1, ...},
            {value of each field asked (false when absent)} | {field1, value1, ...} with 'all'}
  Errors:  BAD_ARGUMENT when ARGV[1] is neither 'fields' nor 'all'.
]]
local rcall = redis.call
local mode = ARGV[1]
if mode ~= 'fields' and mode ~= 'all' then
  return redis.error_reply('BAD_ARGUMENT mode')
end
local last = rcall('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local id = ''
if #last > 0 then
  id = last[1][1]
end
local counters = {}
if mode == 'all' then
  counters = rcall('HGETALL', KEYS[3])
elseif #ARGV > 1 then
  counters = rcall('HMGET', KEYS[3], unpack(ARGV, 2))
end
return {id, rcall('HGETALL', KEYS[1]), counters}
