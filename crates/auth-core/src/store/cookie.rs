//! Stateless stores: everything sealed into cookies (the default).
//!
//! # The opened-session cache
//!
//! Opening a session cookie costs about 16 µs for a typical 3.2 KB session (HMAC-SHA512 over
//! the ~4.4 KB sealed value, base64, AES-CBC, then JSON parsing; `benches/core.rs`), and a
//! protected route would pay it on every request although a browser sends the same cookie
//! again and again. So
//! [`CookieStateStore`] keeps a small bounded cache of sessions it has already opened, keyed
//! by the exact cookie value:
//!
//! - **A hit needs the exact same bytes.** Each entry keeps the joined cookie value it was
//!   opened from, and a lookup compares the whole presented value with it, every byte, in a
//!   loop without an early exit (so the time taken does not tell how many leading bytes of a
//!   cached cookie a guess got right). A different, truncated, re-chunked or tampered cookie
//!   can never hit: exact equality is stronger than equality of a digest. (A SHA-256 digest
//!   as the key would cost ~2.9 µs over 4.4 KB even with SHA-NI; the byte comparison costs a
//!   few hundred nanoseconds.) Entries are found through a keyed SipHash (a per-cache random
//!   key) of the value's length and last 64 bytes, which hold the value's authentication tag.
//! - **Only successes are stored.** A value enters the cache only after it opened (authentic
//!   for one of this store's secrets) and parsed as a session document; failures are never
//!   cached, so a bad cookie costs a full open every time, as before.
//! - **Why serving a cached entry is sound.** Opening is a pure function of the cookie bytes
//!   and the store's fixed secrets and name (the seal salt): the same bytes open to the same
//!   document every time. A changed session (refresh, rolling touch, new login) is re-sealed
//!   with a fresh random IV, so it has a different value and misses. Each store has its own
//!   cache (clones of a store share it), so stores with other names or secrets never see each
//!   other's entries; with rotated secrets a new store is built, and a cookie sealed with an
//!   old secret is still the same bytes that opened under this store's secrets.
//! - **Policy stays per request.** The cache sits below [`crate::ServerClient`]: expiry
//!   (absolute and inactivity), the back-channel logout list and the rolling touch are checked
//!   on the returned document on every request, hit or miss. Logout deletes the cookie and
//!   puts the session's `sid` on the logout list; an entry left behind is reachable only with
//!   those exact bytes (a copy of the cookie), which the logout list then refuses, cache hit or
//!   not, and it ages out.
//! - **Bounded.** At most [`SESSION_CACHE_CAPACITY`] entries, replaced by the CLOCK
//!   (second-chance) policy; values over [`MAX_CACHED_COOKIE_LEN`] bytes are never cached, so
//!   the cache holds at most a few tens of MiB even when full of maximal sessions.
//! - **Cheap.** One `std::sync::Mutex` held only for a hash-map probe and an `Arc` clone; the
//!   comparison and the copy of the document handed out happen outside it. A hit costs
//!   about 3 µs in all (joining the chunks and copying the document out included). A miss
//!   costs 4–7 µs more than no cache at all (the copy kept in the cache, and freeing the
//!   entry it replaces), so the cache pays off from a hit rate of a quarter to a third; a server
//!   that sees more than [`SESSION_CACHE_CAPACITY`] other sessions between two requests of
//!   the same browser mostly misses.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;

use super::{LogoutKey, StateStore, TransactionStore, WriteOptions};
use crate::cookies::{Chunks, CookieAttributes, CookieJar, read_chunks, remove_chunked, write_chunked};
use crate::error::Result;
use crate::seal::Sealer;
use crate::session::SessionData;
use crate::time::now;
use crate::transaction::{Transaction, is_valid_state};

/// Most chunks a session may span; more means a forged or broken cookie set.
const MAX_CHUNKS: usize = 20;

/// How many opened sessions a [`CookieStateStore`] keeps (see the module docs).
pub(crate) const SESSION_CACHE_CAPACITY: usize = 1024;

/// Joined cookie values longer than this are opened every time, never cached.
pub(crate) const MAX_CACHED_COOKIE_LEN: usize = 16 * 1024;

/// How many trailing bytes of a value (which hold its authentication tag) key the index.
const INDEX_TAIL_LEN: usize = 64;

/// The session sealed into `{name}_0`, `{name}_1`, … cookies.
///
/// Sessions already opened are served from a small bounded cache (1024 entries) keyed by the
/// exact cookie value: a read hits only when every byte of the presented value equals a value
/// that opened and parsed before, failures are never cached, and the client still checks
/// expiry and logout on every read. Opening is a pure function of the cookie bytes and the
/// store's fixed secrets and name, so a hit returns exactly what opening would.
#[derive(Debug, Clone)]
pub struct CookieStateStore {
    sealer: Arc<Sealer>,
    name: String,
    attributes: CookieAttributes,
    cache: Arc<OpenedCache>,
}

