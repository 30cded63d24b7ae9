-- The org-wide rate limit: a GCRA on server time, with adaptive rate and a shared pause.
-- KEYS[1]: the limiter hash. ARGV[1]: "acquire" or "throttle".
-- acquire  ARGV: ceiling (req/s), burst, plateau s, ttl ms, look-ahead us, slots wanted
--   returns {granted n, rate in milli-req/s, then n waits in us until each reserved slot,
--   or when none is granted, the wait in us before asking again}
-- throttle ARGV: ceiling, burst, plateau s, ttl ms, look-ahead, wanted, retry-after ms
--   (-1: none), max pause ms, cool-down s. Returns {cut 0/1, rate in milli-req/s, pause us}
-- Fields: tat (us), paused (us), w_max and start (req/s: the cubic after a cut), cut (us),
-- n since mark and pn since pmark (grants in this 2-s window and the one before, in us).
local key = KEYS[1]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ceiling, burst, plateau = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ttl, lookahead, want = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local f = redis.call('HMGET', key, 'tat', 'paused', 'w_max', 'start', 'cut', 'n', 'mark', 'pn',
  'pmark')
local paused = tonumber(f[2]) or 0
local w_max, start, cut = tonumber(f[3]), tonumber(f[4]), tonumber(f[5])
local floor = math.max(0.1, ceiling / 100)

local function int(x) return string.format('%.0f', x) end

local function rate_at()
  if not cut then return ceiling end
  local since = math.max(0, now - math.max(cut, paused)) / 1000000
  local target
  if since < plateau then
    target = w_max - (w_max - start) * ((plateau - since) / plateau) ^ 3
  else
    target = w_max + 0.4 * w_max * ((since - plateau) / plateau) ^ 3
  end
  return math.max(floor, math.min(ceiling, target))
end

local rate = rate_at()

if ARGV[1] == 'acquire' then
  if paused > now then return {0, math.floor(rate * 1000), paused - now} end
  local interval = 1000000 / rate
  local tat = math.max(tonumber(f[1]) or 0, now)
  -- up to `want` slots within the look-ahead are reserved now (each caller sleeps until
  -- its own: one round trip for them all); a slot further away is refused, so a pause
  -- still stops nearly everyone
  local out = {0, math.floor(rate * 1000)}
  for _ = 1, want do
    local new = math.max(tat, now) + interval
    local wait = new - burst * interval - now
    if wait > lookahead then
      if out[1] == 0 then out[3] = math.ceil(wait - lookahead) end
      break
    end
    tat = new
    out[1] = out[1] + 1
    out[#out + 1] = math.max(0, math.ceil(wait))
  end
  if out[1] > 0 then
    redis.call('HSET', key, 'tat', int(tat))
    -- grants counted in tumbling windows of 2 s (this one and the one before), so that
    -- the accepted rate is measured over the last 2 to 4 s
    local mark = tonumber(f[7])
    if not mark or now - mark >= 2000000 then
      redis.call('HSET', key, 'pn', tonumber(f[6]) or 0, 'pmark', int(mark or now),
        'n', out[1], 'mark', int(now))
    else
      redis.call('HINCRBY', key, 'n', out[1])
    end
    redis.call('PEXPIRE', key, ttl)
  end
  return out
end

-- throttle: pause everyone, and lower the rate at most once per cool-down
local retry_after, max_pause, cooldown = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local pause = retry_after
if pause < 0 then pause = math.min(1000, max_pause) end
pause = math.min(pause, max_pause)
paused = math.max(paused, now + pause * 1000)
redis.call('HSET', key, 'paused', int(paused))
redis.call('PEXPIRE', key, ttl)
if cut and now - cut < cooldown * 1000 then
  return {0, math.floor(rate * 1000), paused - now}
end
-- the rate granted over the last 2 to 4 s (since the last cut at most), when measurable
local n = (tonumber(f[6]) or 0) + (tonumber(f[8]) or 0)
local since = tonumber(f[9]) or tonumber(f[7]) or now
local span = (now - since) / 1000000
local accepted = nil
if n >= 10 and span >= 0.25 then accepted = n / span end
if accepted then
  w_max = math.max(floor, 0.97 * math.min(rate, accepted))
  start = math.max(floor, 0.95 * w_max)
else
  w_max = math.max(floor, 0.97 * rate / 2)
  start = w_max
end
redis.call('HSET', key, 'w_max', tostring(w_max), 'start', tostring(start), 'cut', int(now),
  'mark', int(now), 'n', 0, 'pmark', int(now), 'pn', 0)
return {1, math.floor(start * 1000), paused - now}
