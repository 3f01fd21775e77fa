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
    pub(crate) pushed_authorization_requests: bool,
    pub(crate) metadata_ttl: Duration,
    pub(crate) jwks_refetch_cooldown: Duration,
    pub(crate) clock_leeway: Duration,
    pub(crate) token_refresh_leeway: Duration,
    pub(crate) lifetimes: crate::lifetime::Lifetimes,
    pub(crate) backend: std::sync::Arc<dyn crate::store::SessionBackend>,
    pub(crate) server_side_sessions: bool,
    pub(crate) cookies: CookieSettings,
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
    pushed_authorization_requests: bool,
    http_client: Option<reqwest::Client>,
    extra_roots_pem: Option<Vec<u8>>,
    connect_timeout: Duration,
    request_timeout: Duration,
    metadata_ttl: Duration,
    jwks_refetch_cooldown: Duration,
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
            pushed_authorization_requests: false,
            http_client: None,
            extra_roots_pem: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(15),
            metadata_ttl: Duration::from_secs(600),
            jwks_refetch_cooldown: Duration::from_secs(30),
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
            transaction_cookie_prefix: "_a0_tx_".into(),
            transaction_max_age: Duration::from_secs(600),
            max_transactions: 5,
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
    /// `{app_base_url}/auth/callback`, and cookies are `Secure` when it is https.
    pub fn app_base_url(mut self, url: impl Into<String>) -> Self {
        self.app_base_url = Some(url.into());
        self
    }

    /// Authorization parameters sent with every login (per-call ones override them).
    pub fn authorization_params(mut self, params: AuthorizationParams) -> Self {
        self.authorization_params = params;
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
    pub fn jwks_refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.jwks_refetch_cooldown = cooldown;
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

    /// Reads the Auth0 environment variables: `AUTH0_DOMAIN` or `OIDC_ISSUER`,
    /// `AUTH0_CLIENT_ID`, `AUTH0_CLIENT_SECRET` (absent: a public client), `AUTH0_SECRET`
    /// (comma-separated: rotation list, first seals), `APP_BASE_URL`, `AUTH0_AUDIENCE`,
    /// `AUTH0_SCOPE`. Methods called afterwards override what it set.
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
        if let Some(path) = get("SSL_CERT_FILE") {
            let pem = std::fs::read(&path).map_err(|e| ConfigError::Invalid {
                name: "SSL_CERT_FILE",
                reason: format!("cannot read `{path}`: {e}"),
            })?;
            b = b.extra_root_certificates_pem(pem);
        }
        Ok(b.authorization_params(params))
    }

    /// Validates everything and builds the client. Nothing is fetched yet: discovery happens
    /// on first use.
    ///
    /// # Errors
    /// [`Error::Config`] naming the setting to fix, or [`Error::InvalidParameter`] for a
    /// reserved or malformed authorization parameter.
    pub fn build(self) -> Result<ServerClient> {
        let (config, http) = self.into_config()?;
        Ok(ServerClient::from_config(config, http))
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
        check_cookie_name("session_cookie_name", &self.session_cookie_name)?;
        check_cookie_name("transaction_cookie_prefix", &self.transaction_cookie_prefix)?;
        if self
            .transaction_cookie_prefix
            .starts_with(&format!("{}_", self.session_cookie_name))
        {
            return Err(ConfigError::Invalid {
                name: "transaction_cookie_prefix",
                reason: "must not start with the session cookie name".into(),
            }
            .into());
        }
        let secure = self.cookie_secure.unwrap_or_else(|| {
            app_base_url
                .as_ref()
                .map_or(redirect_uri.scheme() == "https", |u| u.scheme() == "https")
        });
        let http = match self.http_client {
            Some(c) => c,
            None => {
                let mut b = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .connect_timeout(self.connect_timeout)
                    .timeout(self.request_timeout)
                    .user_agent(concat!("auth-core/", env!("CARGO_PKG_VERSION")));
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
            pushed_authorization_requests: self.pushed_authorization_requests,
            metadata_ttl: self.metadata_ttl,
            jwks_refetch_cooldown: self.jwks_refetch_cooldown,
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
            cookies: CookieSettings {
                session_name: self.session_cookie_name,
                transaction_prefix: self.transaction_cookie_prefix,
                secure,
                domain: self.cookie_domain,
                transaction_max_age: self.transaction_max_age,
                max_transactions: self.max_transactions,
            },
        };
        Ok((config, http))
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
        assert_eq!(
            c.authorization_params.get("redirect_uri"),
            Some("http://localhost:3000/auth/callback")
        );
        assert!(!c.cookies.secure);

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