impl CookieStateStore {
    /// A store sealing with `secrets` (first seals, all open) into cookies named
    /// `{name}_0`, `{name}_1`, … with `attributes` (`max_age` is set per write).
    #[must_use]
    pub fn new(secrets: &[impl AsRef<str>], name: &str, attributes: CookieAttributes) -> Self {
        Self::with_sealer(
            Arc::new(Sealer::with_pinned_salts(secrets, &[name])),
            name.to_owned(),
            attributes,
        )
    }

    pub(crate) fn with_sealer(sealer: Arc<Sealer>, name: String, attributes: CookieAttributes) -> Self {
        Self {
            sealer,
            name,
            attributes,
            cache: Arc::new(OpenedCache::new(SESSION_CACHE_CAPACITY)),
        }
    }

    /// The same store with its own, empty cache of `capacity` entries (0 turns it off).
    pub(crate) fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache = Arc::new(OpenedCache::new(capacity));
        self
    }

    /// Counters of the opened-session cache: `(hits, misses, entries)`.
    pub(crate) fn cache_stats(&self) -> (u64, u64, usize) {
        self.cache.stats()
    }

    /// Opens and parses a joined cookie value, without the cache.
    fn open(&self, sealed: &str) -> Option<SessionData> {
        let Some(plain) = self.sealer.open(&self.name, sealed) else {
            tracing::debug!("session cookie did not open; treating as logged out");
            return None;
        };
        match serde_json::from_slice::<SessionData>(&plain) {
            Ok(s) => Some(s),
            Err(_) => {
                tracing::debug!("session cookie opened but is not a session document");
                None
            }
        }
    }
}

/// A cached session and the exact cookie value it was opened from.
struct CachedSession {
    cookie: Box<str>,
    session: Arc<SessionData>,
}

/// One cache slot: its index key, the entry, and the CLOCK reference bit.
struct Slot {
    key: u64,
    entry: Arc<CachedSession>,
    referenced: bool,
}

/// The slots and their index, behind the cache's lock.
#[derive(Default)]
struct CacheSlots {
    /// Index key → position in `slots`; every slot's key is in here exactly once.
    index: HashMap<u64, usize>,
    slots: Vec<Slot>,
    /// The CLOCK hand: the next slot considered for replacement.
    hand: usize,
}

