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
  reclaim(KEYS[1], ids, ARGV[2], expiry)
end
if #ARGV > 7 + n then
  local entries = {}
  for i = 8 + n, #ARGV do entries[#entries + 1] = ARGV[i] end
  many('XCLAIM', KEYS[3], {ARGV[1], ARGV[2], 0}, entries, 'JUSTID')
end
return {1}
