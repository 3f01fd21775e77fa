//! Cookies for the library: core's [`CookieJar`] over an Axum request.
//!
//! [`crate::AuthState::layer`] gives each request a [`ResponseCookies`] list. Every write
//! through a jar of that request goes into the list, and the layer turns it into `Set-Cookie`
//! headers on the response, so each cookie write of a request lands in that request's response.
//! Reads come straight from the request's `Cookie` header(s): no cookie parser, no copy on the
//! per-request session read ([`RequestJar`]).

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use auth_core::cookies::{CookieAttributes, CookieJar};
use axum::extract::FromRequestParts;
use http::HeaderValue;
use http::header::COOKIE;
use http::request::Parts;

use crate::rejection::SessionRejection;
use crate::request::{RequestAuth, ResponseCookies};

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
    /// Where the request's cookies are in `request`, parsed once, on the first read through
    /// this jar.
    parsed: OnceLock<Vec<Span>>,
    writes: ResponseCookies,
}

impl AxumCookieJar {
    pub(crate) fn new(request: CookieHeaders, writes: ResponseCookies) -> Self {
        Self {
            request,
            parsed: OnceLock::new(),
            writes,
        }
    }

    /// The request's cookies, parsed on first use and kept for the jar's lifetime, so reading
    /// many cookies costs one parse, not one per read.
    fn request(&self) -> SpanView<'_> {
        let values = self.request.values();
        let spans = self.parsed.get_or_init(|| {
            parse(values)
                .as_slice()
                .iter()
                .filter_map(|(n, v)| Span::locate(values, n.as_bytes(), v))
                .collect()
        });
        SpanView { values, spans }
    }
}

/// Where one parsed cookie sits in the request's `Cookie` header values: which value, and the
/// byte ranges of its name and value there (the parse borrows from the values, so the jar keeps
/// positions instead of copies).
#[derive(Clone, Copy)]
struct Span {
    header: usize,
    name: (usize, usize),
    value: (usize, usize),
}

impl Span {
    /// The position of `name` and `value`, slices of one of `values`.
    fn locate(values: &[HeaderValue], name: &[u8], value: &[u8]) -> Option<Self> {
        let range = |base: usize, part: &[u8]| {
            let start = (part.as_ptr() as usize).checked_sub(base)?;
            Some((start, start + part.len()))
        };
        values.iter().enumerate().find_map(|(header, v)| {
            let bytes = v.as_bytes();
            let base = bytes.as_ptr() as usize;
            let name = range(base, name).filter(|&(_, end)| end <= bytes.len())?;
            let value = range(base, value).filter(|&(_, end)| end <= bytes.len())?;
            Some(Self { header, name, value })
        })
    }
}

/// The parsed cookies of an [`AxumCookieJar`]: its header values and the cookies' positions.
struct SpanView<'a> {
    values: &'a [HeaderValue],
    spans: &'a [Span],
}

impl<'a> SpanView<'a> {
    fn bytes(&self, header: usize, (start, end): (usize, usize)) -> &'a [u8] {
        self.values
            .get(header)
            .and_then(|v| v.as_bytes().get(start..end))
            .unwrap_or_default()
    }
}

impl RequestCookies for SpanView<'_> {
    fn value(&self, name: &str) -> Option<&[u8]> {
        // At most MAX_REQUEST_COOKIES short comparisons (the length first): no index needed.
        self.spans
            .iter()
            .find(|s| self.bytes(s.header, s.name) == name.as_bytes())
            .map(|s| self.bytes(s.header, s.value))
    }

    fn each_name(&self) -> impl Iterator<Item = &str> {
        // Names were checked to be UTF-8 when parsed.
        self.spans
            .iter()
            .filter_map(|s| std::str::from_utf8(self.bytes(s.header, s.name)).ok())
    }

    fn count(&self) -> usize {
        self.spans.len()
    }
}