/// Bounded cache of opened sessions by exact cookie value (see the module docs).
struct OpenedCache {
    capacity: usize,
    /// Keyed with per-cache random keys, so nobody can aim values at one index key.
    hasher: RandomState,
    slots: Mutex<CacheSlots>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for OpenedCache {
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

impl OpenedCache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            hasher: RandomState::new(),
            slots: Mutex::new(CacheSlots::default()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheSlots> {
        // Nothing panics while the lock is held; a poisoned lock still holds consistent slots.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cacheable(&self, len: usize) -> bool {
        self.capacity > 0 && len <= MAX_CACHED_COOKIE_LEN
    }

    /// Index key: keyed hash of the length and the tail (authentication tag) of a value.
    fn key(&self, len: usize, tail: &[u8]) -> u64 {
        self.hasher.hash_one((len, tail))
    }

    /// The session opened earlier from exactly the joined `value`, if cached.
    fn get(&self, value: &Chunks<'_>) -> Option<Arc<SessionData>> {
        if !self.cacheable(value.len()) {
            return None;
        }
        let key = self.key(value.len(), &value.tail(INDEX_TAIL_LEN));
        let entry = {
            let mut g = self.lock();
            let pos = g.index.get(&key).copied();
            pos.and_then(|i| g.slots.get_mut(i)).map(|slot| {
                slot.referenced = true;
                Arc::clone(&slot.entry)
            })
        };
        match entry {
            Some(e) if value.same_bytes(e.cookie.as_bytes()) => {
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
    fn insert(&self, value: &str, session: &Arc<SessionData>) {
        if !self.cacheable(value.len()) {
            return;
        }
        let bytes = value.as_bytes();
        let key = self.key(bytes.len(), &bytes[bytes.len().saturating_sub(INDEX_TAIL_LEN)..]);
        let slot = Slot {
            key,
            entry: Arc::new(CachedSession {
                cookie: value.into(),
                session: Arc::clone(session),
            }),
            referenced: false,
        };
        // The replaced entry is dropped after the lock is released.
        let _replaced = {
            let mut g = self.lock();
            let g = &mut *g;
            if let Some(&i) = g.index.get(&key) {
                // Same key: the same value opened concurrently, or (2^-64) another value.
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

    fn stats(&self) -> (u64, u64, usize) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            self.lock().slots.len(),
        )
    }
}

/// Cookie attributes with `Max-Age` counting down to `expires_at`.
pub(crate) fn until(attributes: &CookieAttributes, expires_at: u64) -> CookieAttributes {
    let secs = expires_at.saturating_sub(now()).max(1);
    CookieAttributes {
        max_age: Some(Duration::from_secs(secs)),
        ..attributes.clone()
    }
}

#[async_trait]
impl StateStore for CookieStateStore {
    async fn get(&self, jar: &mut dyn CookieJar) -> Result<Option<SessionData>> {
        Ok(self.get_shared(jar).await?.map(Arc::unwrap_or_clone))
    }

    async fn get_shared(&self, jar: &mut dyn CookieJar) -> Result<Option<Arc<SessionData>>> {
        let sealed = {
            let Some(chunks) = read_chunks(&*jar, &self.name, MAX_CHUNKS) else {
                return Ok(None);
            };
            if let Some(s) = self.cache.get(&chunks) {
                return Ok(Some(s));
            }
            let Some(joined) = chunks.join() else {
                return Ok(None);
            };
            joined
        };
        let opened = self.open(&sealed).map(Arc::new);
        if let Some(s) = &opened {
            self.cache.insert(&sealed, s);
        }
        Ok(opened)
    }

    fn get_at_hand(&self, jar: &dyn CookieJar) -> Option<Arc<SessionData>> {
        self.cache.get(&read_chunks(jar, &self.name, MAX_CHUNKS)?)
    }

    async fn set(&self, session: &SessionData, options: WriteOptions, jar: &mut dyn CookieJar) -> Result<()> {
        let json = serde_json::to_vec(session)
            .map_err(|e| crate::error::StoreError::with_source("serializing the session", e))?;
        let sealed = self.sealer.seal(&self.name, &json);
        write_chunked(
            jar,
            &self.name,
            &sealed,
            &until(&self.attributes, options.expires_at),
        );
        Ok(())
    }

    async fn delete(&self, jar: &mut dyn CookieJar) -> Result<()> {
        remove_chunked(jar, &self.name, &self.attributes);
        Ok(())
    }

    async fn delete_by_logout(&self, _key: &LogoutKey) -> Result<Option<usize>> {
        Ok(None)
    }
}

/// Transaction cookies looked at per request beyond the logins allowed in flight.
const EXTRA_TRANSACTIONS_LOOKED_AT: usize = 4;

/// One sealed cookie per flow in flight, named `{prefix}{state}`.
///
/// The cookies are `SameSite=None` whenever they are `Secure` (so a `response_mode=form_post`
/// callback, a cross-site POST, carries them), `SameSite=Lax` otherwise. However many such
/// cookies a request carries, a login opens and removes at most `max_transactions` + 4 of
/// them, and a logout removes at most that many.
#[derive(Debug, Clone)]
pub struct CookieTransactionStore {
    sealer: Arc<Sealer>,
    prefix: String,
    attributes: CookieAttributes,
    max_age: Duration,
    max_count: usize,
}

impl CookieTransactionStore {
    pub(crate) fn new(
        sealer: Arc<Sealer>,
        prefix: String,
        attributes: CookieAttributes,
        max_age: Duration,
        max_count: usize,
    ) -> Self {
        // A `response_mode=form_post` callback is a cross-site POST, which carries only
        // `SameSite=None` cookies; browsers accept those only when `Secure`. So transaction
        // cookies are `SameSite=None` whenever they are `Secure` (the state in the callback,
        // checked against the sealed transaction, is what ties the callback to this browser).
        let same_site = if attributes.secure {
            cookie::SameSite::None
        } else {
            attributes.same_site
        };
        let attributes = CookieAttributes {
            max_age: Some(max_age),
            same_site,
            ..attributes
        };
        Self {
            sealer,
            prefix,
            attributes,
            max_age,
            max_count,
        }
    }

    fn salt(state: &str) -> String {
        format!("_a0_tx:{state}")
    }

    /// Transaction cookies opened or removed at most per request: every login in flight
    /// (`max_count`) and a few more (unreadable or planted ones), however many the request
    /// carries, so a hostile Cookie header cannot make a login open (decrypt) hundreds.
    fn look_limit(&self) -> usize {
        self.max_count.saturating_add(EXTRA_TRANSACTIONS_LOOKED_AT)
    }

    /// Names of the visible transaction cookies, in the jar's order (one pass over the names).
    fn transaction_names(&self, jar: &dyn CookieJar) -> Vec<String> {
        let mut names = jar.names();
        names.retain(|n| n.starts_with(&self.prefix));
        names
    }

    fn open(&self, state: &str, jar: &dyn CookieJar) -> Option<Transaction> {
        let sealed = jar.get(&format!("{}{state}", self.prefix))?;
        let plain = self.sealer.open(&Self::salt(state), &sealed)?;
        let tx: Transaction = serde_json::from_slice(&plain).ok()?;
        // The sealed state must be the one in the name: a renamed cookie does not count.
        (tx.state == state).then_some(tx)
    }
}

#[async_trait]
impl TransactionStore for CookieTransactionStore {
    async fn set(&self, tx: &Transaction, jar: &mut dyn CookieJar) -> Result<()> {
        // Keep at most `max_count` logins in flight: drop the oldest readable ones beyond
        // that, and unreadable ones, opening and removing a bounded number of cookies
        // whatever the request carries.
        let existing = self.transaction_names(&*jar);
        let keep = self.max_count.saturating_sub(1);
        if existing.len() > keep {
            // Browsers send older cookies of the same path first: the newest are last. Only
            // those are opened for their age; older ones count as unreadable.
            let opened_from = existing.len().saturating_sub(self.look_limit());
            let mut readable: Vec<(u64, usize)> = Vec::new();
            let mut unreadable: Vec<usize> = Vec::new();
            for (position, name) in existing.iter().enumerate() {
                let opened = match name.strip_prefix(&self.prefix) {
                    Some(state) if position >= opened_from && is_valid_state(state) => {
                        self.open(state, &*jar)
                    }
                    _ => None,
                };
                match opened {
                    Some(t) => readable.push((t.created_at, position)),
                    None => unreadable.push(position),
                }
            }
            // Newest first; the ones past `keep` go, then the unreadable ones, oldest first.
            readable.sort_unstable_by(|a, b| b.cmp(a));
            let excess = existing.len() - keep;
            let doomed: Vec<usize> = readable
                .iter()
                .skip(keep)
                .map(|&(_, position)| position)
                .chain(unreadable)
                .take(excess.min(self.look_limit()))
                .collect();
            for position in doomed {
                if let Some(name) = existing.get(position) {
                    jar.remove(name, &self.attributes);
                }
            }
        }
        let json = serde_json::to_vec(tx)
            .map_err(|e| crate::error::StoreError::with_source("serializing the transaction", e))?;
        let sealed = self.sealer.seal(&Self::salt(&tx.state), &json);
        jar.set(&format!("{}{}", self.prefix, tx.state), &sealed, &self.attributes);
        Ok(())
    }

    async fn get(&self, state: &str, jar: &mut dyn CookieJar) -> Result<Option<Transaction>> {
        if !is_valid_state(state) {
            return Ok(None);
        }
        Ok(self
            .open(state, &*jar)
            .filter(|tx| now() <= tx.created_at.saturating_add(self.max_age.as_secs())))
    }

    async fn delete(&self, state: &str, jar: &mut dyn CookieJar) -> Result<()> {
        if is_valid_state(state) {
            jar.remove(&format!("{}{state}", self.prefix), &self.attributes);
        }
        Ok(())
    }

    async fn delete_all(&self, jar: &mut dyn CookieJar) -> Result<()> {
        // The newest ones (last in the header), at most `look_limit` per request: every real
        // login in flight, and a bounded response whatever else the request carries.
        let names = self.transaction_names(&*jar);
        let from = names.len().saturating_sub(self.look_limit());
        for name in &names[from..] {
            jar.remove(name, &self.attributes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, json};

    use super::*;
    use crate::cookies::MemoryCookieJar;
    use crate::secret::SecretString;
    use crate::session::{Internal, TokenSet};
    use crate::transaction::TransactionKind;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn sealer(secrets: &[&str]) -> Arc<Sealer> {
        Arc::new(Sealer::with_pinned_salts(secrets, &["_a0_session"]))
    }

    fn tx(state: &str, created_at: u64) -> Transaction {
        Transaction {
            kind: TransactionKind::Login,
            state: state.into(),
            nonce: "nonce".into(),
            code_verifier: SecretString::new("verifier"),
            redirect_uri: "https://app/cb".into(),
            audience: None,
            scope: "openid".into(),
            app_state: Some(json!({"returnTo": "/x"})),
            max_age: None,
            organization: None,
            auth_session: None,
            session_sub: None,
            created_at,
        }
    }

    fn tx_store(max: usize) -> CookieTransactionStore {
        CookieTransactionStore::new(
            sealer(&[SECRET]),
            "_a0_tx_".into(),
            CookieAttributes::default(),
            Duration::from_secs(600),
            max,
        )
    }

    fn state(i: usize) -> String {
        format!("state-{i:02}-abcdefghijklmnop")
    }

    #[tokio::test]
    async fn transactions_are_per_state_capped_and_expire() {
        let store = tx_store(3);
        let mut jar = MemoryCookieJar::default();
        for i in 0..5 {
            store
                .set(&tx(&state(i), now() - 100 + i as u64), &mut jar)
                .await
                .unwrap();
        }
        // The two oldest were dropped; the three newest remain, each in its own cookie.
        let mut jar = jar.next_request();
        assert!(store.get(&state(0), &mut jar).await.unwrap().is_none());
        assert!(store.get(&state(1), &mut jar).await.unwrap().is_none());
        for i in 2..5 {
            let t = store.get(&state(i), &mut jar).await.unwrap().unwrap();
            assert_eq!(t.app_state, Some(json!({"returnTo": "/x"})));
        }
        let c = jar.response_cookies();
        assert!(c.is_empty(), "reads write nothing");
        store.delete(&state(3), &mut jar).await.unwrap();
        assert!(store.get(&state(3), &mut jar).await.unwrap().is_none());
        let removed = jar.response_cookies();
        assert_eq!(removed.len(), 1);
        assert!(removed[0].removed && removed[0].name == format!("_a0_tx_{}", state(3)));

        // Expired by our own clock even if the browser kept the cookie.
        let mut jar = MemoryCookieJar::default();
        store.set(&tx(&state(7), now() - 601), &mut jar).await.unwrap();
        assert!(store.get(&state(7), &mut jar).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn transaction_cookie_is_bound_to_its_state() {
        let store = tx_store(5);
        let mut jar = MemoryCookieJar::default();
        store.set(&tx(&state(1), now()), &mut jar).await.unwrap();
        let sealed = jar.get(&format!("_a0_tx_{}", state(1))).unwrap();
        // Same sealed value under another state's name: does not open (salt and state differ).
        let mut forged = MemoryCookieJar::from_request_cookies([(format!("_a0_tx_{}", state(2)), sealed)]);
        assert!(store.get(&state(2), &mut forged).await.unwrap().is_none());
        // Hostile state values never become cookie names.
        for bad in [
            "",
            "short",
            "../../etc",
            "a b c d e f g h i j k l",
            &"x".repeat(200),
        ] {
            assert!(store.get(bad, &mut jar).await.unwrap().is_none());
        }
        let attrs = &jar.response_cookies()[0].attributes;
        assert_eq!(attrs.max_age, Some(Duration::from_secs(600)));
        assert!(attrs.http_only);
    }

    /// A jar that counts the reads of transaction cookies (each one a decryption attempt).
    struct CountingJar {
        inner: MemoryCookieJar,
        tx_reads: std::sync::atomic::AtomicUsize,
    }

    impl CookieJar for CountingJar {
        fn get(&self, name: &str) -> Option<String> {
            if name.starts_with("_a0_tx_") {
                self.tx_reads.fetch_add(1, Ordering::Relaxed);
            }
            self.inner.get(name)
        }
        fn names(&self) -> Vec<String> {
            self.inner.names()
        }
        fn set(&mut self, name: &str, value: &str, attributes: &CookieAttributes) {
            self.inner.set(name, value, attributes);
        }
        fn remove(&mut self, name: &str, attributes: &CookieAttributes) {
            self.inner.remove(name, attributes);
        }
    }

    /// `n` planted transaction cookies with well-formed sealed values that do not open here,
    /// named so that they sort (and so are sent) before the `state(i)` ones.
    fn planted(n: usize) -> Vec<(String, String)> {
        let other = sealer(&["another-secret-0123456789abcdef-0123"]);
        (0..n)
            .map(|i| {
                let state = format!("planted-{i:04}-abcdefghijkl");
                let value = other.seal(&CookieTransactionStore::salt(&state), b"{}");
                (format!("_a0_tx_{state}"), value)
            })
            .collect()
    }

    #[tokio::test]
    async fn hostile_transaction_cookies_cost_a_bounded_number_of_opens_and_removals() {
        let store = tx_store(3);
        let limit = store.look_limit();
        // Two real logins in flight (sent last, as the newest), after 300 planted cookies.
        let mut real = MemoryCookieJar::default();
        for i in 1..=2 {
            store
                .set(&tx(&state(i), now() - 10 + i as u64), &mut real)
                .await
                .unwrap();
        }
        let mut cookies = planted(300);
        cookies.extend(
            real.next_request()
                .names()
                .into_iter()
                .map(|n| (n.clone(), real.get(&n).unwrap())),
        );
        let mut jar = CountingJar {
            inner: MemoryCookieJar::from_request_cookies(cookies),
            tx_reads: std::sync::atomic::AtomicUsize::new(0),
        };
        store.set(&tx(&state(3), now()), &mut jar).await.unwrap();
        let reads = jar.tx_reads.load(Ordering::Relaxed);
        assert!(
            reads <= limit,
            "{reads} transaction cookies opened (at most {limit})"
        );
        let removed: Vec<String> = jar
            .inner
            .response_cookies()
            .into_iter()
            .filter(|c| c.removed)
            .map(|c| c.name)
            .collect();
        assert!(
            !removed.is_empty() && removed.len() <= limit,
            "{} removed",
            removed.len()
        );
        assert!(removed.iter().all(|n| n.contains("planted")), "{removed:?}");
        // The real logins and the new one are all still readable.
        let mut next = jar.inner.next_request();
        for i in 1..=3 {
            assert!(store.get(&state(i), &mut next).await.unwrap().is_some(), "{i}");
        }

        // Over the limit with readable ones: the oldest readable goes even among hundreds.
        let mut jar = next;
        store.set(&tx(&state(4), now() + 1), &mut jar).await.unwrap();
        let mut next = jar.next_request();
        assert!(
            store.get(&state(1), &mut next).await.unwrap().is_none(),
            "oldest dropped"
        );
        for i in 2..=4 {
            assert!(store.get(&state(i), &mut next).await.unwrap().is_some(), "{i}");
        }

        // Logout removes a bounded number too, the newest (real) ones included.
        let mut jar = next;
        store.delete_all(&mut jar).await.unwrap();
        let removed: Vec<String> = jar
            .response_cookies()
            .into_iter()
            .filter(|c| c.removed)
            .map(|c| c.name)
            .collect();
        assert!(removed.len() <= limit, "{} removed", removed.len());
        for i in 2..=4 {
            assert!(removed.contains(&format!("_a0_tx_{}", state(i))), "{removed:?}");
        }
    }

    #[tokio::test]
    async fn no_transaction_cookie_is_opened_below_the_limit() {
        let store = tx_store(5);
        let mut real = MemoryCookieJar::default();
        for i in 1..=3 {
            store.set(&tx(&state(i), now()), &mut real).await.unwrap();
        }
        let next = real.next_request();
        let mut jar = CountingJar {
            inner: next,
            tx_reads: std::sync::atomic::AtomicUsize::new(0),
        };
        store.set(&tx(&state(4), now()), &mut jar).await.unwrap();
        assert_eq!(jar.tx_reads.load(Ordering::Relaxed), 0);
        assert!(jar.inner.response_cookies().iter().all(|c| !c.removed));
    }

    #[tokio::test]
    async fn secure_transaction_cookies_are_same_site_none_for_form_post() {
        let secure = CookieTransactionStore::new(
            sealer(&[SECRET]),
            "_a0_tx_".into(),
            CookieAttributes {
                secure: true,
                ..CookieAttributes::default()
            },
            Duration::from_secs(600),
            5,
        );
        let mut jar = MemoryCookieJar::default();
        secure.set(&tx(&state(1), now()), &mut jar).await.unwrap();
        let written = &jar.response_cookies()[0];
        assert_eq!(written.attributes.same_site, cookie::SameSite::None);
        assert!(written.attributes.secure);
        let header = written
            .attributes
            .to_cookie(&written.name, &written.value)
            .to_string();
        assert!(
            header.contains("SameSite=None") && header.contains("Secure"),
            "{header}"
        );
        // Without Secure (plain http), browsers would drop SameSite=None: Lax as before.
        let mut jar = MemoryCookieJar::default();
        tx_store(5).set(&tx(&state(1), now()), &mut jar).await.unwrap();
        assert_eq!(
            jar.response_cookies()[0].attributes.same_site,
            cookie::SameSite::Lax
        );
    }

    fn session(size: usize) -> SessionData {
        SessionData {
            user: serde_json::from_value(json!({"sub": "u1", "blob": "x".repeat(size)})).unwrap(),
            id_token: Some(SecretString::new("id.token.here")),
            refresh_token: Some(SecretString::new("rt")),
            token_sets: vec![TokenSet {
                audience: "default".into(),
                access_token: SecretString::new("at"),
                scope: Some("openid".into()),
                expires_at: 1,
                extra: Map::new(),
            }],
            connection_token_sets: vec![],
            internal: Internal {
                sid: "sid".into(),
                created_at: 1,
                last_active: None,
                extra: Map::new(),
            },
            extra: Map::new(),
        }
    }

    #[tokio::test]
    async fn session_round_trip_chunks_and_rotation() {
        let old = CookieStateStore::with_sealer(
            sealer(&["old-secret-0123456789abcdef-012345"]),
            "_a0_session".into(),
            CookieAttributes::default(),
        );
        let mut jar = MemoryCookieJar::default();
        old.set(&session(9000), WriteOptions::new(now() + 3600, false), &mut jar)
            .await
            .unwrap();
        let mut jar = jar.next_request();
        let names = jar.names();
        assert!(
            names.iter().filter(|n| n.starts_with("_a0_session_")).count() >= 3,
            "{names:?}"
        );
        // Rotated: the new secret first, the old one still opens.
        let rotated = CookieStateStore::with_sealer(
            sealer(&[SECRET, "old-secret-0123456789abcdef-012345"]),
            "_a0_session".into(),
            CookieAttributes::default(),
        );
        let s = rotated.get(&mut jar).await.unwrap().unwrap();
        assert_eq!(s, session(9000));
        // Shrinking rewrites with the new secret and removes the stale chunks.
        rotated
            .set(&session(10), WriteOptions::new(now() + 3600, false), &mut jar)
            .await
            .unwrap();
        let mut jar = jar.next_request();
        assert_eq!(
            jar.names()
                .iter()
                .filter(|n| n.starts_with("_a0_session_"))
                .count(),
            1
        );
        assert!(
            old.get(&mut jar).await.unwrap().is_none(),
            "sealed with the new secret now"
        );
        assert_eq!(rotated.get(&mut jar).await.unwrap().unwrap(), session(10));
        rotated.delete(&mut jar).await.unwrap();
        assert!(rotated.get(&mut jar).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_reference_vector_is_a_session() {
        let vector = "eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2Q0JDLUhTNTEyIn0..iEB0BhmzqazDtwK7y7xdiw.OWdw33f_3QrZbeD37OYfsJJPWa4YmBzjrldsThB7Sh3KxNNJF-lZgEtP-7k4bhFCw7QBV61A-GsV69Fwciq3d3sxBNi9d1bhizrqZ6brK6Vhu_8zth_vU_HzX0LWp6Mw.9aPoDaiCqZyLIjlSUtAeCilR9Aitb15JlZovk2OZffA";
        let store = CookieStateStore::with_sealer(
            sealer(&[SECRET]),
            "_a0_session".into(),
            CookieAttributes::default(),
        );
        let mut jar = MemoryCookieJar::from_request_cookies([("_a0_session_0", vector)]);
        let s = store
            .get(&mut jar)
            .await
            .unwrap()
            .expect("the Python SDK's cookie opens");
        assert_eq!(s.user()["sub"], "auth0|123");
        assert_eq!(s.sid(), "abc");
    }

    fn session_store(secret: &str, name: &str) -> CookieStateStore {
        CookieStateStore::new(&[secret], name, CookieAttributes::default())
    }

    /// The request cookies of `store`'s write of `s`, as `(name, value)` pairs.
    async fn sealed_cookies(store: &CookieStateStore, s: &SessionData) -> Vec<(String, String)> {
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

    async fn read(store: &CookieStateStore, cookies: &[(String, String)]) -> Option<SessionData> {
        let mut jar = MemoryCookieJar::from_request_cookies(cookies.iter().cloned());
        store.get(&mut jar).await.unwrap()
    }

    #[tokio::test]
    async fn cache_hit_returns_the_same_session() {
        let store = session_store(SECRET, "_a0_session");
        let cookies = sealed_cookies(&store, &session(3000)).await;
        assert_eq!(cookies.len(), 2, "the session spans two chunks");
        assert_eq!(read(&store, &cookies).await.unwrap(), session(3000));
        assert_eq!(store.cache_stats(), (0, 1, 1), "first read opens and caches");
        for _ in 0..3 {
            assert_eq!(read(&store, &cookies).await.unwrap(), session(3000));
        }
        assert_eq!(store.cache_stats(), (3, 1, 1), "later reads hit");
        // Clones of a store share its cache.
        assert_eq!(read(&store.clone(), &cookies).await.unwrap(), session(3000));
        assert_eq!(store.cache_stats().0, 4);
        // Another write is a new value (fresh IV): it misses, opens, and is cached too.
        let again = sealed_cookies(&store, &session(3000)).await;
        assert_ne!(again, cookies);
        assert_eq!(read(&store, &again).await.unwrap(), session(3000));
        assert_eq!(store.cache_stats(), (4, 2, 2));
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
        let (hits, misses, len) = store.cache_stats();
        assert_eq!((hits, len), (0, 1), "no hit, and failures are never cached");
        assert_eq!(misses, 9);
        // The genuine cookie still hits.
        assert!(read(&store, &cookies).await.is_some());
        assert_eq!(store.cache_stats().0, 1);
    }

    #[tokio::test]
    async fn cache_is_bounded_and_keeps_recently_used_entries() {
        let store = session_store(SECRET, "_a0_session").with_cache_capacity(4);
        let mut all = Vec::new();
        for i in 0..4 {
            let c = sealed_cookies(&store, &session(10 + i)).await;
            assert!(read(&store, &c).await.is_some());
            all.push(c);
        }
        assert_eq!(store.cache_stats(), (0, 4, 4));
        // Use the first entry, then add a fifth: CLOCK gives the used one a second chance.
        assert!(read(&store, &all[0]).await.is_some());
        let fifth = sealed_cookies(&store, &session(20)).await;
        assert_eq!(read(&store, &fifth).await.unwrap(), session(20));
        assert_eq!(store.cache_stats(), (1, 5, 4), "still 4 entries");
        assert_eq!(read(&store, &all[0]).await.unwrap(), session(10));
        assert_eq!(store.cache_stats().0, 2, "the used entry survived");
        assert_eq!(read(&store, &all[1]).await.unwrap(), session(11));
        assert_eq!(
            store.cache_stats().0,
            2,
            "the unused one was replaced (and reopened fine)"
        );
        // Many more distinct sessions: never more than the capacity.
        for i in 0..40 {
            let c = sealed_cookies(&store, &session(30 + i)).await;
            assert!(read(&store, &c).await.is_some());
            assert!(store.cache_stats().2 <= 4);
        }
        // Capacity 0 turns the cache off; oversized values are never cached.
        let off = session_store(SECRET, "_a0_session").with_cache_capacity(0);
        let c = sealed_cookies(&off, &session(10)).await;
        assert!(read(&off, &c).await.is_some());
        assert!(read(&off, &c).await.is_some());
        assert_eq!(off.cache_stats(), (0, 0, 0));
        let big = session_store(SECRET, "_a0_session");
        let c = sealed_cookies(&big, &session(MAX_CACHED_COOKIE_LEN)).await;
        assert!(read(&big, &c).await.is_some());
        assert_eq!(big.cache_stats().2, 0);
    }

    #[tokio::test]
    async fn stores_with_other_names_or_secrets_share_nothing() {
        let a = session_store(SECRET, "_a0_session");
        let cookies = sealed_cookies(&a, &session(3000)).await;
        assert!(read(&a, &cookies).await.is_some());
        assert!(read(&a, &cookies).await.is_some());
        assert_eq!(a.cache_stats(), (1, 1, 1));
        // Same name, another secret: the cached entry of `a` is not served.
        let other_secret = session_store("another-secret-0123456789abcdef-xyz", "_a0_session");
        assert!(read(&other_secret, &cookies).await.is_none());
        assert_eq!(other_secret.cache_stats(), (0, 1, 0));
        // Same secret, another name, the very same values under that name: different salt.
        let other_name = session_store(SECRET, "app_session");
        let renamed: Vec<(String, String)> = cookies
            .iter()
            .map(|(n, v)| (n.replace("_a0_session", "app_session"), v.clone()))
            .collect();
        assert!(read(&other_name, &renamed).await.is_none());
        assert_eq!(other_name.cache_stats(), (0, 1, 0));
        // A rotated store (new secret first, old one kept) opens the old cookie on its own.
        let rotated = CookieStateStore::new(
            &["another-secret-0123456789abcdef-xyz", SECRET],
            "_a0_session",
            CookieAttributes::default(),
        );
        assert_eq!(read(&rotated, &cookies).await.unwrap(), session(3000));
        assert_eq!(rotated.cache_stats(), (0, 1, 1));
        assert_eq!(a.cache_stats(), (1, 1, 1), "`a` was not consulted");
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

    #[tokio::test]
    async fn broken_cookies_are_no_session() {
        let store = CookieStateStore::with_sealer(
            sealer(&[SECRET]),
            "_a0_session".into(),
            CookieAttributes::default(),
        );
        let mut jar = MemoryCookieJar::default();
        store
            .set(&session(9000), WriteOptions::new(now() + 3600, false), &mut jar)
            .await
            .unwrap();
        let good = jar.next_request();
        let cookies: Vec<(String, String)> = good
            .names()
            .into_iter()
            .map(|n| {
                let v = good.get(&n).unwrap();
                (n, v)
            })
            .collect();
        // Missing middle chunk.
        let mut j = MemoryCookieJar::from_request_cookies(
            cookies.iter().filter(|(n, _)| n != "_a0_session_1").cloned(),
        );
        assert!(store.get(&mut j).await.unwrap().is_none());
        // Truncated last chunk.
        let mut t = cookies.clone();
        let last = t.iter_mut().max_by_key(|(n, _)| n.clone()).unwrap();
        last.1.truncate(last.1.len() / 2);
        assert!(
            store
                .get(&mut MemoryCookieJar::from_request_cookies(t))
                .await
                .unwrap()
                .is_none()
        );
        // Sealed fine, but not a session document.
        let s = Sealer::with_pinned_salts(&[SECRET], &["_a0_session"]);
        let mut j =
            MemoryCookieJar::from_request_cookies([("_a0_session_0", s.seal("_a0_session", b"[1,2,3]"))]);
        assert!(store.get(&mut j).await.unwrap().is_none());
        let mut j = MemoryCookieJar::from_request_cookies([("_a0_session_0", "garbage")]);
        assert!(store.get(&mut j).await.unwrap().is_none());
    }
}
