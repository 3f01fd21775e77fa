//! [`CachedStateStore`]: the opened-session cache, a decorator over a session store.
//!
//! Opening a session costs about 16 µs for a typical 3.2 KB session (HMAC-SHA512 over the
//! ~4.4 KB sealed value, base64, AES-CBC, then JSON parsing; `benches/core.rs`), and a
//! protected route would pay it on every request although a browser sends the same cookie
//! again and again. So the client wraps its session store in a [`CachedStateStore`], which
//! keeps a small bounded cache of sessions already opened, keyed by the exact sealed bytes
//! they were opened from. A store it can decorate reads in two steps ([`SealedStore`]):
//! **fetch** the sealed bytes that fully determine the session of this request (the session
//! cookie's chunks; for server-side sessions the id cookie's id and the record stored under
//! it, read from the backend every time), then **open** them (the expensive part). The
//! decorator fetches, and opens only on a miss; the fetched value stays in the pieces it came
//! in ([`Fetched`]) and is joined only to be opened. The same [`OpenedCache`] serves the
//! server-side store's fetch too: the id its sealed id cookie opens to, by the cookie's
//! exact bytes, under the same rules.
//!
//! - **A hit needs the exact same bytes.** Each entry keeps the sealed value it was opened
//!   from, and a lookup compares the whole fetched value with it (piece after piece), every
//!   byte, in a loop without an early exit (so the time taken does not tell how many leading
//!   bytes of a cached value a guess got right). A different, truncated or tampered value can
//!   never hit (the same value cut into other chunks is the same value, and opens to the same
//!   document). Entries are found through a keyed SipHash (a per-cache random key) of the
//!   value's length and last 64 bytes, which hold the value's authentication tag.
//! - **Only successes are stored.** A value enters the cache only after it opened and parsed
//!   as a session document; failures are never cached, so a bad cookie costs a full open
//!   every time.
//! - **Why serving a cached entry is sound.** Opening is a pure function of the fetched bytes
//!   and the store's fixed secrets and name: the same bytes open to the same document every
//!   time. A changed session (refresh, rolling touch, new login) is re-sealed with a fresh
//!   random IV, so it has different bytes and misses. Server-side, the record is fetched from
//!   the backend on every read, so a record updated by another instance misses and a deleted
//!   one is no session, cache or not. Each decorator has its own cache, so stores with other
//!   names or secrets never see each other's entries.
//! - **Policy stays per request.** The cache sits below [`crate::ServerClient`]: expiry
//!   (absolute and inactivity), the logout list (an in-memory lookup,
//!   [`super::SessionBackend::logout_time_at_hand`]) and the rolling touch are checked on the
//!   returned document on every request, hit or miss.
//! - **Bounded.** At most [`SESSION_CACHE_CAPACITY`] entries, replaced by the CLOCK
//!   (second-chance) policy; values over [`MAX_CACHED_LEN`] bytes are never cached.
//! - **Cheap.** One `std::sync::Mutex` held only for a hash-map probe and an `Arc` clone; the
//!   comparison happens outside it, and a hit hands out the shared document (no copy).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::{LogoutKey, StateStore, WriteOptions};
use crate::cookies::CookieJar;
use crate::error::Result;
use crate::session::SessionData;

/// How many opened sessions a [`CachedStateStore`] keeps (see the module docs).
pub(crate) const SESSION_CACHE_CAPACITY: usize = 1024;

/// Sealed values longer than this are opened every time, never cached.
pub(crate) const MAX_CACHED_LEN: usize = 16 * 1024;

/// How many trailing bytes of a value (which hold its authentication tag) key the index.
const INDEX_TAIL_LEN: usize = 64;

/// A session store that reads in two steps, so that [`CachedStateStore`] can skip the second.
#[async_trait]
pub(crate) trait SealedStore: StateStore {
    /// The sealed bytes that fully determine this request's session: the same bytes always
    /// open to the same document. `None` when there is no session to open.
    async fn fetch(&self, jar: &mut dyn CookieJar) -> Result<Option<Fetched>>;
    /// Opens fetched bytes: the session, or `None` when they do not open or parse.
    fn open(&self, sealed: &str) -> Option<SessionData>;
    /// The id of this request's stored session record (server-side sessions), without reading
    /// the record; `None` for stores without records (cookies) or without a valid id cookie.
    fn session_id(&self, jar: &dyn CookieJar) -> Option<String> {
        let _ = jar;
        None
    }
}

