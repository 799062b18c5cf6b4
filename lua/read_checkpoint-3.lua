--[[
  Read, in one atomic step, what a reconciliation starts from: the id of the instance's
  latest ledger entry, its books hash (the last reconciliation checkpoint and how far the
  ledger is archived) and its live money state. Every script that moves money writes the
  state and the ledger together, so the state is exactly what the checkpoint plus the live
  entries after it up to that id make. Read-only.

  KEYS[1]  instance state (hash)
  KEYS[2]  instance ledger (stream)
  KEYS[3]  instance books (hash: 'checkpoint' JSON, 'checkpoint_id', 'archived_id',
           'decision:<win id>' approved|rejected; app/store/ledger.py)

  Returns: {last ledger entry id ('' when the ledger is empty),
            number of books fields n, books field1, value1, ... (2n items),
            state field1, value1, ...} (nothing after the books when there is no state).
  Errors:  none.
]]
local rcall = redis.call
local last = rcall('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local reply = {''}
if #last > 0 then
  reply[1] = last[1][1]
end
local books = rcall('HGETALL', KEYS[3])
reply[2] = #books / 2
for i = 1, #books do
  reply[#reply + 1] = books[i]
end
local state = rcall('HGETALL', KEYS[1])
for i = 1, #state do
  reply[#reply + 1] = state[i]
end
return reply
