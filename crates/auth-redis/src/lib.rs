//! A Redis [`SessionBackend`] for `auth-core`: server-side sessions, back-channel logout
//! bookkeeping and replay guards shared by every instance of an app.
//!
//! ```no_run
//! # async fn run() -> Result<(), auth_core::StoreError> {
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use auth_redis::RedisBackend;
//!
//! // `REDIS_URL`, or redis://127.0.0.1:6379 when unset.
//! let backend = Arc::new(RedisBackend::from_env().await?);
//! // Or with options:
//! let backend = RedisBackend::builder("redis://:password@redis.internal:6379/2")
//!     .key_prefix("myapp:auth:")
//!     .command_timeout(Duration::from_millis(500))
//!     .connect()
//!     .await?;
//! # let _ = backend; Ok(()) }
//! ```
//!
//! # Connection and failures
//!
//! One multiplexed connection per backend (clones share it), managed by `redis`'s
//! [`ConnectionManager`]: when the connection drops, the next command triggers a reconnect
//! (a few quick attempts with back-off), so the backend recovers by itself once Redis is back.
//! In [cluster mode](#redis-cluster), one multiplexed connection per node, likewise
//! reconnected. There is no pool and none is needed: a multiplexed connection pipelines the
//! commands of every concurrent request over one socket (Redis answers them in order), so one
//! connection per server serves a whole instance; clone the backend instead of connecting
//! again.
//!
//! Every operation is bounded by the command timeout (default
//! [`DEFAULT_COMMAND_TIMEOUT`], 2 s; [`RedisBackendBuilder::command_timeout`]), in both
//! modes: an unreachable, dead or hung Redis yields a [`StoreError`] within that time, never a
//! hang or a panic. [`RedisBackend::connect`] is eager: it connects and sends `PING`, bounded
//! by the connect timeout (default [`DEFAULT_CONNECT_TIMEOUT`], 5 s;
//! [`RedisBackendBuilder::connect_timeout`]), so a wrong URL fails at start-up.
//!
//! During an outage or a failover, the store errors are what `auth-axum` answers with a 503
//! (`store_error`) and the session cookie is left alone: nothing is lost, and once Redis (or
//! the promoted replica behind the same address) answers again, the same sessions work again
//! without restarting the app. Sessions survive a Redis restart only as far as Redis persists
//! them (`appendonly yes`, or a replica that is promoted).
//!
//! **Sentinel** is not spoken by this crate. Use a failover endpoint that always reaches the
//! current primary: a managed Redis's primary endpoint, a TCP proxy that only routes to the
//! primary (e.g. HAProxy with a health check expecting `role:master`), or a DNS name the
//! failover updates; the backend reconnects to it after a failover as after any dropped connection.
//! Or use [Redis Cluster](#redis-cluster), whose replicas take over by themselves.
//!
//! [`Debug`] shows the server as `host:port/db` only; a password in the URL is never printed.
//!
//! # TLS
//!
//! A `rediss://` URL connects over TLS (rustls, through the `tls` feature, on by default;
//! no OpenSSL). The server's certificate must chain to a trusted root and name the URL's host
//! (a DNS name or an IP address in its subject alternative names). Trusted roots are the
//! system's (read by `rustls-native-certs`), or, when the `SSL_CERT_FILE` environment variable
//! is set, the PEM certificates in that file instead (likewise `SSL_CERT_DIR`);
//! [`RedisBackendBuilder::tls_root_certificates`] gives the roots in code instead of both.
//! A certificate that is not trusted or does not match the host fails
//! [`connect`](RedisBackendBuilder::connect) with a [`StoreError`] saying what to check.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! # use auth_redis::RedisBackend;
//! let ca = std::fs::read("/etc/redis/tls/ca.pem")?;
//! let backend = RedisBackend::builder("rediss://:password@redis.internal:6380")
//!     .tls_root_certificates(ca)
//!     .connect()
//!     .await?;
//! # let _ = backend; Ok(()) }
//! ```
//!
//! # Local cache
//!
//! By default ([`RedisBackendBuilder::local_cache`]) each backend keeps the session records it
//! read in memory (up to [`DEFAULT_LOCAL_CACHE_CAPACITY`]) and a copy of the logout list, so
//! that a protected request costs no Redis round trip. Redis keeps them true: one more
//! connection per backend runs `CLIENT TRACKING ON BCAST` on the records' and the logout
//! list's keys, and Redis pushes an invalidation to it whenever any client changes, deletes or
//! expires one of them (and on `FLUSHDB`). So a logout, back-channel logout, refresh or rolling
//! touch on one instance reaches every other instance's cache as fast as the push travels.
//!
//! The cache answers only while the tracking connection is known to be alive: a `PING` every
//! 20 ms, and a cached record is served only within 80 ms after the last answered `PING` was
//! sent (a connection's replies come after the pushes sent before them). So even if pushes
//! stall silently, no instance serves a session more than 80 ms after another deleted or
//! changed it; when the connection drops (or Redis restarts), the cache is flushed and every
//! read goes to Redis until tracking is back, which the backend retries by itself. A read that
//! raced an invalidation is not kept; absent records are never cached; an instance reads its
//! own writes at once. Where `CLIENT TRACKING` is refused (an ACL, a proxy), the cache stays
//! off and every read asks Redis. Redis Cluster: the cache is off.
//!
//! # Redis Cluster
//!
//! [`RedisBackendBuilder::cluster`] (or `REDIS_CLUSTER_URLS`, see
//! [`RedisBackendBuilder::from_env`]; `cluster` feature, on by default) connects to a Redis
//! Cluster through some of its nodes. The key layout is the same in both modes: hash tags
//! (the part of a key in braces) put a session's record, its refresh leases and their counter
//! in one slot (the session id's), and the whole logout list in one slot (`{<prefix>lo}`), so
//! each of their scripts runs on one node. The indexes by `sid` and `sub` are keys of their
//! own, in other slots, so in cluster mode the writes that touch a record and its indexes go
//! in steps (see [Atomicity](#atomicity)). The key prefix must not contain braces. The
//! [local cache](#local-cache) is off in cluster mode (its tracking would be needed on every
//! node); [`RedisBackendBuilder::logout_list_refresh`] still works.
//!
//! # Data layout
//!
//! All keys start with the key prefix `{p}` (default [`DEFAULT_KEY_PREFIX`], `auth:`); braces
//! in the keys are literal (hash tags), `<…>` are values:
//!
//! | key | type | holds | expiry |
//! |---|---|---|---|
//! | `{p}s:{<id>}` | hash | `v`: the (sealed) session bytes; `sid`, `sub`: the keys it is indexed under | the session's TTL (`PEXPIRE`) |
//! | `{p}sid:<sid>` | set | ids of the sessions with that provider session id | extended to at least the TTL of each session added, never shortened |
//! | `{p}sub:<sub>` | set | ids of the sessions of that user | as above |
//! | `{p}{<p>lo}:sid:<sid>` | string | latest logout time (milliseconds since the epoch, decimal) | the TTL given when the latest time was recorded |
//! | `{p}{<p>lo}:sub:<sub>` | string | as above, for a user | as above |
//! | `{p}once:<key>` | string | `1` | the TTL given (`SET NX PX`) |
//! | `{p}lease:{<id>}:<key>` | string | the fencing token of the holder of the session's refresh lease `<key>` (decimal) | the lease's TTL |
//! | `{p}lease-seq:{<id>}` | string | the last fencing token handed out for the session's leases (`INCR`) | at least the lease's TTL and the session's remaining TTL, extended on each lease |
//! | `{p}{<p>lo}:all` | sorted set | members `sid:<sid>` / `sub:<sub>` of the logout list, scored by when each expires (epoch ms); expired members are trimmed on each record | extended to at least each logout's TTL |
//! | `{p}{<p>lo}:ver` | string | a new unique value on every recorded logout (for in-process copies of the logout list to notice changes) | as above |
//!
//! A session hash records its own `sid` and `sub` so that writing an existing id under other
//! keys moves it between indexes, and so that an index member whose session has expired or
//! moved is recognised as stale: such members are tolerated, and dropped when the index is
//! used by [`delete_by`](SessionBackend::delete_by).
//!
//! # Atomicity
//!
//! On one server, each write is one Lua script, which Redis runs atomically (no other command
//! interleaves), so concurrent calls from many instances are safe and a lost connection never
//! leaves a half-applied write:
//!
//! - `set` moves the id out of its old indexes, adds it to both new ones (extending their
//!   TTL), then replaces the hash and sets its TTL. The value is written last, so even a
//!   server-side error part-way (e.g. out of memory) can leave at most a stale index member,
//!   never a session missing from its indexes.
//! - `update` does what `set` does, but only when the session hash still exists (otherwise it
//!   writes nothing and reports the session gone), so a write racing a logout never recreates
//!   a deleted session.
//! - `delete` removes the id from its indexes and deletes the hash.
//! - `delete_by` reads the index, deletes every live session that is still indexed under that
//!   key (removing it from its other index too), deletes the index, and returns how many
//!   sessions it deleted.
//! - `record_logout` keeps the greater time when a key is recorded twice (compared exactly, as
//!   decimal strings), and lists the key in `lo:all` and stamps a new `lo:ver` in the same
//!   script.
//! - With [`RedisBackendBuilder::logout_list_refresh`], the backend keeps an in-process copy
//!   of the logout list for the per-request check: its own logouts update the copy at once,
//!   and at most once per refresh interval one script compares `lo:ver` and, when it changed,
//!   returns the live entries of `lo:all` to merge in.
//! - `logout_time` is one `MGET`; `remember_once` is one `SET NX PX`; `forget_once` one `DEL`.
//! - `acquire_refresh_lease` sets the lease (`SET PX`) only when it does not exist, with a
//!   fencing token from `INCR` on the session's `lease-seq` (so a session's tokens only grow,
//!   and a refused attempt uses none; a counter that expired starts again above its earlier
//!   tokens, at the current time in µs); `release_refresh_lease` deletes it only while it
//!   holds the caller's token (compare-and-delete); `update_fenced` is `update` preceded, in
//!   the same script, by the check that the lease still holds the caller's token, so a holder
//!   whose lease expired never overwrites the token set of the one that took over.
//!
//! In cluster mode the scripts of the lease, the logout list and the replay guard are the
//! same (each in one slot). The writes that also touch the indexes, in other slots, go in
//! steps, ordered so that no session escapes a back-channel logout:
//!
//! - `set` and `update` add the id to both indexes first (extending their TTL), then write
//!   the record (`update` and `update_fenced` only while it exists, `update_fenced` only while
//!   the lease holds the token: one script in the record's slot), then, for a new record or
//!   one moved to other keys, add the id to both indexes again. A record is never written
//!   before its id is in both indexes. An id moved to other keys stays in its old indexes as a
//!   stale member.
//! - `delete` deletes the record, then takes the id out of its indexes.
//! - `delete_by` lists the index, then deletes each record still indexed under the key (one
//!   script per record), then takes the deleted ids out of both indexes. An id without a record
//!   (expired, or a login whose record is not written yet) is taken out of the index and its
//!   record looked at once more: a login that wrote its record meanwhile is deleted, and one
//!   that writes it later adds its id back (it logged in after the logout). A step that fails
//!   part-way leaves at most stale index members, which every delete tolerates.
//!
//! Works with Redis 6.2 and later (and compatible servers such as Valkey).
//!
//! TTLs are stored in milliseconds, rounded up, at least 1 ms.
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

