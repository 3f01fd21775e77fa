//! Provider metadata and JWKS, fetched on first use and cached.
//!
//! Guarantees: concurrent first callers share one fetch (single flight); cached values live
//! for the configured TTL; a token whose `kid` is unknown triggers at most one JWKS refetch per
//! cooldown period, so a flood of forged `kid`s cannot turn us into a load generator against
//! the provider.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;
use url::Url;

use crate::config::is_loopback;
use crate::error::{DiscoveryError, Result};
use crate::http;

/// What we use from the provider's `openid-configuration` document.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProviderMetadata {
    /// The issuer, exactly as the provider states it.
    pub issuer: String,
    /// Where users are sent to log in.
    pub authorization_endpoint: Url,
    /// Where codes and refresh tokens are exchanged.
    pub token_endpoint: Url,
    /// The provider's signing keys.
    pub jwks_uri: Url,
    /// OIDC UserInfo, if offered.
    pub userinfo_endpoint: Option<Url>,
    /// RP-initiated logout, if offered.
    pub end_session_endpoint: Option<Url>,
    /// RFC 9126 pushed authorization requests, if offered.
    pub pushed_authorization_request_endpoint: Option<Url>,
    /// Whether the provider refuses non-PAR authorization requests.
    pub require_pushed_authorization_requests: bool,
    /// Algorithms the provider may sign ID tokens with.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// RFC 9207: the provider always adds `iss` to authorization responses.
    pub authorization_response_iss_parameter_supported: bool,
    /// OIDC Back-Channel Logout support.
    pub backchannel_logout_supported: bool,
}

#[derive(Deserialize)]
struct RawMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    userinfo_endpoint: Option<String>,
    end_session_endpoint: Option<String>,
    pushed_authorization_request_endpoint: Option<String>,
    #[serde(default)]
    require_pushed_authorization_requests: bool,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    backchannel_logout_supported: bool,
}

/// A verification key from the JWKS, parsed once.
#[derive(Clone)]
pub(crate) struct VerificationKey {
    pub(crate) kid: Option<String>,
    pub(crate) alg: Option<String>,
    pub(crate) kty: &'static str,
    pub(crate) key: DecodingKey,
}

pub(crate) struct KeySet {
    pub(crate) keys: Vec<VerificationKey>,
    fetched_at: Instant,
}

impl KeySet {
    #[cfg(test)]
    pub(crate) fn for_tests(keys: Vec<VerificationKey>) -> Self {
        Self::from_keys(keys)
    }

    pub(crate) fn from_keys(keys: Vec<VerificationKey>) -> Self {
        Self {
            keys,
            fetched_at: Instant::now(),
        }
    }

    pub(crate) fn find(&self, kid: Option<&str>) -> Vec<&VerificationKey> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect(),
            None => self.keys.iter().collect(),
        }
    }
}

struct Cached<T> {
    value: Arc<T>,
    at: Instant,
}

/// The metadata + JWKS cache of one client.
pub(crate) struct Discovery {
    http: reqwest::Client,
    issuer: String,
    ttl: Duration,
    refetch_cooldown: Duration,
    metadata: RwLock<Option<Cached<ProviderMetadata>>>,
    metadata_flight: tokio::sync::Mutex<()>,
    jwks: RwLock<Option<Arc<KeySet>>>,
    jwks_flight: tokio::sync::Mutex<()>,
    last_forced_refetch: RwLock<Option<Instant>>,
}

impl Discovery {
    pub(crate) fn new(
        http: reqwest::Client,
        issuer: String,
        ttl: Duration,
        refetch_cooldown: Duration,
    ) -> Self {
        Self {
            http,
            issuer,
            ttl,
            refetch_cooldown,
            metadata: RwLock::new(None),
            metadata_flight: tokio::sync::Mutex::new(()),
            jwks: RwLock::new(None),
            jwks_flight: tokio::sync::Mutex::new(()),
            last_forced_refetch: RwLock::new(None),
        }
    }

