--[[
  Read the latest wins of several index groups in one round trip (for example the wins of
  every pot of an instance, or the wins of one brand).

  KEYS[1]  instance wins (hash: win id -> win record JSON; includes/wins.lua)
  KEYS[2]  instance recent-wins index (sorted set; includes/wins.lua)
  ARGV[1]  limit: how many wins per group at most (integer >= 0)
  ARGV[2..] index groups ('i', 'p:<pot>', 'b:<operator>:<brand>', 'bp:<operator>:<brand>:<pot>')

  Returns: one array per group, in ARGV order, of win record JSON strings, newest first.
  Errors:  BAD_ARGUMENT when the limit is not a non-negative integer.
  Reads only: O(groups * (log n + limit)).
]]
local rcall = redis.call

local limit = ARGV[1]
if not string.match(limit, '^%d+$') or #limit > 6 then
  return redis.error_reply('BAD_ARGUMENT limit')
end
limit = tonumber(limit)

local result = {}
for g = 2, #ARGV do
  local group = ARGV[g]
  local records = {}
  if limit > 0 then
    local members = rcall('ZREVRANGEBYLEX', KEYS[2], '(' .. group .. '}', '[' .. group .. '|',
      'LIMIT', 0, limit)
    if #members > 0 then
      local ids = {}
      for i, member in ipairs(members) do
        ids[i] = string.match(member, '|[^|]*|(.*)$')
      end
      records = rcall('HMGET', KEYS[1], unpack(ids))
    end
  end
  result[#result + 1] = records
end
return result
