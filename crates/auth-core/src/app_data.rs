//! Typed access to what a session holds for the application: its app data (one top-level
//! `app_data` object in the session document) and the user's claims, and the error when a
//! value is not of the type asked for.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::client::ServerClient;
use crate::cookies::CookieJar;
use crate::error::{Error, Result, StoreError};
use crate::session::SessionSnapshot;
use crate::store::{MAX_SERVER_SESSION_BYTES, ensure_fits, max_cookie_sealed_len};

/// Where a [`SessionValueError`] happened.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionValueKind {
    /// Reading the app-data value under this key ([`crate::SessionSnapshot::get`]).
    Read {
        /// The app-data key.
        key: String,
    },
    /// Turning a value into JSON to store it under this key.
    Write {
        /// The app-data key.
        key: String,
    },
    /// Reading the user's claims ([`crate::SessionSnapshot::claims`]).
    Claims,
}

/// A value in the session is not of the type the app asked for, or a value to store is not
/// JSON: which key (or the claims), which Rust type, and what did not match — never the value
/// itself, which may be personal data.
///
/// Usually the app's type and the stored data disagree: a field added to the struct that older
/// sessions lack (make it `Option` or `#[serde(default)]`), or a claim the provider does not
/// send for every user.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SessionValueError {
    /// The app-data key or the claims.
    pub kind: SessionValueKind,
    /// The Rust type asked for ([`std::any::type_name`]).
    pub type_name: &'static str,
    /// What did not match, without values (e.g. ``missing field `email` `` or
    /// `invalid type, expected u32`).
    pub reason: String,
}

impl SessionValueError {
    /// The error for a value that did not (de)serialize as a `T`: serde's message is kept
    /// only as far as it names no value (a missing field, the type expected).
    ///
    /// ```
    /// use auth_core::{SessionValueError, SessionValueKind};
    ///
    /// let e = serde_json::from_value::<u32>(serde_json::json!("jane@example.com")).unwrap_err();
    /// let err = SessionValueError::from_serde_error::<u32>(SessionValueKind::Read { key: "age".into() }, &e);
    /// assert_eq!(err.reason, "invalid type, expected u32");
    /// assert!(!err.to_string().contains("jane"));
    /// ```
    #[must_use]
    pub fn from_serde_error<T: ?Sized>(kind: SessionValueKind, error: &serde_json::Error) -> Self {
        Self {
            kind,
            type_name: std::any::type_name::<T>(),
            reason: reason_without_values(&error.to_string()),
        }
    }
}

impl fmt::Display for SessionValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            SessionValueKind::Read { key } => write!(
                f,
                "the session's app data under `{key}` is not a `{}`: {}",
                self.type_name, self.reason
            ),
            SessionValueKind::Write { key } => write!(
                f,
                "the value for the session's app data under `{key}` (a `{}`) cannot be stored as JSON: {}",
                self.type_name, self.reason
            ),
            SessionValueKind::Claims => write!(
                f,
                "the user's claims are not a `{}`: {}",
                self.type_name, self.reason
            ),
        }
    }
}

impl std::error::Error for SessionValueError {}

/// serde's message with any value taken out: `missing field`/`duplicate field` messages name
/// fields of the app's type and are kept; messages of the form `…: <value>, expected <what>`
/// keep their kind and the expectation only; anything else (a custom `Deserialize`'s text,
/// which may quote the data) becomes a fixed phrase.
fn reason_without_values(message: &str) -> String {
    if message.starts_with("missing field `") || message.starts_with("duplicate field `") {
        // `missing field `name``: the name is a field of the app's own type.
        return message.to_owned();
    }
    // The expectation comes last and is written by the type, not taken from the data: the
    // value (which may itself contain ", expected ") always comes before it.
    if let Some(at) = message.rfind(", expected ") {
        let expected = &message[at + 2..];
        let kind = message
            .split([':', ' '])
            .take_while(|w| !w.is_empty() && !w.contains('`') && !w.contains('"'))
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        return if kind.is_empty() {
            expected.to_owned()
        } else {
            format!("{kind}, {expected}")
        };
    }
    "the stored value does not match the type".to_owned()
}

