-- KEYS: stream, meta. ARGV: group, epoch, entry ids... Entries that carry nothing to send.
local gone = lost(KEYS[2], ARGV[2])
if gone then return gone end
local entries = {}
for i = 3, #ARGV do entries[#entries + 1] = ARGV[i] end
if #entries == 0 then return 0 end
many('XACK', KEYS[1], {ARGV[1]}, entries)
local done = many('XDEL', KEYS[1], {}, entries)[1]
redis.call('HINCRBY', KEYS[2], 'done', done)
return done
