//! What [`crate::AuthState::layer`] leaves on each request besides tower-cookies' jar:
//! [`RequestAuth`], the app's auth state and, once read, the request's session.

use crate::state::AuthState;

/// What [`crate::AuthState::layer`] leaves in each request's extensions: the app's auth state
/// and, once read, the request's session, so it is decoded at most once per request. The
/// request's cookies are tower-cookies' [`tower_cookies::Cookies`], in the extensions too.
#[derive(Clone)]
pub(crate) struct RequestAuth {
    pub(crate) state: AuthState,
    /// `None` until read; then the session, or `Some(None)` for none.
    pub(crate) session: Option<Option<auth_core::SessionSnapshot>>,
}

impl RequestAuth {
    pub(crate) fn new(state: AuthState) -> Self {
        Self { state, session: None }
    }
}

/// The URI the client asked for (before any nesting stripped a prefix).
pub(crate) fn original_uri(parts: &http::request::Parts) -> http::Uri {
    parts
        .extensions
        .get::<axum::extract::OriginalUri>()
        .map_or_else(|| parts.uri.clone(), |o| o.0.clone())
}