/// Read access to a request's parsed cookies, in header order; a name may repeat, and the first
/// occurrence is the cookie.
trait RequestCookies {
    /// The value of the first cookie named `name`, as received.
    fn value(&self, name: &str) -> Option<&[u8]>;
    /// Every name, in header order (a repeated name each time).
    fn each_name(&self) -> impl Iterator<Item = &str>;
    /// How many pairs there are (repeats included).
    fn count(&self) -> usize;
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
        read_your_writes(&self.request(), Some(&self.writes), name)
    }

    fn names(&self) -> Vec<String> {
        merge_names(&self.request(), Some(&self.writes))
    }

    fn set(&mut self, name: &str, value: &str, attributes: &CookieAttributes) {
        self.writes.write(name, Some(value), attributes);
    }

    fn remove(&mut self, name: &str, attributes: &CookieAttributes) {
        self.writes.write(name, None, attributes);
    }
}

/// The value of `name`: what this request wrote, else the request's cookie (text only).
fn read_your_writes(
    request: &impl RequestCookies,
    writes: Option<&ResponseCookies>,
    name: &str,
) -> Option<String> {
    if let Some(written) = writes.and_then(|w| w.written(name)) {
        return written;
    }
    std::str::from_utf8(request.value(name)?).ok().map(str::to_owned)
}

/// Request cookie names (each once), minus the ones written since, plus the ones set since.
fn merge_names(request: &impl RequestCookies, writes: Option<&ResponseCookies>) -> Vec<String> {
    let written = writes.map(ResponseCookies::written_names).unwrap_or_default();
    // Written names, then each request name as it is seen: a set of at most
    // MAX_REQUEST_COOKIES + writes names, so repeats are skipped in constant time.
    let mut seen: HashSet<&str> = HashSet::with_capacity(written.len() + request.count());
    seen.extend(written.iter().map(|(n, _)| n.as_str()));
    let mut names: Vec<String> = request
        .each_name()
        .filter(|n| seen.insert(n))
        .map(str::to_owned)
        .collect();
    // Written names are unique (one entry per name), and none of them is in `names` now.
    names.extend(written.iter().filter(|(_, set)| *set).map(|(n, _)| n.clone()));
    names
}

/// Cookie pairs of one request considered (a repeated name counts each time); later ones are
/// ignored. Browsers send at most about 180 per site, and the cap bounds the work a hostile
/// header can cause, and the length of every lookup.
pub(crate) const MAX_REQUEST_COOKIES: usize = 256;

/// `;`-separated segments of a request's `Cookie` header(s) looked at, whatever they hold
/// (pairs, repeated names, junk without `=`); the rest of the header is ignored. Four times
/// [`MAX_REQUEST_COOKIES`]: far more than any browser sends, and it bounds the parse of a
/// hostile header of any length to a few microseconds.
pub(crate) const MAX_SCANNED_SEGMENTS: usize = 4 * MAX_REQUEST_COOKIES;

/// Request cookies as `(name, value)` pairs in header order, a name possibly repeated (the
/// first occurrence is the cookie): the first few inline (no allocation for the usual handful
/// of cookies), all of them on the heap once there are more. Nothing is hashed or compared
/// while splitting, so the per-request parse costs a few nanoseconds per pair; lookups scan
/// the at most [`MAX_REQUEST_COOKIES`] pairs and take the first match.
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

    /// Adds `pair`; `false` when [`MAX_REQUEST_COOKIES`] pairs are kept already. `more`
    /// estimates how many pairs may still come, to size the heap once when spilling.
    fn add(&mut self, pair: (&'h str, &'h [u8]), more: usize) -> bool {
        if self.len == MAX_REQUEST_COOKIES {
            return false;
        }
        if self.len < INLINE_PAIRS {
            self.inline[self.len] = pair;
        } else {
            if self.len == INLINE_PAIRS {
                let room = (INLINE_PAIRS + more).clamp(INLINE_PAIRS * 4, MAX_REQUEST_COOKIES);
                self.heap.reserve(room);
                self.heap.extend_from_slice(&self.inline);
            }
            self.heap.push(pair);
        }
        self.len += 1;
        true
    }
}

