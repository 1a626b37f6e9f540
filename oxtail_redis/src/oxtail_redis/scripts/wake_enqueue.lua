-- wake_enqueue: queue a wake request on a host's stream, only while a relay holds the host's lease.
-- KEYS: relay lease, stream, request guard   ARGV: guard ttl ms, encoded request, stream max length
-- Returns 0 (no relay: nothing queued) or 1 (queued, now or by an earlier call with this request id).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('SET', KEYS[3], '1', 'NX', 'PX', ARGV[1]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'r', ARGV[2])
end
return 1