impl ServerClient {
    /// Changes the app data of the current session: reads the session as it is stored now
    /// (tokens and claims of a refresh earlier in the same request included), applies `edit`
    /// to its app data, and writes it back. Returns the changed session, or `None` when there
    /// is no session (any more): nothing is written then.
    ///
    /// The write updates an existing session only; it never creates one. A server-side
    /// session deleted meanwhile (logout, back-channel logout) stays deleted (`None`), and a
    /// cookie session on the logout list is not written back. App data is kept by refreshes,
    /// the rolling touch and token caching, and ends with the session.
    ///
    /// App data travels in the session cookie (or the server-side record) on every request:
    /// keep it small. `auth-axum`'s `Session::set` records changes and the layer applies them
    /// with this method once at the end of the request.
    ///
    /// # Errors
    /// [`Error::SessionTooLarge`] when the changed session would not fit its store (nothing
    /// is written; the stored session is unchanged); store errors.
    ///
    /// ```no_run
    /// # async fn f(client: auth_core::ServerClient, jar: &mut auth_core::cookies::MemoryCookieJar) -> Result<(), auth_core::Error> {
    /// use serde_json::json;
    ///
    /// let updated = client
    ///     .update_app_data(|data| {
    ///         data.insert("theme".into(), json!("dark"));
    ///         data.remove("cart");
    ///     }, jar)
    ///     .await?;
    /// if let Some(session) = updated {
    ///     assert_eq!(session.get::<String>("theme")?.as_deref(), Some("dark"));
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn update_app_data<F>(
        &self,
        edit: F,
        jar: &mut dyn CookieJar,
    ) -> Result<Option<SessionSnapshot>>
    where
        F: FnOnce(&mut Map<String, Value>) + Send,
    {
        let Some(current) = self.load_session(jar).await? else {
            return Ok(None);
        };
        let mut updated = Arc::unwrap_or_clone(current);
        let before = updated.app_data.clone();
        edit(&mut updated.app_data);
        if updated.app_data == before {
            return Ok(Some(SessionSnapshot::from_shared(Arc::new(updated), false)));
        }
        match self.write_session(&updated, false, jar).await {
            Ok(()) => Ok(Some(SessionSnapshot::from_shared(Arc::new(updated), false))),
            // Deleted since it was read: not written back.
            Err(Error::SessionExpired) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether `session` with its app data replaced by `app_data` fits the session store:
    /// the sealed session cookies ([`crate::MAX_COOKIE_SESSION_CHUNKS`] cookies), or
    /// [`crate::MAX_SERVER_SESSION_BYTES`] for server-side sessions. Computed from the length
    /// of the JSON (sealing adds a fixed share), without sealing.
    ///
    /// # Errors
    /// [`Error::SessionTooLarge`] with the size and the limit.
    pub fn check_session_size(&self, session: &SessionSnapshot, app_data: &Map<String, Value>) -> Result<()> {
        let doc = session.data();
        let len = json_len(doc)? - app_data_part(&doc.app_data)? + app_data_part(app_data)?;
        ensure_fits(len, self.session_size_limit())
    }

    /// The longest sealed session this client's store holds.
    pub(crate) fn session_size_limit(&self) -> usize {
        let c = &self.inner.config;
        if c.server_side_sessions {
            MAX_SERVER_SESSION_BYTES
        } else {
            max_cookie_sealed_len(&c.cookies.session_name)
        }
    }
}

/// The bytes `app_data` adds to the compact JSON of a session document: nothing when empty
/// (the field is left out), else `,"app_data":` and the object (never the first field).
fn app_data_part(app_data: &Map<String, Value>) -> Result<usize> {
    if app_data.is_empty() {
        return Ok(0);
    }
    Ok(",\"app_data\":".len() + json_len(app_data)?)
}

/// The length of `value`'s compact JSON, counted without building it.
fn json_len(value: &impl Serialize) -> Result<usize> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value)
        .map_err(|e| StoreError::with_source("serializing the session", e))?;
    Ok(count.0)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::cookies::MemoryCookieJar;
    use crate::session::SessionData;
    use crate::store::{LogoutKey, MemoryBackend, SessionBackend, SessionKeys};
    use crate::time::now;
    use crate::{ClientAuth, StoreError};