mod cache;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, LazyLock, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use auth_core::StoreError;
use auth_core::store::{LogoutKey, SessionBackend, SessionKeys};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ConnectionAddr, Script};

use crate::cache::RecordCache;

/// The environment variable [`RedisBackend::from_env`] reads.
pub const REDIS_URL_ENV: &str = "REDIS_URL";
/// The environment variable [`RedisBackend::from_env`] reads first: node URLs of a Redis
/// Cluster, separated by commas or white space (with the `cluster` feature).
pub const REDIS_CLUSTER_URLS_ENV: &str = "REDIS_CLUSTER_URLS";
/// The URL used when `REDIS_URL` is unset or empty.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";
/// The default prefix of every key.
pub const DEFAULT_KEY_PREFIX: &str = "auth:";
/// The default bound on each operation.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// The default bound on [`RedisBackendBuilder::connect`] (connecting, then `PING`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many session records the local cache keeps at most by default
/// ([`RedisBackendBuilder::local_cache_capacity`]).
pub const DEFAULT_LOCAL_CACHE_CAPACITY: usize = 10_000;

/// Attempts made to re-establish a lost connection before the waiting command fails; the
/// next command starts a new round.
const RECONNECT_RETRIES: usize = 2;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// Longest TTL sent to Redis (about 35,000 years): keeps `now + ttl` within Redis's range and
/// exact in Lua's doubles.
const MAX_TTL_MS: u64 = 1 << 50;

/// Replaces the session and its index entries. KEYS: session, sid index, sub index.
/// ARGV: value, ttl ms, id, sid, sub, prefix.
static SET_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ttl = tonumber(ARGV[2])
local id, sid, sub, p = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('TYPE', KEYS[1]).ok == 'hash' then
  local old = redis.call('HMGET', KEYS[1], 'sid', 'sub')
  if old[1] and old[1] ~= sid then redis.call('SREM', p .. 'sid:' .. old[1], id) end
  if old[2] and old[2] ~= sub then redis.call('SREM', p .. 'sub:' .. old[2], id) end
end
for i = 2, 3 do
  redis.call('SADD', KEYS[i], id)
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'sid', sid, 'sub', sub)
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
",
    )
});

/// [`SET_SCRIPT`] only when the session still exists; returns 1 when written, 0 when gone.
/// Same KEYS and ARGV.
static UPDATE_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(UPDATE_BODY));

/// [`UPDATE_SCRIPT`] only while the refresh lease still holds the fencing token; returns 1
/// when written, 0 when the lease is lost or the session gone. KEYS: as `UPDATE_SCRIPT`, then
/// the lease. ARGV: as `UPDATE_SCRIPT`, then the fencing token.
static UPDATE_FENCED_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "if redis.call('GET', KEYS[4]) ~= ARGV[7] then return 0 end\n{UPDATE_BODY}"
    ))
});

/// Takes a refresh lease when free, with a fencing token from the session's lease counter.
/// KEYS: lease, counter, session record (all in the session's slot). ARGV: ttl ms, now (epoch
/// µs). Returns the token, or nil while the lease is held.
///
/// The counter is per session (so that it shares the lease's Cluster slot), which suffices:
/// fencing only ever compares holders of the same lease, i.e. tokens handed out by the same
/// counter. It lives at least as long as the lease and as the record did when the lease was
/// taken; when it has expired and is created again, it starts at the current time in µs, above
/// every token it handed out before (those were its earlier start plus one per acquisition, at
/// most one per µs), so its tokens only grow even across its expiry.
static ACQUIRE_LEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local t = redis.call('INCR', KEYS[2])
if t == 1 then
  t = tonumber(ARGV[2])
  redis.call('SET', KEYS[2], ARGV[2])
end
local keep = math.max(tonumber(ARGV[1]), redis.call('PTTL', KEYS[3]), redis.call('PTTL', KEYS[2]))
redis.call('PEXPIRE', KEYS[2], keep)
redis.call('SET', KEYS[1], t, 'PX', ARGV[1])
return t
",
    )
});

/// Deletes a refresh lease only when it still holds the fencing token. KEYS: lease. ARGV:
/// token.
static RELEASE_LEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
",
    )
});

/// The body of [`UPDATE_SCRIPT`].
const UPDATE_BODY: &str = r"
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local ttl = tonumber(ARGV[2])
local id, sid, sub, p = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local old = redis.call('HMGET', KEYS[1], 'sid', 'sub')
if old[1] and old[1] ~= sid then redis.call('SREM', p .. 'sid:' .. old[1], id) end
if old[2] and old[2] ~= sub then redis.call('SREM', p .. 'sub:' .. old[2], id) end
for i = 2, 3 do
  redis.call('SADD', KEYS[i], id)
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'sid', sid, 'sub', sub)
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
";

/// Deletes one session and its index entries. KEYS: session. ARGV: id, prefix.
static DELETE_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local id, p = ARGV[1], ARGV[2]
if redis.call('TYPE', KEYS[1]).ok == 'hash' then
  local old = redis.call('HMGET', KEYS[1], 'sid', 'sub')
  if old[1] then redis.call('SREM', p .. 'sid:' .. old[1], id) end
  if old[2] then redis.call('SREM', p .. 'sub:' .. old[2], id) end
end
return redis.call('DEL', KEYS[1])
",
    )
});

