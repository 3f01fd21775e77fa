//! The cookie-jar adapter: core's [`CookieJar`] over tower-cookies.
//!
//! Every write goes into the request's tower-cookies jar, and the cookie manager layer turns the
//! jar's changes into `Set-Cookie` headers on the response, so each cookie write of a request
//! lands in that request's response.

use auth_core::cookies::{CookieAttributes, CookieJar};
use tower_cookies::Cookies;

/// Core's cookie jar for one Axum request.
#[derive(Clone)]
pub struct AxumCookieJar(pub(crate) Cookies);

impl AxumCookieJar {
    /// Wraps the request's tower-cookies jar.
    #[must_use]
    pub fn new(cookies: Cookies) -> Self {
        Self(cookies)
    }
}

impl std::fmt::Debug for AxumCookieJar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.0.list().iter().map(|c| c.name().to_owned()).collect();
        f.debug_struct("AxumCookieJar").field("names", &names).finish()
    }
}

impl CookieJar for AxumCookieJar {
    fn get(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|c| c.value().to_owned())
    }

    fn names(&self) -> Vec<String> {
        self.0.list().iter().map(|c| c.name().to_owned()).collect()
    }

    fn set(&mut self, name: &str, value: &str, attributes: &CookieAttributes) {
        self.0.add(attributes.to_cookie(name, value));
    }

    fn remove(&mut self, name: &str, attributes: &CookieAttributes) {
        self.0.remove(attributes.to_cookie(name, ""));
    }
}