    fn fresh_metadata(&self) -> Option<Arc<ProviderMetadata>> {
        let guard = self.metadata.read().ok()?;
        let c = guard.as_ref()?;
        (c.at.elapsed() < self.ttl).then(|| c.value.clone())
    }

    /// The provider metadata, from cache or fetched (one fetch for all concurrent callers).
    pub(crate) async fn metadata(&self) -> Result<Arc<ProviderMetadata>> {
        if let Some(m) = self.fresh_metadata() {
            return Ok(m);
        }
        let _flight = self.metadata_flight.lock().await;
        if let Some(m) = self.fresh_metadata() {
            return Ok(m);
        }
        let m = Arc::new(self.fetch_metadata().await?);
        if let Ok(mut g) = self.metadata.write() {
            *g = Some(Cached {
                value: m.clone(),
                at: Instant::now(),
            });
        }
        Ok(m)
    }

    async fn fetch_metadata(&self) -> Result<ProviderMetadata> {
        let url = discovery_url(&self.issuer)?;
        tracing::debug!(url = %url, "fetching provider metadata");
        let (_, parsed) = http::get_json::<RawMetadata>(&self.http, &url).await?;
        let raw = parsed.map_err(|e| DiscoveryError::Malformed {
            document: "openid-configuration",
            reason: e.to_string(),
        })?;
        // OIDC Discovery §4.3: the issuer must be identical. We tolerate only a trailing-slash
        // difference against the *configured* value, then use the provider's exact string.
        if raw.issuer != self.issuer && raw.issuer.trim_end_matches('/') != self.issuer.trim_end_matches('/')
        {
            return Err(DiscoveryError::IssuerMismatch {
                expected: self.issuer.clone(),
                found: http::truncate(&raw.issuer, 200),
            }
            .into());
        }
        let issuer_url = Url::parse(&raw.issuer).map_err(|_| DiscoveryError::Malformed {
            document: "openid-configuration",
            reason: "issuer is not a URL".into(),
        })?;
        let loopback_ok = is_loopback(&issuer_url);
        let ep = |field: &'static str, v: &str| endpoint(field, v, loopback_ok);
        let opt =
            |field: &'static str, v: Option<&String>| v.map(|v| endpoint(field, v, loopback_ok)).transpose();
        Ok(ProviderMetadata {
            authorization_endpoint: ep("authorization_endpoint", &raw.authorization_endpoint)?,
            token_endpoint: ep("token_endpoint", &raw.token_endpoint)?,
            jwks_uri: ep("jwks_uri", &raw.jwks_uri)?,
            userinfo_endpoint: opt("userinfo_endpoint", raw.userinfo_endpoint.as_ref())?,
            end_session_endpoint: opt("end_session_endpoint", raw.end_session_endpoint.as_ref())?,
            pushed_authorization_request_endpoint: opt(
                "pushed_authorization_request_endpoint",
                raw.pushed_authorization_request_endpoint.as_ref(),
            )?,
            require_pushed_authorization_requests: raw.require_pushed_authorization_requests,
            id_token_signing_alg_values_supported: raw.id_token_signing_alg_values_supported,
            authorization_response_iss_parameter_supported: raw
                .authorization_response_iss_parameter_supported,
            backchannel_logout_supported: raw.backchannel_logout_supported,
            issuer: raw.issuer,
        })
    }

    fn fresh_jwks(&self) -> Option<Arc<KeySet>> {
        let guard = self.jwks.read().ok()?;
        let k = guard.as_ref()?;
        (k.fetched_at.elapsed() < self.ttl).then(|| k.clone())
    }

    /// The JWKS, from cache or fetched (single flight).
    pub(crate) async fn jwks(&self) -> Result<Arc<KeySet>> {
        if let Some(k) = self.fresh_jwks() {
            return Ok(k);
        }
        let _flight = self.jwks_flight.lock().await;
        if let Some(k) = self.fresh_jwks() {
            return Ok(k);
        }
        self.fetch_and_store_jwks().await
    }