/// Sealed bytes as a [`SealedStore`] fetched them, in the pieces they came in (a session
/// cookie's chunks; a record's id and its stored value): the value is their concatenation.
/// A cache hit compares the pieces where they are; only a value that has to be opened is
/// joined into one string.
#[derive(Debug)]
pub(crate) struct Fetched(Vec<String>);

impl Fetched {
    /// The value in `pieces`, in order.
    pub(crate) fn pieces(pieces: Vec<String>) -> Self {
        Self(pieces)
    }

    /// The value, joined (no copy when it came in one piece).
    pub(crate) fn joined(self) -> String {
        let mut pieces = self.0;
        if pieces.len() == 1 {
            return pieces.pop().unwrap_or_default();
        }
        pieces.concat()
    }
}

/// The opened-session cache over a [`SealedStore`] (see the module docs). Writes go straight
/// to the store.
pub(crate) struct CachedStateStore {
    inner: Box<dyn SealedStore>,
    cache: OpenedCache<SessionData>,
}

impl std::fmt::Debug for CachedStateStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedStateStore")
            .field("inner", &self.inner)
            .field("cache", &self.cache)
            .finish()
    }
}

impl CachedStateStore {
    /// `inner` with a cache of `capacity` entries (0 turns it off).
    pub(crate) fn new(inner: Box<dyn SealedStore>, capacity: usize) -> Self {
        Self {
            inner,
            cache: OpenedCache::new(capacity),
        }
    }

    /// The session, shared with the cache: fetch, then a hit or an open.
    pub(crate) async fn read(&self, jar: &mut dyn CookieJar) -> Result<Option<Arc<SessionData>>> {
        let Some(fetched) = self.inner.fetch(jar).await? else {
            return Ok(None);
        };
        if let Some(s) = self.cache.get(&fetched.0) {
            return Ok(Some(s));
        }
        let sealed = fetched.joined();
        let opened = self.inner.open(&sealed).map(Arc::new);
        if let Some(s) = &opened {
            self.cache.insert(&sealed, s);
        }
        Ok(opened)
    }

    /// The id of this request's stored session record ([`SealedStore::session_id`]).
    pub(crate) fn session_id(&self, jar: &dyn CookieJar) -> Option<String> {
        self.inner.session_id(jar)
    }

    /// The session as an owned copy ([`StateStore::get`]).
    pub(crate) async fn get(&self, jar: &mut dyn CookieJar) -> Result<Option<SessionData>> {
        Ok(self.read(jar).await?.map(Arc::unwrap_or_clone))
    }

    /// Writes through to the store ([`StateStore::set`]).
    pub(crate) async fn set(
        &self,
        session: &SessionData,
        options: WriteOptions,
        jar: &mut dyn CookieJar,
    ) -> Result<()> {
        self.inner.set(session, options, jar).await
    }

    /// Writes through to the store ([`StateStore::set_fenced`]).
    pub(crate) async fn set_fenced(
        &self,
        session: &SessionData,
        options: WriteOptions,
        lease_key: &str,
        token: u64,
        jar: &mut dyn CookieJar,
    ) -> Result<bool> {
        self.inner
            .set_fenced(session, options, lease_key, token, jar)
            .await
    }

    /// Deletes through the store ([`StateStore::delete`]).
    pub(crate) async fn delete(&self, jar: &mut dyn CookieJar) -> Result<()> {
        self.inner.delete(jar).await
    }

    /// Counters of the cache: `(hits, misses, entries)`.
    #[cfg(any(test, feature = "internal"))]
    pub(crate) fn stats(&self) -> (u64, u64, usize) {
        self.cache.stats()
    }
}

