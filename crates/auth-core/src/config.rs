//! Configuration: a builder that forces the important decisions, and `from_env()`.
//!
//! Everything is validated in [`ServerClientBuilder::build`]; each error names the setting and
//! what to change. Nothing here panics.

use std::net::IpAddr;
use std::time::Duration;

use url::Url;

use crate::client::ServerClient;
use crate::client_auth::ClientAuth;
use crate::error::{ConfigError, Error, Result};
use crate::params::AuthorizationParams;
use crate::secret::SecretString;

/// Minimum length of a cookie secret, in characters.
pub const MIN_SECRET_LEN: usize = 32;

/// The default transaction cookie prefix (the Auth0 Python SDK's).
const DEFAULT_TRANSACTION_PREFIX: &str = "_a0_tx_";

/// Where the provider is.
#[derive(Debug, Clone)]
enum Provider {
    Domain(String),
    Issuer(String),
}

/// Cookie names and attributes.
#[derive(Debug, Clone)]
pub(crate) struct CookieSettings {
    pub(crate) session_name: String,
    pub(crate) transaction_prefix: String,
    pub(crate) secure: bool,
    pub(crate) domain: Option<String>,
    pub(crate) transaction_max_age: Duration,
    pub(crate) max_transactions: usize,
}

/// Added to the request timeout for the refresh lease's TTL (see `Config::refresh_lease_ttl`).
const REFRESH_LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Validated settings shared by every flow.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// The issuer as configured (Auth0: `https://{domain}/`).
    pub(crate) issuer: String,
    /// `Some(domain)` when configured as an Auth0 tenant.
    pub(crate) auth0_domain: Option<String>,
    pub(crate) client_id: String,
    pub(crate) client_auth: ClientAuth,
    pub(crate) secrets: Vec<SecretString>,
    pub(crate) app_base_url: Option<Url>,
    pub(crate) authorization_params: AuthorizationParams,
    /// `redirect_uri` was configured (builder or `AUTH0_REDIRECT_URI`), not derived from
    /// `app_base_url` as `{app_base_url}/auth/callback`.
    pub(crate) redirect_uri_configured: bool,
    /// Authorization parameters per-call input can never change: the configured value (or
    /// none) always wins. Always holds `organization` and `connection` when configured.
    pub(crate) pinned_params: std::collections::BTreeSet<String>,
    pub(crate) pushed_authorization_requests: bool,
    pub(crate) metadata_ttl: Duration,
    pub(crate) jwks_refetch_cooldown: Duration,
    /// How long a failed discovery/JWKS fetch is remembered (not retried).
    pub(crate) discovery_failure_ttl: Duration,
    /// How long past `metadata_ttl` the last good metadata/JWKS is served while refreshing fails.
    pub(crate) metadata_max_stale: Duration,
    /// HS256/384/512 ID and logout tokens, keyed with the client secret, are accepted.
    pub(crate) allow_symmetric_id_tokens: bool,
    pub(crate) clock_leeway: Duration,
    pub(crate) token_refresh_leeway: Duration,
    pub(crate) lifetimes: crate::lifetime::Lifetimes,
    pub(crate) backend: std::sync::Arc<dyn crate::store::SessionBackend>,
    pub(crate) server_side_sessions: bool,
    /// How long a refresh lease of a server-side session lasts (`flows/access_token.rs`):
    /// longer than a token request may take (the request timeout, plus a margin).
    pub(crate) refresh_lease_ttl: Duration,
    pub(crate) cookies: CookieSettings,
    /// Auth0 telemetry (`Auth0-Client` header, `auth0Client` for Auth0 domains).
    pub(crate) telemetry: bool,
    /// The DPoP key and nonces, when DPoP is on (`dpop.rs`).
    pub(crate) dpop: Option<std::sync::Arc<crate::dpop::Dpop>>,
}

impl Config {
    /// The key for HS* ID/logout tokens: the client secret, only when the app opted in with
    /// [`ServerClientBuilder::allow_symmetric_id_tokens`]. `None` refuses every HS* token.
    pub(crate) fn symmetric_token_key(&self) -> Option<&SecretString> {
        self.allow_symmetric_id_tokens
            .then(|| self.client_auth.client_secret())
            .flatten()
    }
}

/// Builds a [`ServerClient`].
///
/// ```no_run
/// # async fn run() -> Result<(), auth_core::Error> {
/// use auth_core::{AuthorizationParams, ClientAuth, ServerClient};
///
/// let client = ServerClient::builder()
///     .domain("tenant.eu.auth0.com")
///     .client_id("my-client-id")
///     .client_auth(ClientAuth::secret("my-client-secret"))
///     .secret("a-long-random-value-of-at-least-32-characters")
///     .app_base_url("http://localhost:3000")
///     .authorization_params(AuthorizationParams::new().audience("https://api.example.com/"))
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ServerClientBuilder {
    provider: Option<Provider>,
    client_id: Option<String>,
    client_auth: Option<ClientAuth>,
    secrets: Vec<SecretString>,
    app_base_url: Option<String>,
    authorization_params: AuthorizationParams,
    pinned_params: std::collections::BTreeSet<String>,
    pushed_authorization_requests: bool,
    http_client: Option<reqwest::Client>,
    extra_roots_pem: Option<Vec<u8>>,
    connect_timeout: Duration,
    request_timeout: Duration,
    metadata_ttl: Duration,
    jwks_refetch_cooldown: Duration,
    discovery_failure_ttl: Duration,
    metadata_max_stale: Duration,
    allow_symmetric_id_tokens: bool,
    clock_leeway: Duration,
    token_refresh_leeway: Duration,
    inactivity: Duration,
    absolute: Duration,
    rolling: bool,
    backend: Option<std::sync::Arc<dyn crate::store::SessionBackend>>,
    server_side_sessions: bool,
    cookie_secure: Option<bool>,
    cookie_domain: Option<String>,
    session_cookie_name: String,
    transaction_cookie_prefix: String,
    transaction_max_age: Duration,
    max_transactions: usize,
    host_prefixed_cookies: bool,
    telemetry: bool,
    /// DPoP (`dpop.rs` holds its builder methods).
    pub(crate) dpop: crate::dpop::DpopSetting,
    /// `before_session_saved` (`hooks.rs` holds its builder method).
    pub(crate) save_hook: Option<crate::hooks::SaveHook>,
}

