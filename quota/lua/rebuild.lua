-- Replace an org's mirror with what the SQL ledger says, atomically.
-- KEYS: 1 leases, 2 day counter, 3 month counter, 4 meta hash (field `ready`)
-- ARGV: 1 '1' to overwrite a live mirror (it disagreed with the ledger), '0' to
--       build only a missing one (another process may have rebuilt it meanwhile),
--       2 daily runs, 3 monthly runs, 4 day ttl, 5 month ttl,
--       6 young-after score: mirror leases newer than this that the ledger does not
--         know yet are reservations on their way to the ledger; they are kept, and
--         counted, so a rebuild racing them does not undercount,
--       7 n: how many run_ids follow of leases the ledger has already ended (a
--         release the mirror missed while this process could not reach it): young
--         or not, those are dropped,
--       8 .. 7+n those run_ids,
--       then pairs of (lease expiry, run_id) from the ledger
-- Returns 1 if rebuilt, 0 if a live mirror was left alone.
if ARGV[1] ~= '1' and redis.call('HEXISTS', KEYS[4], 'ready') == 1 then
  return 0
end
local ended = tonumber(ARGV[7])
local first_pair = 8 + ended
local known = {}
for i = 8, 7 + ended do
  known[ARGV[i]] = true
end
for i = first_pair, #ARGV, 2 do
  known[ARGV[i + 1]] = true
end
local young = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[6], '+inf', 'WITHSCORES')
redis.call('DEL', KEYS[1])
local kept = 0
for i = 1, #young, 2 do
  if not known[young[i]] then
    redis.call('ZADD', KEYS[1], young[i + 1], young[i])
    kept = kept + 1
  end
end
for i = first_pair, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], ARGV[i], ARGV[i + 1])
end
local counters = {{KEYS[2], tonumber(ARGV[2]) + kept, ARGV[4]},
                  {KEYS[3], tonumber(ARGV[3]) + kept, ARGV[5]}}
for _, c in ipairs(counters) do
  if c[2] > 0 then
    redis.call('SET', c[1], c[2], 'EX', c[3])
  else
    redis.call('DEL', c[1])
  end
end
redis.call('HSET', KEYS[4], 'ready', '1')
return 1
