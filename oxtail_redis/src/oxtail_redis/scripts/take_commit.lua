-- take_commit: move the elements a selector chose (at a snapshot) into a new in-flight batch.
-- KEYS: in, hver, fl, tk, q, wb   ARGV: seen_version, batch_id, batch_doc, nbad, bad_index..., taken_index...
-- Indices are 0-based positions in the snapshot; they are still valid iff the head version is
-- unchanged (only tail appends happened since). Replay-safe by the client-chosen batch id.
if redis.call('HEXISTS', KEYS[3], ARGV[2]) == 1 then return 1 end
if (redis.call('GET', KEYS[2]) or '0') ~= ARGV[1] then return 0 end
local nbad = tonumber(ARGV[4])
local gone = 0
for k = 5, 4 + nbad do
  local i = tonumber(ARGV[k])
  local line = redis.call('LINDEX', KEYS[1], i)
  gone = gone + #line + 1
  redis.call('RPUSH', KEYS[5], line)
  redis.call('LSET', KEYS[1], i, '')
end
for k = 5 + nbad, #ARGV do
  local i = tonumber(ARGV[k])
  gone = gone + #redis.call('LINDEX', KEYS[1], i) + 1
  redis.call('LSET', KEYS[1], i, '')
end
if redis.call('DECRBY', KEYS[6], gone) < 0 then redis.call('SET', KEYS[6], 0) end
redis.call('LREM', KEYS[1], 0, '')
local seq = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[3], ARGV[2], string.format('%016d', seq) .. ARGV[3])
redis.call('INCR', KEYS[2])
return 1
