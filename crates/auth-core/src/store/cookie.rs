//! Stateless stores: everything sealed into cookies (the default).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{LogoutKey, StateStore, TransactionStore, WriteOptions};
use crate::cookies::{CookieAttributes, CookieJar, read_chunked, remove_chunked, write_chunked};
use crate::error::Result;
use crate::seal::Sealer;
use crate::session::SessionData;
use crate::time::now;
use crate::transaction::{Transaction, is_valid_state};

/// Most chunks a session may span; more means a forged or broken cookie set.
const MAX_CHUNKS: usize = 20;

/// The session sealed into `{name}_0`, `{name}_1`, … cookies.
#[derive(Debug, Clone)]
pub struct CookieStateStore {
    sealer: Arc<Sealer>,
    name: String,
    attributes: CookieAttributes,
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
        let Some(sealed) = read_chunked(&*jar, &self.name, MAX_CHUNKS) else {
            return Ok(None);
        };
        let Some(plain) = self.sealer.open(&self.name, &sealed) else {
            tracing::debug!("session cookie did not open; treating as logged out");
            return Ok(None);
        };
        match serde_json::from_slice::<SessionData>(&plain) {
            Ok(s) => Ok(Some(s)),
            Err(_) => {
                tracing::debug!("session cookie opened but is not a session document");
                Ok(None)
            }
        }
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

/// One sealed cookie per flow in flight, named `{prefix}{state}`.
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
        let attributes = CookieAttributes {
            max_age: Some(max_age),
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
        // Keep at most `max_count` logins in flight: drop unreadable ones, then the oldest.
        let mut existing: Vec<(u64, String)> = jar
            .names()
            .into_iter()
            .filter_map(|name| {
                let state = name.strip_prefix(&self.prefix)?.to_owned();
                let age = if is_valid_state(&state) {
                    self.open(&state, &*jar).map_or(0, |t| t.created_at)
                } else {
                    0
                };
                Some((age, name))
            })
            .collect();
        existing.sort();
        let excess = (existing.len() + 1).saturating_sub(self.max_count);
        for (_, name) in existing.into_iter().take(excess) {
            jar.remove(&name, &self.attributes);
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
        for name in jar.names() {
            if name.starts_with(&self.prefix) {
                jar.remove(&name, &self.attributes);
            }
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