impl Default for ServerClientBuilder {
    fn default() -> Self {
        Self {
            provider: None,
            client_id: None,
            client_auth: None,
            secrets: Vec::new(),
            app_base_url: None,
            authorization_params: AuthorizationParams::new(),
            pinned_params: std::collections::BTreeSet::new(),
            pushed_authorization_requests: false,
            http_client: None,
            extra_roots_pem: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            metadata_ttl: Duration::from_secs(600),
            jwks_refetch_cooldown: Duration::from_secs(30),
            discovery_failure_ttl: crate::discovery::DEFAULT_FAILURE_TTL,
            metadata_max_stale: crate::discovery::DEFAULT_MAX_STALE,
            allow_symmetric_id_tokens: false,
            clock_leeway: Duration::from_secs(60),
            token_refresh_leeway: Duration::from_secs(60),
            inactivity: Duration::from_secs(24 * 3600),
            absolute: Duration::from_secs(3 * 24 * 3600),
            rolling: true,
            backend: None,
            server_side_sessions: false,
            cookie_secure: None,
            cookie_domain: None,
            session_cookie_name: crate::seal::SESSION_SALT.into(),
            transaction_cookie_prefix: DEFAULT_TRANSACTION_PREFIX.into(),
            transaction_max_age: Duration::from_secs(600),
            max_transactions: 5,
            host_prefixed_cookies: false,
            telemetry: true,
            dpop: crate::dpop::DpopSetting::Off,
            save_hook: None,
        }
    }
}

