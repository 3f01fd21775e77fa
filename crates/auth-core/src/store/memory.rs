//! [`MemoryBackend`]: the embedded default backend, for one process.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::backend::{LogoutKey, SessionBackend, SessionKeys};
use crate::error::StoreError;

/// How often expired entries are swept (amortised over writes).
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// An in-process [`SessionBackend`]: sessions, indexes, logout list and replay guard in a
/// mutex-protected map. Expired entries are invisible at once and swept periodically.
///
/// Good for a single instance; use a shared backend such as Redis (`auth-redis`) when the
/// app runs on several.
#[derive(Debug, Default)]
pub struct MemoryBackend {
    inner: Mutex<Inner>,
    /// The logout list, apart from the sessions so that the per-request lookup
    /// ([`SessionBackend::logout_time_at_hand`]) only takes a shared read lock.
    logouts: RwLock<LogoutList>,
    /// Set on the first recorded logout; lets session reads skip the logout-list lookup.
    any_logout: std::sync::atomic::AtomicBool,
}

/// Logout times by `sid` and by `sub`, each with when it is forgotten.
#[derive(Debug, Default)]
struct LogoutList {
    sid: HashMap<String, (u64, Instant)>,
    sub: HashMap<String, (u64, Instant)>,
    last_sweep: Option<Instant>,
}

impl LogoutList {
    /// The latest logout of `sid` or `sub` not yet forgotten at `now()`; the clock is read
    /// only when one of them is on the list.
    fn latest(&self, sid: &str, sub: Option<&str>, now: impl Fn() -> Instant) -> Option<u64> {
        let by_sid = self.sid.get(sid);
        let by_sub = sub.and_then(|s| self.sub.get(s));
        if by_sid.is_none() && by_sub.is_none() {
            return None;
        }
        let now = now();
        let live = |e: Option<&(u64, Instant)>| e.filter(|(_, exp)| *exp > now).map(|(at, _)| *at);
        live(by_sid).max(live(by_sub))
    }
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<String, Entry>,
    by_key: HashMap<LogoutKey, HashSet<String>>,
    once: HashMap<String, Instant>,
    /// Refresh leases: fencing token and expiry by (session id, lease key).
    leases: HashMap<(String, String), (u64, Instant)>,
    /// The last fencing token handed out.
    lease_seq: u64,
    last_sweep: Option<Instant>,
}

#[derive(Debug)]
struct Entry {
    value: Vec<u8>,
    keys: SessionKeys,
    expires: Instant,
}

impl MemoryBackend {
    /// An empty backend.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
        self.inner
            .lock()
            .map_err(|_| StoreError::new("memory backend lock poisoned"))
    }

    /// Number of live sessions (for tests and metrics).
    #[must_use]
    pub fn session_count(&self) -> usize {
        let now = Instant::now();
        self.inner
            .lock()
            .map_or(0, |g| g.sessions.values().filter(|e| e.expires > now).count())
    }
}

impl Inner {
    fn sweep(&mut self, now: Instant) {
        if self
            .last_sweep
            .is_some_and(|t| now.duration_since(t) < SWEEP_EVERY)
        {
            return;
        }
        self.last_sweep = Some(now);
        self.sessions.retain(|_, e| e.expires > now);
        let sessions = &self.sessions;
        self.by_key.retain(|_, ids| {
            ids.retain(|id| sessions.contains_key(id));
            !ids.is_empty()
        });
        self.once.retain(|_, exp| *exp > now);
        self.leases.retain(|_, (_, exp)| *exp > now);
    }

    /// Whether the refresh lease `key` of session `id` is live and held with `token`.
    fn holds_lease(&self, id: &str, key: &str, token: u64, now: Instant) -> bool {
        self.leases
            .get(&(id.to_owned(), key.to_owned()))
            .is_some_and(|(t, exp)| *t == token && *exp > now)
    }

    /// Stores `value` under `id` (replacing any record), indexed by `keys`.
    fn put(&mut self, id: &str, value: &[u8], keys: &SessionKeys, expires: Instant) {
        if let Some(old) = self.sessions.remove(id) {
            self.unindex(id, &old.keys);
        }
        for k in [LogoutKey::Sid(keys.sid.clone()), LogoutKey::Sub(keys.sub.clone())] {
            self.by_key.entry(k).or_default().insert(id.to_owned());
        }
        self.sessions.insert(
            id.to_owned(),
            Entry {
                value: value.to_vec(),
                keys: keys.clone(),
                expires,
            },
        );
    }

    fn unindex(&mut self, id: &str, keys: &SessionKeys) {
        for k in [LogoutKey::Sid(keys.sid.clone()), LogoutKey::Sub(keys.sub.clone())] {
            if let Some(ids) = self.by_key.get_mut(&k) {
                ids.remove(id);
                if ids.is_empty() {
                    self.by_key.remove(&k);
                }
            }
        }
    }
}