/// Deletes every live session still indexed under one key, then the index; returns the count.
/// KEYS: index. ARGV: prefix, field of the index (`sid` or `sub`), the key's value.
static DELETE_BY_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local p, field, value = ARGV[1], ARGV[2], ARGV[3]
local other = 'sid'
if field == 'sid' then other = 'sub' end
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local k = p .. 's:{' .. id .. '}'
  if redis.call('TYPE', k).ok == 'hash' then
    local f = redis.call('HMGET', k, field, other)
    if f[1] == value then
      if f[2] then redis.call('SREM', p .. other .. ':' .. f[2], id) end
      n = n + redis.call('DEL', k)
    end
  end
end
redis.call('DEL', KEYS[1])
return n
",
    )
});

/// Records a logout time, keeping the greater one, lists it in the logout index and stamps a
/// new logout-list version. KEYS: logout key, version, index. ARGV: time, ttl ms, index member,
/// expiry (epoch ms), now (epoch ms), new version.
static RECORD_LOGOUT_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local cur, new = redis.call('GET', KEYS[1]), ARGV[1]
if cur and (#cur > #new or (#cur == #new and cur > new)) then return 0 end
local ttl = tonumber(ARGV[2])
redis.call('SET', KEYS[1], new, 'PX', ttl)
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[5])
if redis.call('PTTL', KEYS[3]) < ttl then redis.call('PEXPIRE', KEYS[3], ttl) end
local vttl = math.max(ttl, redis.call('PTTL', KEYS[2]))
redis.call('SET', KEYS[2], ARGV[6], 'PX', vttl)
return 1
",
    )
});

/// The live logout list unless its version is the one known. KEYS: version, index. ARGV:
/// now (epoch ms), logout-list key base ([`logout_base`]), known version (empty for none). Returns the version, then
/// (member, time, remaining ms) for each live entry, or the version alone when unchanged.
static LOAD_LOGOUTS_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ver = redis.call('GET', KEYS[1]) or ''
if ver == ARGV[3] then return {ver} end
local out = {ver}
local members = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], '+inf')
for _, m in ipairs(members) do
  local k = ARGV[2] .. m
  local at = redis.call('GET', k)
  local left = redis.call('PTTL', k)
  if at and left > 0 then
    table.insert(out, m)
    table.insert(out, at)
    table.insert(out, string.format('%d', left))
  end
end
return out
",
    )
});

/// Cluster mode: adds a session id to an index and extends the index to at least the
/// session's TTL. KEYS: index. ARGV: id, ttl ms.
static INDEX_ADD_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
",
    )
});

/// Cluster mode: writes a session record (its indexes are written before, in their own
/// slots). KEYS: record, then the refresh lease when fenced. ARGV: value, ttl ms, sid, sub,
/// `set` or `update` (only while the record exists), then the fencing token when fenced.
/// Returns 0 when nothing was written (record gone, or lease lost), 1 when written under the
/// keys it had, 2 when written as a new record or under other keys.
static CLUSTER_WRITE_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if ARGV[6] and redis.call('GET', KEYS[2]) ~= ARGV[6] then return 0 end
local exists = redis.call('TYPE', KEYS[1]).ok == 'hash'
if ARGV[5] == 'update' and not exists then return 0 end
local r = 2
if exists then
  local old = redis.call('HMGET', KEYS[1], 'sid', 'sub')
  if old[1] == ARGV[3] and old[2] == ARGV[4] then r = 1 end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1], 'sid', ARGV[3], 'sub', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return r
",
    )
});

/// Cluster mode: deletes a session record; returns the sid and sub it was indexed under
/// (empty when there was none). KEYS: record.
static CLUSTER_DELETE_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then
  redis.call('DEL', KEYS[1])
  return {}
end
local old = redis.call('HMGET', KEYS[1], 'sid', 'sub')
redis.call('DEL', KEYS[1])
return {old[1] or '', old[2] or ''}
",
    )
});

/// Cluster mode: deletes a session record only while it is indexed under the given key.
/// KEYS: record. ARGV: field (`sid` or `sub`), value. Returns `{'deleted', <its other key>}`,
/// `{'other'}` when it is indexed under another value, `{'gone'}` when there is no record.
static CLUSTER_DELETE_IF_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return {'gone'} end
local other = 'sid'
if ARGV[1] == 'sid' then other = 'sub' end
local f = redis.call('HMGET', KEYS[1], ARGV[1], other)
if f[1] ~= ARGV[2] then return {'other'} end
redis.call('DEL', KEYS[1])
return {'deleted', f[2] or ''}
",
    )
});

/// Builds a [`RedisBackend`] with options; see [`RedisBackend::builder`].
#[derive(Clone)]
#[must_use]
pub struct RedisBackendBuilder {
    url: String,
    key_prefix: String,
    command_timeout: Duration,
    connect_timeout: Duration,
    logout_list_refresh: Option<Duration>,
    tls_root_certificates: Option<Vec<u8>>,
    local_cache: Option<usize>,
    /// Seed node URLs of a Redis Cluster; `None` for one server at `url`.
    cluster_nodes: Option<Vec<String>>,
}

impl fmt::Debug for RedisBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let server = match &self.cluster_nodes {
            None => describe_url(&self.url),
            Some(nodes) => describe_cluster(nodes),
        };
        f.debug_struct("RedisBackendBuilder")
            .field("server", &server)
            .field("key_prefix", &self.key_prefix)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("logout_list_refresh", &self.logout_list_refresh)
            .field("local_cache", &self.local_cache)
            .field(
                "tls_root_certificates",
                &self
                    .tls_root_certificates
                    .as_ref()
                    .map(|pem| format!("{} bytes of PEM", pem.len())),
            )
            .finish()
    }
}