impl ServerClientBuilder {
    /// An Auth0 tenant domain (`tenant.auth0.com`; `https://tenant.auth0.com/` is accepted too).
    /// The issuer becomes `https://{domain}/`.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.provider = Some(Provider::Domain(domain.into()));
        self
    }

    /// Any OpenID Connect provider, by issuer URL (https, or http on a loopback address).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.provider = Some(Provider::Issuer(issuer.into()));
        self
    }

    /// The client (application) id.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// How the client authenticates; required (use [`ClientAuth::none`] for a public client).
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = Some(auth);
        self
    }

    /// Adds a cookie secret (≥ 32 characters). The first one seals; all of them open, so append
    /// the previous secret after the new one to rotate without logging anyone out.
    pub fn secret(mut self, secret: impl Into<SecretString>) -> Self {
        self.secrets.push(secret.into());
        self
    }

    /// Replaces the cookie secrets with this list (first seals, all open).
    pub fn secrets<S: Into<SecretString>>(mut self, secrets: impl IntoIterator<Item = S>) -> Self {
        self.secrets = secrets.into_iter().map(Into::into).collect();
        self
    }

    /// The app's public base URL, e.g. `https://app.example.com`. The default `redirect_uri` is
    /// `{app_base_url}/auth/callback` (the `auth-axum` routes move it under their base path,
    /// `{app_base_url}{base_path}/callback`), and cookies are `Secure` when it is https.
    pub fn app_base_url(mut self, url: impl Into<String>) -> Self {
        self.app_base_url = Some(url.into());
        self
    }

    /// Authorization parameters sent with every login (per-call ones override them, except
    /// pinned ones: `organization`, `connection` and those named with
    /// [`ServerClientBuilder::pin_authorization_param`]).
    pub fn authorization_params(mut self, params: AuthorizationParams) -> Self {
        self.authorization_params = params;
        self
    }

    /// Pins an authorization parameter: the value configured with
    /// [`ServerClientBuilder::authorization_params`] (or its absence) is what every login,
    /// link and unlink sends, whatever the call asks for. A per-call value that differs is
    /// refused with [`Error::InvalidParameter`] (the `auth-axum` routes never forward a pinned
    /// name from the query, so a hint in a URL cannot change it and does not fail the login).
    ///
    /// A configured `organization` or `connection` is always pinned; pin other names (e.g.
    /// `audience`, `prompt`, `scope`) here. Pinning a name that is not configured forbids
    /// per-call values for it. `redirect_uri` and the names the library sets itself cannot be
    /// pinned.
    pub fn pin_authorization_param(mut self, name: impl Into<String>) -> Self {
        self.pinned_params.insert(name.into());
        self
    }

    /// Use pushed authorization requests (RFC 9126) for every login. The provider must have a
    /// PAR endpoint; otherwise logins fail with a configuration error.
    pub fn pushed_authorization_requests(mut self, enabled: bool) -> Self {
        self.pushed_authorization_requests = enabled;
        self
    }

    /// Use this HTTP client instead of building one. It must not follow redirects and should
    /// have timeouts; the timeouts set on this builder are then ignored.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http_client = Some(client);
        self
    }

    /// Trust these PEM certificates in addition to the system's roots when talking to the
    /// provider (a corporate TLS proxy, a private CA). `from_env()` reads them from the file
    /// named by `SSL_CERT_FILE`.
    pub fn extra_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.extra_roots_pem = Some(pem.into());
        self
    }

    /// Time allowed to connect to the provider (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for a whole request to the provider (default 15 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long discovery metadata and the JWKS are cached (default 10 minutes).
    pub fn metadata_cache_ttl(mut self, ttl: Duration) -> Self {
        self.metadata_ttl = ttl;
        self
    }

    /// Minimum time between two JWKS refetches caused by an unknown `kid` (default 30 s).
    ///
    /// Counted separately per source: ID tokens from the token endpoint (callback, refresh)
    /// and back-channel logout tokens each have their own slot, so forged tokens posted to the
    /// unauthenticated back-channel route cannot spend the refetch a login needs after a key
    /// rotation.
    pub fn jwks_refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.jwks_refetch_cooldown = cooldown;
        self
    }

    /// How long a failed discovery or JWKS fetch is remembered and not retried (default 5 s;
    /// zero disables). Meanwhile callers get the last good copy if one is usable, else
    /// [`crate::TransportError::RecentlyFailed`] (or the same [`crate::DiscoveryError`]), so an
    /// outage does not turn every request into an outbound call.
    pub fn discovery_failure_cache_ttl(mut self, ttl: Duration) -> Self {
        self.discovery_failure_ttl = ttl;
        self
    }

    /// How long past [`ServerClientBuilder::metadata_cache_ttl`] the last good metadata and
    /// JWKS keep being served when refreshing them fails (default 1 hour; a `warn` is logged
    /// on each failed refresh). Zero: never serve a copy past its TTL.
    pub fn metadata_max_staleness(mut self, max_stale: Duration) -> Self {
        self.metadata_max_stale = max_stale;
        self
    }

    /// Accept ID tokens and back-channel logout tokens signed with HS256/HS384/HS512 keyed with
    /// the client secret (default `false`: only asymmetric algorithms — RS*, PS*, ES*, EdDSA —
    /// are accepted, even when the provider advertises HS256). Turn on only for a provider
    /// that cannot sign with a key pair: anyone holding the client secret can then mint tokens.
    /// Needs [`crate::ClientAuth::secret`]; `build` fails otherwise. The algorithm must still
    /// be in the provider's `id_token_signing_alg_values_supported`.
    pub fn allow_symmetric_id_tokens(mut self, allow: bool) -> Self {
        self.allow_symmetric_id_tokens = allow;
        self
    }

    /// Clock skew tolerated on `exp`, `iat`, `nbf`, `auth_time` (default 60 s).
    pub fn clock_leeway(mut self, leeway: Duration) -> Self {
        self.clock_leeway = leeway;
        self
    }

    /// Access tokens expiring within this margin are refreshed before use (default 60 s).
    pub fn token_refresh_leeway(mut self, leeway: Duration) -> Self {
        self.token_refresh_leeway = leeway;
        self
    }

    /// A session ends after this long without activity (default 1 day). Activity moves the
    /// window forward; the cookie is re-issued only when the window needs it.
    pub fn session_inactivity_duration(mut self, duration: Duration) -> Self {
        self.inactivity = duration;
        self
    }

    /// A session ends this long after login whatever the activity (default 3 days).
    pub fn session_absolute_duration(mut self, duration: Duration) -> Self {
        self.absolute = duration;
        self
    }

    /// With `false`, sessions last the absolute duration and activity does not matter
    /// (default `true`).
    pub fn rolling_sessions(mut self, rolling: bool) -> Self {
        self.rolling = rolling;
        self
    }

    /// The backend for server-side state: back-channel logout bookkeeping (logout list, replay
    /// guard) and, with [`ServerClientBuilder::server_side_sessions`], the sessions themselves.
    /// Default: an in-process [`crate::store::MemoryBackend`]; use a shared one (Redis) when
    /// the app runs on several instances.
    pub fn session_backend(mut self, backend: impl crate::store::SessionBackend) -> Self {
        self.backend = Some(std::sync::Arc::new(backend));
        self
    }

    /// [`ServerClientBuilder::session_backend`] with a shared handle.
    pub fn session_backend_arc(mut self, backend: std::sync::Arc<dyn crate::store::SessionBackend>) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Keep sessions in the backend; the cookie then holds only a sealed session id (default
    /// `false`: the whole session is sealed into cookies).
    pub fn server_side_sessions(mut self, enabled: bool) -> Self {
        self.server_side_sessions = enabled;
        self
    }

    /// Forces the `Secure` cookie attribute on or off (default: on when the base URL is https).
    pub fn cookie_secure(mut self, secure: bool) -> Self {
        self.cookie_secure = Some(secure);
        self
    }

    /// Sets the cookies' `Domain` attribute (default: none, host-only cookies).
    pub fn cookie_domain(mut self, domain: impl Into<String>) -> Self {
        self.cookie_domain = Some(domain.into());
        self
    }

    /// Base name of the session cookies (default `_a0_session`; chunks are `{name}_0`, …).
    pub fn session_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.session_cookie_name = name.into();
        self
    }

    /// Prefix of the transaction cookies (default `_a0_tx_`, followed by the state).
    pub fn transaction_cookie_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.transaction_cookie_prefix = prefix.into();
        self
    }

    /// How long a login may take between start and callback (default 10 minutes).
    pub fn transaction_max_age(mut self, max_age: Duration) -> Self {
        self.transaction_max_age = max_age;
        self
    }

    /// How many logins may be in flight per browser (default 5; the oldest is dropped).
    pub fn max_transactions(mut self, max: usize) -> Self {
        self.max_transactions = max;
        self
    }

    /// Name the cookies with the `__Host-` prefix (default `false`): the session becomes
    /// `__Host-a0_session` (chunks `__Host-a0_session_0`, …) and transactions
    /// `__Host-a0_tx_{state}`. Browsers then accept these cookies only with `Secure`,
    /// `Path=/` and no `Domain`, from a secure origin, so neither a sibling subdomain nor a
    /// plain-http page can plant or overwrite them.
    ///
    /// Names set with [`ServerClientBuilder::session_cookie_name`] and
    /// [`ServerClientBuilder::transaction_cookie_prefix`] must then start with `__Host-`
    /// themselves. `build` fails with [`ConfigError`] when the cookies would not be `Secure`
    /// (an http base URL, or [`ServerClientBuilder::cookie_secure`]`(false)`) or when a
    /// [`ServerClientBuilder::cookie_domain`] is set. The defaults (`_a0_session`, `_a0_tx_`)
    /// are the Auth0 Python SDK's, so sessions can be shared with it; these are not.
    pub fn host_prefixed_cookies(mut self, enabled: bool) -> Self {
        self.host_prefixed_cookies = enabled;
        self
    }

    /// Auth0 telemetry (default on): the `Auth0-Client` header on every request to the
    /// provider (discovery, JWKS, token, PAR, My Account, revocation, …) and, for an Auth0
    /// [`domain`](Self::domain), the `auth0Client` authorization parameter (with PAR, in the
    /// pushed body). The value names this library and its version, nothing else (see
    /// [`crate::telemetry`]). `false` turns both off (`AUTH0_TELEMETRY=false`). A client given
    /// with [`http_client`](Self::http_client) is used as it is: add
    /// [`crate::telemetry::header_value`] as its default `Auth0-Client` header if wanted.
    pub fn telemetry(mut self, enabled: bool) -> Self {
        self.telemetry = enabled;
        self
    }

    /// Reads the Auth0 environment variables: `AUTH0_DOMAIN` or `OIDC_ISSUER`,
    /// `AUTH0_CLIENT_ID`, `AUTH0_CLIENT_SECRET` (absent: a public client), `AUTH0_SECRET`
    /// (comma-separated: rotation list, first seals), `APP_BASE_URL`, `AUTH0_AUDIENCE`,
    /// `AUTH0_SCOPE`, `AUTH0_REDIRECT_URI` (absolute; default `{APP_BASE_URL}/auth/callback`),
    /// and the optional `AUTH0_ORGANIZATION` and `AUTH0_CONNECTION`, which are
    /// pinned (see [`ServerClientBuilder::pin_authorization_param`]): no request can log in to
    /// another organization or through another connection. `SSL_CERT_FILE` adds trust
    /// anchors. `AUTH0_TELEMETRY=false` turns telemetry off
    /// (see [`ServerClientBuilder::telemetry`]). Methods called afterwards override what it set (replacing the authorization
    /// parameters keeps `organization` and `connection` pinned, to no value).
    ///
    /// # Errors
    /// [`ConfigError`] when both or neither of `AUTH0_DOMAIN` and `OIDC_ISSUER` are set.
    pub fn from_env() -> Result<Self> {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// [`ServerClientBuilder::from_env`] with a custom variable lookup (useful in tests).
    ///
    /// # Errors
    /// As [`ServerClientBuilder::from_env`].
    pub fn from_env_with(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut b = Self::default();
        b = match (get("AUTH0_DOMAIN"), get("OIDC_ISSUER")) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid {
                    name: "AUTH0_DOMAIN / OIDC_ISSUER",
                    reason: "set only one of them".into(),
                }
                .into());
            }
            (Some(d), None) => b.domain(d),
            (None, Some(i)) => b.issuer(i),
            (None, None) => return Err(ConfigError::Missing("AUTH0_DOMAIN or OIDC_ISSUER").into()),
        };
        if let Some(id) = get("AUTH0_CLIENT_ID") {
            b = b.client_id(id);
        }
        b = b.client_auth(match get("AUTH0_CLIENT_SECRET") {
            Some(s) => ClientAuth::secret(s),
            None => ClientAuth::none(),
        });
        if let Some(secrets) = get("AUTH0_SECRET") {
            b = b.secrets(
                secrets
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
            );
        }
        if let Some(url) = get("APP_BASE_URL") {
            b = b.app_base_url(url);
        }
        let mut params = AuthorizationParams::new();
        if let Some(aud) = get("AUTH0_AUDIENCE") {
            params = params.audience(aud);
        }
        if let Some(scope) = get("AUTH0_SCOPE") {
            params = params.scope(scope);
        }
        if let Some(redirect_uri) = get("AUTH0_REDIRECT_URI") {
            params = params.redirect_uri(redirect_uri);
        }
        if let Some(org) = get("AUTH0_ORGANIZATION") {
            params = params.organization(org);
            b = b.pin_authorization_param("organization");
        }
        if let Some(connection) = get("AUTH0_CONNECTION") {
            params = params.param("connection", connection);
            b = b.pin_authorization_param("connection");
        }
        if let Some(t) = get("AUTH0_TELEMETRY") {
            b = b.telemetry(match t.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    return Err(ConfigError::Invalid {
                        name: "AUTH0_TELEMETRY",
                        reason: format!("expected `true` or `false`, got `{t}`"),
                    }
                    .into());
                }
            });
        }
        if let Some(path) = get("SSL_CERT_FILE") {
            let pem = std::fs::read(&path).map_err(|e| ConfigError::Invalid {
                name: "SSL_CERT_FILE",
                reason: format!("cannot read `{path}`: {e}"),
            })?;
            b = b.extra_root_certificates_pem(pem);
        }
        let b = crate::dpop::apply_env(b, &get)?;
        Ok(b.authorization_params(params))
    }

    /// Validates everything and builds the client. Nothing is fetched yet: discovery happens
    /// on first use.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting to fix, or [`Error::InvalidParameter`] for a
    /// reserved or malformed authorization parameter.
    pub fn build(mut self) -> Result<ServerClient> {
        let save_hook = self.save_hook.take();
        let (config, http) = self.into_config()?;
        let mut client = ServerClient::from_config(config, http);
        client.save_hook = save_hook;
        Ok(client)
    }

    pub(crate) fn into_config(self) -> Result<(Config, reqwest::Client)> {
        let (issuer, auth0_domain) = match self.provider {
            None => return Err(ConfigError::Missing("domain (AUTH0_DOMAIN) or issuer (OIDC_ISSUER)").into()),
            Some(Provider::Domain(d)) => {
                let (issuer, host) = domain_to_issuer(&d)?;
                (issuer, Some(host))
            }
            Some(Provider::Issuer(i)) => (check_issuer(&i)?, None),
        };
        let client_id = self
            .client_id
            .filter(|c| !c.trim().is_empty())
            .ok_or(ConfigError::Missing("client_id (AUTH0_CLIENT_ID)"))?;
        let client_auth = self.client_auth.ok_or_else(|| ConfigError::Invalid {
            name: "client_auth",
            reason: "choose ClientAuth::secret(..) (AUTH0_CLIENT_SECRET), ClientAuth::private_key_jwt(..), or ClientAuth::none() for a public client".into(),
        })?;
        if let Some(s) = client_auth.client_secret()
            && s.is_empty()
        {
            return Err(ConfigError::Invalid {
                name: "client secret (AUTH0_CLIENT_SECRET)",
                reason: "it is empty".into(),
            }
            .into());
        }
        if self.allow_symmetric_id_tokens && client_auth.client_secret().is_none() {
            return Err(ConfigError::Invalid {
                name: "allow_symmetric_id_tokens",
                reason: "HS* tokens are verified with the client secret; use ClientAuth::secret(..) or turn this off".into(),
            }
            .into());
        }
        if self.secrets.is_empty() {
            return Err(ConfigError::Missing(
                "secret (AUTH0_SECRET), at least 32 characters; generate one with `openssl rand -hex 32`",
            )
            .into());
        }
        if let Some(i) = self
            .secrets
            .iter()
            .position(|s| s.expose().chars().count() < MIN_SECRET_LEN)
        {
            return Err(ConfigError::Invalid {
                name: "secret (AUTH0_SECRET)",
                reason: format!("secret #{} is shorter than {MIN_SECRET_LEN} characters; generate one with `openssl rand -hex 32`", i + 1),
            }
            .into());
        }
        let app_base_url = self.app_base_url.as_deref().map(parse_base_url).transpose()?;
        let mut params = self.authorization_params;
        params.validate()?;
        let redirect_uri_configured = params.get("redirect_uri").is_some();
        let redirect_uri = match (params.get("redirect_uri"), &app_base_url) {
            (Some(r), _) => check_redirect_uri(r)?,
            (None, Some(base)) => {
                let mut u = base.clone();
                let path = format!("{}/auth/callback", base.path().trim_end_matches('/'));
                u.set_path(&path);
                u
            }
            (None, None) => {
                return Err(ConfigError::Missing(
                    "app_base_url (APP_BASE_URL) or authorization_params.redirect_uri",
                )
                .into());
            }
        };
        params.set("redirect_uri", redirect_uri.to_string());
        let mut pinned_params = self.pinned_params;
        for name in ["organization", "connection"] {
            if params.get(name).is_some() {
                pinned_params.insert(name.to_owned());
            }
        }
        if let Some(name) = pinned_params.iter().find(|n| {
            n.is_empty() || *n == "redirect_uri" || crate::params::RESERVED_PARAMS.contains(&n.as_str())
        }) {
            return Err(ConfigError::Invalid {
                name: "pin_authorization_param",
                reason: format!("`{name}` cannot be pinned: it is set by the library or per flow"),
            }
            .into());
        }
        for (name, d) in [
            ("connect_timeout", self.connect_timeout),
            ("request_timeout", self.request_timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::Invalid {
                    name,
                    reason: "must be greater than zero".into(),
                }
                .into());
            }
        }
        if self.absolute.is_zero() || (self.rolling && self.inactivity.is_zero()) {
            return Err(invalid("session lifetimes", "must be greater than zero"));
        }
        if self.max_transactions == 0 {
            return Err(ConfigError::Invalid {
                name: "max_transactions",
                reason: "must be at least 1".into(),
            }
            .into());
        }
        let (session_cookie_name, transaction_cookie_prefix) = cookie_names(
            self.host_prefixed_cookies,
            self.session_cookie_name,
            self.transaction_cookie_prefix,
        )?;
        let app_url = app_base_url.as_ref().unwrap_or(&redirect_uri);
        let form_post = params.get("response_mode") == Some("form_post");
        let secure = self.cookie_secure.unwrap_or_else(|| {
            // Browsers treat loopback http as a secure context and keep `Secure` cookies
            // there, which a form_post callback needs (see `check_cookie_security`).
            app_url.scheme() == "https" || (form_post && is_loopback(app_url))
        });
        check_cookie_security(
            &session_cookie_name,
            &transaction_cookie_prefix,
            secure,
            self.cookie_domain.as_deref(),
            form_post,
        )?;
        // With the client's own HTTP client its timeouts are unknown: assume the default.
        let refresh_lease_ttl = if self.http_client.is_some() {
            Self::default().request_timeout
        } else {
            self.request_timeout
        }
        .saturating_add(REFRESH_LEASE_MARGIN);
        let http = match self.http_client {
            Some(c) => c,
            None => {
                let mut b = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(self.connect_timeout)
                    .timeout(self.request_timeout)
                    .user_agent(concat!("auth-core/", env!("CARGO_PKG_VERSION")))
                    .default_headers(crate::telemetry::default_headers(self.telemetry));
                if let Some(pem) = &self.extra_roots_pem {
                    let certs = reqwest::Certificate::from_pem_bundle(pem)
                        .ok()
                        .filter(|c| !c.is_empty())
                        .ok_or_else(|| {
                            invalid(
                                "extra root certificates (SSL_CERT_FILE)",
                                "no PEM certificate could be read",
                            )
                        })?;
                    b = b.tls_certs_merge(certs);
                }
                b.build().map_err(|_| ConfigError::Invalid {
                    name: "http client",
                    reason: "the TLS backend could not be initialised".into(),
                })?
            }
        };
        let config = Config {
            issuer,
            auth0_domain,
            client_id,
            client_auth,
            secrets: self.secrets,
            app_base_url,
            authorization_params: params,
            redirect_uri_configured,
            pinned_params,
            pushed_authorization_requests: self.pushed_authorization_requests,
            metadata_ttl: self.metadata_ttl,
            jwks_refetch_cooldown: self.jwks_refetch_cooldown,
            discovery_failure_ttl: self.discovery_failure_ttl,
            metadata_max_stale: self.metadata_max_stale,
            allow_symmetric_id_tokens: self.allow_symmetric_id_tokens,
            clock_leeway: self.clock_leeway,
            token_refresh_leeway: self.token_refresh_leeway,
            lifetimes: crate::lifetime::Lifetimes {
                inactivity: self.rolling.then_some(self.inactivity),
                absolute: self.absolute,
            },
            backend: self
                .backend
                .unwrap_or_else(|| std::sync::Arc::new(crate::store::MemoryBackend::new())),
            server_side_sessions: self.server_side_sessions,
            refresh_lease_ttl,
            telemetry: self.telemetry,
            cookies: CookieSettings {
                session_name: session_cookie_name,
                transaction_prefix: transaction_cookie_prefix,
                secure,
                domain: self.cookie_domain,
                transaction_max_age: self.transaction_max_age,
                max_transactions: self.max_transactions,
            },
            dpop: crate::dpop::Dpop::from_setting(self.dpop)?,
        };
        Ok((config, http))
    }
}

