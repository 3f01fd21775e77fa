//! [`MemoryBackend`]: the embedded default backend, for one process.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
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
    /// Set on the first recorded logout; lets session reads skip the logout-list lookup.
    any_logout: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: HashMap<String, Entry>,
    by_key: HashMap<LogoutKey, HashSet<String>>,
    logouts: HashMap<LogoutKey, (u64, Instant)>,
    once: HashMap<String, Instant>,
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
        self.logouts.retain(|_, (_, exp)| *exp > now);
        self.once.retain(|_, exp| *exp > now);
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
        if let Some(old) = g.sessions.remove(id) {
            g.unindex(id, &old.keys);
        }
        for k in [LogoutKey::Sid(keys.sid.clone()), LogoutKey::Sub(keys.sub.clone())] {
            g.by_key.entry(k).or_default().insert(id.to_owned());
        }
        g.sessions.insert(
            id.to_owned(),
            Entry {
                value: value.to_vec(),
                keys: keys.clone(),
                expires: now + ttl,
            },
        );
        Ok(())
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

    fn may_have_logouts(&self) -> bool {
        self.any_logout.load(std::sync::atomic::Ordering::Acquire)
    }

    async fn record_logout(&self, key: &LogoutKey, at: u64, ttl: Duration) -> Result<(), StoreError> {
        let now = Instant::now();
        let mut g = self.lock()?;
        g.sweep(now);
        self.any_logout.store(true, std::sync::atomic::Ordering::Release);
        let entry = g.logouts.entry(key.clone()).or_insert((at, now + ttl));
        if at >= entry.0 {
            *entry = (at, now + ttl);
        }
        Ok(())
    }

    async fn logout_time(&self, keys: &[LogoutKey]) -> Result<Option<u64>, StoreError> {
        let now = Instant::now();
        let g = self.lock()?;
        Ok(keys
            .iter()
            .filter_map(|k| g.logouts.get(k))
            .filter(|(_, exp)| *exp > now)
            .map(|(at, _)| *at)
            .max())
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
}
