-- append: add envelope lines at the tail of an inbox, all or none.
-- KEYS: in, ev, rid, regi, wb   ARGV: first_id, guarded ('1'/'0'), reg_field, incarnation, cap, line...
-- Replay-safe: an append whose first envelope id is already in rid was applied before.
-- Returns 1 (appended), 0 (the guard's entry is gone), or -1 - waiting bytes (the inbox is full).
if redis.call('ZSCORE', KEYS[3], ARGV[1]) then return 1 end
if ARGV[2] == '1' and redis.call('HGET', KEYS[4], ARGV[3]) ~= ARGV[4] then return 0 end
local n = #ARGV
local incoming = 0
for k = 6, n do incoming = incoming + #ARGV[k] + 1 end
local waiting = tonumber(redis.call('GET', KEYS[5]) or '0')
if waiting + incoming > tonumber(ARGV[5]) then return -1 - waiting end
-- every check is done; only writes below
redis.call('INCRBY', KEYS[5], incoming)
local i = 6
while i <= n do
  local j = math.min(i + 3999, n)
  redis.call('RPUSH', KEYS[1], unpack(ARGV, i, j))
  i = j + 1
end
local eid = redis.call('XADD', KEYS[2], 'MAXLEN', '16', '*', 'k', 'a')
local ms = tonumber(string.match(eid, '^(%d+)'))
redis.call('ZADD', KEYS[3], ms, ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -1025)
return 1
