//! Cookie access for the library: the [`CookieJar`] seam that every framework adapter
//! implements, an in-memory [`MemoryCookieJar`] for tests and non-HTTP callers, and the
//! chunking used to store values larger than one browser cookie.
//!
//! The library never talks to a framework's request or response directly; it reads and writes
//! cookies through a [`CookieJar`] for the duration of one request. Adapters translate
//! [`CookieAttributes`] into `Set-Cookie` headers, for example with
//! [`CookieAttributes::to_cookie`] and [`CookieAttributes::to_removal_cookie`].

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use cookie::{Cookie, SameSite};

/// Attributes for a cookie written by the library.
///
/// The [`Default`] is the safe baseline for session and transaction cookies: `HttpOnly`,
/// `SameSite=Lax`, `Path=/`, host-only (no `Domain`), a browser-session cookie (no `Max-Age`),
/// and **not** `Secure` — enable [`secure`](Self::secure) whenever the app is served over https.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieAttributes {
    /// `HttpOnly`: keeps the cookie away from page scripts.
    pub http_only: bool,
    /// `Secure`: the browser only sends the cookie over https.
    pub secure: bool,
    /// `SameSite` policy. `Lax` is required for the login callback, which arrives as a
    /// top-level cross-site navigation from the identity provider.
    pub same_site: SameSite,
    /// `Path` the cookie is scoped to.
    pub path: String,
    /// `Domain` to share the cookie with subdomains; `None` keeps it host-only.
    pub domain: Option<String>,
    /// `Max-Age`; `None` makes a browser-session cookie. Sub-second parts are truncated.
    pub max_age: Option<Duration>,
}

impl Default for CookieAttributes {
    fn default() -> Self {
        Self {
            http_only: true,
            secure: false,
            same_site: SameSite::Lax,
            path: "/".to_owned(),
            domain: None,
            max_age: None,
        }
    }
}

