//! [`AuthState`]: the client plus the integration's options, shared by routes, extractors and
//! layers (the layer itself is in `layer.rs`).

use std::sync::Arc;

use auth_core::ServerClient;
use http::HeaderMap;
use url::Url;

/// One of the app's answers (see [`crate::AuthResponses`]), type-erased so that the options
/// need not name the trait.
pub(crate) type Answer = Arc<dyn Fn(&http::request::Parts) -> axum::response::Response + Send + Sync>;

/// The app's `401` and `403` answers, set with [`AuthOptions::responses`].
#[derive(Clone)]
pub(crate) struct CustomResponses {
    pub(crate) unauthenticated: Answer,
    pub(crate) forbidden: Answer,
}

impl std::fmt::Debug for CustomResponses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthResponses(..)")
    }
}

/// What an unauthenticated request to a `Session` handler gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Unauthenticated {
    /// `401` (default; suits APIs): a JSON body, or an HTML page for a request that prefers
    /// HTML, or the app's [`AuthResponses::unauthenticated`](crate::AuthResponses::unauthenticated)
    /// answer (see [`AuthOptions::responses`]).
    #[default]
    Json,
    /// `302` to the login route with `returnTo` set to the requested path (suits pages).
    RedirectToLogin,
}

/// Options of the Axum integration.
#[derive(Debug, Clone)]
#[must_use]
pub struct AuthOptions {
    pub(crate) base_path: String,
    pub(crate) default_return_to: String,
    pub(crate) trust_proxy_headers: bool,
    pub(crate) unauthenticated: Unauthenticated,
    pub(crate) access_token_route: bool,
    pub(crate) allowed_link_connections: Option<Vec<String>>,
    pub(crate) allowed_connect_connections: Option<Vec<String>>,
    pub(crate) allowed_connect_scopes: Option<Vec<String>>,
    pub(crate) logout_fetch_metadata_policy: bool,
    pub(crate) allowed_forwarded_hosts: Option<Vec<String>>,
    pub(crate) login_params: Vec<String>,
    /// The app's hooks (`hooks.rs` holds their setters).
    pub(crate) hooks: crate::hooks::Hooks,
    pub(crate) access_token_audiences: Option<Vec<String>>,
    pub(crate) responses: Option<CustomResponses>,
    pub(crate) optional_session_on_store_error: bool,
}

/// Query parameters of `/auth/login` forwarded to the authorization endpoint by default (see
/// [`crate::AuthOptions::login_params`]); names the client pins are never forwarded.
pub const LOGIN_HINTS: &[&str] = &[
    "screen_hint",
    "login_hint",
    "organization",
    "invitation",
    "connection",
    "prompt",
    "ui_locales",
];

/// Login query parameters never forwarded, whatever [`AuthOptions::login_params`] says.
const NEVER_FORWARDED: &[&str] = &[
    "redirect_uri",
    "client_id",
    "response_type",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "request_uri",
    "id_token_hint",
];

impl Default for AuthOptions {
    fn default() -> Self {
        Self {
            base_path: "/auth".into(),
            default_return_to: "/".into(),
            trust_proxy_headers: false,
            unauthenticated: Unauthenticated::Json,
            access_token_route: false,
            allowed_link_connections: None,
            allowed_connect_connections: None,
            allowed_connect_scopes: None,
            logout_fetch_metadata_policy: false,
            allowed_forwarded_hosts: None,
            login_params: LOGIN_HINTS.iter().map(|n| (*n).to_owned()).collect(),
            hooks: crate::hooks::Hooks::default(),
            access_token_audiences: None,
            responses: None,
            optional_session_on_store_error: false,
        }
    }
}

