-- A raffle round's Fenwick tree (binary indexed tree) over the players holding its tickets,
-- kept in the instance's raffle tickets hash. Every field of round r starts with the round
-- prefix rp = '<r>|' (fenwick_prefix), so a draw closes a round by moving the round on:
--   <r>|n       players with a ticket; a player's index i (1..n) is their order of joining
--   <r>|#<i>    player key of index i
--   <r>|size    a power of two >= n, doubled as players join; the new node @<2*size> covers
--               every index, so it starts at the round's total
--   <r>|@<i>    node i (1..size): the tickets of indexes i - lowbit(i) + 1 .. i
--   <r>|total   tickets of the round
-- Adding tickets to a player changes log2(size) nodes, read with one HMGET and written with
-- the caller's one HSET (fenwick_add); the holder of ticket number k (from 0, in index
-- order) is found by one descent of log2(size) nodes (fenwick_find), so neither ever scans
-- the round.
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

-- the field/value pairs that add `tickets` (>= 1) to player pk of round rp, appended to
-- `fields` for the caller's one HSET: idx is the player's index (nil: the player joins, at
-- index n + 1, and the tree doubles when that does not fit); n, size and total (numbers)
-- are the round's players, tree size and tickets as the caller read them. The nodes on the
-- path are read with one HMGET, except the root (node size covers every index, so it is
-- always the round's total; a new root starts there). Returns the player's index.
local function fenwick_add(key, rp, pk, idx, n, size, total, tickets, fields)
  local k = #fields
  if not idx then
    idx = n + 1
    fields[k + 1], fields[k + 2] = fenwick_count_field(rp), fmt(idx)
    fields[k + 3], fields[k + 4] = fenwick_holder(rp, idx), pk
    k = k + 4
    if idx > size then
      size = math.max(1, size + size)
      fields[k + 1], fields[k + 2] = fenwick_size_field(rp), fmt(size)
      k = k + 2
    end
  end
  -- the path below the root; adding p = lowbit(i) to i leaves a lowest bit of at least 2p,
  -- so the next lowbit is found from p up instead of from 1
  local names, i, p, node = {}, idx, lowbit(idx), rp .. '@'
  while i < size do
    names[#names + 1] = node .. fmt(i)
    i = i + p
    while i % (p + p) == 0 do
      p = p + p
    end
  end
  if #names > 0 then
    local values = redis.call('HMGET', key, unpack(names))
    for j, name in ipairs(names) do
      local value = tonumber(values[j] or 0)
      if not value then
        error('corrupt raffle tree node ' .. name)
      end
      fields[k + 1], fields[k + 2] = name, fmt(value + tickets)
      k = k + 2
    end
  end
  local new_total = fmt(total + tickets)
  fields[k + 1], fields[k + 2] = fenwick_node(rp, size), new_total
  fields[k + 3], fields[k + 4] = fenwick_total_field(rp), new_total
  return idx
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
