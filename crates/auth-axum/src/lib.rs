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
//! parses cookies once per request, writes cookie changes back, and marks `Cookie` and
//! `Set-Cookie` headers sensitive.
#![deny(missing_docs)]
#![warn(clippy::unwrap_used)]

mod cookies;
mod error;
mod extract;
mod layer;
mod rejection;
mod request;
pub mod require_auth;
mod return_to;
mod routes;
mod state;

pub use cookies::AxumCookieJar;
pub use error::{AuthError, json_error};
pub use extract::Session;
pub use layer::{AuthLayer, AuthService};
pub use rejection::SessionRejection;
pub use require_auth::RequireAuth;
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
