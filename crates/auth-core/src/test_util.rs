//! Sessions for testing an application's handlers without an identity provider (the
//! `test-util` cargo feature; enable it in `[dev-dependencies]` only).
//!
//! A [`TestSession`] is written by the client's own session store, so it is exactly what a
//! login would have produced for that client: sealed with its secret under its cookie name,
//! or (server-side sessions) stored in its backend behind a sealed id cookie.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::client::ServerClient;
use crate::cookies::{CookieJar, MemoryCookieJar};
use crate::error::{Error, Result};
use crate::secret::SecretString;
use crate::session::{DEFAULT_AUDIENCE, Internal, SessionData, TokenSet};
use crate::time::now;

/// The `sub` of a [`TestSession`] whose claims do not set one.
pub const TEST_SUB: &str = "test|user";

/// A session to test handlers with: claims, tokens and app data of your choosing, turned into
/// the cookies a logged-in browser would send to `client`.
///
/// ```
/// # async fn f() -> Result<(), auth_core::Error> {
/// use auth_core::test_util::TestSession;
/// use serde_json::json;
///
/// let client = auth_core::ServerClient::builder()
///     .issuer("https://idp.example.com/")
///     .client_id("client")
///     .client_auth(auth_core::ClientAuth::none())
///     .secret("a-test-secret-of-at-least-32-bytes!!")
///     .app_base_url("http://localhost:3000")
///     .build()?;
/// let header = TestSession::new()
///     .claims(json!({"sub": "auth0|42", "name": "Jane"}))
///     .access_token("default", "test-access-token", u64::MAX / 2)
///     .app_data("theme", "dark")
///     .cookie_header(&client)
///     .await?;
/// let mut jar = auth_core::cookies::MemoryCookieJar::from_cookie_header(&header);
/// let session = client.get_session(&mut jar).await?.expect("logged in");
/// assert_eq!(session.sub(), Some("auth0|42"));
/// assert_eq!(session.get::<String>("theme")?.as_deref(), Some("dark"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TestSession {
    user: Map<String, Value>,
    id_token: Option<SecretString>,
    refresh_token: Option<SecretString>,
    token_sets: Vec<TokenSet>,
    app_data: Map<String, Value>,
    sid: Option<String>,
    /// The first builder input that was unusable, reported when the cookies are made.
    error: Option<BadInput>,
}

/// An unusable [`TestSession`] input.
#[derive(Clone, Debug)]
enum BadInput {
    ClaimsNotAnObject,
    AppData(crate::app_data::SessionValueError),
}