impl RedisBackendBuilder {
    /// Options for the server at `url` (`redis://[[user]:password@]host[:port][/db]`,
    /// `redis+unix:///path`, or `rediss://…` with the `tls` feature).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            command_timeout: DEFAULT_COMMAND_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            logout_list_refresh: None,
            tls_root_certificates: None,
            local_cache: Some(DEFAULT_LOCAL_CACHE_CAPACITY),
            cluster_nodes: None,
        }
    }

    /// Options for a Redis Cluster reached through `nodes`, the URLs of some of its nodes
    /// (`redis://[[user]:password@]host:port`, or `rediss://…` with the `tls` feature; all
    /// with the same credentials): the client asks them for the cluster's slot map, then talks
    /// to every primary directly (see [Redis Cluster](crate#redis-cluster)). The
    /// [local cache](Self::local_cache) is not available in cluster mode.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), auth_core::StoreError> {
    /// let backend = auth_redis::RedisBackendBuilder::cluster([
    ///     "redis://10.0.0.1:6379".to_owned(),
    ///     "redis://10.0.0.2:6379".to_owned(),
    ///     "redis://10.0.0.3:6379".to_owned(),
    /// ])
    /// .connect()
    /// .await?;
    /// # let _ = backend; Ok(()) }
    /// ```
    #[cfg(feature = "cluster")]
    pub fn cluster(nodes: impl IntoIterator<Item = String>) -> Self {
        let mut builder = Self::new(String::new());
        builder.cluster_nodes = Some(nodes.into_iter().collect());
        builder
    }

    /// Options for the Redis Cluster whose node URLs `REDIS_CLUSTER_URLS` lists (separated by
    /// commas or white space) when it is set and not empty (with the `cluster` feature),
    /// otherwise for the server named by `REDIS_URL` (default [`DEFAULT_URL`]).
    pub fn from_env() -> Self {
        #[cfg(feature = "cluster")]
        if let Ok(list) = std::env::var(REDIS_CLUSTER_URLS_ENV) {
            let nodes: Vec<String> = list
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|u| !u.is_empty())
                .map(str::to_owned)
                .collect();
            if !nodes.is_empty() {
                return Self::cluster(nodes);
            }
        }
        let url = std::env::var(REDIS_URL_ENV)
            .ok()
            .filter(|u| !u.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_URL.to_owned());
        Self::new(url)
    }

    /// Prefix of every key (default [`DEFAULT_KEY_PREFIX`]), to share a database between apps.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Bound on each operation, including any reconnect it waits for (default
    /// [`DEFAULT_COMMAND_TIMEOUT`]). Zero is raised to 1 ms.
    pub fn command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Bound on [`connect`](Self::connect) (default [`DEFAULT_CONNECT_TIMEOUT`]). Zero is
    /// raised to 1 ms.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// With the [local cache](Self::local_cache) off: keep an in-process copy of the logout
    /// list anyway, reloaded by polling (off by default).
    ///
    /// This instance's own logouts apply at once. Logouts recorded by other instances sharing
    /// the prefix are picked up within `refresh`: at most once per `refresh` a read checks the
    /// list's version in Redis and reloads the list when it changed. So with several
    /// instances, a cookie logged out on one may still open on another for up to `refresh`.
    /// The local cache (on by default) does better, and this setting is then not used: Redis
    /// tells every instance when the list changes.
    pub fn logout_list_refresh(mut self, refresh: Duration) -> Self {
        self.logout_list_refresh = Some(refresh);
        self
    }

    /// Keep a per-instance cache of session records and a copy of the logout list, kept true
    /// by Redis (on by default; see [Local cache](crate#local-cache)): a protected request
    /// then costs no Redis round trip, and a logout, back-channel logout or update on any
    /// instance reaches every other at once (within 80 ms even if invalidations stall; the
    /// cache is flushed and bypassed while they cannot be received).
    ///
    /// Needs `CLIENT TRACKING` (Redis 6 and later; an ACL user allowed `CLIENT` and `PING`
    /// and one extra connection per backend). Where it is refused, every read asks Redis,
    /// as with the cache off.
    pub fn local_cache(mut self, enabled: bool) -> Self {
        self.local_cache = enabled.then(|| self.local_cache.unwrap_or(DEFAULT_LOCAL_CACHE_CAPACITY));
        self
    }

    /// How many session records the [local cache](Self::local_cache) keeps at most (default
    /// [`DEFAULT_LOCAL_CACHE_CAPACITY`]); 0 turns the cache off.
    pub fn local_cache_capacity(mut self, entries: usize) -> Self {
        self.local_cache = (entries > 0).then_some(entries);
        self
    }

    /// Trust only the CA certificates in `pem` (one or more PEM `CERTIFICATE` blocks) for a
    /// `rediss://` URL, instead of the system's roots and `SSL_CERT_FILE` (see
    /// [TLS](crate#tls)). For a private CA, e.g. a managed Redis's or a test's.
    /// [`connect`](Self::connect) fails when the PEM holds no certificate or the URL is
    /// not `rediss://`.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let backend = auth_redis::RedisBackend::builder("rediss://redis.internal:6380")
    ///     .tls_root_certificates(std::fs::read("ca.pem")?)
    ///     .connect()
    ///     .await?;
    /// # let _ = backend; Ok(()) }
    /// ```
    #[cfg(feature = "tls")]
    pub fn tls_root_certificates(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root_certificates = Some(pem.into());
        self
    }

    /// The client for the URL, with the configured TLS roots.
    fn client(&self) -> Result<Client, StoreError> {
        let client =
            Client::open(self.url.as_str()).map_err(|e| StoreError::with_source("invalid Redis URL", e))?;
        let Some(pem) = &self.tls_root_certificates else {
            return Ok(client);
        };
        if !matches!(client.get_connection_info().addr(), ConnectionAddr::TcpTls { .. }) {
            return Err(StoreError::new(
                "tls_root_certificates needs a rediss:// URL (TLS); the Redis URL given is not one",
            ));
        }
        if !pem.windows(PEM_CERTIFICATE.len()).any(|w| w == PEM_CERTIFICATE) {
            return Err(StoreError::new(
                "invalid tls_root_certificates: no PEM \"-----BEGIN CERTIFICATE-----\" block; give the CA \
                 certificate(s) in PEM",
            ));
        }
        #[cfg(feature = "tls")]
        {
            let certs = redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            };
            Client::build_with_tls(self.url.as_str(), certs).map_err(|e| {
                StoreError::with_source(
                    "invalid tls_root_certificates: expected one or more PEM CERTIFICATE blocks",
                    e,
                )
            })
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = pem;
            Ok(client)
        }
    }

    /// Connects and checks the server with `PING`.
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when the URL is invalid, or the server cannot be reached or does not
    /// answer (after at most the connect timeout), or, for `rediss://`, its certificate is
    /// not trusted or does not name the URL's host.
    pub async fn connect(#[allow(unused_mut)] mut self) -> Result<RedisBackend, StoreError> {
        #[cfg(feature = "cluster")]
        if let Some(nodes) = self.cluster_nodes.take() {
            return self.connect_cluster(nodes).await;
        }
        let client = self.client()?;
        let server = describe(&client);
        let hint = connect_hint(&client);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.command_timeout))
            .set_response_timeout(Some(self.command_timeout))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY);
        let connecting = async {
            let mut conn = ConnectionManager::new_with_config(client.clone(), config).await?;
            redis::cmd("PING").query_async::<()>(&mut conn).await?;
            Ok::<_, redis::RedisError>(conn)
        };
        let conn = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                // A server's own answer (e.g. a wrong password) needs no transport hint.
                let hint = if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
                    hint
                } else {
                    ""
                };
                return Err(StoreError::with_source(
                    format!("connecting to Redis at {server}{hint}"),
                    e,
                ));
            }
            Err(elapsed) => {
                return Err(StoreError::with_source(
                    format!(
                        "connecting to Redis at {server}: no answer within {} ms{hint}",
                        self.connect_timeout.as_millis()
                    ),
                    elapsed,
                ));
            }
        };
        let cache = match self.local_cache {
            Some(capacity) => Some(
                RecordCache::start(
                    &client,
                    vec![
                        session_key_prefix(&self.key_prefix),
                        logout_version_key(&self.key_prefix),
                    ],
                    logout_version_key(&self.key_prefix),
                    capacity,
                    self.command_timeout,
                )
                .map_err(|e| StoreError::with_source("invalid Redis URL", e))?,
            ),
            None => None,
        };
        let mirror = match (&cache, self.logout_list_refresh) {
            (Some(cache), _) => Some(Refresh::Tracked(cache.clone())),
            (None, Some(every)) => Some(Refresh::Every(every)),
            (None, None) => None,
        };
        Ok(RedisBackend {
            conn: Conn::Single(conn),
            cluster: false,
            prefix: self.key_prefix,
            command_timeout: self.command_timeout,
            server,
            mirror: mirror.map(|refresh| {
                Arc::new(Mirror {
                    refresh,
                    list: RwLock::default(),
                })
            }),
            cache,
        })
    }

    /// [`connect`](Self::connect) to a Redis Cluster.
    #[cfg(feature = "cluster")]
    async fn connect_cluster(self, nodes: Vec<String>) -> Result<RedisBackend, StoreError> {
        if nodes.is_empty() {
            return Err(StoreError::new(
                "no Redis Cluster node URLs given: RedisBackendBuilder::cluster needs at least one",
            ));
        }
        if self.key_prefix.contains(['{', '}']) {
            return Err(StoreError::new(
                "invalid key_prefix for Redis Cluster: it must not contain '{' or '}' (braces would \
                 change the hash tags that keep each session's keys in one slot)",
            ));
        }
        let server = describe_cluster(&nodes);
        let retry_ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        #[allow(unused_mut)]
        let mut builder = redis::cluster::ClusterClientBuilder::new(nodes.iter().map(String::as_str))
            .connection_timeout(self.command_timeout)
            .response_timeout(self.command_timeout)
            .retries(u32::try_from(RECONNECT_RETRIES).unwrap_or(u32::MAX))
            .min_retry_wait(retry_ms(RECONNECT_MIN_DELAY))
            .max_retry_wait(retry_ms(RECONNECT_MAX_DELAY));
        #[cfg(feature = "tls")]
        if let Some(pem) = &self.tls_root_certificates {
            if !nodes.iter().all(|n| n.starts_with("rediss://")) {
                return Err(StoreError::new(
                    "tls_root_certificates needs rediss:// URLs (TLS); a Redis Cluster node URL given is not one",
                ));
            }
            if !pem.windows(PEM_CERTIFICATE.len()).any(|w| w == PEM_CERTIFICATE) {
                return Err(StoreError::new(
                    "invalid tls_root_certificates: no PEM \"-----BEGIN CERTIFICATE-----\" block; give the \
                     CA certificate(s) in PEM",
                ));
            }
            builder = builder.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            });
        }
        let client = builder.build().map_err(|e| {
            StoreError::with_source(
                "invalid Redis Cluster node URLs (redis:// or rediss://, all with the same credentials)",
                e,
            )
        })?;
        let connecting = async {
            let mut conn = client.get_async_connection().await?;
            redis::cmd("PING").query_async::<()>(&mut conn).await?;
            Ok::<_, redis::RedisError>(conn)
        };
        let conn = match tokio::time::timeout(self.connect_timeout, connecting).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                return Err(StoreError::with_source(
                    format!(
                        "connecting to Redis at {server}; check that the nodes are reachable and form a \
                         cluster whose slots are all served"
                    ),
                    e,
                ));
            }
            Err(elapsed) => {
                return Err(StoreError::with_source(
                    format!(
                        "connecting to Redis at {server}: no answer within {} ms",
                        self.connect_timeout.as_millis()
                    ),
                    elapsed,
                ));
            }
        };
        Ok(RedisBackend {
            conn: Conn::Cluster(conn),
            cluster: true,
            prefix: self.key_prefix,
            command_timeout: self.command_timeout,
            server,
            // No local cache: `CLIENT TRACKING` would be needed on every node.
            mirror: self.logout_list_refresh.map(|every| {
                Arc::new(Mirror {
                    refresh: Refresh::Every(every),
                    list: RwLock::default(),
                })
            }),
            cache: None,
        })
    }
}

