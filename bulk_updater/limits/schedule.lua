-- The shared rate budget of one API account: start slots on a schedule, a guard on the actual
-- starts, the shared 429 pause and the shared rate. bulk_updater/limits/schedule_calls.py calls it.
--
-- Every call runs atomically, so the schedule is the same GCRA as the local pacer's (the
-- generic cell rate algorithm: https://en.wikipedia.org/wiki/Generic_cell_rate_algorithm),
-- with no burst: each caller reserves the next free slot, `interval` after the previous one,
-- and an idle gap builds up no credit (GCRA with no burst). The list of recent starts holds the
-- actual starts to at most `cap` in any sliding second (and its 1% margin; below 1/s, one per
-- interval) even when callers start late, and late holders (a stalled host wakes several at
-- once) go out `late_gap` intervals apart, as the pacer's do: caught up at twice the rate at
-- most, never in a clump a small bucket refuses, and no slot given up.
--
-- KEYS[1]  the account's hash: next, until, epoch, streak, limit, limit_until, shared_rate, ...
-- KEYS[2]  the account's latest starts, newest first (at most `hold`, twice `cap`, of them)
-- KEYS[3]  the starts lately moved by `depart` or taken back by `restart`, as first recorded,
--          newest first (`hold`)
-- ARGV[1]  the operation: hello | acquire | restart | depart | pause | calm | share
-- ARGV[2]  now, in seconds since the epoch; empty: the Redis server's TIME (one clock for all)
-- ARGV[3]  the caller's rate R (> 0): at most R starts in any sliding second
-- ARGV[4]  acquire: the epoch of the slot the caller holds, or empty; restart: the epoch and
--          the recorded time of a start granted too late; depart: the recorded times of starts
--          that left late, space-separated; pause: its seconds; share: the rate to share;
--          hello: the account's label
-- ARGV[5]  the spacing margin over 1/R (1.01)
-- ARGV[6]  how long the keys live after their last use, in milliseconds
-- ARGV[7]  the caller's job: a random token (the job that set the rate in force may change it)
-- ARGV[8]  the caller's --max-pause in seconds: no wait it is told of is longer (empty: none)
-- ARGV[9]  the least gap between two starts, in intervals (pacer.py's LATE_GAP; empty: none)
--
-- Every value read from the keys is checked before it is used: a number that is not finite,
-- out of bounds or in the far future (a bug, a hand edit, a host whose clock is far ahead)
-- would hold every job of the account, and each call renews the keys. A bad one is replaced,
-- and its name is in the reply, so that the caller can say so once.
--
-- Times are stored as text with microseconds: Lua numbers are doubles, and a number returned to
-- Redis would be truncated to an integer.

-- Redis 3.2 to 4.x refuse writes after TIME unless commands (not the script) are replicated;
-- from 5.0 that is the default and from 7.0 the only mode, where this call does nothing.
if redis.replicate_commands then
  pcall(redis.replicate_commands)
end

local hash, starts, moved = KEYS[1], KEYS[2], KEYS[3]
local op, rate, arg = ARGV[1], tonumber(ARGV[3]), ARGV[4]
local slack, ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local job = ARGV[7] or ''
local most = tonumber(ARGV[8] or '') or math.huge
local late_gap = tonumber(ARGV[9] or '') or 0
local TICK = 1e-6
-- No pause of any job is longer than this (the largest --max-pause): one further is bad.
local FAR = 3600
-- How far ahead of the caller's clock a start may be listed (hosts' clocks differ a little).
local SKEW = 1.0
-- The lowest rate in force believed (or the caller's own, if lower) and the highest.
local MIN_LIMIT, MAX_LIMIT = 0.01, 1e7
local repaired = {}

-- Names a value replaced, once.
local function repair(name)
  for _, said in ipairs(repaired) do
    if said == name then
      return
    end
  end
  table.insert(repaired, name)
end

local function finite(x)
  return x ~= nil and x == x and x > -math.huge and x < math.huge
end

local now = tonumber(ARGV[2])
if ARGV[2] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
-- The schedule's clock never runs backwards: a caller's clock behind the latest start (a host
-- a little behind, a call sent earlier but run later) reads as that start's time.
local clock_ahead = false

-- Whether a start read from the list is a time this caller can count from.
local function good_start(value)
  local at = tonumber(value)
  return finite(at) and at <= now + SKEW
end

-- Drops every start that is not a time or is listed in the future: a clock far ahead wrote
-- it (else this clock would read as its and every caller would wait for it to get there), or
-- a hand edit did (a text would make the script fail for every job of the account).
local function clean_starts()
  local future = false
  for _, value in ipairs(redis.call('LRANGE', starts, 0, -1)) do
    if not good_start(value) then
      redis.call('LREM', starts, 0, value)
      future = future or finite(tonumber(value))
      repair(finite(tonumber(value)) and 'starts' or 'start_text')
    end
  end
  return future
end

local head = redis.call('LINDEX', starts, 0)
if head and not good_start(head) then
  clock_ahead = clean_starts()
end
now = math.max(now, tonumber(redis.call('LINDEX', starts, 0)) or 0)

local function num(value, default)
  return tonumber(value) or default
end

local function text(seconds)
  return string.format('%.6f', seconds)
end

local state = redis.call('HMGET', hash, 'next', 'until', 'epoch', 'streak', 'limit',
  'limit_until', 'shared_rate', 'granted', 'limit_job', 'paused_at')
local next_slot, paused_until = num(state[1], 0), num(state[2], 0)
local epoch, streak = num(state[3], 0), num(state[4], 0)
local limit, limit_until = num(state[5], 0), num(state[6], 0)
local shared = state[7] or ''
local granted = num(state[8], 0)  -- every start ever recorded: its rate is the account's
-- HINCRBY refuses anything but an integer's digits.
local granted_good = not state[8] or (string.match(state[8], '^%d+$') ~= nil
  and #state[8] <= 15)
local paused_at = num(state[10], now)  -- when the pause running was set

local function interval_of(r)
  local per_second = r >= 1 and math.floor(r) or r
  return slack / per_second
end

-- `value` when it is good, else `replacement`, and its name goes in the reply (unless a
-- clock ahead already explains it).
local function checked(name, value, good, replacement)
  if good then
    return value
  end
  if not clock_ahead then
    repair(name)
  end
  return replacement
end
paused_until = checked('until', paused_until, finite(paused_until)
  and paused_until <= now + FAR, 0)
next_slot = checked('next', next_slot, finite(next_slot)
  and next_slot <= math.max(now, paused_until) + FAR, 0)
if paused_until > now and not (finite(paused_at) and paused_at <= now + SKEW) then
  -- A pause set by a clock far ahead, or without its time: its length counts from now.
  paused_at = checked('paused_at', now, state[10] == nil, now)
  redis.call('HSET', hash, 'paused_at', text(now))
end
if state[5] then
  local good = finite(limit) and limit >= math.min(MIN_LIMIT, rate) and limit <= MAX_LIMIT
    and finite(limit_until) and limit_until <= now + math.max(2, 3 * interval_of(limit)) + TICK
  limit = checked('limit', limit, good, 0)
end
local shared_number = tonumber(shared)
shared = checked('shared_rate', shared, shared == '' or (finite(shared_number)
  and shared_number > 0 and shared_number <= MAX_LIMIT), '')
if #repaired > 0 then  -- written back at once: no other caller reads them again
  redis.call('HSET', hash, 'until', text(paused_until), 'next', text(next_slot),
    'shared_rate', shared)
end
epoch = checked('epoch', epoch, (not state[3] or tonumber(state[3]) ~= nil)
  and finite(epoch) and epoch >= 0 and epoch == math.floor(epoch), 0)
streak = checked('streak', streak, (not state[4] or tonumber(state[4]) ~= nil)
  and finite(streak) and streak >= 0 and streak <= 1000000 and streak == math.floor(streak), 0)
granted = checked('granted', granted, granted_good, 0)
if #repaired > 0 then
  redis.call('HSET', hash, 'epoch', epoch, 'streak', streak, 'granted', granted)
end

-- The pause as this caller honours it: at most its own --max-pause after it was set.
local function pause_end()
  return math.min(paused_until, paused_at + most)
end

-- The strictest rate among the jobs of this account that ran lately holds for all of them, so
-- no job's promise is broken and none is starved by a guard it cannot satisfy.
-- The job whose rate is in force may raise it at once (an adaptive job growing its rate); a
-- job with a higher rate then takes its own lower one back on its next call.
local owner = job ~= '' and state[9] == job
if owner or not (limit_until > now and limit > 0 and limit < rate) then
  limit = rate
  limit_until = now + math.max(2, 3 * interval_of(rate))
  redis.call('HSET', hash, 'limit', text(limit), 'limit_until', text(limit_until), 'limit_job', job)
end
local interval = interval_of(limit)
local cap = math.max(1, math.floor(limit))
-- The span in which `cap` starts may come: a second and the margin, and below 1/s the interval
-- (one start in it): one a second would be twice a rate of 0.5/s.
local span = limit < 1 and interval or slack
-- The list keeps twice the starts the guard needs: a start that left late is added again when
-- it leaves (`depart`), so a second may hold more than `cap` records for a moment, and a rate
-- raised later must still see every start of the last second.
local hold = 2 * cap

redis.call('PEXPIRE', hash, ttl)

-- nil when a start now keeps at most `cap` starts in any `span` seconds (1.01: a second and
-- the margin that absorbs jitter on the way to the server, which a late start must not eat
-- up), else the time at which one would.
local ahead = false  -- the guard waits for a start listed ahead of this caller's clock
local function later_start()
  local n = redis.call('LLEN', starts)
  if n > hold then
    redis.call('LTRIM', starts, 0, hold - 1)
  end
  if n < cap then
    return nil
  end
  local oldest = redis.call('LINDEX', starts, cap - 1)  -- the oldest of the cap latest
  if not good_start(oldest) then  -- checked as the head was: the guard would wait for it
    clean_starts()
    return later_start()
  end
  oldest = tonumber(oldest)
  if now - oldest >= span - TICK then  -- TICK: epoch seconds in a double are exact to 0.3 us
    return nil
  end
  -- A start listed up to SKEW ahead is kept, but no caller waits for it past its --max-pause,
  -- and the caller is told (a hold, not pacing: it counts toward --give-up-after).
  ahead = oldest > now
  return math.min(oldest + span, now + math.max(most, interval_of(limit)))
end

-- nil when a start now comes at least `late_gap` intervals after the latest one recorded, else
-- the time at which it would (at most that far off: a start listed ahead holds no one longer).
local function spread_start()
  local latest = tonumber(redis.call('LINDEX', starts, 0))
  if late_gap <= 0 or latest == nil or not finite(latest) then
    return nil
  end
  local gap = late_gap * interval
  local at = math.min(latest + gap, now + gap)
  return at - now > TICK and at or nil
end

local function record_start()
  local recorded = text(now)
  redis.call('LPUSH', starts, recorded)
  redis.call('LTRIM', starts, 0, hold - 1)
  redis.call('PEXPIRE', starts, ttl)
  granted = redis.call('HINCRBY', hash, 'granted', 1)
  return recorded
end

-- Replies: {code, seconds, epoch, streak, shared_rate, rate in force, start recorded, starts
-- recorded so far, the names of the values replaced (space-separated), '1' when the wait is
-- for a start listed ahead}
-- code 1: start now; 2: the slot is `seconds` away (keep `epoch`); 3: paused for `seconds`.
local function reply(code, seconds, recorded)
  return {code, text(seconds), epoch, streak, shared, text(limit), recorded or '', granted,
    table.concat(repaired, ' '), ahead and '1' or ''}
end

if op == 'restart' then
  -- A start granted too late for its caller to act on in time (see shared.py): it did not
  -- happen then, so it is forgotten, and the caller holds the slot it needs now. Its record is
  -- listed as moved too, for a reader that saw it (whether or not the list still held it).
  local grant, recorded = string.match(arg, '^(%S+) (%S+)$')
  if recorded then
    redis.call('LREM', starts, 1, recorded)
    redis.call('LPUSH', moved, recorded)
    redis.call('LTRIM', moved, 0, hold - 1)
    redis.call('PEXPIRE', moved, ttl)
  end
  op, arg = 'acquire', grant or ''
end

if op == 'acquire' then
  if pause_end() - now > TICK then
    return reply(3, pause_end() - now)
  end
  if arg ~= '' and tonumber(arg) == epoch then
    -- The caller's slot has come: it starts, unless that would make cap + 1 starts too close
    -- together (others started late) or start it right next to the latest (it is late too);
    -- then it keeps its place and waits until it would not.
    local later, spread = later_start(), spread_start()
    if later == nil and spread == nil then
      return reply(1, 0, record_start())
    end
    return reply(2, math.max(later or now, spread or now) - now)
  end
  -- A new slot (or a held one from before a pause, which no longer counts). One further than
  -- the caller's --max-pause (a pause others still honour, a clock ahead) is not waited for:
  -- the schedule starts again from now, and the guard on actual starts still holds the rate.
  local slot = math.max(next_slot, now)
  if slot - now > math.max(most, interval_of(rate)) or clock_ahead then
    slot = now
  end
  if slot - now <= TICK then
    local later, spread = later_start(), spread_start()
    if later == nil and spread == nil then
      redis.call('HSET', hash, 'next', text(slot + interval))
      return reply(1, 0, record_start())
    end
    slot = math.max(slot, later or now, spread or now)
  end
  redis.call('HSET', hash, 'next', text(slot + interval))
  return reply(2, slot - now)
end

if op == 'pause' then
  -- Every caller waits until the pause ends, slot holders included (the epoch changes); the
  -- schedule restarts from its end, slots handed out before it being void. Each caller honours
  -- it for at most its own --max-pause from when it was set (`paused_at`).
  local until_ = now + math.min(tonumber(arg) or 0, FAR)
  local new = 0
  if until_ > paused_until then
    if now >= paused_until then
      new = 1
      streak = streak + 1
    end
    epoch = epoch + 1
    paused_until, paused_at = until_, now
    redis.call('HSET', hash, 'until', text(paused_until), 'epoch', epoch, 'streak', streak,
      'paused_at', text(now))
  end
  return {new, text(math.max(0, pause_end() - now)), epoch, streak, shared, text(limit), '',
    granted, table.concat(repaired, ' ')}
end

if op == 'depart' then
  -- Starts that left their process later than the times Redis recorded for them (a connection
  -- to open, a process descheduled), `arg` their records: each moves to now, when it did leave
  -- (a microsecond apart, to stay distinct). Every grant made meanwhile counted it at its old
  -- time, every later one counts it now, so the starts held to `cap` in any sliding second are
  -- the requests' real departures. No new start: `granted` stays. A record the list no longer
  -- holds (`cap` later starts pushed it out) is added all the same: the request left now.
  local k = 0
  local oldest = redis.call('LINDEX', starts, -1)
  oldest = good_start(oldest) and tonumber(oldest) or -math.huge
  for old in string.gmatch(arg, '%S+') do
    if (tonumber(old) or -math.huge) >= oldest then  -- an older one cannot be listed
      redis.call('LREM', starts, 1, old)
    end
    redis.call('LPUSH', starts, text(now + k * TICK))
    redis.call('LPUSH', moved, old)
    k = k + 1
  end
  redis.call('LTRIM', starts, 0, hold - 1)
  redis.call('LTRIM', moved, 0, hold - 1)
  redis.call('PEXPIRE', starts, ttl)
  redis.call('PEXPIRE', moved, ttl)
  return reply(0, 0)
end

if op == 'calm' then
  -- An answer that was not a 429: the next pause starts from the first backoff again.
  if streak > 0 then
    streak = 0
    redis.call('HSET', hash, 'streak', 0)
  end
  return reply(0, 0)
end

if op == 'share' then
  shared = arg
  redis.call('HSET', hash, 'shared_rate', arg, 'shared_at', text(now))
  return reply(0, 0)
end

if op == 'hello' then
  -- The first call of a job: proves that this Redis runs the script (TIME and writes included)
  -- and labels the account for whoever reads the keys.
  redis.call('HSET', hash, 'account', arg, 'seen_at', text(now))
  return reply(0, 0)
end

return redis.error_reply('bulk-updater: unknown operation ' .. op)
