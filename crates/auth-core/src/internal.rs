//! Hooks for this workspace's tests, benchmarks, fuzz targets and load-test app. Not part of
//! the public API: no stability promise, hidden from the docs.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::cookies::{CookieAttributes, CookieJar};
use crate::error::{Error, IdTokenError};
use crate::store::{LogoutKey, SessionBackend};

pub use crate::session::SessionData;
pub use crate::store::cookie::CookieStateStore;
pub use crate::store::server::ServerSideStateStore;
pub use crate::store::traits::{StateStore, WriteOptions};

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

/// A JWKS document parsed once into verification keys, as the client caches it.
pub struct Jwks(Arc<crate::discovery::KeySet>);

impl std::fmt::Debug for Jwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwks").field("keys", &self.0.keys.len()).finish()
    }
}

impl Jwks {
    /// Parses the signing keys of `jwks`.
    ///
    /// # Errors
    /// A malformed document is reported as [`IdTokenError::UnknownKey`].
    pub fn parse(jwks: &Value) -> Result<Self, IdTokenError> {
        let keys = crate::discovery::parse_jwks(jwks).map_err(|_| IdTokenError::UnknownKey)?;
        Ok(Self(Arc::new(crate::discovery::KeySet::from_keys(keys))))
    }
}

/// Like [`verify_id_token`], against an already parsed (cached) key set.
///
/// # Errors
/// The failed rule.
pub fn verify_id_token_with_keys(
    token: &str,
    jwks: &Jwks,
    issuer: &str,
    client_id: &str,
    nonce: Option<&str>,
    now: u64,
) -> Result<Map<String, Value>, IdTokenError> {
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
    crate::id_token::verify(token, &jwks.0, &expected)
}

/// A [`CookieStateStore`] behind the opened-session cache (`store/cache.rs`) of
/// `cache_capacity` entries (0: no cache, every read opens the cookie), as the client builds it.
#[must_use]
pub fn cookie_state_store(
    secrets: &[&str],
    name: &str,
    attributes: CookieAttributes,
    cache_capacity: usize,
) -> CachedCookieStore {
    let store = CookieStateStore::new(secrets, name, attributes);
    CachedCookieStore(crate::store::CachedStateStore::new(
        Box::new(store),
        cache_capacity,
    ))
}

/// See [`cookie_state_store`].
#[derive(Debug)]
pub struct CachedCookieStore(crate::store::CachedStateStore);

impl CachedCookieStore {
    /// The session, shared with the cache (the client's per-request read).
    ///
    /// # Errors
    /// Store errors.
    pub async fn read(&self, jar: &mut dyn CookieJar) -> Result<Option<std::sync::Arc<SessionData>>, Error> {
        self.0.read(jar).await
    }

    /// The cache counters: `(hits, misses, entries)`.
    #[must_use]
    pub fn stats(&self) -> (u64, u64, usize) {
        self.0.stats()
    }
}

#[async_trait::async_trait]
impl StateStore for CachedCookieStore {
    async fn get(&self, jar: &mut dyn CookieJar) -> Result<Option<SessionData>, Error> {
        self.0.get(jar).await
    }
    async fn set(
        &self,
        session: &SessionData,
        options: WriteOptions,
        jar: &mut dyn CookieJar,
    ) -> Result<(), Error> {
        self.0.set(session, options, jar).await
    }
    async fn delete(&self, jar: &mut dyn CookieJar) -> Result<(), Error> {
        self.0.delete(jar).await
    }
    async fn delete_by_logout(&self, key: &LogoutKey) -> Result<Option<usize>, Error> {
        self.0.delete_by_logout(key).await
    }
}

/// Leeway, in seconds, that [`accept_logout_token`] allows for clock skew.
pub const LOGOUT_TOKEN_LEEWAY: u64 = 60;

/// What a valid back-channel logout token names, and how long its `jti` is remembered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutTokenCheck {
    /// The `sid` claim, if any.
    pub sid: Option<String>,
    /// The `sub` claim, if any.
    pub sub: Option<String>,
    /// The `jti` claim.
    pub jti: String,
    /// How long the `jti` is kept for replay detection.
    pub remember_for: std::time::Duration,
}

/// The logout-token validation of `ServerClient::handle_backchannel_logout` itself
/// (`flows/backchannel.rs`, `accept_logout_token`), short of ending the sessions: the compact
/// JWS verified with `jwks` (algorithms RS256, PS256 and ES256; no client secret; no refetch),
/// the §2.6 claim rules with [`LOGOUT_TOKEN_LEEWAY`], then the `jti` consumed in `backend`.
///
/// # Errors
/// [`Error::LogoutToken`] naming the failed rule (`Replayed` for a `jti` `backend` already
/// holds); store errors.
pub async fn accept_logout_token(
    token: &str,
    jwks: &Jwks,
    issuer: &str,
    client_id: &str,
    now: u64,
    backend: &dyn SessionBackend,
) -> Result<LogoutTokenCheck, Error> {
    let algs = vec!["RS256".to_owned(), "PS256".to_owned(), "ES256".to_owned()];
    let rules = crate::flows::backchannel::LogoutTokenRules {
        signature: crate::id_token::SignatureCheck {
            allowed_algs: &algs,
            client_secret: None,
        },
        issuer,
        client_id,
        leeway: LOGOUT_TOKEN_LEEWAY,
        now,
    };
    let accepted =
        crate::flows::backchannel::accept_logout_token(token, &jwks.0, None, &rules, backend).await?;
    Ok(LogoutTokenCheck {
        sid: accepted.sid,
        sub: accepted.sub,
        jti: accepted.jti,
        remember_for: accepted.remember_for,
    })
}