/// A [`SessionBackend`] on Redis. Cheap to clone; clones share the connection.
///
/// See the [crate documentation](crate) for the data layout, atomicity and failure behaviour.
#[derive(Clone)]
pub struct RedisBackend {
    conn: Conn,
    /// Redis Cluster: writes that touch keys of several slots go in steps (see the crate docs).
    cluster: bool,
    prefix: String,
    command_timeout: Duration,
    /// `host:port/db`, without credentials.
    server: String,
    /// The in-process copy of the logout list, when enabled.
    mirror: Option<Arc<Mirror>>,
    /// The local cache of session records, when enabled.
    cache: Option<RecordCache>,
}

/// An in-process copy of the logout list ([`RedisBackendBuilder::local_cache`],
/// [`RedisBackendBuilder::logout_list_refresh`]).
struct Mirror {
    refresh: Refresh,
    list: RwLock<MirrorList>,
}

/// When the logout-list copy must be checked against Redis again.
enum Refresh {
    /// When the local cache's tracking says it may have changed (or may have missed a change).
    Tracked(RecordCache),
    /// Once per interval.
    Every(Duration),
}

impl Refresh {
    /// What the copy must have been loaded at to be current now: the tracking's logout
    /// generation, or nothing for polling.
    fn mark(&self) -> Option<u64> {
        match self {
            Self::Tracked(cache) => Some(cache.logout_generation()),
            Self::Every(_) => None,
        }
    }

    fn is_current(&self, list: &MirrorList, now: Instant) -> bool {
        match self {
            Self::Tracked(cache) => {
                list.checked.is_some() && cache.is_fresh() && list.mark == Some(cache.logout_generation())
            }
            Self::Every(every) => list.checked.is_some_and(|t| now.duration_since(t) < *every),
        }
    }
}

/// Logout times by `sid` and `sub` with when they expire, the version they were loaded at,
/// and when that version was last checked.
#[derive(Debug, Default)]
struct MirrorList {
    sid: HashMap<String, (u64, Instant)>,
    sub: HashMap<String, (u64, Instant)>,
    version: String,
    checked: Option<Instant>,
    /// The tracking's logout generation when the copy was loaded.
    mark: Option<u64>,
}

impl MirrorList {
    /// Adds a logout, keeping the later time. Entries are only ever added or expire, so a
    /// union of what was seen is always current up to what was not seen yet.
    fn add(&mut self, key: &LogoutKey, at: u64, expires: Instant) {
        let (map, name) = match key {
            LogoutKey::Sid(s) => (&mut self.sid, s),
            LogoutKey::Sub(s) => (&mut self.sub, s),
        };
        let now = Instant::now();
        match map.get_mut(name) {
            Some(e) if e.1 > now && e.0 > at => {}
            Some(e) => *e = (at, expires),
            None => {
                map.insert(name.clone(), (at, expires));
            }
        }
    }

    fn latest(&self, key: &LogoutKey, now: Instant) -> Option<u64> {
        let e = match key {
            LogoutKey::Sid(s) => self.sid.get(s),
            LogoutKey::Sub(s) => self.sub.get(s),
        };
        e.filter(|(_, exp)| *exp > now).map(|(at, _)| *at)
    }

    fn latest_of(&self, sid: &str, sub: Option<&str>, now: Instant) -> Option<u64> {
        let live = |e: Option<&(u64, Instant)>| e.filter(|(_, exp)| *exp > now).map(|(at, _)| *at);
        live(self.sid.get(sid)).max(sub.and_then(|s| live(self.sub.get(s))))
    }
}

