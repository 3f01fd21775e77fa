//! Cookies for the library: core's [`CookieJar`] over an Axum request.
//!
//! [`crate::AuthState::layer`] gives each request a [`ResponseCookies`] list. Every write
//! through a jar of that request goes into the list, and the layer turns it into `Set-Cookie`
//! headers on the response, so each cookie write of a request lands in that request's response.
//! Reads come straight from the request's `Cookie` header(s): no cookie parser, no copy on the
//! per-request session read ([`RequestJar`]).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use auth_core::cookies::{CookieAttributes, CookieJar};
use axum::extract::FromRequestParts;
use http::HeaderValue;
use http::header::COOKIE;
use http::request::Parts;

use crate::extract::{RequestAuth, SessionRejection};

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

    fn write(&self, name: &str, value: Option<&str>, attributes: &CookieAttributes) {
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
    fn written(&self, name: &str) -> Option<Option<String>> {
        self.lock()
            .iter()
            .find(|w| w.name == name)
            .map(|w| w.value.clone())
    }

    /// Names written in this request, with whether each was set (`true`) or removed.
    fn written_names(&self) -> Vec<(String, bool)> {
        self.lock()
            .iter()
            .map(|w| (w.name.clone(), w.value.is_some()))
            .collect()
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The `Set-Cookie` values for the response, emptying the list.
    pub(crate) fn take_headers(&self) -> Vec<HeaderValue> {
        std::mem::take(&mut *self.lock())
            .into_iter()
            .filter_map(|w| w.header)
            .collect()
    }
}

/// The request's `Cookie` header values (cheap clones of the received bytes).
#[derive(Clone, Default)]
pub(crate) enum CookieHeaders {
    #[default]
    None,
    One(HeaderValue),
    Many(Arc<[HeaderValue]>),
}

impl CookieHeaders {
    pub(crate) fn of(headers: &http::HeaderMap) -> Self {
        let mut values = headers.get_all(COOKIE).iter();
        match (values.next(), values.next()) {
            (None, _) => Self::None,
            (Some(one), None) => Self::One(one.clone()),
            (Some(_), Some(_)) => Self::Many(headers.get_all(COOKIE).iter().cloned().collect()),
        }
    }

    fn values(&self) -> &[HeaderValue] {
        match self {
            Self::None => &[],
            Self::One(v) => std::slice::from_ref(v),
            Self::Many(v) => v,
        }
    }
}

/// Core's cookie jar for one Axum request: the request's cookies plus what this request wrote
/// (read-your-writes), writes going to the response.
///
/// Extract it in a handler (it needs [`crate::AuthState::layer`]) to call `auth_core` flows the
/// router does not wrap, or get it with [`crate::Session::client_and_jar`].
#[derive(Clone)]
pub struct AxumCookieJar {
    request: CookieHeaders,
    writes: ResponseCookies,
}

impl AxumCookieJar {
    pub(crate) fn new(request: CookieHeaders, writes: ResponseCookies) -> Self {
        Self { request, writes }
    }
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
        let auth = parts
            .extensions
            .get::<RequestAuth>()
            .ok_or(SessionRejection::MissingAuthLayer)?;
        Ok(Self::new(
            CookieHeaders::of(&parts.headers),
            auth.writes().clone(),
        ))
    }
}

impl CookieJar for AxumCookieJar {
    fn get(&self, name: &str) -> Option<String> {
        read_your_writes(&parse(self.request.values()), Some(&self.writes), name)
    }

    fn names(&self) -> Vec<String> {
        merge_names(&parse(self.request.values()), Some(&self.writes))
    }

    fn set(&mut self, name: &str, value: &str, attributes: &CookieAttributes) {
        self.writes.write(name, Some(value), attributes);
    }

    fn remove(&mut self, name: &str, attributes: &CookieAttributes) {
        self.writes.write(name, None, attributes);
    }
}

/// The value of `name`: what this request wrote, else the request's cookie (text only).
fn read_your_writes(request: &Pairs<'_>, writes: Option<&ResponseCookies>, name: &str) -> Option<String> {
    if let Some(written) = writes.and_then(|w| w.written(name)) {
        return written;
    }
    let (_, value) = request.as_slice().iter().find(|(n, _)| *n == name)?;
    std::str::from_utf8(value).ok().map(str::to_owned)
}

/// Request cookie names, minus the ones written since, plus the ones set since.
fn merge_names(request: &Pairs<'_>, writes: Option<&ResponseCookies>) -> Vec<String> {
    let written = writes.map(ResponseCookies::written_names).unwrap_or_default();
    let mut names: Vec<String> = request
        .as_slice()
        .iter()
        .filter(|(n, _)| !written.iter().any(|(w, _)| w == n))
        .map(|(n, _)| (*n).to_owned())
        .collect();
    for (n, set) in written {
        if set && !names.contains(&n) {
            names.push(n);
        }
    }
    names
}

