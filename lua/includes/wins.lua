-- Wins are stored once: a record in the instance's wins hash (win id -> record JSON, never
-- trimmed), and its id in the instance's recent-wins index, a sorted set whose members all
-- have score 0 and sort by name: '<group>|<sequence, 16 digits>|<win id>'. A group keeps
-- only its latest `cap` members. Groups (app/store/wins.py builds the same names to read):
--   'i'                             every win of the instance
--   'p:<pot id>'                    the wins of one pot
--   'b:<operator>:<brand>'          the wins of one brand
--   'bp:<operator>:<brand>:<pot>'   the wins of one brand in one pot
-- Ids never contain '|' (ids are [A-Za-z0-9_.-]), so '[<group>|' .. '(<group>}' spans
-- exactly one group ('}' follows '|').
--
-- win_groups(pot_id, brand_path) the groups of a pot win.
-- record_win(wins_key, index_key, cap, win_id, record_json, groups) stores the record and
--   indexes it in each group; O(log n) per group.

local function win_groups(pot_id, brand_path)
  return {'i', 'p:' .. pot_id, 'b:' .. brand_path, 'bp:' .. brand_path .. ':' .. pot_id}
end

local function record_win(wins_key, index_key, cap, win_id, record_json, groups)
  redis.call('HSET', wins_key, win_id, record_json)
  -- records are never removed, so the count is a sequence that orders the wins
  local seq = string.format('%016d', redis.call('HLEN', wins_key))
  for _, group in ipairs(groups) do
    redis.call('ZADD', index_key, 0, group .. '|' .. seq .. '|' .. win_id)
    local low, high = '[' .. group .. '|', '(' .. group .. '}'
    local excess = redis.call('ZLEXCOUNT', index_key, low, high) - cap
    if excess > 0 then
      local oldest = redis.call('ZRANGEBYLEX', index_key, low, high, 'LIMIT', 0, excess)
      redis.call('ZREM', index_key, unpack(oldest))
    end
  end
end
