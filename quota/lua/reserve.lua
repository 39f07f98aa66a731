-- Reserve a run slot in the Redis mirror of an org's quota, atomically.
-- KEYS: 1 leases (zset run_id -> expiry, epoch ms), 2 day counter, 3 month counter,
--       4 meta hash: `ready` (the mirror was built from the ledger)
-- ARGV: 1 run_id, 2 now, 3 lease expiry, 4 concurrent limit, 5 daily limit,
--       6 monthly limit, 7 day ttl, 8 month ttl
-- Returns {'ok', running, daily, monthly} | {'exceeded', limit, limit_value, current}
--       | {'rebuild'}
if redis.call('HEXISTS', KEYS[4], 'ready') == 0 then
  -- Flushed or restarted: counting from zero would admit too much. Rebuild first.
  return {'rebuild'}
end
-- Leases nobody renewed are gone before anything is counted.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
local running = redis.call('ZCARD', KEYS[1])
local counts = redis.call('MGET', KEYS[2], KEYS[3])
local daily = tonumber(counts[1] or '0')
local monthly = tonumber(counts[2] or '0')
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return {'ok', running, daily, monthly}  -- this run already holds its lease
end
-- The limit that frees last is named first, as in the SQL ledger.
if monthly >= tonumber(ARGV[6]) then
  return {'exceeded', 'monthly', tonumber(ARGV[6]), monthly}
end
if daily >= tonumber(ARGV[5]) then
  return {'exceeded', 'daily', tonumber(ARGV[5]), daily}
end
if running >= tonumber(ARGV[4]) then
  return {'exceeded', 'concurrent', tonumber(ARGV[4]), running}
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
daily = redis.call('INCR', KEYS[2])
if daily == 1 then
  -- A new period's counter: it disappears on its own after the period.
  redis.call('EXPIRE', KEYS[2], ARGV[7])
end
monthly = redis.call('INCR', KEYS[3])
if monthly == 1 then
  redis.call('EXPIRE', KEYS[3], ARGV[8])
end
return {'ok', running + 1, daily, monthly}
