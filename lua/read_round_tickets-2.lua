--[[
  Read a chunk of a drawn raffle round's ticket snapshot, the same whether the round is live,
  being archived or archived (archive_round-5.lua): each call is atomic, and the archive
  copies the lines in index order before it removes anything, so lines not yet in the copy
  are still live. Reads only.

  KEYS[1]  instance raffle tickets (hash, fields prefixed '<round>|'; contribute-13.lua)
  KEYS[2]  the archived round's tickets (list, element i-1 = '<player key> <tickets>', or
           '<i> <player key> <tickets>' in a round archived before; archive_round-5.lua)
  ARGV[1]  round
  ARGV[2]  first index to read, from 1
  ARGV[3]  how many (integer >= 1)
  ARGV[4]  the round's players (its record's `players`): the last index

  Returns: the lines '<i> <player key> <tickets>' of indexes ARGV[2] .. min(ARGV[2] + ARGV[3]
    - 1, ARGV[4]) (empty past the end).
  Errors:  BAD_ARGUMENT for a bad ARGV; a plain error when a line is neither copied nor live
    (a defect).
]]
local rcall = redis.call

--- @include "includes/args.lua"
--- @include "includes/money.lua"
--- @include "includes/fenwick.lua"

local round, first, count, players = uint(ARGV[1]), uint(ARGV[2]), uint(ARGV[3]), uint(ARGV[4])
if not round or not first or first < 1 or not count or count < 1 or not players then
  return bad('round, first, count or players')
end
local last = math.min(first + count - 1, players)
if last < first then
  return {}
end
if rcall('LLEN', KEYS[2]) >= last then
  local copied = rcall('LRANGE', KEYS[2], first - 1, last - 1)
  for k, line in ipairs(copied) do
    -- a player key holds ':' before any space: a first word of digits only is an index
    if not string.match(line, '^%d+ ') then
      copied[k] = fmt(first + k - 1) .. ' ' .. line
    end
  end
  return copied
end
local rp = fenwick_prefix(round)
local names = {}
for i = first, last do
  names[#names + 1] = fenwick_holder(rp, i)
end
local pks = rcall('HMGET', KEYS[1], unpack(names))
local fields = {}
for k, pk in ipairs(pks) do
  if not pk then
    error('raffle round ' .. round .. ': index ' .. (first + k - 1) .. ' is neither live nor copied')
  end
  fields[k] = rp .. pk .. '|tickets'
end
local held = rcall('HMGET', KEYS[1], unpack(fields))
local lines = {}
for k, pk in ipairs(pks) do
  lines[k] = fmt(first + k - 1) .. ' ' .. pk .. ' ' .. held[k]
end
return lines
