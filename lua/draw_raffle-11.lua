--[[
  Draw a raffle round and close it, atomically: distinct winners weighted by tickets, one per
  prize in order, each found in O(log n) in the round's Fenwick tree (includes/fenwick.lua);
  prizes paid from the prize pot; the next round opened (a recurring raffle) so that every
  ticket awarded after this script belongs to it.

  Randomness comes from the caller, which derives it from the round's seed and the hash of
  the round's sealed ticket snapshot (app/services/draws.py, docs/raffles.md "Verifying a draw"), so
  anyone recomputes it and nobody can aim tickets at it before sales close: for the k-th
  winner (prize k) it passes u_k (the accepted random, a decimal integer below 2^256), t_k
  (the winning ticket number, 0 <= t_k < R_k, R_k being the tickets of the players not drawn
  yet, counted from 0 in Fenwick index order) and i_k (the index holding it, as the caller
  found it in the snapshot). The script checks them against the round itself: the round holds
  exactly the snapshot's tickets (ARGV[15]), every t_k is below R_k and falls on index i_k;
  else nothing is written (SNAPSHOT_MISMATCH). A player wins at most once; when every player
  has won, the remaining prizes stay unpaid (reported in unpaid_prizes). A round holds at most
  2^53 - 1 tickets (contribute-13.lua), so every count here is an exact Lua number.

  Money is micro-units of the instance currency. The prize pot is the instance's first pot
  (none: every prize is operator funding). A prize is engine.raffle.prizes[j] (the engine
  holds the prizes as JSON text, or as a list in an engine stored before): {amount} fixed
  or {share_ppm}: floor(pot value at the draw * share_ppm / 1e6). Each prize is taken from
  the pot's value while it lasts, then from the pot's reserve (a raffle pot is never
  reseeded: its reserve is prize money, e.g. a rejected withheld prize, lua/decide_win-7.lua,
  sent back there), and the shortfall is operator funding, added to total:seed_funding and
  to the pot's deficit and written to the ledger as 'seed_funding' (reason raffle_prize).
  total:wins grows by the prizes paid. A prize above auto_payout_limit (>= 0) is withheld.
  The pot value, its shares, the prizes, shortfalls, deficits and totals are exact at any size
  (big values of includes/money.lua: decimal strings, never doubles), so a pot above 2^53
  pays exactly; fixed prizes, like every engine amount, are below 2^53.

  KEYS[1]  instance engine (string, JSON)
  KEYS[2]  instance state (hash: raffle:round, raffle:key, raffle:commitment, raffle:opened,
           raffle:ends, raffle:next_key, raffle:next_commitment, raffle:closed, pot values
           and totals; raffle:seed only in a round opened before seeds were derived)
  KEYS[3]  instance raffle tickets (hash, fields prefixed '<round>|'; read only)
  KEYS[4]  instance ledger (stream)
  KEYS[5]  instance wins (hash: win id -> win record JSON; includes/wins.lua)
  KEYS[6]  instance recent-wins index (sorted set, groups capped at ARGV[7])
  KEYS[7]  instance events (stream, capped near ARGV[9] entries; includes/events.lua)
  KEYS[8]  instance event channel (PUBLISH / SPUBLISH target)
  KEYS[9]  instance raffle rounds (hash: '<round>' -> the drawn round's record, JSON)
  KEYS[10] instance meter counters (hash; includes/meters.lua): each prize adds to wins and
           its shortfall to seed_funding (of the instance, and of the prize pot with a hit)
  KEYS[11] instance events epoch (string, base36 of now_ms, SET NX by the first
           event; includes/events.lua)

  ARGV[1]  now, epoch ms
  ARGV[2]  round to draw (must be the open round)
  ARGV[3]  the round's seed, hex (revealed in the record and the ledger; the caller checked it
           against the commitment; a legacy raffle:seed must equal it)
  ARGV[4]  event id of the RaffleWinEvent (or of the RaffleNoWinnersEvent)
  ARGV[5]  jackpot name ('' = null)
  ARGV[6]  currency multipliers, raw JSON object, embedded verbatim
  ARGV[7]  recent-wins cap per index group (integer >= 1)
  ARGV[8]  'publish' | 'spublish'
  ARGV[9]  events stream cap, entries (integer >= 1)
  ARGV[10] next round's commitment, sha256 hex of its seed ('' = no next round)
  ARGV[11] id of the next round's draw key ('' with no next round)
  ARGV[12] next round's end, epoch ms ('' = none)
  ARGV[13] who draws (scheduler, an admin's name, cli), for the ledger
  ARGV[14] snapshot hash, hex: of the round's ticket lines, sealed (close_round-2.lua), each
           player named by its salted commit (snapshot version 2, app/services/draws.py)
  ARGV[15] the snapshot's tickets (must equal the round's total)
  ARGV[16] commitment of the round after the next ('' = none), published now
  ARGV[17] id of its draw key ('' = none)
  ARGV[18] event id of the next round's RaffleRoundOpenedEvent
  ARGV[19] draw version (2: the randoms of app/services/draws.py)
  ARGV[20 + 3(k-1) .. 22 + 3(k-1)] for each winner k = 1..W, W = min(P, players), P =
           #engine.raffle.prizes: u_k, t_k, i_k (above)

  Returns: the round record (JSON): {round, instance_id, draw_version, key_id, commitment,
    seed, opened, ends, drawn_at, by, snapshot_hash, snapshot_version (2), tickets_total,
    players, randoms[],
    targets[], prize_pot, pot_value,
    winners[{prize, index, operator_id, brand_id, player_id, tickets, win_id, win_amount,
    from_pot, from_reserve, shortfall, win_withheld}], unpaid_prizes[], next_round,
    next_commitment};
    numbers that may exceed 2^53 or are money are decimal strings (micros).
    The next round opens at this round's end (its tickets may have sold since: sales close
    at the end, contribute-13.lua), or now without an end: its raffle:opened.
  Side effects: ledger 'raffle_draw' (with the snapshot hash), one 'win' per winner,
    'seed_funding' per shortfall, 'raffle_round' for the next round; the snapshot hash also
    in KEYS[9] '<round>|snapshot' (for archive_round-5.lua); each win stored once
    (includes/wins.lua; the record
    as contribute-13.lua's, win id '<instance>:<round>:<prize>', indexed under the
    instance, the brand and, with a prize pot, the pot); a RaffleWinEvent
    (includes/events.lua; app/schemas/events.py): {brand_id: null, instance_id,
    jackpot_name, jackpot_currency, currency_multipliers, timestamp, round, win_withheld
    (any winner's), winners[{player_id, brand_id ('<operator>:<brand>'), currency,
    win_amount (units string), win_withheld}], unpaid_prizes}, or, without a ticket in the
    round, a RaffleNoWinnersEvent {instance_id, jackpot_name, timestamp, round, reason
    'NO_TICKETS', unpaid_prizes}; with a next round, its RaffleRoundOpenedEvent {instance_id,
    jackpot_name, round, opened, ends, commitment, key_id, next_commitment}.

  Errors (nothing is written when one is answered):
    BAD_ARGUMENT        an ARGV is malformed or the randoms do not match the prizes
    INSTANCE_NOT_FOUND  no engine or no state
    NOT_A_RAFFLE        the engine has no raffle
    ROUND_MISMATCH      ARGV[2] is not the open round (already drawn, or not opened)
    SEED_MISMATCH       ARGV[3] is not the round's stored (legacy) seed
    ROUND_NOT_CLOSED    the round ends later than now
    SNAPSHOT_MISMATCH   the round's tickets are not the snapshot's (total, targets, indexes)
]]
local rcall = redis.call
local FIXED_ARGS = 19

