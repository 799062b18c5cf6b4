--[[
  Seal a raffle round's sales before its draw: from this script on, every ticket goes to the
  next round (contribute-13.lua reads raffle:closed), so the round's tickets are frozen while
  the drawing process reads them and hashes its snapshot (app/services/raffles.py), whatever
  the clocks of the web processes say. Sealing twice is a no-op.

  KEYS[1]  instance state (hash: raffle:round, raffle:ends, raffle:closed)
  KEYS[2]  instance engine (string, JSON; must have a raffle)
  ARGV[1]  now, epoch ms (the drawing process's clock)
  ARGV[2]  the round to seal (must be the open round)
  ARGV[3]  id of the current draw key: recorded as the round's (raffle:key) when the round has
           none (opened before rounds named their key); its snapshot's salts derive from it

  Returns: 1 when sealed now, 0 when it already was.
  Errors (nothing written):
    BAD_ARGUMENT        an ARGV is malformed
    INSTANCE_NOT_FOUND  no engine or no state
    NOT_A_RAFFLE        the engine has no raffle
    ROUND_MISMATCH      ARGV[2] is not the open round (detail: the open round)
    ROUND_NOT_CLOSED    the round ends later than ARGV[1] (detail: its end)
]]
local rcall = redis.call

--- @include "includes/args.lua"
--- @include "includes/money.lua"

local now, round = uint(ARGV[1]), uint(ARGV[2])
if not now or not round or round < 1 then
  return bad('now or round')
end
local engine_raw = rcall('GET', KEYS[2])
if not engine_raw then
  return redis.error_reply('INSTANCE_NOT_FOUND')
end
local raffle = cjson.decode(engine_raw).raffle
if raffle == nil or raffle == cjson.null then
  return redis.error_reply('NOT_A_RAFFLE')
end
local head = rcall('HMGET', KEYS[1], 'status', 'raffle:round', 'raffle:ends', 'raffle:closed',
  'raffle:commitment', 'raffle:key')
if not head[1] then
  return redis.error_reply('INSTANCE_NOT_FOUND')
end
local open_round = tonumber(head[2] or 1)
if round ~= open_round or not head[5] or head[5] == '' then
  return redis.error_reply('ROUND_MISMATCH the open round is ' .. open_round)
end
if head[4] == fmt(round) then
  return 0
end
local ends = head[3] or ''
if ends ~= '' and now < tonumber(ends) then
  return redis.error_reply('ROUND_NOT_CLOSED the round ends at ' .. ends)
end
rcall('HSET', KEYS[1], 'raffle:closed', fmt(round))
if not head[6] and ARGV[3] and ARGV[3] ~= '' then
  rcall('HSET', KEYS[1], 'raffle:key', ARGV[3])
end
return 1
