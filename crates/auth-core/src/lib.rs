//! Server-side login for web applications: OpenID Connect / OAuth 2.0 flows, sealed cookie
//! sessions and first-class Auth0 features, independent of any web framework.
//!
//! A [`ServerClient`] is configured once ([`ServerClient::builder`] or
//! [`ServerClient::from_env`]) and shared. Each flow is a pair of calls:
//! [`ServerClient::start_interactive_login`] returns the URL to redirect to and stores a
//! transaction; [`ServerClient::complete_interactive_login`] takes the callback, validates
//! everything (state, PKCE, ID token per OIDC Core 3.1.3.7) and writes the session.
//!
//! The framework is reached through one seam, the [`cookies::CookieJar`] of the current
//! request; `auth-axum` implements it for Axum, and [`cookies::MemoryCookieJar`] serves tests
//! and other frameworks.
//!
//! ```no_run
//! # async fn run() -> Result<(), auth_core::Error> {
//! use auth_core::{cookies::MemoryCookieJar, LoginOptions, ServerClient};
//!
//! let client = ServerClient::from_env()?;
//! let mut jar = MemoryCookieJar::default();
//! let url = client
//!     .start_interactive_login(LoginOptions::new().app_state(serde_json::json!({"returnTo": "/"})), &mut jar)
//!     .await?;
//! // … redirect the browser to `url`; later, on the callback request:
//! let done = client.complete_interactive_login("https://app.example.com/auth/callback?code=…&state=…", &mut jar).await?;
//! println!("hello {}", done.user["sub"]);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]

mod app_data;
mod client;
mod client_auth;
mod config;
pub mod cookies;
mod discovery;
mod dpop;
mod error;
mod flows;
mod hooks;
mod http;
mod id_token;
/// Hooks for this workspace's tests, benchmarks, fuzz targets and load-test app (the
/// `internal` feature): the session stores and document, sealing, logout-token validation.
#[cfg(any(test, feature = "internal"))]
#[doc(hidden)]
pub mod internal;
mod lifetime;
mod params;
mod protocol;
mod seal;
mod secret;
mod session;
pub mod store;
pub mod telemetry;
#[cfg(feature = "test-util")]
pub mod test_util;
mod time;
mod transaction;

/// Checks of the public surface: the session and transaction stores and the stored session
/// document are not part of it, and the session view has one name, [`SessionSnapshot`].
///
/// ```compile_fail,E0603
/// use auth_core::store::StateStore;
/// ```
/// ```compile_fail,E0603
/// use auth_core::store::CookieStateStore;
/// ```
/// ```compile_fail,E0603
/// use auth_core::store::WriteOptions;
/// ```
/// ```compile_fail,E0432
/// use auth_core::SessionData;
/// ```
/// ```compile_fail,E0432
/// use auth_core::Session;
/// ```
/// ```compile_fail,E0432
/// use auth_core::Transaction;
/// ```
/// ```
/// use auth_core::SessionSnapshot;
/// use auth_core::store::{LogoutKey, MemoryBackend, SessionBackend, SessionKeys};
/// ```
#[cfg(doctest)]
mod public_surface {}

pub use app_data::{SessionValueError, SessionValueKind};
pub use client::ServerClient;
pub use client_auth::{ClientAuth, SigningAlgorithm};
pub use config::{MIN_SECRET_LEN, ServerClientBuilder};
pub use discovery::ProviderMetadata;
pub use dpop::{BEARER_TOKEN_TYPE, DPOP_TOKEN_TYPE, ResourceAuthorization};
pub use error::{
    CallbackError, ConfigError, DiscoveryError, Error, ForbiddenReason, IdTokenError, LoginRequired,
    LoginRequiredReason, LogoutTokenError, MyAccountError, OAuthError, Result, StoreError, TransportError,
};
pub use flows::access_token::{AccessToken, AccessTokenOptions};
pub use flows::backchannel::{BACKCHANNEL_LOGOUT_EVENT, BackchannelLogout};
pub use flows::ciba::{
    BackchannelAuthentication, BackchannelAuthenticationOptions, BackchannelAuthenticationResult,
    BackchannelPoll, CIBA_GRANT, CibaError, DEFAULT_CIBA_SCOPE, DEFAULT_POLL_INTERVAL, SLOW_DOWN_STEP,
};
pub use flows::connect::{ConnectAccountOptions, ConnectResult};
pub use flows::connection_token::{ConnectionTokenOptions, TOKEN_VAULT_GRANT};
pub use flows::dispatch::CallbackOutcome;
pub use flows::link::{LinkOptions, LinkResult, UnlinkOptions};
pub use flows::login::{LoginOptions, LoginResult};
pub use flows::logout::LogoutOptions;
pub use flows::mfa::{MFA_ACR_VALUE, MfaRequired};
pub use flows::token_exchange::{
    TOKEN_EXCHANGE_GRANT, TokenExchangeError, TokenExchangeOptions, TokenExchangeResult,
    is_reserved_token_type,
};
pub use hooks::{HookContext, HookError, SaveKind, SessionSave};
pub use params::{AuthorizationParams, DEFAULT_SCOPE};
pub use protocol::authorize::MAX_APP_STATE_BYTES;
pub use protocol::callback::CallbackParams;
pub use protocol::my_account::{ConnectedAccount, ConnectedAccountsPage, ConnectionsPage, ListOptions};
pub use secret::SecretString;
pub use session::{ConnectionTokenSet, DEFAULT_AUDIENCE, SessionSnapshot, TokenSet, UserClaims};
pub use store::{MAX_COOKIE_SESSION_CHUNKS, MAX_SERVER_SESSION_BYTES};
