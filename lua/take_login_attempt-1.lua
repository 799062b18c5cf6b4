--[[
  Take one login attempt of a subject (a client address and a username) inside a fixed
  window: counted and decided in this one call, so attempts made at the same time cannot all
  pass a check that none of them has been counted in yet. The caller checks the password only
  when allowed, and deletes the counter after a successful login.

  KEYS[1]  login attempt counter of the subject (string; expires with its window)
  ARGV[1]  attempts allowed per window (integer >= 1)
  ARGV[2]  window length in milliseconds (integer >= 1), from the window's first attempt

  Returns: {1, n}   allowed: this is attempt n of the window
           {0, ms}  refused: the window's attempts are used up; milliseconds until it ends
  Errors:  BAD_ARGUMENT when the limit or the window is not a positive integer.
]]
local rcall = redis.call
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
if not limit or limit < 1 or limit % 1 ~= 0 then
  return redis.error_reply('BAD_ARGUMENT limit')
end
if not window or window < 1 or window % 1 ~= 0 then
  return redis.error_reply('BAD_ARGUMENT window')
end
local key = KEYS[1]
local count = tonumber(rcall('GET', key) or '0') or 0
if count >= limit then
  local left = rcall('PTTL', key)
  if left < 0 then -- a counter without expiry would refuse for ever: give it a window
    rcall('PEXPIRE', key, window)
    left = window
  end
  return {0, left}
end
count = rcall('INCR', key)
if count == 1 or rcall('PTTL', key) < 0 then
  rcall('PEXPIRE', key, window)
end
return {1, count}
