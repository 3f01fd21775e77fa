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

/// The jar used to *read* the session on every request: cookies come straight from the
/// request's `Cookie` header(s), split without copying through a cookie parser (our values are
/// base64url and never percent-encoded), while writes (a rolling-window touch, an expired
/// session's removal) go through tower-cookies so they land in the response. Reading a
/// session therefore costs no cookie parsing beyond finding our names.
pub(crate) struct RequestJar {
    request: Vec<(String, String)>,
    written: Vec<(String, Option<String>)>,
    cookies: Cookies,
}

impl RequestJar {
    pub(crate) fn new(headers: &http::HeaderMap, cookies: Cookies) -> Self {
        let mut request: Vec<(String, String)> = Vec::new();
        for value in headers.get_all(http::header::COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            for pair in text.split(';') {
                let Some((name, value)) = pair.split_once('=') else {
                    continue;
                };
                let name = name.trim();
                // The first of duplicate names wins, as in browsers' ordering and tower-cookies.
                if !name.is_empty() && !request.iter().any(|(n, _)| n == name) {
                    request.push((name.to_owned(), value.trim().to_owned()));
                }
            }
        }
        Self {
            request,
            written: Vec::new(),
            cookies,
        }
    }
}

impl CookieJar for RequestJar {
    fn get(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.written.iter().rev().find(|(n, _)| n == name) {
            return v.clone();
        }
        self.request
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .request
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| !self.written.iter().any(|(w, _)| w == n))
            .collect();
        for (n, v) in &self.written {
            if v.is_some() && !names.contains(n) {
                names.push(n.clone());
            }
        }
        names
    }

    fn set(&mut self, name: &str, value: &str, attributes: &CookieAttributes) {
        self.cookies.add(attributes.to_cookie(name, value));
        self.written.retain(|(n, _)| n != name);
        self.written.push((name.to_owned(), Some(value.to_owned())));
    }

    fn remove(&mut self, name: &str, attributes: &CookieAttributes) {
        self.cookies.remove(attributes.to_cookie(name, ""));
        self.written.retain(|(n, _)| n != name);
        self.written.push((name.to_owned(), None));
    }
}