impl AuthOptions {
    /// Defaults: routes under `/auth`, return to `/`, proxy headers ignored, 401 JSON for
    /// unauthenticated `Session` extraction, no `/auth/access-token` route.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the routes are mounted (default `/auth`). The callback URL moves with it: unless a
    /// `redirect_uri` is configured, logins send `{app_base_url}{base_path}/callback`. A
    /// configured `redirect_uri` (`AUTH0_REDIRECT_URI`, or
    /// `AuthorizationParams::redirect_uri` on the client builder) must point at that route:
    /// [`AuthState::new`] fails otherwise. Register the callback URL
    /// ([`AuthState::callback_url`]) with the provider.
    ///
    /// ```
    /// use auth_axum::{AuthOptions, AuthState};
    /// use auth_core::{ClientAuth, ServerClient};
    ///
    /// let client = ServerClient::builder()
    ///     .issuer("https://idp.example.com/")
    ///     .client_id("c")
    ///     .client_auth(ClientAuth::none())
    ///     .secret("0123456789abcdef0123456789abcdef")
    ///     .app_base_url("https://app.example.com")
    ///     .build()?;
    /// let auth = AuthState::new(client, AuthOptions::new().base_path("/account"))?;
    /// assert_eq!(auth.callback_url(), "https://app.example.com/account/callback");
    /// # Ok::<(), auth_core::Error>(())
    /// ```
    pub fn base_path(mut self, path: impl Into<String>) -> Self {
        let p = path.into();
        self.base_path = format!("/{}", p.trim_matches('/'));
        if self.base_path == "/" {
            self.base_path.clear();
        }
        self
    }

    /// Where users land after login or logout when no valid `returnTo` is given (default `/`).
    /// Must be a relative path.
    pub fn default_return_to(mut self, path: impl Into<String>) -> Self {
        self.default_return_to = crate::return_to::sanitize(&path.into()).unwrap_or_else(|| "/".into());
        self
    }

    /// Honour `X-Forwarded-Proto` / `X-Forwarded-Host` when building absolute URLs. Turn on only
    /// behind a proxy that sets (and strips client-sent) forwarded headers.
    pub fn trust_proxy_headers(mut self, trust: bool) -> Self {
        self.trust_proxy_headers = trust;
        self
    }

    /// What the `Session` extractor answers when there is no session.
    pub fn unauthenticated(mut self, behaviour: Unauthenticated) -> Self {
        self.unauthenticated = behaviour;
        self
    }

