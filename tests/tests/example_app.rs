//! The dashboard example (`auth_examples::app`, issue 12 item 8) over HTTP against the real
//! test IdP, with cookie sessions and with Redis sessions (its `SESSION_STORE` switch): the
//! nine everyday tasks with the library's own routes under `/account`, its hooks, app data in
//! the session, its own pages; and its handlers tested without a provider (`test-util`).

use std::collections::HashMap;

use auth_axum::test_util::TestSession;
use auth_examples::app;
use auth_tests::redis::TestRedis;
use auth_tests::{
    APP_SECRET, CONF_BASIC_ID, CONF_BASIC_SECRET, LoopbackApp, TestIdp, json_get, location,
    loopback_with_idp, query,
};
use axum::body::Body;
use axum::http::Request;
use axum::http::header::{ACCEPT, COOKIE};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const HTML: &str = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8";

/// The example on a loopback listener, configured through its variables, with its provider.
async fn start(extra: &[(&str, &str)]) -> LoopbackApp {
    let (listener, base, idp) = loopback_with_idp("/account/callback", "/goodbye").await;
    let mut vars: HashMap<String, String> = [
        ("OIDC_ISSUER", idp.issuer()),
        ("AUTH0_CLIENT_ID", CONF_BASIC_ID),
        ("AUTH0_CLIENT_SECRET", CONF_BASIC_SECRET),
        ("AUTH0_SECRET", APP_SECRET),
        ("APP_BASE_URL", base.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    vars.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let lookup = |name: &str| vars.get(name).cloned();
    let auth = app::auth_with(lookup).await.expect("the example's configuration");
    let router = app::app(&auth, app::Settings::with(lookup));
    LoopbackApp::serve(listener, base, idp, router)
}

/// `GET path` as an API client: the status and the JSON body.
async fn api(app: &LoopbackApp, http: &reqwest::Client, path: &str) -> (StatusCode, Value) {
    json_get(http, &app.url(path)).await
}

/// Tasks 1–4, 6 and 8 on one store: routes under `/account`, the home page's name, a page,
/// an API and an admin page, app data kept in the session and changed by a handler, logout
/// to a page.
async fn everyday_tasks(extra: &[(&str, &str)]) {
    let app = start(extra).await;
    let http = TestIdp::browser();

    // Not logged in: the page redirects to the library's login under /account, the API
    // answers 401 JSON, the home page offers log-in and sign-up links.
    let page = app.get(&http, "/dashboard", HTML).await;
    assert_eq!(page.status(), 302);
    assert_eq!(location(&page), "/account/login?returnTo=%2Fdashboard");
    let (status, body) = api(&app, &http, "/api/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "unauthorized");
    let home = app.get(&http, "/", HTML).await.text().await.unwrap();
    assert!(home.contains("id=\"login\" href=\"/account/login\""), "{home}");

    // The login goes through /account/callback (the provider knows no other URL).
    let done = app.login(&http, "/dashboard", "alice").await;
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), "/dashboard");

    // The home page greets the user by name (typed claims).
    let home = app.get(&http, "/", HTML).await.text().await.unwrap();
    assert!(
        home.contains("Hello, <strong id=\"user-name\">Test User alice</strong>"),
        "{home}"
    );

    // App data: the login hook started the visit count at 0; each dashboard view counts.
    for visit in 1..=2 {
        let page = app.get(&http, "/dashboard", HTML).await.text().await.unwrap();
        assert!(
            page.contains(&format!("<span id=\"visits\">{visit}</span>")),
            "{page}"
        );
    }
    let theme = http
        .post(app.url("/dashboard/theme"))
        .form(&[("theme", "dark")])
        .send()
        .await
        .unwrap();
    assert_eq!(theme.status(), StatusCode::SEE_OTHER);
    let bad = http
        .post(app.url("/dashboard/theme"))
        .form(&[("theme", "<script>")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    let (status, me) = api(&app, &http, "/api/me").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me,
        json!({"sub": "alice", "name": "Test User alice", "email": "alice@example.test", "theme": "dark", "visits": 2})
    );

    // The login hook kept only the claims the app reads.
    let (_, claims) = api(&app, &http, "/account/profile").await;
    assert_eq!(claims["sub"], "alice");
    assert!(
        claims.get("nickname").is_none() && claims.get("email_verified").is_none(),
        "{claims}"
    );

    // The admin page: alice has no admin role; browsers get the app's page, APIs JSON.
    let admin = app.get(&http, "/admin", HTML).await;
    assert_eq!(admin.status(), StatusCode::FORBIDDEN);
    assert!(admin.text().await.unwrap().contains("id=\"forbidden\""));
    let (status, body) = api(&app, &http, "/admin").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );

    // Logout lands on the app's goodbye page; the session is gone.
    let out = app.get(&http, "/account/logout?returnTo=%2Fgoodbye", HTML).await;
    assert_eq!(out.status(), 302);
    let end_session = location(&out);
    assert_eq!(
        query(&end_session)["post_logout_redirect_uri"],
        app.url("/goodbye")
    );
    let landed = app.idp.end_session(&http, &end_session).await;
    assert_eq!(landed.as_str(), app.url("/goodbye"));
    let bye = http
        .get(landed.as_str())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(bye.contains("id=\"goodbye\""), "{bye}");
    let (status, _) = api(&app, &http, "/api/me").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_everyday_tasks_with_cookie_sessions() {
    everyday_tasks(&[]).await;
}

#[tokio::test]
async fn the_everyday_tasks_with_redis_sessions() {
    let redis = TestRedis::start().await;
    everyday_tasks(&[("SESSION_STORE", "redis"), ("REDIS_URL", redis.url())]).await;
}

#[tokio::test]
async fn an_unknown_session_store_is_a_start_up_error() {
    let Err(e) = app::auth_with(|name| match name {
        "OIDC_ISSUER" => Some("https://idp.example.com/".into()),
        "AUTH0_CLIENT_ID" => Some("c".into()),
        "AUTH0_SECRET" => Some(APP_SECRET.into()),
        "APP_BASE_URL" => Some("http://localhost:3000".into()),
        "SESSION_STORE" => Some("memcached".into()),
        _ => None,
    })
    .await
    else {
        panic!("memcached is not a store the example knows");
    };
    assert!(e.contains("SESSION_STORE") && e.contains("redis"), "{e}");
}

/// Task 6: sign-up with a language, forwarded by the library's login route.
#[tokio::test]
async fn signup_asks_the_provider_for_the_signup_screen_in_the_users_language() {
    let app = start(&[]).await;
    let http = TestIdp::browser();
    let to_login = app.get(&http, "/signup?lang=fr", HTML).await;
    let login = location(&to_login);
    assert!(login.starts_with("/account/login?"), "{login}");
    let to_idp = app.get(&http, &login, HTML).await;
    let authorize = query(location(&to_idp));
    assert_eq!(authorize["screen_hint"], "signup");
    assert_eq!(authorize["ui_locales"], "fr");
    assert_eq!(authorize["redirect_uri"], app.url("/account/callback"));
}

/// Task 7: a failed login shows the app's own page, not the library's.
#[tokio::test]
async fn a_failed_login_shows_the_apps_error_page() {
    let app = start(&[]).await;
    let http = TestIdp::browser();
    let r = app
        .get(&http, "/account/callback?code=abc&state=not-ours", HTML)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert!(page.contains("id=\"login-error\""), "{page}");
    let r = app
        .get(&http, "/account/callback?error=access_denied&state=x", HTML)
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("id=\"login-error\""));
}

/// Task 5: a token for one API; when the provider refuses the refresh, `401` with its code
/// and the login link that asks for that API, and the session stays.
#[tokio::test]
async fn the_orders_api_asks_for_a_new_login_when_the_refresh_is_refused() {
    // The test IdP never granted `read:orders`: the refresh is refused with invalid_scope.
    let app = start(&[
        ("API_AUDIENCE", "https://api.example.test/"),
        ("API_SCOPE", "read:orders"),
    ])
    .await;
    let http = TestIdp::browser();
    app.login(&http, "/dashboard", "bob").await;
    let (status, body) = api(&app, &http, "/api/orders").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_scope", "{body}");
    let login = body["login"].as_str().unwrap();
    assert!(login.starts_with("/account/login?"), "{login}");
    assert_eq!(query(app.url(login))["audience"], "https://api.example.test/");
    // The library's login forwards the audience (opt-in in this app) to the provider.
    let to_idp = app.get(&http, login, HTML).await;
    assert_eq!(query(location(&to_idp))["audience"], "https://api.example.test/");
    let (status, _) = api(&app, &http, "/api/me").await;
    assert_eq!(status, StatusCode::OK, "the session is kept");
}

/// Task 9: the example's handlers tested without a provider, through `test-util`.
#[tokio::test]
async fn the_handlers_are_testable_without_a_provider() {
    let client = auth_core::ServerClient::builder()
        .issuer("https://idp.example.com/")
        .client_id("test-client")
        .client_auth(auth_core::ClientAuth::none())
        .secret(APP_SECRET)
        .app_base_url("http://localhost:3000")
        .build()
        .unwrap();
    let auth = auth_axum::AuthState::new(client, app::options()).unwrap();
    let router = app::app(&auth, app::Settings::with(|_| None));
    let get = |path: &str, cookie: Option<axum::http::HeaderValue>, accept: &str| {
        let mut req = Request::get(path).header(ACCEPT, accept);
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        router.clone().oneshot(req.body(Body::empty()).unwrap())
    };

    let admin = TestSession::new()
        .claims(json!({"sub": "auth0|7", "name": "Ada", "roles": ["admin"]}))
        .app_data("theme", "dark")
        .cookie_header(&auth)
        .await
        .unwrap();
    let r = get("/admin", Some(admin.clone()), HTML).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = get("/api/me", Some(admin), "application/json").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let me: Value =
        serde_json::from_slice(&axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap()).unwrap();
    assert_eq!(
        (me["name"].as_str(), me["theme"].as_str()),
        (Some("Ada"), Some("dark"))
    );

    let user = TestSession::new()
        .claims(json!({"sub": "auth0|8", "name": "Bo"}))
        .cookie_header(&auth)
        .await
        .unwrap();
    let r = get("/admin", Some(user), HTML).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = get("/api/me", None, "application/json").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
