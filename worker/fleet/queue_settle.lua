-- KEYS: settled, claims, results, stream, meta. ARGV: group, name, epoch, maxlen, then for
-- each result: id, outcome, final (1/0), record, count of entries, entry ids...
-- One results entry for the whole batch (its ``records``: one JSON record a line, first
-- writers only), and one command each for the settled ids, the claims, XACK and XDEL.
local gone = lost(KEYS[5], ARGV[3])
if gone then return gone end
local finals, others, entries = {}, {}, {}
local lines = {}  -- the results stream's records: every one, but a final one only if first
local i = 5
while i <= #ARGV do
  local n = tonumber(ARGV[i + 4])
  local r = {id = ARGV[i], outcome = ARGV[i + 1], record = ARGV[i + 3]}
  if ARGV[i + 2] == '1' then finals[#finals + 1] = r else others[#others + 1] = r.id end
  lines[#lines + 1] = r
  for j = i + 5, i + 4 + n do entries[#entries + 1] = ARGV[j] end
  i = i + 5 + n
end
if #finals > 0 then  -- first writer wins, within this batch too
  local ids = {}
  for k, r in ipairs(finals) do ids[k] = r.id end
  local settled = many('HMGET', KEYS[1], {}, ids)
  local set, taken = {}, {}
  for k, r in ipairs(finals) do
    if settled[k] or taken[r.id] then
      r.record = nil
    else
      taken[r.id] = true
      set[#set + 1] = r.id
      set[#set + 1] = r.outcome
    end
  end
  if #set > 0 then many('HSET', KEYS[1], {}, set) end
  many('HDEL', KEYS[2], {}, ids)
end
if #others > 0 then  -- not final: its claim lapses at once (enqueued again, it starts uncertain)
  reclaim(KEYS[2], others, ARGV[2], '0')
end
local records = {}
for _, r in ipairs(lines) do
  if r.record then records[#records + 1] = r.record end
end
if #records > 0 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'records', table.concat(records, '\n'))
end
local done = 0
if #entries > 0 then
  many('XACK', KEYS[4], {ARGV[1]}, entries)
  done = many('XDEL', KEYS[4], {}, entries)[1]
end
redis.call('HINCRBY', KEYS[5], 'done', done)
return #records
