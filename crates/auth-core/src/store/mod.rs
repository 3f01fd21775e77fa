//! Where sessions live on the server: the [`SessionBackend`] seam, implemented in memory by
//! [`MemoryBackend`] and on Redis by the `auth-redis` crate.
//!
//! The session and transaction stores built on it are internal: sessions are sealed into
//! cookies, or (with [`ServerClientBuilder::session_backend`](crate::ServerClientBuilder::session_backend))
//! kept in the backend behind a sealed id cookie.

mod backend;
mod cache;
// `pub` items of these three are reachable only through `crate::internal`.
#[cfg_attr(not(any(test, feature = "internal")), allow(unreachable_pub))]
pub(crate) mod cookie;
mod memory;
#[cfg_attr(not(any(test, feature = "internal")), allow(unreachable_pub))]
pub(crate) mod server;
#[cfg_attr(not(any(test, feature = "internal")), allow(unreachable_pub))]
pub(crate) mod traits;

pub use backend::{LogoutKey, SessionBackend, SessionKeys};
pub(crate) use cache::{CachedStateStore, SESSION_CACHE_CAPACITY, SealedStore};
pub use cookie::MAX_COOKIE_SESSION_CHUNKS;
pub(crate) use cookie::{
    CookieStateStore, CookieTransactionStore, ensure_fits, max_sealed_len as max_cookie_sealed_len,
};
pub use memory::MemoryBackend;
pub use server::MAX_SERVER_SESSION_BYTES;
pub(crate) use server::ServerSideStateStore;
pub(crate) use traits::{StateStore, TransactionStore, WriteOptions};
