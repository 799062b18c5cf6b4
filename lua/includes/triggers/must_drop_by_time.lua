-- MustDropByTime {period_ms, window_ms}: periods start at multiples of period_ms since the
-- epoch; the pot's state is a hidden moment (epoch ms) in [period start, start + window_ms).
-- The first contribution at or after the moment, before its period ends, wins. When the
-- moment's period has ended without a win, this period's moment (the hit input) replaces it:
-- one rule whatever the previous period did, so a period's first contribution after its window
-- (drop_by) wins, as it would have after a win in the previous period (whose reset input is
-- this period's moment too). After a win the next period's moment (the reset input) is the
-- state. The caller draws both inputs uniformly in their windows; they are checked against now.
return {
  inputs = function(trigger, hit_arg, reset_arg, now)
    local start = now - now % trigger.period_ms
    local this_moment, next_moment = uint(hit_arg), uint(reset_arg)
    if not this_moment or this_moment < start or this_moment >= start + trigger.window_ms then
      return nil, 'moment of this period'
    end
    local following = start + trigger.period_ms
    if not next_moment or next_moment < following
        or next_moment >= following + trigger.window_ms then
      return nil, 'moment of the next period'
    end
    return {start = start, this_moment = this_moment, next_moment = next_moment}
  end,
  hit = function(trigger, pot, inputs)
    local moment = pot.state
    if not moment then
      error('corrupt drop moment')
    end
    if pot.now < moment - moment % trigger.period_ms + trigger.period_ms then
      return pot.now >= moment, nil
    end
    -- the moment's period passed without a win: this period's moment takes over
    moment = inputs.this_moment
    return pot.now >= moment, moment
  end,
  reset = function(trigger, pot, inputs)
    return inputs.next_moment
  end,
}