impl ServerClient {
    /// The value of a configured authorization parameter (e.g. `audience`, `scope`), as sent
    /// with every login unless a call overrides it; `None` when it is not configured.
    ///
    /// ```
    /// use auth_core::{AuthorizationParams, ClientAuth, ServerClient};
    ///
    /// let client = ServerClient::builder()
    ///     .issuer("https://idp.example.com/")
    ///     .client_id("c")
    ///     .client_auth(ClientAuth::none())
    ///     .secret("0123456789abcdef0123456789abcdef")
    ///     .app_base_url("https://app.example.com")
    ///     .authorization_params(AuthorizationParams::new().audience("https://api.example.com/"))
    ///     .build()?;
    /// assert_eq!(client.authorization_param("audience"), Some("https://api.example.com/"));
    /// assert_eq!(client.authorization_param("redirect_uri"), Some("https://app.example.com/auth/callback"));
    /// assert!(!client.redirect_uri_is_configured());
    /// # Ok::<(), auth_core::Error>(())
    /// ```
    #[must_use]
    pub fn authorization_param(&self, name: &str) -> Option<&str> {
        self.inner.config.authorization_params.get(name)
    }

    /// Whether the `redirect_uri` was configured (`authorization_params.redirect_uri` or
    /// `AUTH0_REDIRECT_URI`) rather than derived from the app base URL as
    /// `{app_base_url}/auth/callback`. HTTP integrations move a derived one to where they mount
    /// their callback route, and check a configured one against it.
    #[must_use]
    pub fn redirect_uri_is_configured(&self) -> bool {
        self.inner.config.redirect_uri_configured
    }
}

