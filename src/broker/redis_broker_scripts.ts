/**
 * Lua scripts of the Redis broker. Each runs atomically, which is what makes offsets exact under
 * concurrent publishers and presence join/leave events happen once per cluster. Times are the
 * caller's clock in ms (passed in, so the broker honours an injected `now`); PEXPIREs only
 * garbage-collect what the logical checks already treat as gone.
 *
 * Key layout (P = prefix): P.."epoch" string; P.."h:"..stream Redis Stream with ids
 * "<offset>-0" and fields d (data), t (store ms), m (meta JSON, optional); P.."hm:"..stream hash
 * {seq, last}; P.."s:"..sid hash {state, exp}; P.."p:"..stream hash {"s:"..sid -> id,
 * "c:"..id -> session count, "i:"..id -> info JSON}; P.."ps:"..sid set of streams;
 * P.."pz" sorted set of presence entries (member = #sid..":"..sid..stream) scored by touch time.
 * Scripts derive presence keys from the prefix, so the layout assumes a non-cluster Redis.
 */
import { RedisScript } from "../util/redis_script.ts";

const GET_OR_CREATE_EPOCH = `
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  redis.call('SET', KEYS[1], ARGV[1])
  epoch = ARGV[1]
end
return epoch
`;

/**
 * KEYS: epoch, history, meta. ARGV: candidate epoch, now, limit, forget ms, gc ms, data, meta.
 * Returns {epoch, offset, store time (ms) of the entry the limit trimmed, or 0}.
 */
export const STORE = new RedisScript(`
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  redis.call('SET', KEYS[1], ARGV[1])
  epoch = ARGV[1]
end
local last = redis.call('HGET', KEYS[3], 'last')
if (not last) or (tonumber(ARGV[2]) - tonumber(last) > tonumber(ARGV[4])) then
  redis.call('DEL', KEYS[2], KEYS[3])
end
local seq = redis.call('HINCRBY', KEYS[3], 'seq', 1)
redis.call('HSET', KEYS[3], 'last', ARGV[2])
local trimmed = 0
local limit = tonumber(ARGV[3])
if limit > 0 and redis.call('XLEN', KEYS[2]) >= limit then
  local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
  if oldest then
    for i = 1, #oldest[2], 2 do
      if oldest[2][i] == 't' then trimmed = oldest[2][i + 1] end
    end
  end
end
if ARGV[7] == '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-0', 'd', ARGV[6], 't', ARGV[2])
else
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-0', 'd', ARGV[6], 't', ARGV[2],
    'm', ARGV[7])
end
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return {epoch, seq, trimmed}
`);

/** KEYS: epoch, history, meta. ARGV: now, forget ms. Returns {epoch, latest (0: unknown), entries}. */
export const READ_HISTORY = new RedisScript(`
local epoch = redis.call('GET', KEYS[1]) or ''
local meta = redis.call('HMGET', KEYS[3], 'seq', 'last')
if (not meta[1]) or (not meta[2]) then return {epoch, 0, {}} end
if tonumber(ARGV[1]) - tonumber(meta[2]) > tonumber(ARGV[2]) then return {epoch, 0, {}} end
return {epoch, tonumber(meta[1]), redis.call('XRANGE', KEYS[2], '-', '+')}
`);

/** KEYS: epoch. ARGV: candidate epoch. */
export const EPOCH = new RedisScript(GET_OR_CREATE_EPOCH);

/** KEYS: session. ARGV: state, expires-at ms, gc ms. */
export const COMMIT_SESSION = new RedisScript(`
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'exp', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`);

/** KEYS: session. ARGV: now, new expires-at ms, gc ms. An expired session is not revived. */
export const TOUCH_SESSION = new RedisScript(`
local exp = redis.call('HGET', KEYS[1], 'exp')
if (not exp) or tonumber(exp) <= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'exp', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
`);

