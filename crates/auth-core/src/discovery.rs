//! Provider metadata and JWKS, fetched on first use and cached.
//!
//! Guarantees:
//! - concurrent first callers share one fetch (single flight); cached values live for the
//!   configured TTL;
//! - a token whose `kid` is unknown triggers at most one JWKS refetch per cooldown period
//!   **per source** ([`RefetchSource`]): unauthenticated back-channel posts have their own
//!   slot, so a flood of forged `kid`s can neither turn us into a load generator against the
//!   provider nor spend the refetch a real callback needs after a key rotation;
//! - a failed fetch is remembered for a short time (negative cache) and not retried before
//!   it expires, so an outage does not turn every request into an outbound call;
//! - past the TTL, a failed refresh keeps serving the last good metadata/JWKS (with a
//!   `warn`) for up to `max_stale` beyond the TTL.

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;
use serde::Deserialize;
use url::Url;

use crate::config::is_loopback;
use crate::error::{DiscoveryError, Error, Result, TransportError};
use crate::http;

/// Default time a failed discovery/JWKS fetch is remembered before the next attempt.
pub(crate) const DEFAULT_FAILURE_TTL: Duration = Duration::from_secs(5);
/// Default time past the TTL during which the last good metadata/JWKS is served while the
/// provider cannot be reached.
pub(crate) const DEFAULT_MAX_STALE: Duration = Duration::from_secs(3600);

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
    /// RFC 7009 token revocation, if offered (used on logout to revoke the refresh token).
    pub revocation_endpoint: Option<Url>,
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
    /// OpenID CIBA: where backchannel authentication requests start, if offered (an unusable
    /// URL counts as absent).
    pub backchannel_authentication_endpoint: Option<Url>,
    /// OpenID CIBA token delivery modes (`poll`, `ping`, `push`); empty when not stated.
    pub backchannel_token_delivery_modes_supported: Vec<String>,
}

#[derive(Deserialize)]
struct RawMetadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    userinfo_endpoint: Option<String>,
    end_session_endpoint: Option<String>,
    #[serde(default)]
    revocation_endpoint: Option<String>,
    pushed_authorization_request_endpoint: Option<String>,
    #[serde(default)]
    require_pushed_authorization_requests: bool,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    backchannel_logout_supported: bool,
    #[serde(default)]
    backchannel_authentication_endpoint: Option<String>,
    /// Read leniently: a malformed value never fails discovery for the other flows.
    #[serde(default)]
    backchannel_token_delivery_modes_supported: Option<serde_json::Value>,
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
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kids: Vec<_> = self.keys.iter().map(|k| k.kid.as_deref()).collect();
        f.debug_struct("KeySet").field("kids", &kids).finish()
    }
}

impl KeySet {
    #[cfg(test)]
    pub(crate) fn for_tests(keys: Vec<VerificationKey>) -> Self {
        Self::from_keys(keys)
    }

    pub(crate) fn from_keys(keys: Vec<VerificationKey>) -> Self {
        Self { keys }
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

/// Who asks for a JWKS refetch after an unknown `kid`. Each source has its own cooldown slot,
/// so one source cannot spend the refetch another needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefetchSource {
    /// ID tokens from the token endpoint (callback, refresh, link, connect): they come over
    /// TLS from the provider, in answer to our own request.
    IdToken,
    /// Back-channel logout tokens: `/auth/backchannel-logout` is unauthenticated, anyone can
    /// post a token naming any `kid`.
    LogoutToken,
}

impl RefetchSource {
    const COUNT: usize = 2;

    fn slot(self) -> usize {
        match self {
            Self::IdToken => 0,
            Self::LogoutToken => 1,
        }
    }
}

/// A failure remembered by the negative cache, replayable as a typed error.
#[derive(Clone)]
enum Failure {
    /// The document was fetched but is unusable: the same error again.
    Discovery(DiscoveryError),
    /// The provider could not be reached or answered badly.
    Transport { url: String, reason: String },
}

impl Failure {
    fn of(e: &Error) -> Self {
        match e {
            Error::Discovery(d) => Self::Discovery(d.clone()),
            Error::Transport(t) => {
                let url = match t {
                    TransportError::Timeout { url }
                    | TransportError::Request { url, .. }
                    | TransportError::TooLarge { url, .. }
                    | TransportError::Status { url, .. }
                    | TransportError::RecentlyFailed { url, .. } => url.clone(),
                };
                Self::Transport {
                    url,
                    reason: t.to_string(),
                }
            }
            other => Self::Transport {
                url: String::new(),
                reason: other.to_string(),
            },
        }
    }

