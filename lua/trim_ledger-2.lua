--[[
  Remove up to `limit` of the oldest ledger entries at or before `until_id`, with XTRIM
  MINID, so one call holds Redis for a bounded time; the caller repeats until it answers 0.
  Only entries both archived (books 'archived_id') and covered by the reconciliation
  checkpoint (books 'checkpoint_id') may go: a later `until_id` is refused.

  KEYS[1]  instance ledger (stream)
  KEYS[2]  instance books (hash; see read_checkpoint-3.lua)
  ARGV[1]  until_id: the last entry id that may be removed ('<ms>-<seq>')
  ARGV[2]  limit: entries removed at most by this call (1..100000)

  Returns: the number of entries removed (0: none left at or before until_id).
  Errors:  BAD_ARGUMENT when until_id is not an entry id or the limit is out of range;
           LEDGER_NOT_ARCHIVED when until_id is past the archived mark (or there is none);
           LEDGER_NOT_CHECKPOINTED when until_id is past the checkpoint (or there is none).
]]
--- @include "includes/stream_ids.lua"
local rcall = redis.call
local ms, seq = stream_id(ARGV[1])
if not ms then
  return redis.error_reply('BAD_ARGUMENT until id')
end
local limit = ARGV[2]
if type(limit) ~= 'string' or not string.match(limit, '^[1-9]%d*$') or #limit > 6
    or tonumber(limit) > 100000 then
  return redis.error_reply('BAD_ARGUMENT limit')
end
local archived_ms, archived_seq = stream_id(rcall('HGET', KEYS[2], 'archived_id'))
if not archived_ms or not stream_id_le(ms, seq, archived_ms, archived_seq) then
  return redis.error_reply('LEDGER_NOT_ARCHIVED ' .. ARGV[1])
end
local checkpoint_ms, checkpoint_seq = stream_id(rcall('HGET', KEYS[2], 'checkpoint_id'))
if not checkpoint_ms or not stream_id_le(ms, seq, checkpoint_ms, checkpoint_seq) then
  return redis.error_reply('LEDGER_NOT_CHECKPOINTED ' .. ARGV[1])
end
local batch = rcall('XRANGE', KEYS[1], '-', ARGV[1], 'COUNT', tonumber(limit))
if #batch == 0 then
  return 0
end
-- MINID keeps every entry at or after the id given: the one just after the batch's last.
local last_ms, last_seq = stream_id(batch[#batch][1])
return rcall('XTRIM', KEYS[1], 'MINID', '=', string.format('%d-%d', last_ms, last_seq + 1))
