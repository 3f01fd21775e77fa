//! Cookies for the library: core's [`CookieJar`] over tower-cookies' [`Cookies`].
//!
//! [`crate::AuthState::layer`] makes sure each request has one [`Cookies`] jar (tower-cookies'
//! `CookieManagerLayer`, the app's own when it installed one). The library reads and writes
//! the session and transaction cookies through that jar, so an app that uses [`Cookies`] shares
//! it: both see each other's writes, and every write lands in the response once.

use auth_core::cookies::{CookieAttributes, CookieJar};
use axum::extract::FromRequestParts;
use http::request::Parts;
use tower_cookies::{Cookie, Cookies};

use crate::rejection::SessionRejection;
use crate::request::RequestAuth;

/// Core's cookie jar for one Axum request: tower-cookies' [`Cookies`] of the request
/// (read-your-writes), writes going to the response.
///
/// Extract it in a handler (it needs [`crate::AuthState::layer`]) to call `auth_core` flows the
/// router does not wrap, or get it with [`crate::Session::client_and_jar`].
#[derive(Clone)]
pub struct AxumCookieJar {
    cookies: Cookies,
    /// The request head for the app's `before_session_saved` hook (`hooks.rs`): set only when
    /// that hook is configured, so other requests copy nothing.
    head: Option<auth_core::HookContext>,
}

impl AxumCookieJar {
    pub(crate) fn new(cookies: Cookies) -> Self {
        Self { cookies, head: None }
    }

    /// This jar carrying a copy of the request head for `before_session_saved`, when `state`
    /// has that hook; unchanged otherwise.
    pub(crate) fn with_request_head(mut self, state: &crate::AuthState, parts: &Parts) -> Self {
        if state.options().hooks.before_session_saved.is_some() {
            self.head = Some(std::sync::Arc::new(crate::hooks::RequestHead::of(parts)));
        }
        self
    }

    /// The request's tower-cookies jar, shared with the app.
    #[must_use]
    pub fn cookies(&self) -> &Cookies {
        &self.cookies
    }
}

/// Whether `cookie` is a removal written in this request (the library removes a cookie by
/// writing an expired one, so the browser deletes it even when this request did not carry it).
fn is_removal(cookie: &Cookie<'_>) -> bool {
    cookie.max_age() == Some(tower_cookies::cookie::time::Duration::ZERO)
}

impl std::fmt::Debug for AxumCookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AxumCookieJar")
            .field("names", &self.names())
            .finish()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AxumCookieJar {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(auth) = parts.extensions.get::<RequestAuth>() else {
            return Err(SessionRejection::MissingAuthLayer);
        };
        let cookies = parts
            .extensions
            .get::<Cookies>()
            .ok_or(SessionRejection::MissingAuthLayer)?;
        Ok(Self::new(cookies.clone()).with_request_head(&auth.state, parts))
    }
}

impl CookieJar for AxumCookieJar {
    fn get(&self, name: &str) -> Option<String> {
        // The value copied once, straight from the request's header text (or the jar).
        self.cookies
            .get_with(name, |cookie| {
                (!is_removal(cookie)).then(|| cookie.value().to_owned())
            })
            .flatten()
    }

    fn names(&self) -> Vec<String> {
        self.cookies.names()
    }

    fn set(&mut self, name: &str, value: &str, attributes: &CookieAttributes) {
        self.cookies.add(attributes.to_cookie(name, value));
    }

    fn remove(&mut self, name: &str, attributes: &CookieAttributes) {
        // tower-cookies sends the removal when the request carried the cookie, and forgets a
        // cookie added earlier in this request; either way the jar no longer shows it.
        self.cookies.remove(attributes.to_removal_cookie(name));
    }

    fn hook_context(&self) -> Option<auth_core::HookContext> {
        self.head.clone()
    }
}
