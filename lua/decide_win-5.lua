--[[
  Decide a withheld win, once: approve it (the win is paid) or reject it (its amount goes back
  to the pot's reserve, where it funds the next reseeds). A second decision is refused.

  Money is integer micro-units of the instance currency. Approval moves no money (a withheld
  win is already counted in total:wins). Rejection moves the win amount from total:wins to
  pot:<pot>:reserve, so contributions + seed funding + boosts = pots + reserves + house + wins
  still holds exactly.

  The win record (includes/wins.lua) gets "decision" ('approved' | 'rejected'), "decided_at",
  "decided_by" and "decision_reason"; an approved record also says "win_withheld": false, so
  the winners views show it paid. The record is edited as text: it is written by the
  contribute script with exactly one '"win_withheld":true' and ends with '}'.

  KEYS[1]  instance state (hash)
  KEYS[2]  instance ledger (stream, never trimmed)
  KEYS[3]  instance wins (hash: win id -> win record JSON)
  KEYS[4]  instance events (stream, capped near ARGV[8] entries)
  KEYS[5]  instance event channel (PUBLISH / SPUBLISH target)
  ARGV[1]  now, epoch ms (integer)
  ARGV[2]  win id
  ARGV[3]  decision: 'approve' | 'reject'
  ARGV[4]  reason (free text, may be '')
  ARGV[5]  who decided (admin username or 'cli')
  ARGV[6]  operator whose win it must be ('' = any: the command line)
  ARGV[7]  event id of the WinDecisionEvent
  ARGV[8]  events stream cap, entries (integer >= 1)
  ARGV[9]  'publish' | 'spublish' (Redis Cluster)

  Returns: the updated win record (JSON text).
  Ledger:  'win_approved' {id, pot, amount, by, reason, ts} or
           'win_rejected' {id, pot, amount, by, reason, ts} (amount back to the pot's reserve).
  Event:   WinDecisionEvent {instance_id, win_id, win_pot_id, brand_id ('<operator>:<brand>'),
           player_id, win_amount (decimal string of units), decision, reason, timestamp}.
  Errors (nothing is written when one is answered):
    BAD_ARGUMENT         an ARGV is malformed
    WIN_NOT_FOUND        no such win (or another operator's)
    WIN_NOT_WITHHELD     the win was paid automatically: there is nothing to decide
    WIN_ALREADY_DECIDED  the win was approved or rejected before (detail: the decision)
]]
local rcall = redis.call

--- @include "includes/args.lua"
--- @include "includes/money.lua"
--- @include "includes/events.lua"

-- 1. arguments ----------------------------------------------------------------------------
local now = ARGV[1]
if not string.match(now or '', '^%d+$') or #now > 16 then
  return bad('now_ms')
end
local win_id, decision, reason, by, operator = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if win_id == '' then
  return bad('win id')
end
if decision ~= 'approve' and decision ~= 'reject' then
  return bad('decision')
end
if ARGV[7] == '' then
  return bad('event id')
end
local emit_error = check_emit_args(ARGV[8], ARGV[9])
if emit_error then
  return bad(emit_error)
end

-- 2. the win ---------------------------------------------------------------------------------
local raw = rcall('HGET', KEYS[3], win_id)
if not raw then
  return redis.error_reply('WIN_NOT_FOUND ' .. win_id)
end
local win = cjson.decode(raw)
if operator ~= '' and win.operator_id ~= operator then
  return redis.error_reply('WIN_NOT_FOUND ' .. win_id)
end
if win.decision then
  return redis.error_reply('WIN_ALREADY_DECIDED ' .. win.decision)
end
if win.win_withheld ~= true then
  return redis.error_reply('WIN_NOT_WITHHELD ' .. win_id)
end
local amount = uint(win.win_amount)
if not amount then
  error('corrupt win record ' .. win_id)
end

-- 3. writes ------------------------------------------------------------------------------------
local decided = decision == 'approve' and 'approved' or 'rejected'
local record = string.sub(raw, 1, -2)
if decided == 'approved' then
  record = string.gsub(record, '"win_withheld":true', '"win_withheld":false', 1)
end
record = record .. ',"decision":' .. cjson.encode(decided) .. ',"decided_at":' .. now
  .. ',"decided_by":' .. cjson.encode(by) .. ',"decision_reason":' .. cjson.encode(reason) .. '}'
rcall('HSET', KEYS[3], win_id, record)
if decided == 'rejected' then
  rcall('HINCRBY', KEYS[1], 'total:wins', '-' .. win.win_amount)
  rcall('HINCRBY', KEYS[1], 'pot:' .. win.win_pot_id .. ':reserve', win.win_amount)
end
rcall('HSET', KEYS[1], 'last_updated', now)
rcall('XADD', KEYS[2], '*', 'type', 'win_' .. decided, 'id', win_id, 'pot', win.win_pot_id,
  'amount', win.win_amount, 'by', by, 'reason', reason, 'ts', now)
local data = '{"instance_id":' .. cjson.encode(win.instance_id)
  .. ',"win_id":' .. cjson.encode(win_id)
  .. ',"win_pot_id":' .. cjson.encode(win.win_pot_id)
  .. ',"brand_id":' .. cjson.encode(win.operator_id .. ':' .. win.brand_id)
  .. ',"player_id":' .. cjson.encode(win.player_id)
  .. ',"win_amount":"' .. units(amount) .. '"'
  .. ',"decision":' .. cjson.encode(decided)
  .. ',"reason":' .. cjson.encode(reason)
  .. ',"timestamp":' .. now .. '}'
emit_event(KEYS[4], KEYS[5], ARGV[8], ARGV[9], 'WinDecisionEvent', ARGV[7], data)
return record
