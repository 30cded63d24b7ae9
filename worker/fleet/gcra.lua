-- The org-wide rate limit: a GCRA on server time at a fixed ceiling, and a shared pause.
-- KEYS[1]: the limiter hash. ARGV[1]: "acquire" or "pause".
-- acquire  ARGV: ceiling (req/s), burst, ttl ms, look-ahead us, slots wanted
--   returns {granted n, then n waits in us until each reserved slot, or when none is
--   granted, the wait in us before asking again}
-- pause    ARGV: ceiling, burst, ttl ms, look-ahead us, wanted, pause ms. Returns {pause us}
-- Fields: tat (us), paused (until, us), renew (when the key's expiry is next pushed back,
-- us: every half ttl, not every call). The adaptive control is each worker's own
-- (worker.run.control); only its pauses are shared, here. Three commands a call (TIME,
-- HMGET, HSET): INFO commandstats counts them.
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate, burst = tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl, lookahead, want = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local f = redis.call('HMGET', key, 'tat', 'paused', 'renew')
local paused = tonumber(f[2]) or 0

local function int(x) return string.format('%.0f', x) end
-- HSET of these fields, and the key's expiry pushed back when it is due
local function save(...)
  if (tonumber(f[3]) or 0) > now then return redis.call('HSET', key, ...) end
  redis.call('HSET', key, 'renew', int(now + ttl * 500), ...)
  redis.call('PEXPIRE', key, ttl)
end

if ARGV[1] == 'pause' then
  paused = math.max(paused, now + tonumber(ARGV[7]) * 1000)
  save('paused', int(paused))
  return {paused - now}
end

if paused > now then return {0, paused - now} end
local interval = 1000000 / rate
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
  save('tat', int(tat))
end
return out