impl CookieAttributes {
    /// Builds the `Set-Cookie` cookie for `name=value` with these attributes.
    ///
    /// Values written by the library (sealed tokens) are plain ASCII and need no encoding; the
    /// value is used verbatim. A `max_age` too large for the cookie crate saturates.
    pub fn to_cookie(&self, name: &str, value: &str) -> Cookie<'static> {
        let mut cookie = Cookie::build((name.to_owned(), value.to_owned()))
            .http_only(self.http_only)
            .secure(self.secure)
            .same_site(self.same_site)
            .path(self.path.clone())
            .build();
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.clone());
        }
        if let Some(max_age) = self.max_age {
            let max_age = cookie::time::Duration::try_from(max_age).unwrap_or(cookie::time::Duration::MAX);
            cookie.set_max_age(max_age);
        }
        cookie
    }

    /// Builds the `Set-Cookie` cookie that makes a browser delete `name`: empty value,
    /// `Max-Age=0` and an `Expires` in the past, with the same path and domain as these
    /// attributes (a browser only deletes a cookie whose path and domain match).
    pub fn to_removal_cookie(&self, name: &str) -> Cookie<'static> {
        let mut cookie = self.to_cookie(name, "");
        cookie.make_removal();
        cookie
    }
}

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
    /// The visible cookies as borrowed `(name, value bytes)` pairs, for a jar that holds the
    /// request's cookies and can lend them without copying or validating the values: the
    /// per-request session read then finds and compares its chunks without a copy (values that
    /// are not UTF-8 are simply not a session). Pairs are in request order and a name may
    /// repeat: the first occurrence is the cookie, as for [`get`](Self::get) (so a lending jar
    /// need not de-duplicate, which would cost a hash per cookie on every request). `None`,
    /// the default, makes callers use [`names`](Self::names) and [`get`](Self::get). A jar that
    /// lends must return `None` once a write through it changed what is visible
    /// (read-your-writes).
    fn lend(&self) -> Option<&[(&str, &[u8])]> {
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

/// Maximum `name.len() + value.len()` of one cookie written by [`write_chunked`], in bytes;
/// comfortably inside the 4096-byte per-cookie minimum that browsers must support.
pub(crate) const CHUNK_LIMIT: usize = 4000;

/// How a cookie name relates to the chunk family of a base name.
#[derive(Debug, PartialEq, Eq)]
enum ChunkName {
    /// Not part of the family (includes the plain un-chunked `<base>`).
    Unrelated,
    /// `<base>_<n>` with `n` a canonical decimal index.
    Index(usize),
    /// `<base>_<suffix>` where the suffix is not a canonical decimal index (`x`, `01`, `+1`).
    Invalid,
}

/// Classifies `name` against the chunk family `<base>_<suffix>`.
///
/// A suffix that itself contains `_` (for example `<base>_tx_<state>`) belongs to a different
/// cookie family and is unrelated; any other suffix is a chunk and must be a canonical decimal
/// `usize` (`0`, or digits without a leading zero, no sign).
fn classify(name: &str, base: &str) -> ChunkName {
    let Some(suffix) = name.strip_prefix(base).and_then(|rest| rest.strip_prefix('_')) else {
        return ChunkName::Unrelated;
    };
    if suffix.contains('_') {
        return ChunkName::Unrelated;
    }
    let canonical = !suffix.is_empty()
        && suffix.bytes().all(|b| b.is_ascii_digit())
        && (suffix == "0" || !suffix.starts_with('0'));
    match suffix.parse::<usize>() {
        Ok(index) if canonical => ChunkName::Index(index),
        _ => ChunkName::Invalid,
    }
}

/// Writes `value` as `<base>_0`, `<base>_1`, … with each cookie's name plus value within
/// [`CHUNK_LIMIT`] bytes (split on character boundaries), then removes every other cookie of
/// the family so that [`read_chunked`] returns exactly `value`: chunks with an index at or
/// beyond the new count (contiguous or not), chunks with an invalid suffix, and a plain
/// un-chunked `<base>` cookie. An empty value is written as a single empty `<base>_0`.
pub(crate) fn write_chunked(jar: &mut dyn CookieJar, base: &str, value: &str, attrs: &CookieAttributes) {
    let mut start: usize = 0;
    let mut count: usize = 0;
    loop {
        let name = format!("{base}_{count}");
        // Always make progress, even for a pathological base name near the limit.
        let capacity = CHUNK_LIMIT.saturating_sub(name.len()).max(1);
        let mut end = start.saturating_add(capacity).min(value.len());
        while end > start && !value.is_char_boundary(end) {
            end -= 1;
        }
        if end == start && start < value.len() {
            // A single character wider than the capacity: emit it whole rather than loop.
            end = start + 1;
            while !value.is_char_boundary(end) {
                end += 1;
            }
        }
        jar.set(&name, value.get(start..end).unwrap_or_default(), attrs);
        count += 1;
        start = end;
        if start >= value.len() {
            break;
        }
    }

    for name in jar.names() {
        let stale = match classify(&name, base) {
            ChunkName::Index(index) => index >= count,
            ChunkName::Invalid => true,
            ChunkName::Unrelated => name == base,
        };
        if stale {
            jar.remove(&name, attrs);
        }
    }
}

/// A value written by [`write_chunked`], as read back: its chunks in order, borrowed from the
/// jar when it lends them ([`CookieJar::lend`]), so a caller that only needs to compare the
/// value (the opened-session cache) never joins or copies it.
pub(crate) struct Chunks<'a> {
    /// The parts in order when they are few and borrowed (no allocation), ...
    inline: [&'a [u8]; INLINE_CHUNKS],
    inline_count: usize,
    /// ... or else all of them here.
    spilled: Vec<Cow<'a, [u8]>>,
    len: usize,
}

/// Chunks kept without allocating; realistic sessions have two or three.
const INLINE_CHUNKS: usize = 4;

impl<'a> Chunks<'a> {
    fn borrowed(parts: &[&'a [u8]]) -> Self {
        let mut inline: [&'a [u8]; INLINE_CHUNKS] = [&[]; INLINE_CHUNKS];
        inline[..parts.len()].copy_from_slice(parts);
        Self {
            inline,
            inline_count: parts.len(),
            spilled: Vec::new(),
            len: parts.iter().map(|p| p.len()).sum(),
        }
    }

    fn spilled(parts: Vec<Cow<'a, [u8]>>) -> Self {
        Self {
            inline: [&[]; INLINE_CHUNKS],
            inline_count: 0,
            len: parts.iter().map(|p| p.len()).sum(),
            spilled: parts,
        }
    }

    fn parts(&self) -> impl Iterator<Item = &[u8]> {
        let inline = self.inline[..self.inline_count].iter().copied();
        inline.chain(self.spilled.iter().map(|p| &**p))
    }

    /// Length of the joined value in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The joined value; `None` when it is not UTF-8 (then it is no value we wrote).
    pub(crate) fn join(&self) -> Option<String> {
        String::from_utf8(self.join_bytes()).ok()
    }

    fn join_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for p in self.parts() {
            out.extend_from_slice(p);
        }
        out
    }

    /// The joined value's last `n` bytes (all of it when shorter), copied only when they span
    /// two chunks.
    pub(crate) fn tail(&self, n: usize) -> Cow<'_, [u8]> {
        let n = n.min(self.len);
        match self.parts().last() {
            Some(last) if last.len() >= n => Cow::Borrowed(&last[last.len() - n..]),
            _ => {
                let joined = self.join_bytes();
                Cow::Owned(joined[joined.len() - n..].to_vec())
            }
        }
    }

    /// Whether the joined value is exactly `other`, looking at every byte whatever the first
    /// difference (no early exit), so the time taken depends on the lengths only.
    pub(crate) fn same_bytes(&self, other: &[u8]) -> bool {
        if self.len != other.len() {
            return false;
        }
        let mut diff = 0u8;
        let mut rest = other;
        for p in self.parts() {
            let (here, after) = rest.split_at(p.len());
            // An OR of all byte differences: no branch on the data (and it vectorises well).
            diff |= p.iter().zip(here).fold(0u8, |acc, (x, y)| acc | (x ^ y));
            rest = after;
        }
        std::hint::black_box(diff) == 0
    }
}

/// Reads a value written by [`write_chunked`]: `<base>_0` … `<base>_<count-1>` in numeric
/// order, borrowed from the jar when it lends its cookies.
///
/// Returns `None` ("no session") when any chunk has an invalid suffix, the indexes are not
/// exactly `0..count`, or `count > max_chunks`. When no chunk exists, a single un-chunked
/// `<base>` cookie is returned instead, if present.
pub(crate) fn read_chunks<'a>(jar: &'a dyn CookieJar, base: &str, max_chunks: usize) -> Option<Chunks<'a>> {
    if let Some(pairs) = jar.lend() {
        return read_lent_chunks(pairs, base, max_chunks);
    }
    let mut chunks: Vec<(usize, Cow<'a, [u8]>)> = Vec::new();
    for name in jar.names() {
        match classify(&name, base) {
            ChunkName::Index(index) => {
                if chunks.len() >= max_chunks {
                    return None;
                }
                chunks.push((index, Cow::Owned(jar.get(&name)?.into_bytes())));
            }
            ChunkName::Invalid => return None,
            ChunkName::Unrelated => {}
        }
    }
    if chunks.is_empty() {
        return jar
            .get(base)
            .map(|v| Chunks::spilled(vec![Cow::Owned(v.into_bytes())]));
    }
    in_order(chunks).map(Chunks::spilled)
}

