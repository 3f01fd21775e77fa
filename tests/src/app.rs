//! The quickstart app on a real loopback listener, wired to a fresh test IdP.

use std::net::SocketAddr;
use std::time::Duration;

use auth_axum::{AuthOptions, AuthState};
use auth_core::{AuthorizationParams, ClientAuth, ServerClient, ServerClientBuilder};
use reqwest::header::LOCATION;
use url::Url;

use crate::idp::{CONF_BASIC_ID, CONF_BASIC_SECRET, IdpOptions, TestIdp};

/// Cookie secret used by test apps.
pub const APP_SECRET: &str = "app-test-cookie-secret-0123456789abcdef";

/// A running app plus the IdP it trusts.
pub struct TestApp {
    /// The provider.
    pub idp: TestIdp,
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub base: String,
    /// The auth state the app was built with.
    pub auth: AuthState,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// How to build the app under test.
pub struct AppConfig {
    /// Adjusts the client builder (issuer, client id/auth, secret and base URL are preset).
    pub client: Box<dyn FnOnce(ServerClientBuilder) -> ServerClientBuilder + Send>,
    /// Integration options.
    pub options: AuthOptions,
    /// Builds the router from the state; defaults to the quickstart.
    pub router: Box<dyn FnOnce(&AuthState) -> axum::Router + Send>,
    /// Extra IdP options (redirect URIs for the app are added automatically).
    pub idp: IdpOptions,
    /// Register the app's `/auth/backchannel-logout` with the IdP (for `conf-basic`).
    pub backchannel: bool,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            client: Box::new(|b| b),
            options: AuthOptions::new(),
            router: Box::new(auth_examples::quickstart::app),
            idp: IdpOptions::default(),
            backchannel: false,
        }
    }
}

impl TestApp {
    /// The quickstart against a new IdP, as the `conf-basic` client.
    pub async fn start() -> TestApp {
        Self::start_with(AppConfig::default()).await
    }

