--[[
  Decide a withheld win, once: approve it (the win is paid) or reject it (its amount goes back
  to the pot's reserve, where it funds the next reseeds). A second decision is refused.

  Money is integer micro-units of the instance currency, as big values (includes/money.lua):
  a decision works at every amount a win can have. Approval moves no money (a withheld win is
  already counted in total:wins). Rejection moves the win amount out of total:wins (a lifetime
  total of any size) to:
    - the pot's reserve, up to INT64_MAX (2^63 - 1, what a reserve holds); any part beyond it
      goes to total:returned;
    - total:returned (money returned to the operator) entirely when the win has no pot (a
      prize of a raffle without pots: operator money) or the instance is Terminated (its pots
      were closed, see set_status-6.lua).
  So contributions + seed funding + boosts = pots + reserves + house + wins + returned still
  holds exactly. Everything is checked before the first write: a decision either writes all
  of it (record, state, ledger, event) or answers an error having written nothing.

  The win record (includes/wins.lua) gets "decision" ('approved' | 'rejected'), "decided_at",
  "decided_by" and "decision_reason"; an approved record also says "win_withheld": false, so
  the winners views show it paid. The record is edited as text: it is written by the
  contribute and draw scripts with exactly one '"win_withheld":true' and ends with '}'.

  KEYS[1]  instance state (hash)
  KEYS[2]  instance ledger (stream; its old days go to the ledger archive)
  KEYS[3]  instance wins (hash: win id -> win record JSON, or the tombstone of a record moved
           to the ledger archive, archive_wins-2.lua: answered WIN_ALREADY_DECIDED, or
           WIN_NOT_WITHHELD for a win paid at once, or WIN_NOT_FOUND for another operator)
  KEYS[4]  instance events (stream, capped near ARGV[8] entries)
  KEYS[5]  instance event channel (PUBLISH / SPUBLISH target)
  KEYS[6]  instance meter counters (hash; includes/meters.lua): a rejection adds the amount to
           'rejected' (of the pot and the instance) and to_returned to the instance's 'returned'
  KEYS[7]  instance events epoch (string, base36 of now_ms, SET NX by the first
           event; includes/events.lua)
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
           'win_rejected' {id, pot, amount, reserve (micros back to the pot's reserve),
           returned (micros returned to the operator), by, reason, ts}.
  Event:   WinDecisionEvent {instance_id, win_id, win_pot_id, brand_id ('<operator>:<brand>'),
           player_id, win_amount (decimal string of units), decision, reason, timestamp}.
  Errors (nothing is written when one is answered):
    BAD_ARGUMENT         an ARGV is malformed
    WIN_NOT_FOUND        no such win (or another operator's)
    WIN_NOT_WITHHELD     the win was paid automatically: there is nothing to decide
    WIN_ALREADY_DECIDED  the win was approved or rejected before (detail: the decision)
  A corrupt win record or state (a defect, not a refusal) raises a plain script error, also
  before anything is written.
]]
local rcall = redis.call

--- @include "includes/args.lua"
--- @include "includes/money.lua"
--- @include "includes/meters.lua"
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
-- a record moved to the ledger archive leaves a tombstone (archive_wins-2.lua)
local _, archived_operator, archived_state = string.match(raw, '^archived (%S+) (%S*) (%S+)$')
if archived_state then
  if operator ~= '' and archived_operator ~= operator then
    return redis.error_reply('WIN_NOT_FOUND ' .. win_id)
  end
  if archived_state == 'paid' then
    return redis.error_reply('WIN_NOT_WITHHELD ' .. win_id)
  end
  return redis.error_reply('WIN_ALREADY_DECIDED ' .. archived_state)
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
local amount = big(win.win_amount)
-- a prize of a raffle without pots has no pot (null)
local pot_id = win.win_pot_id
if pot_id == cjson.null then
  pot_id = ''
end
if not amount or type(pot_id) ~= 'string' or type(win.operator_id) ~= 'string'
    or type(win.brand_id) ~= 'string' then
  error('corrupt win record ' .. win_id)
end
local decided = decision == 'approve' and 'approved' or 'rejected'

-- 3. the money a rejection moves, computed and checked before anything is written ------------
local state_update = {'last_updated', now}
local to_reserve, to_returned = '0', '0'
if decided == 'rejected' then
  local reserve_field = 'pot:' .. pot_id .. ':reserve'
  local head = rcall('HMGET', KEYS[1], 'status', 'total:wins', 'total:returned', reserve_field)
  local wins_total, returned = big(head[2] or '0'), big(head[3] or '0')
  if not head[1] or not wins_total or not returned then
    error('corrupt state: status, total:wins or total:returned')
  end
  local wins_left = checked_sub(wins_total, amount)
  if not wins_left then
    error('corrupt state: total:wins is below win ' .. win_id)
  end
  to_returned = amount
  if pot_id ~= '' and head[1] ~= 'Terminated' then
    local reserve = big(head[4] or '0')
    if not reserve then
      error('corrupt state: ' .. reserve_field)
    end
    local room = checked_sub(INT64_MAX, reserve) or '0'
    to_reserve = big_min(amount, room)
    to_returned = big_sub(amount, to_reserve)
    state_update[#state_update + 1] = reserve_field
    state_update[#state_update + 1] = big_add(reserve, to_reserve)
  end
  state_update[#state_update + 1] = 'total:wins'
  state_update[#state_update + 1] = wins_left
  if to_returned ~= '0' then
    state_update[#state_update + 1] = 'total:returned'
    state_update[#state_update + 1] = big_add(returned, to_returned)
  end
end
local record = string.sub(raw, 1, -2)
if decided == 'approved' then
  record = string.gsub(record, '"win_withheld":true', '"win_withheld":false', 1)
end
record = record .. ',"decision":' .. cjson.encode(decided) .. ',"decided_at":' .. now
  .. ',"decided_by":' .. cjson.encode(by) .. ',"decision_reason":' .. cjson.encode(reason) .. '}'
local data = '{"instance_id":' .. cjson.encode(win.instance_id)
  .. ',"win_id":' .. cjson.encode(win_id)
  .. ',"win_pot_id":' .. cjson.encode(win.win_pot_id)
  .. ',"brand_id":' .. cjson.encode(win.operator_id .. ':' .. win.brand_id)
  .. ',"player_id":' .. cjson.encode(win.player_id)
  .. ',"win_amount":"' .. units(amount) .. '"'
  .. ',"decision":' .. cjson.encode(decided)
  .. ',"reason":' .. cjson.encode(reason)
  .. ',"timestamp":' .. now .. '}'

local meter = {}
if decided == 'rejected' then
  if pot_id ~= '' then
    meter_add(meter, pot_id, 'rejected', amount)
  end
  meter_add(meter, '*', 'rejected', amount)
  meter_add(meter, '*', 'returned', to_returned)
end
local meter_update = meter_plan(KEYS[6], now, meter)

-- 4. writes ------------------------------------------------------------------------------------
rcall('HSET', KEYS[3], win_id, record)
rcall('HSET', KEYS[1], unpack(state_update))
if decided == 'rejected' then
  rcall('XADD', KEYS[2], '*', 'type', 'win_rejected', 'id', win_id, 'pot', pot_id,
    'amount', amount, 'reserve', to_reserve, 'returned', to_returned, 'by', by,
    'reason', reason, 'ts', now)
else
  rcall('XADD', KEYS[2], '*', 'type', 'win_approved', 'id', win_id, 'pot', pot_id,
    'amount', amount, 'by', by, 'reason', reason, 'ts', now)
end
meter_write(KEYS[6], meter_update)
emit_event(KEYS[4], KEYS[5], KEYS[7], now,
    ARGV[8], ARGV[9], 'WinDecisionEvent', ARGV[7], data)
return record
