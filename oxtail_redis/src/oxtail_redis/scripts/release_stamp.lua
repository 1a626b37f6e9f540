-- release_stamp: drop a claim only if it is still the one made at `at`.
-- KEYS: hash, index   ARGV: field, at
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
