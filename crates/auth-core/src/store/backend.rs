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

    /// Takes the refresh lease `key` of the session stored under `session_id` for `ttl` when
    /// nobody holds it: `Some(fencing token)` when taken, `None` while another holder's lease
    /// is live. Fencing tokens only grow: each acquisition gets a greater one than every
    /// earlier acquisition of any lease of the same session (a backend may count per session,
    /// e.g. to keep a session's keys together on one Redis Cluster slot: fencing only ever
    /// compares holders of one lease), so a holder whose lease expired can be told apart from
    /// the one that took it over.
    ///
    /// The library takes one lease per (session, refresh token, audience, scope) before
    /// refreshing a server-side session, so that instances sharing the backend send one
    /// refresh between them; the others wait for the record to hold the new token set. `key`
    /// is made of hashes and names no secret; the lease lives beside the session's record
    /// (`session_id`), and [`update_fenced`](Self::update_fenced) of that record checks it.
    ///
    /// The default does not coordinate: it always answers `Some(0)` (every caller refreshes on
    /// its own, as with one instance per backend). Both built-in backends override it.
    async fn acquire_refresh_lease(
        &self,
        session_id: &str,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<u64>, StoreError> {
        let _ = (session_id, key, ttl);
        Ok(Some(0))
    }

    /// Releases the refresh lease `key` of the session `session_id` if it is still held with
    /// `token` (no error, and nothing done, when it expired or another holder took it over).
    ///
    /// The default does nothing.
    async fn release_refresh_lease(&self, session_id: &str, key: &str, token: u64) -> Result<(), StoreError> {
        let _ = (session_id, key, token);
        Ok(())
    }

    /// [`update`](Self::update), done only while the refresh lease `lease_key` of this session
    /// (taken with [`acquire_refresh_lease`](Self::acquire_refresh_lease) and `id` as its
    /// `session_id`) is still held with `token`, checked atomically with the write: `false`,
    /// writing nothing, when the lease expired or was taken over (a stale holder never
    /// overwrites a newer token set), or when the record is gone.
    ///
    /// The default is [`update`](Self::update) without the lease check (matching the default
    /// [`acquire_refresh_lease`](Self::acquire_refresh_lease), which does not coordinate).
    async fn update_fenced(
        &self,
        id: &str,
        value: &[u8],
        keys: &SessionKeys,
        ttl: Duration,
        lease_key: &str,
        token: u64,
    ) -> Result<bool, StoreError> {
        let _ = (lease_key, token);
        self.update(id, value, keys, ttl).await
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
