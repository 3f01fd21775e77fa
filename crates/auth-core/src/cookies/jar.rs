//! The [`CookieJar`] seam and the in-memory [`MemoryCookieJar`].

use std::collections::BTreeMap;
use std::fmt;

use super::CookieAttributes;

/// The request/response cookie jar of one request, as seen by the library.
///
/// Implementations must provide read-your-writes: after `set` or `remove`, `get` and `names`
/// reflect the write, so several library steps within one request see a consistent view.
pub trait CookieJar: Send {
    /// Value of the cookie `name` as the library should currently see it: a cookie set or
    /// removed earlier through this jar wins over the request's (read-your-writes).
    fn get(&self, name: &str) -> Option<String>;
    /// Names of all cookies currently visible (request cookies plus ones set through this jar,
    /// minus removed).
    fn names(&self) -> Vec<String>;
    /// Set (add or replace) a cookie in the response.
    fn set(&mut self, name: &str, value: &str, attributes: &CookieAttributes);
    /// Remove a cookie: the response expires it (same path/domain as given).
    fn remove(&mut self, name: &str, attributes: &CookieAttributes);

    /// An opaque per-request value for the application's hooks
    /// ([`SessionSave::context`](crate::SessionSave::context)); `auth-axum` hands the request
    /// head this way. Called only when a hook runs. Default: none.
    fn hook_context(&self) -> Option<crate::HookContext> {
        None
    }
}

/// One cookie on the response side of a [`MemoryCookieJar`].
///
/// `Debug` redacts the value, which usually holds a sealed session.
#[derive(Clone, PartialEq, Eq)]
pub struct ResponseCookie {
    /// Cookie name.
    pub name: String,
    /// Cookie value; empty for a removal.
    pub value: String,
    /// Attributes the cookie was written (or removed) with.
    pub attributes: CookieAttributes,
    /// `true` when this entry expires the cookie rather than setting it.
    pub removed: bool,
}

impl fmt::Debug for ResponseCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseCookie")
            .field("name", &self.name)
            .field("value", &"[redacted]")
            .field("attributes", &self.attributes)
            .field("removed", &self.removed)
            .finish()
    }
}

/// An in-memory [`CookieJar`]: request cookies in, recorded response cookies out.
///
/// Useful for tests and for simulating a browser across requests: build it from the cookies a
/// request carries, let the library work on it, inspect [`response_cookies`] and continue
/// with [`next_request`]. Cookies are keyed by name only (path and domain are recorded but do
/// not create separate cookies), and `Max-Age` expiry is not simulated.
///
/// `Debug` prints cookie names only, never values.
///
/// [`response_cookies`]: MemoryCookieJar::response_cookies
/// [`next_request`]: MemoryCookieJar::next_request
#[derive(Default, Clone)]
pub struct MemoryCookieJar {
    /// Cookies the request carried, by name.
    request: BTreeMap<String, String>,
    /// Response writes, one per name, in order of each name's latest write.
    response: Vec<ResponseCookie>,
}

impl MemoryCookieJar {
    /// An empty jar: no request cookies, no response cookies.
    pub fn new() -> Self {
        Self::default()
    }

    /// A jar whose request carries `cookies` as `(name, value)` pairs.
    ///
    /// If a name repeats, the first occurrence wins, as browsers send the most specific
    /// cookie first.
    pub fn from_request_cookies<I, N, V>(cookies: I) -> Self
    where
        I: IntoIterator<Item = (N, V)>,
        N: Into<String>,
        V: Into<String>,
    {
        let mut request = BTreeMap::new();
        for (name, value) in cookies {
            request.entry(name.into()).or_insert_with(|| value.into());
        }
        Self {
            request,
            response: Vec::new(),
        }
    }

    /// A jar whose request carries the cookies of a `Cookie` header value
    /// (`a=1; b=2`). Pairs without `=` or with an empty name are ignored; values are taken
    /// verbatim (no percent-decoding, quotes kept); the first occurrence of a name wins.
    pub fn from_cookie_header(header: &str) -> Self {
        Self::from_request_cookies(header.split(';').filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            let name = name.trim();
            (!name.is_empty()).then(|| (name.to_owned(), value.trim().to_owned()))
        }))
    }

    /// The response side: every cookie set or removed through this jar, in write order.
    /// A later write to the same name replaces the earlier entry (and moves it last).
    pub fn response_cookies(&self) -> Vec<ResponseCookie> {
        self.response.clone()
    }

    /// The `Cookie` header a browser would send next: the currently visible cookies as
    /// `name=value` pairs joined by `; `, ordered by name. Empty when nothing is visible.
    pub fn to_cookie_header(&self) -> String {
        self.visible()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// A fresh jar for the browser's next request: its request cookies are this jar's
    /// currently visible cookies, and its response side is empty.
    pub fn next_request(&self) -> MemoryCookieJar {
        Self {
            request: self.visible(),
            response: Vec::new(),
        }
    }

    /// Request cookies overlaid with the response writes.
    fn visible(&self) -> BTreeMap<String, String> {
        let mut visible = self.request.clone();
        for written in &self.response {
            if written.removed {
                visible.remove(&written.name);
            } else {
                visible.insert(written.name.clone(), written.value.clone());
            }
        }
        visible
    }

    /// Records a response write, replacing an earlier one for the same name.
    fn record(&mut self, cookie: ResponseCookie) {
        self.response.retain(|existing| existing.name != cookie.name);
        self.response.push(cookie);
    }
}

