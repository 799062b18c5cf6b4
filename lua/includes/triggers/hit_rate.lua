-- HitRate {max_magic_number, cost_per_attempt (micros)}: the contribution buys
-- amount / cost_per_attempt attempts at 1 / max_magic_number each, so
-- p = 1 - (1 - 1/max_magic_number)^(amount / cost_per_attempt); the pot hits when the hit
-- input r (uniform integer in [0, 2^52), drawn by the caller) is below p * 2^52. No state.
local HIT_RANDOM_BOUND = 4503599627370496

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

return {
  inputs = function(trigger, hit_arg, reset_arg, now)
    local r = uint(hit_arg)
    if not r or r >= HIT_RANDOM_BOUND then
      return nil, 'random'
    end
    return {random = r}
  end,
  hit = function(trigger, pot, inputs)
    local p = hit_probability(pot.amount, trigger.cost_per_attempt, trigger.max_magic_number)
    return inputs.random < p * HIT_RANDOM_BOUND, nil
  end,
  reset = function(trigger, pot, inputs)
    return nil
  end,
}
