-- KEYS: stream, meta, names. ARGV: group, new epoch, name, token, name lease ms.
clock()
local epoch = redis.call('HGET', KEYS[2], 'epoch')
if not epoch then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[2], 'epoch', epoch, 'created_ms', ms(now))
end
local made = redis.pcall('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
if type(made) == 'table' and made.err and not string.find(made.err, 'BUSYGROUP') then
  return made
end
return {epoch, hold_name(KEYS[3], ARGV[3], ARGV[4], tonumber(ARGV[5]))}
