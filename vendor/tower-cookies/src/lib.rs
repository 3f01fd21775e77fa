//! A cookie manager middleware built on top of [tower].
//!
//! ## Example
//!
//! With [axum]:
//!
//! ```rust,no_run
//! use axum::{routing::get, Router};
//! use std::net::SocketAddr;
//! use tower_cookies::{Cookie, CookieManagerLayer, Cookies};
//!
//! # #[cfg(feature = "axum-core")]
//! #[tokio::main]
//! async fn main() {
//!     let app = Router::new()
//!         .route("/", get(handler))
//!         .layer(CookieManagerLayer::new());
//!
//!     let addr = SocketAddr::from(([127, 0, 0, 1], 3000));
//!     let listener = tokio::net::TcpListener::bind(&addr).await.unwrap();
//!     axum::serve(listener, app.into_make_service())
//!         .await
//!         .unwrap();
//! }
//! # #[cfg(not(feature = "axum-core"))]
//! # fn main() {}
//!
//! async fn handler(cookies: Cookies) -> &'static str {
//!     cookies.add(Cookie::new("hello_world", "hello_world"));
//!
//!     "Check your cookies."
//! }
//! ```
//!
//! A complete CRUD cookie example in [examples/counter.rs][example]
//!
//! [axum]: https://crates.io/crates/axum
//! [tower]: https://crates.io/crates/tower
//! [example]: https://github.com/imbolc/tower-cookies/blob/main/examples/counter.rs

#![warn(clippy::all, missing_docs, nonstandard_style, future_incompatible)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use cookie::CookieJar;
use http::HeaderValue;
use parking_lot::Mutex;
use std::sync::Arc;

#[doc(inline)]
pub use self::service::{CookieManager, CookieManagerLayer};

#[cfg(feature = "signed")]
pub use self::signed::SignedCookies;

#[cfg(feature = "private")]
pub use self::private::PrivateCookies;

#[cfg(any(feature = "signed", feature = "private"))]
pub use cookie::Key;

pub use cookie::Cookie;

#[doc(inline)]
pub use cookie;

#[cfg(feature = "axum-core")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum-core")))]
mod extract;

#[cfg(feature = "signed")]
mod signed;

#[cfg(feature = "private")]
mod private;

pub mod service;

/// A parsed on-demand cookie jar.
#[derive(Clone, Debug, Default)]
pub struct Cookies {
    inner: Arc<Mutex<Inner>>,
}

impl Cookies {
    fn new(headers: Vec<HeaderValue>) -> Self {
        let inner = Inner {
            headers,
            ..Default::default()
        };
        Self {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    /// Adds [`Cookie`] to this jar. If a [`Cookie`] with the same name already exists, it is
    /// replaced with provided cookie.
    pub fn add(&self, cookie: Cookie<'static>) {
        let mut inner = self.inner.lock();
        inner.changed = true;
        inner.jar().add(cookie);
    }

    /// Returns the [`Cookie`] with the given name. Returns [`None`] if it doesn't exist.
    pub fn get(&self, name: &str) -> Option<Cookie<'_>> {
        let mut inner = self.inner.lock();
        if inner.jar.is_none() {
            // Nothing added or removed yet: answer from the request's headers, parsing only
            // the cookie asked for, instead of building the whole jar.
            return inner.find_in_headers(name);
        }
        inner.jar().get(name).cloned()
    }

    /// Removes [`Cookie`] from this jar.
    pub fn remove(&self, cookie: Cookie<'static>) {
        let mut inner = self.inner.lock();
        inner.changed = true;
        inner.jar().remove(cookie);
    }

    /// Returns all the [`Cookie`]s present in this jar.
    ///
    /// This method collects [`Cookie`]s into a vector instead of iterating through them to
    /// minimize the mutex locking time.
    pub fn list(&self) -> Vec<Cookie<'_>> {
        let mut inner = self.inner.lock();
        if inner.jar.is_none() {
            // Nothing added or removed yet: the request's cookies as the jar would hold them,
            // one copy each, without building (and hashing into) the jar.
            return inner.list_from_headers();
        }
        inner.jar().iter().cloned().collect()
    }

