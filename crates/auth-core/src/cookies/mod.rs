//! Cookie access for the library: how its cookies are written ([`CookieAttributes`]), the
//! [`CookieJar`] seam that every framework adapter implements with an in-memory
//! [`MemoryCookieJar`] for tests and non-HTTP callers, and the chunking used to store values
//! larger than one browser cookie.
//!
//! The library never talks to a framework's request or response directly; it reads and writes
//! cookies through a [`CookieJar`] for the duration of one request. Adapters translate
//! [`CookieAttributes`] into `Set-Cookie` headers, for example with
//! [`CookieAttributes::to_cookie`] and [`CookieAttributes::to_removal_cookie`].

mod attributes;
mod chunks;
mod jar;

pub use attributes::CookieAttributes;
#[cfg(any(test, feature = "internal"))]
pub(crate) use chunks::read_chunked;
pub(crate) use chunks::{chunk_capacity, read_chunks, remove_chunked, write_chunked};
pub use jar::{CookieJar, MemoryCookieJar, ResponseCookie};
