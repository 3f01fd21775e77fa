//! Issue 10, items 2, 3 and parts of 9, against the strict Auth0 emulator:
//!
//! - pinned parameters win: a configured `organization`/`connection` is never overridden by the
//!   login query, and every ID token (login, refresh) is checked against the configured
//!   organization;
//! - no identity switch: a link/unlink or connect completion for another user than the session
//!   is refused (`identity_mismatch`) and the session is left as it was; a login while another
//!   user's session exists starts a fresh session (new server-side id, none of the old tokens);
//! - the link flow pushes its request (PAR) so the session's ID token never rides in the
//!   browser URL; connected account ids that could name another path are refused;
//!   `force_refresh` always reaches the token endpoint (once for concurrent callers).

use std::sync::Arc;

use auth_axum::AuthOptions;
use auth_core::cookies::MemoryCookieJar;
use auth_core::store::MemoryBackend;
use auth_core::{
    AccessTokenOptions, AuthorizationParams, ClientAuth, LinkOptions, LoginOptions, ServerClient,
    ServerClientBuilder,
};
use auth_tests::auth0::{Auth0Emulator, EMU_CLIENT_ID, EMU_CLIENT_SECRET, EMU_DEFAULT_SUB, EmulatorOptions};
use auth_tests::emu_app::EmuApp;
use auth_tests::location;
use auth_tests::query;
use axum::Router;
use serde_json::{Value, json};
use url::Url;

const SECRET: &str = "sec-identity-cookie-secret-0123456789abcdef";
/// Registered with the emulator by default; nothing listens there (core-level flows stop at it).
const CORE_BASE: &str = "http://127.0.0.1:3000";
const MALLORY: &str = "auth0|mallory";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Core-level harness: the library driven with a MemoryCookieJar, the browser played by reqwest.
// ---------------------------------------------------------------------------------------------

struct Core {
    emu: Auth0Emulator,
    client: ServerClient,
    http: reqwest::Client,
}

impl Core {
    async fn start(tweak: impl FnOnce(ServerClientBuilder) -> ServerClientBuilder) -> Self {
        let emu = Auth0Emulator::start_with(EmulatorOptions::default()).await;
        let builder = ServerClient::builder()
            .domain(emu.domain())
            .client_id(EMU_CLIENT_ID)
            .client_auth(ClientAuth::secret(EMU_CLIENT_SECRET))
            .secret(SECRET)
            .app_base_url(CORE_BASE)
            .authorization_params(AuthorizationParams::new().scope("openid profile email offline_access"));
        let client = tweak(builder).build().unwrap();
        Self {
            emu,
            client,
            http: no_redirects(),
        }
    }

    /// Follows the emulator's redirects from `url` until one points at the app; returns it.
    async fn browse(&self, url: &Url) -> String {
        let mut next = url.clone();
        for _ in 0..5 {
            let r = self.http.get(next.clone()).send().await.unwrap();
            assert_eq!(r.status(), 302, "{next}: {:?}", r.text().await);
            let target = next.join(&location(&r)).unwrap();
            if target.as_str().starts_with(CORE_BASE) {
                return target.to_string();
            }
            next = target;
        }
        panic!("no way back to the app from {url}");
    }

    /// A whole login in `jar`'s browser; returns the jar for the next request.
    async fn login(&self, jar: &MemoryCookieJar) -> MemoryCookieJar {
        let mut start = jar.next_request();
        let url = self
            .client
            .start_interactive_login(LoginOptions::new(), &mut start)
            .await
            .unwrap();
        let callback = self.browse(&url).await;
        let mut done = start.next_request();
        self.client
            .complete_interactive_login(&callback, &mut done)
            .await
            .unwrap();
        done.next_request()
    }

    async fn sub(&self, jar: &MemoryCookieJar) -> Option<String> {
        let mut jar = jar.clone();
        let session = self.client.get_session(&mut jar).await.unwrap()?;
        session.sub().map(str::to_owned)
    }