    /// Returns a child [`SignedCookies`] jar for interations with signed by the `key` cookies.
    ///
    /// # Example:
    /// ```
    /// use cookie::{Cookie, Key};
    /// use tower_cookies::Cookies;
    ///
    /// let cookies = Cookies::default();
    /// let key = Key::generate();
    /// let signed = cookies.signed(&key);
    ///
    /// let foo = Cookie::new("foo", "bar");
    /// signed.add(foo.clone());
    ///
    /// assert_eq!(signed.get("foo"), Some(foo.clone()));
    /// assert_ne!(cookies.get("foo"), Some(foo));
    /// ```
    /// Returns the names of all the cookies in the jar, without copying their values.
    pub fn names(&self) -> Vec<String> {
        let mut inner = self.inner.lock();
        if inner.jar.is_none() {
            // Nothing added or removed yet: the names of the request's cookies, one per name.
            return inner.names_from_headers();
        }
        inner.jar().iter().map(|c| c.name().to_owned()).collect()
    }

    #[cfg(feature = "signed")]
    pub fn signed<'a>(&self, key: &'a cookie::Key) -> SignedCookies<'a> {
        SignedCookies::new(self, key)
    }

    /// Returns a child [`PrivateCookies`] jar for encrypting and decrypting cookies.
    ///
    /// # Example:
    /// ```
    /// use cookie::{Cookie, Key};
    /// use tower_cookies::Cookies;
    ///
    /// let cookies = Cookies::default();
    /// let key = Key::generate();
    /// let private = cookies.private(&key);
    ///
    /// let foo = Cookie::new("foo", "bar");
    /// private.add(foo.clone());
    ///
    /// assert_eq!(private.get("foo"), Some(foo.clone()));
    /// assert_ne!(cookies.get("foo"), Some(foo));
    /// ```
    #[cfg(feature = "private")]
    pub fn private<'a>(&self, key: &'a cookie::Key) -> PrivateCookies<'a> {
        PrivateCookies::new(self, key)
    }
}

#[derive(Debug, Default)]
struct Inner {
    headers: Vec<HeaderValue>,
    located: Option<Vec<Located>>,
    jar: Option<CookieJar>,
    changed: bool,
}

/// Parses one `;`-separated segment of a `Cookie` header as [`Inner::jar`] does.
fn parse_segment<'c>(cookie_str: &'c str) -> Option<Cookie<'c>> {
    // Percent-decoding a value without `%` changes nothing, and the decoder walks it byte by
    // byte: parse such a value as it is.
    let parsed = if cookie_str.contains('%') {
        cookie::Cookie::parse_encoded(cookie_str)
    } else {
        cookie::Cookie::parse(cookie_str)
    };
    parsed.ok()
}

/// Where one cookie of the request's headers is: the header and byte range of the
/// `;`-separated segment it was parsed from, where its `=` is, and its name.
#[derive(Debug)]
struct Located {
    header: usize,
    segment: std::ops::Range<usize>,
    eq: usize,
    name: LocatedName,
}

/// The name of a [`Located`] cookie.
#[derive(Debug)]
enum LocatedName {
    /// Bytes of the header (a segment without `%`).
    Raw(std::ops::Range<usize>),
    /// Percent-decoded from a segment with `%`.
    Decoded(Box<str>),
}

/// `bytes` trimmed of white space as `str::trim` does it (the cookie crate's parse trims
/// names and values with it), as a byte range of `bytes`.
fn trimmed(bytes: &[u8]) -> Option<std::ops::Range<usize>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let start = text.len() - text.trim_start().len();
    Some(start..start + text.trim().len())
}

