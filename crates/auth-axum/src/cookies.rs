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
/// ([`CookieJar::lend`]). Writes (a rolling-window touch, an expired session's removal) go
/// through tower-cookies so they land in the response, and are read back from here.
pub(crate) struct RequestJar<'h> {
    request: Pairs<'h>,
    written: Vec<(String, Option<String>)>,
    /// Where writes go; `None` for a read-only jar, only ever lent as `&dyn CookieJar`.
    cookies: Option<Cookies>,
}

impl<'h> RequestJar<'h> {
    pub(crate) fn new(headers: &'h http::HeaderMap, cookies: Cookies) -> Self {
        Self {
            cookies: Some(cookies),
            ..Self::read_only(headers)
        }
    }

    /// A jar for reading only: it is lent as `&dyn CookieJar`, so nothing can write to it.
    pub(crate) fn read_only(headers: &'h http::HeaderMap) -> Self {
        let mut request = Pairs::default();
        'headers: for value in headers.get_all(http::header::COOKIE) {
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
                // Values stay bytes until used: the session read compares them as bytes.
                let Ok(name) = std::str::from_utf8(pair[..eq].trim_ascii()) else {
                    continue;
                };
                let value = pair[eq + 1..].trim_ascii();
                // The first of duplicate names wins, as in browsers' ordering and tower-cookies.
                if !name.is_empty() && !request.as_slice().iter().any(|(n, _)| *n == name) {
                    if request.len() == MAX_REQUEST_COOKIES {
                        break 'headers;
                    }
                    request.push((name, value));
                }
            }
        }
        Self {
            request,
            written: Vec::new(),
            cookies: None,
        }
    }
}

impl CookieJar for RequestJar<'_> {
    fn get(&self, name: &str) -> Option<String> {
        if let Some((_, v)) = self.written.iter().rev().find(|(n, _)| n == name) {
            return v.clone();
        }
        let (_, value) = self.request.as_slice().iter().find(|(n, _)| *n == name)?;
        std::str::from_utf8(value).ok().map(str::to_owned)
    }

    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .request
            .as_slice()
            .iter()
            .filter(|(n, _)| !self.written.iter().any(|(w, _)| w == n))
            .map(|(n, _)| (*n).to_owned())
            .collect();
        for (n, v) in &self.written {
            if v.is_some() && !names.contains(n) {
                names.push(n.clone());
            }
        }
        names
    }

    fn set(&mut self, name: &str, value: &str, attributes: &CookieAttributes) {
        if let Some(c) = &self.cookies {
            c.add(attributes.to_cookie(name, value));
        }
        self.written.retain(|(n, _)| n != name);
        self.written.push((name.to_owned(), Some(value.to_owned())));
    }

    fn remove(&mut self, name: &str, attributes: &CookieAttributes) {
        if let Some(c) = &self.cookies {
            c.remove(attributes.to_cookie(name, ""));
        }
        self.written.retain(|(n, _)| n != name);
        self.written.push((name.to_owned(), None));
    }

    fn lend(&self) -> Option<&[(&str, &[u8])]> {
        self.written.is_empty().then(|| self.request.as_slice())
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

    #[tokio::test]
    async fn writes_end_lending_and_are_read_back_and_reach_the_response() {
        use tower::{Layer, ServiceExt};
        let svc = tower_cookies::CookieManagerLayer::new().layer(tower::service_fn(
            |req: http::Request<()>| async move {
                let cookies = req.extensions().get::<Cookies>().cloned().unwrap();
                let mut jar = RequestJar::new(req.headers(), cookies);
                assert!(jar.lend().is_some());
                jar.set("a", "10", &CookieAttributes::default());
                jar.remove("b", &CookieAttributes::default());
                assert!(
                    jar.lend().is_none(),
                    "a written jar must not lend the request's cookies"
                );
                assert_eq!(jar.get("a").as_deref(), Some("10"));
                assert_eq!(jar.get("b"), None);
                assert_eq!(jar.names(), vec!["a"]);
                Ok::<_, std::convert::Infallible>(http::Response::new(()))
            },
        ));
        let req = http::Request::builder()
            .header(COOKIE, "a=1; b=2")
            .body(())
            .unwrap();
        let resp = svc.oneshot(req).await.unwrap();
        let set: Vec<&str> = resp
            .headers()
            .get_all(http::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert!(set.iter().any(|c| c.starts_with("a=10")), "{set:?}");
        assert!(
            set.iter().any(|c| c.starts_with("b=") && c.contains("Max-Age=0")),
            "{set:?}"
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
        // Duplicates do not count against the cap.
        let dup: String = (0..1000).map(|_| "same=1; ").collect::<String>() + "last=2";
        assert_eq!(
            lent(&headers(&[dup.as_bytes()])),
            vec![pair("same", "1"), pair("last", "2")]
        );
    }
}