impl RequestCookies for Pairs<'_> {
    fn value(&self, name: &str) -> Option<&[u8]> {
        self.as_slice().iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    fn each_name(&self) -> impl Iterator<Item = &str> {
        self.as_slice().iter().map(|(n, _)| *n)
    }

    fn count(&self) -> usize {
        self.len
    }
}

/// The jar used to *read* the session on every request: it borrows the cookies straight from
/// the request's `Cookie` header(s), split without any copy (our values are base64url and
/// never percent-encoded). Writes (a rolling-window touch, an expired session's removal) go to
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
            request: parse(headers.get_all(COOKIE)),
            writes: Some(writes),
        }
    }

    /// A jar for reading only (tests): writes through it are dropped.
    #[cfg(test)]
    pub(crate) fn read_only(headers: &'h http::HeaderMap) -> Self {
        Self {
            request: parse(headers.get_all(COOKIE)),
            writes: None,
        }
    }
}

/// Splits `Cookie` header values into `(name, value)` pairs: `;`-separated, trimmed, names
/// UTF-8 (values stay bytes until used), in header order with repeated names kept (readers
/// take the first occurrence: browsers send the most specific cookie first), at most
/// [`MAX_REQUEST_COOKIES`] pairs (repeats count) out of at most [`MAX_SCANNED_SEGMENTS`]
/// segments. One pass over the bytes looked at, no hashing: linear and bounded.
fn parse<'h>(values: impl IntoIterator<Item = &'h HeaderValue>) -> Pairs<'h> {
    let mut pairs = Pairs::default();
    let mut scanned = 0usize;
    for value in values {
        let mut rest = value.as_bytes();
        while !rest.is_empty() {
            if scanned == MAX_SCANNED_SEGMENTS {
                return pairs;
            }
            scanned += 1;
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
            // A pair takes at least a few bytes; a long rest means many may follow.
            if !name.is_empty() && !pairs.add((name, value), rest.len() / 16) {
                return pairs;
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
            .request
            .as_slice()
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
        // Lent as sent, repeats included (core's readers take the first occurrence) ...
        assert_eq!(
            lent(&h),
            vec![
                pair("a", "1"),
                pair("b", "x=y"),
                pair("a", "2"),
                pair("c", ""),
                pair("d", "4"),
                pair("b", "9")
            ]
        );
        // ... while lookups take the first one and names list each once.
        let jar = RequestJar::read_only(&h);
        assert_eq!(jar.get("a").as_deref(), Some("1"));
        assert_eq!(jar.get("b").as_deref(), Some("x=y"));
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
    fn writes_are_read_back() {
        let h = headers(&[b"a=1; b=2; c=3"]);
        let writes = ResponseCookies::default();
        let mut jar = RequestJar::new(&h, writes.clone());
        jar.set("a", "10", &CookieAttributes::default());
        jar.remove("b", &CookieAttributes::default());
        jar.set("d", "4", &CookieAttributes::default());
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
    fn segments_scanned_are_capped_whatever_they_hold() {
        // Junk without `=`, repeated names and empty segments all count: a cookie after
        // MAX_SCANNED_SEGMENTS of them is not looked at, so a hostile header costs a bounded
        // parse however long it is.
        for filler in ["junk", "dup=1", ""] {
            let header: String = std::iter::repeat_n(filler, MAX_SCANNED_SEGMENTS)
                .collect::<Vec<_>>()
                .join(";")
                + ";late=1";
            let h = headers(&[header.as_bytes()]);
            assert_eq!(RequestJar::read_only(&h).get("late"), None, "after {filler:?}");
            let jar = AxumCookieJar::new(CookieHeaders::of(&h), ResponseCookies::default());
            assert_eq!(jar.get("late"), None, "after {filler:?}");
        }
        // Just inside the cap it is still read, in one header or spread over several.
        let header: String = std::iter::repeat_n("junk", MAX_SCANNED_SEGMENTS - 1)
            .collect::<Vec<_>>()
            .join(";")
            + ";late=1";
        let h = headers(&[header.as_bytes()]);
        assert_eq!(RequestJar::read_only(&h).get("late").as_deref(), Some("1"));
        let half = "x;".repeat(MAX_SCANNED_SEGMENTS / 2);
        let h = headers(&[half.as_bytes(), half.as_bytes(), b"late=1"]);
        assert_eq!(RequestJar::read_only(&h).get("late"), None);
    }

    #[test]
    fn lookups_by_name_agree_with_the_first_occurrence_inline_and_spilled() {
        for n in [
            1,
            INLINE_PAIRS / 2,
            INLINE_PAIRS - 1,
            INLINE_PAIRS,
            INLINE_PAIRS + 1,
            100,
            MAX_REQUEST_COOKIES / 2,
        ] {
            // Each name twice: first with its index, then a later value that must lose.
            let header: String = (0..n)
                .map(|i| format!("n{i}={i}; "))
                .chain((0..n).map(|i| format!("n{i}=late; ")))
                .collect();
            let h = headers(&[header.as_bytes()]);
            let request = RequestJar::read_only(&h);
            let axum = AxumCookieJar::new(CookieHeaders::of(&h), ResponseCookies::default());
            for i in 0..n {
                let name = format!("n{i}");
                assert_eq!(request.get(&name), Some(i.to_string()), "{n}: {name}");
                assert_eq!(axum.get(&name), Some(i.to_string()), "{n}: {name}");
            }
            assert_eq!(request.get("absent"), None);
            assert_eq!(axum.get("absent"), None);
            let names: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
            assert_eq!(request.names(), names);
            assert_eq!(axum.names(), names);
            assert_eq!(lent(&h).len(), 2 * n);
        }
    }

    #[test]
    fn the_axum_jar_parses_the_header_once() {
        let h = headers(&[b"a=1; b=2"]);
        let jar = AxumCookieJar::new(CookieHeaders::of(&h), ResponseCookies::default());
        assert!(jar.parsed.get().is_none(), "nothing parsed before a read");
        assert_eq!(jar.get("a").as_deref(), Some("1"));
        let parsed: *const Span = jar.request().spans.as_ptr();
        assert_eq!(jar.get("b").as_deref(), Some("2"));
        assert_eq!(jar.names(), vec!["a", "b"]);
        assert!(
            std::ptr::eq(parsed, jar.request().spans.as_ptr()),
            "the same parse serves every read"
        );
    }

    #[test]
    fn many_cookies_spill_to_the_heap_and_are_capped() {
        let header: String = (0..1000).map(|i| format!("c{i}={i}; ")).collect();
        let h = headers(&[header.as_bytes()]);
        let pairs = lent(&h);
        assert_eq!(pairs.len(), MAX_REQUEST_COOKIES);
        assert_eq!(pairs[0], pair("c0", "0"));
        assert_eq!(pairs[MAX_REQUEST_COOKIES - 1], pair("c255", "255"));
        // Repeats count against the cap (no pair is hashed to find them): whoever sends a
        // thousand copies of one cookie only hides their own later cookies.
        let dup: String = (0..1000).map(|_| "same=1; ").collect::<String>() + "last=2";
        let h = headers(&[dup.as_bytes()]);
        assert_eq!(lent(&h).len(), MAX_REQUEST_COOKIES);
        let jar = RequestJar::read_only(&h);
        assert_eq!(jar.names(), vec!["same"]);
        assert_eq!(jar.get("last"), None);
    }
}