    /// The query parameters of `{base}/login` forwarded to the authorization endpoint: this
    /// list replaces the default [`crate::LOGIN_HINTS`] (`screen_hint`, `login_hint`,
    /// `organization`, `invitation`, `connection`, `prompt`, `ui_locales`). Any other query
    /// parameter (besides `returnTo`) is dropped and logged at `debug` (its name only), and the
    /// login proceeds.
    ///
    /// Opt-in names, off by default because they change what the login asks for, are checked
    /// before they are forwarded (a bad value is `400` `invalid_parameter`):
    ///
    /// - `audience`: the API the access token is for (one value, no spaces);
    /// - `scope`: space-separated scope tokens; it **replaces** the configured scope for this
    ///   login (as a per-call scope does in the core) and `openid` is always added;
    /// - `acr_values`: space-separated values (e.g. a step-up login);
    /// - `max_age`: a non-negative integer (seconds); the ID token's `auth_time` is checked.
    ///
    /// Every forwarded value is at most 512 characters without control characters. A name the
    /// client pins (a configured `organization` or `connection`, or one given to
    /// `ServerClientBuilder::pin_authorization_param`) is never forwarded: the configured value
    /// is sent and the login proceeds. `redirect_uri` and the parameters the library sets
    /// itself (`state`, `nonce`, `client_id`, …) are never forwarded either. The login
    /// parameters a [`RequireAuth::login_param`](crate::RequireAuth::login_param) adds to its
    /// redirect pass through this list like any other.
    ///
    /// ```
    /// use auth_axum::{AuthOptions, LOGIN_HINTS};
    ///
    /// // The default hints, plus per-API and step-up logins.
    /// let options = AuthOptions::new()
    ///     .login_params(LOGIN_HINTS.iter().copied().chain(["audience", "scope", "acr_values", "max_age"]));
    /// # let _ = options;
    /// ```
    pub fn login_params<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.login_params = names
            .into_iter()
            .map(Into::into)
            .filter(|n| !n.is_empty() && !NEVER_FORWARDED.contains(&n.as_str()))
            .collect();
        self.login_params.sort();
        self.login_params.dedup();
        self
    }

    /// Mount `GET {base}/access-token` returning the session's access token as JSON. Off by
    /// default: it hands a bearer token to any script running in the page's origin.
    ///
    /// `?audience=…` asks for a token for another API; only the configured `audience` and
    /// those listed with [`access_token_audiences`](Self::access_token_audiences) are accepted,
    /// any other is refused with `403` `audience_not_allowed`.
    pub fn access_token_route(mut self, enabled: bool) -> Self {
        self.access_token_route = enabled;
        self
    }

    /// The audiences `GET {base}/access-token?audience=…` may ask a token for, besides the
    /// configured `audience` (default: only that one). Another audience is refused with `403`
    /// `audience_not_allowed` before the provider is asked. Audiences are compared exactly.
    ///
    /// ```
    /// use auth_axum::AuthOptions;
    ///
    /// let options = AuthOptions::new()
    ///     .access_token_route(true)
    ///     .access_token_audiences(["https://orders.example.com/", "https://billing.example.com/"]);
    /// # let _ = options;
    /// ```
    pub fn access_token_audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.access_token_audiences = Some(audiences.into_iter().map(Into::into).collect());
        self
    }

    /// With `true`, `Option<Session>` treats a session store that fails (a Redis outage) as
    /// "no session": the handler runs with `None` and a `warn` is logged. Default `false`: the
    /// request fails with `503` like `Session` does.
    ///
    /// The trade-off: with `true` a public page stays up during a store outage, but a
    /// logged-in user sees it as a visitor (and a login started from it fails until the store
    /// is back); nothing is written, so the session is there again once the store answers.
    /// Keep `false` where showing a logged-in user the logged-out page is worse than an error.
    /// `Session` and [`RequireAuth`](crate::RequireAuth) always answer `503`.
    ///
    /// ```
    /// use auth_axum::{AuthOptions, Session};
    ///
    /// async fn home(session: Option<Session>) -> String {
    ///     match session {
    ///         Some(s) => format!("hello {}", s.sub().unwrap_or("?")),
    ///         None => "hello visitor".into(), // also during a store outage, with the option
    ///     }
    /// }
    ///
    /// let options = AuthOptions::new().optional_session_on_store_error(true);
    /// # let _ = (options, home);
    /// ```
    pub fn optional_session_on_store_error(mut self, enabled: bool) -> Self {
        self.optional_session_on_store_error = enabled;
        self
    }

    /// Only these connections may be linked (`{base}/link`) or unlinked (`{base}/unlink`);
    /// any other `connection` is refused with `403` `connection_not_allowed` before any
    /// redirect. Default: no allow-list (any connection the provider accepts). An empty list
    /// refuses every connection. Names are compared exactly.
    ///
    /// Linking an identity from a connection an attacker controls gives the attacker a way
    /// into the account: list only the connections the app offers.
    pub fn allowed_link_connections<I, S>(mut self, connections: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_link_connections = Some(connections.into_iter().map(Into::into).collect());
        self
    }

    /// Only these connections may be connected through `{base}/connect` (Connected Accounts);
    /// any other `connection` is refused with `403` `connection_not_allowed` before the My
    /// Account API is called. Default: no allow-list. Names are compared exactly.
    pub fn allowed_connect_connections<I, S>(mut self, connections: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_connect_connections = Some(connections.into_iter().map(Into::into).collect());
        self
    }

    /// Only these scopes may be requested through `{base}/connect`'s `scopes`; a request
    /// naming any other scope is refused with `403` `scope_not_allowed` before the My Account
    /// API is called. Default: no allow-list. Scopes are compared exactly.
    pub fn allowed_connect_scopes<I, S>(mut self, scopes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_connect_scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Apply the Fetch-Metadata policy of the account routes to `{base}/logout` too: a request
    /// whose `Sec-Fetch-Site` is `cross-site`, `same-site` or unknown gets `403`
    /// `cross_site_request` and the session stays. Off by default, because identity providers
    /// and portals link to the logout route from other sites; turn it on when only the app's
    /// own pages log users out.
    pub fn logout_fetch_metadata_policy(mut self, enabled: bool) -> Self {
        self.logout_fetch_metadata_policy = enabled;
        self
    }

    /// With [`trust_proxy_headers`](Self::trust_proxy_headers), accept an `X-Forwarded-Host`
    /// only when it is one of these hosts (`host` or `host:port`, exactly as the proxy sends
    /// it, compared case-insensitively); any other host falls back to the configured base URL.
    /// Default: any syntactically valid host.
    pub fn allowed_forwarded_hosts<I, S>(mut self, hosts: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_forwarded_hosts = Some(hosts.into_iter().map(Into::into).collect());
        self
    }
}

/// The login client and integration options; cheap to clone.
#[derive(Clone)]
pub struct AuthState {
    pub(crate) inner: Arc<StateInner>,
}

