--[[
  Archive a drawn raffle round, one bounded step per call: copy its ticket snapshot to a
  compact list, then remove its live ticket fields and index members, then move its record
  to keys of its own that expire at drawn_at + retention. The caller repeats the call (and
  checks the copy against the round's snapshot hash before the first 'clear' step); each
  step does at most ARGV[3] items of work, and the progress lives in Redis, so an archive
  whose process stopped midway resumes where it was.

  The round is closed (drawn: raffle:round has moved on), so nothing writes its fields any
  more; see contribute-13.lua for their layout ('<r>|...' fields of the tickets hash, index
  members '<r %010d>|...').

  KEYS[1]  instance raffle tickets (hash, fields prefixed '<round>|')
  KEYS[2]  instance raffle ticket index (sorted set, lexicographic)
  KEYS[3]  instance raffle rounds (hash: '<r>' -> record JSON, '<r>|snapshot' -> snapshot
           hash, '<r>|archive' -> this script's progress: 'copy', 'clear:<HSCAN cursor>' or
           'unindex')
  KEYS[4]  the archived round (hash: record, snapshot), expiring with KEYS[5]
  KEYS[5]  the archived round's tickets (list, element i-1 = '<player key> <tickets>' for
           Fenwick index i: the lines the snapshot hash is taken over, without the newline
           and without the index, which is the position; a round archived before kept
           '<i> <player key> <tickets>', and readers take both: app/store/raffles.py)
  ARGV[1]  round
  ARGV[2]  step: 'copy' (the next ARGV[3] players to KEYS[5]) | 'clear' (remove the next
           chunk of live data; the copy must be complete)
  ARGV[3]  chunk: players copied, hash entries scanned (HSCAN COUNT) or index members
           removed per call (integer >= 1)
  ARGV[4]  retention, ms after the draw (integer >= 0): KEYS[4] and KEYS[5] expire then

  Returns: {phase, done, total}: phase 'copying' (done of total players copied), 'copied'
    (the copy is complete: total players), 'clearing' (live data being removed) or
    'archived' (nothing of the round is left in KEYS[1..3]; its record is in KEYS[4]).
  Errors (nothing written):
    BAD_ARGUMENT     an ARGV is malformed
    ROUND_NOT_DRAWN  the round has neither a record in KEYS[3] nor an archive in KEYS[4]
    SNAPSHOT_MISSING the round's snapshot hash is not recorded yet (record_snapshot-2.lua)
]]
local rcall = redis.call

--- @include "includes/money.lua"
--- @include "includes/args.lua"
--- @include "includes/fenwick.lua"

local round, step, chunk, retention = uint(ARGV[1]), ARGV[2], uint(ARGV[3]), uint(ARGV[4])
if not round or round < 1 or not chunk or chunk < 1 or not retention then
  return bad('round, chunk or retention')
end
if step ~= 'copy' and step ~= 'clear' then
  return bad('step must be copy or clear')
end
local r = fmt(round)
local rp = fenwick_prefix(round)
local head = rcall('HMGET', KEYS[3], r, rp .. 'snapshot', rp .. 'archive')
local record, snapshot, progress = head[1], head[2], head[3]
if not record then
  if rcall('HEXISTS', KEYS[4], 'record') == 1 then
    return {'archived', 0, 0}
  end
  return redis.error_reply('ROUND_NOT_DRAWN')
end
if not snapshot then
  return redis.error_reply('SNAPSHOT_MISSING')
end

local players = tonumber(rcall('HGET', KEYS[1], fenwick_count_field(rp)) or 0)
local copying = not progress or progress == 'copy'

-- copy: the next chunk of (index, player key, tickets) in index order -----------------------
if step == 'copy' then
  if not copying then
    return {'copied', players, players}
  end
  local copied = rcall('LLEN', KEYS[5])
  if copied >= players then
    return {'copied', players, players}
  end
  local last = math.min(players, copied + chunk)
  local lines = {}
  for i = copied + 1, last do
    local pk = rcall('HGET', KEYS[1], fenwick_holder(rp, i))
    local held = rcall('HGET', KEYS[1], rp .. pk .. '|tickets')
    lines[#lines + 1] = pk .. ' ' .. held
  end
  rcall('RPUSH', KEYS[5], unpack(lines))
  if not progress then
    rcall('HSET', KEYS[3], rp .. 'archive', 'copy')
  end
  if last >= players then
    return {'copied', players, players}
  end
  return {'copying', last, players}
end

-- clear: the copy is complete; remove the live fields, then the index members ----------------
if copying then
  local copied = rcall('LLEN', KEYS[5])
  if copied < players then
    return {'copying', copied, players}
  end
  progress = 'clear:0'
end
local cursor = string.match(progress, '^clear:(%d+)$')
if cursor then
  local scan = rcall('HSCAN', KEYS[1], cursor, 'MATCH', rp .. '*', 'COUNT', chunk)
  local found = scan[2]
  local fields = {}
  for k = 1, #found, 2 do
    fields[#fields + 1] = found[k]
  end
  if #fields > 0 then
    rcall('HDEL', KEYS[1], unpack(fields))
  end
  if scan[1] == '0' then
    rcall('HSET', KEYS[3], rp .. 'archive', 'unindex')
  else
    rcall('HSET', KEYS[3], rp .. 'archive', 'clear:' .. scan[1])
  end
  return {'clearing', 0, players}
end

local prefix = string.format('%010d', round) .. '|'
local members = rcall('ZRANGEBYLEX', KEYS[2], '[' .. prefix, '[' .. prefix .. '\255',
  'LIMIT', 0, chunk)
if #members > 0 then
  rcall('ZREM', KEYS[2], unpack(members))
  if #members == chunk then
    return {'clearing', 0, players}
  end
end

-- done: the record moves to keys of its own that expire ------------------------------------
local drawn_at = tonumber(cjson.decode(record).drawn_at) or 0
rcall('HSET', KEYS[4], 'record', record, 'snapshot', snapshot)
local expires = fmt(drawn_at + retention)
rcall('PEXPIREAT', KEYS[4], expires)
rcall('PEXPIREAT', KEYS[5], expires)
rcall('HDEL', KEYS[3], r, rp .. 'snapshot', rp .. 'archive')
return {'archived', players, players}
