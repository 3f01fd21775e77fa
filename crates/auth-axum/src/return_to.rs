//! `returnTo` handling: only same-origin relative paths survive.
//!
//! Anything that a browser could resolve to another origin — absolute URLs, scheme-relative
//! `//host`, backslash tricks (`/\host`), other schemes, control characters, or any of these
//! hidden behind percent-encoding — is replaced by the default. The check is "parse it against
//! a fixed origin and require the origin to be unchanged", plus explicit refusals for the
//! inputs where browsers and URL parsers disagree.

use url::Url;

/// Longest `returnTo` accepted, before and after normalisation: the routes carry it through
/// the login as the `app_state` `{"returnTo":"…"}`, which core refuses beyond
/// [`auth_core::MAX_APP_STATE_BYTES`]. A normalised value is ASCII with no `"`, `\` or
/// control character, so JSON adds nothing to it but the wrapper.
const MAX_LEN: usize = auth_core::MAX_APP_STATE_BYTES - r#"{"returnTo":""}"#.len();

/// A placeholder origin: the value must resolve to a path on it.
const ORIGIN: &str = "http://same-origin.invalid";

/// Returns `value` normalised if it is a safe same-origin relative path, else `None`.
pub(crate) fn sanitize(value: &str) -> Option<String> {
    if value.is_empty() || value.len() > MAX_LEN {
        return None;
    }
    // Look at the value and at up to three rounds of percent-decoding of it.
    if !safe_at_every_layer(value) {
        return None;
    }
    let base = Url::parse(ORIGIN).ok()?;
    let resolved = base.join(value).ok()?;
    if resolved.origin() != base.origin() || !resolved.username().is_empty() || resolved.password().is_some()
    {
        return None;
    }
    let mut out = resolved.path().to_owned();
    if let Some(q) = resolved.query() {
        out.push('?');
        out.push_str(q);
    }
    if let Some(f) = resolved.fragment() {
        out.push('#');
        out.push_str(f);
    }
    // Dot segments collapse during resolution (`/a/..//evil` becomes `//evil`): the result
    // must pass the same checks as the input. Percent-encoding can also make it longer.
    (out.len() <= MAX_LEN && safe_at_every_layer(&out)).then_some(out)
}

fn safe_at_every_layer(value: &str) -> bool {
    let mut layer = value.to_owned();
    for _ in 0..4 {
        if !looks_safe(&layer) {
            return false;
        }
        let decoded = percent_decode(&layer);
        if decoded == layer {
            return true;
        }
        layer = decoded;
    }
    // Still changing after four rounds of decoding: nobody needs that.
    false
}

fn looks_safe(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && !s.contains('\\')
        && !s
            .chars()
            .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}')
}

fn percent_decode(s: &str) -> String {
    let decoded: Vec<u8> = url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned().into_bytes())
        .unwrap_or_default();
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::sanitize;

    #[test]
    fn keeps_relative_paths() {
        assert_eq!(sanitize("/").as_deref(), Some("/"));
        assert_eq!(sanitize("/dashboard").as_deref(), Some("/dashboard"));
        assert_eq!(
            sanitize("/a/b?x=1&y=%2F#frag").as_deref(),
            Some("/a/b?x=1&y=%2F#frag")
        );
        assert_eq!(
            sanitize("/next?url=http://evil.example").as_deref(),
            Some("/next?url=http://evil.example")
        );
        assert_eq!(sanitize("/a/../b").as_deref(), Some("/b"));
    }

    #[test]
    fn refuses_everything_that_can_leave_the_origin() {
        let attacks = [
            "",
            "https://evil.example/",
            "http://evil.example",
            "//evil.example",
            "///evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "/\\/evil.example",
            "javascript:alert(1)",
            "data:text/html,<script>",
            "evil.example",
            " /foo",
            "\t//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/%2Fevil.example",
            "/%2F%2Fevil.example",
            "%2F%2Fevil.example",
            "/%5Cevil.example",
            "/%255Cevil.example",
            "/%252F%252Fevil.example",
            "/foo%0d%0aSet-Cookie:x=1",
            "/%09/evil.example",
            "https:evil.example",
            "/foo\u{2028}bar",
            "@evil.example",
            "/.//evil.example",
            "/a/..//evil.example",
            "/a/../..//evil.example",
            "/%2e%2e//evil.example",
            "/./%2F/evil.example",
        ];
        for a in attacks {
            assert_eq!(sanitize(a), None, "{a:?}");
        }
        assert_eq!(sanitize(&format!("/{}", "a".repeat(3000))), None);
    }

    /// Found by the bad-input table test: a `returnTo` the sanitizer accepted (up to 2048
    /// bytes, or longer once percent-encoded) made the login's `app_state` exceed core's
    /// limit, so `/auth/login` answered 400 instead of starting the login.
    #[test]
    fn every_accepted_value_fits_the_login_app_state() {
        let fits = |out: &str| {
            serde_json::to_vec(&serde_json::json!({ "returnTo": out }))
                .unwrap()
                .len()
                <= auth_core::MAX_APP_STATE_BYTES
        };
        let longest = format!("/{}", "a".repeat(super::MAX_LEN - 1));
        assert_eq!(sanitize(&longest).as_deref(), Some(longest.as_str()));
        assert!(fits(&longest));
        assert_eq!(sanitize(&format!("{longest}a")), None);
        // 601 bytes in, 1801 once `é` is percent-encoded.
        assert_eq!(sanitize(&format!("/{}", "\u{e9}".repeat(300))), None);
        let encoded = sanitize(&format!("/{}", "\u{e9}".repeat(100))).unwrap();
        assert!(encoded.starts_with("/%C3%A9") && fits(&encoded));
    }
}