impl fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBackend")
            .field("server", &self.server)
            .field("key_prefix", &self.prefix)
            .field("command_timeout", &self.command_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisBackend {
    /// Connects to `url` with the default options.
    ///
    /// # Errors
    ///
    /// As [`RedisBackendBuilder::connect`].
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// Connects to the server named by `REDIS_URL` (default [`DEFAULT_URL`]) with the default
    /// options.
    ///
    /// # Errors
    ///
    /// As [`RedisBackendBuilder::connect`].
    pub async fn from_env() -> Result<Self, StoreError> {
        RedisBackendBuilder::from_env().connect().await
    }

    /// Options for the server at `url`; finish with [`RedisBackendBuilder::connect`].
    pub fn builder(url: impl Into<String>) -> RedisBackendBuilder {
        RedisBackendBuilder::new(url)
    }

    /// The prefix of every key.
    #[must_use]
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// The bound on each operation.
    #[must_use]
    pub fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    /// Checks the server with `PING` (for health checks).
    ///
    /// # Errors
    ///
    /// A [`StoreError`] when Redis does not answer within the command timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        self.run("ping", async move {
            redis::cmd("PING").query_async::<()>(&mut conn).await
        })
        .await
    }

    /// After this backend wrote or deleted the record `id` (or tried to: a timed-out write may
    /// still land), its cached copy goes, so this instance reads its own writes.
    fn evict(&self, id: &str) {
        if let Some(cache) = &self.cache {
            cache.evict(&self.session_key(id));
        }
    }

    /// Runs one operation under the command timeout, mapping failures to [`StoreError`].
    async fn run<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.command_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            // The client's own response timeout (set to the same bound) may fire first.
            Ok(Err(e)) if e.is_timeout() => Err(StoreError::with_source(
                format!(
                    "Redis {op} on {}: no answer within {} ms",
                    self.server,
                    self.command_timeout.as_millis()
                ),
                e,
            )),
            Ok(Err(e)) => Err(StoreError::with_source(
                format!("Redis {op} on {} failed", self.server),
                e,
            )),
            Err(elapsed) => Err(StoreError::with_source(
                format!(
                    "Redis {op} on {}: no answer within {} ms",
                    self.server,
                    self.command_timeout.as_millis()
                ),
                elapsed,
            )),
        }
    }

    fn session_key(&self, id: &str) -> String {
        session_key(&self.prefix, id)
    }

    /// Cluster mode: [`set`](SessionBackend::set) (`update` false) or
    /// [`update`](SessionBackend::update) / [`update_fenced`](SessionBackend::update_fenced)
    /// in steps, each in one slot: add the id to both indexes (extending them to the TTL),
    /// then write the record (checking the lease when fenced), then, for a new record or one
    /// moved to other keys, add the id to both indexes again. Returns whether the record was
    /// written.
    ///
    /// Why no session escapes a back-channel logout ([`delete_by`](SessionBackend::delete_by),
    /// see [`cluster_delete_by`](Self::cluster_delete_by)): a record is only ever written
    /// after its id is in both indexes, so a `delete_by` that lists the index after the write
    /// finds it and deletes it. The one race is a login whose id `delete_by` lists before the
    /// record exists: `delete_by` finds no record, so it takes the id out of the index (it
    /// may be a leftover) and only then looks at the record again; the login writes its
    /// record and only then adds the id to the index again. Each side writes, then acts on
    /// what the other wrote, so either `delete_by` finds the record on its second look and
    /// deletes it, or the record was written after `delete_by`'s last look (the login
    /// completed after the logout, as if it came later, exactly as with one server's atomic
    /// scripts) and is indexed again for any later logout. Stale members (an id moved to other
    /// keys, or whose record expired) are tolerated: every delete checks that the record is
    /// still indexed under the key.
    async fn cluster_write(
        &self,
        id: &str,
        value: &[u8],
        keys: &SessionKeys,
        ttl: Duration,
        update: bool,
        fence: Option<(&str, u64)>,
    ) -> Result<bool, StoreError> {
        let ms = ttl_ms(ttl);
        let sid_index = self.index_key(&LogoutKey::Sid(keys.sid.clone()));
        let sub_index = self.index_key(&LogoutKey::Sub(keys.sub.clone()));
        let (a, b) = tokio::join!(
            self.index_add(sid_index.clone(), id, ms),
            self.index_add(sub_index.clone(), id, ms)
        );
        a?;
        b?;
        let mut conn = self.conn.clone();
        let mut call = CLUSTER_WRITE_SCRIPT.prepare_invoke();
        call.key(self.session_key(id));
        if let Some((lease_key, _)) = fence {
            call.key(self.lease_key(id, lease_key));
        }
        call.arg(value)
            .arg(ms)
            .arg(&keys.sid)
            .arg(&keys.sub)
            .arg(if update { "update" } else { "set" });
        if let Some((_, token)) = fence {
            call.arg(token.to_string());
        }
        let op = match (update, fence) {
            (false, _) => "set",
            (true, None) => "update",
            (true, Some(_)) => "update_fenced",
        };
        let written = self
            .run(op, async move { call.invoke_async::<i64>(&mut conn).await })
            .await;
        self.evict(id);
        match written? {
            0 => Ok(false),
            1 => Ok(true),
            _ => {
                // A `delete_by` that found no record may have taken the id out meanwhile.
                let (a, b) = tokio::join!(
                    self.index_add(sid_index, id, ms),
                    self.index_add(sub_index, id, ms)
                );
                a?;
                b?;
                Ok(true)
            }
        }
    }

    /// Cluster mode: adds `id` to `index`, extending it to at least `ttl_ms`.
    async fn index_add(&self, index: String, id: &str, ttl_ms: u64) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let mut call = INDEX_ADD_SCRIPT.prepare_invoke();
        call.key(index).arg(id).arg(ttl_ms);
        self.run(
            "index add",
            async move { call.invoke_async::<()>(&mut conn).await },
        )
        .await
    }

    /// Takes `ids` out of `index`. A failure only leaves stale members, which every delete
    /// tolerates, so it is logged, not returned.
    async fn index_remove(&self, index: String, ids: &[&str]) {
        if ids.is_empty() {
            return;
        }
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SREM");
        cmd.arg(index).arg(ids);
        if let Err(e) = self
            .run(
                "index remove",
                async move { cmd.query_async::<()>(&mut conn).await },
            )
            .await
        {
            tracing::debug!(error = %e, "leaving stale index members");
        }
    }

    /// Cluster mode: [`delete`](SessionBackend::delete): the record, then its index entries.
    async fn cluster_delete(&self, id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let mut call = CLUSTER_DELETE_SCRIPT.prepare_invoke();
        call.key(self.session_key(id));
        let old = self
            .run("delete", async move {
                call.invoke_async::<Vec<String>>(&mut conn).await
            })
            .await;
        self.evict(id);
        if let [sid, sub] = old?.as_slice() {
            let ids = [id];
            tokio::join!(
                self.index_remove(self.index_key(&LogoutKey::Sid(sid.clone())), &ids),
                self.index_remove(self.index_key(&LogoutKey::Sub(sub.clone())), &ids)
            );
        }
        Ok(())
    }

    /// Cluster mode: deletes the record `id` if it is still indexed under `field` = `value`:
    /// `Some(Some(other key's value))` when deleted, `Some(None)` when indexed elsewhere,
    /// `None` when there is no record.
    async fn delete_if_indexed(
        &self,
        id: &str,
        field: &str,
        value: &str,
    ) -> Result<Option<Option<String>>, StoreError> {
        let mut conn = self.conn.clone();
        let mut call = CLUSTER_DELETE_IF_SCRIPT.prepare_invoke();
        call.key(self.session_key(id)).arg(field).arg(value);
        let out = self
            .run("delete_by", async move {
                call.invoke_async::<Vec<String>>(&mut conn).await
            })
            .await;
        self.evict(id);
        let out = out?;
        Ok(match out.first().map(String::as_str) {
            Some("deleted") => Some(Some(out.get(1).cloned().unwrap_or_default())),
            Some("other") => Some(None),
            _ => None,
        })
    }

    /// Cluster mode: [`delete_by`](SessionBackend::delete_by) in steps: list the index, then
    /// for each id delete its record if it is still indexed under the key (one script in the
    /// record's slot), then take the deleted ids out of the index and out of their other
    /// index. An id without a record may belong to a login in progress (see
    /// [`cluster_write`](Self::cluster_write)): it is taken out of the index first, and its
    /// record looked at once more.
    async fn cluster_delete_by(&self, key: &LogoutKey) -> Result<usize, StoreError> {
        let (field, value, other) = match key {
            LogoutKey::Sid(sid) => ("sid", sid, LogoutKey::Sub as fn(String) -> LogoutKey),
            LogoutKey::Sub(sub) => ("sub", sub, LogoutKey::Sid as fn(String) -> LogoutKey),
        };
        let index = self.index_key(key);
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(&index);
        let ids = self
            .run("delete_by", async move {
                cmd.query_async::<Vec<String>>(&mut conn).await
            })
            .await?;
        let mut deleted: Vec<(&str, String)> = Vec::new();
        for id in &ids {
            match self.delete_if_indexed(id, field, value).await? {
                Some(Some(other_value)) => deleted.push((id, other_value)),
                Some(None) => {}
                None => {
                    self.index_remove(index.clone(), &[id]).await;
                    if let Some(Some(other_value)) = self.delete_if_indexed(id, field, value).await? {
                        deleted.push((id, other_value));
                    }
                }
            }
        }
        let gone: Vec<&str> = deleted.iter().map(|(id, _)| *id).collect();
        self.index_remove(index, &gone).await;
        let mut by_other: HashMap<&str, Vec<&str>> = HashMap::new();
        for (id, other_value) in &deleted {
            by_other.entry(other_value.as_str()).or_default().push(id);
        }
        for (other_value, ids) in by_other {
            self.index_remove(self.index_key(&other(other_value.to_owned())), &ids)
                .await;
        }
        Ok(deleted.len())
    }

    /// Writes the record `id`: [`set`](SessionBackend::set) when `update` is false, otherwise
    /// [`update`](SessionBackend::update), or [`update_fenced`](SessionBackend::update_fenced)
    /// with `fence` (lease key and token). Cluster mode goes in steps
    /// ([`cluster_write`](Self::cluster_write)); otherwise one script (`SET_SCRIPT`,
    /// `UPDATE_SCRIPT`, `UPDATE_FENCED_SCRIPT`), each taking the record and its two index keys,
    /// then the value, TTL, id, sid, sub and key prefix (the fenced one also the lease and the
    /// token). The record's cached copy goes either way. Whether it was written (a `set`
    /// always is).
    async fn write_record(
        &self,
        id: &str,
        value: &[u8],
        keys: &SessionKeys,
        ttl: Duration,
        update: bool,
        fence: Option<(&str, u64)>,
    ) -> Result<bool, StoreError> {
        if self.cluster {
            return self.cluster_write(id, value, keys, ttl, update, fence).await;
        }
        let (op, script) = match (update, fence) {
            (false, _) => ("set", &*SET_SCRIPT),
            (true, None) => ("update", &*UPDATE_SCRIPT),
            (true, Some(_)) => ("update_fenced", &*UPDATE_FENCED_SCRIPT),
        };
        let mut call = script.prepare_invoke();
        call.key(self.session_key(id))
            .key(self.index_key(&LogoutKey::Sid(keys.sid.clone())))
            .key(self.index_key(&LogoutKey::Sub(keys.sub.clone())))
            .arg(value)
            .arg(ttl_ms(ttl))
            .arg(id)
            .arg(&keys.sid)
            .arg(&keys.sub)
            .arg(&self.prefix);
        if let Some((lease_key, token)) = fence {
            call.key(self.lease_key(id, lease_key)).arg(token.to_string());
        }
        let mut conn = self.conn.clone();
        let answer = self
            .run(
                op,
                async move { call.invoke_async::<redis::Value>(&mut conn).await },
            )
            .await;
        self.evict(id);
        let answer = answer?;
        Ok(!update || matches!(answer, redis::Value::Int(1)))
    }

    fn lease_key(&self, id: &str, key: &str) -> String {
        lease_key(&self.prefix, id, key)
    }

    fn lease_seq_key(&self, id: &str) -> String {
        lease_seq_key(&self.prefix, id)
    }

    fn index_key(&self, key: &LogoutKey) -> String {
        match key {
            LogoutKey::Sid(sid) => format!("{}sid:{sid}", self.prefix),
            LogoutKey::Sub(sub) => format!("{}sub:{sub}", self.prefix),
        }
    }

    fn logout_key(&self, key: &LogoutKey) -> String {
        format!("{}{}", logout_base(&self.prefix), logout_member(key))
    }

    /// Brings the logout-list copy up to date when it was last checked more than its refresh
    /// interval ago: one script that returns the list only when its version changed.
    async fn refresh_mirror(&self, mirror: &Mirror) -> Result<(), StoreError> {
        let known = {
            let list = mirror.list.read().unwrap_or_else(PoisonError::into_inner);
            if mirror.refresh.is_current(&list, Instant::now()) {
                return Ok(());
            }
            list.version.clone()
        };
        // Taken before asking: a change that lands during the reload marks the copy stale again.
        let mark = mirror.refresh.mark();
        let mut conn = self.conn.clone();
        let mut call = LOAD_LOGOUTS_SCRIPT.prepare_invoke();
        call.key(logout_version_key(&self.prefix))
            .key(logout_index_key(&self.prefix))
            .arg(epoch_ms())
            .arg(logout_base(&self.prefix))
            .arg(&known);
        let started = Instant::now();
        let out = self
            .run("logout list reload", async move {
                call.invoke_async::<Vec<String>>(&mut conn).await
            })
            .await?;
        let mut list = mirror.list.write().unwrap_or_else(PoisonError::into_inner);
        let mut it = out.into_iter();
        let version = it.next().unwrap_or_default();
        let rest: Vec<String> = it.collect();
        for entry in rest.chunks_exact(3) {
            let key = match entry[0].split_once(':') {
                Some(("sid", v)) => LogoutKey::Sid(v.to_owned()),
                Some(("sub", v)) => LogoutKey::Sub(v.to_owned()),
                _ => continue,
            };
            let (Ok(at), Ok(left)) = (entry[1].parse::<u64>(), entry[2].parse::<u64>()) else {
                continue;
            };
            list.add(&key, at, started + Duration::from_millis(left));
        }
        if version != list.version {
            let now = Instant::now();
            list.sid.retain(|_, (_, exp)| *exp > now);
            list.sub.retain(|_, (_, exp)| *exp > now);
        }
        list.version = version;
        list.checked = Some(started);
        list.mark = mark;
        Ok(())
    }
}