impl std::fmt::Debug for TestSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestSession")
            .field("sub", &self.user.get("sub"))
            .field("token_sets", &self.token_sets)
            .field("app_data_keys", &self.app_data.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Default for TestSession {
    fn default() -> Self {
        Self::new()
    }
}

impl TestSession {
    /// A session of the user [`TEST_SUB`], without tokens or app data.
    #[must_use]
    pub fn new() -> Self {
        Self {
            user: Map::from_iter([("sub".to_owned(), Value::from(TEST_SUB))]),
            id_token: None,
            refresh_token: None,
            token_sets: Vec::new(),
            app_data: Map::new(),
            sid: None,
            error: None,
        }
    }

    /// Sets the user's claims (a JSON object), over the default `sub` ([`TEST_SUB`]). A value
    /// that is not an object makes [`cookies`](Self::cookies) fail with
    /// [`Error::InvalidParameter`].
    #[must_use]
    pub fn claims(mut self, claims: Value) -> Self {
        match claims {
            Value::Object(map) => self.user.extend(map),
            _ => {
                self.error.get_or_insert(BadInput::ClaimsNotAnObject);
            }
        }
        self
    }

    /// Adds an access token for `audience` ([`DEFAULT_AUDIENCE`], `"default"`, for the
    /// login's own audience when none is configured), expiring at `expires_at` (seconds since
    /// the Unix epoch). `Session::access_token` returns it without a refresh while it is
    /// valid.
    #[must_use]
    pub fn access_token(mut self, audience: &str, token: &str, expires_at: u64) -> Self {
        self.token_sets.push(TokenSet {
            audience: if audience.is_empty() {
                DEFAULT_AUDIENCE.to_owned()
            } else {
                audience.to_owned()
            },
            access_token: SecretString::new(token),
            scope: None,
            expires_at,
            extra: Map::new(),
        });
        self
    }

    /// Sets the refresh token (a test double: a refresh would send it to the provider).
    #[must_use]
    pub fn refresh_token(mut self, token: &str) -> Self {
        self.refresh_token = Some(SecretString::new(token));
        self
    }

    /// Sets the raw ID token (not validated).
    #[must_use]
    pub fn id_token(mut self, token: &str) -> Self {
        self.id_token = Some(SecretString::new(token));
        self
    }

    /// Stores `value` in the session's app data under `key` (as `Session::set` would). A
    /// value that does not serialize to JSON makes [`cookies`](Self::cookies) fail with
    /// [`Error::SessionValue`].
    #[must_use]
    pub fn app_data(mut self, key: &str, value: impl Serialize) -> Self {
        match serde_json::to_value(&value) {
            Ok(v) => {
                self.app_data.insert(key.to_owned(), v);
            }
            Err(e) => {
                self.error.get_or_insert(BadInput::AppData(
                    crate::app_data::SessionValueError::from_serde_error::<Value>(
                        crate::app_data::SessionValueKind::Write { key: key.to_owned() },
                        &e,
                    ),
                ));
            }
        }
        self
    }

    /// Sets the session id (`sid`), e.g. to test a back-channel logout; random by default.
    #[must_use]
    pub fn sid(mut self, sid: &str) -> Self {
        self.sid = Some(sid.to_owned());
        self
    }

    fn document(&self) -> Result<SessionData> {
        match &self.error {
            Some(BadInput::ClaimsNotAnObject) => {
                return Err(Error::InvalidParameter(
                    "TestSession::claims takes a JSON object".into(),
                ));
            }
            Some(BadInput::AppData(e)) => return Err(Error::SessionValue(e.clone())),
            None => {}
        }
        let now = now();
        Ok(SessionData {
            user: self.user.clone(),
            id_token: self.id_token.clone(),
            refresh_token: self.refresh_token.clone(),
            token_sets: self.token_sets.clone(),
            connection_token_sets: Vec::new(),
            internal: Internal {
                sid: self
                    .sid
                    .clone()
                    .unwrap_or_else(|| oauth2::CsrfToken::new_random_len(16).secret().clone()),
                created_at: now,
                last_active: Some(now),
                extra: Map::new(),
            },
            app_data: self.app_data.clone(),
            extra: Map::new(),
        })
    }

    /// Writes the session with `client`'s session store, as a login does, and returns the
    /// cookies a browser would send next (`(name, value)` pairs). For server-side sessions
    /// this stores the record in the client's backend.
    ///
    /// # Errors
    /// An unusable builder input ([`Error::InvalidParameter`], [`Error::SessionValue`]);
    /// [`Error::SessionTooLarge`]; store errors.
    pub async fn cookies(&self, client: &ServerClient) -> Result<Vec<(String, String)>> {
        let doc = self.document()?;
        let mut jar = MemoryCookieJar::new();
        client.write_session(&doc, true, &mut jar).await?;
        let next = jar.next_request();
        Ok(next
            .names()
            .into_iter()
            .filter_map(|name| next.get(&name).map(|value| (name, value)))
            .collect())
    }

    /// [`cookies`](Self::cookies) as the value of a `Cookie` request header.
    ///
    /// # Errors
    /// As [`cookies`](Self::cookies).
    pub async fn cookie_header(&self, client: &ServerClient) -> Result<String> {
        Ok(self
            .cookies(client)
            .await?
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; "))
    }
}
