//! The back-channel logout token through the validation `ServerClient::handle_backchannel_logout`
//! runs (`flows/backchannel.rs` `accept_logout_token`, reached as
//! `auth_core::internal::accept_logout_token`): the compact JWS against a fixed one-key ES256
//! JWKS, the §2.6 claim rules, then the `jti` consumed in a memory backend.
//!
//! The first input byte picks how the rest is used:
//! - `0`: the rest is the token, as it would arrive in the `logout_token` form field;
//! - `1`: the rest is the payload, correctly signed under a fixed `logout+jwt` header, so that
//!   the fuzzer reaches every claim rule;
//! - `2`: the rest is `header` `\n` `payload`, both raw bytes, correctly signed.
//!
//! Invariants: never a panic and never a store error; every refusal is `invalid_logout_token`;
//! an accepted token names a `sid` or a `sub` and a short non-empty `jti`, has no `crit`
//! header, is refused for another client or issuer, is refused as a replay when delivered
//! again, and its `jti` is remembered for at least as long as the token would still be
//! accepted (no replay once it is forgotten).
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::sync::LazyLock;
use std::task::{Context, Poll, Waker};

use auth_core::internal::{Jwks, LogoutTokenCheck, accept_logout_token};
use auth_core::store::MemoryBackend;
use auth_core::{Error, LogoutTokenError};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

const ISSUER: &str = "https://idp.fuzz.invalid/";
const CLIENT_ID: &str = "fuzz-client";
/// The clock the tokens are checked at.
const NOW: u64 = 1_800_000_000;
const KID: &str = "fuzz-es256";

/// A P-256 key made for this target only; it signs nothing else.
const SIGNING_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgpakyKGesxt3dpdCH
G2FDweCyOBD99t4+eje4ibhirpChRANCAAQJ4rnlCoQuJQVccpvHwsPl3664csn7
6bzVJGc0d6PXyvcGt17R0h9J5iuHCD+nsiAo88U70Msw+fEaAolqQJva
-----END PRIVATE KEY-----
";

static JWKS: LazyLock<Jwks> = LazyLock::new(|| {
    Jwks::parse(&json!({"keys": [{
        "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": KID,
        "x": "CeK55QqELiUFXHKbx8LD5d-uuHLJ--m81SRnNHej18o",
        "y": "9wa3XtHSH0nmK4cIP6eyICjzxTvQyzD58RoCiWpAm9o"
    }]}))
    .expect("fuzz JWKS")
});
static KEY: LazyLock<EncodingKey> =
    LazyLock::new(|| EncodingKey::from_ec_pem(SIGNING_KEY.as_bytes()).expect("fuzz signing key"));
static HEADER: LazyLock<Vec<u8>> = LazyLock::new(|| {
    serde_json::to_vec(&json!({"alg": "ES256", "typ": "logout+jwt", "kid": KID})).expect("header")
});

/// `header.payload.signature` with a valid ES256 signature over the raw bytes given.
fn signed(header: &[u8], payload: &[u8]) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let signature = jsonwebtoken::crypto::sign(token.as_bytes(), &KEY, Algorithm::ES256).expect("sign");
    token.push('.');
    token.push_str(&signature);
    token
}

/// The memory backend answers without waiting; anything else is a bug here.
fn now_or_never<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the memory backend waited"),
    }
}

/// The handler's validation with its own fresh replay store.
fn accept(
    token: &str,
    backend: &MemoryBackend,
    issuer: &str,
    client_id: &str,
    now: u64,
) -> Result<LogoutTokenCheck, Error> {
    now_or_never(accept_logout_token(token, &JWKS, issuer, client_id, now, backend))
}

fn check(token: &str) {
    let backend = MemoryBackend::new();
    match accept(token, &backend, ISSUER, CLIENT_ID, NOW) {
        Ok(accepted) => check_accepted(token, &accepted, &backend),
        Err(e) => assert_eq!(e.code(), "invalid_logout_token", "{e:?}"),
    }
}

fn check_accepted(token: &str, accepted: &LogoutTokenCheck, backend: &MemoryBackend) {
    assert!(accepted.sid.is_some() || accepted.sub.is_some());
    // RFC 7515 §4.1.11: no critical extension is implemented, so none may be accepted.
    let header = token
        .split('.')
        .next()
        .and_then(|h| URL_SAFE_NO_PAD.decode(h).ok());
    let header: Value = serde_json::from_slice(&header.unwrap_or_default()).expect("header is JSON");
    assert!(header.get("crit").is_none(), "accepted a token with `crit`");
    assert!(!accepted.jti.is_empty() && accepted.jti.len() <= 256);
    let remembered = accepted.remember_for.as_secs();
    assert!(remembered >= 1);
    // Delivered again: a replay.
    assert!(
        matches!(
            accept(token, backend, ISSUER, CLIENT_ID, NOW),
            Err(Error::LogoutToken(LogoutTokenError::Replayed))
        ),
        "a second delivery was not refused as a replay"
    );
    // Once the jti is forgotten (a fresh replay store), the same token must no longer pass.
    let forgotten = NOW.saturating_add(remembered).saturating_add(1);
    assert!(
        accept(token, &MemoryBackend::new(), ISSUER, CLIENT_ID, forgotten).is_err(),
        "the token outlives its replay window of {remembered} s"
    );
    // Same token for another client or issuer: refused.
    assert!(accept(token, &MemoryBackend::new(), ISSUER, "other-client", NOW).is_err());
    assert!(
        accept(
            token,
            &MemoryBackend::new(),
            "https://other.invalid/",
            CLIENT_ID,
            NOW
        )
        .is_err()
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => check(&String::from_utf8_lossy(rest)),
        1 => check(&signed(&HEADER, rest)),
        _ => {
            let (header, payload) = match rest.iter().position(|&b| b == b'\n') {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, &[][..]),
            };
            check(&signed(header, payload));
        }
    }
});
