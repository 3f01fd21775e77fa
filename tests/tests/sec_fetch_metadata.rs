//! Issue 10 item 1 (cross-site forced actions) and item 9 (`no-store` on the examples' token
//! routes), end to end through the connected-accounts example app against the strict Auth0
//! emulator:
//!
//! - `/auth/link`, `/auth/unlink`, `/auth/connect` (GET and the new form POST) refuse a
//!   `Sec-Fetch-Site: cross-site`/`same-site` request with `403 cross_site_request` (JSON or the
//!   HTML error page), no redirect, no transaction cookie and nothing sent to the provider;
//!   `same-origin`, `none` and an absent header proceed to the provider;
//! - a POST needs a form body (`415` otherwise);
//! - the opt-in connection and scope allow-lists refuse before any redirect;
//! - `AuthOptions::logout_fetch_metadata_policy(true)` does the same for `/auth/logout` and keeps
//!   the session; by default logout still proceeds for a cross-site request;
//! - `/token` and `/connection-token` answer with `Cache-Control: no-store`.

use auth_axum::AuthOptions;
use auth_tests::auth0::EmulatorOptions;
use auth_tests::emu_app::EmuApp;
use auth_tests::location;
use axum::Router;
use reqwest::StatusCode;
use serde_json::Value;

/// The default transaction cookie prefix.
const TX_PREFIX: &str = "_a0_tx_";
/// The default session cookie name.
const SESSION_COOKIE: &str = "_a0_session";
const FORM: &str = "application/x-www-form-urlencoded";

/// The shared emulator app, with this file's request helpers.
struct App(EmuApp);

impl std::ops::Deref for App {
    type Target = EmuApp;
    fn deref(&self) -> &EmuApp {
        &self.0
    }
}

impl App {
    async fn start(options: AuthOptions) -> Self {
        Self(EmuApp::start_full(|b| b, EmulatorOptions::default(), options, |_| Router::new()).await)
    }

