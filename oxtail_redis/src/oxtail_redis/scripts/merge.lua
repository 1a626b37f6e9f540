-- merge: move every waiting line of the source inbox to the tail of the destination, in order.
-- KEYS: src_in, dst_in, src_hver, src_ev, dst_ev, op, src_wb, dst_wb   Returns the number moved.
-- A merge is never refused by the cap: the source's waiting bytes move with its lines.
local done = redis.call('GET', KEYS[6])
if done then return tonumber(done) end
local n = redis.call('LLEN', KEYS[1])
for _ = 1, n do
  redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT')
end
redis.call('INCRBY', KEYS[8], tonumber(redis.call('GET', KEYS[7]) or '0'))
redis.call('DEL', KEYS[7])
if n > 0 then
  redis.call('INCR', KEYS[3])
  redis.call('XADD', KEYS[4], 'MAXLEN', '16', '*', 'k', 'm')
  redis.call('XADD', KEYS[5], 'MAXLEN', '16', '*', 'k', 'm')
end
redis.call('SET', KEYS[6], n, 'PX', 60000)
return n