pub(crate) struct StateInner {
    pub(crate) client: ServerClient,
    pub(crate) options: AuthOptions,
    pub(crate) base_url: Url,
    /// `{base}/callback` as an absolute URL: the `redirect_uri` the routes' flows use.
    pub(crate) callback_url: String,
    /// The routes send [`Self::callback_url`] as the flows' `redirect_uri`: the client's is
    /// derived from the base URL and the routes are not under `/auth`.
    pub(crate) send_callback_url: bool,
}

impl std::fmt::Debug for AuthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthState")
            .field("client", &self.inner.client)
            .field("options", &self.inner.options)
            .field("base_url", &self.inner.base_url.as_str())
            .field("callback_url", &self.inner.callback_url)
            .finish()
    }
}

impl AuthState {
    /// Builds the client from the Auth0 environment variables (see
    /// [`auth_core::ServerClientBuilder::from_env`]) with default options.
    ///
    /// # Errors
    /// Configuration errors naming the variable to fix.
    pub fn from_env() -> Result<Self, auth_core::Error> {
        Self::new(ServerClient::from_env()?, AuthOptions::default())
    }

    /// Wraps a client.
    ///
    /// The callback route is `{base_path}/callback` (see [`AuthOptions::base_path`]): a
    /// `redirect_uri` derived from the app base URL is moved there, a configured one must
    /// point there.
    ///
    /// # Errors
    /// [`auth_core::ConfigError`] when the client has neither an app base URL nor an absolute
    /// redirect URI to derive the public origin from, or when its configured `redirect_uri`
    /// is not the URL of the callback route (the message says which URL to configure).
    pub fn new(client: ServerClient, options: AuthOptions) -> Result<Self, auth_core::Error> {
        let base_url = client
            .app_base_url()
            .cloned()
            .or_else(|| {
                client
                    .redirect_uri()
                    .and_then(|r| Url::parse(r).ok())
                    .map(|mut u| {
                        u.set_path("/");
                        u.set_query(None);
                        u
                    })
            })
            .ok_or(auth_core::ConfigError::Missing("app_base_url (APP_BASE_URL)"))?;
        let (callback_url, send_callback_url) = callback_url(&client, &base_url, &options.base_path)?;
        let client = crate::hooks::install(client, &options.hooks);
        Ok(Self {
            inner: Arc::new(StateInner {
                client,
                options,
                base_url,
                callback_url,
                send_callback_url,
            }),
        })
    }

    /// The absolute URL of the callback route (`{app_base_url}{base_path}/callback`), which
    /// the routes send as the `redirect_uri`: register it with the provider.
    #[must_use]
    pub fn callback_url(&self) -> &str {
        &self.inner.callback_url
    }

    /// The `redirect_uri` the routes' flows must send per call, when the client's default is
    /// not the callback route.
    pub(crate) fn redirect_uri_override(&self) -> Option<&str> {
        self.inner
            .send_callback_url
            .then_some(self.inner.callback_url.as_str())
    }

    /// The login client.
    #[must_use]
    pub fn client(&self) -> &ServerClient {
        &self.inner.client
    }

    /// The options.
    pub fn options(&self) -> &AuthOptions {
        &self.inner.options
    }

    /// The login path, e.g. `/auth/login`.
    /// The login URL that brings the user back to `uri` (its path and query, sanitized).
    pub(crate) fn login_location(&self, uri: &http::Uri) -> String {
        let back = uri.path_and_query().map_or("/", http::uri::PathAndQuery::as_str);
        let back = crate::return_to::sanitize(back).unwrap_or_else(|| "/".into());
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("returnTo", &back)
            .finish();
        format!("{}?{q}", self.path("login"))
    }

    pub(crate) fn path(&self, route: &str) -> String {
        format!("{}/{route}", self.inner.options.base_path)
    }

