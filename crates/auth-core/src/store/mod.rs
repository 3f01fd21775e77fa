//! Where transactions and sessions live.
//!
//! Stores receive the request's [`CookieJar`]: the stateless cookie stores keep everything in
//! sealed cookies; stateful stores keep a sealed id in a cookie and the data in a backend.

mod cookie;

pub use cookie::{CookieStateStore, CookieTransactionStore};

use async_trait::async_trait;

use crate::cookies::CookieJar;
use crate::error::Result;
use crate::session::SessionData;
use crate::transaction::Transaction;

/// Keeps flows in flight, one per `state`.
#[async_trait]
pub trait TransactionStore: Send + Sync + std::fmt::Debug {
    /// Stores `tx` under its state.
    async fn set(&self, tx: &Transaction, jar: &mut dyn CookieJar) -> Result<()>;
    /// The transaction for `state`, if any and not expired.
    async fn get(&self, state: &str, jar: &mut dyn CookieJar) -> Result<Option<Transaction>>;
    /// Removes the transaction for `state` (no error when absent).
    async fn delete(&self, state: &str, jar: &mut dyn CookieJar) -> Result<()>;
    /// Removes every transaction of this browser (on logout).
    async fn delete_all(&self, jar: &mut dyn CookieJar) -> Result<()>;
}

/// Keeps the session of the current browser.
#[async_trait]
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// The session, if any. Anything unreadable counts as no session.
    async fn get(&self, jar: &mut dyn CookieJar) -> Result<Option<SessionData>>;
    /// Writes the session.
    async fn set(&self, session: &SessionData, jar: &mut dyn CookieJar) -> Result<()>;
    /// Ends the session.
    async fn delete(&self, jar: &mut dyn CookieJar) -> Result<()>;
}
