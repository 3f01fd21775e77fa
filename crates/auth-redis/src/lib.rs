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
//!
//! Every operation is bounded by the command timeout (default
//! [`DEFAULT_COMMAND_TIMEOUT`], 2 s): an unreachable, dead or hung Redis yields a
//! [`StoreError`] within that time, never a hang or a panic. [`RedisBackend::connect`] is
//! eager: it connects and sends `PING`, bounded by the connect timeout (default
//! [`DEFAULT_CONNECT_TIMEOUT`], 5 s), so a wrong URL fails at start-up.
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
//! # Data layout
//!
//! All keys start with the key prefix `{p}` (default [`DEFAULT_KEY_PREFIX`], `auth:`):
//!
//! | key | type | holds | expiry |
//! |---|---|---|---|
//! | `{p}s:{id}` | hash | `v`: the (sealed) session bytes; `sid`, `sub`: the keys it is indexed under | the session's TTL (`PEXPIRE`) |
//! | `{p}sid:{sid}` | set | ids of the sessions with that provider session id | extended to at least the TTL of each session added, never shortened |
//! | `{p}sub:{sub}` | set | ids of the sessions of that user | as above |
//! | `{p}lo:sid:{sid}` | string | latest logout time (seconds since the epoch, decimal) | the TTL given when the latest time was recorded |
//! | `{p}lo:sub:{sub}` | string | as above, for a user | as above |
//! | `{p}once:{key}` | string | `1` | the TTL given (`SET NX PX`) |
//! | `{p}lease:{key}` | string | the fencing token of the refresh lease's holder (decimal) | the lease's TTL |
//! | `{p}lease:seq` | string | the last fencing token handed out (`INCR`) | none |
//! | `{p}lo:all` | sorted set | members `sid:{sid}` / `sub:{sub}` of the logout list, scored by when each expires (epoch ms); expired members are trimmed on each record | extended to at least each logout's TTL |
//! | `{p}lo:ver` | string | a new unique value on every recorded logout (for in-process copies of the logout list to notice changes) | as above |
//!
//! A session hash records its own `sid` and `sub` so that writing an existing id under other
//! keys moves it between indexes, and so that an index member whose session has expired or
//! moved is recognised as stale: such members are tolerated, and dropped when the index is
//! used by [`delete_by`](SessionBackend::delete_by).
//!
//! # Atomicity
//!
//! Each write is one Lua script, which Redis runs atomically (no other command interleaves),
//! so concurrent calls from many instances are safe and a lost connection never leaves a
//! half-applied write:
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
//!   fencing token from `INCR` on `lease:seq` (so tokens only grow, and a refused attempt uses
//!   none); `release_refresh_lease` deletes it only while it holds the caller's token
//!   (compare-and-delete); `update_fenced` is `update` preceded, in the same script, by the
//!   check that the lease still holds the caller's token, so a holder whose lease expired
//!   never overwrites the token set of the one that took over.
//!
//! Because the scripts derive index keys from stored data, this backend targets a standalone
//! Redis (or a primary behind Sentinel / a managed failover endpoint), not Redis Cluster.
//! Works with Redis 6.2 and later (and compatible servers such as Valkey).
//!
//! TTLs are stored in milliseconds, rounded up, at least 1 ms.
#![deny(missing_docs)]
#![warn(clippy::unwrap_used, clippy::expect_used)]

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

/// The environment variable [`RedisBackend::from_env`] reads.
pub const REDIS_URL_ENV: &str = "REDIS_URL";
/// The URL used when `REDIS_URL` is unset or empty.
pub const DEFAULT_URL: &str = "redis://127.0.0.1:6379";
/// The default prefix of every key.
pub const DEFAULT_KEY_PREFIX: &str = "auth:";
/// The default bound on each operation.
pub const DEFAULT_COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// The default bound on [`RedisBackendBuilder::connect`] (connecting, then `PING`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Takes a refresh lease when free, with a fencing token from the lease counter. KEYS: lease,
/// counter. ARGV: ttl ms. Returns the token, or nil while the lease is held.
static ACQUIRE_LEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
local t = redis.call('INCR', KEYS[2])
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
  local k = p .. 's:' .. id
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
/// now (epoch ms), prefix, known version (empty for none). Returns the version, then
/// (member, time, remaining ms) for each live entry, or the version alone when unchanged.
static LOAD_LOGOUTS_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local ver = redis.call('GET', KEYS[1]) or ''
if ver == ARGV[3] then return {ver} end
local out = {ver}
local members = redis.call('ZRANGEBYSCORE', KEYS[2], ARGV[1], '+inf')
for _, m in ipairs(members) do
  local k = ARGV[2] .. 'lo:' .. m
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
}