    /// Called when a token names a `kid` that `seen` does not have. Refetches at most once per
    /// cooldown; returns the new set, or `None` when still cooling down.
    pub(crate) async fn jwks_after_unknown_kid(&self, seen: &Arc<KeySet>) -> Result<Option<Arc<KeySet>>> {
        let _flight = self.jwks_flight.lock().await;
        // Someone else refetched while we waited: use theirs.
        if let Some(current) = self.jwks.read().ok().and_then(|g| g.clone())
            && !Arc::ptr_eq(&current, seen)
        {
            return Ok(Some(current));
        }
        let cooling = self
            .last_forced_refetch
            .read()
            .ok()
            .and_then(|g| *g)
            .is_some_and(|t| t.elapsed() < self.refetch_cooldown);
        if cooling {
            tracing::debug!("unknown kid: JWKS refetch skipped (cooldown)");
            return Ok(None);
        }
        if let Ok(mut g) = self.last_forced_refetch.write() {
            *g = Some(Instant::now());
        }
        self.fetch_and_store_jwks().await.map(Some)
    }

    async fn fetch_and_store_jwks(&self) -> Result<Arc<KeySet>> {
        let meta = self.metadata().await?;
        tracing::debug!(url = %meta.jwks_uri, "fetching JWKS");
        let (_, parsed) = http::get_json::<serde_json::Value>(&self.http, &meta.jwks_uri).await?;
        let doc = parsed.map_err(|e| DiscoveryError::Malformed {
            document: "jwks",
            reason: e.to_string(),
        })?;
        let keys = parse_jwks(&doc)?;
        let set = Arc::new(KeySet {
            keys,
            fetched_at: Instant::now(),
        });
        if let Ok(mut g) = self.jwks.write() {
            *g = Some(set.clone());
        }
        Ok(set)
    }
}

/// Parses the signing keys of a JWKS document, skipping keys we cannot use (encryption keys,
/// unknown types) instead of failing the whole set.
pub(crate) fn parse_jwks(doc: &serde_json::Value) -> Result<Vec<VerificationKey>> {
    let Some(keys) = doc.get("keys").and_then(serde_json::Value::as_array) else {
        return Err(DiscoveryError::Malformed {
            document: "jwks",
            reason: "no `keys` array".into(),
        }
        .into());
    };
    let mut out = Vec::new();
    for k in keys {
        if k.get("use")
            .and_then(serde_json::Value::as_str)
            .is_some_and(|u| u != "sig")
        {
            continue;
        }
        let kty = match k.get("kty").and_then(serde_json::Value::as_str) {
            Some("RSA") => "RSA",
            Some("EC") => "EC",
            Some("OKP") => "OKP",
            _ => continue,
        };
        let Ok(jwk) = serde_json::from_value::<Jwk>(k.clone()) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        out.push(VerificationKey {
            kid: k
                .get("kid")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
            alg: k
                .get("alg")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned),
            kty,
            key,
        });
    }
    Ok(out)
}

fn discovery_url(issuer: &str) -> Result<Url> {
    let s = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    Url::parse(&s).map_err(|_| {
        DiscoveryError::BadEndpoint {
            field: "issuer",
            reason: "cannot build the discovery URL".into(),
        }
        .into()
    })
}

fn endpoint(field: &'static str, value: &str, loopback_ok: bool) -> Result<Url> {
    let url = Url::parse(value).map_err(|_| DiscoveryError::BadEndpoint {
        field,
        reason: "not an absolute URL".into(),
    })?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if loopback_ok && is_loopback(&url) => Ok(url),
        _ => Err(DiscoveryError::BadEndpoint {
            field,
            reason: "must use https".into(),
        }
        .into()),
    }
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;
