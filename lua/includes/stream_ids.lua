-- Stream entry ids ('<ms>-<seq>') compared as numbers, not as text ('9-0' < '10-0').
--
-- stream_id(text) -> ms, seq (numbers), or nil when the text is not a full entry id. Both
--   parts are integers below 2^53 (Redis's clock in ms, and a per-ms sequence), so exact.
-- stream_id_le(a, b) -> whether id a (ms, seq) comes at or before id b.

local function stream_id(text)
  if type(text) ~= 'string' then
    return nil
  end
  local ms, seq = string.match(text, '^(%d+)%-(%d+)$')
  if not ms or #ms > 15 or #seq > 15 then
    return nil
  end
  return tonumber(ms), tonumber(seq)
end

local function stream_id_le(a_ms, a_seq, b_ms, b_seq)
  return a_ms < b_ms or (a_ms == b_ms and a_seq <= b_seq)
end
