-- remove_if_drained: drop one registry entry (that incarnation) iff its inbox holds nothing,
-- waiting or in flight. Atomic with a guarded append (both are scripts over the same keys).
-- KEYS: in, fl, reg, regi, op   ARGV: field, incarnation   Returns 1 if this call removed it.
local done = redis.call('GET', KEYS[5])
if done then return tonumber(done) end
if redis.call('LLEN', KEYS[1]) > 0 or redis.call('HLEN', KEYS[2]) > 0 then return 0 end
if redis.call('HGET', KEYS[4], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('SET', KEYS[5], 1, 'PX', 60000)
return 1
