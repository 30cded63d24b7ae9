"""The Lua scripts of the queue, and how they are sent (EVALSHA, loaded again on NOSCRIPT).

Every script first checks the queue's marker (``STREAM:meta``, field ``epoch``): a Redis that
restarted without its data has no marker, or another one (``enqueue`` made a new one), and the
script answers ``LOSTQUEUE`` instead of acting on a queue that is not the one the worker was
given (`worker.fleet.connect.QueueLost`).

``OPEN`` (once, when a worker starts): the marker is made when there is none (a new queue), the
consumer group too, and the worker's name is registered with a lease: ``{epoch, 0}``, or
``{epoch, ms}`` when another live worker holds the name for ``ms`` more.

``BEGIN`` (one round trip per batch read): a **claim** per session id, with the worker's name,
the entry it came with and a lease, checked and set in one step. For each id: ``2`` when any
worker settled it (the entry is acknowledged, never sent again); ``3`` when another live worker
holds its claim for another entry (this one is a duplicate: acknowledged, not sent); ``4`` when
another live worker holds the claim for this very entry (left alone); ``1`` when a claim was
there but has lapsed, or is this worker's name from before a restart (a DELETE may have gone
out: the attempt starts uncertain, a 404 or 409 is reconciled with a GET); else ``0``.

``RENEW`` (every third of the shortest lease): the name's lease, the claims of the ids in
flight and the idle time of their entries (XCLAIM JUSTID). ``{0}`` when another worker took the
name meanwhile.

``SETTLE`` (after the results are in the worker's JSONL log; one call for a batch): a final
outcome is written to the
settled hash first-writer-wins (``HSETNX``), and only the first writer appends it to the
results stream, so the fleet holds exactly one final record per id however often the id was
delivered; a ``failed`` result is appended as it is and its claim lapses at once (the id can
be enqueued again, and starts uncertain). Then the entries are acknowledged and deleted from
the stream, in the same script: there is no moment where an entry is acknowledged and its
result not recorded. Running it twice (a reply lost to a dropped connection) changes nothing.
The marker counts the entries done (``done``, beside ``enqueued``): entries enqueued and
neither done nor in the stream were lost with Redis's data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis

_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function ms(x) return string.format('%.0f', x) end
local function lost(meta, epoch)
  if redis.call('HGET', meta, 'epoch') ~= epoch then
    return redis.error_reply('LOSTQUEUE the queue marker ' .. meta .. ' is gone or replaced')
  end
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
"""

# KEYS: stream, meta, names. ARGV: group, new epoch, name, token, name lease ms.
OPEN = (
    _PRELUDE
    + """
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
"""
)

# KEYS: settled, claims, meta. ARGV: name, lease ms, epoch, then (session id, entry id) pairs.
BEGIN = (
    _PRELUDE
    + """
local gone = lost(KEYS[3], ARGV[3])
if gone then return gone end
local expiry = ms(now + tonumber(ARGV[2]))
local out = {}
for i = 4, #ARGV, 2 do
  local id, entry = ARGV[i], ARGV[i + 1]
  local code = 0
  if redis.call('HEXISTS', KEYS[1], id) == 1 then
    code = 2
  else
    local before = redis.call('HGET', KEYS[2], id)
    if before then
      code = 1
      local till, held, owner = string.match(before, '^(%d+) (%S+) (.*)$')
      if till and owner ~= ARGV[1] and tonumber(till) > now then
        if held == entry then code = 4 else code = 3 end
      end
    end
    if code < 2 then redis.call('HSET', KEYS[2], id, expiry .. ' ' .. entry .. ' ' .. ARGV[1]) end
  end
  out[#out + 1] = code
end
return out
"""
)

