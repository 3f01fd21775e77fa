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
    #[cfg(test)]
    fn new(headers: Vec<HeaderValue>) -> Self {
        Self::bounded(headers.into_iter().collect(), None)
    }

    /// A jar over `headers` that reads at most `max_parts` `;`-separated parts of them, in all
    /// (see [`CookieManager::max_cookie_parts`]).
    fn bounded(headers: Headers, max_parts: Option<usize>) -> Self {
        let inner = Inner {
            headers,
            max_parts,
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
        self.get_with(name, |cookie| cookie.clone().into_owned())
    }

    /// Calls `f` with the [`Cookie`] with the given name, borrowed from the jar: nothing is
    /// copied (use it to read a large value once, e.g. into a buffer of your own). Returns
    /// [`None`] if it doesn't exist (and `f` is not called).
    ///
    /// The jar is locked while `f` runs: `f` must not use these [`Cookies`] (or a clone of
    /// them), which would deadlock.
    ///
    /// # Example:
    /// ```
    /// use cookie::Cookie;
    /// use tower_cookies::Cookies;
    ///
    /// let cookies = Cookies::default();
    /// cookies.add(Cookie::new("foo", "bar"));
    ///
    /// assert_eq!(cookies.get_with("foo", |c| c.value().len()), Some(3));
    /// assert_eq!(cookies.get_with("baz", |c| c.value().len()), None);
    /// ```
    pub fn get_with<R>(&self, name: &str, f: impl FnOnce(&Cookie<'_>) -> R) -> Option<R> {
        let mut inner = self.inner.lock();
        if inner.jar.is_none() {
            // Nothing added or removed yet: answer from the request's headers, parsing only
            // the cookie asked for, instead of building the whole jar.
            let located = inner.located();
            let at = located.find(name)?;
            return located.cookie_at(at).map(|cookie| f(&cookie));
        }
        inner.jar().get(name).map(f)
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
            return inner.located().list();
        }
        inner.jar().iter().cloned().collect()
    }

    /// Returns the names of all the cookies in the jar, without copying their values.
    pub fn names(&self) -> Vec<String> {
        let mut inner = self.inner.lock();
        if inner.jar.is_none() {
            // Nothing added or removed yet: the names of the request's cookies, one per name.
            return inner.located().names();
        }
        inner.jar().iter().map(|c| c.name().to_owned()).collect()
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

/// The request's `Cookie` header values: the usual one kept inline, several in a `Vec`.
#[derive(Debug)]
enum Headers {
    One(HeaderValue),
    Many(Vec<HeaderValue>),
}

impl Default for Headers {
    fn default() -> Self {
        Headers::Many(Vec::new())
    }
}

impl Headers {
    fn as_slice(&self) -> &[HeaderValue] {
        match self {
            Headers::One(value) => std::slice::from_ref(value),
            Headers::Many(values) => values,
        }
    }
}

impl FromIterator<HeaderValue> for Headers {
    fn from_iter<I: IntoIterator<Item = HeaderValue>>(iter: I) -> Self {
        let mut iter = iter.into_iter();
        let Some(first) = iter.next() else {
            return Headers::default();
        };
        match iter.next() {
            None => Headers::One(first),
            Some(second) => {
                let mut values = vec![first, second];
                values.extend(iter);
                Headers::Many(values)
            }
        }
    }
}

#[derive(Debug, Default)]
struct Inner {
    headers: Headers,
    /// At most this many `;`-separated parts of `headers` are read, in all (`None`: all).
    max_parts: Option<usize>,
    located: Option<Located>,
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

/// The bytes of `headers` that are read when at most `max_parts` `;`-separated parts are, in
/// all: each header whole, or cut before the separator that ends the last part read; the
/// headers after that are not read.
fn bounded_headers(headers: &[HeaderValue], max_parts: Option<usize>) -> Vec<&[u8]> {
    let Some(mut left) = max_parts else {
        return headers.iter().map(HeaderValue::as_bytes).collect();
    };
    let mut read = Vec::with_capacity(headers.len());
    for header in headers {
        if left == 0 {
            break;
        }
        let bytes = header.as_bytes();
        match memchr::memchr_iter(b';', bytes).nth(left - 1) {
            Some(end) => {
                read.push(&bytes[..end]);
                left = 0;
            }
            None => {
                left -= memchr::memchr_iter(b';', bytes).count() + 1;
                read.push(bytes);
            }
        }
    }
    read
}

/// The request's cookies located in its headers (see [`Located::scan`]).
#[derive(Debug, Default)]
struct Located {
    /// The text of the headers that are read (the UTF-8 ones, cut at the part limit), one
    /// after the other: checked once, then sliced without checking again.
    text: String,
    /// The cookies, in header order (a name may repeat).
    cookies: Vec<Spot>,
}

/// Where one cookie is in [`Located::text`].
#[derive(Debug)]
struct Spot {
    /// The `;`-separated segment it is parsed from.
    segment: std::ops::Range<usize>,
    /// Its `=` (the first of the segment).
    eq: usize,
    name: SpotName,
}

/// The name of a [`Spot`].
#[derive(Debug)]
enum SpotName {
    /// In [`Located::text`] (a segment without `%`).
    Raw(std::ops::Range<usize>),
    /// Percent-decoded from a segment with `%`.
    Decoded(Box<str>),
}

impl Located {
    /// The segments of `headers` that the jar would parse into cookies, reading at most
    /// `max_parts` `;`-separated parts in all: the same cookies as [`Inner::jar`] parses.
    ///
    /// A header that is not UTF-8 is skipped, as the jar skips it. A segment holds no `;`, so
    /// parsing it gives no attributes: without `%` its cookie is the text before the first
    /// `=` and the text after it, both trimmed, the name not empty, which is read here
    /// without a full parse. A segment with `%` is parsed (and decoded) as the jar does it.
    ///
    /// One pass over each header finds the separators and the `%`s; each segment is checked
    /// for UTF-8 (a header is UTF-8 when each of its `;`-separated parts is; `simdutf8`, which
    /// gives `std::str::from_utf8`'s answer several times faster on long values) and copied
    /// into [`Located::text`] once.
    fn scan(headers: &[HeaderValue], max_parts: Option<usize>) -> Self {
        let mut left = max_parts.unwrap_or(usize::MAX);
        let mut located = Located {
            text: String::with_capacity(headers.iter().map(HeaderValue::len).sum()),
            cookies: Vec::new(),
        };
        'headers: for header in headers {
            if left == 0 {
                break;
            }
            let bytes = header.as_bytes();
            let (text_start, cookies_start) = (located.text.len(), located.cookies.len());
            let mut hits = memchr::memchr2_iter(b';', b'%', bytes);
            let (mut start, mut percent) = (0, false);
            loop {
                let next = hits.next();
                if let Some(at) = next {
                    if bytes[at] == b'%' {
                        percent = true;
                        continue;
                    }
                }
                let end = next.unwrap_or(bytes.len());
                let Ok(segment) = simdutf8::basic::from_utf8(&bytes[start..end]) else {
                    // Not UTF-8: the whole header is skipped (its parts still count).
                    located.text.truncate(text_start);
                    located.cookies.truncate(cookies_start);
                    left = left.saturating_sub(1 + memchr::memchr_iter(b';', &bytes[end..]).count());
                    continue 'headers;
                };
                located.push(segment, percent);
                left -= 1;
                match next {
                    Some(at) if left > 0 => (start, percent) = (at + 1, false),
                    _ => break,
                }
            }
        }
        located
    }

    /// Appends `segment` to the text, and its cookie to the cookies when it has one.
    fn push(&mut self, segment: &str, percent: bool) {
        let offset = self.text.len();
        self.text.push_str(segment);
        let Some(eq) = memchr::memchr(b'=', segment.as_bytes()) else {
            return;
        };
        let name = if percent {
            let Some(cookie) = parse_segment(segment) else {
                return;
            };
            SpotName::Decoded(cookie.name().into())
        } else {
            let raw = &segment[..eq];
            let name = raw.trim();
            if name.is_empty() {
                return;
            }
            let start = offset + (raw.len() - raw.trim_start().len());
            SpotName::Raw(start..start + name.len())
        };
        self.cookies.push(Spot {
            segment: offset..offset + segment.len(),
            eq: offset + eq,
            name,
        });
    }

    /// The name of a located cookie.
    fn name_of<'a>(&'a self, at: &'a Spot) -> &'a str {
        match &at.name {
            SpotName::Decoded(name) => name,
            SpotName::Raw(range) => self.text.get(range.clone()).unwrap_or_default(),
        }
    }

    /// The cookie `name` as the jar built from the request's headers would hold it (the last
    /// segment with that name wins, as in [`CookieJar::add_original`]).
    fn find(&self, name: &str) -> Option<&Spot> {
        self.cookies.iter().rev().find(|at| self.name_of(at) == name)
    }

    /// The cookie at `at`, borrowed from the text (decoded when its segment has `%`).
    fn cookie_at<'a>(&'a self, at: &'a Spot) -> Option<Cookie<'a>> {
        if let SpotName::Decoded(_) = at.name {
            return parse_segment(self.text.get(at.segment.clone())?);
        }
        let value = self.text.get(at.eq + 1..at.segment.end)?.trim();
        Some(Cookie::new(self.name_of(at), value))
    }

    /// The names of the request's cookies, one per name (as the jar would hold them).
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::with_capacity(self.cookies.len());
        if self.cookies.len() <= 16 {
            // A handful of cookies (the usual request): a scan beats hashing.
            for at in &self.cookies {
                let name = self.name_of(at);
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
            return names;
        }
        let mut seen = std::collections::HashSet::with_capacity(self.cookies.len());
        names.extend(
            self.cookies
                .iter()
                .map(|at| self.name_of(at))
                .filter(|name| seen.insert(*name))
                .map(str::to_owned),
        );
        names
    }

    /// The request's cookies as the jar built from the headers would list them: one per name,
    /// the last segment with that name winning, as in [`CookieJar::add_original`].
    fn list(&self) -> Vec<Cookie<'static>> {
        let mut seen = std::collections::HashSet::with_capacity(self.cookies.len());
        let mut cookies = Vec::with_capacity(self.cookies.len());
        for at in self.cookies.iter().rev() {
            if seen.insert(self.name_of(at)) {
                cookies.extend(self.cookie_at(at).map(Cookie::into_owned));
            }
        }
        cookies.reverse();
        cookies
    }
}

impl Inner {
    /// The request's cookies located in its headers, found on the first read and kept until
    /// a write builds the jar.
    fn located(&mut self) -> &Located {
        let (headers, max_parts) = (self.headers.as_slice(), self.max_parts);
        self.located
            .get_or_insert_with(|| Located::scan(headers, max_parts))
    }

    fn jar(&mut self) -> &mut CookieJar {
        if self.jar.is_none() {
            let mut jar = CookieJar::new();
            for header in bounded_headers(self.headers.as_slice(), self.max_parts) {
                if let Ok(header_str) = simdutf8::basic::from_utf8(header) {
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