/// Cookies of one request considered when reading the session; later ones are ignored.
/// Browsers send at most about 180 per site, and the cap bounds the work a hostile header can
/// cause.
pub(crate) const MAX_REQUEST_COOKIES: usize = 256;

/// Request cookies as `(name, value)` pairs: the first few inline (no allocation for the
/// usual handful of cookies), all of them on the heap once there are more.
struct Pairs<'h> {
    inline: [(&'h str, &'h [u8]); INLINE_PAIRS],
    len: usize,
    heap: Vec<(&'h str, &'h [u8])>,
}

const INLINE_PAIRS: usize = 8;

impl Default for Pairs<'_> {
    fn default() -> Self {
        Self {
            inline: [("", &[]); INLINE_PAIRS],
            len: 0,
            heap: Vec::new(),
        }
    }
}

impl<'h> Pairs<'h> {
    fn as_slice(&self) -> &[(&'h str, &'h [u8])] {
        if self.len <= INLINE_PAIRS {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn push(&mut self, pair: (&'h str, &'h [u8])) {
        if self.len < INLINE_PAIRS {
            self.inline[self.len] = pair;
        } else {
            if self.len == INLINE_PAIRS {
                self.heap.reserve(INLINE_PAIRS * 4);
                self.heap.extend_from_slice(&self.inline);
            }
            self.heap.push(pair);
        }
        self.len += 1;
    }
}

/// The jar used to *read* the session on every request: it borrows the cookies straight from
/// the request's `Cookie` header(s), split without a cookie parser or any copy (our values are
/// base64url and never percent-encoded), and lends them to the session read
/// ([`CookieJar::lend`]). Writes (a rolling-window touch, an expired session's removal) go to
/// the request's [`ResponseCookies`] so they land in the response, and are read back from here.
pub(crate) struct RequestJar<'h> {
    request: Pairs<'h>,
    /// The request's writes (read back from here); `None` for a read-only jar, only ever lent
    /// as `&dyn CookieJar`.
    writes: Option<ResponseCookies>,
}

impl<'h> RequestJar<'h> {
    pub(crate) fn new(headers: &'h http::HeaderMap, writes: ResponseCookies) -> Self {
        Self {
            writes: Some(writes),
            ..Self::read_only(headers)
        }
    }

    /// A jar for reading only: it is lent as `&dyn CookieJar`, so nothing can write to it.
    pub(crate) fn read_only(headers: &'h http::HeaderMap) -> Self {
        Self {
            request: parse(headers.get_all(COOKIE)),
            writes: None,
        }
    }
}

/// Splits `Cookie` header values into `(name, value)` pairs: `;`-separated, trimmed, names
/// UTF-8 (values stay bytes until used), the first of duplicate names winning (browsers send
/// the most specific cookie first), at most [`MAX_REQUEST_COOKIES`].
fn parse<'h>(values: impl IntoIterator<Item = &'h HeaderValue>) -> Pairs<'h> {
    let mut pairs = Pairs::default();
    for value in values {
        let mut rest = value.as_bytes();
        while !rest.is_empty() {
            let (pair, after) = match memchr::memchr(b';', rest) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &rest[rest.len()..]),
            };
            rest = after;
            let Some(eq) = memchr::memchr(b'=', pair) else {
                continue;
            };
            let Ok(name) = std::str::from_utf8(pair[..eq].trim_ascii()) else {
                continue;
            };
            let value = pair[eq + 1..].trim_ascii();
            if !name.is_empty() && !pairs.as_slice().iter().any(|(n, _)| *n == name) {
                if pairs.len() == MAX_REQUEST_COOKIES {
                    return pairs;
                }
                pairs.push((name, value));
            }
        }
    }
    pairs
}