#[async_trait]
impl StateStore for CachedStateStore {
    async fn get(&self, jar: &mut dyn CookieJar) -> Result<Option<SessionData>> {
        CachedStateStore::get(self, jar).await
    }

    async fn set(&self, session: &SessionData, options: WriteOptions, jar: &mut dyn CookieJar) -> Result<()> {
        CachedStateStore::set(self, session, options, jar).await
    }

    async fn set_fenced(
        &self,
        session: &SessionData,
        options: WriteOptions,
        lease_key: &str,
        token: u64,
        jar: &mut dyn CookieJar,
    ) -> Result<bool> {
        CachedStateStore::set_fenced(self, session, options, lease_key, token, jar).await
    }

    async fn delete(&self, jar: &mut dyn CookieJar) -> Result<()> {
        CachedStateStore::delete(self, jar).await
    }

    async fn delete_by_logout(&self, key: &LogoutKey) -> Result<Option<usize>> {
        self.inner.delete_by_logout(key).await
    }
}

/// Whether the concatenation of `pieces` is `whole`, looking at every byte whatever the first
/// difference (no early exit), so the time taken depends on the lengths only.
fn same_bytes<P: AsRef<str>>(pieces: &[P], whole: &[u8]) -> bool {
    let mut rest = whole;
    let mut diff = 0u8;
    for piece in pieces {
        let piece = piece.as_ref().as_bytes();
        let Some((part, after)) = rest.split_at_checked(piece.len()) else {
            return false;
        };
        // An OR of all byte differences: no branch on the data (and it vectorises well).
        diff |= piece.iter().zip(part).fold(0u8, |acc, (x, y)| acc | (x ^ y));
        rest = after;
    }
    rest.is_empty() && std::hint::black_box(diff) == 0
}

/// The last (up to) [`INDEX_TAIL_LEN`] bytes of the concatenation of `pieces`, copied into
/// `buf`.
fn tail<'b, P: AsRef<str>>(pieces: &[P], buf: &'b mut [u8; INDEX_TAIL_LEN]) -> &'b [u8] {
    let mut start = INDEX_TAIL_LEN;
    for piece in pieces.iter().rev() {
        let piece = piece.as_ref().as_bytes();
        let take = start.min(piece.len());
        let (from, to) = (piece.len() - take, start - take);
        buf[to..start].copy_from_slice(&piece[from..]);
        start = to;
        if start == 0 {
            break;
        }
    }
    &buf[start..]
}

/// What the index finds an entry by: the length of a value and its last [`INDEX_TAIL_LEN`]
/// bytes, which hold its authentication tag (right-aligned, zero-padded for shorter values).
/// The index map hashes it with std's randomly keyed SipHash, a key per cache, so nobody can
/// aim values at one bucket; values sharing a key only share a slot, as a hit needs the same
/// bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
struct IndexKey {
    len: usize,
    tail: [u8; INDEX_TAIL_LEN],
}

/// How many of a key's last bytes are hashed: the end of the authentication tag (about 96 bits
/// of a MAC's output) spreads entries as well as the whole key would, at a quarter of the
/// hashing; equal keys still hash alike, and lookups compare whole keys.
const INDEX_HASHED_LEN: usize = 16;

impl std::hash::Hash for IndexKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_usize(self.len);
        state.write(&self.tail[INDEX_TAIL_LEN - INDEX_HASHED_LEN..]);
    }
}

impl IndexKey {
    /// The key of the value that `pieces` (of `len` bytes in all) make up.
    fn of<P: AsRef<str>>(len: usize, pieces: &[P]) -> Self {
        let mut tail_bytes = [0; INDEX_TAIL_LEN];
        tail(pieces, &mut tail_bytes);
        Self {
            len,
            tail: tail_bytes,
        }
    }
}

/// A cached opened value and the exact sealed bytes it was opened from.
struct CachedSession<T> {
    sealed: Box<str>,
    session: Arc<T>,
}

/// One cache slot: its index key, the entry, and the CLOCK reference bit.
struct Slot<T> {
    key: IndexKey,
    entry: Arc<CachedSession<T>>,
    referenced: bool,
}

