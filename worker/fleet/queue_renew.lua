-- KEYS: claims, names, stream, meta. ARGV: group, name, token, claim lease ms, name lease ms,
-- epoch, count of session ids, session ids..., entry ids...
local gone = lost(KEYS[4], ARGV[6])
if gone then return gone end
clock()
if hold_name(KEYS[2], ARGV[2], ARGV[3], tonumber(ARGV[5])) > 0 then return {0} end
local expiry = ms(now + tonumber(ARGV[4]))
local n = tonumber(ARGV[7])
if n > 0 then
  local ids = {}
  for i = 8, 7 + n do ids[#ids + 1] = ARGV[i] end
  local claims = many('HMGET', KEYS[1], {}, ids)
  local set = {}
  for k = 1, n do
    if claims[k] then
      local till, held, owner = string.match(claims[k], '^(%d+) (%S+) (.*)$')
      if owner == ARGV[2] then
        set[#set + 1] = ids[k]
        set[#set + 1] = expiry .. ' ' .. held .. ' ' .. owner
      end
    end
  end
  if #set > 0 then many('HSET', KEYS[1], {}, set) end
end
if #ARGV > 7 + n then
  local entries = {}
  for i = 8 + n, #ARGV do entries[#entries + 1] = ARGV[i] end
  many('XCLAIM', KEYS[3], {ARGV[1], ARGV[2], 0}, entries, 'JUSTID')
end
return {1}
