//! Auth0 flows end to end through the Axum router (the connected-accounts example app) against
//! the strict Auth0 emulator: user linking and unlinking, Connected Accounts, Token Vault, and
//! callback dispatch. Every test also asserts the emulator refused nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use auth_axum::{AuthOptions, Session};
use auth_core::{AuthorizationParams, ClientAuth, ServerClient, ServerClientBuilder};
use auth_tests::auth0::{EMU_CLIENT_ID, EMU_CLIENT_SECRET, EmulatorOptions};
use auth_tests::emu_app::EmuApp;
use auth_tests::location;
use auth_tests::{jwt_payload, query};
use axum::Router;
use axum::extract::Path;
use axum::response::IntoResponse;
use axum::routing::delete;
use reqwest::StatusCode;
use serde_json::json;
use url::Url;

/// The example app plus one test route for deleting a connected account.
async fn start() -> EmuApp {
    start_with(|b| b, EmulatorOptions::default()).await
}

async fn start_with(
    tweak: impl FnOnce(ServerClientBuilder) -> ServerClientBuilder,
    opts: EmulatorOptions,
) -> EmuApp {
    EmuApp::start_full(tweak, opts, AuthOptions::new(), |_| {
        Router::new().route("/test/accounts/{id}", delete(delete_account))
    })
    .await
}

async fn delete_account(session: Session, Path(id): Path<String>) -> axum::response::Response {
    let (client, mut jar) = session.client_and_jar();
    match client.delete_connected_account(&id, &mut jar).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => auth_axum::AuthError::new(e).into_response(),
    }
}

/// The parameters of a link/unlink authorize request. The emulator offers PAR, so the library
/// pushes them (the session's ID token never rides in the browser URL): the browser URL holds
/// only `client_id` and `request_uri`, and the parameters are the last pushed form.
fn pushed(app: &EmuApp, authorize: &Url) -> BTreeMap<String, String> {
    let q = query(authorize);
    assert_eq!(keys(&q), ["client_id", "request_uri"], "{authorize}");
    let par = app
        .emu
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/oauth/par")
        .expect("the link request was pushed");
    par.form.into_iter().collect()
}

fn keys(q: &BTreeMap<String, String>) -> Vec<&str> {
    q.keys().map(String::as_str).collect()
}

#[tokio::test]
async fn link_and_unlink_round_trips_send_exactly_the_documented_query() {
    let app = start().await;
    app.login().await;
    let (_, profile) = app.get_json("/profile").await;
    assert_eq!(profile["sub"], "auth0|alice");

    // Link with a connection scope.
    let (done, authorize) = app
        .flow("/auth/link?connection=google-oauth2&connectionScope=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcalendar.readonly&returnTo=%2Flinked")
        .await;
    assert_eq!(location(&done), "/linked");
    let q = pushed(&app, &authorize);
    assert_eq!(authorize.path(), "/authorize");
    assert_eq!(
        keys(&q),
        [
            "auth0Client",
            "client_id",
            "code_challenge",
            "code_challenge_method",
            "id_token_hint",
            "nonce",
            "redirect_uri",
            "requested_connection",
            "requested_connection_scope",
            "response_type",
            "scope",
            "state"
        ]
    );
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], EMU_CLIENT_ID);
    assert_eq!(q["redirect_uri"], app.url("/auth/callback"));
    assert_eq!(q["scope"], "openid link_account offline_access");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["requested_connection"], "google-oauth2");
    assert_eq!(
        q["requested_connection_scope"],
        "https://www.googleapis.com/auth/calendar.readonly"
    );
    assert_eq!(
        jwt_payload(&q["id_token_hint"])["sub"],
        "auth0|alice",
        "the session's ID token"
    );
    assert_eq!(
        app.emu.linked_identities("auth0|alice"),
        [(
            "google-oauth2".to_owned(),
            "https://www.googleapis.com/auth/calendar.readonly".to_owned()
        )]
    );
    // The code exchange used the transaction's redirect_uri and verifier.
    let exchange = app
        .emu
        .requests()
        .into_iter()
        .rfind(|r| r.param("grant_type") == Some("authorization_code"))
        .unwrap();
    assert_eq!(
        exchange.param("redirect_uri"),
        Some(app.url("/auth/callback").as_str())
    );
    assert!(exchange.param("code_verifier").is_some());
    assert_eq!(
        app.get_json("/profile").await.0,
        200,
        "the session survives and is updated"
    );

    // Link without a connection scope: the parameter is absent, never "None".
    let (_, authorize) = app.flow("/auth/link?connection=github").await;
    assert!(!pushed(&app, &authorize).contains_key("requested_connection_scope"));

    // Unlink.
    let (done, authorize) = app
        .flow("/auth/unlink?connection=google-oauth2&returnTo=%2Funlinked")
        .await;
    assert_eq!(location(&done), "/unlinked");
    let q = pushed(&app, &authorize);
    assert_eq!(
        keys(&q),
        [
            "auth0Client",
            "client_id",
            "code_challenge",
            "code_challenge_method",
            "id_token_hint",
            "nonce",
            "redirect_uri",
            "requested_connection",
            "response_type",
            "scope",
            "state"
        ]
    );
    assert_eq!(q["scope"], "openid unlink_account offline_access");
    assert_eq!(q["requested_connection"], "google-oauth2");
    assert!(
        !app.emu
            .linked_identities("auth0|alice")
            .iter()
            .any(|(c, _)| c == "google-oauth2")
    );
    app.assert_nothing_refused();
}

