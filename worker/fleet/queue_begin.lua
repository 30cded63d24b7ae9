-- KEYS: settled, claims, meta. ARGV: name, lease ms, epoch, then (session id, entry id) pairs
-- (each session id once). A constant number of commands per call, whatever the batch.
local gone = lost(KEYS[3], ARGV[3])
if gone then return gone end
local ids = {}
for i = 4, #ARGV, 2 do ids[#ids + 1] = ARGV[i] end
if #ids == 0 then return {} end
clock()
local expiry = ms(now + tonumber(ARGV[2]))
local settled = many('HMGET', KEYS[1], {}, ids)
local claims = many('HMGET', KEYS[2], {}, ids)
local out, set = {}, {}
for k = 1, #ids do
  local entry = ARGV[3 + 2 * k]
  local code = 0
  if settled[k] then
    code = 2
  else
    local before = claims[k]
    if before then
      code = 1
      local till, held, owner = string.match(before, '^(%d+) (%S+) (.*)$')
      if till and owner ~= ARGV[1] and tonumber(till) > now then
        if held == entry then code = 4 else code = 3 end
      end
    end
    if code < 2 then
      set[#set + 1] = ids[k]
      set[#set + 1] = expiry .. ' ' .. entry .. ' ' .. ARGV[1]
    end
  end
  out[k] = code
end
if #set > 0 then many('HSET', KEYS[2], {}, set) end
return out
