//! [`EmuApp`]: the connected-accounts example app on a real listener, configured against the
//! strict Auth0 emulator, with a cookie-keeping HTTP client that does not follow redirects, so
//! a test drives the app exactly as a browser would and sees every hop.
//!
//! ```no_run
//! # async fn demo() {
//! use auth_tests::emu_app::EmuApp;
//!
//! let app = EmuApp::start().await;
//! app.login().await;
//! let (status, profile) = app.get_json("/profile").await;
//! assert_eq!(status, 200);
//! assert_eq!(profile["sub"], "auth0|alice");
//! app.assert_nothing_refused();
//! # }
//! ```

use std::collections::BTreeMap;

use auth_axum::{AuthOptions, AuthState};
use auth_core::{AuthorizationParams, ClientAuth, ServerClient, ServerClientBuilder};
use axum::Router;
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use crate::app::location;
use crate::auth0::{Auth0Emulator, EMU_CLIENT_ID, EMU_CLIENT_SECRET, EMU_TLS_CA_PEM, EmulatorOptions};

/// The browser-driving methods [`EmuApp`] and [`EnvApp`] share (both have `emu`, `base` and
/// `http` fields).
macro_rules! browsing_methods {
    () => {
        /// `path` on the app, as an absolute URL.
        #[must_use]
        pub fn url(&self, path: &str) -> String {
            format!("{}{path}", self.base)
        }

        /// GET `start` (absolute) and follow redirects until one points back at the app, which
        /// is returned (not followed).
        ///
        /// # Panics
        /// When a hop is not a redirect, or there is no way back within 5 hops.
        pub async fn through_emulator(&self, start: &str) -> Url {
            let mut next = Url::parse(start).unwrap();
            for _ in 0..5 {
                let r = self.http.get(next.clone()).send().await.unwrap();
                assert_eq!(r.status(), 302, "{next}: {:?}", r.text().await);
                let target = next.join(&location(&r)).unwrap();
                if target.as_str().starts_with(&self.base) {
                    return target;
                }
                next = target;
            }
            panic!("no way back to the app from {start}");
        }

        /// GET `path` on the app as a browser (`Accept: text/html`), expecting a redirect to
        /// the emulator; returns that URL.
        ///
        /// # Panics
        /// When the app does not redirect.
        pub async fn start_flow(&self, path: &str) -> Url {
            self.start_flow_accepting(path, "text/html").await
        }

        /// As `start_flow`, with `Accept: accept`.
        ///
        /// # Panics
        /// When the app does not redirect.
        pub async fn start_flow_accepting(&self, path: &str, accept: &str) -> Url {
            let r = self
                .http
                .get(self.url(path))
                .header("accept", accept)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 302, "{path}: {:?}", r.text().await);
            Url::parse(&location(&r)).unwrap()
        }

        /// Starts `path` on the app, goes through the emulator and completes the callback; returns
        /// the callback's response and the URL the app first redirected to.
        pub async fn flow(&self, path: &str) -> (reqwest::Response, Url) {
            self.flow_accepting(path, "text/html", None).await
        }

        /// As `flow`, starting with `Accept: accept` and completing the callback with
        /// `Accept: callback_accept` (none when `None`).
        pub async fn flow_accepting(
            &self,
            path: &str,
            accept: &str,
            callback_accept: Option<&str>,
        ) -> (reqwest::Response, Url) {
            let to_emulator = self.start_flow_accepting(path, accept).await;
            let callback = self.through_emulator(to_emulator.as_str()).await;
            let mut request = self.http.get(callback);
            if let Some(a) = callback_accept {
                request = request.header("accept", a);
            }
            (request.send().await.unwrap(), to_emulator)
        }

        /// A complete login through `/auth/login`, ending on `/`.
        ///
        /// # Panics
        /// When the login does not end with a redirect to `/`.
        pub async fn login(&self) {
            let (done, _) = self.flow("/auth/login").await;
            assert_eq!(done.status(), 302);
            assert_eq!(location(&done), "/");
        }

        /// GET `path` asking for JSON; the status and the body (`Null` when not JSON).
        pub async fn get_json(&self, path: &str) -> (StatusCode, Value) {
            let r = self
                .http
                .get(self.url(path))
                .header("accept", "application/json")
                .send()
                .await
                .unwrap();
            let s = r.status();
            (s, r.json().await.unwrap_or(Value::Null))
        }

        /// Asserts the emulator refused none of the requests it received.
        ///
        /// # Panics
        /// When it refused one, listing them.
        pub fn assert_nothing_refused(&self) {
            let refused = self.emu.refused();
            assert!(
                refused.is_empty(),
                "the emulator refused requests: {refused:#?}"
            );
        }
    };
}

/// The app's cookie secret.
pub const EMU_APP_SECRET: &str = "emu-app-cookie-secret-0123456789abcdef012";

