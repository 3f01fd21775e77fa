//! The authorization-response parser: arbitrary bytes as a `form_post` body, as a query
//! string, as a whole callback URL, and as the query of a real-looking callback URL.
//!
//! Invariants: never a panic; every error is `invalid_callback`; the result agrees with a
//! reference reading of the same form (refused exactly when a name repeats or the input is
//! over the size limit, and otherwise every pair is found with its value).
#![no_main]

use std::collections::HashSet;

use auth_core::{CallbackParams, Error};
use libfuzzer_sys::fuzz_target;

/// The parser's size limit.
const MAX_LEN: usize = 16 * 1024;

fn agrees_with_reference(input: &[u8], parsed: &Result<CallbackParams, Error>) {
    if let Err(e) = parsed {
        assert_eq!(e.code(), "invalid_callback", "{e:?}");
    }
    if input.len() > MAX_LEN {
        assert!(parsed.is_err(), "oversized input accepted");
        return;
    }
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(input)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let mut seen = HashSet::new();
    let repeated = pairs.iter().any(|(k, _)| !seen.insert(k.as_str()));
    match parsed {
        Ok(params) => {
            assert!(!repeated, "a repeated parameter was accepted");
            for (k, v) in &pairs {
                assert_eq!(params.get(k), Some(v.as_str()), "parameter {k:?}");
            }
        }
        Err(_) => assert!(repeated, "a well-formed form was refused"),
    }
}

fuzz_target!(|data: &[u8]| {
    agrees_with_reference(data, &CallbackParams::from_form(data));

    let text = String::from_utf8_lossy(data);
    agrees_with_reference(text.as_bytes(), &CallbackParams::from_query(&text));

    for url in [
        text.clone().into_owned(),
        format!("https://app.example/auth/callback?{text}"),
    ] {
        match CallbackParams::from_url(&url) {
            Ok(params) => {
                let parsed = url::Url::parse(&url).expect("from_url accepted it");
                let query = parsed.query().unwrap_or("");
                assert_eq!(
                    Ok(params),
                    CallbackParams::from_query(query).map_err(|e| e.code())
                );
            }
            Err(e) => assert_eq!(e.code(), "invalid_callback", "{e:?}"),
        }
    }
});
