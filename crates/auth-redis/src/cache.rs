//! The per-instance cache of session records, kept true by Redis.
//!
//! Server-assisted client-side caching: one extra RESP3 connection per backend runs
//! `CLIENT TRACKING ON BCAST PREFIX …` for the session records and the logout list's version
//! key, so Redis pushes an `invalidate` message to it whenever any client (any instance, or
//! `redis-cli`) changes, deletes or expires one of those keys, and `invalidate nil` on a flush.
//! The pushes are applied synchronously by the connection's reader ([`Pushes`]), in the order
//! Redis sent them.
//!
//! **Never serve what may have been revoked.** The cache answers only while it is *fresh*: a
//! heartbeat `PING`s the tracking connection every [`HEARTBEAT`], and a reply to a `PING` sent
//! at time `t` proves that every invalidation for a write Redis finished before `t` has been
//! applied (Redis queues a write's invalidations before it answers the writer, and a
//! connection's replies and pushes arrive in order). Each reply extends freshness to
//! `t + FRESHNESS`; so a write is seen by every instance's cache within [`FRESHNESS`] even when
//! the tracking connection silently stalls, and at once (the push's own latency) when it works.
//! When the connection drops or a heartbeat fails, the cache is flushed and stays off, every
//! read going to Redis, until a new connection has tracking on again.
//!
//! **No stale fill.** A read that misses takes a [`Ticket`] (the invalidation generation)
//! before asking Redis and may fill the cache only when no invalidation (of any key) and no
//! flush happened meanwhile, checked under the same lock that applies invalidations. So a
//! value read just before a concurrent write is never kept after that write's invalidation.
//! The backend's own writes evict their key (and bump the generation) when they complete, so
//! an instance reads its own writes at once.
//!
//! Absent records are not cached (an unknown id always asks Redis), an entry lives until its
//! record's expiry in Redis and at most [`MAX_AGE`], and at most `capacity` records are kept.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use redis::aio::{AsyncPushSender, MultiplexedConnection, SendError};
use redis::{AsyncConnectionConfig, Client, ProtocolVersion, PushInfo, PushKind, RedisResult, Value};

/// How often the tracking connection is checked.
pub(crate) const HEARTBEAT: Duration = Duration::from_millis(20);
/// How long after a confirmed heartbeat was sent the cache may still answer: the bound on how
/// late an instance can see another's write when invalidations stop arriving.
pub(crate) const FRESHNESS: Duration = Duration::from_millis(80);
/// The longest a record stays cached (Redis also invalidates a record when it expires).
pub(crate) const MAX_AGE: Duration = Duration::from_secs(60);
/// Wait between attempts to (re)open the tracking connection.
const RETRY: Duration = Duration::from_millis(250);
/// The tracking connection's name in `CLIENT LIST`.
pub(crate) const CLIENT_NAME: &str = "auth-redis-tracking";

/// The cache; cheap to clone (clones share it). Dropping the last clone stops its task.
#[derive(Clone)]
pub(crate) struct RecordCache {
    shared: Arc<Shared>,
}

struct Shared {
    entries: Mutex<HashMap<String, Entry>>,
    capacity: usize,
    /// Bumped (under the `entries` lock) by every invalidation, eviction and flush.
    generation: AtomicU64,
    /// Bumped by every invalidation of the logout list's version key, and by every flush.
    logout_generation: AtomicU64,
    /// Nanoseconds since `origin` until which the cache may answer; 0 while it is off.
    fresh_until: AtomicU64,
    /// Bumped each time the tracking connection is lost: a heartbeat of an older connection
    /// never makes the cache fresh again.
    connection: AtomicU64,
    origin: Instant,
    logout_version_key: String,
}

struct Entry {
    value: Vec<u8>,
    /// When the record expires in Redis, or [`MAX_AGE`] after it was read, whichever is first.
    expires: Instant,
}

/// The invalidation generation a missed read saw before asking Redis.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ticket(u64);

impl RecordCache {
    /// A cache of up to `capacity` records, tracking keys starting with `prefixes` on the
    /// server `client` names (RESP3 is used for the tracking connection whatever the URL says),
    /// with the logout list's version key `logout_version_key`. Spawns the task that keeps the
    /// tracking connection; the cache is off until it is up.
    pub(crate) fn start(
        client: &Client,
        prefixes: Vec<String>,
        logout_version_key: String,
        capacity: usize,
        timeout: Duration,
    ) -> RedisResult<Self> {
        let info = client.get_connection_info().clone();
        let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let client = Client::open(info.set_redis_settings(settings))?;
        let shared = Arc::new(Shared {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            generation: AtomicU64::new(0),
            logout_generation: AtomicU64::new(0),
            fresh_until: AtomicU64::new(0),
            connection: AtomicU64::new(0),
            origin: Instant::now(),
            logout_version_key,
        });
        tokio::spawn(maintain(Arc::downgrade(&shared), client, prefixes, timeout));
        Ok(Self { shared })
    }

