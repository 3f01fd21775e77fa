//! Testing protected handlers without an identity provider (the `test-util` cargo feature;
//! enable it in `[dev-dependencies]` only).
//!
//! A [`TestSession`] becomes the `Cookie` header of a logged-in browser for one
//! [`AuthState`]: sealed with its secret under its cookie name, or stored in its server-side
//! backend behind an id cookie. Send it to the app with `tower::ServiceExt::oneshot`:
//!
//! ```
//! use auth_axum::test_util::TestSession;
//! use auth_axum::{AuthState, RequireAuth, Session};
//! use axum::{Router, body::Body, routing::get};
//! use http::{Request, StatusCode, header::COOKIE};
//! use serde_json::json;
//! use tower::ServiceExt as _;
//!
//! async fn dashboard(session: Session) -> String {
//!     let visits: u32 = session.get("visits").ok().flatten().unwrap_or(0);
//!     format!("{} ({visits})", session.sub().unwrap_or("?"))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let client = auth_core::ServerClient::builder()
//!     .issuer("https://tenant.example.com/") // never contacted
//!     .client_id("test-client")
//!     .client_auth(auth_core::ClientAuth::none())
//!     .secret("a-test-secret-of-at-least-32-bytes!!")
//!     .app_base_url("http://localhost:3000")
//!     .build()?;
//! let auth = AuthState::new(client, Default::default())?;
//! let app = Router::new()
//!     .route("/dashboard", get(dashboard).route_layer(RequireAuth::new()))
//!     .layer(auth.layer());
//!
//! let cookie = TestSession::new()
//!     .claims(json!({"sub": "auth0|42", "name": "Jane"}))
//!     .app_data("visits", 3)
//!     .cookie_header(&auth)
//!     .await?;
//! let response = app
//!     .oneshot(Request::get("/dashboard").header(COOKIE, cookie).body(Body::empty())?)
//!     .await?;
//! assert_eq!(response.status(), StatusCode::OK);
//! # Ok(()) }
//! ```

use http::HeaderValue;
use serde::Serialize;
use serde_json::Value;

use crate::error::AuthError;
use crate::state::AuthState;

pub use auth_core::test_util::TEST_SUB;

/// A session to test handlers with: claims, tokens and app data of your choosing (see the
/// [module docs](self) for a whole test).
#[derive(Clone, Debug, Default)]
pub struct TestSession(auth_core::test_util::TestSession);

impl TestSession {
    /// A session of the user [`TEST_SUB`], without tokens or app data.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the user's claims (a JSON object) over the default `sub`.
    #[must_use]
    pub fn claims(self, claims: Value) -> Self {
        Self(self.0.claims(claims))
    }

    /// Adds an access token for `audience` (`"default"` for the login's own audience when none
    /// is configured) expiring at `expires_at` (seconds since the Unix epoch), which
    /// `Session::access_token` returns without a refresh.
    #[must_use]
    pub fn access_token(self, audience: &str, token: &str, expires_at: u64) -> Self {
        Self(self.0.access_token(audience, token, expires_at))
    }

    /// Sets the refresh token (a test double: a refresh would send it to the provider).
    #[must_use]
    pub fn refresh_token(self, token: &str) -> Self {
        Self(self.0.refresh_token(token))
    }

    /// Sets the raw ID token (not validated).
    #[must_use]
    pub fn id_token(self, token: &str) -> Self {
        Self(self.0.id_token(token))
    }

    /// Stores `value` in the app data under `key`, as [`crate::Session::set`] would.
    #[must_use]
    pub fn app_data(self, key: &str, value: impl Serialize) -> Self {
        Self(self.0.app_data(key, value))
    }

    /// Sets the session id (`sid`); random by default.
    #[must_use]
    pub fn sid(self, sid: &str) -> Self {
        Self(self.0.sid(sid))
    }

    /// The `Cookie` header of a browser logged in with this session at `auth`'s client (for
    /// server-side sessions, the record is written into its backend first).
    ///
    /// # Errors
    /// An unusable input (`invalid_parameter`: claims that are not an object;
    /// `invalid_session_value`: app data that is not JSON), `session_too_large`, or a store
    /// error.
    pub async fn cookie_header(&self, auth: &AuthState) -> Result<HeaderValue, AuthError> {
        let header = self
            .0
            .cookie_header(auth.client())
            .await
            .map_err(AuthError::new)?;
        // Sealed values and cookie names are visible ASCII: always a valid header value.
        let mut value = HeaderValue::from_str(&header).map_err(|_| {
            AuthError::new(auth_core::Error::InvalidParameter(
                "the session cookies do not form a header value".into(),
            ))
        })?;
        value.set_sensitive(true);
        Ok(value)
    }
}
