--[[
  Read an instance's live money state and the id of its latest ledger entry in one atomic
  step, so a reconciliation replays exactly the entries that made that state (every script
  that moves money writes the state and the ledger together). Read-only.

  KEYS[1]  instance state (hash)
  KEYS[2]  instance ledger (stream)

  Returns: {last ledger entry id ('' when the ledger is empty), field1, value1, field2, ...}
           (the state hash flattened; nothing after the id when the instance has no state).
  Errors:  none.
]]
local rcall = redis.call
local last = rcall('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local reply = {''}
if #last > 0 then
  reply[1] = last[1][1]
end
local state = rcall('HGETALL', KEYS[1])
for i = 1, #state do
  reply[#reply + 1] = state[i]
end
return reply
