-- gc_scored: remove every record whose index score is within ARGV[1] (e.g. '123' inclusive,
-- '(123' exclusive) from each (hash, index) pair in KEYS. Returns how many records went.
local removed = 0
for p = 1, #KEYS, 2 do
  while true do
    local old = redis.call('ZRANGEBYSCORE', KEYS[p + 1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
    if #old == 0 then break end
    for _, field in ipairs(old) do
      removed = removed + redis.call('HDEL', KEYS[p], field)
    end
    redis.call('ZREM', KEYS[p + 1], unpack(old))
  end
end
return removed