    /// Starts `path` (a same-origin browser navigation), goes through the emulator and
    /// completes the callback.
    async fn flow(&self, path: &str) -> reqwest::Response {
        let r = self
            .http
            .get(self.url(path))
            .header("accept", "text/html")
            .header("sec-fetch-site", "same-origin")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 302, "{path}: {:?}", r.text().await);
        let callback = self.through_emulator(&location(&r)).await;
        self.http.get(callback).send().await.unwrap()
    }

    async fn login(&self) {
        let done = self.flow("/auth/login").await;
        assert_eq!(done.status(), 302);
        assert_eq!(location(&done), "/");
        assert_eq!(self.profile_status().await, 200, "logged in");
    }

    async fn profile_status(&self) -> StatusCode {
        self.http
            .get(self.url("/profile"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Requests the emulator received that a flow start sends (authorize, My Account).
    fn provider_calls(&self) -> usize {
        self.emu
            .requests()
            .iter()
            .filter(|r| r.path.contains("/authorize") || r.path.contains("/me/"))
            .count()
    }

    /// `GET path?params` or `POST path` with `params` as a form body.
    async fn send(
        &self,
        method: &str,
        path: &str,
        params: &str,
        fetch_site: Option<&str>,
        accept: &str,
    ) -> reqwest::Response {
        let mut req = if method == "POST" {
            self.http
                .post(self.url(path))
                .header("content-type", FORM)
                .body(params.to_owned())
        } else {
            self.http.get(self.url(&format!("{path}?{params}")))
        };
        req = req.header("accept", accept);
        if let Some(site) = fetch_site {
            req = req.header("sec-fetch-site", site);
        }
        req.send().await.unwrap()
    }
}

/// The account routes and parameters every provider accepts.
const ROUTES: [(&str, &str); 3] = [
    ("/auth/link", "connection=google-oauth2&returnTo=%2Flinked"),
    ("/auth/unlink", "connection=google-oauth2&returnTo=%2Funlinked"),
    (
        "/auth/connect",
        "connection=google-oauth2&scopes=openid&scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcalendar.readonly",
    ),
];

fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

fn writes_transaction(r: &reqwest::Response) -> bool {
    set_cookies(r).iter().any(|c| c.starts_with(TX_PREFIX))
}

/// A 403 with the given code, negotiated on `accept`, with no redirect and no cookie.
async fn assert_refused(r: reqwest::Response, accept: &str, code: &str, what: &str) {
    assert_eq!(r.status(), 403, "{what}");
    assert!(r.headers().get("location").is_none(), "{what}: redirected");
    assert!(!writes_transaction(&r), "{what}: wrote a transaction cookie");
    assert!(
        set_cookies(&r).is_empty(),
        "{what}: wrote cookies {:?}",
        set_cookies(&r)
    );
    assert_eq!(
        r.headers().get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "{what}"
    );
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = r.text().await.unwrap();
    if accept.starts_with("text/html") {
        assert!(content_type.starts_with("text/html"), "{what}: {content_type}");
        assert!(body.contains(&format!("<code>{code}</code>")), "{what}: {body}");
    } else {
        assert!(
            content_type.starts_with("application/json"),
            "{what}: {content_type}"
        );
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["error"], code, "{what}: {body}");
    }
}

#[tokio::test]
async fn cross_site_account_route_requests_are_refused_before_anything_else() {
    let app = App::start(AuthOptions::new()).await;
    app.login().await;
    let calls = app.provider_calls();
    for (path, params) in ROUTES {
        for method in ["GET", "POST"] {
            for site in ["cross-site", "same-site", "CROSS-SITE", "no-such-value", ""] {
                for accept in ["application/json", "text/html,application/xhtml+xml;q=0.9"] {
                    let what = format!("{method} {path} Sec-Fetch-Site={site:?} Accept={accept}");
                    let r = app.send(method, path, params, Some(site), accept).await;
                    assert_refused(r, accept, "cross_site_request", &what).await;
                }
            }
        }
    }
    assert_eq!(app.provider_calls(), calls, "nothing reached the provider");
    assert_eq!(app.profile_status().await, 200, "the session is untouched");
    // The policy comes before the session lookup and the parameters: a cross-site request
    // without a session, or with junk parameters, is refused the same way.
    let anonymous = App::start(AuthOptions::new()).await;
    for (path, _) in ROUTES {
        let r = anonymous
            .send(
                "GET",
                path,
                "connection=a&connection=b",
                Some("cross-site"),
                "text/html",
            )
            .await;
        assert_refused(r, "text/html", "cross_site_request", path).await;
        let r = anonymous
            .http
            .post(anonymous.url(path))
            .header("content-type", "application/json")
            .header("sec-fetch-site", "cross-site")
            .header("accept", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_refused(r, "application/json", "cross_site_request", path).await;
    }
}

#[tokio::test]
async fn same_origin_none_and_absent_proceed_to_the_provider_by_get_and_post() {
    let app = App::start(AuthOptions::new()).await;
    app.login().await;
    let emulator = app.emu.url("/");
    for (path, params) in ROUTES {
        for method in ["GET", "POST"] {
            for site in [Some("same-origin"), Some("none"), None] {
                let what = format!("{method} {path} Sec-Fetch-Site={site:?}");
                let r = app.send(method, path, params, site, "text/html").await;
                assert_eq!(r.status(), 302, "{what}: {:?}", r.text().await);
                assert!(location(&r).starts_with(&emulator), "{what}: {}", location(&r));
                assert!(writes_transaction(&r), "{what}: no transaction cookie");
            }
        }
    }
    // A POSTed link completes like a GET one.
    let r = app
        .send(
            "POST",
            "/auth/link",
            "connection=github&returnTo=%2Fposted",
            Some("same-origin"),
            "text/html",
        )
        .await;
    assert_eq!(r.status(), 302);
    let callback = app.through_emulator(&location(&r)).await;
    let done = app.http.get(callback).send().await.unwrap();
    assert_eq!(location(&done), "/posted");
    assert!(
        app.emu
            .linked_identities("auth0|alice")
            .iter()
            .any(|(c, _)| c == "github")
    );
}

#[tokio::test]
async fn posts_need_a_form_body_and_follow_the_query_rules() {
    let app = App::start(AuthOptions::new()).await;
    app.login().await;
    for (path, params) in ROUTES {
        for content_type in [
            None,
            Some("application/json"),
            Some("text/plain"),
            Some("multipart/form-data"),
        ] {
            let mut req = app
                .http
                .post(app.url(path))
                .header("accept", "application/json")
                .header("sec-fetch-site", "same-origin")
                .body(params.to_owned());
            if let Some(ct) = content_type {
                req = req.header("content-type", ct);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 415, "{path} {content_type:?}");
            assert!(!writes_transaction(&r));
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "unsupported_media_type");
        }
        // Duplicates, a missing connection and an oversized body are typed 400s.
        for body in [
            "connection=a&connection=b".to_owned(),
            "returnTo=%2F".to_owned(),
            format!("connection=a&pad={}", "x".repeat(9 * 1024)),
        ] {
            let r = app
                .send("POST", path, &body, Some("same-origin"), "application/json")
                .await;
            assert_eq!(r.status(), 400, "{path} {}", &body[..body.len().min(40)]);
            assert!(!writes_transaction(&r));
            let json: Value = r.json().await.unwrap();
            assert_eq!(json["error"], "invalid_parameter");
        }
    }
    // The form's own extra fields (e.g. the app's CSRF token) are ignored.
    let r = app
        .send(
            "POST",
            "/auth/link",
            "csrf_token=abc&connection=google-oauth2",
            Some("same-origin"),
            "text/html",
        )
        .await;
    assert_eq!(r.status(), 302);
}

#[tokio::test]
async fn allow_lists_refuse_other_connections_and_scopes_before_any_redirect() {
    let app = App::start(
        AuthOptions::new()
            .allowed_link_connections(["github"])
            .allowed_connect_connections(["google-oauth2"])
            .allowed_connect_scopes(["openid", "https://www.googleapis.com/auth/calendar.readonly"]),
    )
    .await;
    app.login().await;
    let calls = app.provider_calls();
    let refused = [
        ("/auth/link", "connection=google-oauth2", "connection_not_allowed"),
        (
            "/auth/unlink",
            "connection=google-oauth2",
            "connection_not_allowed",
        ),
        ("/auth/link", "connection=github2", "connection_not_allowed"),
        ("/auth/connect", "connection=github", "connection_not_allowed"),
        (
            "/auth/connect",
            "connection=google-oauth2&scopes=openid%20email",
            "scope_not_allowed",
        ),
        (
            "/auth/connect",
            "connection=google-oauth2&scopes=openid&scopes=profile",
            "scope_not_allowed",
        ),
    ];
    for (path, params, code) in refused {
        for method in ["GET", "POST"] {
            for accept in ["application/json", "text/html"] {
                let what = format!("{method} {path}?{params} Accept={accept}");
                let r = app.send(method, path, params, None, accept).await;
                assert_refused(r, accept, code, &what).await;
            }
        }
    }
    assert_eq!(app.provider_calls(), calls, "nothing reached the provider");
    for (path, params) in [
        ("/auth/link", "connection=github"),
        ("/auth/unlink", "connection=github"),
        ("/auth/connect", "connection=google-oauth2"),
        ("/auth/connect", "connection=google-oauth2&scopes=openid"),
    ] {
        let r = app
            .send("GET", path, params, Some("same-origin"), "text/html")
            .await;
        assert_eq!(r.status(), 302, "{path}?{params}: {:?}", r.text().await);
    }
}

fn clears_session(r: &reqwest::Response) -> bool {
    set_cookies(r).iter().any(|c| c.starts_with(SESSION_COOKIE))
}

#[tokio::test]
async fn logout_fetch_metadata_policy_is_opt_in() {
    // On: a cross-site logout is refused and the session stays.
    let app = App::start(AuthOptions::new().logout_fetch_metadata_policy(true)).await;
    app.login().await;
    for site in ["cross-site", "same-site", "bogus"] {
        for accept in ["application/json", "text/html"] {
            let r = app
                .http
                .get(app.url("/auth/logout"))
                .header("sec-fetch-site", site)
                .header("accept", accept)
                .send()
                .await
                .unwrap();
            assert!(!clears_session(&r), "{site}: the session cookie was cleared");
            assert_refused(r, accept, "cross_site_request", site).await;
            assert_eq!(app.profile_status().await, 200, "{site}: still logged in");
        }
    }
    let r = app
        .http
        .get(app.url("/auth/logout"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(clears_session(&r));
    assert_eq!(app.profile_status().await, 401);

    // Off (the default): providers and portals may link to logout from other sites.
    let app = App::start(AuthOptions::new()).await;
    app.login().await;
    let r = app
        .http
        .get(app.url("/auth/logout"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(clears_session(&r));
    assert_eq!(app.profile_status().await, 401);
}

#[tokio::test]
async fn example_routes_returning_tokens_are_not_stored_by_caches() {
    let app = App::start(AuthOptions::new()).await;
    app.login().await;
    let done = app.flow("/auth/connect?connection=google-oauth2").await;
    assert_eq!(done.status(), 302);
    for path in ["/token", "/connection-token?connection=google-oauth2"] {
        let r = app
            .http
            .get(app.url(path))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.headers().get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store"),
            "{path}"
        );
        let body: Value = r.json().await.unwrap();
        assert!(
            body["access_token"].as_str().is_some_and(|t| !t.is_empty()),
            "{path}"
        );
    }
    // Refusals from these routes are no-store too (they come from `AuthError`).
    let r = app
        .http
        .get(app.url("/connection-token"))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.headers().get("cache-control").and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
}