    /// Whether the cache may answer now.
    pub(crate) fn is_fresh(&self) -> bool {
        self.shared.is_fresh()
    }

    /// The cached record under `key`, while fresh.
    pub(crate) fn get(&self, key: &str) -> Option<Vec<u8>> {
        if !self.shared.is_fresh() {
            return None;
        }
        let entries = self.shared.lock();
        entries
            .get(key)
            .filter(|e| Instant::now() < e.expires)
            .map(|e| e.value.clone())
    }

    /// Taken before a read that missed asks Redis.
    pub(crate) fn ticket(&self) -> Ticket {
        Ticket(self.shared.generation.load(Ordering::Acquire))
    }

    /// Keeps `value`, read from Redis under `key` (which had `left` to live) after `ticket`
    /// was taken, unless anything was invalidated since (or the cache is not fresh).
    pub(crate) fn fill(&self, key: &str, value: &[u8], left: Duration, ticket: Ticket) {
        let mut entries = self.shared.lock();
        if self.shared.generation.load(Ordering::Acquire) != ticket.0 || !self.shared.is_fresh() {
            return;
        }
        if entries.len() >= self.shared.capacity && !entries.contains_key(key) {
            let now = Instant::now();
            entries.retain(|_, e| now < e.expires);
            if entries.len() >= self.shared.capacity
                && let Some(victim) = entries.keys().next().cloned()
            {
                entries.remove(&victim);
            }
        }
        entries.insert(
            key.to_owned(),
            Entry {
                value: value.to_vec(),
                expires: Instant::now() + left.min(MAX_AGE),
            },
        );
    }

