-- Events: every event a script emits goes through emit_event. The event types and the
-- fields of each one's `data` are the catalogue in app/schemas/events.py; a contract test
-- decodes every emitted event with it.
--
-- emit_event(events_key, channel_key, epoch_key, now_ms, cap, mode, event_type, event_id,
--   data_json) first makes sure the stream has an epoch: epoch_key (a string next to the
--   stream) is set with SET NX to base36(now_ms) (now_ms: epoch milliseconds passed in ARGV by
--   the caller), so a stream lost with its key (a flushed or restored Redis, a deleted key)
--   starts a new epoch and a client's old offsets are refused instead of misread. It then
--   appends an entry {event_id, event_type, payload} to the instance's events stream, capped
--   near `cap` entries (XADD MAXLEN ~; the cap comes from configuration, passed in ARGV), and
--   publishes payload on the channel with PUBLISH, or SPUBLISH when mode is 'spublish' (Redis
--   Cluster). payload is the envelope {"event_type", "event_id", "data"}; data_json is the
--   data object as JSON text, built by the caller. Returns the envelope.
-- check_emit_args(cap, mode) validates those two ARGV before anything is written: nil when
--   they are good, else an error text.

local function check_emit_args(cap, mode)
  if type(cap) ~= 'string' or not string.match(cap, '^[1-9]%d*$') then
    return 'events stream cap'
  end
  if mode ~= 'publish' and mode ~= 'spublish' then
    return 'publish mode must be publish or spublish'
  end
  return nil
end

local function base36(n)
  local digits, text = '0123456789abcdefghijklmnopqrstuvwxyz', ''
  n = math.floor(n)
  repeat
    local d = n % 36
    text = string.sub(digits, d + 1, d + 1) .. text
    n = (n - d) / 36
  until n == 0
  return text
end

local function emit_event(events_key, channel_key, epoch_key, now_ms, cap, mode, event_type,
                          event_id, data_json)
  redis.call('SET', epoch_key, base36(tonumber(now_ms)), 'NX')
  local envelope = '{"event_type":' .. cjson.encode(event_type)
    .. ',"event_id":' .. cjson.encode(event_id) .. ',"data":' .. data_json .. '}'
  redis.call('XADD', events_key, 'MAXLEN', '~', cap, '*', 'event_id', event_id,
    'event_type', event_type, 'payload', envelope)
  if mode == 'spublish' then
    redis.call('SPUBLISH', channel_key, envelope)
  else
    redis.call('PUBLISH', channel_key, envelope)
  end
  return envelope
end
