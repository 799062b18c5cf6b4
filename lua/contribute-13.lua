--[[
  Contribute one player's side bet to one jackpot instance and settle it, atomically:
  idempotency check, status and time window, opt-in, contribution amount, split across the
  pots, the house and the reserves, trigger evaluation, at most one win with its reseed,
  raffle tickets, ledger, the win record, the win event (stream + pub/sub) and the
  idempotency record.

  Money is integer micro-units (1e-6) of the instance currency; shares are parts per million
  (arithmetic in includes/money.lua). The amount is decided by the caller (README "Money": a
  charge in whole minor units of the player's currency, credited at its exact worth rounded
  down to the micro-unit), by one rule for every path: the default charge (ARGV[7], reported
  as ARGV[21]) or, on a Fixed instance whose player is opted in with a preferred value, the
  caller's charge of that preference (ARGV[23]), valid only for the stored preference it was
  priced from (ARGV[22]; any other is refused with PREFERENCE_UNPRICED naming the stored one,
  nothing written, so the caller prices it and calls again). The amount is below 2^53, like
  every engine amount. Pot values and reserves are exact up to 2^63 - 1 (what Redis integers hold):
  a contribution that would take one beyond is refused. The lifetime totals (total:*) and the
  pots' seed deficits are exact decimal strings of any size: they never limit an instance.
  Rounding: each pot's part is floor(amount * share_ppm / 1e6); the house gets the remainder
  (so the parts always add up exactly to the amount); of a pot's
  part floor(part * reserve_ppm / 1e6) goes to its reserve, the rest to its value (all of it to
  the reserve for a non-progressive pot); what would lift a value above max_value goes to the
  reserve too.

  Triggers (includes/triggers/*.lua, one file per type; a contribution of 0 triggers nothing):
  each pot's trigger decides from its engine entry, the pot's state (pot:<id>:drop_at) and the
  pot's two inputs in ARGV whether the pot hits, and what its state becomes after a win.
  Several hits: the pot with the highest value wins (ties: the first in engine order); the
  others keep their state (a MustDropBy pot past its drop value hits again next time).
  Win: the winner gets the pot's whole value; the pot restarts at its seed, taken from its
  reserve; any shortfall is the seed deficit, added to pot:<id>:deficit and to
  total:seed_funding (operator money) and written to the ledger as 'seed_funding'. The win
  is withheld when auto_payout_limit >= 0 and the win is above it.
  Raffle (engine.raffle not null): basis = the amount (ticket_basis 'contribution') or ARGV[8]
  ('base_wager'); tickets = floor((carried cost + basis) / ticket_cost); the remainder is
  carried. Tickets belong to the open round r (state field raffle:round, 1 when absent) while
  its sales are open; a draw closes the round by moving raffle:round on, so every field below
  is prefixed '<r>|' and the next contribution starts a fresh record. Sales of round r close
  at its end (state raffle:ends, epoch ms; '' = no end), atomically here: when the later
  of ARGV[1] and the store's clock (TIME) is at or past the end, or the draw has sealed the round
  (state raffle:closed = r, lua/close_round-2.lua), the tickets go to round r + 1 (which the
  draw of r opens: its fields may exist before it does), or, for a raffle drawn once at its
  end (engine.raffle.at_end), nowhere (no ticket, no record). A round holds at most 2^53 - 1
  tickets (a Lua number's exact range): an award that would pass it is cut to fit. The
  outcome names the round ("raffle_round", null when the tickets went nowhere). Tickets hash fields, per player key <pk>:
  <pk>|tickets (count of the round), <pk>|cost (carried accumulated cost, micros,
  < ticket_cost), <pk>|first and <pk>|last (epoch ms of the player's first and last counted
  contribution of the round), <pk>|idx (the player's Fenwick index, from their first ticket);
  per round: n (players with a ticket), total (tickets), #<i> (pk of Fenwick index i),
  size (a power of two >= n, doubled as players join; the new node @<2*size> covers every
  index, so it starts at the total) and @<i> (Fenwick tree node i over the players' ticket
  counts, i in 1..size; includes/fenwick.lua), so a draw finds the holder of ticket k in
  O(log n) without scanning the round. An award reads the player's fields and the round's
  counts with one HMGET and the log2(size) nodes it changes with another, and writes them
  all with one HSET (a few calls whatever the round's size). The ticket index
  (KEYS[5], all scores 0, read with ZRANGEBYLEX) holds, for each player with a ticket, one
  member per order and scope: '<r %010d>|<order>|<scope>|...' with order t (tickets %016d),
  e (last %015d) or p (player id), and scope b '<op>:<brand>' or o '<op>' (order_members;
  the p members are written where the player gets their first ticket), so a brand's or an
  operator's players page in any order in O(log n + page). An award moves only the members
  whose key changed: the two t members (and the two e members unless the last contribution
  was the same millisecond).
  Opt-in hash: <pk>|opted_in must be '1' when engine.opt_in_required; a Fixed instance charges
  the preferred value (<pk>|value micros, <pk>|currency, <pk>|value_raw) instead of ARGV[7]
  when the player is opted in and it is not ''; <pk>|count is incremented by every
  contribution of a player who has an opt-in record (<pk>|opted_in present: opted in, or out
  since): the count the opt-in status and OptInEvent show. A player without one gets no
  field at all (no bytes per player where opt-in is not required; lua/set_optin-5.lua
  creates the record, lua/purge_optins-2.lua ends them all after a termination).

  KEYS[1]  instance engine (string, JSON, see app/services/engine.py)
  KEYS[2]  instance state (hash)
  KEYS[3]  instance opt-ins (hash)
  KEYS[4]  instance raffle tickets (hash)
  KEYS[5]  instance raffle ticket index (sorted set, lexicographic; see Raffle above)
  KEYS[6]  instance ledger (stream, never trimmed)
  KEYS[7]  instance wins (hash: win id -> win record JSON, never trimmed; includes/wins.lua)
  KEYS[8]  instance recent-wins index (sorted set, groups capped at ARGV[14]; includes/wins.lua)
  KEYS[9]  instance events (stream, capped near ARGV[16] entries)
  KEYS[10] instance event channel (PUBLISH / SPUBLISH target, in KEYS for its slot)
  KEYS[11] idempotency record (string); when the request has no key, a placeholder in the
           same hash tag that is never read or written (ARGV[11] = '')
  KEYS[12] instance meter counters (hash; includes/meters.lua)
  KEYS[13] instance events epoch (string, base36 of now_ms, SET NX by the first
           event; includes/events.lua)

  ARGV[1]  now, epoch ms (integer)
  ARGV[2]  contribution id (non-empty; also the win id)
  ARGV[3]  operator id
  ARGV[4]  brand id (plain, without the operator)
  ARGV[5]  player id
  ARGV[6]  player key '<operator>:<brand>:<player>' (opt-in and ticket field prefix)
  ARGV[7]  amount: the contribution in micros, as the caller charged it (a preferred value
           replaces it on a Fixed instance); '' on a Fixed instance = the engine's amount
  ARGV[8]  base wager, micros of the instance currency (raffle ticket_basis 'base_wager')
  ARGV[9]  source id ('' = none)
  ARGV[10] gameround id ('' = none)
  ARGV[11] '1' when KEYS[11] is a real idempotency key, '' when the request has none
  ARGV[12] request hash (no newline); compared on a repeat of the idempotency key
  ARGV[13] idempotency record lifetime, ms (integer >= 1; ignored without a key)
  ARGV[14] recent-wins cap per index group (integer >= 1)
  ARGV[15] 'publish' | 'spublish' (Redis Cluster)
  ARGV[16] events stream cap, entries (integer >= 1)
  ARGV[17] event id of the win event (used only on a win)
  ARGV[18] jackpot name for the win event ('' = null)
  ARGV[19] event metadata, raw JSON ('null' when none), embedded verbatim in the win event
           (not parsed: the caller must pass valid JSON; big numbers keep every digit)
  ARGV[20] currency multipliers, raw JSON object ('{}' when none), embedded verbatim
  ARGV[21] the default charge as the response reports it: a decimal string in the player's
           currency (the outcome's "paid" unless a preferred value applies)
  ARGV[22] the preference the caller priced: '<value micros>|<currency>|<value_raw>' as the
           opt-in hash holds it, or '' (none priced)
  ARGV[23] that preference's charge: '<paid, decimal string>|<credited micros>' ('' with
           ARGV[22] '')
  ARGV[24] the rates the caller shows amounts with, raw JSON object, embedded verbatim in the
           outcome as "shown" (so a read-back answers as the first answer did)
  ARGV[25] the request's fingerprint line in the record format before the lean one ('' =
           none; no newline): a stored record whose first line is this one matches too, so a
           retry of a request made before an upgrade is still a replay
  for each pot i = 1..P in engine order (P = the engine's pot count):
  ARGV[23 + 3i]  pot i id (must match the engine)
  ARGV[24 + 3i]  pot i hit input (its trigger's; '' when the trigger needs none)
  ARGV[25 + 3i]  pot i reset input (its trigger's; '' when the trigger needs none)

  Returns: {replay, outcome}: replay 0 for a new contribution, outcome a JSON object (below);
  replay 1 when the idempotency key was seen with the same request hash: then nothing changed
  and outcome is the stored record's answer part, byte for byte: the lean record below, or the
  JSON outcome in a record written before the lean one (a JSON object, starting with '{').
  Idempotency record (KEYS[11], a string with a PX lifetime of ARGV[13]):
    '<ARGV[12]>\n1|<contribution id>|<timestamp ms>|<paid>|<tickets_awarded>|<raffle_round
    or ''>|<win_pot_id or ''>|<win_amount micros or ''>|<win_withheld 0|1>|<shown: ARGV[24]
    with a win, '' without>|<gameround id or '' (the rest of the string: it may hold '|')>'
    (app/store/contributions.py ContributionOutcome.from_record): what the replayed or read-back
    answer shows and nothing else; the instance is in the key.
  The outcome JSON; money and counts are decimal strings of integers (micros), so no precision
  is lost:
    {"contribution_id", "instance_id", "timestamp" (number, ms), "amount", "house",
     "paid" (the charge reported, in the player's currency), "shown" (ARGV[24]),
     "win_id" (null | id), "win_pot_id" (null | id), "win_amount" (null | micros),
     "win_withheld" (bool), "seed" (null | micros), "seed_deficit" (null | micros),
     "tickets_awarded", "raffle_round" (the round the tickets belong to; null without a
     raffle, or when sales are closed and no round follows), "tickets_total",
     "accumulated_cost", "contribution_count" (the opt-in record's count after this one;
     "0" for a player without an opt-in record),
     "gameround_id" (null | id), "source_id" (null | id)}
  Side effects on a win:
    win record (HSET KEYS[7] win_id; indexed in KEYS[8] under the groups of
      includes/wins.lua): {"win_id", "contribution_id", "instance_id", "win_pot_id",
      "operator_id", "brand_id", "player_id", "win_amount" (micros string), "currency",
      "timestamp", "win_withheld", "gameround_id", "source_id", "seed" (micros string),
      "seed_deficit" (micros string)}
    JackpotWinEvent (includes/events.lua; data fields as app/schemas/events.py):
      {"brand_id" ('<operator>:<brand>'), "player_id", "source_id", "instance_id",
       "jackpot_name", "timestamp", "win_pot_id", "win_amount", "jackpot_currency",
       "currency_multipliers", "seed", "seed_deficit" (amounts: decimal strings in units of
       the instance currency, e.g. "1234.5"), "win_withheld", "metadata"}
  Ledger entries: 'contribution' (always), 'win' and, with a deficit, 'seed_funding'; the
  meter counters of each (includes/meters.lua) on the UTC day of ARGV[1].

  Errors (nothing is written when one is answered):
    BAD_ARGUMENT          an ARGV is malformed, or the pot list does not match the engine
    IDEMPOTENCY_MISMATCH  the idempotency key was used with another request hash
    INSTANCE_NOT_FOUND    no engine or no state for the instance
    INSTANCE_TERMINATED   status Terminated
    INSTANCE_NOT_ACTIVE   status Pending or Paused
    INSTANCE_NOT_STARTED  now < timestamp_start
    INSTANCE_ENDED        now >= timestamp_end
    NOT_OPTED_IN          opt-in required and the player is not opted in
    PREFERENCE_UNPRICED   the player's stored preference is not the one ARGV[22] priced
                          (detail: '<value micros>|<currency>|<value_raw>' as stored)
    AMOUNT_OVERFLOW       a pot value or reserve would pass 2^63 - 1 micro-units
  A corrupt engine or state (a defect, not a refusal) raises a plain script error; like every
  refusal, before the first write.
  Triggers see pot.uncapped as a number: exact below 2^53, and above it still greater than
  every engine amount (all below 2^53), which is all a trigger compares it with.
]]
local rcall = redis.call
local FIXED_ARGS = 25

--- @include "includes/args.lua"
--- @include "includes/money.lua"
--- @include "includes/json.lua"
--- @include "includes/events.lua"
--- @include "includes/wins.lua"
--- @include "includes/triggers.lua"
--- @include "includes/fenwick.lua"
--- @include "includes/meters.lua"

-- a player's two ticket index members (KEYS[5]) of order 't' (key: the ticket count) or 'e'
-- (key: the last contribution): the brand one and the operator one; r is the round as %010d
local function order_members(r, order, op, brand, player, key)
  return r .. '|' .. order .. '|b|' .. op .. ':' .. brand .. '|' .. key .. '|' .. player,
    r .. '|' .. order .. '|o|' .. op .. '|' .. key .. '|' .. brand .. '|' .. player
end

local function count_key(count)
  return string.format('%016d', count)
end

local function last_key(last)
  return string.format('%015d', last)
end

-- 1. arguments (pure) ---------------------------------------------------------------------
local now = uint(ARGV[1])
if not now then
  return bad('now_ms')
end
local contribution_id = ARGV[2]
local operator_id, brand_id, player_id, pk = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if contribution_id == '' or operator_id == '' or brand_id == '' or player_id == '' or pk == '' then
  return bad('contribution id, operator, brand, player and player key are required')
end
local default_amount = uint(ARGV[7])
if not default_amount and ARGV[7] ~= '' then
  return bad('amount')
end
local base_wager = uint(ARGV[8])
if not base_wager then
  return bad('base wager')
end
local source_id, gameround_id = ARGV[9], ARGV[10]
local idem = ARGV[11]
if idem ~= '1' and idem ~= '' then
  return bad('idempotency flag')
end
idem = idem == '1'
local request_hash, legacy_hash = ARGV[12], ARGV[25]
if string.find(request_hash, '\n', 1, true) or string.find(legacy_hash or '\n', '\n', 1, true) then
  return bad('request hash')
end
local idem_ttl = uint(ARGV[13])
if idem and (not idem_ttl or idem_ttl < 1) then
  return bad('idempotency ttl')
end
local wins_cap = uint(ARGV[14])
if not wins_cap or wins_cap < 1 then
  return bad('winners cap')
end
local publish, events_cap = ARGV[15], ARGV[16]
local emit_error = check_emit_args(events_cap, publish)
if emit_error then
  return bad(emit_error)
end
local event_id, jackpot_name = ARGV[17], ARGV[18]
if event_id == '' then
  return bad('event id')
end
-- embedded verbatim, never parsed here (parsing would cost every contribution and round big
-- numbers); the store serializes both with json.dumps
local metadata_raw, multipliers_raw = ARGV[19], ARGV[20]
if metadata_raw == '' or string.sub(multipliers_raw, 1, 1) ~= '{' then
  return bad('event metadata or currency multipliers')
end
local default_paid, priced, priced_charge, shown = ARGV[21], ARGV[22], ARGV[23], ARGV[24]
if not string.match(default_paid, '^%d+%.?%d*$') then
  return bad('paid')
end
local priced_paid, priced_credited = string.match(priced_charge, '^(%d+%.?%d*)|(%d+)$')
priced_credited = uint(priced_credited)
if (priced == '') ~= (priced_charge == '') or (priced ~= '' and not priced_credited) then
  return bad('priced preference')
end
if string.sub(shown, 1, 1) ~= '{' then
  return bad('shown rates')
end
local pot_args = #ARGV - FIXED_ARGS
if pot_args < 0 or pot_args % 3 ~= 0 then
  return bad('pot arguments')
end
local npots = pot_args / 3

-- 2. idempotency -----------------------------------------------------------------------
if idem then
  local stored = rcall('GET', KEYS[11])
  if stored then
    local nl = string.find(stored, '\n', 1, true)
    if not nl then
      error('corrupt idempotency record')
    end
    local line = string.sub(stored, 1, nl - 1)
    if line ~= request_hash and (legacy_hash == '' or line ~= legacy_hash) then
      return redis.error_reply('IDEMPOTENCY_MISMATCH the key was used with another request')
    end
    return {1, string.sub(stored, nl + 1)}
  end
end

-- 3. instance, status, window ------------------------------------------------------------
local engine_raw = rcall('GET', KEYS[1])
if not engine_raw then
  return redis.error_reply('INSTANCE_NOT_FOUND')
end
local engine = cjson.decode(engine_raw)
local pots = engine.pots
-- the state, read once: status, window and round, the lifetime totals, then each pot's value,
-- reserve and state (head[POT_FIELDS + 3i - 2 .. POT_FIELDS + 3i])
local total_names = {'total:contributions', 'total:house', 'total:wins', 'total:seed_funding'}
local state_fields = {'status', 'timestamp_start', 'timestamp_end', 'raffle:round',
  total_names[1], total_names[2], total_names[3], total_names[4]}
local POT_FIELDS = #state_fields
for _, pot in ipairs(pots) do
  local prefix = 'pot:' .. pot.id .. ':'
  state_fields[#state_fields + 1] = prefix .. 'value'
  state_fields[#state_fields + 1] = prefix .. 'reserve'
  state_fields[#state_fields + 1] = prefix .. 'drop_at'
end
local head = rcall('HMGET', KEYS[2], unpack(state_fields))
local status = head[1]
if not status then
  return redis.error_reply('INSTANCE_NOT_FOUND')
end
if status == 'Terminated' then
  return redis.error_reply('INSTANCE_TERMINATED')
end
if status ~= 'Active' then
  return redis.error_reply('INSTANCE_NOT_ACTIVE ' .. status)
end
if head[2] and head[2] ~= '' and now < tonumber(head[2]) then
  return redis.error_reply('INSTANCE_NOT_STARTED')
end
if head[3] and head[3] ~= '' and now >= tonumber(head[3]) then
  return redis.error_reply('INSTANCE_ENDED')
end

-- 4. pots match the engine, their trigger inputs are valid ----------------------------------
if #pots ~= npots then
  return bad('expected ' .. #pots .. ' pots')
end
local triggers, inputs = {}, {}
for i, pot in ipairs(pots) do
  local base = FIXED_ARGS + 3 * (i - 1)
  if ARGV[base + 1] ~= pot.id then
    return bad('pot ' .. i .. ' is ' .. tostring(pot.id))
  end
  triggers[i] = TRIGGERS[pot.trigger.type]
  if not triggers[i] then
    error('unknown trigger of pot ' .. tostring(pot.id))
  end
  local parsed, why = triggers[i].inputs(pot.trigger, ARGV[base + 2], ARGV[base + 3], now)
  if not parsed then
    return bad(why .. ' of pot ' .. pot.id)
  end
  inputs[i] = parsed
end

-- 5. opt-in and amount ----------------------------------------------------------------------
local optin = rcall('HMGET', KEYS[3], pk .. '|opted_in', pk .. '|value', pk .. '|count',
  pk .. '|currency', pk .. '|value_raw')
local opted_in = optin[1] == '1'
local has_record = optin[1] and true or false
local count = uint(optin[3] or '0')
if not count then
  error('corrupt contribution count of ' .. pk)
end
if has_record then
  count = count + 1
end
if engine.opt_in_required == true and not opted_in then
  return redis.error_reply('NOT_OPTED_IN')
end
local amount, paid = default_amount, default_paid
local contribution = engine.contribution
if contribution.type == 'Fixed' then
  if opted_in and optin[2] and optin[2] ~= '' then
    -- one charge rule: the caller priced this very preference in the player's currency
    local stored = optin[2] .. '|' .. (optin[4] or '') .. '|' .. (optin[5] or '')
    if stored ~= priced then
      return redis.error_reply('PREFERENCE_UNPRICED ' .. stored)
    end
    amount, paid = priced_credited, priced_paid
  elseif not amount then
    amount = contribution.amount
  end
elseif contribution.type ~= 'Percentage' then
  error('unknown contribution type')
elseif not amount then
  return bad('amount of a Percentage instance')
end

-- 6. split and triggers (computed, not yet written) --------------------------------------------
local house = amount
local parts, values, reserves, states, pot_views = {}, {}, {}, {}, {}
local winner = nil
for i, pot in ipairs(pots) do
  -- big values; the parts are small (below the amount)
  local value = big(head[POT_FIELDS + 3 * i - 2])
  local reserve = big(head[POT_FIELDS + 3 * i - 1])
  if not value or not reserve then
    error('corrupt state of pot ' .. pot.id)
  end
  local part = mul_ppm(amount, pot.share_ppm)
  house = house - part
  local to_reserve = mul_ppm(part, pot.reserve_ppm)
  local to_value = part - to_reserve
  if not pot.progressive then
    to_reserve, to_value = part, 0
  end
  local uncapped = tonumber(big_add(value, to_value))
  if pot.max_value >= 0 then
    -- max_value is small: a value at or above it has no room
    local room = 0
    if big_cmp(value, pot.max_value) < 0 then
      room = pot.max_value - uint(value)
    end
    if to_value > room then
      to_reserve = to_reserve + (to_value - room)
      to_value = room
    end
  end
  values[i] = stored_add(value, to_value)
  if not values[i] then
    return redis.error_reply('AMOUNT_OVERFLOW pot ' .. pot.id .. ' would pass 2^63 - 1')
  end
  -- checked after the win, whose reseed may take from it
  reserves[i] = big_add(reserve, to_reserve)
  parts[i] = {to_value, to_reserve}
  pot_views[i] = {amount = amount, uncapped = uncapped,
    state = tonumber(head[POT_FIELDS + 3 * i]), now = now}
  if amount > 0 then
    local hit, new_state = triggers[i].hit(pot.trigger, pot_views[i], inputs[i])
    states[i] = new_state
    if hit and (winner == nil or big_cmp(values[i], values[winner]) > 0) then
      winner = i
    end
  end
end
if house < 0 then
  error('pot shares above 1')
end

local win_amount, seed, from_reserve, deficit, withheld = '0', 0, 0, 0, false
if winner then
  local pot = pots[winner]
  win_amount = values[winner]
  seed = pot.seed
  from_reserve = seed
  if big_cmp(reserves[winner], seed) < 0 then
    from_reserve = uint(reserves[winner])
  end
  deficit = seed - from_reserve
  values[winner] = fmt(seed)
  reserves[winner] = big_sub(reserves[winner], from_reserve)
  withheld = engine.auto_payout_limit >= 0 and big_cmp(win_amount, engine.auto_payout_limit) > 0
  local reset = triggers[winner].reset(pot.trigger, pot_views[winner], inputs[winner])
  states[winner] = reset
end
for i, pot in ipairs(pots) do
  if big_cmp(reserves[i], INT64_MAX) > 0 then
    return redis.error_reply('AMOUNT_OVERFLOW pot ' .. pot.id .. ' would pass 2^63 - 1')
  end
end

local raffle = engine.raffle
local has_raffle = raffle ~= nil and raffle ~= cjson.null
local tickets, carried, basis, tickets_total = 0, 0, 0, 0
local round, held, ticket_update = 0, {}, {}
if has_raffle then
  if raffle.ticket_basis == 'base_wager' then
    basis = base_wager
  else
    basis = amount
  end
  round = tonumber(head[4] or 1)
  -- sales close at the round's end, by the later of the caller's and the store's clocks
  local sale = rcall('HMGET', KEYS[2], 'raffle:ends', 'raffle:closed')
  local closed = sale[2] == fmt(round)
  if not closed and sale[1] and sale[1] ~= '' then
    local ends = tonumber(sale[1])
    closed = now >= ends
    if not closed then
      local clock = rcall('TIME')
      closed = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) >= ends
    end
  end
  if closed then
    if raffle.at_end == true then
      has_raffle, round = false, nil
    else
      round = round + 1
    end
  end
end
if has_raffle then
  local rp = fenwick_prefix(round)
  local tp = rp .. pk .. '|'
  -- tickets, cost, last, idx, first of the player; the round's tree size, total, players
  held = rcall('HMGET', KEYS[4], tp .. 'tickets', tp .. 'cost', tp .. 'last', tp .. 'idx',
    tp .. 'first', fenwick_size_field(rp), fenwick_total_field(rp), fenwick_count_field(rp))
  local previous = tonumber(held[2] or 0)
  if not previous then
    error('corrupt accumulated cost of ' .. pk)
  end
  tickets, carried = idiv(previous + basis, raffle.ticket_cost)
  local room = MAX_SAFE - tonumber(held[7] or 0)
  if tickets > room then
    tickets = room
  end
  tickets_total = tonumber(held[1] or 0) + tickets
  -- every field of the tickets hash this contribution changes, for one HSET
  ticket_update = {tp .. 'tickets', fmt(tickets_total), tp .. 'cost', fmt(carried),
    tp .. 'last', ARGV[1]}
  if not held[5] then
    ticket_update[7], ticket_update[8] = tp .. 'first', ARGV[1]
  end
  if tickets > 0 then
    local idx = tonumber(held[4])
    local new_idx = fenwick_add(KEYS[4], rp, pk, idx, tonumber(held[8] or 0),
      tonumber(held[6] or 0), tonumber(held[7] or 0), tickets, ticket_update)
    if not idx then
      ticket_update[#ticket_update + 1] = tp .. 'idx'
      ticket_update[#ticket_update + 1] = fmt(new_idx)
    end
  end
end

local total_values = {head[5], head[6], head[7], head[8]}
local total_added = {amount, house, win_amount, deficit}
local pot_deficit
if winner and deficit > 0 then
  pot_deficit = big(rcall('HGET', KEYS[2], 'pot:' .. pots[winner].id .. ':deficit') or '0')
  if not pot_deficit then
    error('corrupt seed deficit of pot ' .. pots[winner].id)
  end
end
for i, name in ipairs(total_names) do
  local total = big(total_values[i] or '0')
  if not total then
    error('corrupt ' .. name)
  end
  total_values[i] = big_add(total, total_added[i])
end

-- the meter counters (includes/meters.lua), read and summed before the first write
local meter = {}
for i, pot in ipairs(pots) do
  meter_add(meter, pot.id, 'contributions', parts[i][1] + parts[i][2])
end
meter_add(meter, '*', 'contributions', amount)
meter_add(meter, '*', 'house', house)
if winner then
  local pot_id = pots[winner].id
  meter_add(meter, pot_id, 'hits', 1)
  meter_add(meter, pot_id, 'wins', win_amount)
  meter_add(meter, pot_id, 'seed_funding', deficit)
  meter_add(meter, '*', 'wins', win_amount)
  meter_add(meter, '*', 'seed_funding', deficit)
end
local meter_update = meter_plan(KEYS[12], now, meter)

-- 7. writes ------------------------------------------------------------------------------------
local state_update = {'last_updated', ARGV[1]}
for i, pot in ipairs(pots) do
  local prefix = 'pot:' .. pot.id .. ':'
  state_update[#state_update + 1] = prefix .. 'value'
  state_update[#state_update + 1] = values[i]
  state_update[#state_update + 1] = prefix .. 'reserve'
  state_update[#state_update + 1] = reserves[i]
  if states[i] then
    state_update[#state_update + 1] = prefix .. 'drop_at'
    state_update[#state_update + 1] = fmt(states[i])
  end
end
for i, name in ipairs(total_names) do
  state_update[#state_update + 1] = name
  state_update[#state_update + 1] = total_values[i]
end
if pot_deficit then
  state_update[#state_update + 1] = 'pot:' .. pots[winner].id .. ':deficit'
  state_update[#state_update + 1] = big_add(pot_deficit, deficit)
end
rcall('HSET', KEYS[2], unpack(state_update))

if has_record then
  rcall('HSET', KEYS[3], pk .. '|count', fmt(count))
end

if has_raffle then
  local before = tickets_total - tickets
  rcall('HSET', KEYS[4], unpack(ticket_update))
  if tickets_total > 0 then
    local r = string.format('%010d', round)
    if before > 0 then -- the player-id members stay; a count or time member that changed moves
      local gone, added = {}, {}
      if tickets_total ~= before then
        local old_b, old_o = order_members(r, 't', operator_id, brand_id, player_id,
          count_key(before))
        local new_b, new_o = order_members(r, 't', operator_id, brand_id, player_id,
          count_key(tickets_total))
        gone[1], gone[2] = old_b, old_o
        added[1], added[2], added[3], added[4] = 0, new_b, 0, new_o
      end
      local last = tonumber(held[3])
      if last ~= now then
        local old_b, old_o = order_members(r, 'e', operator_id, brand_id, player_id,
          last_key(last))
        local new_b, new_o = order_members(r, 'e', operator_id, brand_id, player_id,
          last_key(now))
        local g, a = #gone, #added
        gone[g + 1], gone[g + 2] = old_b, old_o
        added[a + 1], added[a + 2], added[a + 3], added[a + 4] = 0, new_b, 0, new_o
      end
      if #gone > 0 then
        rcall('ZREM', KEYS[5], unpack(gone))
        rcall('ZADD', KEYS[5], unpack(added))
      end
    else
      local t_b, t_o = order_members(r, 't', operator_id, brand_id, player_id,
        count_key(tickets_total))
      local e_b, e_o = order_members(r, 'e', operator_id, brand_id, player_id, last_key(now))
      -- NUL sorts before any byte, so players order by id alone; the brand follows the last NUL
      rcall('ZADD', KEYS[5], 0, t_b, 0, t_o, 0, e_b, 0, e_o,
        0, r .. '|p|b|' .. operator_id .. ':' .. brand_id .. '|' .. player_id,
        0, r .. '|p|o|' .. operator_id .. '|' .. player_id .. '\0' .. brand_id)
    end
  end
end

local entry = {'type', 'contribution', 'id', contribution_id, 'operator', operator_id,
  'brand', brand_id, 'player', player_id, 'amount', fmt(amount), 'house', fmt(house),
  'source', source_id, 'gameround', gameround_id, 'ts', ARGV[1]}
for i, pot in ipairs(pots) do
  local prefix = 'pot:' .. pot.id .. ':'
  entry[#entry + 1] = prefix .. 'value'
  entry[#entry + 1] = fmt(parts[i][1])
  entry[#entry + 1] = prefix .. 'reserve'
  entry[#entry + 1] = fmt(parts[i][2])
  entry[#entry + 1] = prefix .. 'random'
  entry[#entry + 1] = ARGV[FIXED_ARGS + 3 * i - 1]
end
if has_raffle then
  entry[#entry + 1] = 'ticket_basis'
  entry[#entry + 1] = fmt(basis)
  entry[#entry + 1] = 'tickets'
  entry[#entry + 1] = fmt(tickets)
  entry[#entry + 1] = 'accumulated_cost'
  entry[#entry + 1] = fmt(carried)
  entry[#entry + 1] = 'round'
  entry[#entry + 1] = fmt(round)
end
rcall('XADD', KEYS[6], '*', unpack(entry))
meter_write(KEYS[12], meter_update)

if winner then
  local pot = pots[winner]
  local next_state = ''
  if states[winner] then
    next_state = fmt(states[winner])
  end
  rcall('XADD', KEYS[6], '*', 'type', 'win', 'id', contribution_id, 'pot', pot.id,
    'amount', win_amount, 'seed', fmt(seed), 'from_reserve', fmt(from_reserve),
    'deficit', fmt(deficit), 'withheld', withheld and '1' or '0', 'drop_at', next_state,
    'random', ARGV[FIXED_ARGS + 3 * winner - 1], 'operator', operator_id, 'brand', brand_id,
    'player', player_id, 'event_id', event_id, 'ts', ARGV[1])
  if deficit > 0 then
    rcall('XADD', KEYS[6], '*', 'type', 'seed_funding', 'pot', pot.id, 'amount', fmt(deficit),
      'reason', 'reseed', 'win', contribution_id, 'drop_at', next_state, 'ts', ARGV[1])
  end

  local brand_path = operator_id .. ':' .. brand_id
  local record = '{"win_id":' .. jstr(contribution_id)
    .. ',"contribution_id":' .. jstr(contribution_id)
    .. ',"instance_id":' .. jstr(engine.id)
    .. ',"win_pot_id":' .. jstr(pot.id)
    .. ',"operator_id":' .. jstr(operator_id)
    .. ',"brand_id":' .. jstr(brand_id)
    .. ',"player_id":' .. jstr(player_id)
    .. ',"win_amount":"' .. win_amount .. '"'
    .. ',"currency":' .. jstr(engine.currency)
    .. ',"timestamp":' .. ARGV[1]
    .. ',"win_withheld":' .. jbool(withheld)
    .. ',"gameround_id":' .. jstr(gameround_id)
    .. ',"source_id":' .. jstr(source_id)
    .. ',"seed":"' .. fmt(seed) .. '"'
    .. ',"seed_deficit":"' .. fmt(deficit) .. '"}'
  record_win(KEYS[7], KEYS[8], wins_cap, contribution_id, record,
    win_groups(pot.id, brand_path))

  local data = '{"brand_id":' .. jstr(brand_path)
    .. ',"player_id":' .. jstr(player_id)
    .. ',"source_id":' .. jstr(source_id)
    .. ',"instance_id":' .. jstr(engine.id)
    .. ',"jackpot_name":' .. jstr(jackpot_name)
    .. ',"timestamp":' .. ARGV[1]
    .. ',"win_pot_id":' .. jstr(pot.id)
    .. ',"win_amount":"' .. units(win_amount) .. '"'
    .. ',"jackpot_currency":' .. jstr(engine.currency)
    .. ',"currency_multipliers":' .. multipliers_raw
    .. ',"seed":"' .. units(seed) .. '"'
    .. ',"seed_deficit":"' .. units(deficit) .. '"'
    .. ',"win_withheld":' .. jbool(withheld)
    .. ',"metadata":' .. metadata_raw .. '}'
  emit_event(KEYS[9], KEYS[10], KEYS[13], ARGV[1],
    events_cap, publish, 'JackpotWinEvent', event_id, data)
end

local outcome = '{"contribution_id":' .. jstr(contribution_id)
  .. ',"instance_id":' .. jstr(engine.id)
  .. ',"timestamp":' .. ARGV[1]
  .. ',"amount":"' .. fmt(amount) .. '"'
  .. ',"house":"' .. fmt(house) .. '"'
  .. ',"paid":"' .. paid .. '"'
  .. ',"shown":' .. shown
if winner then
  outcome = outcome .. ',"win_id":' .. jstr(contribution_id)
    .. ',"win_pot_id":' .. jstr(pots[winner].id)
    .. ',"win_amount":"' .. win_amount .. '"'
    .. ',"win_withheld":' .. jbool(withheld)
    .. ',"seed":"' .. fmt(seed) .. '"'
    .. ',"seed_deficit":"' .. fmt(deficit) .. '"'
else
  outcome = outcome .. ',"win_id":null,"win_pot_id":null,"win_amount":null'
    .. ',"win_withheld":false,"seed":null,"seed_deficit":null'
end
outcome = outcome .. ',"tickets_awarded":"' .. fmt(tickets) .. '"'
  .. ',"raffle_round":' .. (round and round > 0 and fmt(round) or 'null')
  .. ',"tickets_total":"' .. fmt(tickets_total) .. '"'
  .. ',"accumulated_cost":"' .. fmt(carried) .. '"'
  .. ',"contribution_count":"' .. fmt(count) .. '"'
  .. ',"gameround_id":' .. jstr(gameround_id)
  .. ',"source_id":' .. jstr(source_id) .. '}'

if idem then
  -- the lean record: only what the replayed answer needs (see "Idempotency record" above)
  local record = '1|' .. contribution_id .. '|' .. ARGV[1] .. '|' .. paid .. '|' .. fmt(tickets)
    .. '|' .. (round and round > 0 and fmt(round) or '') .. '|'
  if winner then
    record = record .. pots[winner].id .. '|' .. win_amount .. '|' .. (withheld and '1' or '0')
      .. '|' .. shown
  else
    record = record .. '||0|'
  end
  rcall('SET', KEYS[11], request_hash .. '\n' .. record .. '|' .. gameround_id, 'PX', ARGV[13])
end
return {0, outcome}