    /// The app's public origin for absolute URLs: configuration, or forwarded headers when
    /// explicitly trusted.
    ///
    /// A trusted proxy *appends* to `X-Forwarded-*`, so only the right-most value (the last
    /// element of the last header line) is its own; everything left of it came from the client.
    /// The host must be a plain `host[:port]` (DNS name, IPv4 or bracketed IPv6) and, when
    /// [`AuthOptions::allowed_forwarded_hosts`] is set, on that list; otherwise the configured
    /// base is used.
    pub(crate) fn public_base(&self, headers: &HeaderMap) -> Url {
        let base = &self.inner.base_url;
        let options = &self.inner.options;
        if !options.trust_proxy_headers {
            return base.clone();
        }
        let Some(host) = last_forwarded(headers, "x-forwarded-host").filter(|h| valid_authority(h)) else {
            return base.clone();
        };
        let allowed = options.allowed_forwarded_hosts.as_ref();
        if allowed.is_some_and(|list| !list.iter().any(|a| a.eq_ignore_ascii_case(host))) {
            return base.clone();
        }
        let proto = match last_forwarded(headers, "x-forwarded-proto") {
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            Some(p) if p.eq_ignore_ascii_case("http") => "http",
            _ => base.scheme(),
        };
        Url::parse(&format!("{proto}://{host}/"))
            .ok()
            .filter(|u| u.path() == "/" && u.username().is_empty() && u.query().is_none())
            .unwrap_or_else(|| base.clone())
    }
}

/// The callback route's absolute URL and whether the routes must send it per call: the
/// client's `redirect_uri` when configured (refused unless its path is the route's), else the
/// base URL's path followed by `{base_path}/callback`.
fn callback_url(
    client: &ServerClient,
    base_url: &Url,
    base_path: &str,
) -> Result<(String, bool), auth_core::Error> {
    let route = format!("{}{base_path}/callback", base_url.path().trim_end_matches('/'));
    let current = client.redirect_uri().and_then(|r| Url::parse(r).ok());
    if client.redirect_uri_is_configured() {
        let Some(current) = current else {
            return Err(auth_core::ConfigError::Missing("redirect_uri (AUTH0_REDIRECT_URI)").into());
        };
        if current.path() != route {
            let mut expected = current.clone();
            expected.set_path(&route);
            expected.set_query(None);
            return Err(auth_core::ConfigError::Invalid {
                name: "redirect_uri (AUTH0_REDIRECT_URI)",
                reason: format!(
                    "its path `{}` is not the callback route `{route}` that AuthState::router() mounts \
                     (AuthOptions::base_path is `{}`): set it to `{expected}` (and register that URL \
                     with the provider), or change the base path to match",
                    current.path(),
                    if base_path.is_empty() { "/" } else { base_path },
                ),
            }
            .into());
        }
        return Ok((current.to_string(), false));
    }
    let mut url = base_url.clone();
    url.set_path(&route);
    url.set_query(None);
    let send = current.as_ref() != Some(&url);
    Ok((url.to_string(), send))
}

/// The right-most element of a comma-separated `X-Forwarded-*` header over all its lines, or
/// `None` when absent, empty or not visible ASCII.
fn last_forwarded<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let line = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    let value = line.rsplit(',').next()?.trim();
    (!value.is_empty()).then_some(value)
}

/// `host[:port]` with a DNS name (ASCII letters, digits, `-` and `.`, labels of 1–63
/// characters; IPv4 addresses are such names), or a bracketed IPv6 address, and an optional
/// decimal port.
fn valid_authority(authority: &str) -> bool {
    let (name, port) = match authority.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, port)) if v6.parse::<std::net::Ipv6Addr>().is_ok() => (None, port),
            _ => return false,
        },
        None => {
            let (name, port) = authority.split_at(authority.find(':').unwrap_or(authority.len()));
            (Some(name), port)
        }
    };
    let port_ok = port.is_empty()
        || port.strip_prefix(':').is_some_and(|p| {
            p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
        });
    let name_ok = name.is_none_or(|name| {
        name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            })
    });
    port_ok && name_ok
}

