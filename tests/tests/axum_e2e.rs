//! The Axum integration end to end: the real router on a real listener, driven by HTTP clients
//! that do not follow redirects, against the real test IdP.
//!
//! Covers `/auth/profile`, `returnTo` handling (including a table of open-redirect attempts on
//! login and logout), the login hint allow-list, logout (cookie clearing and the provider's
//! end-session URL), `RequireAuth` (negotiation, modes, predicates), `Option<Session>` and
//! `Unauthenticated::RedirectToLogin`, broken session cookies, callback errors, the
//! back-channel logout route's refusals and cookie attributes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use auth_axum::{AuthOptions, AuthState, RequireAuth, Session, Unauthenticated};
use auth_core::cookies::MemoryCookieJar;
use auth_tests::*;
use axum::routing::get;
use axum::{Json, Router};
use cookie::{Cookie, SameSite};
use reqwest::cookie::{CookieStore as _, Jar};
use reqwest::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_TYPE, COOKIE, HeaderValue, SET_COOKIE, WWW_AUTHENTICATE,
};
use serde_json::Value;
use url::Url;

const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
const JSON: &str = "application/json";

/// A user id long enough that its session spans several cookie chunks: the id appears in
/// `sub`, `name`, `nickname` and `email`, both in the user claims and in the ID token.
fn big_user() -> String {
    format!("big{}", "u".repeat(600))
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Every `Set-Cookie` of a response, parsed.
fn set_cookies(resp: &reqwest::Response) -> Vec<Cookie<'static>> {
    resp.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| {
            let s = v.to_str().expect("ASCII Set-Cookie").to_owned();
            Cookie::parse(s).expect("well-formed Set-Cookie")
        })
        .collect()
}

/// Whether a `Set-Cookie` deletes its cookie.
fn is_removal(c: &Cookie<'_>) -> bool {
    c.max_age() == Some(cookie::time::Duration::ZERO)
}

/// The `_a0_session_N` cookies a response sets (not removals), ordered by index.
fn session_chunks(resp: &reqwest::Response) -> Vec<(String, String)> {
    let mut chunks: Vec<(usize, String, String)> = set_cookies(resp)
        .iter()
        .filter(|c| !is_removal(c))
        .filter_map(|c| {
            let index = c.name().strip_prefix("_a0_session_")?.parse().ok()?;
            Some((index, c.name().to_owned(), c.value().to_owned()))
        })
        .collect();
    chunks.sort();
    chunks.into_iter().map(|(_, n, v)| (n, v)).collect()
}