/** Shared Lua: drop sid from stream's presence; returns the id when it was its last session. */
const PRESENCE_DROP = `
local function member_of(sid, stream)
  return string.len(sid) .. ':' .. sid .. stream
end
local function drop(prefix, stream, sid)
  local pkey = prefix .. 'p:' .. stream
  redis.call('ZREM', prefix .. 'pz', member_of(sid, stream))
  redis.call('SREM', prefix .. 'ps:' .. sid, stream)
  local id = redis.call('HGET', pkey, 's:' .. sid)
  if not id then return false end
  redis.call('HDEL', pkey, 's:' .. sid)
  local count = redis.call('HINCRBY', pkey, 'c:' .. id, -1)
  if count > 0 then return false end
  redis.call('HDEL', pkey, 'c:' .. id, 'i:' .. id)
  return id
end
`;

/**
 * ARGV: prefix, stream, sid, id, info JSON ('' = none), now, gc ms.
 * Returns 1 on join, 0 otherwise; error PRESENCE_CONFLICT when sid has another id there.
 */
export const PRESENCE_ADD = new RedisScript(`
local prefix, stream, sid, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local pkey = prefix .. 'p:' .. stream
local current = redis.call('HGET', pkey, 's:' .. sid)
if current and current ~= id then
  return redis.error_reply('PRESENCE_CONFLICT session already has presence id ' .. current)
end
local joined = 0
if not current then
  redis.call('HSET', pkey, 's:' .. sid, id)
  if redis.call('HINCRBY', pkey, 'c:' .. id, 1) == 1 then joined = 1 end
end
if ARGV[5] == '' then
  redis.call('HDEL', pkey, 'i:' .. id)
else
  redis.call('HSET', pkey, 'i:' .. id, ARGV[5])
end
redis.call('ZADD', prefix .. 'pz', ARGV[6], string.len(sid) .. ':' .. sid .. stream)
redis.call('SADD', prefix .. 'ps:' .. sid, stream)
redis.call('PEXPIRE', pkey, ARGV[7])
redis.call('PEXPIRE', prefix .. 'ps:' .. sid, ARGV[7])
return joined
`);

/** ARGV: prefix, stream, sid. Returns the presence id that left, or nil. */
export const PRESENCE_REMOVE = new RedisScript(`${PRESENCE_DROP}
return drop(ARGV[1], ARGV[2], ARGV[3])
`);

/** ARGV: prefix, sid, now, gc ms. */
export const PRESENCE_TOUCH = new RedisScript(`
local prefix, sid = ARGV[1], ARGV[2]
local streams = redis.call('SMEMBERS', prefix .. 'ps:' .. sid)
for _, stream in ipairs(streams) do
  redis.call('ZADD', prefix .. 'pz', 'XX', ARGV[3], string.len(sid) .. ':' .. sid .. stream)
  redis.call('PEXPIRE', prefix .. 'p:' .. stream, ARGV[4])
end
if #streams > 0 then redis.call('PEXPIRE', prefix .. 'ps:' .. sid, ARGV[4]) end
return #streams
`);

/**
 * ARGV: prefix, cutoff ms (entries touched before it are stale), batch size.
 * Returns a flat list {stream, id, stream, id, ...} of leave events.
 */
export const PRESENCE_EXPIRE = new RedisScript(`${PRESENCE_DROP}
local prefix = ARGV[1]
local stale = redis.call('ZRANGEBYSCORE', prefix .. 'pz', '-inf', '(' .. ARGV[2],
  'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, m in ipairs(stale) do
  local colon = string.find(m, ':', 1, true)
  local n = tonumber(string.sub(m, 1, colon - 1))
  local sid = string.sub(m, colon + 1, colon + n)
  local stream = string.sub(m, colon + n + 1)
  local id = drop(prefix, stream, sid)
  redis.call('ZREM', prefix .. 'pz', m)
  if id then
    table.insert(out, stream)
    table.insert(out, id)
  end
end
return out
`);
