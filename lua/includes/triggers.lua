-- Trigger types. Each is a module of app/triggers/ (its Python half, which names the type) and
-- the file of includes/triggers/ of the same name (its Lua half), which ends with
--   return {inputs = ..., hit = ..., reset = ...}
-- The loader makes the lines that register each half here from the Python registry
-- (app.triggers.lua_dispatch: register('<Name>', (function() <the file> end)()), one per
-- registered type) and refuses to load when a type lacks its Lua half or a Lua half its type.
-- An entry is:
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

local function register(name, entry)
  if type(entry) ~= 'table' or type(entry.inputs) ~= 'function'
      or type(entry.hit) ~= 'function' or type(entry.reset) ~= 'function' then
    error('the Lua half of trigger type ' .. name .. ' returns no {inputs, hit, reset}')
  end
  TRIGGERS[name] = entry
end

--- @include "generated:triggers"
