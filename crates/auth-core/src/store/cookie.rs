//! Stateless stores: everything sealed into cookies (the default). The opened-session cache
//! that spares a protected request the open is a decorator over the session store
//! (`store/cache.rs`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::cache::{Fetched, SealedStore};
use super::{LogoutKey, StateStore, TransactionStore, WriteOptions};
use crate::cookies::{CookieAttributes, CookieJar, read_chunks, remove_chunked, write_chunked};
use crate::error::Result;
use crate::seal::Sealer;
use crate::session::SessionData;
use crate::time::now;
use crate::transaction::{Transaction, is_valid_state};

/// Most cookies a cookie session spans (`{name}_0` … `{name}_19`, each name and value within
/// about 4 KB): a request carrying more is a forged or broken cookie set (no session), and a
/// write that would need more is refused with [`crate::Error::SessionTooLarge`].
pub const MAX_COOKIE_SESSION_CHUNKS: usize = 20;

const MAX_CHUNKS: usize = MAX_COOKIE_SESSION_CHUNKS;

/// The longest sealed session that fits in [`MAX_COOKIE_SESSION_CHUNKS`] cookies named after
/// `name` (what `write_chunked` puts in each).
pub(crate) fn max_sealed_len(name: &str) -> usize {
    (0..MAX_CHUNKS)
        .map(|i| crate::cookies::chunk_capacity(&format!("{name}_{i}")))
        .sum()
}

/// [`crate::Error::SessionTooLarge`] when a session of `json_len` bytes of JSON, once sealed,
/// would be longer than `limit`.
pub(crate) fn ensure_fits(json_len: usize, limit: usize) -> Result<()> {
    let size = crate::seal::Sealer::sealed_len(json_len);
    if size > limit {
        return Err(crate::Error::SessionTooLarge { size, limit });
    }
    Ok(())
}

/// The session sealed into `{name}_0`, `{name}_1`, … cookies.
///
/// Every read opens the cookie; the client wraps the store in the opened-session cache
/// (`store/cache.rs`), which opens each distinct value once.
#[derive(Debug, Clone)]
pub struct CookieStateStore {
    sealer: Arc<Sealer>,
    name: String,
    attributes: CookieAttributes,
}

impl CookieStateStore {
    /// A store sealing with `secrets` (first seals, all open) into cookies named
    /// `{name}_0`, `{name}_1`, … with `attributes` (`max_age` is set per write).
    #[cfg(any(test, feature = "internal"))]
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
        }
    }
}

#[async_trait]
impl SealedStore for CookieStateStore {
    async fn fetch(&self, jar: &mut dyn CookieJar) -> Result<Option<Fetched>> {
        Ok(read_chunks(&*jar, &self.name, MAX_CHUNKS).map(Fetched::pieces))
    }

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
        Ok(self
            .fetch(jar)
            .await?
            .and_then(|sealed| self.open(&sealed.joined())))
    }

    async fn set(&self, session: &SessionData, options: WriteOptions, jar: &mut dyn CookieJar) -> Result<()> {
        let json = serde_json::to_vec(session)
            .map_err(|e| crate::error::StoreError::with_source("serializing the session", e))?;
        // Refused before anything is written: more chunks than a read accepts would be a
        // silent logout.
        ensure_fits(json.len(), max_sealed_len(&self.name))?;
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
pub(crate) struct CookieTransactionStore {
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
pub(super) mod tests {
    use std::sync::atomic::Ordering;

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

    pub(crate) fn session(size: usize) -> SessionData {
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
            app_data: Map::new(),
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
