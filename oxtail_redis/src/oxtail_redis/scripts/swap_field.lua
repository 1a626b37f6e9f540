-- swap_field: compare-and-set one hash field against the exact value the client read.
-- KEYS: hash, index, op   ARGV: field, expected, new ('' deletes), score ('' keeps the index)
-- Returns 1 if swapped, 0 if the field no longer holds the expected value.
local done = redis.call('GET', KEYS[3])
if done then return tonumber(done) end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  if ARGV[4] ~= '' then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[1]) end
end
redis.call('SET', KEYS[3], 1, 'PX', 60000)
return 1
