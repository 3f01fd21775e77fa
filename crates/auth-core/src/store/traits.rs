//! The session and transaction store traits the client is built on. Crate-private: the
//! pluggable seam is [`SessionBackend`](super::SessionBackend); the workspace's tests and
//! benchmarks reach the session store through `crate::internal` (the `internal` feature).

use async_trait::async_trait;

use super::LogoutKey;
use crate::cookies::CookieJar;
use crate::error::Result;
use crate::session::SessionData;
use crate::transaction::Transaction;

/// Keeps flows in flight, one per `state`.
#[async_trait]
pub(crate) trait TransactionStore: Send + Sync + std::fmt::Debug {
    /// Stores `tx` under its state.
    async fn set(&self, tx: &Transaction, jar: &mut dyn CookieJar) -> Result<()>;
    /// The transaction for `state`, if any and not expired.
    async fn get(&self, state: &str, jar: &mut dyn CookieJar) -> Result<Option<Transaction>>;
    /// Removes the transaction for `state` (no error when absent).
    async fn delete(&self, state: &str, jar: &mut dyn CookieJar) -> Result<()>;
    /// Removes every transaction of this browser (on logout).
    async fn delete_all(&self, jar: &mut dyn CookieJar) -> Result<()>;
}

/// How a session write should be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// When the session ends (seconds since the epoch): cookie `Max-Age` and backend TTL.
    pub expires_at: u64,
    /// A new login: stateful stores issue a fresh session id (and drop the old record), so a
    /// session id planted before login is never promoted (session fixation). Only such a
    /// write creates a stored session; any other write updates the stored session only while
    /// it still exists, and fails with [`crate::Error::SessionExpired`] when it was deleted
    /// meanwhile (a deleted session is never written back).
    pub new_session: bool,
}

impl WriteOptions {
    /// Options for a write.
    #[must_use]
    pub fn new(expires_at: u64, new_session: bool) -> Self {
        Self {
            expires_at,
            new_session,
        }
    }
}

/// Keeps the session of the current browser.
#[async_trait]
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// The session, if any. Anything unreadable counts as no session. (The client reads
    /// through the cache's `SealedStore` steps; this whole read serves tests.)
    #[cfg_attr(not(any(test, feature = "internal")), allow(dead_code))]
    async fn get(&self, jar: &mut dyn CookieJar) -> Result<Option<SessionData>>;
    /// Writes the session.
    ///
    /// # Errors
    /// [`crate::Error::SessionExpired`] when a stateful store's session was deleted since it
    /// was read (the update is refused, see [`WriteOptions::new_session`]); store errors.
    async fn set(&self, session: &SessionData, options: WriteOptions, jar: &mut dyn CookieJar) -> Result<()>;
    /// Writes the refreshed session only while the refresh lease `lease_key` is held with
    /// `token` ([`super::SessionBackend::update_fenced`]): `Ok(false)`, writing nothing, when
    /// the lease was lost. Stores without a backend record (cookies) just write.
    ///
    /// # Errors
    /// As [`set`](Self::set).
    async fn set_fenced(
        &self,
        session: &SessionData,
        options: WriteOptions,
        lease_key: &str,
        token: u64,
        jar: &mut dyn CookieJar,
    ) -> Result<bool> {
        let _ = (lease_key, token);
        self.set(session, options, jar).await?;
        Ok(true)
    }
    /// Ends the session.
    async fn delete(&self, jar: &mut dyn CookieJar) -> Result<()>;
    /// Ends every stored session named by a back-channel logout and returns how many, or
    /// `None` when this store cannot find sessions by key (stateless cookies: the client
    /// then keeps a logout list instead).
    async fn delete_by_logout(&self, key: &LogoutKey) -> Result<Option<usize>>;
}