/// An auth state for unit tests: an https app, proxy headers trusted or not.
/// The app's hooks (the types are in `hooks.rs`).
impl AuthOptions {
    /// Runs `hook` before a login, refresh, link or unlink writes the session, with the request
    /// it happens in: a login's or link's callback request, or the request whose handler
    /// called [`Session::access_token`](crate::Session::access_token) when that refreshed. The
    /// hook sees and edits the claims and the app data about to be stored
    /// ([`SessionSave`](auth_core::SessionSave): drop claims to keep cookies small, add app data), knows which flow it
    /// is ([`SessionSave::kind`](auth_core::SessionSave::kind)), and may abort the save with a [`HookError`](auth_core::HookError): the flow then
    /// fails with `hook_refused` (`403`, [`HookError::refuse`](auth_core::HookError::refuse)) or `hook_failed` (`503`,
    /// [`HookError::new`](auth_core::HookError::new)), the stored session stays as it was, and a failed login answers with
    /// the error page (or [`on_callback`](Self::on_callback)'s response). Changing `sub` fails
    /// the save the same way.
    ///
    /// Runs after a hook configured on the client with
    /// [`ServerClientBuilder::before_session_saved`](auth_core::ServerClientBuilder::before_session_saved),
    /// if any, and only for flows run through [`AuthState::client`](crate::AuthState::client).
    /// Requests run no extra work for it unless a session is saved (the request head is
    /// copied once per request that extracts a [`Session`](crate::Session) or
    /// [`AxumCookieJar`](crate::AxumCookieJar), only when this hook is set).
    ///
    /// ```
    /// use auth_axum::AuthOptions;
    /// use auth_core::{HookError, SaveKind};
    ///
    /// let options = AuthOptions::new().before_session_saved(|mut save, request| async move {
    ///     // Keep cookies small: only the claims the app reads.
    ///     save.user_mut().retain(|k, _| ["sub", "name", "email", "org_id"].contains(&k.as_str()));
    ///     if save.kind() == SaveKind::Login {
    ///         let locale = request.headers().get("accept-language").and_then(|v| v.to_str().ok());
    ///         save.app_data_mut().insert("locale".into(), locale.unwrap_or("en").into());
    ///     }
    ///     Ok::<_, HookError>(save)
    /// });
    /// # let _ = options;
    /// ```
    pub fn before_session_saved<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(auth_core::SessionSave, crate::hooks::RequestHead) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<auth_core::SessionSave, auth_core::HookError>>
            + Send
            + 'static,
    {
        self.hooks.before_session_saved = Some(Arc::new(move |save, head| Box::pin(hook(save, head))));
        self
    }

    /// Answers `{base}/callback` with `hook`'s response instead of the default (a redirect to
    /// `returnTo` on success, the error page or JSON on failure): redirect elsewhere, or render
    /// the app's own error page. The [`CallbackEvent`](crate::hooks::CallbackEvent) carries the outcome (with `app_state`
    /// and RAR `authorization_details`) or the typed error, and
    /// [`CallbackEvent::default_response`](crate::hooks::CallbackEvent::default_response) gives the default answer.
    ///
    /// The session is written (or, on failure, left unchanged) before the hook runs: a
    /// successful login is logged in whatever the hook answers. Whatever the hook returns is
    /// sent as it is (an `Err` of a `Result` response too): give error pages
    /// `Cache-Control: no-store`. See the [module example](crate::hooks).
    pub fn on_callback<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(crate::hooks::CallbackEvent) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future + Send + 'static,
        Fut::Output: axum::response::IntoResponse,
    {
        self.hooks.on_callback = Some(Arc::new(move |event| {
            let fut = hook(event);
            Box::pin(async move { axum::response::IntoResponse::into_response(fut.await) })
        }));
        self
    }

    /// Runs `hook` after `{base}/logout` ended a session, with that session ([`LogoutEvent`](crate::hooks::LogoutEvent):
    /// `sub`, `sid`, claims, app data) — for purging what the app keeps about it. Not run when
    /// the request had no session, or when ending it failed (store down: nothing ended). An
    /// error from the hook is logged at `warn`; the logout completes all the same (the
    /// browser is still redirected to the provider's logout).
    ///
    /// ```
    /// use auth_axum::AuthOptions;
    /// use auth_core::HookError;
    ///
    /// let options = AuthOptions::new().on_logout(|event| async move {
    ///     tracing::info!(sid = event.sid(), "purging the session's drafts");
    ///     Ok::<_, HookError>(())
    /// });
    /// # let _ = options;
    /// ```
    pub fn on_logout<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(crate::hooks::LogoutEvent) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), auth_core::HookError>> + Send + 'static,
    {
        self.hooks.on_logout = Some(Arc::new(move |event| Box::pin(hook(event))));
        self
    }

    /// Runs `hook` after `{base}/backchannel-logout` accepted a logout token and ended the
    /// sessions it names ([`BackchannelLogoutEvent`](crate::hooks::BackchannelLogoutEvent): the `sid` and/or `sub`) — for purging
    /// what the app keeps about them. Not run for a refused token. An error from the hook is
    /// logged at `warn`; the provider still gets `200` (the sessions did end).
    ///
    /// ```
    /// use auth_axum::AuthOptions;
    /// use auth_core::HookError;
    ///
    /// let options = AuthOptions::new().on_backchannel_logout(|event| async move {
    ///     tracing::info!(sid = ?event.sid(), sub = ?event.sub(), "purging app data");
    ///     Ok::<_, HookError>(())
    /// });
    /// # let _ = options;
    /// ```
    pub fn on_backchannel_logout<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(crate::hooks::BackchannelLogoutEvent) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), auth_core::HookError>> + Send + 'static,
    {
        self.hooks.on_backchannel_logout = Some(Arc::new(move |event| Box::pin(hook(event))));
        self
    }
}

