-- claim_stamp: single-winner claim of a slot; a stamp at or before stale_before (or one that is
-- not a number) is stale and reclaimed.
-- KEYS: hash, index, op   ARGV: field, at, stale_before   Returns 1 iff this call claimed it.
local done = redis.call('GET', KEYS[3])
if done then return tonumber(done) end
local existing = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '')
if existing and existing > tonumber(ARGV[3]) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('SET', KEYS[3], 1, 'PX', 60000)
return 1