/// The key of the session record `id`: `{prefix}s:{<id>}`, the id a Redis Cluster hash tag, so
/// that the record, its refresh leases and their counter share one slot.
fn session_key(prefix: &str, id: &str) -> String {
    format!("{prefix}s:{{{id}}}")
}

/// The refresh lease `key` of the session `id`: in the record's slot (same hash tag).
fn lease_key(prefix: &str, id: &str, key: &str) -> String {
    format!("{prefix}lease:{{{id}}}:{key}")
}

/// The fencing-token counter of the session `id`'s leases, in the record's slot.
fn lease_seq_key(prefix: &str, id: &str) -> String {
    format!("{prefix}lease-seq:{{{id}}}")
}

/// The start of every session record's key ([`session_key`]).
fn session_key_prefix(prefix: &str) -> String {
    format!("{prefix}s:{{")
}

/// The start of every key of the logout list: `{prefix}{<prefix>lo}:`, one hash tag for the
/// whole list, so that its scripts stay in one Redis Cluster slot.
fn logout_base(prefix: &str) -> String {
    format!("{prefix}{{{prefix}lo}}:")
}

/// The key stamped with a new value on every recorded logout.
fn logout_version_key(prefix: &str) -> String {
    format!("{}ver", logout_base(prefix))
}

/// The sorted set listing the logout list's keys by expiry.
fn logout_index_key(prefix: &str) -> String {
    format!("{}all", logout_base(prefix))
}

/// The member naming `key` in the logout index, and the tail of its logout key.
fn logout_member(key: &LogoutKey) -> String {
    match key {
        LogoutKey::Sid(sid) => format!("sid:{sid}"),
        LogoutKey::Sub(sub) => format!("sub:{sub}"),
    }
}

/// A value no other call (of any process, with overwhelming probability) returns.
fn unique() -> u64 {
    use std::hash::BuildHasher as _;
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    std::hash::RandomState::new().hash_one((n, std::process::id()))
}

/// Milliseconds since the Unix epoch.
fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[async_trait]
impl SessionBackend for RedisBackend {
    async fn get(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = self.session_key(id);
        let ticket = match &self.cache {
            Some(cache) => match cache.get(&key) {
                Some(value) => return Ok(Some(value)),
                None => Some(cache.ticket()),
            },
            None => None,
        };
        let mut conn = self.conn.clone();
        let Some(ticket) = ticket else {
            return self
                .run("get", async {
                    redis::cmd("HGET")
                        .arg(&key)
                        .arg("v")
                        .query_async::<Option<Vec<u8>>>(&mut conn)
                        .await
                })
                .await;
        };
        // For the cache, with the record's time left: Redis pushes an invalidation on expiry
        // only once it deletes the key, which may be later.
        let (value, left) = self
            .run("get", async {
                redis::pipe()
                    .atomic()
                    .cmd("HGET")
                    .arg(&key)
                    .arg("v")
                    .cmd("PTTL")
                    .arg(&key)
                    .query_async::<(Option<Vec<u8>>, i64)>(&mut conn)
                    .await
            })
            .await?;
        if let (Some(cache), Some(value), Ok(left)) = (&self.cache, &value, u64::try_from(left)) {
            cache.fill(&key, value, Duration::from_millis(left), ticket);
        }
        Ok(value)
    }

    async fn set(&self, id: &str, value: &[u8], keys: &SessionKeys, ttl: Duration) -> Result<(), StoreError> {
        self.write_record(id, value, keys, ttl, false, None)
            .await
            .map(|_| ())
    }

    async fn update(
        &self,
        id: &str,
        value: &[u8],
        keys: &SessionKeys,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        self.write_record(id, value, keys, ttl, true, None).await
    }

    async fn acquire_refresh_lease(
        &self,
        session_id: &str,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        let mut conn = self.conn.clone();
        let mut call = ACQUIRE_LEASE_SCRIPT.prepare_invoke();
        call.key(self.lease_key(session_id, key))
            .key(self.lease_seq_key(session_id))
            .key(self.session_key(session_id))
            .arg(ttl_ms(ttl))
            .arg(epoch_ms().saturating_mul(1000));
        self.run("acquire_refresh_lease", async move {
            call.invoke_async::<Option<u64>>(&mut conn).await
        })
        .await
    }

