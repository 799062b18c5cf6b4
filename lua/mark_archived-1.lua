--[[
  Record that the ledger is archived (exported, read back and verified, its manifest
  written) up to entry `archived_id` included. The mark only moves forward; the trim
  (trim_ledger-2.lua) never removes an entry past it.

  KEYS[1]  instance books (hash; see read_checkpoint-3.lua)
  ARGV[1]  the last archived entry id ('<ms>-<seq>')
  ARGV[2]  the archived day (YYYY-MM-DD, kept for operators)

  Returns: 1 when moved forward, 0 when already there or further (nothing written).
  Errors:  BAD_ARGUMENT when the id is not an entry id or the day is not YYYY-MM-DD.
]]
--- @include "includes/stream_ids.lua"
local rcall = redis.call
local ms, seq = stream_id(ARGV[1])
if not ms then
  return redis.error_reply('BAD_ARGUMENT archived id')
end
if type(ARGV[2]) ~= 'string' or not string.match(ARGV[2], '^%d%d%d%d%-%d%d%-%d%d$') then
  return redis.error_reply('BAD_ARGUMENT archived day')
end
local held = rcall('HGET', KEYS[1], 'archived_id')
if held then
  local held_ms, held_seq = stream_id(held)
  if held_ms and stream_id_le(ms, seq, held_ms, held_seq) then
    return 0
  end
end
rcall('HSET', KEYS[1], 'archived_id', ARGV[1], 'archived_day', ARGV[2])
return 1