impl CookieJar for MemoryCookieJar {
    fn get(&self, name: &str) -> Option<String> {
        match self.response.iter().find(|written| written.name == name) {
            Some(written) if written.removed => None,
            Some(written) => Some(written.value.clone()),
            None => self.request.get(name).cloned(),
        }
    }

    fn names(&self) -> Vec<String> {
        self.visible().into_keys().collect()
    }

    fn set(&mut self, name: &str, value: &str, attributes: &CookieAttributes) {
        self.record(ResponseCookie {
            name: name.to_owned(),
            value: value.to_owned(),
            attributes: attributes.clone(),
            removed: false,
        });
    }

    fn remove(&mut self, name: &str, attributes: &CookieAttributes) {
        self.record(ResponseCookie {
            name: name.to_owned(),
            value: String::new(),
            attributes: attributes.clone(),
            removed: true,
        });
    }
}

impl fmt::Debug for MemoryCookieJar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// Lists response writes as `name` or `name (removed)`, without values.
        struct ResponseNames<'a>(&'a [ResponseCookie]);
        impl fmt::Debug for ResponseNames<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|c| {
                        if c.removed {
                            format!("{} (removed)", c.name)
                        } else {
                            c.name.clone()
                        }
                    }))
                    .finish()
            }
        }
        f.debug_struct("MemoryCookieJar")
            .field("request", &self.request.keys().collect::<Vec<_>>())
            .field("response", &ResponseNames(&self.response))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cookies::{read_chunked, write_chunked};

    const BASE: &str = "_a0_session";
    const MAX: usize = 20;

    fn attrs() -> CookieAttributes {
        CookieAttributes::default()
    }

    #[test]
    fn memory_jar_read_your_writes() {
        let mut jar = MemoryCookieJar::from_cookie_header("a=1; b=2");
        assert_eq!(jar.get("a").as_deref(), Some("1"));
        jar.set("a", "10", &attrs());
        jar.set("c", "3", &attrs());
        assert_eq!(jar.get("a").as_deref(), Some("10"));
        assert_eq!(jar.get("c").as_deref(), Some("3"));
        assert_eq!(jar.names(), vec!["a", "b", "c"]);

        jar.remove("b", &attrs());
        jar.remove("c", &attrs());
        assert_eq!(jar.get("b"), None);
        assert_eq!(jar.get("c"), None);
        assert_eq!(jar.names(), vec!["a"]);

        jar.set("b", "20", &attrs());
        assert_eq!(jar.get("b").as_deref(), Some("20"));

        let written: Vec<(String, String, bool)> = jar
            .response_cookies()
            .into_iter()
            .map(|c| (c.name, c.value, c.removed))
            .collect();
        assert_eq!(
            written,
            vec![
                ("a".into(), "10".into(), false),
                ("c".into(), String::new(), true),
                ("b".into(), "20".into(), false),
            ]
        );
        assert_eq!(jar.to_cookie_header(), "a=10; b=20");

        let next = jar.next_request();
        assert!(next.response_cookies().is_empty());
        assert_eq!(next.get("a").as_deref(), Some("10"));
        assert_eq!(next.get("c"), None);
        assert_eq!(next.to_cookie_header(), "a=10; b=20");
    }

    #[test]
    fn removed_cookie_attributes_are_recorded() {
        let mut jar = MemoryCookieJar::from_request_cookies([("a", "1")]);
        let scoped = CookieAttributes {
            domain: Some("example.com".into()),
            path: "/app".into(),
            ..CookieAttributes::default()
        };
        jar.remove("a", &scoped);
        let cookies = jar.response_cookies();
        assert_eq!(cookies.len(), 1);
        assert!(cookies[0].removed);
        assert_eq!(cookies[0].attributes, scoped);
        assert!(jar.names().is_empty());
        assert_eq!(jar.to_cookie_header(), "");
    }

    #[test]
    fn cookie_header_parsing() {
        let jar = MemoryCookieJar::from_cookie_header(" a = 1 ;b=x=y;; noequals; =v; a=2; c=");
        assert_eq!(jar.get("a").as_deref(), Some("1"));
        assert_eq!(jar.get("b").as_deref(), Some("x=y"));
        assert_eq!(jar.get("c").as_deref(), Some(""));
        assert_eq!(jar.names(), vec!["a", "b", "c"]);
        assert!(MemoryCookieJar::from_cookie_header("").names().is_empty());
    }

    #[test]
    fn debug_output_has_no_values() {
        let mut jar = MemoryCookieJar::from_request_cookies([("req_cookie", "request-secret-value")]);
        jar.set("resp_cookie", "response-secret-value", &attrs());
        jar.remove("gone", &attrs());
        for debug in [format!("{jar:?}"), format!("{jar:#?}")] {
            assert!(debug.contains("req_cookie") && debug.contains("resp_cookie"));
            assert!(debug.contains("gone (removed)"));
            assert!(!debug.contains("secret-value"), "{debug}");
        }
        let cookie = &jar.response_cookies()[0];
        assert!(!format!("{cookie:?}").contains("secret-value"));
    }

    #[test]
    fn jar_is_object_safe_and_send() {
        fn assert_send<T: Send>() {}
        assert_send::<MemoryCookieJar>();
        let mut jar = MemoryCookieJar::new();
        let dyn_jar: &mut dyn CookieJar = &mut jar;
        write_chunked(dyn_jar, BASE, "v", &attrs());
        assert_eq!(read_chunked(&jar, BASE, MAX).as_deref(), Some("v"));
    }
}
