-- put_back (restore, recover): compare each batch with what the client read, then push lines to
-- the front of the inbox in the given order and rewrite or drop each batch.
-- KEYS: in, fl, hver, ev, op, wb
-- ARGV: nbatches, (batch_id, expected_value, new_value or '')..., line...
-- Returns the number of lines put back, or -1 when a batch changed since it was read.
local done = redis.call('GET', KEYS[5])
if done then return tonumber(done) end
local nb = tonumber(ARGV[1])
for b = 0, nb - 1 do
  if redis.call('HGET', KEYS[2], ARGV[2 + 3 * b]) ~= ARGV[3 + 3 * b] then return -1 end
end
local first = 2 + 3 * nb
local lines = #ARGV - first + 1
local back = 0
for k = first, #ARGV do back = back + #ARGV[k] + 1 end
redis.call('INCRBY', KEYS[6], back)  -- a restore is never refused, even past the cap
local hi = #ARGV
while hi >= first do
  local lo = math.max(first, hi - 3999)
  local chunk = {}
  for k = hi, lo, -1 do chunk[#chunk + 1] = ARGV[k] end
  redis.call('LPUSH', KEYS[1], unpack(chunk))
  hi = lo - 1
end
for b = 0, nb - 1 do
  local value = ARGV[4 + 3 * b]
  if value == '' then
    redis.call('HDEL', KEYS[2], ARGV[2 + 3 * b])
  else
    redis.call('HSET', KEYS[2], ARGV[2 + 3 * b], value)
  end
end
if lines > 0 then
  redis.call('INCR', KEYS[3])
  redis.call('XADD', KEYS[4], 'MAXLEN', '16', '*', 'k', 'r')
end
redis.call('SET', KEYS[5], lines, 'PX', 60000)
return lines
