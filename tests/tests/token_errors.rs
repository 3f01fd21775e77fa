//! Token errors that say what to do (issue 12 item 5), end to end: a refresh the provider
//! refuses with a "log in again" code answers 401 with that code (never 502), `invalid_grant`
//! ends the session while `invalid_scope` keeps it, a per-call scope never loses `openid`, and
//! a provider that cannot be reached is still a 502. Against the strict Auth0 emulator (through
//! the connected-accounts example app plus one test route) and the real test IdP (the
//! quickstart's `/token`).

use std::collections::HashMap;

use auth_axum::{AuthError, AuthOptions, Session};
use auth_core::AccessTokenOptions;
use auth_tests::auth0::{EMU_DEFAULT_SUB, EmulatorOptions};
use auth_tests::emu_app::EmuApp;
use auth_tests::{Recorded, TestApp, TestIdp, json_get};
use axum::Router;
use axum::extract::Query;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use reqwest::StatusCode;
use serde_json::json;

const API: &str = "https://api.example.test/";

/// `GET /test/token?[audience=][&scope=][&force]`: the session's access token and its scope,
/// or the error negotiated on `Accept` as the library answers it.
async fn token(session: Session, headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut options = AccessTokenOptions::new().force_refresh(q.contains_key("force"));
    if let Some(a) = q.get("audience") {
        options = options.audience(a.clone());
    }
    if let Some(s) = q.get("scope") {
        options = options.scope(s.clone());
    }
    let (client, mut jar) = session.client_and_jar();
    match client.get_access_token(options, &mut jar).await {
        Ok(t) => axum::Json(json!({"access_token": t.token.expose(), "scope": t.scope})).into_response(),
        Err(e) => AuthError::for_request(e, &headers).into_response(),
    }
}

async fn start(opts: EmulatorOptions) -> EmuApp {
    EmuApp::start_full(
        |b| b,
        opts,
        AuthOptions::new().access_token_route(true),
        |_| Router::new().route("/test/token", get(token)),
    )
    .await
}

/// The last `refresh_token` grant the emulator received.
fn last_refresh(app: &EmuApp) -> auth_tests::RecordedRequest {
    app.emu
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/oauth/token" && r.param("grant_type") == Some("refresh_token"))
        .expect("a refresh reached the emulator")
}

async fn get_accept(app: &EmuApp, path: &str, accept: &str) -> (StatusCode, String) {
    let r = app
        .http
        .get(app.url(path))
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

/// Old code: `invalid_scope` was an `Error::Endpoint` and answered 502 "The identity provider
/// could not be reached".
#[tokio::test]
async fn a_refresh_refused_with_invalid_scope_is_401_with_the_code_and_keeps_the_session() {
    let app = start(EmulatorOptions::default()).await;
    app.login().await;
    // `admin` was never granted to the refresh token: the emulator answers 400 invalid_scope.
    let (status, body) = app.get_json("/test/token?scope=admin").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_scope", "{body}");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("log in again"),
        "{body}"
    );
    let refused = last_refresh(&app);
    assert_eq!(
        (refused.status, refused.error.as_deref()),
        (400, Some("invalid_scope"))
    );
    // A browser navigation gets the same answer as an HTML page.
    let (status, page) = get_accept(&app, "/test/token?scope=admin", "text/html").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("<code>invalid_scope</code>"), "{page}");
    // Only that scope needs a new login: the session and its tokens are kept.
    let (status, profile) = app.get_json("/profile").await;
    assert_eq!(
        (status, profile["sub"].as_str()),
        (StatusCode::OK, Some(EMU_DEFAULT_SUB))
    );
    let (status, body) = app.get_json("/test/token").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refusals: Vec<_> = app.emu.refused().into_iter().map(|r| r.error).collect();
    assert_eq!(refusals, vec![Some("invalid_scope".to_owned()); 2]);
}

/// Old code: the session ended too, but the answer said `session_expired`, not the provider's
/// `invalid_grant`.
#[tokio::test]
async fn a_refresh_refused_with_invalid_grant_is_401_with_the_code_and_ends_the_session() {
    let app = start(EmulatorOptions::default()).await;
    app.login().await;
    app.emu.revoke_refresh_tokens(EMU_DEFAULT_SUB);
    // The library's own access-token route (opt-in) answers the same way as the app's.
    let (status, body) = app.get_json("/auth/access-token").await;
    assert_eq!(status, StatusCode::OK, "still valid: no refresh yet: {body}");
    let (status, body) = app.get_json("/test/token?force").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    assert_eq!(
        last_refresh(&app).status,
        403,
        "Auth0 answers invalid_grant with 403"
    );
    // The session is over.
    let (status, _) = app.get_json("/profile").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = app.get_json("/auth/access-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

/// Old code: the per-call scope was sent as given, so the default audience's refreshed token
/// (and any later default call, which picks the smallest matching set) had no `openid`.
/// (`force`: the login's token already covers `openid profile` and would be reused.)
#[tokio::test]
async fn a_per_call_scope_keeps_openid_for_the_login_audience() {
    let app = start(EmulatorOptions::default()).await;
    app.login().await;
    let (status, body) = app.get_json("/test/token?scope=profile&force").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(last_refresh(&app).param("scope"), Some("openid profile"));
    let granted: Vec<&str> = body["scope"].as_str().unwrap().split(' ').collect();
    assert!(
        granted.contains(&"openid") && granted.contains(&"profile"),
        "{body}"
    );
    // A later call without a scope still gets a token with openid.
    let (status, body) = app.get_json("/test/token").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["scope"].as_str().unwrap().split(' ').any(|s| s == "openid"),
        "{body}"
    );
    // Another audience (an API): the scope is sent exactly as given.
    let path = format!("/test/token?audience={}&scope=read:reports", urlencode(API));
    let (status, body) = app.get_json(&path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let sent = last_refresh(&app);
    assert_eq!(
        (sent.param("audience"), sent.param("scope")),
        (Some(API), Some("read:reports"))
    );
    app.assert_nothing_refused();
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn refreshes(rec: &Recorded) -> Vec<(Option<&str>, Option<&str>)> {
    rec.token
        .iter()
        .filter(|t| t.params.get("grant_type").map(String::as_str) == Some("refresh_token"))
        .map(|t| (t.params.get("scope").map(String::as_str), t.error.as_deref()))
        .collect()
}

/// The real IdP (node oidc-provider) through the quickstart's `/token?scope=`: a scope the
/// refresh token lacks is `invalid_scope` → 401 with the code (old code: 502; `openid` is
/// added to the scope sent), the session is kept, and the same request to an IdP that is gone
/// is a 502.
#[tokio::test]
async fn the_test_idp_invalid_scope_is_401_and_an_unreachable_idp_502() {
    let mut app = TestApp::start().await;
    let http = TestApp::browser();
    app.login(&http, "", "alice").await;

    let (status, body) = json_get(&http, &app.url("/token?scope=admin")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_scope", "{body}");
    assert_eq!(
        refreshes(&app.idp.requests().await),
        [(Some("openid admin"), Some("invalid_scope"))]
    );
    let (status, _) = json_get(&http, &app.url("/profile")).await;
    assert_eq!(status, StatusCode::OK, "the session is kept");

    // The IdP goes away (its process is killed): a refresh cannot reach it.
    drop(std::mem::replace(&mut app.idp, TestIdp::start().await));
    let (status, body) = json_get(&http, &app.url("/token?scope=admin")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["error"], "transport_error", "{body}");
}
