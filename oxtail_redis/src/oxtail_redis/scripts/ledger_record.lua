-- ledger_record: record one delivered message (its id moved last), then prune the oldest lines
-- above keep, never an open obligation.
-- KEYS: led (ids, oldest first), ledm (id -> line), ledq (open obligation ids), op
-- ARGV: id, was_absent ('1'/'0'), expected_line, line, is_open ('1'/'0'), keep
-- Returns lines pruned, or -1 when the id's line changed since the client read it.
local done = redis.call('GET', KEYS[4])
if done then return tonumber(done) end
local current = redis.call('HGET', KEYS[2], ARGV[1])
if ARGV[2] == '1' then
  if current then return -1 end
elseif current ~= ARGV[3] then
  return -1
end
redis.call('LREM', KEYS[1], 0, ARGV[1])
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
if ARGV[5] == '1' then redis.call('SADD', KEYS[3], ARGV[1]) else redis.call('SREM', KEYS[3], ARGV[1]) end
local excess = redis.call('LLEN', KEYS[1]) - math.max(tonumber(ARGV[6]), 0)
local dropped = 0
if excess > 0 then
  local ids = redis.call('LRANGE', KEYS[1], 0, -1)
  for i, id in ipairs(ids) do
    if dropped >= excess then break end
    if redis.call('SISMEMBER', KEYS[3], id) == 0 then
      redis.call('LSET', KEYS[1], i - 1, '')
      redis.call('HDEL', KEYS[2], id)
      dropped = dropped + 1
    end
  end
  if dropped > 0 then redis.call('LREM', KEYS[1], 0, '') end
end
redis.call('SET', KEYS[4], dropped, 'PX', 60000)
return dropped