--- @include "includes/args.lua"
--- @include "includes/money.lua"
--- @include "includes/json.lua"
--- @include "includes/events.lua"
--- @include "includes/wins.lua"
--- @include "includes/fenwick.lua"
--- @include "includes/meters.lua"

-- 1. arguments ------------------------------------------------------------------------------
local now = uint(ARGV[1])
local round = uint(ARGV[2])
if not now or not round or round < 1 then
  return bad('now or round')
end
local seed, event_id, jackpot_name, multipliers_raw = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if seed == '' or event_id == '' or string.sub(multipliers_raw, 1, 1) ~= '{' then
  return bad('seed, event id or currency multipliers')
end
local cap = uint(ARGV[7])
if not cap or cap < 1 then
  return bad('winners cap')
end
local publish, events_cap = ARGV[8], ARGV[9]
local emit_error = check_emit_args(events_cap, publish)
if emit_error then
  return bad(emit_error)
end
local next_commitment, next_key, next_ends = ARGV[10], ARGV[11], ARGV[12]
if (next_commitment == '') ~= (next_key == '') or (next_ends ~= '' and not uint(next_ends)) then
  return bad('next round')
end
local by, snapshot, snapshot_total = ARGV[13], ARGV[14], uint(ARGV[15])
if not string.match(snapshot, '^%x+$') or not snapshot_total then
  return bad('snapshot hash or tickets')
