-- Argument refusals. bad(what) is the error reply of a malformed ARGV (or ARGV that do not
-- match the stored configuration): 'BAD_ARGUMENT <what>'; a script returns it before it
-- writes anything.
local function bad(what)
  return redis.error_reply('BAD_ARGUMENT ' .. what)
end
