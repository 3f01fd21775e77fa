//! Axum integration for [`auth_core`]: the `/auth/*` routes, a [`Session`] extractor and a
//! [`RequireAuth`] layer.
//!
//! ```no_run
//! use auth_axum::{AuthState, RequireAuth, Session};
//! use axum::{Router, routing::get};
//!
//! async fn home(session: Option<Session>) -> String {
//!     match session {
//!         Some(s) => format!("hello {}", s.sub().unwrap_or("?")),
//!         None => "hello stranger — <a href=\"/auth/login\">log in</a>".into(),
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let auth = AuthState::from_env()?; // AUTH0_DOMAIN / OIDC_ISSUER, AUTH0_CLIENT_ID, …
//! let app: Router = Router::new()
//!     .route("/", get(home))
//!     .route("/private", get(|s: Session| async move { format!("{:?}", s.user()) }).route_layer(RequireAuth::new()))
//!     .merge(auth.router())
//!     .layer(auth.layer());
//! # let _ = app; Ok(()) }
//! ```
//!
//! [`AuthState::layer`] must wrap every route that uses [`Session`] or [`RequireAuth`]: it
//! gives each request one [`tower_cookies::Cookies`] jar (running tower-cookies'
//! `CookieManager`, or reusing the app's `CookieManagerLayer` when one sits outside it), reads
//! and writes the session and transaction cookies through that jar, and marks `Cookie` and
//! `Set-Cookie` headers sensitive. Handlers that extract `Cookies` share the library's jar:
//!
//! ```no_run
//! use auth_axum::AuthState;
//! use axum::{Router, routing::get};
//! use tower_cookies::{Cookie, CookieManagerLayer, Cookies};
//!
//! async fn theme(cookies: Cookies) -> &'static str {
//!     cookies.add(Cookie::new("theme", "dark"));
//!     "ok"
//! }
//!
//! # fn app(auth: AuthState) -> Router {
//! Router::new()
//!     .route("/theme", get(theme))
//!     .merge(auth.router())
//!     .layer(auth.layer())
//!     // Optional: an app-wide CookieManagerLayer outside `auth.layer()` is reused by it.
//!     .layer(CookieManagerLayer::new())
//! # }
//! ```
//!
//! When the app installs `CookieManagerLayer` outside `auth.layer()`, that layer writes the
//! `Set-Cookie` headers after `auth.layer()` has passed the response on, so marking them
//! sensitive is then up to the app (for example with tower-http's `SetSensitiveHeadersLayer`).
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]

mod app_data;
mod cookies;
mod error;
mod extract;
pub mod hooks;
mod layer;
mod rejection;
mod request;
pub mod require_auth;
mod responses;
mod return_to;
mod routes;
mod state;
#[cfg(feature = "test-util")]
pub mod test_util;

pub use cookies::AxumCookieJar;
pub use error::{AuthError, json_error};
pub use extract::Session;
pub use hooks::{BackchannelLogoutEvent, CallbackEvent, LogoutEvent, RequestHead};
pub use layer::{AuthLayer, AuthService};
pub use rejection::SessionRejection;
pub use require_auth::RequireAuth;
pub use responses::{AuthResponses, DefaultResponses};
pub use state::LOGIN_HINTS;
pub use state::{AuthOptions, AuthState, Unauthenticated};

// The README's Rust examples compile as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
struct ReadmeDoctests;

/// Hooks for this workspace's tests and fuzz targets (the `internal` feature); no stability
/// promise.
#[cfg(feature = "internal")]
#[doc(hidden)]
pub mod internal {
    /// The `returnTo` sanitizer: a safe same-origin relative path, or `None`.
    #[must_use]
    pub fn sanitize_return_to(value: &str) -> Option<String> {
        crate::return_to::sanitize(value)
    }
}
