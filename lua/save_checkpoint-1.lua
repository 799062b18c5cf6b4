--[[
  Store a reconciliation checkpoint: the books replayed from the ledger up to entry
  `checkpoint_id` (app/services/books.py), written only when it is later than the one held, so
  concurrent reconciliations never move the checkpoint back (the archive trims the ledger up
  to the checkpoint, never past it). The win decisions the replay met since the previous
  checkpoint are added as 'decision:<win id>' fields.

  KEYS[1]  instance books (hash; see read_checkpoint-3.lua)
  ARGV[1]  checkpoint id: the ledger entry id the books are at ('<ms>-<seq>')
  ARGV[2]  the books as JSON (opaque here)
  ARGV[3..] pairs: win id, decision (approved | rejected)

  Returns: 1 when stored, 0 when the held checkpoint is at the same id or later (nothing
           written).
  Errors:  BAD_ARGUMENT when the id is not an entry id, the JSON is empty, a decision is
           not approved/rejected or the pairs are odd.
]]
--- @include "includes/stream_ids.lua"
local rcall = redis.call
local ms, seq = stream_id(ARGV[1])
if not ms then
  return redis.error_reply('BAD_ARGUMENT checkpoint id')
end
if not ARGV[2] or ARGV[2] == '' then
  return redis.error_reply('BAD_ARGUMENT checkpoint books')
end
if #ARGV % 2 ~= 0 then
  return redis.error_reply('BAD_ARGUMENT decisions must be win id, decision pairs')
end
for i = 3, #ARGV, 2 do
  local decision = ARGV[i + 1]
  if ARGV[i] == '' or (decision ~= 'approved' and decision ~= 'rejected') then
    return redis.error_reply('BAD_ARGUMENT decision of ' .. ARGV[i])
  end
end
local held = rcall('HGET', KEYS[1], 'checkpoint_id')
if held then
  local held_ms, held_seq = stream_id(held)
  if held_ms and stream_id_le(ms, seq, held_ms, held_seq) then
    return 0
  end
end
local fields = {'checkpoint_id', ARGV[1], 'checkpoint', ARGV[2]}
for i = 3, #ARGV, 2 do
  fields[#fields + 1] = 'decision:' .. ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
end
rcall('HSET', KEYS[1], unpack(fields))
return 1
