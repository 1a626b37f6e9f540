-- ledger_open (read only): the lines of the open obligations, newest first.
-- KEYS: led, ledm, ledq
local open = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do open[id] = true end
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
local out = {}
for i = #ids, 1, -1 do
  if open[ids[i]] then
    local line = redis.call('HGET', KEYS[2], ids[i])
    if line then out[#out + 1] = line end
  end
end
return out
