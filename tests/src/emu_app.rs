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

use auth_axum::{AuthOptions, AuthState};
use auth_core::{AuthorizationParams, ClientAuth, ServerClient, ServerClientBuilder};
use axum::Router;
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

use crate::app::location;
use crate::auth0::{Auth0Emulator, EMU_CLIENT_ID, EMU_CLIENT_SECRET, EmulatorOptions};

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

    /// `path` on the app, as an absolute URL.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET `start` (absolute) and follow redirects until one points back at the app, which is
    /// returned (not followed).
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

    /// GET `path` on the app as a browser (`Accept: text/html`), expecting a redirect to the
    /// emulator; returns that URL.
    ///
    /// # Panics
    /// When the app does not redirect.
    pub async fn start_flow(&self, path: &str) -> Url {
        let r = self
            .http
            .get(self.url(path))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "{path}: {:?}", r.text().await);
        Url::parse(&location(&r)).unwrap()
    }

    /// Starts `path` on the app, goes through the emulator and completes the callback; returns
    /// the callback's response and the URL the app first redirected to.
    pub async fn flow(&self, path: &str) -> (reqwest::Response, Url) {
        let to_emulator = self.start_flow(path).await;
        let callback = self.through_emulator(to_emulator.as_str()).await;
        (self.http.get(callback).send().await.unwrap(), to_emulator)
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
        assert!(refused.is_empty(), "the emulator refused requests: {refused:#?}");
    }
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
