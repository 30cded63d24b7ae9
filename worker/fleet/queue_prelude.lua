-- What every queue script begins with (worker.fleet.scripts): the clock, the marker's
-- check, one command for many arguments, the name's lease, a worker's claims renewed.
local now = 0
local function clock()
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function ms(x) return string.format('%.0f', x) end
local function lost(meta, epoch)
  if redis.call('HGET', meta, 'epoch') ~= epoch then
    return redis.error_reply('LOSTQUEUE the queue marker ' .. meta .. ' is gone or replaced')
  end
end
-- one command for many arguments (a few thousand at most per call: Lua's stack)
local function many(cmd, key, head, items, tail)
  local reply = {}
  for i = 1, #items, 4000 do
    local args = {}
    for j = 1, #head do args[#args + 1] = head[j] end
    for j = i, math.min(#items, i + 3999) do args[#args + 1] = items[j] end
    if tail then args[#args + 1] = tail end
    local part = redis.call(cmd, key, unpack(args))
    if type(part) == 'table' then
      for j = 1, #part do reply[#reply + 1] = part[j] end
    else
      reply = (tonumber(reply[1]) or 0) + part
      reply = {reply}
    end
  end
  return reply
end
-- the name's lease: 0 when taken (or still ours), else the ms another live worker holds it
local function hold_name(names, name, token, lease)
  local cur = redis.call('HGET', names, name)
  if cur then
    local till, tok = string.match(cur, '^(%d+) (.*)$')
    if till and tok ~= token and tonumber(till) > now then return tonumber(till) - now end
  end
  redis.call('HSET', names, name, ms(now + lease) .. ' ' .. token)
  return 0
end
-- the claims of ``ids`` this worker (``name``) holds, their expiry set to ``expiry``
local function reclaim(claims_key, ids, name, expiry)
  local claims = many('HMGET', claims_key, {}, ids)
  local set = {}
  for k, id in ipairs(ids) do
    if claims[k] then
      local till, held, owner = string.match(claims[k], '^(%d+) (%S+) (.*)$')
      if owner == name then
        set[#set + 1] = id
        set[#set + 1] = expiry .. ' ' .. held .. ' ' .. owner
      end
    end
  end
  if #set > 0 then many('HSET', claims_key, {}, set) end
end
