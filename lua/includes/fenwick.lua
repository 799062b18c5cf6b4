-- A raffle round's Fenwick tree (binary indexed tree) over the players holding its tickets,
-- kept in the instance's raffle tickets hash. Every field of round r starts with the round
-- prefix rp = '<r>|' (fenwick_prefix), so a draw closes a round by moving the round on:
--   <r>|n       players with a ticket; a player's index i (1..n) is their order of joining
--   <r>|#<i>    player key of index i
--   <r>|size    a power of two >= n, doubled as players join; the new node @<2*size> covers
--               every index, so it starts at the round's total
--   <r>|@<i>    node i (1..size): the tickets of indexes i - lowbit(i) + 1 .. i
--   <r>|total   tickets of the round
-- Adding tickets to a player changes log2(size) nodes (fenwick_add); the holder of ticket
-- number k (from 0, in index order) is found by one descent of log2(size) nodes
-- (fenwick_find), so neither ever scans the round.
-- Needs includes/money.lua (fmt).

-- the lowest set bit of an integer i >= 1 (no bit library on fakeredis)
local function lowbit(i)
  local p = 1
  while i % (p + p) == 0 do
    p = p + p
  end
  return p
end

local function fenwick_prefix(round)
  return fmt(round) .. '|'
end

-- field names of round prefix rp
local function fenwick_node(rp, i)
  return rp .. '@' .. fmt(i)
end

local function fenwick_holder(rp, i)
  return rp .. '#' .. fmt(i)
end

local function fenwick_size_field(rp)
  return rp .. 'size'
end

local function fenwick_count_field(rp)
  return rp .. 'n'
end

local function fenwick_total_field(rp)
  return rp .. 'total'
end

-- the nodes covering index i in a tree of `size` (i, i + lowbit(i), ... <= size): the nodes
-- that adding to i changes
local function fenwick_path(i, size)
  local path = {}
  while i <= size do
    path[#path + 1] = i
    i = i + lowbit(i)
  end
  return path
end

-- a new player pk joins round rp of the tree in hash `key`, whose size is `size` and total
-- `total` (decimal string, '0' when none): the player gets the next index, written to
-- #<index> and to the player's own field idx_field; the tree doubles when that index does
-- not fit. Returns the index and the (new) size.
local function fenwick_join(key, rp, pk, idx_field, size, total)
  local idx = redis.call('HINCRBY', key, fenwick_count_field(rp), 1)
  redis.call('HSET', key, idx_field, fmt(idx), fenwick_holder(rp, idx), pk)
  if idx > size then
    size = math.max(1, size + size)
    redis.call('HSET', key, fenwick_size_field(rp), fmt(size), fenwick_node(rp, size), total)
  end
  return idx, size
end

-- add `tickets` (>= 1) to index idx of round rp (tree size `size`) and to the round's total
local function fenwick_add(key, rp, idx, size, tickets)
  local delta = fmt(tickets)
  for _, i in ipairs(fenwick_path(idx, size)) do
    redis.call('HINCRBY', key, fenwick_node(rp, i), delta)
  end
  redis.call('HINCRBY', key, fenwick_total_field(rp), delta)
end

-- the index holding ticket number `target` (0 <= target < the sum of all nodes), by one
-- descent; node(i) gives node i's value (the caller reads it, and may change it in memory)
local function fenwick_find(node, size, target)
  local pos, rest, step = 0, target, size
  while step >= 1 do
    local nxt = pos + step
    if nxt <= size and node(nxt) <= rest then
      pos = nxt
      rest = rest - node(nxt)
    end
    step = step / 2
  end
  return pos + 1
end
