-- Release a run's lease in the mirror. Idempotent: only a present lease is removed.
-- KEYS: 1 leases, 2 day counter, 3 month counter (2 and 3 only to undo counts)
-- ARGV: 1 run_id, 2 '1' to also undo the day and month counts (the ledger refused
--       the reservation this lease belonged to, so it never happened)
-- Returns 1 if the lease was there, 0 otherwise.
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if removed == 1 and ARGV[2] == '1' then
  for i = 2, 3 do
    if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then
      redis.call('DECR', KEYS[i])
    end
  end
end
return removed
