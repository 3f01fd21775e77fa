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

    /// Removes `id` (no error when absent).
    async fn delete(&self, id: &str) -> Result<(), StoreError>;

    /// Removes every session indexed under `key`; returns how many.
    async fn delete_by(&self, key: &LogoutKey) -> Result<usize, StoreError>;

    /// Records that `key` was logged out at `at` (seconds since the epoch), kept for `ttl`.
    async fn record_logout(&self, key: &LogoutKey, at: u64, ttl: Duration) -> Result<(), StoreError>;

    /// `false` when no logout was ever recorded, so the per-request logout-list lookup can be
    /// skipped. The default (`true`) is always correct.
    fn may_have_logouts(&self) -> bool {
        true
    }

    /// The latest logout time recorded for any of `keys`.
    async fn logout_time(&self, keys: &[LogoutKey]) -> Result<Option<u64>, StoreError>;

    /// Remembers `key` for `ttl`; `true` the first time, `false` while it is remembered.
    async fn remember_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError>;
}