#[async_trait]
impl SessionBackend for MemoryBackend {
    async fn get(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let g = self.lock()?;
        Ok(g.sessions
            .get(id)
            .filter(|e| e.expires > Instant::now())
            .map(|e| e.value.clone()))
    }

    async fn set(&self, id: &str, value: &[u8], keys: &SessionKeys, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut g = self.lock()?;
        g.sweep(now);
        g.put(id, value, keys, now + ttl);
        Ok(())
    }

    async fn update(
        &self,
        id: &str,
        value: &[u8],
        keys: &SessionKeys,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut g = self.lock()?;
        // Checked and written under one lock: a delete cannot slip in between.
        if g.sessions.get(id).is_none_or(|e| e.expires <= now) {
            return Ok(false);
        }
        g.put(id, value, keys, now + ttl);
        Ok(true)
    }

    async fn acquire_refresh_lease(
        &self,
        session_id: &str,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        let now = Instant::now();
        let mut g = self.lock()?;
        g.sweep(now);
        let lease = (session_id.to_owned(), key.to_owned());
        if g.leases.get(&lease).is_some_and(|(_, exp)| *exp > now) {
            return Ok(None);
        }
        // One counter for every lease: tokens grow across sessions too, more than required.
        g.lease_seq += 1;
        let token = g.lease_seq;
        g.leases.insert(lease, (token, now + ttl));
        Ok(Some(token))
    }

    async fn release_refresh_lease(&self, session_id: &str, key: &str, token: u64) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        let lease = (session_id.to_owned(), key.to_owned());
        if g.leases.get(&lease).is_some_and(|(t, _)| *t == token) {
            g.leases.remove(&lease);
        }
        Ok(())
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
        let now = Instant::now();
        let mut g = self.lock()?;
        // Lease, record and write under one lock.
        if !g.holds_lease(id, lease_key, token, now) || g.sessions.get(id).is_none_or(|e| e.expires <= now) {
            return Ok(false);
        }
        g.put(id, value, keys, now + ttl);
        Ok(true)
    }

    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        let mut g = self.lock()?;
        if let Some(old) = g.sessions.remove(id) {
            g.unindex(id, &old.keys);
        }
        Ok(())
    }

    async fn delete_by(&self, key: &LogoutKey) -> Result<usize, StoreError> {
        let now = Instant::now();
        let mut g = self.lock()?;
        let ids = g.by_key.remove(key).unwrap_or_default();
        let mut n = 0;
        for id in ids {
            if let Some(e) = g.sessions.remove(&id) {
                g.unindex(&id, &e.keys);
                if e.expires > now {
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    async fn record_logout(&self, key: &LogoutKey, at: u64, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        // Readers never panic while holding the lock, so a poisoned list is still consistent.
        let mut list = self.logouts.write().unwrap_or_else(PoisonError::into_inner);
        if list
            .last_sweep
            .is_none_or(|t| now.duration_since(t) >= SWEEP_EVERY)
        {
            list.last_sweep = Some(now);
            list.sid.retain(|_, (_, exp)| *exp > now);
            list.sub.retain(|_, (_, exp)| *exp > now);
        }
        let (map, name) = match key {
            LogoutKey::Sid(s) => (&mut list.sid, s),
            LogoutKey::Sub(s) => (&mut list.sub, s),
        };
        let entry = map.entry(name.clone()).or_insert((at, now + ttl));
        if at >= entry.0 || entry.1 <= now {
            *entry = (at, now + ttl);
        }
        self.any_logout.store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    }

    async fn logout_time(&self, keys: &[LogoutKey]) -> Result<Option<u64>, StoreError> {
        let now = Instant::now();
        let list = self.logouts.read().unwrap_or_else(PoisonError::into_inner);
        Ok(keys
            .iter()
            .filter_map(|k| match k {
                LogoutKey::Sid(s) => list.latest(s, None, || now),
                LogoutKey::Sub(s) => list.sub.get(s).filter(|(_, exp)| *exp > now).map(|(at, _)| *at),
            })
            .max())
    }

    fn logout_time_at_hand(&self, sid: &str, sub: Option<&str>) -> Option<Option<u64>> {
        if !self.any_logout.load(std::sync::atomic::Ordering::Acquire) {
            return Some(None);
        }
        let list = self.logouts.read().unwrap_or_else(PoisonError::into_inner);
        Some(list.latest(sid, sub, Instant::now))
    }

    async fn remember_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut g = self.lock()?;
        g.sweep(now);
        match g.once.get(key) {
            Some(exp) if *exp > now => Ok(false),
            _ => {
                g.once.insert(key.to_owned(), now + ttl);
                Ok(true)
            }
        }
    }

    async fn forget_once(&self, key: &str) -> Result<(), StoreError> {
        self.lock()?.once.remove(key);
        Ok(())
    }
}