#[cfg(test)]
pub(crate) fn test_state(trust: bool) -> AuthState {
    test_state_with(AuthOptions::new().trust_proxy_headers(trust))
}

/// An auth state for unit tests: an https app with these options.
#[cfg(test)]
pub(crate) fn test_state_with(options: AuthOptions) -> AuthState {
    use auth_core::{ClientAuth, ServerClient};
    let client = ServerClient::builder()
        .issuer("https://idp.example.com/")
        .client_id("c")
        .client_auth(ClientAuth::none())
        .secret("0123456789abcdef0123456789abcdef")
        .app_base_url("https://app.example.com")
        .build()
        .unwrap();
    AuthState::new(client, options).unwrap()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::test_state as state;
    use super::*;

    /// Proxy headers trusted, with these other options.
    fn state_with(options: AuthOptions) -> AuthState {
        test_state_with(options.trust_proxy_headers(true))
    }

    #[test]
    fn forwarded_headers_only_when_trusted() {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-host", HeaderValue::from_static("evil.example"));
        h.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        assert_eq!(state(false).public_base(&h).as_str(), "https://app.example.com/");
        assert_eq!(state(true).public_base(&h).as_str(), "http://evil.example/");
        let mut bad = HeaderMap::new();
        bad.insert("x-forwarded-host", HeaderValue::from_static("a.example/path?x"));
        assert_eq!(state(true).public_base(&bad).as_str(), "https://app.example.com/");
        assert_eq!(
            state(true).public_base(&HeaderMap::new()).as_str(),
            "https://app.example.com/"
        );
    }

    fn forwarded(lines: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in lines {
            h.append(*name, HeaderValue::from_static(value));
        }
        h
    }

    #[test]
    fn forwarded_headers_use_the_right_most_value() {
        let auth = state(true);
        // The client sent `evil.example`; the trusted proxy appended the real host.
        let h = forwarded(&[
            ("x-forwarded-host", "evil.example, app.example.org"),
            ("x-forwarded-proto", "http, https"),
        ]);
        assert_eq!(auth.public_base(&h).as_str(), "https://app.example.org/");
        // Several header lines: the last line's last element.
        let h = forwarded(&[
            ("x-forwarded-host", "evil.example"),
            ("x-forwarded-host", "evil2.example, app.example.org:8443"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-proto", "evil, http"),
        ]);
        assert_eq!(auth.public_base(&h).as_str(), "http://app.example.org:8443/");
        // An empty right-most element is not skipped in favour of a client-sent one.
        let h = forwarded(&[("x-forwarded-host", "evil.example, ")]);
        assert_eq!(auth.public_base(&h).as_str(), "https://app.example.com/");
        // An unknown proto falls back to the configured scheme.
        let h = forwarded(&[
            ("x-forwarded-host", "app.example.org"),
            ("x-forwarded-proto", "https, javascript"),
        ]);
        assert_eq!(auth.public_base(&h).as_str(), "https://app.example.org/");
    }

    #[test]
    fn forwarded_host_syntax_is_validated() {
        let auth = state(true);
        for good in [
            "app.example.org",
            "APP.example.org:443",
            "127.0.0.1:3000",
            "[::1]:8080",
            "[::1]",
            "localhost",
        ] {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-host", HeaderValue::from_static(good));
            assert_ne!(
                auth.public_base(&h).as_str(),
                "https://app.example.com/",
                "{good}"
            );
        }
        for bad in [
            "a.example/path",
            "user@evil.example",
            "evil.example:",
            "evil.example:99999",
            "evil.example:80:80",
            "evil..example",
            "-evil.example",
            "evil_host.example",
            "evil.example\\x",
            "evil.example%2f",
            "[::1",
            "[zz::1]",
            "[::1]x",
            "evil.example?x",
            "evil.example#x",
            "\u{e9}vil.example",
        ] {
            let mut h = HeaderMap::new();
            match HeaderValue::from_str(bad) {
                Ok(v) => h.insert("x-forwarded-host", v),
                Err(_) => h.insert(
                    "x-forwarded-host",
                    HeaderValue::from_bytes(bad.as_bytes()).unwrap(),
                ),
            };
            assert_eq!(auth.public_base(&h).as_str(), "https://app.example.com/", "{bad}");
        }
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_bytes(b"\xffevil.example").unwrap(),
        );
        assert_eq!(auth.public_base(&h).as_str(), "https://app.example.com/");
    }

    fn client(
        configure: impl FnOnce(auth_core::ServerClientBuilder) -> auth_core::ServerClientBuilder,
    ) -> ServerClient {
        use auth_core::ClientAuth;
        configure(
            ServerClient::builder()
                .issuer("https://idp.example.com/")
                .client_id("c")
                .client_auth(ClientAuth::none())
                .secret("0123456789abcdef0123456789abcdef"),
        )
        .build()
        .unwrap()
    }

    #[test]
    fn the_default_callback_url_moves_with_the_base_path() {
        let base = |b: auth_core::ServerClientBuilder| b.app_base_url("https://app.example.com");
        let auth = AuthState::new(client(base), AuthOptions::new()).unwrap();
        assert_eq!(auth.callback_url(), "https://app.example.com/auth/callback");
        assert_eq!(auth.redirect_uri_override(), None, "the client's own default");
        for (path, url) in [
            ("/account", "https://app.example.com/account/callback"),
            ("account/", "https://app.example.com/account/callback"),
            ("/", "https://app.example.com/callback"),
        ] {
            let auth = AuthState::new(client(base), AuthOptions::new().base_path(path)).unwrap();
            assert_eq!(auth.callback_url(), url);
            assert_eq!(auth.redirect_uri_override(), Some(url));
        }
        // Under a base URL with a path, like the core's default.
        let auth = AuthState::new(
            client(|b| b.app_base_url("https://app.example.com/shop/")),
            AuthOptions::new().base_path("/account"),
        )
        .unwrap();
        assert_eq!(
            auth.callback_url(),
            "https://app.example.com/shop/account/callback"
        );
    }

    #[test]
    fn a_configured_redirect_uri_must_point_at_the_callback_route() {
        use auth_core::AuthorizationParams;
        let with = |uri: &'static str| {
            move |b: auth_core::ServerClientBuilder| {
                b.authorization_params(AuthorizationParams::new().redirect_uri(uri))
            }
        };
        let ok = AuthState::new(
            client(with("https://app.example.com/account/callback")),
            AuthOptions::new().base_path("/account"),
        )
        .unwrap();
        assert_eq!(ok.callback_url(), "https://app.example.com/account/callback");
        assert_eq!(ok.redirect_uri_override(), None);
        let e = AuthState::new(
            client(with("https://app.example.com/auth/callback")),
            AuthOptions::new().base_path("/account"),
        )
        .unwrap_err();
        assert_eq!(e.code(), "configuration_error");
        let text = e.to_string();
        assert!(text.contains("redirect_uri (AUTH0_REDIRECT_URI)"), "{text}");
        assert!(
            text.contains("`https://app.example.com/account/callback`") && text.contains("/account"),
            "says what to set: {text}"
        );
        assert!(AuthState::new(client(with("https://app.example.com/cb")), AuthOptions::new()).is_err());
    }

    #[test]
    fn forwarded_hosts_allow_list() {
        let auth = state_with(
            AuthOptions::new().allowed_forwarded_hosts(["app.example.org", "app.example.org:8443"]),
        );
        let base = |host: &'static str| {
            auth.public_base(&forwarded(&[("x-forwarded-host", host)]))
                .to_string()
        };
        assert_eq!(base("app.example.org"), "https://app.example.org/");
        assert_eq!(base("APP.Example.org"), "https://app.example.org/");
        assert_eq!(base("app.example.org:8443"), "https://app.example.org:8443/");
        assert_eq!(base("app.example.org:9000"), "https://app.example.com/");
        assert_eq!(base("evil.example"), "https://app.example.com/");
        assert_eq!(base("app.example.org, evil.example"), "https://app.example.com/");
    }
}
