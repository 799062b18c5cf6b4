-- MustDropBy {min, max (micros)}: the pot's state is a hidden drop value in [min, max); the
-- contribution that lifts the pot (before the max_value cap) to it wins. The reset input is
-- the next drop value, drawn uniformly in [min, max) by the caller, used only on a win.
return {
  inputs = function(trigger, hit_arg, reset_arg, now)
    local d = uint(reset_arg)
    if not d or d < trigger.min or d >= trigger.max then
      return nil, 'next drop value'
    end
    return {next_drop = d}
  end,
  hit = function(trigger, pot, inputs)
    if not pot.state then
      error('corrupt drop value')
    end
    return pot.uncapped >= pot.state, nil
  end,
  reset = function(trigger, pot, inputs)
    return inputs.next_drop
  end,
}