impl CookieJar for RequestJar<'_> {
    fn get(&self, name: &str) -> Option<String> {
        read_your_writes(&self.request, self.writes.as_ref(), name)
    }

    fn names(&self) -> Vec<String> {
        merge_names(&self.request, self.writes.as_ref())
    }

    fn set(&mut self, name: &str, value: &str, attributes: &CookieAttributes) {
        if let Some(w) = &self.writes {
            w.write(name, Some(value), attributes);
        }
    }

    fn remove(&mut self, name: &str, attributes: &CookieAttributes) {
        if let Some(w) = &self.writes {
            w.write(name, None, attributes);
        }
    }

    fn lend(&self) -> Option<&[(&str, &[u8])]> {
        let unwritten = self.writes.as_ref().is_none_or(ResponseCookies::is_empty);
        unwritten.then(|| self.request.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;
    use http::header::{COOKIE, HeaderValue};

    fn headers(values: &[&[u8]]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(COOKIE, HeaderValue::from_bytes(v).unwrap());
        }
        h
    }

    fn lent(h: &HeaderMap) -> Vec<(String, Vec<u8>)> {
        RequestJar::read_only(h)
            .lend()
            .unwrap()
            .iter()
            .map(|(n, v)| ((*n).to_owned(), v.to_vec()))
            .collect()
    }

    fn pair(n: &str, v: &str) -> (String, Vec<u8>) {
        (n.to_owned(), v.as_bytes().to_vec())
    }

    #[test]
    fn splits_trims_and_keeps_the_first_of_duplicates() {
        let h = headers(&[b" a = 1 ;b=x=y;; noequals; =v; a=2; c=", b"d=4; b=9"]);
        assert_eq!(
            lent(&h),
            vec![pair("a", "1"), pair("b", "x=y"), pair("c", ""), pair("d", "4")]
        );
        let jar = RequestJar::read_only(&h);
        assert_eq!(jar.get("a").as_deref(), Some("1"));
        assert_eq!(jar.names(), vec!["a", "b", "c", "d"]);
        assert!(lent(&headers(&[])).is_empty());
    }

    #[test]
    fn non_utf8_names_are_skipped_and_values_are_lent_as_bytes() {
        let h = headers(&[b"\xffname=1; ok=\xfe\xff; z=2"]);
        assert_eq!(
            lent(&h),
            vec![("ok".to_owned(), b"\xfe\xff".to_vec()), pair("z", "2")]
        );
        // `get` hands out text only.
        assert_eq!(RequestJar::read_only(&h).get("ok"), None);
    }

    #[test]
    fn writes_end_lending_and_are_read_back() {
        let h = headers(&[b"a=1; b=2; c=3"]);
        let writes = ResponseCookies::default();
        let mut jar = RequestJar::new(&h, writes.clone());
        assert!(jar.lend().is_some());
        jar.set("a", "10", &CookieAttributes::default());
        jar.remove("b", &CookieAttributes::default());
        jar.set("d", "4", &CookieAttributes::default());
        assert!(
            jar.lend().is_none(),
            "a written jar must not lend the request's cookies"
        );
        assert_eq!(jar.get("a").as_deref(), Some("10"));
        assert_eq!(jar.get("b"), None);
        assert_eq!(jar.names(), vec!["c", "a", "d"]);

        // Another jar of the same request sees the writes too.
        let other = AxumCookieJar::new(CookieHeaders::of(&h), writes.clone());
        assert_eq!(other.get("a").as_deref(), Some("10"));
        assert_eq!(other.get("b"), None);
        assert_eq!(other.get("c").as_deref(), Some("3"));
        assert_eq!(other.names(), vec!["c", "a", "d"]);

        let set: Vec<String> = writes
            .take_headers()
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(set.len(), 3, "{set:?}");
        assert!(set[0].starts_with("a=10;"), "{set:?}");
        assert!(
            set[1].starts_with("b=;") && set[1].contains("Max-Age=0"),
            "{set:?}"
        );
        assert!(set[2].starts_with("d=4;"), "{set:?}");
        assert!(writes.take_headers().is_empty(), "taken once");
    }

    #[test]
    fn the_latest_write_of_a_name_is_the_one_sent() {
        let writes = ResponseCookies::default();
        let mut jar = AxumCookieJar::new(CookieHeaders::None, writes.clone());
        jar.set("x", "1", &CookieAttributes::default());
        jar.remove("x", &CookieAttributes::default());
        jar.set("y", "1", &CookieAttributes::default());
        jar.set("y", "2", &CookieAttributes::default());
        let set: Vec<String> = writes
            .take_headers()
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(set.len(), 2, "{set:?}");
        assert!(
            set[0].starts_with("x=;") && set[0].contains("Max-Age=0"),
            "{set:?}"
        );
        assert!(set[1].starts_with("y=2;"), "{set:?}");
        // Multiple Cookie headers (HTTP/2) are read as one list.
        let h = headers(&[b"a=1", b"b=2; a=3"]);
        let jar = AxumCookieJar::new(CookieHeaders::of(&h), ResponseCookies::default());
        assert_eq!(jar.names(), vec!["a", "b"]);
        assert_eq!(jar.get("a").as_deref(), Some("1"));
    }

    #[test]
    fn many_cookies_spill_to_the_heap_and_are_capped() {
        let header: String = (0..1000).map(|i| format!("c{i}={i}; ")).collect();
        let h = headers(&[header.as_bytes()]);
        let pairs = lent(&h);
        assert_eq!(pairs.len(), MAX_REQUEST_COOKIES);
        assert_eq!(pairs[0], pair("c0", "0"));
        assert_eq!(pairs[MAX_REQUEST_COOKIES - 1], pair("c255", "255"));
        // Duplicates do not count against the cap.
        let dup: String = (0..1000).map(|_| "same=1; ").collect::<String>() + "last=2";
        assert_eq!(
            lent(&headers(&[dup.as_bytes()])),
            vec![pair("same", "1"), pair("last", "2")]
        );
    }
}