    /// A configured app against a new IdP.
    pub async fn start_with(config: AppConfig) -> TestApp {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind app listener");
        let addr: SocketAddr = listener.local_addr().expect("local addr");
        let base = format!("http://{addr}");
        let mut idp_opts = config.idp;
        idp_opts.redirect_uris.push(format!("{base}/auth/callback"));
        idp_opts.post_logout_redirect_uris.push(format!("{base}/"));
        if config.backchannel {
            idp_opts.backchannel_logout_uri = Some(format!("{base}/auth/backchannel-logout"));
        }
        let idp = TestIdp::start_with(idp_opts).await;
        let client = (config.client)(preset(&idp, &base))
            .build()
            .expect("client config");
        let auth = AuthState::new(client, config.options).expect("auth state");
        let app = (config.router)(&auth);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestApp {
            idp,
            base,
            auth,
            server,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Another instance of this app, as behind a load balancer: the same preset configuration
    /// (issuer, client, secret, public base URL) adjusted by `client` (e.g. its own handle on a
    /// shared backend), serving the quickstart on its own loopback listener. The browser's
    /// host-only cookies reach it too (same host, another port).
    pub async fn another_instance(
        &self,
        client: impl FnOnce(ServerClientBuilder) -> ServerClientBuilder,
    ) -> Instance {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind app listener");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let client = client(preset(&self.idp, &self.base))
            .build()
            .expect("client config");
        let auth = AuthState::new(client, AuthOptions::new()).expect("auth state");
        let app = auth_examples::quickstart::app(&auth);
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Instance { base, server }
    }

    /// A fresh cookie-keeping client that does not follow redirects.
    pub fn browser() -> reqwest::Client {
        TestIdp::browser()
    }

    /// Logs `user` in through `/auth/login?{query}` with `http`: follows the app's redirect to the
    /// IdP, the IdP's forms, and the callback. Returns the callback's response (normally a 302
    /// to `returnTo`).
    pub async fn login(&self, http: &reqwest::Client, query: &str, user: &str) -> reqwest::Response {
        let start = http
            .get(self.url(&format!("/auth/login?{query}")))
            .send()
            .await
            .expect("GET /auth/login");
        assert_eq!(start.status(), 302, "login start: {:?}", start.text().await);
        let authorize = location(&start);
        let callback = self.idp.login_with(http, &authorize, user).await;
        assert!(
            callback.as_str().starts_with(&self.base),
            "IdP sent us to {callback}"
        );
        http.get(callback.as_str()).send().await.expect("GET callback")
    }
}

/// The client builder preset for `idp`'s `conf-basic` client and the app at `base`.
fn preset(idp: &TestIdp, base: &str) -> ServerClientBuilder {
    ServerClient::builder()
        .issuer(idp.issuer())
        .client_id(CONF_BASIC_ID)
        .client_auth(ClientAuth::secret(CONF_BASIC_SECRET))
        .secret(APP_SECRET)
        .app_base_url(base)
        .authorization_params(AuthorizationParams::new())
}

/// A further instance of a [`TestApp`] ([`TestApp::another_instance`]); stops when dropped.
#[derive(Debug)]
pub struct Instance {
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Instance {
    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The `Cookie` header that carries the session cookies (`_a0_session*`) a response sets, as
/// a browser would send them next (`name=value; …`); empty when it sets none. Cookies being
/// cleared (an empty value) are left out.
pub fn session_cookie_header(resp: &reqwest::Response) -> String {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next())
        .filter(|c| c.starts_with("_a0_session") && !c.ends_with('='))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The `Location` header of a response.
pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no Location header (status {})", resp.status()))
        .to_owned()
}

/// Parses a Location that may be relative to `base`.
pub fn resolve(base: &str, location: &str) -> Url {
    Url::parse(base)
        .and_then(|b| b.join(location))
        .expect("resolvable location")
}

/// Request timeout used by helpers.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// The query parameters of an absolute URL, by name (the first of a repeated name wins).
///
/// # Panics
/// When `url` is not an absolute URL.
#[must_use]
pub fn query(url: impl AsRef<str>) -> std::collections::BTreeMap<String, String> {
    let url = Url::parse(url.as_ref()).expect("an absolute URL");
    let mut out = std::collections::BTreeMap::new();
    for (k, v) in url.query_pairs() {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// The payload of a compact JWS (three non-empty parts), decoded but not verified.
///
/// # Panics
/// When `token` is not a compact JWS with a JSON payload.
#[must_use]
pub fn jwt_payload(token: &str) -> serde_json::Value {
    jws_part(token, 1)
}

/// The protected header of a compact JWS (three non-empty parts), decoded.
///
/// # Panics
/// When `token` is not a compact JWS with a JSON header.
#[must_use]
pub fn jwt_header(token: &str) -> serde_json::Value {
    jws_part(token, 0)
}

fn jws_part(token: &str, index: usize) -> serde_json::Value {
    use base64::Engine as _;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWS has three parts: {token}");
    assert!(parts.iter().all(|p| !p.is_empty()), "empty JWS part: {token}");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[index])
        .expect("base64url JWS part");
    serde_json::from_slice(&bytes).expect("JSON JWS part")
}

/// `GET url` with `Accept: application/json`: the status and the JSON body (`Null` when the
/// body is not JSON).
pub async fn json_get(http: &reqwest::Client, url: &str) -> (reqwest::StatusCode, serde_json::Value) {
    let r = http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .expect("GET");
    let status = r.status();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// A loopback listener for an app and a fresh test IdP that knows only that app's
/// `callback_path` (so a login sent to another callback fails at the provider) and
/// `post_logout_path`: `(listener, base URL without a trailing slash, provider)`.
pub async fn loopback_with_idp(
    callback_path: &str,
    post_logout_path: &str,
) -> (tokio::net::TcpListener, String, TestIdp) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind app listener");
    let base = format!("http://{}", listener.local_addr().expect("local addr"));
    let idp = TestIdp::start_with(IdpOptions {
        redirect_uris: vec![format!("{base}{callback_path}")],
        post_logout_redirect_uris: vec![format!("{base}{post_logout_path}")],
        ..IdpOptions::default()
    })
    .await;
    (listener, base, idp)
}

/// An app served on a loopback listener (from [`loopback_with_idp`]) with its provider, for
/// suites that build their own router; the server stops when this is dropped.
pub struct LoopbackApp {
    /// The provider, which knows only this app's callback.
    pub idp: TestIdp,
    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub base: String,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LoopbackApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The `Accept` header of a browser navigation.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

impl LoopbackApp {
    /// Serves `router` on `listener` (whose URL is `base`), with `idp` as its provider.
    pub fn serve(
        listener: tokio::net::TcpListener,
        base: String,
        idp: TestIdp,
        router: axum::Router,
    ) -> Self {
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { idp, base, server }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path` with `Accept: accept`, not following redirects.
    pub async fn get(&self, http: &reqwest::Client, path: &str, accept: &str) -> reqwest::Response {
        http.get(self.url(path))
            .header("accept", accept)
            .send()
            .await
            .expect("GET")
    }

    /// The authorize URL a browser navigation to `path` ends at: the app's own redirects are
    /// followed (each must be a `302`) until one leads to the provider.
    pub async fn authorize_url(&self, http: &reqwest::Client, path: &str) -> String {
        let mut path = path.to_owned();
        loop {
            let r = self.get(http, &path, BROWSER_ACCEPT).await;
            assert_eq!(r.status(), 302, "{path}: {:?}", r.text().await);
            let next = location(&r);
            if next.starts_with(self.idp.issuer()) {
                return next;
            }
            assert!(next.starts_with('/'), "{path} redirected to {next}");
            path = next;
        }
    }

    /// Logs `user` in through the login that a navigation to `path` leads to; returns the
    /// callback's response.
    pub async fn login(&self, http: &reqwest::Client, path: &str, user: &str) -> reqwest::Response {
        let authorize = self.authorize_url(http, path).await;
        let callback = self.idp.login_with(http, &authorize, user).await;
        assert!(callback.as_str().starts_with(&self.base), "{callback}");
        http.get(callback.as_str()).send().await.expect("GET callback")
    }
}