    fn replay(&self, retry_in: Duration) -> Error {
        match self {
            Self::Discovery(d) => d.clone().into(),
            Self::Transport { url, reason } => TransportError::RecentlyFailed {
                url: url.clone(),
                reason: reason.clone(),
                retry_after_secs: retry_in.as_secs().max(1),
            }
            .into(),
        }
    }
}

/// One cached document: the last good value and the last failure since then.
struct Slot<T> {
    good: Option<(Arc<T>, Instant)>,
    failed: Option<(Instant, Failure)>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Self {
            good: None,
            failed: None,
        }
    }
}

/// What the cache can answer without a fetch.
enum Cached<T> {
    /// Within the TTL.
    Fresh(Arc<T>),
    /// Past the TTL; may be served while the provider is failing, up to `max_stale`.
    Stale(Arc<T>),
    Nothing,
}

/// How long values and failures are kept.
#[derive(Clone, Copy)]
struct Lifetimes {
    ttl: Duration,
    failure_ttl: Duration,
    max_stale: Duration,
}

impl Lifetimes {
    fn lookup<T>(&self, slot: &RwLock<Slot<T>>) -> Cached<T> {
        let Ok(g) = slot.read() else {
            return Cached::Nothing;
        };
        match &g.good {
            Some((v, at)) if at.elapsed() < self.ttl => Cached::Fresh(v.clone()),
            Some((v, at)) if at.elapsed() < self.ttl.saturating_add(self.max_stale) => {
                Cached::Stale(v.clone())
            }
            _ => Cached::Nothing,
        }
    }

    /// The remembered failure while it is recent, with the time left until a retry.
    fn recent_failure<T>(&self, slot: &RwLock<Slot<T>>) -> Option<(Failure, Duration)> {
        let g = slot.read().ok()?;
        let (at, f) = g.failed.as_ref()?;
        let left = self.failure_ttl.checked_sub(at.elapsed())?;
        (!left.is_zero()).then(|| (f.clone(), left))
    }
}

fn store_good<T>(slot: &RwLock<Slot<T>>, value: Arc<T>) {
    if let Ok(mut g) = slot.write() {
        g.good = Some((value, Instant::now()));
        g.failed = None;
    }
}

fn store_failure<T>(slot: &RwLock<Slot<T>>, e: &Error) {
    if let Ok(mut g) = slot.write() {
        g.failed = Some((Instant::now(), Failure::of(e)));
    }
}

fn current<T>(slot: &RwLock<Slot<T>>) -> Option<Arc<T>> {
    slot.read().ok()?.good.as_ref().map(|(v, _)| v.clone())
}