    fn assert_nothing_refused(&self) {
        let refused = self.emu.refused();
        assert!(refused.is_empty(), "the emulator refused requests: {refused:#?}");
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP harness: the connected-accounts example app on a loopback listener.
// ---------------------------------------------------------------------------------------------

/// The shared emulator app, with this file's request helpers.
struct App(EmuApp);

impl std::ops::Deref for App {
    type Target = EmuApp;
    fn deref(&self) -> &EmuApp {
        &self.0
    }
}

impl App {
    async fn start(tweak: impl FnOnce(ServerClientBuilder) -> ServerClientBuilder) -> Self {
        Self::start_with(tweak, AuthOptions::new()).await
    }

    async fn start_with(
        tweak: impl FnOnce(ServerClientBuilder) -> ServerClientBuilder,
        options: AuthOptions,
    ) -> Self {
        Self(EmuApp::start_full(tweak, EmulatorOptions::default(), options, |_| Router::new()).await)
    }

    /// Follows the emulator's redirects from `start` to the app and GETs the callback (JSON).
    async fn finish_flow(&self, start: &Url) -> (u16, Value) {
        let mut next = start.clone();
        for _ in 0..5 {
            let r = self.http.get(next.clone()).send().await.unwrap();
            assert_eq!(r.status(), 302, "{next}: {:?}", r.text().await);
            let target = next.join(&location(&r)).unwrap();
            if target.as_str().starts_with(&self.base) {
                let done = self
                    .http
                    .get(target)
                    .header("accept", "application/json")
                    .send()
                    .await
                    .unwrap();
                let status = done.status().as_u16();
                return (status, done.json().await.unwrap_or(Value::Null));
            }
            next = target;
        }
        panic!("no way back to the app from {start}");
    }

    async fn flow(&self, path: &str) -> (u16, Value, Url) {
        let to_emulator = self.start_flow(path).await;
        let (status, body) = self.finish_flow(&to_emulator).await;
        (status, body, to_emulator)
    }

    async fn profile(&self) -> (u16, Value) {
        let r = self
            .http
            .get(self.url("/profile"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

// ---------------------------------------------------------------------------------------------
// Item 2: pinned parameters win.
// ---------------------------------------------------------------------------------------------

/// Old code: the query's `organization=evil` overrode the configured one (and the ID token was
/// then checked against `evil`).
#[tokio::test]
async fn login_query_cannot_override_the_configured_organization_or_connection() {
    let app = App::start(|b| {
        b.authorization_params(
            AuthorizationParams::new()
                .scope("openid profile email offline_access")
                .organization("org_good")
                .param("connection", "corp-idp"),
        )
    })
    .await;
    let authorize = app
        .start_flow("/auth/login?organization=evil&connection=evil-idp&login_hint=a%40b.test")
        .await;
    let q = query(&authorize);
    assert_eq!(
        q.get("organization").map(String::as_str),
        Some("org_good"),
        "{authorize}"
    );
    assert_eq!(
        q.get("connection").map(String::as_str),
        Some("corp-idp"),
        "{authorize}"
    );
    assert_eq!(
        q.get("login_hint").map(String::as_str),
        Some("a@b.test"),
        "unpinned hints still pass"
    );
    // The login completes, inside the configured organization.
    let (status, _) = app.finish_flow(&authorize).await;
    assert_eq!(status, 302);
    let (status, profile) = app.profile().await;
    assert_eq!(status, 200);
    assert_eq!(profile["org_id"], "org_good");
    app.assert_nothing_refused();
}

/// The forwarded login parameters are an allow-list of the app's choosing; a name pinned by the
/// client is never forwarded even when listed (the login proceeds with the configured value),
/// and `redirect_uri` can never be listed.
#[tokio::test]
async fn login_forwards_only_the_configured_allow_list_and_never_pinned_names() {
    let app = App::start_with(
        |b| b.pin_authorization_param("prompt"),
        AuthOptions::new().login_params(["screen_hint", "prompt", "ui_locales", "redirect_uri"]),
    )
    .await;
    let authorize = app
        .start_flow(
            "/auth/login?screen_hint=signup&prompt=none&ui_locales=fr&login_hint=x&organization=o\
             &redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
        )
        .await;
    let q = query(&authorize);
    assert_eq!(q.get("screen_hint").map(String::as_str), Some("signup"));
    assert_eq!(q.get("ui_locales").map(String::as_str), Some("fr"));
    for absent in ["prompt", "login_hint", "organization"] {
        assert!(!q.contains_key(absent), "{absent}: {authorize}");
    }
    assert_eq!(q["redirect_uri"], app.url("/auth/callback"));
    let (status, body) = app.finish_flow(&authorize).await;
    assert_eq!(status, 302, "{body}");
    app.assert_nothing_refused();
}

/// The core refuses a per-call value for a pinned name (an app bug, typed error), but accepts
/// the configured value itself.
#[tokio::test]
async fn per_call_pinned_parameter_is_refused_by_the_core() {
    let core = Core::start(|b| {
        b.authorization_params(AuthorizationParams::new().organization("org_good"))
            .pin_authorization_param("prompt")
    })
    .await;
    for params in [
        AuthorizationParams::new().organization("org_evil"),
        AuthorizationParams::new().param("prompt", "none"),
    ] {
        let mut jar = MemoryCookieJar::new();
        let e = core
            .client
            .start_interactive_login(LoginOptions::new().authorization_params(params), &mut jar)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_parameter", "{e}");
        assert!(jar.response_cookies().is_empty(), "no transaction was stored");
    }
    let mut jar = MemoryCookieJar::new();
    let url = core
        .client
        .start_interactive_login(
            LoginOptions::new().authorization_params(AuthorizationParams::new().organization("org_good")),
            &mut jar,
        )
        .await
        .unwrap();
    assert_eq!(query(&url)["organization"], "org_good");
    assert!(core.client.is_pinned_authorization_param("organization"));
    assert!(!core.client.is_pinned_authorization_param("login_hint"));
}

/// An ID token of another organization than the configured one is refused at login (typed,
/// 4xx) and no session is written.
#[tokio::test]
async fn login_id_token_of_another_organization_is_refused() {
    let app = App::start(|b| {
        b.authorization_params(
            AuthorizationParams::new()
                .scope("openid profile email offline_access")
                .organization("org_good"),
        )
    })
    .await;
    app.emu.issue_organization(Some("org_evil"));
    let (status, body, _) = app.flow("/auth/login").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "id_token_invalid");
    assert_eq!(app.profile().await.0, 401, "no session");
    app.assert_nothing_refused();
}

/// Old code: refreshed ID tokens were not checked against any organization (the check came
/// from the login transaction, which a refresh does not have).
#[tokio::test]
async fn refreshed_id_token_of_another_organization_is_refused() {
    let core = Core::start(|b| {
        b.authorization_params(
            AuthorizationParams::new()
                .scope("openid profile email offline_access")
                .organization("org_good"),
        )
    })
    .await;
    let jar = core.login(&MemoryCookieJar::new()).await;
    core.emu.issue_organization(Some("org_evil"));
    let mut req = jar.next_request();
    let e = core
        .client
        .get_access_token(AccessTokenOptions::new().force_refresh(true), &mut req)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "id_token_invalid", "{e}");
    assert!(
        matches!(
            e,
            auth_core::Error::IdToken(auth_core::IdTokenError::OrganizationMismatch)
        ),
        "{e:?}"
    );
    // The session still holds the original user and organization.
    let session = core
        .client
        .get_session(&mut req.next_request())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(session.user()["org_id"], "org_good");
    core.assert_nothing_refused();
}

// ---------------------------------------------------------------------------------------------
// Item 3: no identity switch.
// ---------------------------------------------------------------------------------------------

/// Old code: the link completion replaced the session's user with the ID token's (mallory).
#[tokio::test]
async fn link_callback_for_another_user_is_refused_and_the_session_is_unchanged() {
    let app = App::start(|b| b).await;
    assert_eq!(app.flow("/auth/login").await.0, 302);
    // A normal link first, so that there is something to unlink.
    let (status, body, _) = app.flow("/auth/link?connection=google-oauth2").await;
    assert_eq!(status, 302, "{body}");
    let (_, before) = app.profile().await;
    assert_eq!(before["sub"], EMU_DEFAULT_SUB);

    app.emu.set_user(MALLORY, json!({"name": "Mallory"}));
    app.emu.answer_account_flows_as(Some(MALLORY));
    for path in [
        "/auth/link?connection=google-oauth2",
        "/auth/unlink?connection=google-oauth2",
    ] {
        let (status, body, _) = app.flow(path).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"], "identity_mismatch", "{path}");
        let (status, after) = app.profile().await;
        assert_eq!(status, 200, "{path}: the session survives");
        assert_eq!(after, before, "{path}: the session is unchanged");
    }
    // Back to a well-behaved provider: linking works and keeps the user.
    app.emu.answer_account_flows_as(None);
    let (status, body, _) = app.flow("/auth/link?connection=google-oauth2").await;
    assert_eq!(status, 302, "{body}");
    assert_eq!(app.profile().await.1["sub"], EMU_DEFAULT_SUB);
    app.assert_nothing_refused();
}

/// The same at the core with server-side sessions: the stored record is not touched.
#[tokio::test]
async fn link_for_another_user_leaves_the_server_side_record_alone() {
    let backend = Arc::new(MemoryBackend::new());
    let core = Core::start({
        let backend = backend.clone();
        move |b| b.server_side_sessions(true).session_backend_arc(backend)
    })
    .await;
    let jar = core.login(&MemoryCookieJar::new()).await;
    let cookie_before = jar.to_cookie_header();
    core.emu.answer_account_flows_as(Some(MALLORY));
    let mut start = jar.next_request();
    let url = core
        .client
        .start_link_user(LinkOptions::new("google-oauth2"), &mut start)
        .await
        .unwrap();
    let callback = core.browse(&url).await;
    let mut done = start.next_request();
    let e = core
        .client
        .complete_link_user(&callback, &mut done)
        .await
        .unwrap_err();
    assert!(matches!(e, auth_core::Error::IdentityMismatch), "{e:?}");
    assert_eq!(e.code(), "identity_mismatch");
    let after = done.next_request();
    assert_eq!(core.sub(&after).await.as_deref(), Some(EMU_DEFAULT_SUB));
    assert_eq!(backend.session_count(), 1);
    // No session cookie was written: the browser still holds the same pointer.
    let session_writes: Vec<_> = done
        .response_cookies()
        .into_iter()
        .filter(|c| c.name.starts_with("_a0_session"))
        .collect();
    assert!(session_writes.is_empty(), "{session_writes:?}");
    assert_eq!(
        MemoryCookieJar::from_cookie_header(&cookie_before)
            .to_cookie_header()
            .split("; ")
            .filter(|c| c.starts_with("_a0_session"))
            .collect::<Vec<_>>(),
        after
            .to_cookie_header()
            .split("; ")
            .filter(|c| c.starts_with("_a0_session"))
            .collect::<Vec<_>>()
    );
}

/// A connect started by alice and completed after the browser logged in as bob is refused
/// before anything is sent to the My Account API. Old code: it went on with bob's token.
#[tokio::test]
async fn connect_completed_in_another_users_session_is_refused() {
    let app = App::start(|b| b).await;
    assert_eq!(app.flow("/auth/login").await.0, 302);
    let connect = app.start_flow("/auth/connect?connection=google-oauth2").await;
    // Another user logs in in the same browser before the connect comes back.
    app.emu.set_user("auth0|bob", json!({"name": "Bob"}));
    assert_eq!(app.flow("/auth/login").await.0, 302);
    assert_eq!(app.profile().await.1["sub"], "auth0|bob");
    let completes_before = app.emu.count("/me/v1/connected-accounts/complete", None);
    let (status, body) = app.finish_flow(&connect).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "identity_mismatch");
    assert_eq!(
        app.emu.count("/me/v1/connected-accounts/complete", None),
        completes_before,
        "nothing was sent to the My Account API"
    );
    assert!(app.emu.connected_accounts("auth0|bob").is_empty());
    assert!(app.emu.connected_accounts(EMU_DEFAULT_SUB).is_empty());
    assert_eq!(app.profile().await.1["sub"], "auth0|bob");
    app.assert_nothing_refused();
}

/// Logging in as bob while alice's server-side session exists: a new session id (alice's record
/// is gone, her cookie opens nothing), none of alice's tokens.
#[tokio::test]
async fn login_as_another_user_starts_a_fresh_session() {
    let backend = Arc::new(MemoryBackend::new());
    let core = Core::start({
        let backend = backend.clone();
        move |b| b.server_side_sessions(true).session_backend_arc(backend)
    })
    .await;
    let alice = core.login(&MemoryCookieJar::new()).await;
    // Alice gets a token for a second audience (MRRT).
    let mut req = alice.next_request();
    core.client
        .get_access_token(
            AccessTokenOptions::new()
                .audience(core.emu.my_account_audience())
                .scope("read:me:connected_accounts"),
            &mut req,
        )
        .await
        .unwrap();
    let alice = req.next_request();
    let alice_session = core
        .client
        .get_session(&mut alice.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(alice_session.token_sets().len(), 2);
    assert_eq!(backend.session_count(), 1);

    core.emu.set_user("auth0|bob", json!({"name": "Bob"}));
    let bob = core.login(&alice).await;
    assert_eq!(core.sub(&bob).await.as_deref(), Some("auth0|bob"));
    let bob_session = core.client.get_session(&mut bob.clone()).await.unwrap().unwrap();
    assert_eq!(bob_session.token_sets().len(), 1, "only bob's login token");
    assert!(
        bob_session
            .token_sets()
            .iter()
            .all(|t| t.audience != core.emu.my_account_audience()),
        "none of alice's audiences"
    );
    assert_ne!(bob_session.sid(), alice_session.sid());
    assert_eq!(
        backend.session_count(),
        1,
        "alice's record was replaced, not kept"
    );
    assert_eq!(core.sub(&alice).await, None, "alice's old cookie opens nothing");
    core.assert_nothing_refused();
}

// ---------------------------------------------------------------------------------------------
// Item 9 (parts).
// ---------------------------------------------------------------------------------------------

/// Old code: the link's authorize URL (in the browser) carried the session's ID token. The
/// emulator offers PAR, so the request is pushed even though PAR is not configured.
#[tokio::test]
async fn link_request_is_pushed_and_the_browser_url_has_no_id_token() {
    let app = App::start(|b| b).await;
    assert_eq!(app.flow("/auth/login").await.0, 302);
    for path in [
        "/auth/link?connection=google-oauth2",
        "/auth/unlink?connection=google-oauth2",
    ] {
        let authorize = app.start_flow(path).await;
        let q = query(&authorize);
        assert_eq!(
            q.keys().map(String::as_str).collect::<Vec<_>>(),
            ["client_id", "request_uri"],
            "{path}: {authorize}"
        );
        assert!(!authorize.as_str().contains("id_token_hint"));
        let pushed = app
            .emu
            .requests()
            .into_iter()
            .rfind(|r| r.path == "/oauth/par")
            .expect("pushed");
        assert!(pushed.param("id_token_hint").is_some(), "{path}");
        assert_eq!(pushed.param("requested_connection"), Some("google-oauth2"));
        if path.contains("/link") {
            let (status, body) = app.finish_flow(&authorize).await;
            assert_eq!(status, 302, "{body}");
        }
    }
    app.assert_nothing_refused();
}

/// A tenant that advertises PAR without enabling it: the link still works (through the URL,
/// the only way that provider accepts it) unless the app enabled PAR, which then fails loudly
/// instead of exposing the ID token.
#[tokio::test]
async fn link_falls_back_to_the_url_only_when_par_is_refused_and_not_enabled() {
    let core = Core::start(|b| b).await;
    let jar = core.login(&MemoryCookieJar::new()).await;
    core.emu.disable_par(true);
    let mut start = jar.next_request();
    let url = core
        .client
        .start_link_user(LinkOptions::new("github"), &mut start)
        .await
        .unwrap();
    assert!(query(&url).contains_key("id_token_hint"), "{url}");
    let callback = core.browse(&url).await;
    let mut done = start.next_request();
    core.client
        .complete_link_user(&callback, &mut done)
        .await
        .unwrap();
    let refused = core.emu.refused();
    assert!(refused.iter().all(|r| r.path == "/oauth/par"), "{refused:#?}");

    let strict = Core::start(|b| b.pushed_authorization_requests(true)).await;
    let jar = strict.login(&MemoryCookieJar::new()).await;
    strict.emu.disable_par(true);
    let mut start = jar.next_request();
    let e = strict
        .client
        .start_link_user(LinkOptions::new("github"), &mut start)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "oauth_error", "{e}");
    assert!(start.response_cookies().is_empty(), "no transaction stored");
}

/// Account ids that would change the API path are refused before any request. Old code sent
/// `DELETE …/accounts/..` (and so on).
#[tokio::test]
async fn connected_account_ids_that_name_another_path_are_refused() {
    let core = Core::start(|b| b).await;
    let jar = core.login(&MemoryCookieJar::new()).await;
    let before = core.emu.requests().len();
    for id in ["..", ".", "", "a/b", "../accounts", "a\\b", "%2e%2e", "a b"] {
        let mut req = jar.next_request();
        let e = core
            .client
            .delete_connected_account(id, &mut req)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "invalid_parameter", "{id:?}: {e}");
    }
    assert_eq!(core.emu.requests().len(), before, "nothing was sent");
}

/// Old code: the second forced call returned the first one's (still fresh) result without
/// asking the provider.
#[tokio::test]
async fn force_refresh_always_reaches_the_token_endpoint_once() {
    let core = Core::start(|b| b).await;
    let jar = core.login(&MemoryCookieJar::new()).await;
    let count = || core.emu.count("/oauth/token", Some("refresh_token"));
    assert_eq!(count(), 0);

    // A fresh token is served from the session without force…
    let mut req = jar.next_request();
    let held = core
        .client
        .get_access_token(AccessTokenOptions::new(), &mut req)
        .await
        .unwrap();
    assert_eq!(count(), 0);
    // …and every forced call refreshes, even right after another one.
    let mut jar = req.next_request();
    let mut tokens = vec![held.token.expose().to_owned()];
    for round in 1..=3 {
        let mut req = jar.next_request();
        let t = core
            .client
            .get_access_token(AccessTokenOptions::new().force_refresh(true), &mut req)
            .await
            .unwrap();
        assert_eq!(count(), round, "forced call {round}");
        tokens.push(t.token.expose().to_owned());
        jar = req.next_request();
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 4, "each forced call got a new token");

    // Concurrent forced calls of one session still share a single request.
    let before = count();
    let (mut a, mut b) = (jar.next_request(), jar.next_request());
    let (ra, rb) = tokio::join!(
        core.client
            .get_access_token(AccessTokenOptions::new().force_refresh(true), &mut a),
        core.client
            .get_access_token(AccessTokenOptions::new().force_refresh(true), &mut b),
    );
    assert_eq!(ra.unwrap().token.expose(), rb.unwrap().token.expose());
    assert_eq!(count(), before + 1);
    core.assert_nothing_refused();
}
