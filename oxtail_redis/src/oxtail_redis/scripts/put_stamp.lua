-- put_stamp: write a time stamp and its gc index together.   KEYS: hash, index   ARGV: field, at
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