/// [`read_chunks`] over lent cookies: a few chunks stay on the stack, more spill to a `Vec`.
fn read_lent_chunks<'a>(pairs: &[(&str, &'a [u8])], base: &str, max_chunks: usize) -> Option<Chunks<'a>> {
    let mut few: [(usize, &'a [u8]); INLINE_CHUNKS] = [(0, &[]); INLINE_CHUNKS];
    let mut count = 0usize;
    let mut spill: Vec<(usize, Cow<'a, [u8]>)> = Vec::new();
    let mut plain: Option<&'a [u8]> = None;
    for &(name, value) in pairs {
        match classify(name, base) {
            ChunkName::Index(index) => {
                // A repeated name: the first occurrence is the cookie (at most `max_chunks`
                // indexes to look through).
                let repeated = if spill.is_empty() {
                    few[..count.min(INLINE_CHUNKS)].iter().any(|&(i, _)| i == index)
                } else {
                    spill.iter().any(|(i, _)| *i == index)
                };
                if repeated {
                    continue;
                }
                if count >= max_chunks {
                    return None;
                }
                if count < INLINE_CHUNKS {
                    few[count] = (index, value);
                } else {
                    if spill.is_empty() {
                        spill.extend(few.iter().map(|&(i, v)| (i, Cow::Borrowed(v))));
                    }
                    spill.push((index, Cow::Borrowed(value)));
                }
                count += 1;
            }
            ChunkName::Invalid => return None,
            ChunkName::Unrelated if name == base => {
                plain.get_or_insert(value);
            }
            ChunkName::Unrelated => {}
        }
    }
    if !spill.is_empty() {
        return in_order(spill).map(Chunks::spilled);
    }
    if count == 0 {
        return plain.map(|p| Chunks::borrowed(&[p]));
    }
    let few = &mut few[..count];
    few.sort_unstable_by_key(|(index, _)| *index);
    let mut parts: [&'a [u8]; INLINE_CHUNKS] = [&[]; INLINE_CHUNKS];
    for (expected, (index, value)) in few.iter().enumerate() {
        if *index != expected {
            return None;
        }
        parts[expected] = value;
    }
    Some(Chunks::borrowed(&parts[..count]))
}

/// The chunk values in index order, when the indexes are exactly `0..n`.
fn in_order<'a>(mut chunks: Vec<(usize, Cow<'a, [u8]>)>) -> Option<Vec<Cow<'a, [u8]>>> {
    chunks.sort_unstable_by_key(|(index, _)| *index);
    let mut parts = Vec::with_capacity(chunks.len());
    for (expected, (index, value)) in chunks.into_iter().enumerate() {
        if index != expected {
            return None;
        }
        parts.push(value);
    }
    Some(parts)
}

