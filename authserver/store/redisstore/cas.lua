-- Compare-and-swap for redisstore; see compareAndSwapScript.
local current = redis.call('GET', KEYS[1])
if current == false then
  return -1
end
if current ~= ARGV[1] then
  return 0
end
local ttl = tonumber(ARGV[3])
if ttl < 0 then
  redis.call('DEL', KEYS[1])
elseif ttl == 0 then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
end
return 1
