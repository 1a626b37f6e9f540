-- merge: move every waiting line of the source inbox to the tail of the destination, in order.
-- KEYS: src_in, dst_in, src_hver, src_ev, dst_ev, op   Returns the number moved.
local done = redis.call('GET', KEYS[6])
if done then return tonumber(done) end
local n = redis.call('LLEN', KEYS[1])
for _ = 1, n do
  redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
end
if n > 0 then
  redis.call('INCR', KEYS[3])
  redis.call('XADD', KEYS[4], 'MAXLEN', '16', '*', 'k', 'm')
  redis.call('XADD', KEYS[5], 'MAXLEN', '16', '*', 'k', 'm')
end
redis.call('SET', KEYS[6], n, 'PX', 60000)
return n