/// The connected-accounts example app against the Auth0 emulator (see the module docs).
pub struct EmuApp {
    /// The emulator the app talks to.
    pub emu: Auth0Emulator,
    /// The app's own origin, `http://127.0.0.1:<port>`.
    pub base: String,
    /// A browser-like client: keeps cookies, never follows redirects.
    pub http: reqwest::Client,
    /// The app's auth state (for tests that call the core directly).
    pub auth: AuthState,
    _server: tokio::task::JoinHandle<()>,
}

impl EmuApp {
    /// Default emulator, default client (confidential, `client_secret_basic`, scope with
    /// `offline_access`), default [`AuthOptions`].
    pub async fn start() -> Self {
        Self::start_with(|b| b, EmulatorOptions::default()).await
    }

    /// As [`EmuApp::start`], with the client builder changed by `tweak` and the emulator
    /// started with `opts` (the app's callback and logout URLs are added to it).
    pub async fn start_with(
        tweak: impl FnOnce(ServerClientBuilder) -> ServerClientBuilder,
        opts: EmulatorOptions,
    ) -> Self {
        Self::start_full(tweak, opts, AuthOptions::new(), |_| Router::new()).await
    }

    /// The most general start: `options` for the Axum integration and `extra` routes merged
    /// into the app (behind the auth layer).
    ///
    /// # Panics
    /// When the listener, the emulator or the configuration cannot be set up.
    pub async fn start_full(
        tweak: impl FnOnce(ServerClientBuilder) -> ServerClientBuilder,
        mut opts: EmulatorOptions,
        options: AuthOptions,
        extra: impl FnOnce(&AuthState) -> Router,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        opts.redirect_uris.push(format!("{base}/auth/callback"));
        opts.post_logout_redirect_uris.push(format!("{base}/"));
        let emu = Auth0Emulator::start_with(opts).await;
        let builder = ServerClient::builder()
            .domain(emu.domain())
            .client_id(EMU_CLIENT_ID)
            .client_auth(ClientAuth::secret(EMU_CLIENT_SECRET))
            .secret(EMU_APP_SECRET)
            .app_base_url(&base)
            .authorization_params(AuthorizationParams::new().scope("openid profile email offline_access"));
        let client = tweak(builder).build().unwrap();
        let auth = AuthState::new(client, options).unwrap();
        let app = auth_examples::connected_accounts::app(&auth).merge(extra(&auth).layer(auth.layer()));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            emu,
            base,
            http: browser_client(),
            auth,
            _server: server,
        }
    }

    /// For flows driven through the core with a jar of their own: follow the emulator's
    /// redirects from `start` with a client that keeps no cookies, until one leaves the
    /// emulator; that URL (the callback) is returned.
    pub async fn through_emulator_without_cookies(&self, start: &str) -> Url {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap();
        let mut next = Url::parse(start).unwrap();
        for _ in 0..5 {
            let r = http.get(next.clone()).send().await.unwrap();
            let target = next.join(&location(&r)).unwrap();
            if !target.as_str().starts_with(&self.emu.issuer()) {
                return target;
            }
            next = target;
        }
        panic!("no way out of the emulator from {start}");
    }

    browsing_methods!();
}

/// A browser-like client: keeps cookies, never follows redirects, no proxy.
///
/// # Panics
/// When the client cannot be built.
#[must_use]
pub fn browser_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

/// The ways the contract configures the example app from the environment (as the
/// `connected_accounts` binary reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigStyle {
    /// `AUTH0_DOMAIN` = the emulator's `https://127.0.0.1:PORT` origin (the emulator on TLS),
    /// its test CA trusted through `SSL_CERT_FILE`.
    DomainHttps,
    /// `AUTH0_DOMAIN` = the emulator's loopback http origin.
    Domain,
    /// `OIDC_ISSUER` = the emulator's loopback http issuer URL.
    Issuer,
}

impl ConfigStyle {
    /// Every style, the TLS one first.
    pub const ALL: [ConfigStyle; 3] = [ConfigStyle::DomainHttps, ConfigStyle::Issuer, ConfigStyle::Domain];

    /// Configured as an Auth0 domain.
    #[must_use]
    pub fn is_domain(self) -> bool {
        self != ConfigStyle::Issuer
    }

    /// The name of the variable that points the app at the emulator.
    #[must_use]
    pub fn variable(self) -> &'static str {
        if self.is_domain() {
            "AUTH0_DOMAIN"
        } else {
            "OIDC_ISSUER"
        }
    }
}

/// A file holding the emulator's test CA, for `SSL_CERT_FILE`: written once per process, so
/// tests running in parallel never read it half-written.
///
/// # Panics
/// When the file cannot be written.
#[must_use]
pub fn emu_ca_file() -> &'static str {
    static PATH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("auth-tests-emu-ca-{}.pem", std::process::id()));
        std::fs::write(&path, EMU_TLS_CA_PEM).unwrap();
        path.display().to_string()
    })
}