#[tokio::test]
async fn link_routes_without_a_session_behave_like_protected_routes() {
    let app = start().await;
    for path in [
        "/auth/link?connection=google-oauth2",
        "/auth/unlink?connection=google-oauth2",
        "/auth/connect?connection=google-oauth2",
    ] {
        let r = app
            .http
            .get(app.url(path))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "{path}");
        assert!(
            location(&r).starts_with("/auth/login?returnTo=%2Fauth%2F"),
            "{}",
            location(&r)
        );
        let r = app
            .http
            .get(app.url(path))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path}");
    }
    // Core level: linking without a session is a typed error before any request.
    let client = ServerClient::builder()
        .domain(app.emu.domain())
        .client_id(EMU_CLIENT_ID)
        .client_auth(ClientAuth::secret(EMU_CLIENT_SECRET))
        .secret("emu-app-cookie-secret-0123456789abcdef012")
        .app_base_url(&app.base)
        .build()
        .unwrap();
    let mut jar = auth_core::cookies::MemoryCookieJar::default();
    let err = client
        .start_link_user(auth_core::LinkOptions::new("google-oauth2"), &mut jar)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "missing_session");
    assert_eq!(app.emu.count("/authorize", None), 0);
}

#[tokio::test]
async fn connect_list_and_delete_a_connected_account() {
    let app = start().await;
    app.login().await;
    let (done, connect_uri) = app
        .flow("/auth/connect?connection=google-oauth2&scopes=openid&scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcalendar.readonly&returnTo=%2Fconnected")
        .await;
    assert_eq!(location(&done), "/connected");
    // The browser went to connect_uri?ticket=…
    assert_eq!(
        connect_uri.as_str().split('?').next(),
        Some(app.emu.url("/connect").as_str())
    );
    assert_eq!(keys(&query(&connect_uri)), ["ticket"]);

    let requests = app.emu.requests();
    let connect = requests
        .iter()
        .find(|r| r.path.ends_with("/connected-accounts/connect"))
        .unwrap();
    let body = connect.json.clone().unwrap();
    let fields: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        [
            "code_challenge",
            "code_challenge_method",
            "connection",
            "redirect_uri",
            "scopes",
            "state"
        ]
    );
    assert_eq!(body["connection"], "google-oauth2");
    assert_eq!(body["redirect_uri"], app.url("/auth/callback"));
    assert_eq!(body["code_challenge_method"], "S256");
    assert_eq!(
        body["scopes"],
        json!(["openid", "https://www.googleapis.com/auth/calendar.readonly"])
    );
    let bearer = connect
        .header("authorization")
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    let claims = jwt_payload(&bearer);
    assert_eq!(claims["aud"], app.emu.my_account_audience());
    assert!(
        claims["scope"]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "create:me:connected_accounts")
    );
    // The My Account token came from the session's refresh token (MRRT).
    let mrrt = requests
        .iter()
        .find(|r| r.param("grant_type") == Some("refresh_token"))
        .unwrap();
    assert_eq!(
        mrrt.param("audience"),
        Some(app.emu.my_account_audience().as_str())
    );

    let complete = requests
        .iter()
        .find(|r| r.path.ends_with("/connected-accounts/complete"))
        .unwrap();
    let body = complete.json.clone().unwrap();
    let fields: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        ["auth_session", "code_verifier", "connect_code", "redirect_uri"]
    );
    assert_eq!(body["redirect_uri"], app.url("/auth/callback"));

    let (status, page) = app.get_json("/connected-accounts").await;
    assert_eq!(status, 200, "{page}");
    let accounts = page["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(accounts[0]["connection"], "google-oauth2");
    let id = accounts[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(app.emu.connected_accounts("auth0|alice").len(), 1);

    let r = app
        .http
        .delete(app.url(&format!("/test/accounts/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(app.emu.connected_accounts("auth0|alice").is_empty());
    let (_, page) = app.get_json("/connected-accounts").await;
    assert_eq!(page["accounts"], json!([]));
    app.assert_nothing_refused();
}

#[tokio::test]
async fn token_vault_is_fetched_once_then_served_from_the_cache_until_it_expires() {
    let app = start_with(
        |b| b.token_refresh_leeway(Duration::ZERO),
        EmulatorOptions {
            access_token_ttl: 3,
            ..EmulatorOptions::default()
        },
    )
    .await;
    app.login().await;
    let (done, _) = app.flow("/auth/connect?connection=google-oauth2").await;
    assert_eq!(done.status(), 302);
    let vault = |app: &EmuApp| app.emu.count("/oauth/token", Some(auth_core::TOKEN_VAULT_GRANT));

    let (s, first) = app.get_json("/connection-token?connection=google-oauth2").await;
    assert_eq!(s, 200, "{first}");
    let (_, again) = app.get_json("/connection-token?connection=google-oauth2").await;
    assert_eq!(again, first, "served from the session cache");
    assert_eq!(vault(&app), 1);

    // With a login_hint: a separate cache entry.
    let (_, hinted) = app
        .get_json("/connection-token?connection=google-oauth2&login_hint=alice%40gmail.com")
        .await;
    assert_ne!(hinted, first);
    let (_, hinted_again) = app
        .get_json("/connection-token?connection=google-oauth2&login_hint=alice%40gmail.com")
        .await;
    assert_eq!(hinted_again, hinted);
    assert_eq!(vault(&app), 2);
    let vault_call = app
        .emu
        .requests()
        .into_iter()
        .rfind(|r| r.param("grant_type") == Some(auth_core::TOKEN_VAULT_GRANT))
        .unwrap();
    assert_eq!(vault_call.param("login_hint"), Some("alice@gmail.com"));
    assert!(vault_call.param("scope").is_none() && vault_call.param("audience").is_none());
    assert_eq!(vault_call.auth_scheme.as_deref(), Some("Basic"));

    // After expiry: fetched again.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let (_, renewed) = app.get_json("/connection-token?connection=google-oauth2").await;
    assert_ne!(renewed, first);
    assert_eq!(vault(&app), 3);
    app.assert_nothing_refused();
}

#[tokio::test]
async fn token_vault_without_a_refresh_token_fails_before_any_request() {
    let app = start_with(
        |b| b.authorization_params(AuthorizationParams::new().scope("openid profile email")),
        EmulatorOptions::default(),
    )
    .await;
    app.login().await;
    let (status, body) = app.get_json("/connection-token?connection=google-oauth2").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"], "missing_refresh_token");
    assert_eq!(
        app.emu.count("/oauth/token", Some(auth_core::TOKEN_VAULT_GRANT)),
        0
    );
    let (status, body) = app.get_json("/connected-accounts").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("missing_refresh_token"))
    );
}

#[tokio::test]
async fn my_account_problem_json_is_a_typed_error() {
    let app = start().await;
    app.login().await;
    let problem = json!({"type": "https://auth0.com/api-errors/A0E-400-0003", "title": "Invalid Request",
        "detail": "connection is not enabled", "status": 400,
        "validation_errors": [{"detail": "unknown", "field": "connection"}]});
    app.emu.fail_next_my_account(400, problem.clone());
    let (status, body) = app.get_json("/connected-accounts").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "my_account_error");
    assert!(
        !body.to_string().contains("connection is not enabled"),
        "provider text is not echoed: {body}"
    );

    // Core level: the problem's fields are kept.
    let client = ServerClient::builder()
        .domain(app.emu.domain())
        .client_id(EMU_CLIENT_ID)
        .client_auth(ClientAuth::secret(EMU_CLIENT_SECRET))
        .secret("emu-app-cookie-secret-0123456789abcdef012")
        .app_base_url(&app.base)
        .build()
        .unwrap();
    let mut jar = auth_core::cookies::MemoryCookieJar::default();
    let login = client
        .start_interactive_login(auth_core::LoginOptions::new(), &mut jar)
        .await
        .unwrap();
    let callback = app.through_emulator_without_cookies(login.as_str()).await;
    let mut jar = jar.next_request();
    client
        .complete_interactive_login(callback.as_str(), &mut jar)
        .await
        .unwrap();
    app.emu.fail_next_my_account(
        403,
        json!({"type": "about:blank", "title": "Forbidden", "detail": "no", "status": 403}),
    );
    let err = client
        .list_connected_accounts(auth_core::ListOptions::new(), &mut jar)
        .await
        .unwrap_err();
    let auth_core::Error::MyAccount(p) = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (p.status, p.title.as_deref(), p.detail.as_deref()),
        (403, Some("Forbidden"), Some("no"))
    );
    app.emu.fail_next_my_account(400, problem);
    let err = client
        .start_connect_account(auth_core::ConnectAccountOptions::new("google-oauth2"), &mut jar)
        .await
        .unwrap_err();
    let auth_core::Error::MyAccount(p) = err else {
        panic!("{err:?}")
    };
    assert_eq!(p.validation_errors.unwrap()[0]["field"], "connection");
    assert!(
        jar.response_cookies()
            .iter()
            .all(|c| !c.name.starts_with("_a0_tx_") || c.removed),
        "no transaction left"
    );
}