fn invalid(name: &'static str, reason: impl Into<String>) -> Error {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
    .into()
}

/// Whether a URL host is a loopback address (where plain http is tolerated).
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}

fn domain_to_issuer(domain: &str) -> Result<(String, String)> {
    let d = domain.trim();
    let with_scheme = if d.contains("://") {
        d.to_owned()
    } else {
        format!("https://{d}")
    };
    let url = Url::parse(&with_scheme).map_err(|_| {
        invalid(
            "domain (AUTH0_DOMAIN)",
            "expected a host name such as `tenant.auth0.com`",
        )
    })?;
    if !(url.path() == "/" || url.path().is_empty())
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
    {
        return Err(invalid(
            "domain (AUTH0_DOMAIN)",
            "expected a host name such as `tenant.auth0.com`, without a path",
        ));
    }
    let Some(host) = url.host_str() else {
        return Err(invalid(
            "domain (AUTH0_DOMAIN)",
            "expected a host name such as `tenant.auth0.com`",
        ));
    };
    if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback(&url)) {
        return Err(invalid(
            "domain (AUTH0_DOMAIN)",
            "must use https (plain http is allowed only on loopback)",
        ));
    }
    let host_port = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    };
    Ok((format!("{}://{host_port}/", url.scheme()), host_port))
}

