//! What [`crate::AuthState::layer`] leaves on each request: [`RequestAuth`] (the app's auth
//! state, the session once read) and the request's cookie writes ([`ResponseCookies`]).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use auth_core::cookies::CookieAttributes;
use http::HeaderValue;

use crate::state::AuthState;

/// What [`crate::AuthState::layer`] leaves in each request's extensions: the app's auth state
/// and, once read, the request's session, so it is decoded at most once per request.
#[derive(Clone)]
pub(crate) struct RequestAuth {
    pub(crate) state: AuthState,
    /// `None` until read; then the session, or `Some(None)` for none.
    pub(crate) session: Option<Option<auth_core::Session>>,
    /// The request's cookie writes, for its response.
    pub(crate) writes: ResponseCookies,
}

impl RequestAuth {
    pub(crate) fn new(state: AuthState, writes: ResponseCookies) -> Self {
        Self {
            state,
            session: None,
            writes,
        }
    }

    pub(crate) fn writes(&self) -> &ResponseCookies {
        &self.writes
    }
}

/// One write to the response's cookies.
struct Write {
    name: String,
    /// The value set, `None` for a removal.
    value: Option<String>,
    header: Option<HeaderValue>,
}

/// The cookie writes of one request, in order, latest per name; the auth layer puts them on
/// the response as `Set-Cookie` headers.
#[derive(Clone, Default)]
pub(crate) struct ResponseCookies(Arc<Mutex<Vec<Write>>>);

impl ResponseCookies {
    fn lock(&self) -> MutexGuard<'_, Vec<Write>> {
        // Nothing panics while the lock is held; a poisoned list is still consistent.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self, name: &str, value: Option<&str>, attributes: &CookieAttributes) {
        let cookie = match value {
            Some(v) => attributes.to_cookie(name, v),
            None => attributes.to_removal_cookie(name),
        };
        // Names and values the library writes are plain ASCII; anything else is not sent.
        let header = HeaderValue::from_str(&cookie.to_string()).ok();
        if header.is_none() {
            tracing::warn!(cookie = name, "cookie not written: not a valid Set-Cookie value");
        }
        let mut writes = self.lock();
        writes.retain(|w| w.name != name);
        writes.push(Write {
            name: name.to_owned(),
            value: value.map(str::to_owned),
            header,
        });
    }

    /// What this request wrote for `name`: `Some(Some(value))`, `Some(None)` for a removal,
    /// `None` when untouched.
    pub(crate) fn written(&self, name: &str) -> Option<Option<String>> {
        self.lock()
            .iter()
            .find(|w| w.name == name)
            .map(|w| w.value.clone())
    }

    /// Names written in this request, with whether each was set (`true`) or removed.
    pub(crate) fn written_names(&self) -> Vec<(String, bool)> {
        self.lock()
            .iter()
            .map(|w| (w.name.clone(), w.value.is_some()))
            .collect()
    }

    /// The `Set-Cookie` values for the response, emptying the list.
    pub(crate) fn take_headers(&self) -> Vec<HeaderValue> {
        std::mem::take(&mut *self.lock())
            .into_iter()
            .filter_map(|w| w.header)
            .collect()
    }
}
