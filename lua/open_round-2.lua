--[[
  Open a raffle's first round: store its hidden seed and publish its commitment
  (sha256 hex of the seed, computed by the caller) in the state and the ledger. Later rounds
  are opened by draw_raffle-9.lua as it closes the previous one. Opening twice is a no-op.

  KEYS[1]  instance state (hash)
  KEYS[2]  instance ledger (stream)
  ARGV[1]  now, epoch ms
  ARGV[2]  seed (hex; hidden until the draw)
  ARGV[3]  commitment, sha256 hex of the seed
  ARGV[4]  the round's end, epoch ms ('' = none)

  Returns: 1 when opened, 0 when the raffle already had a round.
  Errors:  INSTANCE_NOT_FOUND when the instance has no state; BAD_ARGUMENT for a bad ARGV.
]]
local rcall = redis.call
if not string.match(ARGV[1], '^%d+$') or ARGV[2] == '' or ARGV[3] == ''
    or (ARGV[4] ~= '' and not string.match(ARGV[4], '^%d+$')) then
  return redis.error_reply('BAD_ARGUMENT now, seed, commitment or end')
end
local head = rcall('HMGET', KEYS[1], 'status', 'raffle:round')
if not head[1] then
  return redis.error_reply('INSTANCE_NOT_FOUND')
end
if head[2] then
  return 0
end
rcall('HSET', KEYS[1], 'raffle:round', '1', 'raffle:seed', ARGV[2], 'raffle:commitment', ARGV[3],
  'raffle:opened', ARGV[1], 'raffle:ends', ARGV[4])
rcall('XADD', KEYS[2], '*', 'type', 'raffle_round', 'round', '1', 'commitment', ARGV[3],
  'ends', ARGV[4], 'ts', ARGV[1])
return 1