fn check_issuer(issuer: &str) -> Result<String> {
    let url = Url::parse(issuer.trim()).map_err(|_| {
        invalid(
            "issuer (OIDC_ISSUER)",
            "expected an absolute URL such as `https://idp.example.com/`",
        )
    })?;
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(invalid(
            "issuer (OIDC_ISSUER)",
            "must not contain a query, fragment or credentials",
        ));
    }
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        _ => {
            return Err(invalid(
                "issuer (OIDC_ISSUER)",
                "must use https (plain http is allowed only on loopback)",
            ));
        }
    }
    Ok(issuer.trim().to_owned())
}

fn parse_base_url(s: &str) -> Result<Url> {
    let url = Url::parse(s.trim()).map_err(|_| {
        invalid(
            "app_base_url (APP_BASE_URL)",
            "expected an absolute URL such as `https://app.example.com`",
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid(
            "app_base_url (APP_BASE_URL)",
            "must be an http(s) URL with a host",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(invalid(
            "app_base_url (APP_BASE_URL)",
            "must not contain a query or fragment",
        ));
    }
    Ok(url)
}

fn check_redirect_uri(s: &str) -> Result<Url> {
    let url = Url::parse(s).map_err(|_| {
        invalid(
            "redirect_uri",
            "must be an absolute URL registered with the provider",
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(invalid("redirect_uri", "must be an absolute http(s) URL"));
    }
    if url.fragment().is_some() {
        return Err(invalid("redirect_uri", "must not contain a fragment"));
    }
    Ok(url)
}

/// `__Host-` names: the prefix browsers tie to `Secure`, `Path=/` and no `Domain`.
const HOST_PREFIX: &str = "__Host-";
/// `__Secure-` names: the prefix browsers tie to `Secure`.
const SECURE_PREFIX: &str = "__Secure-";

/// The session cookie name and the transaction cookie prefix to use, checked: valid names, the
/// `__Host-` defaults when [`ServerClientBuilder::host_prefixed_cookies`] is on, and two
/// families that cannot overlap either way (no session chunk can look like a transaction
/// cookie and the other way round, so neither a logout's removal of all transactions nor a
/// session read ever touches the other's cookies).
fn cookie_names(host_prefixed: bool, session: String, transaction: String) -> Result<(String, String)> {
    let (session, transaction) = if host_prefixed {
        let session = if session == crate::seal::SESSION_SALT {
            format!("{HOST_PREFIX}a0_session")
        } else {
            session
        };
        let transaction = if transaction == DEFAULT_TRANSACTION_PREFIX {
            format!("{HOST_PREFIX}a0_tx_")
        } else {
            transaction
        };
        for (name, value) in [
            ("session_cookie_name", &session),
            ("transaction_cookie_prefix", &transaction),
        ] {
            if !value.starts_with(HOST_PREFIX) {
                return Err(invalid(
                    name,
                    format!("host_prefixed_cookies(true) needs names starting with `{HOST_PREFIX}`"),
                ));
            }
        }
        (session, transaction)
    } else {
        (session, transaction)
    };
    check_cookie_name("session_cookie_name", &session)?;
    check_cookie_name("transaction_cookie_prefix", &transaction)?;
    if transaction.starts_with(&session) || session.starts_with(&transaction) {
        return Err(invalid(
            "transaction_cookie_prefix",
            "must not start with the session cookie name, nor the session cookie name with it \
             (e.g. `_a0_session` and `_a0_tx_`)",
        ));
    }
    Ok((session, transaction))
}

/// What browsers and a `form_post` callback need of the cookie attributes: `__Host-` names
/// need `Secure` and no `Domain` (the library always writes `Path=/`), `__Secure-` names need
/// `Secure`, and `response_mode=form_post` needs `Secure` cookies (the transaction cookie must
/// be `SameSite=None` to reach the provider's cross-site POST, and browsers drop
/// `SameSite=None` cookies that are not `Secure`). `Secure` cookies need https, or plain http
/// on a loopback host (`localhost`, `127.0.0.1`, `[::1]`), which Chromium and Firefox treat as
/// a secure context; anything else is refused here rather than failing in the browser.
fn check_cookie_security(
    session: &str,
    transaction: &str,
    secure: bool,
    domain: Option<&str>,
    form_post: bool,
) -> Result<()> {
    for (name, value) in [
        ("session_cookie_name", session),
        ("transaction_cookie_prefix", transaction),
    ] {
        let prefix = if value.starts_with(HOST_PREFIX) {
            HOST_PREFIX
        } else if value.starts_with(SECURE_PREFIX) {
            SECURE_PREFIX
        } else {
            continue;
        };
        if !secure {
            return Err(invalid(
                name,
                format!(
                    "`{prefix}` cookies must be Secure: serve the app over https (APP_BASE_URL) \
                     and do not turn cookie_secure off"
                ),
            ));
        }
        if prefix == HOST_PREFIX && domain.is_some() {
            return Err(invalid(
                name,
                format!("`{HOST_PREFIX}` cookies cannot have a Domain: remove cookie_domain"),
            ));
        }
    }
    if form_post && !secure {
        return Err(invalid(
            "authorization_params.response_mode",
            "form_post needs Secure cookies (its callback is a cross-site POST, which carries \
             only SameSite=None; Secure cookies): serve the app over https (http only on \
             localhost/127.0.0.1/[::1]), and do not turn cookie_secure off",
        ));
    }
    Ok(())
}

fn check_cookie_name(name: &'static str, value: &str) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(
            name,
            "use 1–64 characters from A–Z, a–z, 0–9, `_`, `-`, `.`",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn base() -> ServerClientBuilder {
        ServerClientBuilder::default()
            .domain("tenant.auth0.com")
            .client_id("cid")
            .client_auth(ClientAuth::secret("s"))
            .secret(SECRET)
            .app_base_url("https://app.example.com")
    }

    fn err(b: ServerClientBuilder) -> String {
        b.into_config().unwrap_err().to_string()
    }

    #[test]
    fn cookie_families_must_not_overlap_either_way() {
        // The transaction prefix inside the session family (refused before too) ...
        assert!(err(base().transaction_cookie_prefix("_a0_session_tx_")).contains("must not start"));
        // ... and the other way round: the session name inside the transaction family, which a
        // logout's removal of every transaction cookie would wipe.
        let e = err(base().session_cookie_name("_a0_tx_session"));
        assert!(
            e.contains("transaction_cookie_prefix") && e.contains("must not start"),
            "{e}"
        );
        assert!(err(base().session_cookie_name("_a0_tx_")).contains("must not start"));
        assert!(err(base().transaction_cookie_prefix("_a0_session")).contains("must not start"));
        assert!(err(base().transaction_cookie_prefix("_a0_sess")).contains("must not start"));
        // Disjoint names stay fine, defaults included.
        let (c, _) = base().into_config().unwrap();
        assert_eq!(
            (
                c.cookies.session_name.as_str(),
                c.cookies.transaction_prefix.as_str()
            ),
            ("_a0_session", "_a0_tx_")
        );
        assert!(
            base()
                .session_cookie_name("app_s")
                .transaction_cookie_prefix("app_t_")
                .into_config()
                .is_ok()
        );
    }

    #[test]
    fn host_prefixed_cookie_names_are_an_option_with_its_rules() {
        let (c, _) = base().host_prefixed_cookies(true).into_config().unwrap();
        assert_eq!(c.cookies.session_name, "__Host-a0_session");
        assert_eq!(c.cookies.transaction_prefix, "__Host-a0_tx_");
        assert!(c.cookies.secure && c.cookies.domain.is_none());
        // Custom names must carry the prefix themselves.
        let (c, _) = base()
            .host_prefixed_cookies(true)
            .session_cookie_name("__Host-s")
            .into_config()
            .unwrap();
        assert_eq!(c.cookies.session_name, "__Host-s");
        let e = err(base().host_prefixed_cookies(true).session_cookie_name("mine"));
        assert!(e.contains("session_cookie_name") && e.contains("__Host-"), "{e}");
        // Secure, no Domain: otherwise browsers would drop every cookie.
        let e = err(base()
            .host_prefixed_cookies(true)
            .app_base_url("http://app.example.com"));
        assert!(e.contains("must be Secure"), "{e}");
        assert!(err(base().host_prefixed_cookies(true).cookie_secure(false)).contains("must be Secure"));
        assert!(err(base().host_prefixed_cookies(true).cookie_domain("example.com")).contains("Domain"));
        // Prefixed names chosen by hand follow the same rules.
        assert!(
            err(base()
                .session_cookie_name("__Host-x")
                .cookie_domain("example.com"))
            .contains("Domain")
        );
        assert!(
            err(base().session_cookie_name("__Secure-x").cookie_secure(false)).contains("must be Secure")
        );
        assert!(
            base()
                .session_cookie_name("__Secure-x")
                .cookie_domain("example.com")
                .into_config()
                .is_ok()
        );
        // Off by default: the Python SDK's names.
        let (c, _) = base().host_prefixed_cookies(false).into_config().unwrap();
        assert_eq!(c.cookies.session_name, "_a0_session");
    }

    #[test]
    fn form_post_needs_secure_cookies() {
        let form_post = || AuthorizationParams::new().param("response_mode", "form_post");
        assert!(
            base()
                .authorization_params(form_post())
                .into_config()
                .unwrap()
                .0
                .cookies
                .secure
        );
        let e = err(base()
            .app_base_url("http://app.example.com")
            .authorization_params(form_post()));
        assert!(
            e.contains("response_mode") && e.contains("form_post") && e.contains("https"),
            "{e}"
        );
        let e = err(base().cookie_secure(false).authorization_params(form_post()));
        assert!(e.contains("form_post"), "{e}");
        // Loopback http is a secure context for browsers: allowed, with Secure cookies.
        for url in [
            "http://localhost:3000",
            "http://127.0.0.1:3000",
            "http://[::1]:3000",
        ] {
            let (c, _) = base()
                .app_base_url(url)
                .authorization_params(form_post())
                .into_config()
                .unwrap();
            assert!(c.cookies.secure, "{url}");
            // Without form_post, loopback http keeps plain cookies, as before.
            let (c, _) = base().app_base_url(url).into_config().unwrap();
            assert!(!c.cookies.secure, "{url}");
        }
        // Other response modes change nothing.
        let query = AuthorizationParams::new().param("response_mode", "query");
        assert!(
            base()
                .app_base_url("http://app.example.com")
                .authorization_params(query)
                .into_config()
                .is_ok()
        );
    }

    #[test]
    fn domain_forms_normalise_to_one_issuer() {
        for d in [
            "tenant.auth0.com",
            "https://tenant.auth0.com",
            "https://tenant.auth0.com/",
            " tenant.auth0.com ",
        ] {
            let (c, _) = base().domain(d).into_config().unwrap();
            assert_eq!(c.issuer, "https://tenant.auth0.com/");
            assert_eq!(c.auth0_domain.as_deref(), Some("tenant.auth0.com"));
        }
        assert!(err(base().domain("http://tenant.auth0.com")).contains("https"));
        assert!(err(base().domain("tenant.auth0.com/path")).contains("without a path"));
    }

    #[test]
    fn issuer_must_be_https_unless_loopback() {
        assert!(base().issuer("http://127.0.0.1:4000").into_config().is_ok());
        assert!(base().issuer("http://localhost:4000/").into_config().is_ok());
        assert!(base().issuer("http://[::1]:4000/").into_config().is_ok());
        assert!(err(base().issuer("http://idp.example.com")).contains("https"));
        assert!(err(base().issuer("not a url")).contains("absolute URL"));
    }

    #[test]
    fn secrets_are_checked() {
        assert!(err(base().secrets(Vec::<String>::new())).contains("AUTH0_SECRET"));
        assert!(err(base().secrets(["short"])).contains("shorter than 32"));
        assert!(err(base().secrets([SECRET, "short"])).contains("secret #2"));
    }

    #[test]
    fn redirect_uri_defaults_from_base_url_and_must_be_absolute() {
        let (c, _) = base().into_config().unwrap();
        assert_eq!(
            c.authorization_params.get("redirect_uri"),
            Some("https://app.example.com/auth/callback")
        );
        assert!(!c.redirect_uri_configured);
        let (c, _) = base()
            .authorization_params(
                AuthorizationParams::new().redirect_uri("https://app.example.com/auth/callback"),
            )
            .into_config()
            .unwrap();
        assert!(
            c.redirect_uri_configured,
            "configured, even when equal to the default"
        );
        assert!(c.cookies.secure);
        let b = base().authorization_params(AuthorizationParams::new().redirect_uri("/callback"));
        assert!(err(b).contains("redirect_uri"));
        let (c, _) = ServerClientBuilder::default()
            .issuer("http://127.0.0.1:1")
            .client_id("c")
            .client_auth(ClientAuth::none())
            .secret(SECRET)
            .authorization_params(AuthorizationParams::new().redirect_uri("http://127.0.0.1:3000/cb"))
            .into_config()
            .unwrap();
        assert!(!c.cookies.secure);
        assert!(
            err(ServerClientBuilder::default()
                .domain("t.auth0.com")
                .client_id("c")
                .client_auth(ClientAuth::none())
                .secret(SECRET))
            .contains("APP_BASE_URL")
        );
    }

    #[test]
    fn missing_pieces_are_named() {
        assert!(err(base().client_id(" ")).contains("AUTH0_CLIENT_ID"));
        let mut b = base();
        b.client_auth = None;
        assert!(err(b).contains("ClientAuth::none()"));
        let mut b = base();
        b.provider = None;
        assert!(err(b).contains("AUTH0_DOMAIN"));
        assert!(
            err(base().authorization_params(AuthorizationParams::new().param("state", "x")))
                .contains("state")
        );
    }

    #[test]
    fn from_env_reads_auth0_names() {
        let env = |k: &str| -> Option<String> {
            match k {
                "AUTH0_DOMAIN" => Some("tenant.auth0.com".into()),
                "AUTH0_CLIENT_ID" => Some("cid".into()),
                "AUTH0_CLIENT_SECRET" => Some("csecret".into()),
                "AUTH0_SECRET" => Some(format!("{SECRET}new, {SECRET}")),
                "APP_BASE_URL" => Some("http://localhost:3000".into()),
                "AUTH0_AUDIENCE" => Some("https://api/".into()),
                "AUTH0_SCOPE" => Some("openid email".into()),
                "AUTH0_ORGANIZATION" => Some("org_good".into()),
                "AUTH0_CONNECTION" => Some("corp-ad".into()),
                _ => None,
            }
        };
        let (c, _) = ServerClientBuilder::from_env_with(env)
            .unwrap()
            .into_config()
            .unwrap();
        assert_eq!(c.secrets.len(), 2);
        assert_eq!(c.secrets[1].expose(), SECRET);
        assert_eq!(c.client_auth.method(), "client_secret_basic");
        assert_eq!(c.authorization_params.get("audience"), Some("https://api/"));
        assert_eq!(c.authorization_params.get("scope"), Some("openid email"));
        assert_eq!(c.authorization_params.get("organization"), Some("org_good"));
        assert_eq!(c.authorization_params.get("connection"), Some("corp-ad"));
        assert!(c.pinned_params.contains("organization"));
        assert!(c.pinned_params.contains("connection"));
        assert_eq!(
            c.authorization_params.get("redirect_uri"),
            Some("http://localhost:3000/auth/callback")
        );
        assert!(!c.cookies.secure);
        assert!(!c.redirect_uri_configured);
        let (c, _) = ServerClientBuilder::from_env_with(|k| match k {
            "AUTH0_REDIRECT_URI" => Some("http://localhost:3000/account/callback".into()),
            other => env(other),
        })
        .unwrap()
        .into_config()
        .unwrap();
        assert_eq!(
            c.authorization_params.get("redirect_uri"),
            Some("http://localhost:3000/account/callback")
        );
        assert!(c.redirect_uri_configured);
        // Replacing the parameters afterwards keeps both names pinned (to no value).
        let (c, _) = ServerClientBuilder::from_env_with(env)
            .unwrap()
            .authorization_params(AuthorizationParams::new())
            .into_config()
            .unwrap();
        assert!(c.pinned_params.contains("organization") && c.pinned_params.contains("connection"));
        // Unset: nothing pinned, nothing sent.
        let (c, _) = ServerClientBuilder::from_env_with(|k| match k {
            "AUTH0_ORGANIZATION" | "AUTH0_CONNECTION" => Some("  ".into()),
            other => env(other),
        })
        .unwrap()
        .into_config()
        .unwrap();
        assert!(c.pinned_params.is_empty());
        assert_eq!(c.authorization_params.get("organization"), None);

        let both = |k: &str| match k {
            "AUTH0_DOMAIN" | "OIDC_ISSUER" => Some("https://x/".to_owned()),
            _ => None,
        };
        assert!(ServerClientBuilder::from_env_with(both).is_err());
        let public = |k: &str| match k {
            "OIDC_ISSUER" => Some("http://127.0.0.1:9/".to_owned()),
            _ => None,
        };
        let b = ServerClientBuilder::from_env_with(public).unwrap();
        assert_eq!(b.client_auth.as_ref().map(ClientAuth::method), Some("none"));
    }

    #[test]
    fn configured_organization_and_connection_are_pinned() {
        let (c, _) = base()
            .authorization_params(
                AuthorizationParams::new()
                    .organization("org_1")
                    .param("connection", "db")
                    .audience("https://api/"),
            )
            .pin_authorization_param("prompt")
            .into_config()
            .unwrap();
        let pinned: Vec<&str> = c.pinned_params.iter().map(String::as_str).collect();
        assert_eq!(pinned, ["connection", "organization", "prompt"]);
        let (c, _) = base().into_config().unwrap();
        assert!(c.pinned_params.is_empty());
        for name in ["redirect_uri", "state", "nonce", ""] {
            let e = err(base().pin_authorization_param(name));
            assert!(e.contains("cannot be pinned"), "{name}: {e}");
        }
    }

    #[test]
    fn ssl_cert_file_adds_trust_anchors_or_says_what_is_wrong() {
        let dir = std::env::temp_dir().join(format!("auth-core-ssl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("ca.pem");
        std::fs::write(&good, include_str!("../testdata/selfsigned.crt")).unwrap();
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let env = |file: std::path::PathBuf| {
            move |k: &str| match k {
                "AUTH0_DOMAIN" => Some("tenant.auth0.com".to_owned()),
                "AUTH0_CLIENT_ID" => Some("cid".to_owned()),
                "AUTH0_SECRET" => Some(SECRET.to_owned()),
                "APP_BASE_URL" => Some("https://app.example.com".to_owned()),
                "SSL_CERT_FILE" => Some(file.display().to_string()),
                _ => None,
            }
        };
        let b = ServerClientBuilder::from_env_with(env(good)).unwrap();
        assert!(b.extra_roots_pem.is_some());
        assert!(b.into_config().is_ok());
        let e = ServerClientBuilder::from_env_with(env(junk))
            .unwrap()
            .into_config()
            .unwrap_err();
        assert!(e.to_string().contains("SSL_CERT_FILE"), "{e}");
        let e = ServerClientBuilder::from_env_with(env(dir.join("missing.pem"))).unwrap_err();
        assert!(e.to_string().contains("SSL_CERT_FILE"), "{e}");
    }

    #[test]
    fn debug_of_builder_hides_secrets() {
        let s = format!(
            "{:?}",
            base().client_auth(ClientAuth::secret("client-secret-xyz"))
        );
        assert!(!s.contains(SECRET));
        assert!(!s.contains("client-secret-xyz"));
    }
}
