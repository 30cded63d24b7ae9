-- The org-wide rate limit: a GCRA on server time at the fleet's rate, a shared pause, and
-- the state of the fleet's one rate controller (worker.run.control, run by every worker).
-- KEYS[1]: the limiter hash. ARGV[1]: "acquire", "pause" or "decide".
-- ARGV[2..6]: ceiling (req/s), burst, ttl ms, look-ahead us, slots wanted.
-- Every reply begins with the controller's state: {grants (every slot ever reserved, all
-- workers), generation (cuts so far), rate (milli-req/s, 0: the ceiling), limit found
-- (milli-req/s, 0: none), us since the last cut took effect (the last slot reserved at the
-- rate before it; negative: still to come), version (writes so far)}, then
-- acquire  {granted n, then n waits in us until each reserved slot, or when none is
--          granted, the wait in us before asking again}
-- pause    ARGV[7]: pause ms. {pause us}
-- decide   ARGV[7]: "cut", "probe" or "measure" (a 429 being measured: no probe for a
--          second, or until a cut), ARGV[8]: the generation the decision was made in,
--          ARGV[9]: rate, ARGV[10]: limit found (req/s). A cut made in the current
--          generation opens the next (a cut decided on answers from before another cut
--          is refused); a probe only raises the rate of its own generation. {1 taken, 0 not}
-- Fields: tat (us), paused (until, us), renew (when the key's expiry is next pushed back,
-- us: every half ttl, not every call), n, gen, rate, limit, cut (us). Three commands a call
-- (TIME, HMGET, HSET): INFO commandstats counts them.
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ceiling, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl, lookahead, want = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local f = redis.call('HMGET', key, 'tat', 'paused', 'renew', 'n', 'gen', 'rate', 'limit', 'cut',
  'ver', 'k', 'decided', 'frozen')
local paused = tonumber(f[2]) or 0
local n, gen = tonumber(f[4]) or 0, tonumber(f[5]) or 0
local rate, limit, cut = tonumber(f[6]), tonumber(f[7]) or 0, tonumber(f[8]) or 0
local ver, k, decided = tonumber(f[9]) or 0, tonumber(f[10]) or 0, tonumber(f[11]) or 0
local frozen = tonumber(f[12]) or 0  -- no probe until then: a worker measures a 429

local function int(x) return string.format('%.0f', x) end
-- HSET of these fields, and the key's expiry pushed back when it is due
local function save(...)
  if (tonumber(f[3]) or 0) > now then return redis.call('HSET', key, ...) end
  redis.call('HSET', key, 'renew', int(now + ttl * 500), ...)
  redis.call('PEXPIRE', key, ttl)
end
local function state(...)
  local age = 0
  if gen > 0 then age = now - cut end
  return {n, gen, math.floor((rate or 0) * 1000), math.floor(limit * 1000), age, ver, ...}
end

if ARGV[1] == 'pause' then
  paused = math.max(paused, now + tonumber(ARGV[7]) * 1000)
  save('paused', int(paused))
  return state(paused - now)
end

if ARGV[1] == 'decide' then
  local seen, new, found = tonumber(ARGV[8]), math.min(ceiling, tonumber(ARGV[9])), tonumber(ARGV[10])
  if ARGV[7] == 'measure' then  -- a worker measures a 429: nobody probes higher meanwhile
    if seen ~= gen then return state(0) end
    save('frozen', int(math.max(frozen, now + 1000000)))
    return state(1)
  elseif ARGV[7] == 'cut' and seen == gen then  -- the first cut of a wave: the next generation
    -- it starts when the slots already reserved at the old rate have gone
    gen, cut, decided, k, rate, limit = gen + 1, math.max(now, tonumber(f[1]) or 0), now, 1, new, found
  elseif ARGV[7] == 'cut' and seen == gen - 1 and now - decided < 500000 then
    -- another worker's measure of the same wave: the cut is the mean of them
    rate, limit, k = (rate * k + new) / (k + 1), (limit * k + found) / (k + 1), k + 1
  elseif ARGV[7] == 'probe' and seen == gen and new > (rate or ceiling) and frozen <= now then
    rate, limit = new, found
  else
    return state(0)
  end
  ver = ver + 1
  if ARGV[7] == 'cut' then frozen = 0 end
  save('gen', gen, 'rate', tostring(rate), 'limit', tostring(limit), 'cut', int(cut), 'ver', ver,
    'k', k, 'decided', int(decided), 'frozen', int(frozen))
  return state(1)
end

if paused > now then return state(0, paused - now) end
local interval = 1000000 / math.min(ceiling, rate or ceiling)
local tat = math.max(tonumber(f[1]) or 0, now)
-- up to `want` slots within the look-ahead are reserved now (each caller sleeps until its
-- own: one round trip for them all); a slot further away is refused, so a pause still
-- stops nearly everyone
local out = {0}
for _ = 1, want do
  local new = math.max(tat, now) + interval
  local wait = new - burst * interval - now
  if wait > lookahead then
    if out[1] == 0 then out[2] = math.ceil(wait - lookahead) end
    break
  end
  tat = new
  out[1] = out[1] + 1
  out[#out + 1] = math.max(0, math.ceil(wait))
end
if out[1] > 0 then
  n = n + out[1]
  save('tat', int(tat), 'n', int(n))
end
return state(unpack(out))