    /// Drops `key` (after this backend wrote or deleted it).
    pub(crate) fn evict(&self, key: &str) {
        let mut entries = self.shared.lock();
        entries.remove(key);
        self.shared.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Drops everything (after this backend deleted records it does not know the ids of).
    pub(crate) fn flush(&self) {
        self.shared.flush();
    }

    /// Changes whenever the logout list may have changed in Redis (or invalidations may have
    /// been lost): an in-process copy loaded at one value is current while it holds.
    pub(crate) fn logout_generation(&self) -> u64 {
        self.shared.logout_generation.load(Ordering::Acquire)
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn is_fresh(&self) -> bool {
        self.now() < self.fresh_until.load(Ordering::Acquire)
    }

    fn flush(&self) {
        let mut entries = self.lock();
        entries.clear();
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.logout_generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The tracking connection is gone: off until a new one is up, and nothing kept.
    fn lost(&self) {
        self.connection.fetch_add(1, Ordering::AcqRel);
        self.fresh_until.store(0, Ordering::Release);
        self.flush();
    }

    /// A heartbeat sent at `sent` (on connection number `connection`) was answered.
    fn confirmed(&self, sent: u64, connection: u64) {
        let until = sent.saturating_add(u64::try_from(FRESHNESS.as_nanos()).unwrap_or(u64::MAX));
        // Under the lock, so that it cannot interleave with `lost`'s flush.
        let _entries = self.lock();
        if self.connection.load(Ordering::Acquire) == connection {
            self.fresh_until.fetch_max(until, Ordering::AcqRel);
        }
    }

    fn invalidate(&self, data: &[Value]) {
        let Some(Value::Array(keys)) = data.first() else {
            // `invalidate nil`: the database was flushed (or a shape we do not know).
            self.flush();
            return;
        };
        let mut entries = self.lock();
        for key in keys {
            let name = match key {
                Value::BulkString(b) => std::str::from_utf8(b).ok(),
                Value::SimpleString(s) => Some(s.as_str()),
                _ => None,
            };
            match name {
                Some(name) if name == self.logout_version_key => {
                    self.logout_generation.fetch_add(1, Ordering::AcqRel);
                }
                Some(name) => {
                    entries.remove(name);
                }
                None => entries.clear(),
            }
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// Applies the tracking connection's pushes as they are read.
struct Pushes(Weak<Shared>);

impl AsyncPushSender for Pushes {
    fn send(&self, info: PushInfo) -> Result<(), SendError> {
        let shared = self.0.upgrade().ok_or(SendError)?;
        match info.kind {
            PushKind::Invalidate => shared.invalidate(&info.data),
            PushKind::Disconnection => shared.lost(),
            _ => {}
        }
        Ok(())
    }
}

/// Keeps a tracking connection up for as long as the cache lives.
async fn maintain(shared: Weak<Shared>, client: Client, prefixes: Vec<String>, timeout: Duration) {
    // Whether the last attempt got tracking on: an outage is logged once, as a warning, when
    // it starts (or when tracking never comes up, e.g. `CLIENT TRACKING` refused by an ACL).
    let mut was_up = true;
    loop {
        let Some(connection) = shared.upgrade().map(|s| s.connection.load(Ordering::Acquire)) else {
            return;
        };
        let mut up = false;
        let outcome = track(&shared, &client, &prefixes, timeout, connection, &mut up).await;
        let Some(s) = shared.upgrade() else { return };
        s.lost();
        drop(s);
        if let Err(e) = outcome {
            if was_up || up {
                tracing::warn!(
                    error = %e,
                    "auth-redis: local session cache off (every read asks Redis) until Redis tracking is back"
                );
            } else {
                tracing::debug!(error = %e, "auth-redis: Redis tracking still unavailable");
            }
        }
        was_up = up;
        tokio::time::sleep(RETRY).await;
    }
}

/// One tracking connection's life: returns when it fails or the cache is dropped.
async fn track(
    shared: &Weak<Shared>,
    client: &Client,
    prefixes: &[String],
    timeout: Duration,
    connection: u64,
    up: &mut bool,
) -> RedisResult<()> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_push_sender(Pushes(shared.clone()));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    redis::cmd("CLIENT")
        .arg("SETNAME")
        .arg(CLIENT_NAME)
        .query_async::<()>(&mut conn)
        .await?;
    let mut on = redis::cmd("CLIENT");
    on.arg("TRACKING").arg("ON").arg("BCAST");
    for prefix in prefixes {
        on.arg("PREFIX").arg(prefix);
    }
    on.query_async::<()>(&mut conn).await?;
    *up = true;
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(sent) = shared.upgrade().map(|s| s.now()) else {
            return Ok(());
        };
        heartbeat(&mut conn).await?;
        let Some(s) = shared.upgrade() else { return Ok(()) };
        s.confirmed(sent, connection);
    }
}

async fn heartbeat(conn: &mut MultiplexedConnection) -> RedisResult<()> {
    match tokio::time::timeout(FRESHNESS, redis::cmd("PING").query_async::<()>(conn)).await {
        Ok(answer) => answer,
        Err(_) => Err(redis::RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "tracking heartbeat not answered",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Arc<Shared> {
        Arc::new(Shared {
            entries: Mutex::new(HashMap::new()),
            capacity: 2,
            generation: AtomicU64::new(0),
            logout_generation: AtomicU64::new(0),
            fresh_until: AtomicU64::new(0),
            connection: AtomicU64::new(0),
            origin: Instant::now(),
            logout_version_key: "p:lo:ver".to_owned(),
        })
    }

    fn fresh(s: &Arc<Shared>) -> RecordCache {
        s.confirmed(s.now(), s.connection.load(Ordering::Acquire));
        RecordCache { shared: s.clone() }
    }

    #[test]
    fn answers_only_while_fresh() {
        let s = shared();
        let cache = RecordCache { shared: s.clone() };
        let t = cache.ticket();
        cache.fill("p:s:a", b"v", MAX_AGE, t);
        assert_eq!(cache.get("p:s:a"), None, "never filled while off");
        let cache = fresh(&s);
        let t = cache.ticket();
        cache.fill("p:s:a", b"v", MAX_AGE, t);
        assert_eq!(cache.get("p:s:a").as_deref(), Some(&b"v"[..]));
        s.fresh_until.store(1, Ordering::Release);
        assert_eq!(cache.get("p:s:a"), None, "not served once freshness lapsed");
    }

    #[test]
    fn a_fill_that_raced_an_invalidation_is_dropped() {
        let s = shared();
        let cache = fresh(&s);
        let t = cache.ticket();
        s.invalidate(&[Value::Array(vec![Value::BulkString(b"p:s:other".to_vec())])]);
        cache.fill("p:s:a", b"old", MAX_AGE, t);
        assert_eq!(cache.get("p:s:a"), None);
        let t = cache.ticket();
        cache.fill("p:s:a", b"new", MAX_AGE, t);
        assert_eq!(cache.get("p:s:a").as_deref(), Some(&b"new"[..]));
        s.invalidate(&[Value::Array(vec![Value::BulkString(b"p:s:a".to_vec())])]);
        assert_eq!(cache.get("p:s:a"), None);
    }

    #[test]
    fn losing_the_connection_flushes_and_old_heartbeats_do_not_revive() {
        let s = shared();
        let cache = fresh(&s);
        let connection = s.connection.load(Ordering::Acquire);
        let t = cache.ticket();
        cache.fill("p:s:a", b"v", MAX_AGE, t);
        let logouts = cache.logout_generation();
        let sent = s.now();
        s.lost();
        s.confirmed(sent, connection);
        assert!(!cache.is_fresh());
        assert_ne!(cache.logout_generation(), logouts);
        let cache = fresh(&s);
        assert_eq!(cache.get("p:s:a"), None, "flushed");
    }

    #[test]
    fn flush_and_logout_version_and_capacity() {
        let s = shared();
        let cache = fresh(&s);
        let g = cache.logout_generation();
        s.invalidate(&[Value::Array(vec![Value::BulkString(b"p:lo:ver".to_vec())])]);
        assert_ne!(cache.logout_generation(), g);
        for k in ["p:s:a", "p:s:b", "p:s:c"] {
            let t = cache.ticket();
            cache.fill(k, b"v", MAX_AGE, t);
        }
        assert!(s.lock().len() <= 2, "bounded");
        s.invalidate(&[Value::Nil]);
        assert!(s.lock().is_empty());
    }
}