    fn client(server_side: Option<Arc<dyn SessionBackend>>) -> ServerClient {
        let b = ServerClient::builder()
            .issuer("https://idp.example.invalid/")
            .client_id("client")
            .client_auth(ClientAuth::none())
            .secret("app-data-tests-secret-0123456789abcdef")
            .app_base_url("http://127.0.0.1:3000");
        match server_side {
            Some(backend) => b.session_backend_arc(backend).server_side_sessions(true),
            None => b,
        }
        .build()
        .unwrap()
    }

    fn session(blob: usize) -> SessionData {
        serde_json::from_value(json!({
            "user": {"sub": "user-1", "name": "Jane", "blob": "x".repeat(blob)},
            "refresh_token": "rt",
            "token_sets": [{"audience": "default", "access_token": "at", "expires_at": now() + 3600}],
            "internal": {"sid": "sid-1", "created_at": now(), "last_active": now()}
        }))
        .unwrap()
    }

    /// The browser's next request after a login that wrote `s`.
    async fn logged_in(c: &ServerClient, s: &SessionData) -> MemoryCookieJar {
        let mut jar = MemoryCookieJar::new();
        c.write_session(s, true, &mut jar).await.unwrap();
        jar.next_request()
    }

    fn kinds() -> Vec<(&'static str, ServerClient)> {
        vec![
            ("cookie", client(None)),
            ("server-side", client(Some(Arc::new(MemoryBackend::new())))),
        ]
    }

    #[tokio::test]
    async fn app_data_is_set_read_and_removed_across_requests() {
        for (kind, c) in kinds() {
            let jar = logged_in(&c, &session(10)).await;
            let mut j = jar.clone();
            let updated = c
                .update_app_data(
                    |d| {
                        d.insert("theme".into(), json!("dark"));
                        d.insert("cart".into(), json!([1, 2]));
                    },
                    &mut j,
                )
                .await
                .unwrap()
                .expect(kind);
            assert_eq!(updated.get::<String>("theme").unwrap().as_deref(), Some("dark"));
            // The next request reads it back, typed; claims and tokens are as they were.
            let mut next = j.next_request();
            let s = c.get_session(&mut next).await.unwrap().expect(kind);
            assert_eq!(s.get::<Vec<u32>>("cart").unwrap(), Some(vec![1, 2]), "{kind}");
            assert_eq!(s.get::<String>("none").unwrap(), None);
            assert_eq!(s.user()["name"], "Jane");
            assert_eq!(s.token_sets().len(), 1);
            let e = s.get::<u32>("theme").unwrap_err();
            assert_eq!(e.code(), "invalid_session_value");
            assert!(
                e.to_string().contains("`theme`") && e.to_string().contains("u32"),
                "{e}"
            );
            assert!(!e.to_string().contains("dark"), "{e}");
            // Removed in a later request.
            c.update_app_data(|d| drop(d.remove("cart")), &mut next)
                .await
                .unwrap()
                .unwrap();
            let mut last = next.next_request();
            let s = c.get_session(&mut last).await.unwrap().unwrap();
            assert_eq!(s.get::<Vec<u32>>("cart").unwrap(), None, "{kind}");
            assert_eq!(s.app_data().len(), 1);
            // No session: nothing happens, nothing is written.
            let mut empty = MemoryCookieJar::new();
            assert!(
                c.update_app_data(|d| drop(d.insert("x".into(), json!(1))), &mut empty)
                    .await
                    .unwrap()
                    .is_none()
            );
            assert!(empty.response_cookies().is_empty());
        }
    }

    #[tokio::test]
    async fn an_unchanged_edit_writes_nothing() {
        let c = client(None);
        let mut jar = logged_in(&c, &session(10)).await;
        let got = c.update_app_data(|_| {}, &mut jar).await.unwrap();
        assert!(got.is_some());
        assert!(jar.response_cookies().is_empty());
    }