/// [`read_chunks`], joined.
pub(crate) fn read_chunked(jar: &dyn CookieJar, base: &str, max_chunks: usize) -> Option<String> {
    read_chunks(jar, base, max_chunks)?.join()
}

/// Removes the whole chunk family of `base` (every `<base>_<suffix>` chunk, valid or not) and
/// a plain `<base>` cookie, as far as they are visible in `jar`.
pub(crate) fn remove_chunked(jar: &mut dyn CookieJar, base: &str, attrs: &CookieAttributes) {
    for name in jar.names() {
        if name == base || classify(&name, base) != ChunkName::Unrelated {
            jar.remove(&name, attrs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "_a0_session";
    const MAX: usize = 20;

    fn attrs() -> CookieAttributes {
        CookieAttributes::default()
    }

    fn ascii(len: usize) -> String {
        (0..len).map(|i| char::from(b'A' + (i % 26) as u8)).collect()
    }

    fn chunk_names(jar: &MemoryCookieJar) -> Vec<String> {
        jar.names().into_iter().filter(|n| n.starts_with(BASE)).collect()
    }

    fn assert_within_limit(jar: &MemoryCookieJar) {
        for c in jar.response_cookies() {
            assert!(
                c.name.len() + c.value.len() <= CHUNK_LIMIT,
                "{} is {} bytes",
                c.name,
                c.name.len() + c.value.len()
            );
        }
    }

    /// Payload capacity of chunk `n` for the test base name.
    fn cap(n: usize) -> usize {
        CHUNK_LIMIT - format!("{BASE}_{n}").len()
    }

    #[test]
    fn default_attributes() {
        let a = CookieAttributes::default();
        assert!(a.http_only);
        assert!(!a.secure);
        assert_eq!(a.same_site, SameSite::Lax);
        assert_eq!(a.path, "/");
        assert_eq!(a.domain, None);
        assert_eq!(a.max_age, None);
    }

    #[test]
    fn attributes_to_cookie() {
        let a = CookieAttributes {
            secure: true,
            domain: Some("example.com".into()),
            max_age: Some(Duration::from_secs(300)),
            ..CookieAttributes::default()
        };
        let c = a.to_cookie("n", "v");
        assert_eq!(c.name(), "n");
        assert_eq!(c.value(), "v");
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.secure(), Some(true));
        assert_eq!(c.same_site(), Some(SameSite::Lax));
        assert_eq!(c.path(), Some("/"));
        assert_eq!(c.domain(), Some("example.com"));
        assert_eq!(c.max_age(), Some(cookie::time::Duration::seconds(300)));
        let s = c.to_string();
        assert!(s.contains("HttpOnly") && s.contains("SameSite=Lax") && s.contains("Secure"));

        let session = CookieAttributes::default().to_cookie("n", "v");
        assert_eq!(session.max_age(), None);
        assert_eq!(session.secure(), Some(false));
        assert!(!session.to_string().contains("Secure"));

        let removal = a.to_removal_cookie("n");
        assert_eq!(removal.value(), "");
        assert_eq!(removal.max_age(), Some(cookie::time::Duration::ZERO));
        assert_eq!(removal.domain(), Some("example.com"));
        assert_eq!(removal.path(), Some("/"));

        let huge = CookieAttributes {
            max_age: Some(Duration::MAX),
            ..CookieAttributes::default()
        };
        assert!(huge.to_cookie("n", "v").max_age().is_some());
    }

    #[test]
    fn chunk_boundaries() {
        // (value length, expected chunk count)
        let cases = [
            (0, 1),
            (1, 1),
            (cap(0), 1),
            (cap(0) + 1, 2),
            (cap(0) + cap(1), 2),
            (cap(0) + cap(1) + 1, 3),
            (cap(0) + cap(1) + cap(2), 3),
        ];
        for (len, expected) in cases {
            let value = ascii(len);
            let mut jar = MemoryCookieJar::new();
            write_chunked(&mut jar, BASE, &value, &attrs());
            let expected_names: Vec<String> = (0..expected).map(|i| format!("{BASE}_{i}")).collect();
            assert_eq!(chunk_names(&jar), expected_names, "len {len}");
            assert_within_limit(&jar);
            if len > 0 {
                // Every chunk but the last is filled to the limit exactly.
                for c in jar.response_cookies().iter().take(expected - 1) {
                    assert_eq!(c.name.len() + c.value.len(), CHUNK_LIMIT);
                }
            }
            assert_eq!(read_chunked(&jar, BASE, MAX).as_deref(), Some(value.as_str()));
            assert_eq!(
                read_chunked(&jar.next_request(), BASE, MAX).as_deref(),
                Some(value.as_str())
            );
        }
    }

    #[test]
    fn round_trip_multibyte_splits_on_char_boundaries() {
        let value: String = "aé€😀".repeat(3000);
        let mut jar = MemoryCookieJar::new();
        write_chunked(&mut jar, BASE, &value, &attrs());
        assert_within_limit(&jar);
        assert!(chunk_names(&jar).len() > 3);
        assert_eq!(read_chunked(&jar, BASE, MAX), Some(value));
    }

    #[test]
    fn shrinking_removes_trailing_chunks() {
        let mut jar = MemoryCookieJar::new();
        write_chunked(&mut jar, BASE, &ascii(cap(0) + cap(1) + 10), &attrs());
        assert_eq!(chunk_names(&jar).len(), 3);

        let mut next = jar.next_request();
        write_chunked(&mut next, BASE, "small", &attrs());
        assert_eq!(chunk_names(&next), vec![format!("{BASE}_0")]);
        let removed: Vec<String> = next
            .response_cookies()
            .into_iter()
            .filter(|c| c.removed)
            .map(|c| c.name)
            .collect();
        assert_eq!(removed, vec![format!("{BASE}_1"), format!("{BASE}_2")]);
        assert_eq!(read_chunked(&next, BASE, MAX).as_deref(), Some("small"));
        assert_eq!(next.next_request().to_cookie_header(), format!("{BASE}_0=small"));
    }

    #[test]
    fn stale_non_contiguous_and_invalid_chunks_and_plain_cookie_are_removed() {
        let mut jar = MemoryCookieJar::from_request_cookies([
            (format!("{BASE}_0"), "old0".to_owned()),
            (format!("{BASE}_5"), "old5".to_owned()),
            (format!("{BASE}_x"), "junk".to_owned()),
            (BASE.to_owned(), "plain".to_owned()),
            ("_a0_tx_abc".to_owned(), "tx".to_owned()),
            (format!("{BASE}_tx_abc"), "other".to_owned()),
        ]);
        let value = ascii(cap(0) + 5);
        write_chunked(&mut jar, BASE, &value, &attrs());
        let mut removed: Vec<String> = jar
            .response_cookies()
            .into_iter()
            .filter(|c| c.removed)
            .map(|c| c.name)
            .collect();
        removed.sort();
        assert_eq!(
            removed,
            vec![BASE.to_owned(), format!("{BASE}_5"), format!("{BASE}_x")]
        );
        assert_eq!(read_chunked(&jar, BASE, MAX), Some(value));
        assert_eq!(jar.get("_a0_tx_abc").as_deref(), Some("tx"));
        assert_eq!(jar.get(&format!("{BASE}_tx_abc")).as_deref(), Some("other"));
    }

    #[test]
    fn missing_middle_chunk_is_no_session() {
        let jar =
            MemoryCookieJar::from_request_cookies([(format!("{BASE}_0"), "a"), (format!("{BASE}_2"), "c")]);
        assert_eq!(read_chunked(&jar, BASE, MAX), None);
        let no_zero = MemoryCookieJar::from_request_cookies([(format!("{BASE}_1"), "b")]);
        assert_eq!(read_chunked(&no_zero, BASE, MAX), None);
    }

    #[test]
    fn invalid_suffixes_are_no_session() {
        for suffix in [
            "x",
            "",
            "01",
            "00",
            "+1",
            "-1",
            "1x",
            " 1",
            "99999999999999999999999",
        ] {
            let jar = MemoryCookieJar::from_request_cookies([
                (format!("{BASE}_0"), "a"),
                (format!("{BASE}_{suffix}"), "b"),
            ]);
            assert_eq!(read_chunked(&jar, BASE, MAX), None, "suffix {suffix:?}");
        }
    }

    #[test]
    fn unrelated_names_are_ignored() {
        let jar = MemoryCookieJar::from_request_cookies([
            (format!("{BASE}_0"), "a"),
            (format!("{BASE}_1"), "b"),
            ("_a0_tx_0".to_owned(), "t"),
            (format!("{BASE}_tx_abc"), "t"),
            (format!("{BASE}x_2"), "t"),
            (format!("{BASE}X"), "t"),
            ("_a0_sessio_0".to_owned(), "t"),
            (format!("prefix{BASE}_2"), "t"),
        ]);
        assert_eq!(read_chunked(&jar, BASE, MAX).as_deref(), Some("ab"));
        // A transaction base does not see session chunks either.
        assert_eq!(read_chunked(&jar, "_a0_tx", MAX).as_deref(), Some("t"));
    }

    #[test]
    fn too_many_chunks_is_no_session() {
        let cookies = |n: usize| {
            MemoryCookieJar::from_request_cookies((0..n).map(|i| (format!("{BASE}_{i}"), i.to_string())))
        };
        assert!(read_chunked(&cookies(MAX), BASE, MAX).is_some());
        assert_eq!(read_chunked(&cookies(MAX + 1), BASE, MAX), None);
        assert_eq!(read_chunked(&cookies(1), BASE, 0), None);
    }

    #[test]
    fn numeric_ordering_puts_10_after_9() {
        let jar = MemoryCookieJar::from_request_cookies(
            (0..12).rev().map(|i| (format!("{BASE}_{i}"), format!("<{i}>"))),
        );
        assert_eq!(
            read_chunked(&jar, BASE, MAX).as_deref(),
            Some("<0><1><2><3><4><5><6><7><8><9><10><11>")
        );
    }

    #[test]
    fn plain_cookie_is_read_when_no_chunks() {
        let jar = MemoryCookieJar::from_request_cookies([(BASE, "plain")]);
        assert_eq!(read_chunked(&jar, BASE, MAX).as_deref(), Some("plain"));
        let both = MemoryCookieJar::from_request_cookies([(BASE, "plain"), ("_a0_session_0", "c")]);
        assert_eq!(read_chunked(&both, BASE, MAX).as_deref(), Some("c"));
        assert_eq!(read_chunked(&MemoryCookieJar::new(), BASE, MAX), None);
    }

    #[test]
    fn remove_chunked_removes_the_family_only() {
        let mut jar = MemoryCookieJar::from_cookie_header(
            "_a0_session_0=a; _a0_session_1=b; _a0_session_7=c; _a0_session_x=d; \
             _a0_session=e; _a0_tx_s=f; other=g; _a0_session_tx_1=h",
        );
        remove_chunked(&mut jar, BASE, &attrs());
        assert_eq!(read_chunked(&jar, BASE, MAX), None);
        assert_eq!(
            jar.names(),
            vec![
                "_a0_session_tx_1".to_owned(),
                "_a0_tx_s".to_owned(),
                "other".to_owned()
            ]
        );
        assert!(
            jar.response_cookies()
                .iter()
                .all(|c| c.removed && c.value.is_empty())
        );
        assert_eq!(jar.response_cookies().len(), 5);
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

    use crate::internal::LendingJar as Lending;

    #[test]
    fn lent_and_copied_reads_agree() {
        let c = |n: &str| format!("{BASE}_{n}");
        let cases: Vec<Vec<(String, String)>> = vec![
            vec![],
            vec![(BASE.into(), "plain".into())],
            vec![(c("0"), "a".into())],
            vec![(c("1"), "b".into()), (c("0"), "a".into())],
            vec![(c("0"), "a".into()), (c("2"), "c".into())],
            vec![(c("1"), "b".into())],
            vec![(c("0"), "a".into()), (c("01"), "x".into())],
            vec![(c("0"), "a".into()), (c("x"), "x".into())],
            vec![(c("0"), "a".into()), (BASE.into(), "plain".into())],
            vec![
                (c("0"), "a".into()),
                (c("tx_state"), "t".into()),
                ("other".into(), "o".into()),
            ],
            (0..12)
                .rev()
                .map(|i| (c(&i.to_string()), format!("<{i}>")))
                .collect(),
            (0..=MAX).map(|i| (c(&i.to_string()), i.to_string())).collect(),
            (0..MAX).map(|i| (c(&i.to_string()), i.to_string())).collect(),
            // Around the number of chunks kept inline.
            (0..4)
                .rev()
                .map(|i| (c(&i.to_string()), format!("<{i}>")))
                .collect(),
            (0..5)
                .rev()
                .map(|i| (c(&i.to_string()), format!("<{i}>")))
                .collect(),
            [0, 1, 2, 3, 5]
                .iter()
                .map(|i| (c(&i.to_string()), format!("<{i}>")))
                .collect(),
            (0..5)
                .map(|i| (c(&i.to_string()), format!("<{i}>")))
                .chain([(c("x"), "x".into())])
                .collect(),
            (0..6)
                .map(|i| (c(&i.to_string()), format!("<{i}>")))
                .chain([(BASE.into(), "plain".into())])
                .collect(),
        ];
        // Repeated names (a lending jar does not de-duplicate): the first occurrence wins.
        let mut cases = cases;
        cases.extend([
            vec![(c("0"), "a".into()), (c("0"), "x".into())],
            vec![(c("1"), "b".into()), (c("0"), "a".into()), (c("1"), "x".into())],
            vec![(BASE.into(), "plain".into()), (BASE.into(), "other".into())],
            (0..6)
                .map(|i| (c(&i.to_string()), format!("<{i}>")))
                .chain((0..6).map(|i| (c(&i.to_string()), "x".into())))
                .collect(),
            // Repeats do not count against the chunk limit.
            (0..MAX)
                .map(|i| (c(&i.to_string()), i.to_string()))
                .chain((0..MAX).map(|i| (c(&i.to_string()), "x".into())))
                .collect(),
            std::iter::repeat_n((c("0"), "a".to_owned()), 100).collect(),
        ]);
        for cookies in cases {
            let memory = MemoryCookieJar::from_request_cookies(cookies.clone());
            let lending = Lending(cookies.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect());
            assert_eq!(
                read_chunked(&lending, BASE, MAX),
                read_chunked(&memory, BASE, MAX),
                "{cookies:?}"
            );
        }
    }

    #[test]
    fn lent_value_that_is_not_utf8_is_no_value() {
        let name = format!("{BASE}_0");
        let lending = Lending(vec![(name.as_str(), b"ab\xffcd".as_slice())]);
        assert_eq!(read_chunked(&lending, BASE, MAX), None);
    }

    #[test]
    fn chunks_tail_and_comparison_span_chunk_boundaries() {
        let (n0, n1) = (format!("{BASE}_0"), format!("{BASE}_1"));
        let lending = Lending(vec![
            (n1.as_str(), b"de".as_slice()),
            (n0.as_str(), b"abc".as_slice()),
        ]);
        let chunks = read_chunks(&lending, BASE, MAX).unwrap();
        assert_eq!(chunks.len(), 5);
        assert_eq!(chunks.join().as_deref(), Some("abcde"));
        assert_eq!(&*chunks.tail(2), b"de");
        assert_eq!(&*chunks.tail(3), b"cde");
        assert_eq!(&*chunks.tail(64), b"abcde");
        assert!(chunks.same_bytes(b"abcde"));
        for (i, other) in [b"xbcde", b"axcde", b"abxde", b"abcxe", b"abcdx"]
            .iter()
            .enumerate()
        {
            assert!(!chunks.same_bytes(*other), "difference at {i}");
        }
        assert!(!chunks.same_bytes(b"abcd"));
        assert!(!chunks.same_bytes(b"abcdef"));
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