impl fmt::Debug for RedisBackendBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let server =
            Client::open(self.url.as_str()).map_or_else(|_| "[unparsable url]".to_owned(), |c| describe(&c));
        f.debug_struct("RedisBackendBuilder")
            .field("server", &server)
            .field("key_prefix", &self.key_prefix)
            .field("command_timeout", &self.command_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("logout_list_refresh", &self.logout_list_refresh)
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
        }
    }

    /// Options for the server named by `REDIS_URL` (default [`DEFAULT_URL`]).
    pub fn from_env() -> Self {
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

    /// Keep an in-process copy of the logout list, so that the per-request logout-list check
    /// of cookie sessions is a memory lookup instead of a Redis round trip (off by default).
    ///
    /// This instance's own logouts apply at once. Logouts recorded by other instances sharing
    /// the prefix are picked up within `refresh`: at most once per `refresh` a read checks the
    /// list's version in Redis and reloads the list when it changed. So with several
    /// instances, a cookie logged out on one may still open on another for up to `refresh`;
    /// leave this off where that matters (every check then asks Redis).
    pub fn logout_list_refresh(mut self, refresh: Duration) -> Self {
        self.logout_list_refresh = Some(refresh);
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
    pub async fn connect(self) -> Result<RedisBackend, StoreError> {
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
            let mut conn = ConnectionManager::new_with_config(client, config).await?;
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
        Ok(RedisBackend {
            conn,
            prefix: self.key_prefix,
            command_timeout: self.command_timeout,
            server,
            mirror: self.logout_list_refresh.map(|refresh| {
                Arc::new(Mirror {
                    refresh,
                    list: RwLock::default(),
                })
            }),
        })
    }
}

/// A [`SessionBackend`] on Redis. Cheap to clone; clones share the connection.
///
/// See the [crate documentation](crate) for the data layout, atomicity and failure behaviour.
#[derive(Clone)]
pub struct RedisBackend {
    conn: ConnectionManager,
    prefix: String,
    command_timeout: Duration,
    /// `host:port/db`, without credentials.
    server: String,
    /// The in-process copy of the logout list, when enabled.
    mirror: Option<Arc<Mirror>>,
}

/// An in-process copy of the logout list ([`RedisBackendBuilder::logout_list_refresh`]).
#[derive(Debug)]
struct Mirror {
    refresh: Duration,
    list: RwLock<MirrorList>,
}

/// Logout times by `sid` and `sub` with when they expire, the version they were loaded at,
/// and when that version was last checked.
#[derive(Debug, Default)]
struct MirrorList {
    sid: HashMap<String, (u64, Instant)>,
    sub: HashMap<String, (u64, Instant)>,
    version: String,
    checked: Option<Instant>,
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

    fn is_current(&self, refresh: Duration, now: Instant) -> bool {
        self.checked.is_some_and(|t| now.duration_since(t) < refresh)
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
        format!("{}s:{id}", self.prefix)
    }

    /// The invocation of a record-writing script (`SET_SCRIPT`, `UPDATE_SCRIPT`): both take the
    /// record and its two index keys, then the value, TTL, id, sid, sub and key prefix.
    fn record_write<'a>(
        &self,
        script: &'a redis::Script,
        id: &str,
        value: &[u8],
        keys: &SessionKeys,
        ttl: Duration,
    ) -> redis::ScriptInvocation<'a> {
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
        call
    }

    fn lease_key(&self, key: &str) -> String {
        format!("{}lease:{key}", self.prefix)
    }

    fn index_key(&self, key: &LogoutKey) -> String {
        match key {
            LogoutKey::Sid(sid) => format!("{}sid:{sid}", self.prefix),
            LogoutKey::Sub(sub) => format!("{}sub:{sub}", self.prefix),
        }
    }

    fn logout_key(&self, key: &LogoutKey) -> String {
        format!("{}lo:{}", self.prefix, logout_member(key))
    }

    /// Brings the logout-list copy up to date when it was last checked more than its refresh
    /// interval ago: one script that returns the list only when its version changed.
    async fn refresh_mirror(&self, mirror: &Mirror) -> Result<(), StoreError> {
        let known = {
            let list = mirror.list.read().unwrap_or_else(PoisonError::into_inner);
            if list.is_current(mirror.refresh, Instant::now()) {
                return Ok(());
            }
            list.version.clone()
        };
        let mut conn = self.conn.clone();
        let mut call = LOAD_LOGOUTS_SCRIPT.prepare_invoke();
        call.key(format!("{}lo:ver", self.prefix))
            .key(format!("{}lo:all", self.prefix))
            .arg(epoch_ms())
            .arg(&self.prefix)
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
        Ok(())
    }
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
        let mut conn = self.conn.clone();
        let key = self.session_key(id);
        self.run("get", async move {
            redis::cmd("HGET")
                .arg(&key)
                .arg("v")
                .query_async::<Option<Vec<u8>>>(&mut conn)
                .await
        })
        .await
    }

    async fn set(&self, id: &str, value: &[u8], keys: &SessionKeys, ttl: Duration) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let call = self.record_write(&SET_SCRIPT, id, value, keys, ttl);
        self.run("set", async move { call.invoke_async::<()>(&mut conn).await })
            .await
    }

    async fn update(
        &self,
        id: &str,
        value: &[u8],
        keys: &SessionKeys,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn.clone();
        let call = self.record_write(&UPDATE_SCRIPT, id, value, keys, ttl);
        let written = self
            .run("update", async move { call.invoke_async::<i64>(&mut conn).await })
            .await?;
        Ok(written == 1)
    }

    async fn acquire_refresh_lease(&self, key: &str, ttl: Duration) -> Result<Option<u64>, StoreError> {
        let mut conn = self.conn.clone();
        let mut call = ACQUIRE_LEASE_SCRIPT.prepare_invoke();
        call.key(self.lease_key(key))
            .key(format!("{}lease:seq", self.prefix))
            .arg(ttl_ms(ttl));
        self.run("acquire_refresh_lease", async move {
            call.invoke_async::<Option<u64>>(&mut conn).await
        })
        .await
    }

    async fn release_refresh_lease(&self, key: &str, token: u64) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let mut call = RELEASE_LEASE_SCRIPT.prepare_invoke();
        call.key(self.lease_key(key)).arg(token.to_string());
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
        let mut conn = self.conn.clone();
        let mut call = self.record_write(&UPDATE_FENCED_SCRIPT, id, value, keys, ttl);
        call.key(self.lease_key(lease_key)).arg(token.to_string());
        let written = self
            .run("update_fenced", async move {
                call.invoke_async::<i64>(&mut conn).await
            })
            .await?;
        Ok(written == 1)
    }

    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let mut call = DELETE_SCRIPT.prepare_invoke();
        call.key(self.session_key(id)).arg(id).arg(&self.prefix);
        self.run("delete", async move { call.invoke_async::<()>(&mut conn).await })
            .await
    }

    async fn delete_by(&self, key: &LogoutKey) -> Result<usize, StoreError> {
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
        self.run(
            "delete_by",
            async move { call.invoke_async::<usize>(&mut conn).await },
        )
        .await
    }

    async fn record_logout(&self, key: &LogoutKey, at: u64, ttl: Duration) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let ms = ttl_ms(ttl);
        let now = epoch_ms();
        let version = format!("{now}-{:016x}", unique());
        let mut call = RECORD_LOGOUT_SCRIPT.prepare_invoke();
        call.key(self.logout_key(key))
            .key(format!("{}lo:ver", self.prefix))
            .key(format!("{}lo:all", self.prefix))
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
        list.is_current(mirror.refresh, now)
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