    async fn release_refresh_lease(&self, session_id: &str, key: &str, token: u64) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let mut call = RELEASE_LEASE_SCRIPT.prepare_invoke();
        call.key(self.lease_key(session_id, key)).arg(token.to_string());
        self.run("release_refresh_lease", async move {
            call.invoke_async::<()>(&mut conn).await
        })
        .await
    }

    async fn update_fenced(
        &self,
        id: &str,
        value: &[u8],
        keys: &SessionKeys,
        ttl: Duration,
        lease_key: &str,
        token: u64,
    ) -> Result<bool, StoreError> {
        self.write_record(id, value, keys, ttl, true, Some((lease_key, token)))
            .await
    }

    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        if self.cluster {
            return self.cluster_delete(id).await;
        }
        let mut conn = self.conn.clone();
        let mut call = DELETE_SCRIPT.prepare_invoke();
        call.key(self.session_key(id)).arg(id).arg(&self.prefix);
        let done = self
            .run("delete", async move { call.invoke_async::<()>(&mut conn).await })
            .await;
        self.evict(id);
        done
    }

    async fn delete_by(&self, key: &LogoutKey) -> Result<usize, StoreError> {
        if self.cluster {
            // (No local cache in cluster mode.)
            return self.cluster_delete_by(key).await;
        }
        let mut conn = self.conn.clone();
        let (field, value) = match key {
            LogoutKey::Sid(sid) => ("sid", sid),
            LogoutKey::Sub(sub) => ("sub", sub),
        };
        let mut call = DELETE_BY_SCRIPT.prepare_invoke();
        call.key(self.index_key(key))
            .arg(&self.prefix)
            .arg(field)
            .arg(value);
        let deleted = self
            .run(
                "delete_by",
                async move { call.invoke_async::<usize>(&mut conn).await },
            )
            .await;
        if let Some(cache) = &self.cache {
            cache.flush();
        }
        deleted
    }

    async fn record_logout(&self, key: &LogoutKey, at: u64, ttl: Duration) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let ms = ttl_ms(ttl);
        let now = epoch_ms();
        let version = format!("{now}-{:016x}", unique());
        let mut call = RECORD_LOGOUT_SCRIPT.prepare_invoke();
        call.key(self.logout_key(key))
            .key(logout_version_key(&self.prefix))
            .key(logout_index_key(&self.prefix))
            .arg(at.to_string())
            .arg(ms)
            .arg(logout_member(key))
            .arg(now.saturating_add(ms))
            .arg(now)
            .arg(version);
        let started = Instant::now();
        self.run("record_logout", async move {
            call.invoke_async::<()>(&mut conn).await
        })
        .await?;
        if let Some(mirror) = &self.mirror {
            mirror.list.write().unwrap_or_else(PoisonError::into_inner).add(
                key,
                at,
                started + Duration::from_millis(ms),
            );
        }
        Ok(())
    }

    fn logout_time_at_hand(&self, sid: &str, sub: Option<&str>) -> Option<Option<u64>> {
        let mirror = self.mirror.as_ref()?;
        let list = mirror.list.read().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        mirror
            .refresh
            .is_current(&list, now)
            .then(|| list.latest_of(sid, sub, now))
    }

    async fn logout_time(&self, keys: &[LogoutKey]) -> Result<Option<u64>, StoreError> {
        if keys.is_empty() {
            return Ok(None);
        }
        if let Some(mirror) = &self.mirror {
            self.refresh_mirror(mirror).await?;
            let list = mirror.list.read().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            return Ok(keys.iter().filter_map(|k| list.latest(k, now)).max());
        }
        let mut conn = self.conn.clone();
        let names: Vec<String> = keys.iter().map(|k| self.logout_key(k)).collect();
        let values = self
            .run("logout_time", async move {
                redis::cmd("MGET")
                    .arg(&names)
                    .query_async::<Vec<Option<String>>>(&mut conn)
                    .await
            })
            .await?;
        let mut latest = None;
        for value in values.into_iter().flatten() {
            let at = value.parse::<u64>().map_err(|e| {
                StoreError::with_source(
                    format!("Redis logout_time on {}: unreadable logout time", self.server),
                    e,
                )
            })?;
            latest = latest.max(Some(at));
        }
        Ok(latest)
    }

    async fn remember_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let name = format!("{}once:{key}", self.prefix);
        let ttl = ttl_ms(ttl);
        let stored = self
            .run("remember_once", async move {
                redis::cmd("SET")
                    .arg(&name)
                    .arg("1")
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl)
                    .query_async::<Option<String>>(&mut conn)
                    .await
            })
            .await?;
        Ok(stored.is_some())
    }

    async fn forget_once(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let name = format!("{}once:{key}", self.prefix);
        self.run("forget_once", async move {
            redis::cmd("DEL").arg(&name).query_async::<()>(&mut conn).await
        })
        .await
    }
}

/// A TTL in whole milliseconds, rounded up, within `1..=MAX_TTL_MS`.
fn ttl_ms(ttl: Duration) -> u64 {
    let ms = ttl.as_nanos().div_ceil(1_000_000);
    u64::try_from(ms).unwrap_or(MAX_TTL_MS).clamp(1, MAX_TTL_MS)
}

/// The start of a certificate in PEM.
const PEM_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// What to check when connecting to the client's server fails: TLS trust for `rediss://`, the
/// scheme for a plain TCP URL (a TLS-only port does not answer plain Redis).
fn connect_hint(client: &Client) -> &'static str {
    match client.get_connection_info().addr() {
        ConnectionAddr::TcpTls { .. } => {
            "; check that the server speaks TLS on that port and that its certificate names the \
             URL's host and chains to a trusted CA (the system's roots, SSL_CERT_FILE, or \
             RedisBackendBuilder::tls_root_certificates)"
        }
        ConnectionAddr::Tcp(..) => "; if the server only accepts TLS, use a rediss:// URL",
        _ => "",
    }
}

/// The server a client talks to, without credentials: `host:port/db`.
fn describe(client: &Client) -> String {
    let info = client.get_connection_info();
    let db = info.redis_settings().db();
    match info.addr() {
        ConnectionAddr::Tcp(host, port) => format!("{host}:{port}/{db}"),
        ConnectionAddr::TcpTls { host, port, .. } => format!("tls {host}:{port}/{db}"),
        ConnectionAddr::Unix(path) => format!("unix {}/{db}", path.display()),
        _ => format!("{}/{db}", info.addr()),
    }
}

/// [`describe`] for a URL, or a placeholder when it does not parse (never the URL itself,
/// which may hold a password).
fn describe_url(url: &str) -> String {
    Client::open(url).map_or_else(|_| "[unparsable url]".to_owned(), |c| describe(&c))
}

/// The seed nodes of a cluster, without credentials: `cluster a:1/0, b:2/0`.
fn describe_cluster(nodes: &[String]) -> String {
    let shown: Vec<String> = nodes.iter().map(|n| describe_url(n)).collect();
    format!("cluster {}", shown.join(", "))
}

/// The connection: to one server through a [`ConnectionManager`], or to a Redis Cluster
/// (one multiplexed connection per node, reconnected and re-routed by the cluster client).
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    #[cfg(feature = "cluster")]
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            #[cfg(feature = "cluster")]
            Self::Cluster(c) => c.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_is_rounded_up_and_bounded() {
        assert_eq!(ttl_ms(Duration::ZERO), 1);
        assert_eq!(ttl_ms(Duration::from_micros(1)), 1);
        assert_eq!(ttl_ms(Duration::from_micros(1500)), 2);
        assert_eq!(ttl_ms(Duration::from_secs(2)), 2000);
        assert_eq!(ttl_ms(Duration::MAX), MAX_TTL_MS);
    }

    #[test]
    fn describe_hides_credentials() {
        let client = Client::open("redis://user:hunter2@redis.example:6380/3").unwrap();
        assert_eq!(describe(&client), "redis.example:6380/3");
        let builder = RedisBackendBuilder::new("redis://:hunter2@redis.example/1");
        let shown = format!("{builder:?}");
        assert!(shown.contains("redis.example:6379/1"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let shown = format!("{:?}", RedisBackendBuilder::new("not a url :hunter2@"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    /// Redis Cluster's hash tag of `key`: the part between the first `{` and the next `}`
    /// when not empty, else the whole key.
    fn hash_tag(key: &str) -> &str {
        key.find('{')
            .and_then(|open| {
                let rest = &key[open + 1..];
                rest.find('}')
                    .filter(|&close| close > 0)
                    .map(|close| &rest[..close])
            })
            .unwrap_or(key)
    }

    #[test]
    fn a_sessions_keys_and_the_logout_list_each_share_a_hash_tag() {
        for prefix in ["auth:", "", "t:0123:"] {
            let backend_keys = [
                session_key(prefix, "Zx_9-id"),
                lease_key(prefix, "Zx_9-id", "k"),
                lease_seq_key(prefix, "Zx_9-id"),
            ];
            for key in &backend_keys {
                assert_eq!(hash_tag(key), "Zx_9-id", "{key}");
            }
            let lo = [
                logout_version_key(prefix),
                logout_index_key(prefix),
                format!("{}sid:x", logout_base(prefix)),
            ];
            for key in &lo {
                assert_eq!(hash_tag(key), format!("{prefix}lo"), "{key}");
            }
            // Every record key starts with the tracking prefix, which the logout version key
            // does not (BCAST prefixes must not overlap).
            assert!(session_key(prefix, "id").starts_with(&session_key_prefix(prefix)));
            assert!(!logout_version_key(prefix).starts_with(&session_key_prefix(prefix)));
            assert!(!session_key_prefix(prefix).starts_with(&logout_version_key(prefix)));
        }
    }

    #[test]
    #[cfg(feature = "cluster")]
    fn cluster_builder_debug_hides_credentials() {
        let shown = format!(
            "{:?}",
            RedisBackendBuilder::cluster([
                "redis://:hunter2@a.example:7000".to_owned(),
                "nonsense:hunter2@".to_owned()
            ])
        );
        assert!(
            shown.contains("cluster a.example:7000/0, [unparsable url]"),
            "{shown}"
        );
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn builder_defaults() {
        let b = RedisBackendBuilder::new(DEFAULT_URL);
        assert_eq!(b.key_prefix, "auth:");
        assert_eq!(b.command_timeout, Duration::from_secs(2));
        let b = b.command_timeout(Duration::ZERO).key_prefix("x:");
        assert_eq!(b.command_timeout, Duration::from_millis(1));
        assert_eq!(b.key_prefix, "x:");
    }
}
