"""The two Lua scripts of the queue: what a delivery means, and settling a result.

``BEGIN`` (one round trip per batch read): for each session id, ``2`` when any worker already
settled it (the entry is acknowledged, never sent again), ``1`` when a DELETE for it may have
been sent before (a "sending" marker is there: the attempt starts uncertain, so a 404 or 409 is
reconciled with a GET), else ``0``; it leaves the marker for the ids it passes on.

``SETTLE`` (after the result is in the worker's JSONL log): a final outcome is written to the
settled hash first-writer-wins (``HSETNX``), and only the first writer appends it to the
results stream, so the fleet holds exactly one final record per id however often the id was
delivered; a ``failed`` result is appended as it is (it can be enqueued again). Then the
entries are acknowledged and deleted from the stream, in the same script: there is no moment
where an entry is acknowledged and its result not recorded. Running it twice (a reply lost to
a dropped connection) changes nothing.
"""

from __future__ import annotations

BEGIN = """
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  if redis.call('HEXISTS', KEYS[1], id) == 1 then
    out[#out + 1] = 2
  else
    local before = redis.call('HGET', KEYS[2], id)
    redis.call('HSET', KEYS[2], id, ARGV[1])
    if before then out[#out + 1] = 1 else out[#out + 1] = 0 end
  end
end
return out
"""

# KEYS: settled, sending, results, stream. ARGV: group, id, outcome, final, record, maxlen,
# entry ids...
SETTLE = """
local first = 1
if ARGV[4] == '1' then
  first = redis.call('HSETNX', KEYS[1], ARGV[2], ARGV[3])
  redis.call('HDEL', KEYS[2], ARGV[2])
end
if first == 1 then
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '*',
    'id', ARGV[2], 'outcome', ARGV[3], 'record', ARGV[5])
end
local acked = 0
for i = 7, #ARGV do
  acked = acked + redis.call('XACK', KEYS[4], ARGV[1], ARGV[i])
  redis.call('XDEL', KEYS[4], ARGV[i])
end
return {first, acked}
"""

# KEYS: stream. ARGV: group, entry ids... Entries that carry nothing to send.
DISCARD = """
for i = 2, #ARGV do
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
end
return #ARGV - 1
"""