end
local after_commitment, after_key, opened_event_id = ARGV[16], ARGV[17], ARGV[18]
if (after_commitment == '') ~= (after_key == '') or (next_commitment ~= '' and opened_event_id == '') then
  return bad('the round after the next')
end
local draw_version = uint(ARGV[19])
if draw_version ~= 2 then
  return bad('draw version')
end
local picks = {}
if (#ARGV - FIXED_ARGS) % 3 ~= 0 then
  return bad('winners come in threes: random, target, index')
end
for j = FIXED_ARGS + 1, #ARGV, 3 do
  local u, target, index = ARGV[j], uint(ARGV[j + 1]), uint(ARGV[j + 2])
  if not string.match(u, '^%d+$') or #u > 78 or not target or not index or index < 1 then
    return bad('winner ' .. #picks + 1)
  end
  picks[#picks + 1] = {u = u, target = target, index = index}
end

-- 2. instance and round -----------------------------------------------------------------------
local engine_raw = rcall('GET', KEYS[1])
if not engine_raw then
  return redis.error_reply('INSTANCE_NOT_FOUND')
end
local engine = cjson.decode(engine_raw)
local raffle = engine.raffle
if raffle == nil or raffle == cjson.null then
  return redis.error_reply('NOT_A_RAFFLE')
end
-- the JSON text of the prizes (app/services/engine.py); an engine stored before that was a
-- list
local prizes = raffle.prizes
if type(prizes) == 'string' then
  prizes = cjson.decode(prizes)
end
local pot = engine.pots[1]
local head = rcall('HMGET', KEYS[2], 'status', 'raffle:round', 'raffle:seed', 'raffle:commitment',
  'raffle:opened', 'raffle:ends', 'total:wins', 'total:seed_funding',
  pot and ('pot:' .. pot.id .. ':value') or 'status',
  pot and ('pot:' .. pot.id .. ':deficit') or 'status', 'raffle:key',
  pot and ('pot:' .. pot.id .. ':reserve') or 'status')
if not head[1] then
  return redis.error_reply('INSTANCE_NOT_FOUND')
end
local open_round = tonumber(head[2] or 1)
if round ~= open_round or not head[4] or head[4] == '' then
  return redis.error_reply('ROUND_MISMATCH the open round is ' .. open_round)
end
if head[3] and head[3] ~= '' and seed ~= head[3] then
  return redis.error_reply('SEED_MISMATCH')
end
local ends = head[6] or ''
if ends ~= '' and now < tonumber(ends) then
  return redis.error_reply('ROUND_NOT_CLOSED the round ends at ' .. ends)
end
-- money read as big values (decimal strings, includes/money.lua): exact at any size
local total_wins, total_funding = big(head[7] or '0'), big(head[8] or '0')
if not total_wins or not total_funding then
  error('corrupt totals')
end
local pot_value, pot_deficit, pot_reserve = '0', '0', '0'
if pot then
  pot_value, pot_deficit, pot_reserve = big(head[9]), big(head[10] or '0'), big(head[12] or '0')
  if not pot_value or not pot_deficit or not pot_reserve then
    error('corrupt value or deficit of pot ' .. pot.id)
  end
end

-- 3. winners: Fenwick descent over the round's tree, drawn players removed in memory only ------
local rp = fenwick_prefix(round)
local count = rcall('HMGET', KEYS[3], fenwick_total_field(rp), fenwick_count_field(rp),
  fenwick_size_field(rp))
local total, players, size = tonumber(count[1] or 0), tonumber(count[2] or 0),
  tonumber(count[3] or 0)
local nodes = {}
local function node(i)
  local v = nodes[i]
  if v == nil then
    v = tonumber(rcall('HGET', KEYS[3], fenwick_node(rp, i)) or 0)
    nodes[i] = v
  end
  return v
end
if total ~= snapshot_total then
  return redis.error_reply('SNAPSHOT_MISMATCH the round holds ' .. fmt(total) .. ' tickets')
end
if #picks ~= math.min(#prizes, players) then
  return bad('expected ' .. math.min(#prizes, players) .. ' winners')
end
local remaining = total
local winners, targets, unpaid = {}, {}, {}
for j = 1, #prizes do
  if remaining <= 0 or j > #picks then
    unpaid[#unpaid + 1] = j
  else
    local target = picks[j].target
    if target >= remaining then
      return redis.error_reply('SNAPSHOT_MISMATCH ticket ' .. fmt(target) .. ' of ' .. fmt(remaining))
    end
    targets[#targets + 1] = fmt(target)
    local index = fenwick_find(node, size, target)
    if index ~= picks[j].index then
      return redis.error_reply('SNAPSHOT_MISMATCH ticket ' .. fmt(target) .. ' is at index '
        .. fmt(index))
    end
    local pk = rcall('HGET', KEYS[3], fenwick_holder(rp, index))
    local held = tonumber(pk and rcall('HGET', KEYS[3], rp .. pk .. '|tickets') or 0)
    if not pk or held <= 0 then
      error('corrupt raffle tree at index ' .. index)
    end
    for _, i in ipairs(fenwick_path(index, size)) do
      nodes[i] = node(i) - held
    end
    remaining = remaining - held
    local operator_id, brand_id, player_id = string.match(pk, '^([^:]*):([^:]*):(.*)$')
    winners[#winners + 1] = {prize = j, index = index, operator_id = operator_id,
      brand_id = brand_id, player_id = player_id, tickets = held}
  end
end

-- 4. prizes -----------------------------------------------------------------------------------
-- every amount is a big value: a share of a pot above 2^53, and sums of prizes, are exact
local left, paid, funded, any_withheld = pot_value, '0', '0', false
local reserve_left = pot_reserve
for _, w in ipairs(winners) do
  local prize = prizes[w.prize]
  local amount
  if prize.share_ppm then
    amount = big_mul_ppm(pot_value, prize.share_ppm)
  else
    amount = fmt(prize.amount)
  end
  local from_pot = amount
  if big_cmp(amount, left) > 0 then
    from_pot = left
  end
  left = big_sub(left, from_pot)
  -- then the pot's reserve (a raffle pot has no reseed: its reserve is prize money, e.g. a
  -- rejected withheld prize sent back there), and only then the operator
  local from_reserve = big_sub(amount, from_pot)
  if big_cmp(from_reserve, reserve_left) > 0 then
    from_reserve = reserve_left
  end
  reserve_left = big_sub(reserve_left, from_reserve)
  w.amount, w.from_pot, w.from_reserve = amount, from_pot, from_reserve
  w.shortfall = big_sub(big_sub(amount, from_pot), from_reserve)
  w.withheld = engine.auto_payout_limit >= 0 and big_cmp(amount, engine.auto_payout_limit) > 0
  any_withheld = any_withheld or w.withheld
  w.win_id = engine.id .. ':' .. fmt(round) .. ':' .. fmt(w.prize)
  paid = big_add(paid, amount)
  funded = big_add(funded, w.shortfall)
end

local meter = {}
for _, w in ipairs(winners) do
  if pot then
    meter_add(meter, pot.id, 'hits', 1)
    meter_add(meter, pot.id, 'wins', w.amount)
    meter_add(meter, pot.id, 'seed_funding', w.shortfall)
  end
  meter_add(meter, '*', 'wins', w.amount)
  meter_add(meter, '*', 'seed_funding', w.shortfall)
end
local meter_update = meter_plan(KEYS[10], ARGV[1], meter)

-- 5. writes -----------------------------------------------------------------------------------
local ts = ARGV[1]
-- the next round's sales opened at this round's end (or now, without an end)
local next_opened = ends ~= '' and ends or ts
local state = {'raffle:round', fmt(round + 1), 'raffle:key', next_key,
  'raffle:commitment', next_commitment, 'raffle:opened', next_opened, 'raffle:ends', next_ends,
  'raffle:next_key', after_key, 'raffle:next_commitment', after_commitment, 'last_updated', ts}
rcall('HDEL', KEYS[2], 'raffle:seed', 'raffle:closed')
if pot then
  state[#state + 1] = 'pot:' .. pot.id .. ':value'
  state[#state + 1] = left
  state[#state + 1] = 'pot:' .. pot.id .. ':reserve'
  state[#state + 1] = reserve_left
end
if paid ~= '0' then
  state[#state + 1] = 'total:wins'
  state[#state + 1] = big_add(total_wins, paid)
end
if funded ~= '0' then
  state[#state + 1] = 'total:seed_funding'
  state[#state + 1] = big_add(total_funding, funded)
  if pot then
    state[#state + 1] = 'pot:' .. pot.id .. ':deficit'
    state[#state + 1] = big_add(pot_deficit, funded)
  end
end
rcall('HSET', KEYS[2], unpack(state))

local pot_id = pot and pot.id or ''
local random_strings = {}
for k, w in ipairs(winners) do
  random_strings[k] = picks[k].u
end
local record_winners, event_winners = {}, {}
for k, w in ipairs(winners) do
  record_winners[k] = {prize = w.prize, index = w.index, operator_id = w.operator_id,
    brand_id = w.brand_id, player_id = w.player_id, tickets = fmt(w.tickets),
    win_id = w.win_id, win_amount = w.amount, from_pot = w.from_pot,
    from_reserve = w.from_reserve,
    shortfall = w.shortfall, win_withheld = w.withheld}
  event_winners[k] = '{"player_id":' .. jstr(w.player_id)
    .. ',"brand_id":' .. jstr(w.operator_id .. ':' .. w.brand_id)
    .. ',"currency":' .. jstr(engine.currency)
    .. ',"win_amount":"' .. units(w.amount) .. '"'
    .. ',"win_withheld":' .. jbool(w.withheld) .. '}'
end
local record = cjson.encode({round = round, instance_id = engine.id, draw_version = draw_version,
  key_id = head[11] or '', commitment = head[4], snapshot_hash = snapshot, snapshot_version = 2,
  seed = seed, opened = head[5] or '', ends = ends, drawn_at = ts, by = by,
  tickets_total = fmt(total), players = players, randoms = random_strings, targets = targets,
  prize_pot = pot_id, pot_value = pot_value, winners = record_winners,
  unpaid_prizes = unpaid, next_round = next_commitment ~= '' and round + 1 or cjson.null,
  next_commitment = next_commitment})
rcall('HSET', KEYS[9], fmt(round), record, fmt(round) .. '|snapshot', snapshot)

rcall('XADD', KEYS[4], '*', 'type', 'raffle_draw', 'round', fmt(round), 'seed', seed,
  'commitment', head[4], 'key', head[11] or '', 'draw_version', fmt(draw_version),
  'snapshot', snapshot, 'tickets_total', fmt(total), 'players', fmt(players),
  'randoms', table.concat(random_strings, ','), 'targets', table.concat(targets, ','),
  'winners', #winners, 'unpaid', #unpaid, 'by', by, 'event_id', event_id, 'ts', ts)
for _, w in ipairs(winners) do
  rcall('XADD', KEYS[4], '*', 'type', 'win', 'id', w.win_id, 'pot', pot_id,
    'amount', w.amount, 'from_pot', w.from_pot, 'from_reserve', w.from_reserve,
    'deficit', w.shortfall,
    'withheld', w.withheld and '1' or '0', 'raffle_round', fmt(round), 'prize', fmt(w.prize),
    'operator', w.operator_id, 'brand', w.brand_id, 'player', w.player_id,
    'event_id', event_id, 'ts', ts)
  if w.shortfall ~= '0' then
    rcall('XADD', KEYS[4], '*', 'type', 'seed_funding', 'pot', pot_id,
      'amount', w.shortfall, 'reason', 'raffle_prize', 'win', w.win_id, 'ts', ts)
  end
  local brand_path = w.operator_id .. ':' .. w.brand_id
  local record = '{"win_id":' .. jstr(w.win_id)
    .. ',"contribution_id":null'
    .. ',"instance_id":' .. jstr(engine.id)
    .. ',"win_pot_id":' .. jstr(pot_id)
    .. ',"operator_id":' .. jstr(w.operator_id)
    .. ',"brand_id":' .. jstr(w.brand_id)
    .. ',"player_id":' .. jstr(w.player_id)
    .. ',"win_amount":"' .. w.amount .. '"'
    .. ',"currency":' .. jstr(engine.currency)
    .. ',"timestamp":' .. ts
    .. ',"win_withheld":' .. jbool(w.withheld)
    .. ',"gameround_id":null,"source_id":null'
    .. ',"seed":"0","seed_deficit":"' .. w.shortfall .. '"'
    .. ',"raffle_round":' .. fmt(round) .. '}'
  local groups = {'i', 'b:' .. brand_path}
  if pot then
    groups = win_groups(pot_id, brand_path)
  end
  record_win(KEYS[5], KEYS[6], cap, w.win_id, record, groups)
end
meter_write(KEYS[10], meter_update)
if next_commitment ~= '' then
  rcall('XADD', KEYS[4], '*', 'type', 'raffle_round', 'round', fmt(round + 1),
    'commitment', next_commitment, 'key', next_key, 'ends', next_ends,
    'next_commitment', after_commitment, 'ts', ts)
end

local unpaid_json = '['
for k, j in ipairs(unpaid) do
  unpaid_json = unpaid_json .. (k > 1 and ',' or '') .. fmt(j)
end
if #winners > 0 then
  local data = '{"brand_id":null'
    .. ',"instance_id":' .. jstr(engine.id)
    .. ',"jackpot_name":' .. jstr(jackpot_name)
    .. ',"jackpot_currency":' .. jstr(engine.currency)
    .. ',"currency_multipliers":' .. multipliers_raw
    .. ',"timestamp":' .. ts
    .. ',"round":' .. fmt(round)
    .. ',"win_withheld":' .. jbool(any_withheld)
    .. ',"winners":[' .. table.concat(event_winners, ',') .. ']'
    .. ',"unpaid_prizes":' .. unpaid_json .. ']}'
  emit_event(KEYS[7], KEYS[8], KEYS[11], ARGV[1],
    events_cap, publish, 'RaffleWinEvent', event_id, data)
else
  local data = '{"instance_id":' .. jstr(engine.id)
    .. ',"jackpot_name":' .. jstr(jackpot_name)
    .. ',"timestamp":' .. ts
    .. ',"round":' .. fmt(round)
    .. ',"reason":"NO_TICKETS"'
    .. ',"unpaid_prizes":' .. unpaid_json .. ']}'
  emit_event(KEYS[7], KEYS[8], KEYS[11], ARGV[1],
    events_cap, publish, 'RaffleNoWinnersEvent', event_id, data)
end
if next_commitment ~= '' then
  local data = '{"instance_id":' .. jstr(engine.id)
    .. ',"jackpot_name":' .. jstr(jackpot_name)
    .. ',"round":' .. fmt(round + 1)
    .. ',"opened":' .. next_opened
    .. ',"ends":' .. (next_ends == '' and 'null' or next_ends)
    .. ',"commitment":' .. jstr(next_commitment)
    .. ',"key_id":' .. jstr(next_key)
    .. ',"next_commitment":' .. jstr(after_commitment) .. '}'
  emit_event(KEYS[7], KEYS[8], KEYS[11], ARGV[1],
    events_cap, publish, 'RaffleRoundOpenedEvent', opened_event_id,
    data)
end
return record