# KEYS: claims, names, stream, meta. ARGV: group, name, token, claim lease ms, name lease ms,
# epoch, count of session ids, session ids..., entry ids...
RENEW = (
    _PRELUDE
    + """
local gone = lost(KEYS[4], ARGV[6])
if gone then return gone end
if hold_name(KEYS[2], ARGV[2], ARGV[3], tonumber(ARGV[5])) > 0 then return {0} end
local expiry = ms(now + tonumber(ARGV[4]))
local n = tonumber(ARGV[7])
for i = 8, 7 + n do
  local before = redis.call('HGET', KEYS[1], ARGV[i])
  if before then
    local till, held, owner = string.match(before, '^(%d+) (%S+) (.*)$')
    if owner == ARGV[2] then
      redis.call('HSET', KEYS[1], ARGV[i], expiry .. ' ' .. held .. ' ' .. owner)
    end
  end
end
if #ARGV > 7 + n then
  local claim = {'XCLAIM', KEYS[3], ARGV[1], ARGV[2], 0}
  for i = 8 + n, #ARGV do claim[#claim + 1] = ARGV[i] end
  claim[#claim + 1] = 'JUSTID'
  redis.call(unpack(claim))
end
return {1}
"""
)

# KEYS: names. ARGV: name, token. A worker that stops frees its name for a restart.
RELEASE = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and string.match(cur, '^%d+ (.*)$') == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 1
"""

# KEYS: settled, claims, results, stream, meta. ARGV: group, name, epoch, maxlen, then for
# each result: id, outcome, final (1/0), record, count of entries, entry ids...
SETTLE = (
    _PRELUDE
    + """
local gone = lost(KEYS[5], ARGV[3])
if gone then return gone end
local firsts, done, i = 0, 0, 5
while i <= #ARGV do
  local id, outcome, final, record = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local n = tonumber(ARGV[i + 4])
  local first = 1
  if final == '1' then
    first = redis.call('HSETNX', KEYS[1], id, outcome)
    redis.call('HDEL', KEYS[2], id)
  else
    local before = redis.call('HGET', KEYS[2], id)
    if before then
      local till, held, owner = string.match(before, '^(%d+) (%S+) (.*)$')
      if owner == ARGV[2] then redis.call('HSET', KEYS[2], id, '0 ' .. held .. ' ' .. owner) end
    end
  end
  if first == 1 then
    redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'id', id, 'outcome', outcome,
      'record', record)
  end
  firsts = firsts + first
  for j = i + 5, i + 4 + n do
    redis.call('XACK', KEYS[4], ARGV[1], ARGV[j])
    done = done + redis.call('XDEL', KEYS[4], ARGV[j])
  end
  i = i + 5 + n
end
redis.call('HINCRBY', KEYS[5], 'done', done)
return firsts
"""
)

# KEYS: stream, meta. ARGV: group, epoch, entry ids... Entries that carry nothing to send.
DISCARD = (
    _PRELUDE
    + """
local gone = lost(KEYS[2], ARGV[2])
if gone then return gone end
local done = 0
for i = 3, #ARGV do
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  done = done + redis.call('XDEL', KEYS[1], ARGV[i])
end
redis.call('HINCRBY', KEYS[2], 'done', done)
return done
"""
)


@dataclass(slots=True)
class Lua:
    """One script, sent as ``EVALSHA`` (one command); on ``NOSCRIPT`` (a restarted Redis, a
    ``SCRIPT FLUSH``) it is loaded once and sent again. redis-py's own ``Script`` objects
    send ``SCRIPT EXISTS`` before every pipeline that holds them: a second command each.
    (Each script is idempotent: running it again after a lost reply changes nothing.)"""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, redis: Redis, keys: Sequence[str], args: Sequence[Any]) -> Any:
        from redis.exceptions import NoScriptError

        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await redis.script_load(self.source)
            return await redis.evalsha(self.sha, len(keys), *keys, *args)


OPEN_LUA, BEGIN_LUA, RENEW_LUA, RELEASE_LUA = Lua(OPEN), Lua(BEGIN), Lua(RENEW), Lua(RELEASE)
SETTLE_LUA, DISCARD_LUA = Lua(SETTLE), Lua(DISCARD)
