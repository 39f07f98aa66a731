-- Extend a live run's lease. An expired lease is dropped, not revived: its slot may
-- already be someone else's.
-- KEYS: 1 leases
-- ARGV: 1 run_id, 2 new expiry, 3 now
-- Returns 1 if the lease was extended, 0 if there is no live lease.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', ARGV[2], ARGV[1])
return 1