#[tokio::test]
async fn callback_dispatch_never_confuses_login_link_and_connect() {
    let app = start().await;
    app.login().await;

    // A connect transaction answered with a login-style `code`: refused, transaction gone.
    let r = app
        .http
        .get(app.url("/auth/connect?connection=google-oauth2"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let connect_uri = Url::parse(&location(&r)).unwrap();
    let real = app.through_emulator(connect_uri.as_str()).await;
    let state = query(&real)["state"].clone();
    let forged = format!("{}?code=abc&state={state}", app.url("/auth/callback"));
    let (s, body) = app.get_json(&forged.replace(&app.base, "")).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_callback")),
        "{body}"
    );
    let (s, body) = app.get_json(&real.as_str().replace(&app.base, "")).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("missing_transaction")),
        "deleted on error"
    );

    // A login transaction answered with `connect_code`: refused.
    let r = app.http.get(app.url("/auth/login")).send().await.unwrap();
    let authorize = Url::parse(&location(&r)).unwrap();
    let state = query(&authorize)["state"].clone();
    let (s, body) = app
        .get_json(&format!("/auth/callback?connect_code=abc&state={state}"))
        .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_callback")),
        "{body}"
    );

    // Both `code` and `connect_code`: refused.
    let r = app.http.get(app.url("/auth/login")).send().await.unwrap();
    let state = query(location(&r))["state"].clone();
    let (s, _) = app
        .get_json(&format!("/auth/callback?code=a&connect_code=b&state={state}"))
        .await;
    assert_eq!(s, 400);

    // Core level: a link callback handed to complete_interactive_login is refused.
    let r = app
        .http
        .get(app.url("/auth/link?connection=github"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    let link_authorize = Url::parse(&location(&r)).unwrap();
    assert_eq!(
        pushed(&app, &link_authorize)["scope"],
        "openid link_account offline_access"
    );
    // Real completions still work afterwards and the session is intact.
    let (done, _) = app
        .flow("/auth/connect?connection=google-oauth2&returnTo=%2Fok")
        .await;
    assert_eq!(location(&done), "/ok");
    assert_eq!(app.get_json("/profile").await.0, 200);
}

#[tokio::test]
async fn core_complete_methods_refuse_callbacks_of_other_flows() {
    let app = start().await;
    let client = ServerClient::builder()
        .domain(app.emu.domain())
        .client_id(EMU_CLIENT_ID)
        .client_auth(ClientAuth::secret(EMU_CLIENT_SECRET))
        .secret("emu-app-cookie-secret-0123456789abcdef012")
        .app_base_url(&app.base)
        .build()
        .unwrap();
    let mut jar = auth_core::cookies::MemoryCookieJar::default();
    let login = client
        .start_interactive_login(auth_core::LoginOptions::new(), &mut jar)
        .await
        .unwrap();
    let callback = app.through_emulator_without_cookies(login.as_str()).await;
    let mut jar = jar.next_request();
    // A login callback is not a link callback.
    let err = client
        .complete_link_user(callback.as_str(), &mut jar.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_callback");
    client
        .complete_interactive_login(callback.as_str(), &mut jar)
        .await
        .unwrap();

    let mut jar = jar.next_request();
    let link = client
        .start_link_user(auth_core::LinkOptions::new("github"), &mut jar)
        .await
        .unwrap();
    let link_callback = app.through_emulator_without_cookies(link.as_str()).await;
    let mut jar = jar.next_request();
    for wrong in [
        client
            .complete_interactive_login(link_callback.as_str(), &mut jar.clone())
            .await
            .map(|_| ()),
        client
            .complete_unlink_user(link_callback.as_str(), &mut jar.clone())
            .await
            .map(|_| ()),
        client
            .complete_connect_account(link_callback.as_str(), &mut jar.clone())
            .await
            .map(|_| ()),
    ] {
        assert_eq!(wrong.unwrap_err().code(), "invalid_callback");
    }
    let done = client
        .complete_link_user(link_callback.as_str(), &mut jar)
        .await
        .unwrap();
    assert!(done.app_state.is_none());
    assert_eq!(app.emu.linked_identities("auth0|alice").len(), 1);
    app.assert_nothing_refused();
}
