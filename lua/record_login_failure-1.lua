--[[
  Count one failed login for a username inside a fixed window.

  KEYS[1]  login failure counter of the username (string)
  ARGV[1]  window length in milliseconds

  Returns: the number of failures inside the current window (integer).
  Errors:  BAD_ARGUMENT when the window is not a positive integer.
]]
local rcall = redis.call
local window = tonumber(ARGV[1])
if not window or window <= 0 then
  return redis.error_reply('BAD_ARGUMENT window')
end
local count = rcall('INCR', KEYS[1])
if count == 1 then
  rcall('PEXPIRE', KEYS[1], window)
end
return count
