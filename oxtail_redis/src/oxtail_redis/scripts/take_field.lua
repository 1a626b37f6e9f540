-- take_field: remove one hash field; exactly one of racing callers gets 1.
-- KEYS: hash, index, op   ARGV: field
local done = redis.call('GET', KEYS[3])
if done then return tonumber(done) end
local gone = redis.call('HDEL', KEYS[1], ARGV[1])
if gone == 1 then redis.call('ZREM', KEYS[2], ARGV[1]) end
redis.call('SET', KEYS[3], gone, 'PX', 60000)
return gone
