-- put_once: create a record under a hash field unless one exists, indexed by a score for gc.
-- KEYS: hash, index, op   ARGV: field, value, score   Returns 1 iff this call created it.
local done = redis.call('GET', KEYS[3])
if done then return tonumber(done) end
local created = redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2])
if created == 1 then redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1]) end
redis.call('SET', KEYS[3], created, 'PX', 60000)
return created