impl Inner {
    /// The request's cookies located in its headers, in header order (a name may repeat),
    /// found on the first read and kept until a write builds the jar: the segments the jar
    /// would parse into cookies. As in [`Inner::jar`], a header that is not UTF-8 is skipped.
    ///
    /// A segment holds no `;`, so parsing it gives no attributes: without `%` its cookie is
    /// the text before the first `=` and the text after it, both trimmed, the name not empty,
    /// which is read here without a full parse. A segment with `%` is parsed (and decoded)
    /// as the jar does it.
    fn located(&mut self) -> &[Located] {
        let headers = &self.headers;
        self.located.get_or_insert_with(|| {
            let mut located = Vec::new();
            for (header, value) in headers.iter().enumerate() {
                let bytes = value.as_bytes();
                if std::str::from_utf8(bytes).is_err() {
                    continue;
                }
                let mut start = 0;
                let ends = memchr::memchr_iter(b';', bytes).chain(std::iter::once(bytes.len()));
                for end in ends {
                    let segment = start..end;
                    start = end + 1;
                    let whole = &bytes[segment.clone()];
                    let Some(eq) = memchr::memchr(b'=', whole) else {
                        continue;
                    };
                    let name = if memchr::memchr(b'%', whole).is_some() {
                        let Some(cookie) = std::str::from_utf8(whole).ok().and_then(parse_segment)
                        else {
                            continue;
                        };
                        LocatedName::Decoded(cookie.name().into())
                    } else {
                        match trimmed(&whole[..eq]) {
                            Some(name) if !name.is_empty() => {
                                LocatedName::Raw(segment.start + name.start..segment.start + name.end)
                            }
                            _ => continue,
                        }
                    };
                    located.push(Located {
                        header,
                        segment,
                        eq,
                        name,
                    });
                }
            }
            located
        })
    }

    /// The name of a located cookie.
    fn name_of<'a>(&'a self, at: &'a Located) -> &'a str {
        match &at.name {
            LocatedName::Decoded(name) => name,
            LocatedName::Raw(range) => self
                .headers
                .get(at.header)
                .and_then(|h| h.as_bytes().get(range.clone()))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
        }
    }

    /// The cookie at `at`, copied out.
    fn cookie_at(&self, at: &Located) -> Option<Cookie<'static>> {
        let segment = self.headers.get(at.header)?.as_bytes().get(at.segment.clone())?;
        let segment = std::str::from_utf8(segment).ok()?;
        if let LocatedName::Decoded(_) = at.name {
            return parse_segment(segment).map(Cookie::into_owned);
        }
        let value = segment.get(at.eq + 1..)?.trim();
        Some(Cookie::new(self.name_of(at).to_owned(), value.to_owned()))
    }

    /// The cookie `name` as the jar built from the request's headers would hold it (the last
    /// segment with that name wins, as in [`CookieJar::add_original`]), without building the
    /// jar: only the match is parsed again and copied.
    fn find_in_headers(&mut self, name: &str) -> Option<Cookie<'static>> {
        self.located();
        let located = self.located.as_deref()?;
        let at = located.iter().rev().find(|l| self.name_of(l) == name)?;
        self.cookie_at(at)
    }

    /// The names of the request's cookies, one per name (as the jar would hold them).
    fn names_from_headers(&mut self) -> Vec<String> {
        self.located();
        let Some(located) = self.located.as_deref() else {
            return Vec::new();
        };
        let mut names: Vec<String> = Vec::with_capacity(located.len());
        if located.len() <= 16 {
            // A handful of cookies (the usual request): a scan beats hashing.
            for l in located {
                let name = self.name_of(l);
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
            return names;
        }
        let mut seen = std::collections::HashSet::with_capacity(located.len());
        names.extend(
            located
                .iter()
                .map(|l| self.name_of(l))
                .filter(|name| seen.insert(*name))
                .map(str::to_owned),
        );
        names
    }

    /// The request's cookies as the jar built from the headers would list them: one per name,
    /// the last segment with that name winning, as in [`CookieJar::add_original`].
    fn list_from_headers(&mut self) -> Vec<Cookie<'static>> {
        self.located();
        let Some(located) = self.located.as_deref() else {
            return Vec::new();
        };
        let mut seen = std::collections::HashSet::with_capacity(located.len());
        let mut cookies = Vec::with_capacity(located.len());
        for l in located.iter().rev() {
            if seen.insert(self.name_of(l)) {
                cookies.extend(self.cookie_at(l));
            }
        }
        cookies.reverse();
        cookies
    }

    fn jar(&mut self) -> &mut CookieJar {
        if self.jar.is_none() {
            let mut jar = CookieJar::new();
            for header in &self.headers {
                if let Ok(header_str) = std::str::from_utf8(header.as_bytes()) {
                    for cookie_str in header_str.split(';') {
                        if let Some(cookie) = parse_segment(cookie_str) {
                            jar.add_original(cookie.into_owned());
                        }
                    }
                }
            }
            self.jar = Some(jar);
        }
        self.jar.as_mut().unwrap()
    }
}

