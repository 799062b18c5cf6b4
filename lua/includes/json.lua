-- JSON pieces built by hand, so integers never pass through cjson's number formatting
-- (which prints large numbers in exponent form).

-- a JSON string, or null for nil and ''
local function jstr(s)
  if s == nil or s == '' then
    return 'null'
  end
  return cjson.encode(s)
end

local function jbool(b)
  if b then
    return 'true'
  end
  return 'false'
end