    #[tokio::test]
    async fn a_session_too_large_is_a_typed_error_and_the_stored_session_stays() {
        for (kind, c) in kinds() {
            let limit = c.session_size_limit();
            let mut jar = logged_in(&c, &session(10)).await;
            let snapshot = c.get_session(&mut jar.clone()).await.unwrap().unwrap();
            let big = Map::from_iter([("blob".to_owned(), json!("y".repeat(limit)))]);
            // The eager check and the write agree.
            let eager = c.check_session_size(&snapshot, &big).unwrap_err();
            let e = c
                .update_app_data(|d| d.extend(big.clone()), &mut jar)
                .await
                .unwrap_err();
            assert_eq!(e.code(), "session_too_large", "{kind}");
            assert_eq!(eager.to_string(), e.to_string());
            let Error::SessionTooLarge { size, limit: l } = e else {
                panic!("{e:?}")
            };
            assert!(size > limit && l == limit, "{kind}: {size} {l}");
            assert!(jar.response_cookies().is_empty(), "{kind}: nothing written");
            let mut next = jar.next_request();
            let s = c.get_session(&mut next).await.unwrap().expect(kind);
            assert!(s.app_data().is_empty());
            // Just under the limit fits, and the eager check says so too.
            let small = Map::from_iter([("blob".to_owned(), json!("y".repeat(limit / 2)))]);
            c.check_session_size(&s, &small).unwrap();
            c.update_app_data(|d| d.extend(small.clone()), &mut next)
                .await
                .unwrap()
                .unwrap();
            let s = c
                .get_session(&mut next.next_request())
                .await
                .unwrap()
                .expect(kind);
            assert_eq!(s.app_data(), &small);
        }
    }