/// A browser-like client (cookies, no redirects, no proxy) that also trusts the emulator's
/// test CA.
///
/// # Panics
/// When the client cannot be built.
#[must_use]
pub fn tls_browser_client() -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem_bundle(EMU_TLS_CA_PEM.as_bytes()).unwrap();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tls_certs_merge(ca)
        .build()
        .unwrap()
}

/// The connected-accounts example app built from environment variables in one of the
/// [`ConfigStyle`]s, through [`ServerClientBuilder::from_env_with`], against a fresh emulator.
pub struct EnvApp {
    /// The emulator the app talks to.
    pub emu: Auth0Emulator,
    /// The app's own origin, `http://127.0.0.1:<port>`.
    pub base: String,
    /// A browser-like client trusting the emulator's CA ([`tls_browser_client`]).
    pub http: reqwest::Client,
    /// The app's auth state.
    pub auth: AuthState,
    /// How the app was configured.
    pub style: ConfigStyle,
    _server: tokio::task::JoinHandle<()>,
}

/// The first half of [`EnvApp::start`]: the listener is bound and the emulator runs (on TLS for
/// [`ConfigStyle::DomainHttps`]), so a test can set it up and adjust the environment before
/// [`EnvAppStart::serve`] builds the client and serves the app.
pub struct EnvAppStart {
    /// The emulator the app will talk to.
    pub emu: Auth0Emulator,
    /// The app's own origin.
    pub base: String,
    /// The environment the client is built from (see [`EnvAppStart::env`]); change it freely.
    pub env: BTreeMap<String, String>,
    style: ConfigStyle,
    listener: tokio::net::TcpListener,
}

impl EnvApp {
    /// Binds the app's listener and starts the emulator with `opts` (the app's callback and
    /// logout URLs added, TLS as `style` wants); the environment starts as the contract's:
    /// the style's variable, `AUTH0_CLIENT_ID`, `AUTH0_CLIENT_SECRET`, `AUTH0_SECRET`,
    /// `APP_BASE_URL`, and `SSL_CERT_FILE` ([`emu_ca_file`]) for [`ConfigStyle::DomainHttps`].
    ///
    /// # Panics
    /// When the listener or the emulator cannot be set up.
    pub async fn prepare(style: ConfigStyle, mut opts: EmulatorOptions) -> EnvAppStart {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        opts.redirect_uris.push(format!("{base}/auth/callback"));
        opts.post_logout_redirect_uris.push(format!("{base}/"));
        opts.tls = style == ConfigStyle::DomainHttps;
        let emu = Auth0Emulator::start_with(opts).await;
        let mut env: BTreeMap<String, String> = [
            ("AUTH0_CLIENT_ID", EMU_CLIENT_ID.to_owned()),
            ("AUTH0_CLIENT_SECRET", EMU_CLIENT_SECRET.to_owned()),
            ("AUTH0_SECRET", EMU_APP_SECRET.to_owned()),
            ("APP_BASE_URL", base.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let target = if style.is_domain() {
            emu.domain()
        } else {
            emu.issuer()
        };
        env.insert(style.variable().to_owned(), target);
        if style == ConfigStyle::DomainHttps {
            assert!(emu.domain().starts_with("https://127.0.0.1:"), "{}", emu.domain());
            env.insert("SSL_CERT_FILE".to_owned(), emu_ca_file().to_owned());
        }
        EnvAppStart {
            emu,
            base,
            env,
            style,
            listener,
        }
    }
}

impl EnvApp {
    browsing_methods!();
}

impl EnvAppStart {
    /// Sets `vars` in the environment (replacing what is there).
    #[must_use]
    pub fn with_env(mut self, vars: &[(&str, &str)]) -> Self {
        for (k, v) in vars {
            self.env.insert((*k).to_owned(), (*v).to_owned());
        }
        self
    }

    /// Builds the client from the environment (then changed by `tweak`), the auth state with
    /// `options`, and serves `app(&auth)`.
    ///
    /// # Panics
    /// When the configuration is refused.
    pub fn serve(
        self,
        tweak: impl FnOnce(ServerClientBuilder) -> ServerClientBuilder,
        options: AuthOptions,
        app: impl FnOnce(&AuthState) -> Router,
    ) -> EnvApp {
        let env = self.env;
        let builder = ServerClientBuilder::from_env_with(|name| env.get(name).cloned()).unwrap();
        let client = tweak(builder).build().unwrap();
        let auth = AuthState::new(client, options).unwrap();
        let app = app(&auth);
        let listener = self.listener;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        EnvApp {
            emu: self.emu,
            base: self.base,
            http: tls_browser_client(),
            auth,
            style: self.style,
            _server: server,
        }
    }
}
