//! Values larger than one browser cookie, written as `<base>_0`, `<base>_1`, … and read back
//! whole.

use super::{CookieAttributes, CookieJar};

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

/// How many bytes of value [`write_chunked`] puts in the cookie `name` (at least one, so that
/// it always makes progress, even for a pathological name near the limit).
pub(crate) fn chunk_capacity(name: &str) -> usize {
    CHUNK_LIMIT.saturating_sub(name.len()).max(1)
}

/// Writes `value` as `<base>_0`, `<base>_1`, … with each cookie's name plus value within
/// [`CHUNK_LIMIT`] bytes (split on character boundaries), then removes every other cookie of
/// the family so that [`read_chunks`] reads back exactly `value`: chunks with an index at or
/// beyond the new count (contiguous or not), chunks with an invalid suffix, and a plain
/// un-chunked `<base>` cookie. An empty value is written as a single empty `<base>_0`.
pub(crate) fn write_chunked(jar: &mut dyn CookieJar, base: &str, value: &str, attrs: &CookieAttributes) {
    let mut start: usize = 0;
    let mut count: usize = 0;
    loop {
        let name = format!("{base}_{count}");
        let capacity = chunk_capacity(&name);
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

/// Reads a value written by [`write_chunked`]: the chunks of [`read_chunks`], joined.
#[cfg(any(test, feature = "internal"))]
pub(crate) fn read_chunked(jar: &dyn CookieJar, base: &str, max_chunks: usize) -> Option<String> {
    read_chunks(jar, base, max_chunks).map(|chunks| chunks.concat())
}

/// Reads a value written by [`write_chunked`]: the values of `<base>_0` … `<base>_<count-1>`
/// in numeric order, not joined (the value is their concatenation), so a reader that only
/// compares them with bytes it knows (the opened-session cache) never copies them into one
/// string.
///
/// Returns `None` ("no session") when any chunk has an invalid suffix, the indexes are not
/// exactly `0..count`, or `count > max_chunks`. When no chunk exists, a single un-chunked
/// `<base>` cookie is returned instead (one value), if present.
pub(crate) fn read_chunks(jar: &dyn CookieJar, base: &str, max_chunks: usize) -> Option<Vec<String>> {
    let mut chunks: Vec<(usize, String)> = Vec::new();
    for name in jar.names() {
        match classify(&name, base) {
            ChunkName::Index(index) => {
                if chunks.len() >= max_chunks {
                    return None;
                }
                chunks.push((index, jar.get(&name)?));
            }
            ChunkName::Invalid => return None,
            ChunkName::Unrelated => {}
        }
    }
    if chunks.is_empty() {
        return jar.get(base).map(|value| vec![value]);
    }
    chunks.sort_unstable_by_key(|(index, _)| *index);
    chunks
        .into_iter()
        .enumerate()
        .map(|(expected, (index, value))| (index == expected).then_some(value))
        .collect()
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
    use crate::cookies::MemoryCookieJar;

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
}