/// The metadata + JWKS cache of one client.
pub(crate) struct Discovery {
    http: reqwest::Client,
    issuer: String,
    life: Lifetimes,
    refetch_cooldown: Duration,
    metadata: RwLock<Slot<ProviderMetadata>>,
    metadata_flight: tokio::sync::Mutex<()>,
    jwks: RwLock<Slot<KeySet>>,
    jwks_flight: tokio::sync::Mutex<()>,
    /// Last forced (unknown-`kid`) refetch, one slot per [`RefetchSource`].
    last_forced_refetch: [Mutex<Option<Instant>>; RefetchSource::COUNT],
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
            life: Lifetimes {
                ttl,
                failure_ttl: DEFAULT_FAILURE_TTL,
                max_stale: DEFAULT_MAX_STALE,
            },
            refetch_cooldown,
            metadata: RwLock::new(Slot::default()),
            metadata_flight: tokio::sync::Mutex::new(()),
            jwks: RwLock::new(Slot::default()),
            jwks_flight: tokio::sync::Mutex::new(()),
            last_forced_refetch: std::array::from_fn(|_| Mutex::new(None)),
        }
    }

    /// How long a failed fetch is remembered (not retried); zero disables the negative cache.
    pub(crate) fn with_failure_ttl(mut self, failure_ttl: Duration) -> Self {
        self.life.failure_ttl = failure_ttl;
        self
    }

    /// How long past the TTL the last good value is served while refreshing it fails; zero
    /// disables stale serving.
    pub(crate) fn with_max_stale(mut self, max_stale: Duration) -> Self {
        self.life.max_stale = max_stale;
        self
    }

    /// The provider metadata, from cache or fetched (one fetch for all concurrent callers).
    pub(crate) async fn metadata(&self) -> Result<Arc<ProviderMetadata>> {
        self.cached_or_fetch(
            &self.metadata,
            &self.metadata_flight,
            "openid-configuration",
            || self.fetch_metadata(),
        )
        .await
    }

    /// The JWKS, from cache or fetched (single flight).
    pub(crate) async fn jwks(&self) -> Result<Arc<KeySet>> {
        self.cached_or_fetch(&self.jwks, &self.jwks_flight, "jwks", || self.fetch_jwks())
            .await
    }

    /// The shared cache policy: fresh value; else one fetch for all callers (callers that
    /// have a stale value do not wait for it); a recent failure is replayed instead of
    /// fetching again; a failed refresh serves the stale value while it is within
    /// `max_stale`.
    async fn cached_or_fetch<T, F, Fut>(
        &self,
        slot: &RwLock<Slot<T>>,
        flight: &tokio::sync::Mutex<()>,
        document: &'static str,
        fetch: F,
    ) -> Result<Arc<T>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let _flight = match self.life.lookup(slot) {
            Cached::Fresh(v) => return Ok(v),
            Cached::Stale(v) => match flight.try_lock() {
                Ok(g) => g,
                // Someone is refreshing it: serve the stale value meanwhile.
                Err(_) => return Ok(v),
            },
            Cached::Nothing => flight.lock().await,
        };
        let stale = match self.life.lookup(slot) {
            Cached::Fresh(v) => return Ok(v),
            Cached::Stale(v) => Some(v),
            Cached::Nothing => None,
        };
        if let Some((failure, left)) = self.life.recent_failure(slot) {
            return match stale {
                Some(v) => Ok(v),
                None => Err(failure.replay(left)),
            };
        }
        match fetch().await {
            Ok(v) => {
                let v = Arc::new(v);
                store_good(slot, v.clone());
                Ok(v)
            }
            Err(e) => {
                store_failure(slot, &e);
                match stale {
                    Some(v) => {
                        tracing::warn!(
                            document,
                            error = %e,
                            "refreshing provider {document} failed; serving the last good copy"
                        );
                        Ok(v)
                    }
                    None => Err(e),
                }
            }
        }
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
            // Optional extra: an unusable one is ignored rather than failing discovery.
            revocation_endpoint: opt("revocation_endpoint", raw.revocation_endpoint.as_ref())
                .ok()
                .flatten(),
            pushed_authorization_request_endpoint: opt(
                "pushed_authorization_request_endpoint",
                raw.pushed_authorization_request_endpoint.as_ref(),
            )?,
            require_pushed_authorization_requests: raw.require_pushed_authorization_requests,
            id_token_signing_alg_values_supported: raw.id_token_signing_alg_values_supported,
            authorization_response_iss_parameter_supported: raw
                .authorization_response_iss_parameter_supported,
            backchannel_logout_supported: raw.backchannel_logout_supported,
            // Optional extra: an unusable one is ignored (CIBA then reports a configuration error).
            backchannel_authentication_endpoint: opt(
                "backchannel_authentication_endpoint",
                raw.backchannel_authentication_endpoint.as_ref(),
            )
            .ok()
            .flatten(),
            backchannel_token_delivery_modes_supported: raw
                .backchannel_token_delivery_modes_supported
                .as_ref()
                .and_then(serde_json::Value::as_array)
                .map(|modes| {
                    modes
                        .iter()
                        .filter_map(serde_json::Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            issuer: raw.issuer,
        })
    }

    /// Called when a token names a `kid` that `seen` does not have. Refetches at most once per
    /// cooldown *per source*; returns the new set, or `None` when this source is still cooling
    /// down. A recent failed fetch is replayed instead of fetching again.
    pub(crate) async fn jwks_after_unknown_kid(
        &self,
        seen: &Arc<KeySet>,
        source: RefetchSource,
    ) -> Result<Option<Arc<KeySet>>> {
        let _flight = self.jwks_flight.lock().await;
        // Someone else refetched while we waited: use theirs.
        if let Some(current) = current(&self.jwks)
            && !Arc::ptr_eq(&current, seen)
        {
            return Ok(Some(current));
        }
        if let Some((failure, left)) = self.life.recent_failure(&self.jwks) {
            return Err(failure.replay(left));
        }
        {
            let Ok(mut last) = self.last_forced_refetch[source.slot()].lock() else {
                return Ok(None);
            };
            if last.is_some_and(|t| t.elapsed() < self.refetch_cooldown) {
                tracing::debug!(?source, "unknown kid: JWKS refetch skipped (cooldown)");
                return Ok(None);
            }
            *last = Some(Instant::now());
        }
        match self.fetch_jwks().await {
            Ok(set) => {
                let set = Arc::new(set);
                store_good(&self.jwks, set.clone());
                Ok(Some(set))
            }
            Err(e) => {
                store_failure(&self.jwks, &e);
                Err(e)
            }
        }
    }

    async fn fetch_jwks(&self) -> Result<KeySet> {
        let meta = self.metadata().await?;
        tracing::debug!(url = %meta.jwks_uri, "fetching JWKS");
        let (_, parsed) = http::get_json::<serde_json::Value>(&self.http, &meta.jwks_uri).await?;
        let doc = parsed.map_err(|e| DiscoveryError::Malformed {
            document: "jwks",
            reason: e.to_string(),
        })?;
        Ok(KeySet::from_keys(parse_jwks(&doc)?))
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
pub(crate) mod tests;
