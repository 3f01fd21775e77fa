//! Hooks for this workspace's benchmarks and fuzz targets. Not part of the public API: no
//! stability promise, hidden from the docs.

use serde_json::{Map, Value};

use crate::cookies::{CookieAttributes, CookieJar};
use crate::error::{Error, IdTokenError};

/// The cookie sealer (JWE dir/A256CBC-HS512 with HKDF keys).
#[derive(Debug)]
pub struct Sealer(crate::seal::Sealer);

impl Sealer {
    /// A sealer for `secrets` with keys pre-derived for `salts`.
    #[must_use]
    pub fn new(secrets: &[&str], salts: &[&str]) -> Self {
        Self(crate::seal::Sealer::with_pinned_salts(secrets, salts))
    }

    /// Seals `payload` for `salt`.
    #[must_use]
    pub fn seal(&self, salt: &str, payload: &[u8]) -> String {
        self.0.seal(salt, payload)
    }

    /// Opens `sealed`, or `None`.
    #[must_use]
    pub fn open(&self, salt: &str, sealed: &str) -> Option<Vec<u8>> {
        self.0.open(salt, sealed)
    }
}

/// Splits `value` into `{base}_N` cookies.
pub fn write_chunked(jar: &mut dyn CookieJar, base: &str, value: &str, attrs: &CookieAttributes) {
    crate::cookies::write_chunked(jar, base, value, attrs);
}

/// Joins `{base}_N` cookies, or `None`.
#[must_use]
pub fn read_chunked(jar: &dyn CookieJar, base: &str, max_chunks: usize) -> Option<String> {
    crate::cookies::read_chunked(jar, base, max_chunks)
}

/// Verifies an ID token against a JWKS document and the OIDC Core 3.1.3.7 claim rules.
///
/// # Errors
/// The failed rule; a malformed JWKS is reported as [`IdTokenError::UnknownKey`].
pub fn verify_id_token(
    token: &str,
    jwks: &Value,
    issuer: &str,
    client_id: &str,
    nonce: Option<&str>,
    now: u64,
) -> Result<Map<String, Value>, IdTokenError> {
    let keys = crate::discovery::parse_jwks(jwks).map_err(|_| IdTokenError::UnknownKey)?;
    let set = crate::discovery::KeySet::from_keys(keys);
    let algs = vec!["RS256".to_owned(), "PS256".to_owned(), "ES256".to_owned()];
    let expected = crate::id_token::Expected {
        issuer,
        client_id,
        nonce,
        max_age: None,
        organization: None,
        leeway: 60,
        now,
        allowed_algs: &algs,
        client_secret: None,
    };
    crate::id_token::verify(token, &set, &expected)
}

/// The claim rules of a back-channel logout token (§2.6) on already-decoded parts; returns
/// `(sid, sub, jti)`.
///
/// # Errors
/// [`Error::LogoutToken`] naming the failed rule.
pub fn check_logout_token_claims(
    header: &Map<String, Value>,
    claims: &Map<String, Value>,
    issuer: &str,
    client_id: &str,
    now: u64,
) -> Result<(Option<String>, Option<String>, String), Error> {
    crate::flows::backchannel::check_logout_claims(header, claims, issuer, client_id, 60, now)
        .map(|(sid, sub, jti, _)| (sid, sub, jti))
}