    #[tokio::test]
    async fn the_size_check_matches_the_sealed_length_exactly() {
        let c = client(None);
        let jar = logged_in(&c, &session(10)).await;
        let s = c.get_session(&mut jar.clone()).await.unwrap().unwrap();
        let limit = c.session_size_limit();
        // The largest blob that fits by the check is written, and one byte more is refused.
        let base = c
            .check_session_size(&s, &Map::from_iter([("b".to_owned(), json!(""))]))
            .map(|()| 0);
        assert!(base.is_ok());
        let fits = |n: usize| {
            c.check_session_size(&s, &Map::from_iter([("b".to_owned(), json!("z".repeat(n)))]))
                .is_ok()
        };
        let (mut lo, mut hi) = (0, limit);
        while lo + 1 < hi {
            let mid = (lo + hi) / 2;
            if fits(mid) { lo = mid } else { hi = mid }
        }
        let mut j = jar.clone();
        c.update_app_data(|d| drop(d.insert("b".into(), json!("z".repeat(lo)))), &mut j)
            .await
            .unwrap()
            .unwrap();
        let sealed: usize = j.response_cookies().iter().map(|rc| rc.value.len()).sum();
        assert!(
            sealed <= limit && limit - sealed < 16 * 4 / 3 + 2,
            "{sealed} of {limit}"
        );
        let back = c.get_session(&mut j.next_request()).await.unwrap().unwrap();
        assert_eq!(back.get::<String>("b").unwrap().map(|b| b.len()), Some(lo));
        let mut j = jar.clone();
        let e = c
            .update_app_data(|d| drop(d.insert("b".into(), json!("z".repeat(hi)))), &mut j)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "session_too_large");
    }

    /// A backend whose record is deleted (a logout elsewhere) just before the update lands.
    #[derive(Debug)]
    struct LogoutBeforeUpdate(MemoryBackend);

    #[async_trait]
    impl SessionBackend for LogoutBeforeUpdate {
        async fn get(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
            self.0.get(id).await
        }
        async fn set(&self, id: &str, v: &[u8], k: &SessionKeys, ttl: Duration) -> Result<(), StoreError> {
            self.0.set(id, v, k, ttl).await
        }
        async fn update(
            &self,
            id: &str,
            v: &[u8],
            k: &SessionKeys,
            ttl: Duration,
        ) -> Result<bool, StoreError> {
            self.0.delete(id).await?;
            self.0.update(id, v, k, ttl).await
        }
        async fn delete(&self, id: &str) -> Result<(), StoreError> {
            self.0.delete(id).await
        }
        async fn delete_by(&self, key: &LogoutKey) -> Result<usize, StoreError> {
            self.0.delete_by(key).await
        }
        async fn record_logout(&self, key: &LogoutKey, at: u64, ttl: Duration) -> Result<(), StoreError> {
            self.0.record_logout(key, at, ttl).await
        }
        async fn logout_time(&self, keys: &[LogoutKey]) -> Result<Option<u64>, StoreError> {
            self.0.logout_time(keys).await
        }
        async fn remember_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
            self.0.remember_once(key, ttl).await
        }
    }

    #[tokio::test]
    async fn a_write_racing_a_logout_does_not_resurrect_the_session() {
        let backend = Arc::new(LogoutBeforeUpdate(MemoryBackend::new()));
        let c = client(Some(backend.clone()));
        let mut jar = logged_in(&c, &session(10)).await;
        let got = c
            .update_app_data(|d| drop(d.insert("k".into(), json!(1))), &mut jar)
            .await
            .unwrap();
        assert!(got.is_none(), "the session ended meanwhile");
        assert!(
            jar.response_cookies().iter().all(|rc| rc.removed),
            "the id cookie is removed, nothing set"
        );
        let id_cookie = jar.to_cookie_header();
        assert!(id_cookie.is_empty(), "{id_cookie}");
        // Nothing in the backend under any id: the record stayed deleted.
        let mut fresh = logged_in(&c, &session(10)).await;
        assert!(c.get_session(&mut fresh).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_logged_out_cookie_session_is_not_written_back() {
        let backend = Arc::new(MemoryBackend::new());
        let c = ServerClient::builder()
            .issuer("https://idp.example.invalid/")
            .client_id("client")
            .client_auth(ClientAuth::none())
            .secret("app-data-tests-secret-0123456789abcdef")
            .app_base_url("http://127.0.0.1:3000")
            .session_backend_arc(backend.clone())
            .build()
            .unwrap();
        let mut jar = logged_in(&c, &session(10)).await;
        backend
            .record_logout(
                &LogoutKey::Sid("sid-1".into()),
                crate::client::now_ms() + 1000,
                Duration::from_secs(600),
            )
            .await
            .unwrap();
        let got = c
            .update_app_data(|d| drop(d.insert("k".into(), json!(1))), &mut jar)
            .await
            .unwrap();
        assert!(got.is_none());
        assert!(jar.response_cookies().iter().all(|rc| rc.removed));
    }

    #[test]
    fn reasons_never_quote_the_value() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Profile {
            email: String,
            age: u32,
        }
        let cases = [
            (
                serde_json::json!({"email": "jane@example.com"}),
                "missing field `age`",
            ),
            (
                serde_json::json!({"email": "jane@example.com", "age": "secret-42, expected x"}),
                "invalid type, expected u32",
            ),
            (
                serde_json::json!({"email": 7, "age": 1}),
                "invalid type, expected a string",
            ),
            (
                serde_json::json!("jane@example.com"),
                "invalid type, expected struct Profile",
            ),
        ];
        for (value, want) in cases {
            let e = serde_json::from_value::<Profile>(value).unwrap_err();
            let err = SessionValueError::from_serde_error::<Profile>(SessionValueKind::Claims, &e);
            assert_eq!(err.reason, want, "{e}");
            let shown = err.to_string();
            assert!(!shown.contains("jane") && !shown.contains("secret"), "{shown}");
            assert!(shown.contains("Profile"), "{shown}");
        }
        assert_eq!(
            reason_without_values("something custom about \"jane\""),
            "the stored value does not match the type"
        );
        assert_eq!(
            reason_without_values("unknown variant `jane`, expected `a` or `b`"),
            "unknown variant, expected `a` or `b`"
        );
    }
}
