//! The seam for server-side state: a key-value backend with session indexes, a logout list
//! and a replay guard. Implemented in memory here and on Redis in `auth-redis`.
//!
//! Values are opaque bytes: the library seals session documents before they reach a backend,
//! so a backend never holds tokens in the clear.

use std::fmt::Debug;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::StoreError;

/// Who a session belongs to; backends index sessions by both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// The session id at the provider (`sid`).
    pub sid: String,
    /// The user (`sub`).
    pub sub: String,
}

/// What a back-channel logout names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LogoutKey {
    /// One provider session.
    Sid(String),
    /// Every session of one user.
    Sub(String),
}

/// Server-side storage used for server-side sessions, back-channel logout bookkeeping and
/// replay guards. Every method must be safe to call concurrently from many instances.
#[async_trait]
pub trait SessionBackend: Send + Sync + Debug + 'static {
    /// The value stored under `id`, if present and not expired.
    async fn get(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Stores `value` under `id` for `ttl`, indexed by `keys`. Atomic: on error nothing is
    /// half-written.
    async fn set(&self, id: &str, value: &[u8], keys: &SessionKeys, ttl: Duration) -> Result<(), StoreError>;

    /// Replaces the value under `id` only if a live record is still stored there, atomically
    /// (nothing may delete the record between the check and the write), moving it to `keys`
    /// and giving it `ttl`. Returns `false`, writing nothing, when the record is gone
    /// (deleted by a logout or a back-channel logout, or expired): a request that read the
    /// session before it was deleted must not write it back.
    ///
    /// The default reads, then writes, which is **not** atomic; backends shared by concurrent
    /// requests must override it (both built-in backends do).
    async fn update(
        &self,
        id: &str,
        value: &[u8],
        keys: &SessionKeys,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        if self.get(id).await?.is_none() {
            return Ok(false);
        }
        self.set(id, value, keys, ttl).await?;
        Ok(true)
    }

    /// Removes `id` (no error when absent).
    async fn delete(&self, id: &str) -> Result<(), StoreError>;

    /// Removes every session indexed under `key`; returns how many.
    async fn delete_by(&self, key: &LogoutKey) -> Result<usize, StoreError>;

    /// Records that `key` was logged out at `at`, kept for `ttl`; a later time replaces an
    /// earlier one, never the reverse. The library records milliseconds since the epoch (older
    /// versions recorded seconds; it reads both); backends only compare the numbers.
    async fn record_logout(&self, key: &LogoutKey, at: u64, ttl: Duration) -> Result<(), StoreError>;

    /// The latest logout time recorded for any of `keys`.
    async fn logout_time(&self, keys: &[LogoutKey]) -> Result<Option<u64>, StoreError>;

    /// [`logout_time`](Self::logout_time) for the provider session `sid` and the user `sub`,
    /// answered from an in-process copy of the logout list without waiting: `Some(answer)`
    /// when the backend holds a current copy, `None` for "ask `logout_time`". Called on every
    /// request that reads a cookie session, so it must be a cheap in-memory lookup.
    ///
    /// The default has no copy and answers `None`.
    fn logout_time_at_hand(&self, sid: &str, sub: Option<&str>) -> Option<Option<u64>> {
        let _ = (sid, sub);
        None
    }

    /// Remembers `key` for `ttl`; `true` the first time, `false` while it is remembered.
    async fn remember_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Forgets `key` remembered by [`remember_once`](Self::remember_once) (no error when
    /// absent), so that a back-channel logout whose work failed can be delivered again.
    ///
    /// The default does nothing (a retry of the failed logout is then refused as a replay);
    /// both built-in backends override it.
    async fn forget_once(&self, key: &str) -> Result<(), StoreError> {
        let _ = key;
        Ok(())
    }
}
