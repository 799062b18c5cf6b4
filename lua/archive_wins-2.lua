--[[
  Replace win records that the ledger archive now holds by tombstones, and forget their
  decisions in the books (the archive's manifest keeps them). Only a decided win, or one paid
  without being withheld, is replaced: a withheld win waiting for its decision, a missing
  record or a tombstone already there is left as it is. A tombstone keeps the record's place
  in the wins hash (its count orders the recent-wins index, includes/wins.lua) and says where
  the record went and what a decision request must be answered:

      'archived <day> <operator id> <paid | approved | rejected>'

  The caller writes and verifies the wins file first and never passes a win still in the
  recent-wins index.

  KEYS[1]  instance wins (hash: win id -> record JSON or tombstone)
  KEYS[2]  instance books (hash; read_checkpoint-3.lua)
  ARGV[1]  the archived day (YYYY-MM-DD): the wins file is '<instance>/<day>.wins.jsonl.gz'
  ARGV[2..] win ids

  Returns: the number of records replaced.
  Errors:  BAD_ARGUMENT when the day is not YYYY-MM-DD or a win id is empty.
]]
local rcall = redis.call
local day = ARGV[1]
if type(day) ~= 'string' or not string.match(day, '^%d%d%d%d%-%d%d%-%d%d$') then
  return redis.error_reply('BAD_ARGUMENT day')
end
for i = 2, #ARGV do
  if ARGV[i] == '' then
    return redis.error_reply('BAD_ARGUMENT win id')
  end
end
local replaced = 0
for i = 2, #ARGV do
  local win_id = ARGV[i]
  local raw = rcall('HGET', KEYS[1], win_id)
  if raw and string.sub(raw, 1, 1) == '{' then
    local ok, win = pcall(cjson.decode, raw)
    if ok and type(win) == 'table' and type(win.operator_id) == 'string' then
      local state = nil
      if win.decision == 'approved' or win.decision == 'rejected' then
        state = win.decision
      elseif win.win_withheld ~= true then
        state = 'paid'
      end
      if state then
        rcall('HSET', KEYS[1], win_id,
          'archived ' .. day .. ' ' .. win.operator_id .. ' ' .. state)
        rcall('HDEL', KEYS[2], 'decision:' .. win_id)
        replaced = replaced + 1
      end
    end
  end
end
return replaced
