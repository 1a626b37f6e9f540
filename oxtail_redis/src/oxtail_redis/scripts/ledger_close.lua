-- ledger_close: compare-and-set an obligation's line to its closed form.
-- KEYS: ledm, ledq, op   ARGV: id, expected_line, closed_line   Returns 1 if this call closed it.
local done = redis.call('GET', KEYS[3])
if done then return tonumber(done) end
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], 1, 'PX', 60000)
return 1
