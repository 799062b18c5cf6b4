--[[
  Record the hash of a drawn round's ticket snapshot (computed by the caller from the round's
  frozen tickets after the draw) in the round's record and the ledger, once.

  KEYS[1]  instance raffle rounds (hash: '<round>' -> record, '<round>|snapshot' -> hash)
  KEYS[2]  instance ledger (stream)
  ARGV[1]  round
  ARGV[2]  snapshot hash (sha256 hex)
  ARGV[3]  now, epoch ms

  Returns: 1 when recorded, 0 when it already was.
  Errors:  ROUND_NOT_DRAWN when the round has no record; BAD_ARGUMENT for a bad ARGV.
]]
local rcall = redis.call
if not string.match(ARGV[1], '^%d+$') or not string.match(ARGV[2], '^%x+$')
    or not string.match(ARGV[3], '^%d+$') then
  return redis.error_reply('BAD_ARGUMENT round, hash or now')
end
if rcall('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return redis.error_reply('ROUND_NOT_DRAWN')
end
if rcall('HSETNX', KEYS[1], ARGV[1] .. '|snapshot', ARGV[2]) == 0 then
  return 0
end
rcall('XADD', KEYS[2], '*', 'type', 'raffle_snapshot', 'round', ARGV[1], 'snapshot', ARGV[2],
  'ts', ARGV[3])
return 1
