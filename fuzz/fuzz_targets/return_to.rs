//! The `returnTo` sanitizer, on arbitrary text.
//!
//! Invariants for any value it lets through: a path starting with one `/` (not `//` or
//! `/\`), no backslash and no control character, usable as a `Location` header, resolving
//! on the origin it is joined to (both the placeholder origin and an app under a path), not
//! hiding `//` behind percent-encoding, short enough to ride in the login's `app_state`, and
//! stable (sanitizing it again keeps it).
#![no_main]

use std::sync::LazyLock;

use auth_axum::internal::sanitize_return_to;
use libfuzzer_sys::fuzz_target;
use url::Url;

static PLACEHOLDER: LazyLock<Url> = LazyLock::new(|| Url::parse("http://h.invalid").expect("url"));
static APP: LazyLock<Url> = LazyLock::new(|| Url::parse("https://app.example:8443/base/").expect("url"));

fn stays_on(base: &Url, path: &str) {
    let joined = base.join(path).expect("a sanitized returnTo always resolves");
    assert_eq!(joined.scheme(), base.scheme(), "{path:?}");
    assert_eq!(joined.host_str(), base.host_str(), "{path:?}");
    assert_eq!(joined.port(), base.port(), "{path:?}");
    assert!(
        joined.username().is_empty() && joined.password().is_none(),
        "{path:?}"
    );
}

fn check(input: &str) {
    let Some(out) = sanitize_return_to(input) else {
        return;
    };
    assert!(out.starts_with('/'), "{input:?} -> {out:?}");
    assert!(
        !out.starts_with("//") && !out.starts_with("/\\"),
        "{input:?} -> {out:?}"
    );
    assert!(!out.contains('\\'), "{input:?} -> {out:?}");
    assert!(!out.chars().any(char::is_control), "{input:?} -> {out:?}");
    assert!(
        http::HeaderValue::from_str(&out).is_ok(),
        "not a header value: {out:?}"
    );
    stays_on(&PLACEHOLDER, &out);
    stays_on(&APP, &out);
    let decoded: String = url::form_urlencoded::parse(format!("x={}", out.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    assert!(
        !decoded.starts_with("//") && !decoded.starts_with("/\\"),
        "{input:?} -> {out:?}"
    );
    // The routes carry it through the login as the app_state `{"returnTo": out}`.
    let app_state = serde_json::to_vec(&serde_json::json!({ "returnTo": out })).expect("JSON");
    assert!(
        app_state.len() <= auth_core::MAX_APP_STATE_BYTES,
        "too long for the login's app_state: {input:?}"
    );
    assert_eq!(
        sanitize_return_to(&out).as_deref(),
        Some(out.as_str()),
        "not stable: {input:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check(&text);
    // Most interesting inputs are paths; make sure the fuzzer always reaches past the first byte.
    check(&format!("/{text}"));
});