/// The slots and their index, behind the cache's lock.
struct CacheSlots<T> {
    /// Index key → position in `slots`; every slot's key is in here exactly once.
    index: HashMap<IndexKey, usize>,
    slots: Vec<Slot<T>>,
    /// The CLOCK hand: the next slot considered for replacement.
    hand: usize,
}

impl<T> Default for CacheSlots<T> {
    fn default() -> Self {
        Self {
            index: HashMap::new(),
            slots: Vec::new(),
            hand: 0,
        }
    }
}

/// Bounded cache of values opened from sealed bytes, by exact sealed bytes (see the module
/// docs): sessions here, and the session id a server-side session's id cookie opens to
/// (`store/server.rs`), both pure functions of the sealed bytes and the store's secrets.
pub(crate) struct OpenedCache<T> {
    capacity: usize,
    slots: Mutex<CacheSlots<T>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<T> std::fmt::Debug for OpenedCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (hits, misses, len) = self.stats();
        f.debug_struct("OpenedCache")
            .field("capacity", &self.capacity)
            .field("len", &len)
            .field("hits", &hits)
            .field("misses", &misses)
            .finish()
    }
}

impl<T> OpenedCache<T> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            slots: Mutex::new(CacheSlots::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheSlots<T>> {
        // Nothing panics while the lock is held; a poisoned lock still holds consistent slots.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cacheable(&self, len: usize) -> bool {
        self.capacity > 0 && len <= MAX_CACHED_LEN
    }

    /// What was opened earlier from exactly the value that `pieces` make up (in order), if
    /// cached.
    pub(crate) fn get<P: AsRef<str>>(&self, pieces: &[P]) -> Option<Arc<T>> {
        let len = pieces.iter().map(|p| p.as_ref().len()).sum();
        if !self.cacheable(len) {
            return None;
        }
        let key = IndexKey::of(len, pieces);
        let entry = {
            let mut g = self.lock();
            let pos = g.index.get(&key).copied();
            pos.and_then(|i| g.slots.get_mut(i)).map(|slot| {
                slot.referenced = true;
                Arc::clone(&slot.entry)
            })
        };
        match entry {
            Some(e) if same_bytes(pieces, e.sealed.as_bytes()) => {
                self.hits.fetch_add(1, Ordering::Relaxed);
                Some(Arc::clone(&e.session))
            }
            _ => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    /// Remembers that `value` opened to `session`. Call only after a successful open.
    pub(crate) fn insert(&self, value: &str, session: &Arc<T>) {
        if !self.cacheable(value.len()) {
            return;
        }
        let key = IndexKey::of(value.len(), &[value]);
        let slot = Slot {
            key,
            entry: Arc::new(CachedSession {
                sealed: value.into(),
                session: Arc::clone(session),
            }),
            referenced: false,
        };
        // The replaced entry is dropped after the lock is released.
        let _replaced = {
            let mut g = self.lock();
            let g = &mut *g;
            if let Some(&i) = g.index.get(&key) {
                // Same key: the same value opened concurrently (another value that opens
                // would need the same length and the same last 64 bytes, its tag included).
                g.slots.get_mut(i).map(|old| std::mem::replace(old, slot))
            } else if g.slots.len() < self.capacity {
                g.index.insert(key, g.slots.len());
                g.slots.push(slot);
                None
            } else {
                // CLOCK: skip (and clear) recently used slots, replace the first one that is not.
                loop {
                    let i = g.hand % g.slots.len();
                    g.hand = (i + 1) % g.slots.len();
                    let Some(candidate) = g.slots.get_mut(i) else {
                        break None;
                    };
                    if candidate.referenced {
                        candidate.referenced = false;
                        continue;
                    }
                    let old = std::mem::replace(candidate, slot);
                    g.index.remove(&old.key);
                    g.index.insert(key, i);
                    break Some(old);
                }
            }
        };
    }

    /// `(hits, misses, entries)`.
    pub(crate) fn stats(&self) -> (u64, u64, usize) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            self.lock().slots.len(),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cookies::{CookieAttributes, MemoryCookieJar};
    use crate::store::CookieStateStore;
    use crate::store::cookie::tests::session;
    use crate::time::now;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn cached(secrets: &[&str], name: &str, capacity: usize) -> CachedStateStore {
        let store = CookieStateStore::new(secrets, name, CookieAttributes::default());
        CachedStateStore::new(Box::new(store), capacity)
    }

    fn session_store(secret: &str, name: &str) -> CachedStateStore {
        cached(&[secret], name, SESSION_CACHE_CAPACITY)
    }

    /// The request cookies of `store`'s write of `s`, as `(name, value)` pairs.
    async fn sealed_cookies(store: &CachedStateStore, s: &SessionData) -> Vec<(String, String)> {
        let mut jar = MemoryCookieJar::default();
        store
            .set(s, WriteOptions::new(now() + 3600, false), &mut jar)
            .await
            .unwrap();
        let jar = jar.next_request();
        jar.names()
            .into_iter()
            .map(|n| {
                let v = jar.get(&n).unwrap();
                (n, v)
            })
            .collect()
    }

    async fn read(store: &CachedStateStore, cookies: &[(String, String)]) -> Option<SessionData> {
        let mut jar = MemoryCookieJar::from_request_cookies(cookies.iter().cloned());
        store.get(&mut jar).await.unwrap()
    }
    #[tokio::test]
    async fn cache_hit_returns_the_same_session() {
        let store = session_store(SECRET, "_a0_session");
        let cookies = sealed_cookies(&store, &session(3000)).await;
        assert_eq!(cookies.len(), 2, "the session spans two chunks");
        assert_eq!(read(&store, &cookies).await.unwrap(), session(3000));
        assert_eq!(store.stats(), (0, 1, 1), "first read opens and caches");
        for _ in 0..3 {
            assert_eq!(read(&store, &cookies).await.unwrap(), session(3000));
        }
        assert_eq!(store.stats(), (3, 1, 1), "later reads hit");
        // The shared read hits as well.
        let mut jar = MemoryCookieJar::from_request_cookies(cookies.iter().cloned());
        assert_eq!(*store.read(&mut jar).await.unwrap().unwrap(), session(3000));
        assert_eq!(store.stats().0, 4);
        // Another write is a new value (fresh IV): it misses, opens, and is cached too.
        let again = sealed_cookies(&store, &session(3000)).await;
        assert_ne!(again, cookies);
        assert_eq!(read(&store, &again).await.unwrap(), session(3000));
        assert_eq!(store.stats(), (4, 2, 2));
    }

    #[tokio::test]
    async fn tampered_cookies_never_hit() {
        let store = session_store(SECRET, "_a0_session");
        let cookies = sealed_cookies(&store, &session(3000)).await;
        assert!(read(&store, &cookies).await.is_some());
        let flip = |chunk: usize, at: usize| {
            let mut c = cookies.clone();
            let mut bytes = c[chunk].1.clone().into_bytes();
            // Swap one base64url character for another (stays a valid cookie value).
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            c[chunk].1 = String::from_utf8(bytes).unwrap();
            c
        };
        let last = cookies[1].1.len() - 1;
        let cases = [
            // Same tail (so the same index slot), different bytes: the comparison must catch it.
            flip(0, 100),
            flip(0, 2000),
            flip(1, 10),
            // Different tail: the tag itself.
            flip(1, last),
            flip(1, last - 20),
        ];
        for (i, c) in cases.iter().enumerate() {
            assert!(read(&store, c).await.is_none(), "case {i}");
        }
        // Truncated, extended, and the chunks swapped.
        let mut truncated = cookies.clone();
        truncated[1].1.pop();
        let mut extended = cookies.clone();
        extended[1].1.push('A');
        let swapped = vec![
            (cookies[0].0.clone(), cookies[1].1.clone()),
            (cookies[1].0.clone(), cookies[0].1.clone()),
        ];
        for c in [truncated, extended, swapped] {
            assert!(read(&store, &c).await.is_none());
        }
        let (hits, misses, len) = store.stats();
        assert_eq!((hits, len), (0, 1), "no hit, and failures are never cached");
        assert_eq!(misses, 9);
        // The genuine cookie still hits.
        assert!(read(&store, &cookies).await.is_some());
        assert_eq!(store.stats().0, 1);
    }

    #[tokio::test]
    async fn cache_is_bounded_and_keeps_recently_used_entries() {
        let store = cached(&[SECRET], "_a0_session", 4);
        let mut all = Vec::new();
        for i in 0..4 {
            let c = sealed_cookies(&store, &session(10 + i)).await;
            assert!(read(&store, &c).await.is_some());
            all.push(c);
        }
        assert_eq!(store.stats(), (0, 4, 4));
        // Use the first entry, then add a fifth: CLOCK gives the used one a second chance.
        assert!(read(&store, &all[0]).await.is_some());
        let fifth = sealed_cookies(&store, &session(20)).await;
        assert_eq!(read(&store, &fifth).await.unwrap(), session(20));
        assert_eq!(store.stats(), (1, 5, 4), "still 4 entries");
        assert_eq!(read(&store, &all[0]).await.unwrap(), session(10));
        assert_eq!(store.stats().0, 2, "the used entry survived");
        assert_eq!(read(&store, &all[1]).await.unwrap(), session(11));
        assert_eq!(
            store.stats().0,
            2,
            "the unused one was replaced (and reopened fine)"
        );
        // Many more distinct sessions: never more than the capacity.
        for i in 0..40 {
            let c = sealed_cookies(&store, &session(30 + i)).await;
            assert!(read(&store, &c).await.is_some());
            assert!(store.stats().2 <= 4);
        }
        // Capacity 0 turns the cache off; oversized values are never cached.
        let off = cached(&[SECRET], "_a0_session", 0);
        let c = sealed_cookies(&off, &session(10)).await;
        assert!(read(&off, &c).await.is_some());
        assert!(read(&off, &c).await.is_some());
        assert_eq!(off.stats(), (0, 0, 0));
        let big = session_store(SECRET, "_a0_session");
        let c = sealed_cookies(&big, &session(MAX_CACHED_LEN)).await;
        assert!(read(&big, &c).await.is_some());
        assert_eq!(big.stats().2, 0);
    }

    #[tokio::test]
    async fn stores_with_other_names_or_secrets_share_nothing() {
        let a = session_store(SECRET, "_a0_session");
        let cookies = sealed_cookies(&a, &session(3000)).await;
        assert!(read(&a, &cookies).await.is_some());
        assert!(read(&a, &cookies).await.is_some());
        assert_eq!(a.stats(), (1, 1, 1));
        // Same name, another secret: the cached entry of `a` is not served.
        let other_secret = session_store("another-secret-0123456789abcdef-xyz", "_a0_session");
        assert!(read(&other_secret, &cookies).await.is_none());
        assert_eq!(other_secret.stats(), (0, 1, 0));
        // Same secret, another name, the very same values under that name: different salt.
        let other_name = session_store(SECRET, "app_session");
        let renamed: Vec<(String, String)> = cookies
            .iter()
            .map(|(n, v)| (n.replace("_a0_session", "app_session"), v.clone()))
            .collect();
        assert!(read(&other_name, &renamed).await.is_none());
        assert_eq!(other_name.stats(), (0, 1, 0));
        // A rotated store (new secret first, old one kept) opens the old cookie on its own.
        let rotated = cached(
            &["another-secret-0123456789abcdef-xyz", SECRET],
            "_a0_session",
            16,
        );
        assert_eq!(read(&rotated, &cookies).await.unwrap(), session(3000));
        assert_eq!(rotated.stats(), (0, 1, 1));
        assert_eq!(a.stats(), (1, 1, 1), "`a` was not consulted");
    }

    #[tokio::test]
    async fn expiry_is_still_enforced_on_cache_hits() {
        let client = crate::ServerClient::builder()
            .issuer("https://idp.example.com/")
            .client_id("c")
            .client_auth(crate::ClientAuth::none())
            .secret(SECRET)
            .app_base_url("https://app.example.com")
            .session_absolute_duration(Duration::from_secs(3600))
            .build()
            .unwrap();
        let store = &client.inner.sessions;
        let mut live = session(3000);
        live.internal.created_at = now();
        live.internal.last_active = Some(now());
        let mut expired = live.clone();
        expired.internal.created_at = now() - 7200;
        for (s, alive) in [(live, true), (expired, false)] {
            let mut jar = MemoryCookieJar::default();
            store
                .set(&s, WriteOptions::new(now() + 3600, false), &mut jar)
                .await
                .unwrap();
            let jar = jar.next_request();
            // The store itself returns the document every time (the second time from its cache)…
            for _ in 0..2 {
                assert!(store.get(&mut jar.clone()).await.unwrap().is_some());
            }
            // …and the client still applies the lifetime on every read.
            for _ in 0..2 {
                let mut j = jar.clone();
                assert_eq!(client.get_user(&mut j).await.unwrap().is_some(), alive);
                if !alive {
                    assert!(
                        j.response_cookies().iter().all(|c| c.removed),
                        "an expired session is deleted"
                    );
                }
            }
        }
    }

    #[test]
    fn comparison_looks_at_every_byte() {
        assert!(same_bytes(&["abcde"], b"abcde"));
        for (i, other) in [b"Xbcde", b"abXde", b"abcdX"].iter().enumerate() {
            assert!(!same_bytes(&["abcde"], *other), "difference at {i}");
        }
        assert!(!same_bytes(&["abcde"], b"abcd"));
        assert!(!same_bytes(&["abcde"], b"abcdef"));
    }

    /// A value in pieces (a session's cookie chunks) compares and is indexed as the value they
    /// make up, wherever it is cut; pieces that make up another value never match.
    #[test]
    fn pieces_compare_and_index_as_the_value_they_make_up() {
        let value: String = (0..150).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
        let cache = OpenedCache::new(4);
        cache.insert(&value, &Arc::new(7u8));
        for cut in [0, 1, 63, 64, 86, 87, 100, 149, 150] {
            let (a, b) = value.split_at(cut);
            assert_eq!(cache.get(&[a, b]).as_deref(), Some(&7), "cut at {cut}");
            assert_eq!(
                cache.get(&[a, "", b]).as_deref(),
                Some(&7),
                "empty piece at {cut}"
            );
            assert!(same_bytes(&[a, b], value.as_bytes()));
            let mut buf = [0; INDEX_TAIL_LEN];
            assert_eq!(tail(&[a, b], &mut buf), &value.as_bytes()[150 - INDEX_TAIL_LEN..]);
        }
        let mut buf = [0; INDEX_TAIL_LEN];
        assert_eq!(
            tail(&["ab", "c"], &mut buf),
            b"abc",
            "short values are their own tail"
        );
        let (a, b) = value.split_at(75);
        assert!(cache.get(&[a]).is_none(), "a prefix");
        assert!(cache.get(&[b]).is_none(), "a suffix (same tail)");
        assert!(cache.get(&[b, a]).is_none(), "the pieces swapped");
        assert!(cache.get(&[a, b, "x"]).is_none(), "one byte more");
        assert!(!same_bytes(&[a, b, "x"], value.as_bytes()));
        assert!(!same_bytes(&[a], value.as_bytes()));
    }

    /// Values whose keys hash alike (the same length and last bytes hashed) but differ
    /// earlier in the tail are entries of their own.
    #[test]
    fn keys_that_hash_alike_stay_apart() {
        let tail_only = |c: char| format!("{}{c}{}", "x".repeat(100), "y".repeat(INDEX_HASHED_LEN));
        let (one, two) = (tail_only('1'), tail_only('2'));
        let cache = OpenedCache::new(4);
        cache.insert(&one, &Arc::new(1u8));
        cache.insert(&two, &Arc::new(2u8));
        assert_eq!(cache.get(&[one.as_str()]).as_deref(), Some(&1));
        assert_eq!(cache.get(&[two.as_str()]).as_deref(), Some(&2));
        assert!(cache.get(&[tail_only('3').as_str()]).is_none());
        assert_eq!(cache.stats().2, 2);
    }
}
