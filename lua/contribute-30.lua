--[[
  Contribute one player's side bet to one jackpot instance and settle it, atomically:
  idempotency check, status and time window, opt-in, contribution amount, split across the
  pots, the house and the reserves, trigger evaluation, at most one win with its reseed,
  raffle tickets, ledger, winners lists, win event (stream + pub/sub) and idempotency record.

  Money is integer micro-units (1e-6) of the instance currency; shares are parts per million.
  Rounding: each pot's part is floor(amount * share_ppm / 1e6); the house gets the remainder
  (so the parts always add up exactly to the amount); of a pot's
  part floor(part * reserve_ppm / 1e6) goes to its reserve, the rest to its value (all of it to
  the reserve for a non-progressive pot); what would lift a value above max_value goes to the
  reserve too. Values read from Redis must stay below 2^53 micro-units (about 9e9 units).

  Triggers (a contribution of 0 triggers nothing):
    HitRate:    p = 1 - (1 - 1/max_magic_number)^(amount / cost_per_attempt); the pot hits when
                its random r < p * 2^52 (r uniform integer in [0, 2^52), drawn by the caller).
    MustDropBy: the pot hits when value + its value part (before the max_value cap) >= drop_at.
  Several hits: the pot with the highest value wins (ties: the first in engine order); the
  others keep their state (a MustDropBy pot past its drop value hits again next time).
  Win: the winner gets the pot's whole value; the pot restarts at its seed, taken from its
  reserve; any shortfall is the seed deficit, added to pot:<id>:deficit and to
  total:seed_funding (operator money) and written to the ledger as 'seed_funding'. A
  MustDropBy pot takes its next drop value from ARGV. The win is withheld when
  auto_payout_limit >= 0 and the win is above it.
  Raffle (engine.raffle not null): basis = the amount (ticket_basis 'contribution') or ARGV[8]
  ('base_wager'); tickets = floor((carried cost + basis) / ticket_cost); the remainder is
  carried. Tickets hash fields per player key <pk>: <pk>|tickets (count of the round),
  <pk>|cost (carried accumulated cost, micros, < ticket_cost), <pk>|first and <pk>|last (epoch
  ms of the player's first and last counted contribution of the round).
  Opt-in hash: <pk>|opted_in must be '1' when engine.opt_in_required; a Fixed instance uses
  <pk>|value (micros) when the player is opted in and it is not ''; <pk>|count is incremented
  by every contribution.

  KEYS[1]  instance engine (string, JSON, see app/services/engine.py)
  KEYS[2]  instance state (hash)
  KEYS[3]  instance opt-ins (hash)
  KEYS[4]  instance raffle tickets (hash)
  KEYS[5]  instance raffle ticket ranking (sorted set: player key -> tickets)
  KEYS[6]  instance ledger (stream, never trimmed)
  KEYS[7]  instance winners (list, newest first, capped at ARGV[14])
  KEYS[8]  instance events (stream, capped at about 1000 entries)
  KEYS[9]  instance event channel (PUBLISH / SPUBLISH target, in KEYS for its slot)
  KEYS[10] idempotency record (string); when the request has no key, a placeholder in the
           same hash tag that is never read or written (ARGV[11] = '')
  KEYS[11] KEYS[12] KEYS[13] KEYS[14] KEYS[15] KEYS[16] KEYS[17] KEYS[18] KEYS[19] KEYS[20]
  KEYS[21] KEYS[22] KEYS[23] KEYS[24] KEYS[25] KEYS[26] KEYS[27] KEYS[28] KEYS[29] KEYS[30]
           pot winners lists (newest first, capped): KEYS[10 + i] is pot i's, in engine
           order; the unused slots (an instance has at most 20 pots) hold placeholders of the
           same hash tag that are never touched

  ARGV[1]  now, epoch ms (integer)
  ARGV[2]  contribution id (non-empty; also the win id)
  ARGV[3]  operator id
  ARGV[4]  brand id (plain, without the operator)
  ARGV[5]  player id
  ARGV[6]  player key '<operator>:<brand>:<player>' (opt-in and ticket field prefix)
  ARGV[7]  percentage amount: the contribution in micros when the type is Percentage
           (base wager in instance micros * ppm, rounded down by the caller); else ignored
  ARGV[8]  base wager, micros of the instance currency (raffle ticket_basis 'base_wager')
  ARGV[9]  source id ('' = none)
  ARGV[10] gameround id ('' = none)
  ARGV[11] '1' when KEYS[10] is a real idempotency key, '' when the request has none
  ARGV[12] request hash (no newline); compared on a repeat of the idempotency key
  ARGV[13] idempotency record lifetime, ms (integer >= 1; ignored without a key)
  ARGV[14] winners lists cap (integer >= 1)
  ARGV[15] 'publish' | 'spublish' (Redis Cluster)
  ARGV[16] event id of the win event (used only on a win)
  ARGV[17] jackpot name for the win event ('' = null)
  ARGV[18] event metadata, raw JSON ('null' when none), embedded verbatim in the win event
           (not parsed: the caller must pass valid JSON; big numbers keep every digit)
  ARGV[19] currency multipliers, raw JSON object ('{}' when none), embedded verbatim
  for each pot i = 1..P in engine order (P = the engine's pot count, at most 20):
  ARGV[17 + 3i]  pot i id (must match the engine)
  ARGV[18 + 3i]  pot i random r, integer in [0, 2^52) (required for HitRate, else '')
  ARGV[19 + 3i]  pot i next drop value, micros in [min, max) (required for MustDropBy,
                 else ''); used only if pot i wins

  Returns: {replay, outcome}: replay 0 for a new contribution, 1 when the idempotency key was
  seen with the same request hash (then nothing changed and outcome is the stored first
  outcome, byte for byte). outcome is a JSON object; money and counts are decimal strings of
  integers (micros), so no precision is lost:
    {"contribution_id", "instance_id", "timestamp" (number, ms), "amount", "house",
     "win_id" (null | id), "win_pot_id" (null | id), "win_amount" (null | micros),
     "win_withheld" (bool), "seed" (null | micros), "seed_deficit" (null | micros),
     "tickets_awarded", "tickets_total", "accumulated_cost", "contribution_count",
     "gameround_id" (null | id), "source_id" (null | id)}
  Side effects on a win:
    winner record (LPUSH to KEYS[7] and to the pot's list): {"win_id", "contribution_id",
      "instance_id", "win_pot_id", "operator_id", "brand_id", "player_id", "win_amount"
      (micros string), "currency", "timestamp", "win_withheld", "gameround_id", "source_id",
      "seed" (micros string), "seed_deficit" (micros string)}
    event envelope (XADD KEYS[8] fields event_id, event_type, payload; and PUBLISH on KEYS[9]):
      {"event_type": "JackpotWinEvent", "event_id", "data": {"instance_id", "jackpot_name",
       "operator_id", "brand_id", "player_id", "source_id", "gameround_id", "win_id",
       "win_pot_id", "win_amount", "seed", "seed_deficit" (decimal strings in units of the
       instance currency, e.g. "1234.5"), "jackpot_currency", "currency_multipliers",
       "win_withheld", "timestamp", "metadata"}}
  Ledger entries: 'contribution' (always), 'win' and, with a deficit, 'seed_funding'.

  Errors (nothing is written when one is answered):
    BAD_ARGUMENT          an ARGV is malformed, or the pot list does not match the engine
    IDEMPOTENCY_MISMATCH  the idempotency key was used with another request hash
    INSTANCE_NOT_FOUND    no engine or no state for the instance
    INSTANCE_TERMINATED   status Terminated
    INSTANCE_NOT_ACTIVE   status Pending or Paused
    INSTANCE_NOT_STARTED  now < timestamp_start
    INSTANCE_ENDED        now >= timestamp_end
    NOT_OPTED_IN          opt-in required and the player is not opted in
  A corrupt engine or state (a defect, not a refusal) raises a plain script error.
]]
local rcall = redis.call
local TWO52 = 4503599627370496
local MAX_SAFE = 9007199254740991
local MICRO = 1000000
local FIXED_ARGS = 19
local MAX_POTS = 20

local function bad(what)
  return redis.error_reply('BAD_ARGUMENT ' .. what)
end

-- a non-negative integer given as decimal digits, below 2^53; else nil
local function uint(s)
  if type(s) ~= 'string' or #s > 16 or not string.match(s, '^%d+$') then
    return nil
  end
  local n = tonumber(s)
  if n > MAX_SAFE then
    return nil
  end
  return n
end

local function fmt(n)
  return string.format('%d', n)
end

-- exact floor division of integers 0 <= a < 2^53, b >= 1: quotient and remainder
local function idiv(a, b)
  local q = math.floor(a / b)
  local r = a - q * b
  if r < 0 then
    q = q - 1
    r = r + b
  elseif r >= b then
    q = q + 1
    r = r - b
  end
  return q, r
end

-- floor(c * ppm / 1e6) without an intermediate above 2^53 (c < 2^53, 0 <= ppm <= 1e6)
local function mul_ppm(c, ppm)
  local hi, lo = idiv(c, MICRO)
  local low_part = idiv(lo * ppm, MICRO)
  return hi * ppm + low_part
end

-- micros as an exact decimal string of units: 1234500000 -> '1234.5'
local function units(x)
  local whole, frac = idiv(x, MICRO)
  if frac == 0 then
    return fmt(whole)
  end
  local digits = string.gsub(string.format('%06d', frac), '0+$', '')
  return fmt(whole) .. '.' .. digits
end

local function jstr(s)
  if s == nil or s == '' then
    return 'null'
  end
  return cjson.encode(s)
end

local function jbool(b)
  if b then
    return 'true'
  end
  return 'false'
end

-- 1 - (1 - 1/magic)^(amount/cost), accurate for tiny probabilities (no log1p/expm1 in Lua 5.1)
local function hit_probability(amount, cost, magic)
  if amount <= 0 then
    return 0
  end
  if magic <= 1 then
    return 1
  end
  local x = 1 / magic
  local l
  if x < 1e-5 then
    l = -(x + x * x / 2 + x * x * x / 3)
  else
    l = math.log(1 - x)
  end
  local y = (amount / cost) * l
  if y > -1e-5 then
    return -(y + y * y / 2 + y * y * y / 6)
  end
  return 1 - math.exp(y)
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
local percentage_amount = uint(ARGV[7])
if not percentage_amount then
  return bad('percentage amount')
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
local request_hash = ARGV[12]
if string.find(request_hash, '\n', 1, true) then
  return bad('request hash')
end
local idem_ttl = uint(ARGV[13])
if idem and (not idem_ttl or idem_ttl < 1) then
  return bad('idempotency ttl')
end
local cap = uint(ARGV[14])
if not cap or cap < 1 then
  return bad('winners cap')
end
local publish = ARGV[15]
if publish ~= 'publish' and publish ~= 'spublish' then
  return bad('publish command')
end
local event_id, jackpot_name = ARGV[16], ARGV[17]
if event_id == '' then
  return bad('event id')
end
-- embedded verbatim, never parsed here (parsing would cost every contribution and round big
-- numbers); the store serializes both with json.dumps
local metadata_raw, multipliers_raw = ARGV[18], ARGV[19]
if metadata_raw == '' or string.sub(multipliers_raw, 1, 1) ~= '{' then
  return bad('event metadata or currency multipliers')
end
local pot_args = #ARGV - FIXED_ARGS
if pot_args < 0 or pot_args % 3 ~= 0 or pot_args / 3 > MAX_POTS then
  return bad('pot arguments')
end
local npots = pot_args / 3
local arg_pot_ids, randoms, next_drops = {}, {}, {}
for i = 1, npots do
  local base = FIXED_ARGS + 3 * (i - 1)
  arg_pot_ids[i] = ARGV[base + 1]
  if ARGV[base + 2] ~= '' then
    randoms[i] = uint(ARGV[base + 2])
    if not randoms[i] or randoms[i] >= TWO52 then
      return bad('random of pot ' .. arg_pot_ids[i])
    end
  end
  if ARGV[base + 3] ~= '' then
    next_drops[i] = uint(ARGV[base + 3])
    if not next_drops[i] then
      return bad('next drop value of pot ' .. arg_pot_ids[i])
    end
  end
end

-- 2. idempotency -----------------------------------------------------------------------
if idem then
  local stored = rcall('GET', KEYS[10])
  if stored then
    local nl = string.find(stored, '\n', 1, true)
    if not nl then
      error('corrupt idempotency record')
    end
    if string.sub(stored, 1, nl - 1) ~= request_hash then
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
local head = rcall('HMGET', KEYS[2], 'status', 'timestamp_start', 'timestamp_end')
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

-- 4. pots match the engine; read their state ------------------------------------------------
local pots = engine.pots
if #pots ~= npots then
  return bad('expected ' .. #pots .. ' pots')
end
local fields = {}
for i, pot in ipairs(pots) do
  if arg_pot_ids[i] ~= pot.id then
    return bad('pot ' .. i .. ' is ' .. tostring(pot.id))
  end
  local trigger = pot.trigger
  if trigger.type == 'HitRate' then
    if not randoms[i] then
      return bad('random of pot ' .. pot.id)
    end
  elseif trigger.type == 'MustDropBy' then
    local d = next_drops[i]
    if not d or d < trigger.min or d >= trigger.max then
      return bad('next drop value of pot ' .. pot.id)
    end
  else
    error('unknown trigger of pot ' .. tostring(pot.id))
  end
  local prefix = 'pot:' .. pot.id .. ':'
  fields[#fields + 1] = prefix .. 'value'
  fields[#fields + 1] = prefix .. 'reserve'
  fields[#fields + 1] = prefix .. 'drop_at'
end
local pot_state = {}
if npots > 0 then
  pot_state = rcall('HMGET', KEYS[2], unpack(fields))
end

-- 5. opt-in and amount ----------------------------------------------------------------------
local optin = rcall('HMGET', KEYS[3], pk .. '|opted_in', pk .. '|value')
local opted_in = optin[1] == '1'
if engine.opt_in_required == true and not opted_in then
  return redis.error_reply('NOT_OPTED_IN')
end
local amount
local contribution = engine.contribution
if contribution.type == 'Fixed' then
  amount = contribution.amount
  if opted_in and optin[2] and optin[2] ~= '' then
    amount = uint(optin[2])
    if not amount then
      error('corrupt preferred contribution value of ' .. pk)
    end
  end
elseif contribution.type == 'Percentage' then
  amount = percentage_amount
else
  error('unknown contribution type')
end

-- 6. split and triggers (computed, not yet written) --------------------------------------------
local house = amount
local parts, values, reserves = {}, {}, {}
local winner, winner_random = nil, ''
for i, pot in ipairs(pots) do
  local value = tonumber(pot_state[3 * i - 2])
  local reserve = tonumber(pot_state[3 * i - 1])
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
  local uncapped = value + to_value
  if pot.max_value >= 0 then
    local room = pot.max_value - value
    if room < 0 then
      room = 0
    end
    if to_value > room then
      to_reserve = to_reserve + (to_value - room)
      to_value = room
    end
  end
  values[i] = value + to_value
  reserves[i] = reserve + to_reserve
  parts[i] = {to_value, to_reserve}
  if amount > 0 then
    local trigger = pot.trigger
    local hit
    if trigger.type == 'HitRate' then
      local p = hit_probability(amount, trigger.cost_per_attempt, trigger.max_magic_number)
      hit = randoms[i] < p * TWO52
    else
      local drop_at = tonumber(pot_state[3 * i])
      if not drop_at then
        error('corrupt drop value of pot ' .. pot.id)
      end
      hit = uncapped >= drop_at
    end
    if hit and (winner == nil or values[i] > values[winner]) then
      winner = i
    end
  end
end
if house < 0 then
  error('pot shares above 1')
end

local win_amount, seed, from_reserve, deficit, withheld = 0, 0, 0, 0, false
if winner then
  local pot = pots[winner]
  win_amount = values[winner]
  seed = pot.seed
  from_reserve = math.min(reserves[winner], seed)
  deficit = seed - from_reserve
  values[winner] = seed
  reserves[winner] = reserves[winner] - from_reserve
  withheld = engine.auto_payout_limit >= 0 and win_amount > engine.auto_payout_limit
  if pot.trigger.type == 'HitRate' then
    winner_random = fmt(randoms[winner])
  end
end

local raffle = engine.raffle
local has_raffle = raffle ~= nil and raffle ~= cjson.null
local tickets, carried, basis = 0, 0, 0
if has_raffle then
  if raffle.ticket_basis == 'base_wager' then
    basis = base_wager
  else
    basis = amount
  end
  local previous = tonumber(rcall('HGET', KEYS[4], pk .. '|cost') or 0)
  if not previous then
    error('corrupt accumulated cost of ' .. pk)
  end
  tickets, carried = idiv(previous + basis, raffle.ticket_cost)
end

-- 7. writes ------------------------------------------------------------------------------------
local state_update = {'last_updated', ARGV[1]}
for i, pot in ipairs(pots) do
  local prefix = 'pot:' .. pot.id .. ':'
  state_update[#state_update + 1] = prefix .. 'value'
  state_update[#state_update + 1] = fmt(values[i])
  state_update[#state_update + 1] = prefix .. 'reserve'
  state_update[#state_update + 1] = fmt(reserves[i])
end
if winner and pots[winner].trigger.type == 'MustDropBy' then
  state_update[#state_update + 1] = 'pot:' .. pots[winner].id .. ':drop_at'
  state_update[#state_update + 1] = fmt(next_drops[winner])
end
rcall('HSET', KEYS[2], unpack(state_update))
rcall('HINCRBY', KEYS[2], 'total:contributions', fmt(amount))
rcall('HINCRBY', KEYS[2], 'total:house', fmt(house))
if winner then
  rcall('HINCRBY', KEYS[2], 'total:wins', fmt(win_amount))
  if deficit > 0 then
    rcall('HINCRBY', KEYS[2], 'total:seed_funding', fmt(deficit))
    rcall('HINCRBY', KEYS[2], 'pot:' .. pots[winner].id .. ':deficit', fmt(deficit))
  end
end

local count = rcall('HINCRBY', KEYS[3], pk .. '|count', 1)

local tickets_total = 0
if has_raffle then
  tickets_total = rcall('HINCRBY', KEYS[4], pk .. '|tickets', fmt(tickets))
  rcall('HSET', KEYS[4], pk .. '|cost', fmt(carried), pk .. '|last', ARGV[1])
  rcall('HSETNX', KEYS[4], pk .. '|first', ARGV[1])
  if tickets > 0 then
    rcall('ZINCRBY', KEYS[5], fmt(tickets), pk)
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
end
rcall('XADD', KEYS[6], '*', unpack(entry))

if winner then
  local pot = pots[winner]
  local next_drop = ''
  if pot.trigger.type == 'MustDropBy' then
    next_drop = fmt(next_drops[winner])
  end
  rcall('XADD', KEYS[6], '*', 'type', 'win', 'id', contribution_id, 'pot', pot.id,
    'amount', fmt(win_amount), 'seed', fmt(seed), 'from_reserve', fmt(from_reserve),
    'deficit', fmt(deficit), 'withheld', withheld and '1' or '0', 'drop_at', next_drop,
    'random', winner_random, 'operator', operator_id, 'brand', brand_id, 'player', player_id,
    'event_id', event_id, 'ts', ARGV[1])
  if deficit > 0 then
    rcall('XADD', KEYS[6], '*', 'type', 'seed_funding', 'pot', pot.id, 'amount', fmt(deficit),
      'reason', 'reseed', 'win', contribution_id, 'drop_at', next_drop, 'ts', ARGV[1])
  end

  local record = '{"win_id":' .. jstr(contribution_id)
    .. ',"contribution_id":' .. jstr(contribution_id)
    .. ',"instance_id":' .. jstr(engine.id)
    .. ',"win_pot_id":' .. jstr(pot.id)
    .. ',"operator_id":' .. jstr(operator_id)
    .. ',"brand_id":' .. jstr(brand_id)
    .. ',"player_id":' .. jstr(player_id)
    .. ',"win_amount":"' .. fmt(win_amount) .. '"'
    .. ',"currency":' .. jstr(engine.currency)
    .. ',"timestamp":' .. ARGV[1]
    .. ',"win_withheld":' .. jbool(withheld)
    .. ',"gameround_id":' .. jstr(gameround_id)
    .. ',"source_id":' .. jstr(source_id)
    .. ',"seed":"' .. fmt(seed) .. '"'
    .. ',"seed_deficit":"' .. fmt(deficit) .. '"}'
  local pot_list = KEYS[10 + winner]
  rcall('LPUSH', KEYS[7], record)
  rcall('LTRIM', KEYS[7], 0, cap - 1)
  rcall('LPUSH', pot_list, record)
  rcall('LTRIM', pot_list, 0, cap - 1)

  local envelope = '{"event_type":"JackpotWinEvent","event_id":' .. jstr(event_id)
    .. ',"data":{"instance_id":' .. jstr(engine.id)
    .. ',"jackpot_name":' .. jstr(jackpot_name)
    .. ',"operator_id":' .. jstr(operator_id)
    .. ',"brand_id":' .. jstr(brand_id)
    .. ',"player_id":' .. jstr(player_id)
    .. ',"source_id":' .. jstr(source_id)
    .. ',"gameround_id":' .. jstr(gameround_id)
    .. ',"win_id":' .. jstr(contribution_id)
    .. ',"win_pot_id":' .. jstr(pot.id)
    .. ',"win_amount":"' .. units(win_amount) .. '"'
    .. ',"seed":"' .. units(seed) .. '"'
    .. ',"seed_deficit":"' .. units(deficit) .. '"'
    .. ',"jackpot_currency":' .. jstr(engine.currency)
    .. ',"currency_multipliers":' .. multipliers_raw
    .. ',"win_withheld":' .. jbool(withheld)
    .. ',"timestamp":' .. ARGV[1]
    .. ',"metadata":' .. metadata_raw .. '}}'
  rcall('XADD', KEYS[8], 'MAXLEN', '~', '1000', '*', 'event_id', event_id,
    'event_type', 'JackpotWinEvent', 'payload', envelope)
  rcall(publish, KEYS[9], envelope)
end

local outcome = '{"contribution_id":' .. jstr(contribution_id)
  .. ',"instance_id":' .. jstr(engine.id)
  .. ',"timestamp":' .. ARGV[1]
  .. ',"amount":"' .. fmt(amount) .. '"'
  .. ',"house":"' .. fmt(house) .. '"'
if winner then
  outcome = outcome .. ',"win_id":' .. jstr(contribution_id)
    .. ',"win_pot_id":' .. jstr(pots[winner].id)
    .. ',"win_amount":"' .. fmt(win_amount) .. '"'
    .. ',"win_withheld":' .. jbool(withheld)
    .. ',"seed":"' .. fmt(seed) .. '"'
    .. ',"seed_deficit":"' .. fmt(deficit) .. '"'
else
  outcome = outcome .. ',"win_id":null,"win_pot_id":null,"win_amount":null'
    .. ',"win_withheld":false,"seed":null,"seed_deficit":null'
end
outcome = outcome .. ',"tickets_awarded":"' .. fmt(tickets) .. '"'
  .. ',"tickets_total":"' .. fmt(tickets_total) .. '"'
  .. ',"accumulated_cost":"' .. fmt(carried) .. '"'
  .. ',"contribution_count":"' .. fmt(count) .. '"'
  .. ',"gameround_id":' .. jstr(gameround_id)
  .. ',"source_id":' .. jstr(source_id) .. '}'

if idem then
  rcall('SET', KEYS[10], request_hash .. '\n' .. outcome, 'PX', ARGV[13])
end
return {0, outcome}