/// `name=value; name=value`.
fn cookie_header(cookies: &[(String, String)]) -> String {
    cookies
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A client without a cookie store (cookies are sent by hand) that follows no redirects.
fn plain_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// Like [`TestApp::browser`], with the cookie jar visible to the test.
fn jar_browser() -> (reqwest::Client, Arc<Jar>) {
    let jar = Arc::new(Jar::default());
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client");
    (http, jar)
}

/// The cookies `jar` would send to `base`, as `(name, value)`.
fn held_cookies(jar: &Jar, base: &str) -> Vec<(String, String)> {
    let url = Url::parse(base).expect("base URL");
    jar.cookies(&url)
        .map(|h| {
            h.to_str()
                .expect("ASCII cookies")
                .split("; ")
                .filter_map(|p| p.split_once('='))
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<&str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

fn assert_no_store(resp: &reqwest::Response, what: &str) {
    assert_eq!(
        header(resp, CACHE_CONTROL),
        Some("no-store"),
        "{what}: Cache-Control"
    );
}

/// `GET base+path` with an `Accept` header.
async fn get_accept(http: &reqwest::Client, url: &str, accept: &str) -> reqwest::Response {
    http.get(url)
        .header(ACCEPT, accept)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Asserts a `401` JSON `unauthorized` answer with `WWW-Authenticate` and `no-store`.
async fn assert_401_json(resp: reqwest::Response, what: &str) {
    assert_eq!(resp.status(), 401, "{what}");
    assert!(
        header(&resp, WWW_AUTHENTICATE).is_some(),
        "{what}: WWW-Authenticate"
    );
    assert_no_store(&resp, what);
    assert!(
        header(&resp, CONTENT_TYPE).is_some_and(|c| c.starts_with(JSON)),
        "{what}: JSON content type"
    );
    let body: Value = resp.json().await.expect("JSON 401 body");
    assert_eq!(body["error"], "unauthorized", "{what}: {body}");
}

/// Asserts the `401` HTML page a browser gets (issue 12: negotiated like the other errors),
/// with `WWW-Authenticate` and `no-store`.
async fn assert_401_html(resp: reqwest::Response, what: &str) {
    assert_eq!(resp.status(), 401, "{what}");
    assert!(
        header(&resp, WWW_AUTHENTICATE).is_some(),
        "{what}: WWW-Authenticate"
    );
    assert_no_store(&resp, what);
    assert!(
        header(&resp, CONTENT_TYPE).is_some_and(|c| c.starts_with("text/html")),
        "{what}: HTML content type"
    );
    let page = resp.text().await.unwrap();
    assert!(page.contains("<code>unauthorized</code>"), "{what}: {page}");
}

/// The login query `returnTo=<value>`, properly encoded.
fn return_to_query(value: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("returnTo", value)
        .finish()
}

/// Strings that must never become a redirect target.
fn open_redirect_attacks() -> Vec<String> {
    let mut attacks: Vec<String> = [
        "https://evil.example/",
        "http://evil.example",
        "//evil.example",
        "///evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/\\/evil.example",
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "evil.example",
        "/%2F%2Fevil.example",
        "%2F%2Fevil.example",
        "/%5Cevil.example",
        "/%255Cevil.example",
        "/%09/evil.example",
        "https:evil.example",
        "/\t/evil",
        "\t//evil.example",
        " //evil.example",
        "/foo%0d%0aSet-Cookie:%20x=1",
        "/foo\r\nSet-Cookie: x=1",
        "/%252F%252Fevil.example",
        "@evil.example",
        "/foo\u{2028}bar",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    attacks.push(format!("/{}", "a".repeat(4000)));
    attacks
}

/// Dot segments that collapse into a scheme-relative `//host` path once resolved.
fn dot_segment_attacks() -> Vec<&'static str> {
    vec![
        "/.//evil.example",
        "/a/..//evil.example",
        "/a/../..//evil.example",
        "/%2e%2e//evil.example",
    ]
}

/// A handler that needs a session: the user's claims.
async fn claims(session: Session) -> Json<Value> {
    Json(Value::Object(session.user().clone()))
}

/// Routes behind every kind of `RequireAuth`.
fn guarded_router(auth: &AuthState) -> Router {
    let admin = Router::new().route("/admin", get(claims)).route_layer(
        RequireAuth::new()
            .with_predicate(|u| u.get("email").and_then(|e| e.as_str()) == Some("admin@example.test")),
    );
    let api = Router::new()
        .route("/api", get(claims))
        .route_layer(RequireAuth::api());
    let page = Router::new()
        .route("/page", get(claims))
        .route_layer(RequireAuth::login());
    let nested = Router::new()
        .route("/inner", get(claims))
        .route_layer(RequireAuth::new());
    Router::new()
        .merge(admin)
        .merge(api)
        .merge(page)
        .nest("/nested", nested)
        .merge(auth.router())
        .layer(auth.layer())
}

/// `Session` handlers without `RequireAuth`.
fn session_router(auth: &AuthState) -> Router {
    Router::new()
        .route("/me", get(claims))
        .nest("/nested", Router::new().route("/me", get(claims)))
        .merge(auth.router())
        .layer(auth.layer())
}

// ---------------------------------------------------------------------------------------------
// 1. /auth/profile
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn auth_profile_returns_claims_when_logged_in_and_401_otherwise() {
    let app = TestApp::start().await;

    let anonymous = TestApp::browser();
    let resp = get_accept(&anonymous, &app.url("/auth/profile"), JSON).await;
    assert_401_json(resp, "/auth/profile without a session").await;
    // Even a browser navigation gets 401 here (it is an API route).
    let resp = get_accept(&anonymous, &app.url("/auth/profile"), HTML).await;
    assert_eq!(resp.status(), 401);

    let http = TestApp::browser();
    let done = app.login(&http, "", "alice").await;
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), "/");

    let resp = get_accept(&http, &app.url("/auth/profile"), JSON).await;
    assert_eq!(resp.status(), 200);
    assert_no_store(&resp, "/auth/profile");
    assert!(header(&resp, CONTENT_TYPE).is_some_and(|c| c.starts_with(JSON)));
    let profile: Value = resp.json().await.unwrap();
    assert_eq!(profile["sub"], "alice");
    assert_eq!(profile["name"], "Test User alice");
    assert_eq!(profile["nickname"], "alice");
    assert_eq!(profile["email"], "alice@example.test");
    assert_eq!(profile["email_verified"], true);
    for protocol in ["nonce", "aud", "exp", "iat", "at_hash", "azp", "auth_time"] {
        assert!(
            profile.get(protocol).is_none(),
            "{protocol} leaked into the profile: {profile}"
        );
    }

    // The quickstart's protected /profile agrees.
    let quick: Value = get_accept(&http, &app.url("/profile"), JSON)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(quick["sub"], "alice");
}

// ---------------------------------------------------------------------------------------------
// 2. returnTo
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn login_honours_a_relative_return_to() {
    let app = TestApp::start().await;
    let http = TestApp::browser();
    let done = app
        .login(&http, &return_to_query("/some/path?x=1"), "alice")
        .await;
    assert_eq!(done.status(), 302);
    assert_eq!(location(&done), "/some/path?x=1");
    assert_no_store(&done, "callback redirect");

    // Without returnTo: the default.
    let http = TestApp::browser();
    let done = app.login(&http, "", "alice").await;
    assert_eq!(location(&done), "/");
}

async fn assert_login_lands_on_default(app: &TestApp, attack: &str) {
    let http = TestApp::browser();
    let done = app.login(&http, &return_to_query(attack), "alice").await;
    assert_eq!(done.status(), 302, "returnTo={attack:?}");
    assert_eq!(location(&done), "/", "returnTo={attack:?} must fall back to /");
    // And the login did happen.
    let profile = get_accept(&http, &app.url("/auth/profile"), JSON).await;
    assert_eq!(profile.status(), 200, "returnTo={attack:?}");
}

#[tokio::test]
async fn login_refuses_open_redirects_in_return_to() {
    let app = TestApp::start().await;
    for attack in open_redirect_attacks() {
        assert_login_lands_on_default(&app, &attack).await;
    }
}

/// `sanitize` turns these into `//evil.example` at login too, but the callback sanitizes the
/// stored value again and lands on the default: this guards that second check.
#[tokio::test]
async fn login_refuses_dot_segment_open_redirects() {
    let app = TestApp::start().await;
    for attack in dot_segment_attacks() {
        assert_login_lands_on_default(&app, attack).await;
    }
}

async fn logout_redirect_for(app: &TestApp, return_to: &str) -> Url {
    let http = TestApp::browser();
    let url = app.url(&format!("/auth/logout?{}", return_to_query(return_to)));
    let resp = http.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 302, "logout returnTo={return_to:?}");
    let target = Url::parse(&location(&resp)).expect("absolute end-session URL");
    let end_session = Url::parse(app.idp.end_session_endpoint()).unwrap();
    assert_eq!(
        (target.origin(), target.path()),
        (end_session.origin(), end_session.path()),
        "logout returnTo={return_to:?} goes to the IdP's end_session_endpoint"
    );
    target
}

#[tokio::test]
async fn logout_refuses_open_redirects_in_return_to() {
    let app = TestApp::start().await;
    let default = format!("{}/", app.base);

    // A legitimate path is honoured, as an absolute URL on the app.
    let ok = logout_redirect_for(&app, "/some/path?x=1").await;
    assert_eq!(
        query(&ok).get("post_logout_redirect_uri").map(String::as_str),
        Some(format!("{}/some/path?x=1", app.base).as_str())
    );

    for attack in open_redirect_attacks() {
        let target = logout_redirect_for(&app, &attack).await;
        let q = query(&target);
        assert_eq!(
            q.get("post_logout_redirect_uri"),
            Some(&default),
            "logout returnTo={attack:?}"
        );
        assert_eq!(q.get("client_id").map(String::as_str), Some(CONF_BASIC_ID));
    }

    // Duplicated returnTo on logout: never the attacker's value, still a logout.
    let http = TestApp::browser();
    let resp = http
        .get(app.url("/auth/logout?returnTo=%2Fa&returnTo=https%3A%2F%2Fevil.example%2F"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let target = Url::parse(&location(&resp)).unwrap();
    assert_eq!(query(&target).get("post_logout_redirect_uri"), Some(&default));
}

#[tokio::test]
async fn logout_refuses_dot_segment_open_redirects() {
    let app = TestApp::start().await;
    let default = format!("{}/", app.base);
    let mut failures = Vec::new();
    for attack in dot_segment_attacks() {
        let target = logout_redirect_for(&app, attack).await;
        let got = query(&target).remove("post_logout_redirect_uri");
        if got.as_ref() != Some(&default) {
            failures.push(format!("returnTo={attack:?} -> post_logout_redirect_uri={got:?}"));
        }
    }
    assert!(failures.is_empty(), "open redirects:\n{}", failures.join("\n"));
}

#[tokio::test]
async fn duplicated_return_to_on_login_is_a_400() {
    let app = TestApp::start().await;
    let http = TestApp::browser();
    let resp = get_accept(&http, &app.url("/auth/login?returnTo=%2Fa&returnTo=%2Fb"), JSON).await;
    assert_eq!(resp.status(), 400);
    assert!(
        set_cookies(&resp)
            .iter()
            .all(|c| !c.name().starts_with("_a0_tx_")),
        "no transaction is started"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_parameter", "{body}");

    // Another duplicated parameter is refused the same way; one of each is fine.
    let resp = get_accept(&http, &app.url("/auth/login?prompt=login&prompt=none"), JSON).await;
    assert_eq!(resp.status(), 400);
    let resp = get_accept(&http, &app.url("/auth/login?returnTo=%2Fa&prompt=login"), JSON).await;
    assert_eq!(resp.status(), 302);
}

// ---------------------------------------------------------------------------------------------
// 3. Login hints
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn login_forwards_exactly_the_allowed_hints() {
    let app = TestApp::start().await;
    let http = TestApp::browser();

    // Baseline: a plain login's authorization request.
    let resp = http.get(app.url("/auth/login")).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    http.get(location(&resp)).send().await.unwrap();

    let hints = "login_hint=x&screen_hint=signup&prompt=login&organization=o&invitation=i\
                 &connection=c&foo=bar&scope=admin&client_id=evil";
    let resp = http
        .get(app.url(&format!("/auth/login?{hints}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let authorize = Url::parse(&location(&resp)).unwrap();
    assert!(!query(&authorize).contains_key("foo"));
    http.get(authorize.as_str()).send().await.unwrap();

    let recorded = app.idp.requests().await.authorize;
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    let (baseline, hinted) = (&recorded[0], &recorded[1]);

    let expected = [
        ("login_hint", "x"),
        ("screen_hint", "signup"),
        ("prompt", "login"),
        ("organization", "o"),
        ("invitation", "i"),
        ("connection", "c"),
    ];
    for (name, value) in expected {
        assert_eq!(
            hinted.get(name).map(String::as_str),
            Some(value),
            "{name}: {hinted:?}"
        );
        assert!(!baseline.contains_key(name), "baseline has no {name}");
    }
    let base_keys: BTreeSet<&String> = baseline.keys().collect();
    let added: BTreeSet<&str> = hinted
        .keys()
        .filter(|k| !base_keys.contains(k))
        .map(String::as_str)
        .collect();
    let expected_names: BTreeSet<&str> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(added, expected_names, "exactly the six hints are added");
    assert!(!hinted.contains_key("foo"));
    assert_eq!(hinted.get("scope"), baseline.get("scope"));
    assert_ne!(hinted.get("scope").map(String::as_str), Some("admin"));
    assert_eq!(hinted.get("client_id").map(String::as_str), Some(CONF_BASIC_ID));
    assert_eq!(
        hinted.get("redirect_uri").map(String::as_str),
        Some(app.url("/auth/callback").as_str())
    );

    // A hint with a control character is refused.
    let resp = get_accept(&http, &app.url("/auth/login?login_hint=a%0Ab"), JSON).await;
    assert_eq!(resp.status(), 400);
}

// ---------------------------------------------------------------------------------------------
// 4. Logout
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn logout_clears_every_cookie_and_the_idp_accepts_the_end_session_request() {
    let app = TestApp::start().await;
    let (http, jar) = jar_browser();
    let user = big_user();

    let done = app.login(&http, "", &user).await;
    assert_eq!(done.status(), 302);
    // Two logins started and abandoned: two transaction cookies.
    for _ in 0..2 {
        let resp = http.get(app.url("/auth/login")).send().await.unwrap();
        assert_eq!(resp.status(), 302);
    }

    let held = held_cookies(&jar, &app.base);
    let ours: Vec<&(String, String)> = held.iter().filter(|(n, _)| n.starts_with("_a0_")).collect();
    let chunks: Vec<&str> = ours
        .iter()
        .filter(|(n, _)| n.starts_with("_a0_session_"))
        .map(|(n, _)| n.as_str())
        .collect();
    let txs: Vec<&str> = ours
        .iter()
        .filter(|(n, _)| n.starts_with("_a0_tx_"))
        .map(|(n, _)| n.as_str())
        .collect();
    assert!(chunks.len() >= 2, "a session of several chunks: {chunks:?}");
    assert_eq!(txs.len(), 2, "two logins in flight: {txs:?}");

    // The session's ID token, as the library reads it from these cookies.
    let session = app
        .auth
        .client()
        .get_session(&mut MemoryCookieJar::from_cookie_header(&cookie_header(&held)))
        .await
        .unwrap()
        .expect("the browser's cookies hold a session");
    let id_token = session.id_token().expect("an ID token").to_owned();

    let resp = http.get(app.url("/auth/logout")).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    assert_no_store(&resp, "logout");
    let target = Url::parse(&location(&resp)).unwrap();
    let end_session = Url::parse(
        app.idp.discovery()["end_session_endpoint"]
            .as_str()
            .expect("end_session_endpoint"),
    )
    .unwrap();
    assert_eq!(
        (target.origin(), target.path()),
        (end_session.origin(), end_session.path())
    );
    let q = query(&target);
    let hint = q.get("id_token_hint").expect("id_token_hint");
    assert_eq!(hint, &id_token);
    assert_eq!(jwt_payload(hint)["sub"], user.as_str());
    assert_eq!(q.get("post_logout_redirect_uri"), Some(&format!("{}/", app.base)));
    assert_eq!(q.get("client_id").map(String::as_str), Some(CONF_BASIC_ID));

    // Every one of our cookies the browser held is expired, with the attributes it was set with.
    let written = set_cookies(&resp);
    for (name, _) in &ours {
        let c = written
            .iter()
            .find(|c| c.name() == name)
            .unwrap_or_else(|| panic!("logout does not expire {name}: {written:?}"));
        assert!(is_removal(c), "{name} expired with Max-Age=0: {c}");
        assert_eq!(c.value(), "", "{name}");
        assert_eq!(c.path(), Some("/"), "{name}");
    }
    assert!(
        written.iter().all(is_removal),
        "logout only deletes cookies: {written:?}"
    );
    let left: Vec<_> = held_cookies(&jar, &app.base)
        .into_iter()
        .filter(|(n, _)| n.starts_with("_a0_"))
        .collect();
    assert!(left.is_empty(), "browser still holds {left:?}");

    // Logged out everywhere in the app.
    let resp = get_accept(&http, &app.url("/profile"), JSON).await;
    assert_eq!(resp.status(), 401);
    let resp = get_accept(&http, &app.url("/profile"), HTML).await;
    assert_eq!(resp.status(), 302);
    assert_401_json(
        get_accept(&http, &app.url("/auth/profile"), JSON).await,
        "/auth/profile after logout",
    )
    .await;
    let home = http.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("You are not logged in"), "{home}");

    // The provider accepts the end-session request: a confirmation page, not an error.
    let resp = get_accept(&http, target.as_str(), HTML).await;
    let status = resp.status();
    let final_location = if status.is_redirection() {
        location(&resp)
    } else {
        assert_eq!(status, 200, "IdP end_session answered {status}");
        let body = resp.text().await.unwrap();
        assert!(
            !body.to_ascii_lowercase().contains("went wrong"),
            "IdP error page: {body}"
        );
        let (action, xsrf) = logout_form(&body);
        let action = target.join(&action).unwrap();
        let resp = http
            .post(action)
            .form(&[("xsrf", xsrf.as_str()), ("logout", "yes")])
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_redirection(), "confirm: {}", resp.status());
        location(&resp)
    };
    let back = Url::parse(&final_location).unwrap();
    assert_eq!(
        back.as_str(),
        format!("{}/", app.base),
        "the IdP sends the user back"
    );

    let recorded = app.idp.requests().await.end_session;
    let first = recorded.first().expect("the IdP saw the end-session request");
    assert_eq!(first.get("id_token_hint"), Some(&id_token));
    assert_eq!(
        first.get("post_logout_redirect_uri"),
        Some(&format!("{}/", app.base))
    );
}

/// The action and `xsrf` value of oidc-provider's logout confirmation form.
fn logout_form(html: &str) -> (String, String) {
    let attr_after = |from: usize, attr: &str| -> Option<String> {
        let needle = format!("{attr}=\"");
        let start = html[from..].find(&needle)? + from + needle.len();
        let len = html[start..].find('"')?;
        Some(
            html[start..start + len]
                .replace("&#x2F;", "/")
                .replace("&amp;", "&"),
        )
    };
    let form = html.find("<form").unwrap_or_else(|| panic!("no form: {html}"));
    let action = attr_after(form, "action").unwrap_or_else(|| panic!("no action: {html}"));
    let xsrf_at = html
        .find("name=\"xsrf\"")
        .unwrap_or_else(|| panic!("no xsrf: {html}"));
    let tag_start = html[..xsrf_at].rfind('<').unwrap();
    let xsrf = attr_after(tag_start, "value").unwrap_or_else(|| panic!("no xsrf value: {html}"));
    (action, xsrf)
}

#[tokio::test]
async fn logout_without_a_session_still_redirects_to_the_idp() {
    let app = TestApp::start().await;
    let http = TestApp::browser();
    let resp = http.get(app.url("/auth/logout")).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let target = Url::parse(&location(&resp)).unwrap();
    let q = query(&target);
    assert!(!q.contains_key("id_token_hint"), "no session, no hint: {q:?}");
    assert_eq!(q.get("post_logout_redirect_uri"), Some(&format!("{}/", app.base)));
    assert_eq!(q.get("client_id").map(String::as_str), Some(CONF_BASIC_ID));
}

#[tokio::test]
async fn logout_expires_broken_and_foreign_shaped_auth_cookies_too() {
    let app = TestApp::start().await;
    let held = [
        "_a0_session_0",
        "_a0_session_1",
        "_a0_session_x",
        "_a0_session",
        "_a0_tx_AbCdEfGhIjKlMnOpQrStUv",
        "_a0_tx_short",
    ];
    let cookie = held
        .iter()
        .map(|n| format!("{n}=garbage"))
        .chain(["unrelated=keep".to_owned()])
        .collect::<Vec<_>>()
        .join("; ");
    let resp = plain_client()
        .get(app.url("/auth/logout"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    let written = set_cookies(&resp);
    for name in held {
        let c = written
            .iter()
            .find(|c| c.name() == name)
            .unwrap_or_else(|| panic!("logout does not expire {name}: {written:?}"));
        assert!(is_removal(c), "{c}");
        assert_eq!(c.path(), Some("/"), "{c}");
    }
    assert!(
        written.iter().all(|c| c.name() != "unrelated"),
        "other cookies are left alone: {written:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 5. RequireAuth
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn require_auth_redirects_browsers_and_401s_apis() {
    let app = TestApp::start().await;
    let http = TestApp::browser();

    let resp = get_accept(&http, &app.url("/profile"), HTML).await;
    assert_eq!(resp.status(), 302);
    assert_eq!(location(&resp), "/auth/login?returnTo=%2Fprofile");
    assert_no_store(&resp, "RequireAuth redirect");

    let resp = get_accept(&http, &app.url("/profile?a=1&b=2"), HTML).await;
    assert_eq!(resp.status(), 302);
    let login = location(&resp);
    assert_eq!(login, "/auth/login?returnTo=%2Fprofile%3Fa%3D1%26b%3D2");

    assert_401_json(
        get_accept(&http, &app.url("/profile"), JSON).await,
        "Accept: json",
    )
    .await;
    let resp = http.get(app.url("/profile")).send().await.unwrap();
    assert_eq!(resp.status(), 401, "no Accept header: not a browser navigation");
    assert_401_json(get_accept(&http, &app.url("/token"), JSON).await, "/token").await;

    // Following the redirect through the login lands on the original path and query.
    let query = login.strip_prefix("/auth/login?").unwrap();
    let done = app.login(&http, query, "alice").await;
    assert_eq!(location(&done), "/profile?a=1&b=2");
    let resp = get_accept(&http, &app.url("/profile?a=1&b=2"), HTML).await;
    assert_eq!(resp.status(), 200);
    let profile: Value = resp.json().await.unwrap();
    assert_eq!(profile["sub"], "alice");
}

#[tokio::test]
async fn require_auth_predicate_and_modes() {
    let app = TestApp::start_with(AppConfig {
        router: Box::new(guarded_router),
        ..AppConfig::default()
    })
    .await;

    // Without a session.
    let anon = TestApp::browser();
    assert_401_json(get_accept(&anon, &app.url("/admin"), JSON).await, "/admin json").await;
    let resp = get_accept(&anon, &app.url("/admin"), HTML).await;
    assert_eq!(resp.status(), 302);
    assert_eq!(location(&resp), "/auth/login?returnTo=%2Fadmin");
    // api(): 401 even for a browser navigation (an HTML page for it).
    assert_401_html(get_accept(&anon, &app.url("/api"), HTML).await, "/api html").await;
    assert_401_json(get_accept(&anon, &app.url("/api"), JSON).await, "/api json").await;
    // login(): always a redirect.
    for accept in [HTML, JSON] {
        let resp = get_accept(&anon, &app.url("/page?q=1"), accept).await;
        assert_eq!(resp.status(), 302, "/page with {accept}");
        assert_eq!(location(&resp), "/auth/login?returnTo=%2Fpage%3Fq%3D1");
    }
    let resp = anon.get(app.url("/page")).send().await.unwrap();
    assert_eq!(resp.status(), 302, "/page without Accept");
    // Nested routers keep the full original path.
    let resp = get_accept(&anon, &app.url("/nested/inner"), HTML).await;
    assert_eq!(resp.status(), 302);
    assert_eq!(location(&resp), "/auth/login?returnTo=%2Fnested%2Finner");

    // alice: logged in but not an admin.
    let alice = TestApp::browser();
    app.login(&alice, "", "alice").await;
    for accept in [HTML, JSON] {
        let resp = get_accept(&alice, &app.url("/admin"), accept).await;
        assert_eq!(resp.status(), 403, "alice on /admin ({accept})");
        assert_no_store(&resp, "403");
        if accept == HTML {
            assert!(header(&resp, CONTENT_TYPE).is_some_and(|c| c.starts_with("text/html")));
            assert!(resp.text().await.unwrap().contains("<code>forbidden</code>"));
        } else {
            let body: Value = resp.json().await.unwrap();
            assert_eq!(body["error"], "forbidden");
        }
    }
    for path in ["/api", "/page", "/nested/inner"] {
        let resp = get_accept(&alice, &app.url(path), JSON).await;
        assert_eq!(resp.status(), 200, "alice on {path}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["sub"], "alice");
    }

    // admin passes the predicate.
    let admin = TestApp::browser();
    app.login(&admin, "", "admin").await;
    let resp = get_accept(&admin, &app.url("/admin"), JSON).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["email"], "admin@example.test");
}

// ---------------------------------------------------------------------------------------------
// 6. Option<Session> and the Session extractor
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn home_page_works_with_and_without_a_session() {
    let app = TestApp::start().await;
    let http = TestApp::browser();

    let resp = get_accept(&http, &app.url("/"), HTML).await;
    assert_eq!(resp.status(), 200);
    let home = resp.text().await.unwrap();
    assert!(home.contains("You are not logged in"), "{home}");
    assert!(home.contains("href=\"/auth/login\""), "{home}");
    assert!(!home.contains("/auth/logout"), "{home}");

    app.login(&http, "", "alice").await;
    let home = get_accept(&http, &app.url("/"), HTML).await.text().await.unwrap();
    assert!(home.contains("Test User alice"), "{home}");
    assert!(home.contains("href=\"/auth/logout\""), "{home}");
    assert!(!home.contains("not logged in"), "{home}");
}

#[tokio::test]
async fn session_extractor_redirects_when_configured() {
    let app = TestApp::start_with(AppConfig {
        options: AuthOptions::new().unauthenticated(Unauthenticated::RedirectToLogin),
        router: Box::new(session_router),
        ..AppConfig::default()
    })
    .await;
    let http = TestApp::browser();

    for accept in [JSON, HTML] {
        let resp = get_accept(&http, &app.url("/me?x=1"), accept).await;
        assert_eq!(resp.status(), 302, "Accept {accept}");
        assert_eq!(location(&resp), "/auth/login?returnTo=%2Fme%3Fx%3D1");
        assert_no_store(&resp, "Session redirect");
    }
    let resp = get_accept(&http, &app.url("/nested/me"), HTML).await;
    assert_eq!(location(&resp), "/auth/login?returnTo=%2Fnested%2Fme");
    // /auth/profile is an API: still 401.
    assert_401_json(
        get_accept(&http, &app.url("/auth/profile"), HTML).await,
        "/auth/profile",
    )
    .await;

    let done = app.login(&http, "returnTo=%2Fme%3Fx%3D1", "alice").await;
    assert_eq!(location(&done), "/me?x=1");
    let resp = get_accept(&http, &app.url("/me?x=1"), JSON).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["sub"], "alice");
}

#[tokio::test]
async fn session_extractor_defaults_to_401_json() {
    let app = TestApp::start_with(AppConfig {
        router: Box::new(session_router),
        ..AppConfig::default()
    })
    .await;
    let http = TestApp::browser();
    assert_401_json(get_accept(&http, &app.url("/me"), JSON).await, "/me with JSON").await;
    assert_401_html(get_accept(&http, &app.url("/me"), HTML).await, "/me with HTML").await;
}

// ---------------------------------------------------------------------------------------------
// 7. Broken session cookies
// ---------------------------------------------------------------------------------------------

/// Sends `cookie` to `/profile` (JSON), `/` and `/auth/profile` and asserts a logged-out
/// answer from each (never a 5xx).
async fn assert_treated_as_logged_out(app: &TestApp, cookie: HeaderValue, what: &str) {
    let http = plain_client();
    let send = |path: &str, accept: &'static str| {
        http.get(app.url(path))
            .header(ACCEPT, accept)
            .header(COOKIE, cookie.clone())
            .send()
    };
    let resp = send("/profile", JSON).await.unwrap();
    assert_eq!(resp.status(), 401, "{what}: /profile");
    let resp = send("/", HTML).await.unwrap();
    assert_eq!(resp.status(), 200, "{what}: /");
    let home = resp.text().await.unwrap();
    assert!(home.contains("You are not logged in"), "{what}: / says {home}");
    let resp = send("/auth/profile", JSON).await.unwrap();
    assert_eq!(resp.status(), 401, "{what}: /auth/profile");
}

/// Asserts that `cookie` yields a session for `sub` (so that the variants below are meaningful).
async fn assert_logged_in_as(app: &TestApp, cookie: &str, sub: &str) {
    let resp = plain_client()
        .get(app.url("/auth/profile"))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "the intact cookies are a session");
    let profile: Value = resp.json().await.unwrap();
    assert_eq!(profile["sub"], sub);
}

/// Replaces the character in the middle of `s` by another base64url character.
fn flip_middle(s: &str) -> String {
    let mut bytes = s.as_bytes().to_vec();
    let mid = bytes.len() / 2;
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[tokio::test]
async fn broken_session_cookies_are_logged_out_never_a_5xx() {
    let app = TestApp::start().await;
    let http = TestApp::browser();
    let user = big_user();
    let done = app.login(&http, "", &user).await;
    let chunks = session_chunks(&done);
    assert!(chunks.len() >= 2, "need a multi-chunk session: {chunks:?}");
    let n = chunks.len();
    assert_logged_in_as(&app, &cookie_header(&chunks), &user).await;

    // A sealed value of another kind (a transaction cookie) for the session slot.
    let start = http.get(app.url("/auth/login")).send().await.unwrap();
    let tx_value = set_cookies(&start)
        .into_iter()
        .find(|c| c.name().starts_with("_a0_tx_") && !is_removal(c))
        .expect("transaction cookie")
        .value()
        .to_owned();

    let with = |i: usize, value: String| {
        let mut c = chunks.clone();
        c[i].1 = value;
        c
    };
    let mut variants: Vec<(String, String)> = vec![
        (
            "first chunk, one byte flipped".into(),
            cookie_header(&with(0, flip_middle(&chunks[0].1))),
        ),
        (
            "last chunk, one byte flipped".into(),
            cookie_header(&with(n - 1, flip_middle(&chunks[n - 1].1))),
        ),
        ("last chunk truncated".into(), {
            let v = &chunks[n - 1].1;
            cookie_header(&with(n - 1, v[..v.len() / 2].to_owned()))
        }),
        ("first chunk truncated".into(), {
            let v = &chunks[0].1;
            cookie_header(&with(0, v[..v.len() - 1].to_owned()))
        }),
        ("chunk 1 missing".into(), {
            let mut c = chunks.clone();
            c.remove(1);
            cookie_header(&c)
        }),
        ("last chunk missing".into(), cookie_header(&chunks[..n - 1])),
        ("only chunk 1".into(), cookie_header(&chunks[1..2])),
        ("chunks swapped".into(), {
            let mut c = chunks.clone();
            let (a, b) = (c[0].1.clone(), c[1].1.clone());
            c[0].1 = b;
            c[1].1 = a;
            cookie_header(&c)
        }),
        ("chunks renumbered from 1".into(), {
            let c: Vec<(String, String)> = chunks
                .iter()
                .enumerate()
                .map(|(i, (_, v))| (format!("_a0_session_{}", i + 1), v.clone()))
                .collect();
            cookie_header(&c)
        }),
        (
            "extra bogus chunk 7".into(),
            format!("{}; _a0_session_7=bogus", cookie_header(&chunks)),
        ),
        (
            "non-numeric chunk x".into(),
            format!("{}; _a0_session_x=bogus", cookie_header(&chunks)),
        ),
        (
            "leading-zero chunk 01".into(),
            format!("{}; _a0_session_01=bogus", cookie_header(&chunks)),
        ),
        ("garbage".into(), "_a0_session_0=garbage".into()),
        ("garbage, un-chunked name".into(), "_a0_session=garbage".into()),
        ("empty value".into(), "_a0_session_0=".into()),
        (
            "quoted value".into(),
            format!("_a0_session_0=\"{}\"", chunks[0].1),
        ),
        ("JWE-shaped garbage".into(), "_a0_session_0=a.b.c.d.e".into()),
        ("five empty JWE parts".into(), "_a0_session_0=....".into()),
        (
            "a transaction's sealed value".into(),
            format!("_a0_session_0={tx_value}"),
        ),
        ("200 chunks".into(), {
            (0..200)
                .map(|i| format!("_a0_session_{i}=AAAA"))
                .collect::<Vec<_>>()
                .join("; ")
        }),
        (
            "16 KB cookie".into(),
            format!("_a0_session_0={}", "A".repeat(16 * 1024)),
        ),
        (
            "percent-encoded garbage".into(),
            "_a0_session_0=%00%FF%2F%3B".into(),
        ),
    ];
    let mut raw: Vec<(String, HeaderValue)> = variants
        .drain(..)
        .map(|(what, h)| (what, HeaderValue::from_str(&h).expect("header value")))
        .collect();
    raw.push((
        "non-UTF-8 bytes".into(),
        HeaderValue::from_bytes(b"_a0_session_0=\xff\xfe\x80abc").expect("obs-text header"),
    ));
    raw.push((
        "non-UTF-8 bytes in a valid chunk set".into(),
        HeaderValue::from_bytes(format!("{}; _a0_session_0=\u{e9}", cookie_header(&chunks[1..])).as_bytes())
            .expect("obs-text header"),
    ));

    for (what, cookie) in raw {
        assert_treated_as_logged_out(&app, cookie, &what).await;
    }
}

#[tokio::test]
async fn duplicated_session_cookie_names_never_5xx() {
    let app = TestApp::start().await;
    let http = TestApp::browser();
    let done = app.login(&http, "", "alice").await;
    let chunks = session_chunks(&done);
    assert!(!chunks.is_empty());
    let good = cookie_header(&chunks);
    assert_logged_in_as(&app, &good, "alice").await;
    // The same name twice, garbage first or last: which one wins is not specified, but the
    // answer must be a normal one.
    for cookie in [
        format!("_a0_session_0=garbage; {good}"),
        format!("{good}; _a0_session_0=garbage"),
    ] {
        for path in ["/profile", "/", "/auth/profile"] {
            let resp = plain_client()
                .get(app.url(path))
                .header(ACCEPT, JSON)
                .header(COOKIE, &cookie)
                .send()
                .await
                .unwrap();
            assert!(
                matches!(resp.status().as_u16(), 200 | 401),
                "{path}: {}",
                resp.status()
            );
        }
    }
}

#[tokio::test]
async fn a_session_sealed_with_another_secret_is_no_session() {
    let app = TestApp::start().await;
    let other = TestApp::start_with(AppConfig {
        client: Box::new(|b| b.secrets(["another-secret-0123456789abcdef0123456789"])),
        ..AppConfig::default()
    })
    .await;

    let http = TestApp::browser();
    let theirs = session_chunks(&other.login(&http, "", "alice").await);
    assert!(!theirs.is_empty());
    assert_logged_in_as(&other, &cookie_header(&theirs), "alice").await;
    assert_treated_as_logged_out(
        &app,
        HeaderValue::from_str(&cookie_header(&theirs)).unwrap(),
        "sealed with another secret",
    )
    .await;

    let http = TestApp::browser();
    let ours = session_chunks(&app.login(&http, "", "alice").await);
    assert_logged_in_as(&app, &cookie_header(&ours), "alice").await;
    assert_treated_as_logged_out(
        &other,
        HeaderValue::from_str(&cookie_header(&ours)).unwrap(),
        "sealed with the default secret, read by the other app",
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 8. Callback errors
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn callback_errors_are_400_without_provider_internals() {
    let app = TestApp::start().await;
    let http = TestApp::browser();

    // No state.
    let resp = get_accept(&http, &app.url("/auth/callback?code=abc"), JSON).await;
    assert_eq!(resp.status(), 400);
    assert_no_store(&resp, "callback error");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "invalid_state", "{body}");

    let resp = get_accept(&http, &app.url("/auth/callback?code=abc"), HTML).await;
    assert_eq!(resp.status(), 400);
    assert!(header(&resp, CONTENT_TYPE).is_some_and(|c| c.starts_with("text/html")));
    let page = resp.text().await.unwrap();
    assert!(page.contains("invalid_state"), "{page}");
    assert!(!page.contains(app.idp.issuer()), "{page}");

    let resp = get_accept(&http, &app.url("/auth/callback"), JSON).await;
    assert_eq!(resp.status(), 400);

    // A well-formed state nobody issued.
    let unknown = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
    let resp = get_accept(
        &http,
        &app.url(&format!("/auth/callback?code=abc&state={unknown}")),
        JSON,
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "missing_transaction", "{body}");

    // A provider error for a real transaction: its description is never shown.
    let start = http.get(app.url("/auth/login")).send().await.unwrap();
    let authorize = Url::parse(&location(&start)).unwrap();
    let state = query(&authorize)["state"].clone();
    let secret_detail = "internal-db-host-10.0.0.3-exploded";
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("error", "access_denied")
        .append_pair("error_description", secret_detail)
        .append_pair("state", &state)
        .append_pair("iss", app.idp.issuer())
        .finish();
    let resp = get_accept(&http, &app.url(&format!("/auth/callback?{query}")), HTML).await;
    assert_eq!(resp.status(), 400);
    assert!(header(&resp, CONTENT_TYPE).is_some_and(|c| c.starts_with("text/html")));
    // The failed callback consumed its transaction.
    assert!(
        set_cookies(&resp)
            .iter()
            .any(|c| c.name() == format!("_a0_tx_{state}") && is_removal(c)),
        "transaction cookie deleted"
    );
    let page = resp.text().await.unwrap();
    assert!(page.contains("access_denied"), "{page}");
    for leak in [secret_detail, app.idp.issuer(), state.as_str()] {
        assert!(!page.contains(leak), "error page shows {leak:?}: {page}");
    }
    // And it cannot be replayed.
    let resp = get_accept(&http, &app.url(&format!("/auth/callback?{query}")), JSON).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "missing_transaction", "{body}");
    assert!(!body.to_string().contains(secret_detail));
}

#[tokio::test]
async fn callback_post_must_be_form_encoded() {
    let app = TestApp::start().await;
    let http = TestApp::browser();
    let resp = http
        .post(app.url("/auth/callback"))
        .header(CONTENT_TYPE, "application/json")
        .body(r#"{"code":"abc","state":"AbCdEfGhIjKlMnOpQrStUvWxYz"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_media_type");

    let resp = http
        .post(app.url("/auth/callback"))
        .body("code=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415, "no Content-Type");
}

#[tokio::test]
async fn form_post_callback_completes_the_login() {
    let app = TestApp::start().await;
    let http = TestApp::browser();
    let start = http
        .get(app.url(&format!("/auth/login?{}", return_to_query("/after?form=1"))))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 302);
    let callback = app.idp.login_with(&http, &location(&start), "alice").await;
    let body = callback.query().expect("callback query").to_owned();

    let resp = http
        .post(app.url("/auth/callback"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 302);
    assert_eq!(location(&resp), "/after?form=1");
    assert!(!session_chunks(&resp).is_empty(), "a session is written");
    let profile: Value = get_accept(&http, &app.url("/auth/profile"), JSON)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(profile["sub"], "alice");

    // The transaction is gone: the same response cannot be used again.
    let resp = http
        .post(app.url("/auth/callback"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded; charset=UTF-8")
        .header(ACCEPT, JSON)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"], "missing_transaction");
}

// ---------------------------------------------------------------------------------------------
// 9. Back-channel logout (implemented since the brief: bad requests are 400, never cached)
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn backchannel_logout_refuses_bad_requests_without_caching() {
    let app = TestApp::start().await;
    let http = TestApp::browser();
    let post = |body: &'static str, content_type: &'static str| {
        http.post(app.url("/auth/backchannel-logout"))
            .header(CONTENT_TYPE, content_type)
            .header(ACCEPT, HTML)
            .body(body)
            .send()
    };
    let form = "application/x-www-form-urlencoded";
    for (what, body, content_type) in [
        ("a token that is not a JWT", "logout_token=a.b.c", form),
        ("garbage token", "logout_token=garbage", form),
        ("no token", "foo=bar", form),
        ("empty token", "logout_token=", form),
        ("duplicated token", "logout_token=a.b.c&logout_token=d.e.f", form),
        ("JSON body", r#"{"logout_token":"a.b.c"}"#, "application/json"),
    ] {
        let resp = post(body, content_type).await.unwrap();
        assert_eq!(resp.status(), 400, "{what}");
        assert_no_store(&resp, what);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{what}: {body}");
        assert!(
            only_error_fields(&body),
            "{what}: the error body carries only the error fields: {body}"
        );
    }

    let resp = http
        .get(app.url("/auth/backchannel-logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
}

/// Only `error` and `error_description` in an error body.
fn only_error_fields(body: &Value) -> bool {
    body.as_object()
        .is_some_and(|o| o.keys().all(|k| k == "error" || k == "error_description"))
}

// ---------------------------------------------------------------------------------------------
// 10. Cookie attributes
// ---------------------------------------------------------------------------------------------

fn assert_safe_attributes(c: &Cookie<'_>) {
    let name = c.name();
    assert_eq!(c.http_only(), Some(true), "{name}: HttpOnly ({c})");
    assert_eq!(c.same_site(), Some(SameSite::Lax), "{name}: SameSite=Lax ({c})");
    assert_eq!(c.path(), Some("/"), "{name}: Path=/ ({c})");
    assert_ne!(c.secure(), Some(true), "{name}: no Secure on http ({c})");
    assert_eq!(c.domain(), None, "{name}: host-only ({c})");
}

#[tokio::test]
async fn session_and_transaction_cookies_have_safe_attributes() {
    let app = TestApp::start().await;
    let http = TestApp::browser();

    let start = http.get(app.url("/auth/login")).send().await.unwrap();
    let txs: Vec<Cookie<'static>> = set_cookies(&start)
        .into_iter()
        .filter(|c| c.name().starts_with("_a0_tx_"))
        .collect();
    assert_eq!(txs.len(), 1, "{txs:?}");
    assert_safe_attributes(&txs[0]);
    assert_eq!(txs[0].max_age(), Some(cookie::time::Duration::seconds(600)));
    let tx_name = txs[0].name().to_owned();

    let callback = app.idp.login_with(&http, &location(&start), &big_user()).await;
    let done = http.get(callback.as_str()).send().await.unwrap();
    assert_eq!(done.status(), 302);
    let written = set_cookies(&done);
    let sessions: Vec<&Cookie<'_>> = written
        .iter()
        .filter(|c| c.name().starts_with("_a0_session"))
        .collect();
    assert!(sessions.len() >= 2, "{sessions:?}");
    for c in &sessions {
        assert!(!is_removal(c), "{c}");
        assert_safe_attributes(c);
        assert!(c.name().len() + c.value().len() <= 4096, "{} too big", c.name());
    }
    let tx_removal = written
        .iter()
        .find(|c| c.name() == tx_name)
        .expect("the callback deletes its transaction cookie");
    assert!(is_removal(tx_removal));
    assert_eq!(tx_removal.path(), Some("/"));

    // The raw header text, in case the parser were lenient.
    for v in done.headers().get_all(SET_COOKIE) {
        let s = v.to_str().unwrap();
        if s.starts_with("_a0_session_") {
            assert!(s.contains("HttpOnly"), "{s}");
            assert!(s.contains("SameSite=Lax"), "{s}");
            assert!(!s.to_ascii_lowercase().contains("secure"), "{s}");
        }
    }
}
