-- swap_string: compare-and-set a string key against what the client read.
-- KEYS: key, op   ARGV: was_absent ('1'/'0'), expected, new ('' deletes)   Returns 1 if swapped.
local done = redis.call('GET', KEYS[2])
if done then return tonumber(done) end
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current then return 0 end
elseif current ~= ARGV[2] then
  return 0
end
if ARGV[3] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[3]) end
redis.call('SET', KEYS[2], 1, 'PX', 60000)
return 1