#[cfg(all(test, feature = "axum-core"))]
mod tests {
    use crate::{CookieManagerLayer, Cookies};
    use axum::{body::Body, routing::get, Router};
    use cookie::Cookie;
    use http::{header, Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn app() -> Router {
        Router::new()
            .route(
                "/list",
                get(|cookies: Cookies| async move {
                    let mut items = cookies
                        .list()
                        .iter()
                        .map(|c| format!("{}={}", c.name(), c.value()))
                        .collect::<Vec<_>>();
                    items.sort();
                    items.join(", ")
                }),
            )
            .route(
                "/add",
                get(|cookies: Cookies| async move {
                    cookies.add(Cookie::new("baz", "3"));
                    cookies.add(Cookie::new("spam", "4"));
                }),
            )
            .route(
                "/remove",
                get(|cookies: Cookies| async move {
                    cookies.remove(Cookie::new("foo", ""));
                }),
            )
            .layer(CookieManagerLayer::new())
    }

    async fn body_string(body: Body) -> String {
        let bytes = body.collect().await.unwrap().to_bytes();
        String::from_utf8_lossy(&bytes).into()
    }

    #[tokio::test]
    async fn read_cookies() {
        let req = Request::builder()
            .uri("/list")
            .header(header::COOKIE, "foo=1; bar=2")
            .body(Body::empty())
            .unwrap();
        let res = app().oneshot(req).await.unwrap();
        assert_eq!(body_string(res.into_body()).await, "bar=2, foo=1");
    }

    #[tokio::test]
    async fn read_multi_header_cookies() {
        let req = Request::builder()
            .uri("/list")
            .header(header::COOKIE, "foo=1")
            .header(header::COOKIE, "bar=2")
            .body(Body::empty())
            .unwrap();
        let res = app().oneshot(req).await.unwrap();
        assert_eq!(body_string(res.into_body()).await, "bar=2, foo=1");
    }

    #[tokio::test]
    async fn add_cookies() {
        let req = Request::builder()
            .uri("/add")
            .header(header::COOKIE, "foo=1; bar=2")
            .body(Body::empty())
            .unwrap();
        let res = app().oneshot(req).await.unwrap();
        let mut hdrs: Vec<_> = res.headers().get_all(header::SET_COOKIE).iter().collect();
        hdrs.sort();
        assert_eq!(hdrs, ["baz=3", "spam=4"]);
    }

    #[tokio::test]
    async fn remove_cookies() {
        let req = Request::builder()
            .uri("/remove")
            .header(header::COOKIE, "foo=1; bar=2")
            .body(Body::empty())
            .unwrap();
        let res = app().oneshot(req).await.unwrap();
        let mut hdrs = res.headers().get_all(header::SET_COOKIE).iter();
        let hdr = hdrs.next().unwrap().to_str().unwrap();
        assert!(hdr.starts_with("foo=; Max-Age=0"));
        assert_eq!(hdrs.next(), None);
    }
}
