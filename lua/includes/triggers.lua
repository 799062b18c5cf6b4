-- Trigger types. Each file of includes/triggers/ registers one type in TRIGGERS, under the
-- name the engine JSON uses (its Python half is a module of app/triggers/). An entry is:
--   inputs(trigger, hit_arg, reset_arg, now) -> inputs | nil, error text
--       parses and checks the pot's two ARGV strings (the caller's random inputs); runs in
--       the argument checks, before anything is read or written
--   hit(trigger, pot, inputs) -> hit (bool), new state (number | nil = unchanged)
--       pot = {amount, uncapped (value + its value part before the max_value cap), state
--       (the pot's drop_at field as a number, nil when empty), now}; called only when
--       amount > 0
--   reset(trigger, pot, inputs) -> the pot's state after it won (number | nil = none)
-- A pot's state is its state-hash field pot:<id>:drop_at (a hidden value or moment).
-- Needs includes/money.lua.
local TRIGGERS = {}

--- @include "includes/triggers/*.lua"
