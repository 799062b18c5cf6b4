--[[
  Open a raffle's first round: publish its commitment (sha256 hex of its seed) and the next
  round's in the state, the ledger and a RaffleRoundOpenedEvent. The seeds themselves are
  never written: each is HMAC-SHA256(draw key, '<instance>:<round>'), held by the processes
  only (app/services/draws.py) and revealed by the round's draw. Later rounds are opened by
  draw_raffle-11.lua as it closes the previous one. Opening twice is a no-op.

  KEYS[1]  instance state (hash)
  KEYS[2]  instance ledger (stream)
  KEYS[3]  instance events (stream, capped near ARGV[10] entries; includes/events.lua)
  KEYS[4]  instance event channel (PUBLISH / SPUBLISH target)
  KEYS[5]  instance events epoch (string, base36 of now_ms, SET NX by the first
           event; includes/events.lua)
  ARGV[1]  now, epoch ms
  ARGV[2]  id of the draw key of round 1 (public: it names the key, reveals nothing of it)
  ARGV[3]  round 1's commitment, sha256 hex of its seed
  ARGV[4]  round 1's end, epoch ms ('' = none)
  ARGV[5]  id of the draw key of round 2
  ARGV[6]  round 2's commitment ('' = a raffle of one round)
  ARGV[7]  event id of the RaffleRoundOpenedEvent
  ARGV[8]  jackpot name ('' = null)
  ARGV[9]  'publish' | 'spublish'
  ARGV[10] events stream cap, entries (integer >= 1)
  ARGV[11] instance id (for the event)

  Returns: 1 when opened, 0 when the raffle already had a round.
  State:   raffle:round 1, raffle:key, raffle:commitment, raffle:opened, raffle:ends,
           raffle:next_key, raffle:next_commitment.
  Ledger:  'raffle_round' {round, commitment, key, ends, next_commitment, ts}.
  Event:   RaffleRoundOpenedEvent {instance_id, jackpot_name, round, opened, ends, commitment,
           key_id, next_commitment} (app/schemas/events.py).
  Errors:  INSTANCE_NOT_FOUND when the instance has no state; BAD_ARGUMENT for a bad ARGV.
]]
local rcall = redis.call

--- @include "includes/args.lua"
--- @include "includes/json.lua"
--- @include "includes/events.lua"

local now, key_id, commitment, ends = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local next_key, next_commitment, event_id, jackpot_name = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
if not string.match(now, '^%d+$') or key_id == '' or not string.match(commitment, '^%x+$')
    or (ends ~= '' and not string.match(ends, '^%d+$')) or event_id == '' or ARGV[11] == ''
    or (next_commitment ~= '' and (next_key == '' or not string.match(next_commitment, '^%x+$'))) then
  return bad('now, key, commitment, end or event id')
end
local emit_error = check_emit_args(ARGV[10], ARGV[9])
if emit_error then
  return bad(emit_error)
end
local head = rcall('HMGET', KEYS[1], 'status', 'raffle:round')
if not head[1] then
  return redis.error_reply('INSTANCE_NOT_FOUND')
end
if head[2] then
  return 0
end
rcall('HSET', KEYS[1], 'raffle:round', '1', 'raffle:key', key_id, 'raffle:commitment', commitment,
  'raffle:opened', now, 'raffle:ends', ends, 'raffle:next_key', next_key,
  'raffle:next_commitment', next_commitment)
rcall('XADD', KEYS[2], '*', 'type', 'raffle_round', 'round', '1', 'commitment', commitment,
  'key', key_id, 'ends', ends, 'next_commitment', next_commitment, 'ts', now)
local data = '{"instance_id":' .. jstr(ARGV[11])
  .. ',"jackpot_name":' .. jstr(jackpot_name)
  .. ',"round":1,"opened":' .. now
  .. ',"ends":' .. (ends == '' and 'null' or ends)
  .. ',"commitment":' .. jstr(commitment)
  .. ',"key_id":' .. jstr(key_id)
  .. ',"next_commitment":' .. jstr(next_commitment) .. '}'
emit_event(KEYS[3], KEYS[4], KEYS[5], now,
    ARGV[10], ARGV[9], 'RaffleRoundOpenedEvent', event_id, data)
return 1
