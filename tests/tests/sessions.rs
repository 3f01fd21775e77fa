//! Tokens and sessions end to end: refresh without races, back-channel logout across the
//! cookie and server-side stores, bad logout tokens.

use std::time::Duration;

use auth_tests::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn fifty_concurrent_requests_with_an_expired_token_send_one_refresh() {
    let app = TestApp::start_with(AppConfig {
        client: Box::new(|b| b.token_refresh_leeway(Duration::ZERO)),
        idp: IdpOptions {
            access_token_ttl: Some(2),
            ..IdpOptions::default()
        },
        ..AppConfig::default()
    })
    .await;
    let http = TestApp::browser();
    app.login(&http, "", "alice").await;
    let (status, first) = json_get(&http, &app.url("/token")).await;
    assert_eq!(status, 200);
    let first = first["access_token"].as_str().unwrap().to_owned();
    let (_, again) = json_get(&http, &app.url("/token")).await;
    assert_eq!(
        again["access_token"],
        first.as_str(),
        "still valid: served from the session"
    );
    assert_eq!(app.idp.requests().await.refreshes(), 0);

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (http, url) = (http.clone(), app.url("/token"));
            tokio::spawn(async move { json_get(&http, &url).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
    }
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "all 50 got the same new token"
    );
    assert_ne!(tokens[0], first);
    let rec = app.idp.requests().await;
    assert_eq!(rec.refreshes(), 1, "exactly one refresh reached the IdP");
    assert!(
        rec.token.iter().all(|t| t.error.is_none()),
        "no refresh token was replayed"
    );

    // The session survives and keeps working after the next expiry too.
    let (status, profile) = json_get(&http, &app.url("/profile")).await;
    assert_eq!((status, profile["sub"].as_str()), (StatusCode::OK, Some("alice")));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, third) = json_get(&http, &app.url("/token")).await;
    assert_eq!(status, 200);
    assert_ne!(third["access_token"], tokens[0].as_str());
    assert_eq!(app.idp.requests().await.refreshes(), 2);
}

/// Store variants the back-channel tests run against.
fn configs(server_side: bool) -> AppConfig {
    AppConfig {
        client: Box::new(move |b| b.server_side_sessions(server_side)),
        backchannel: true,
        ..AppConfig::default()
    }
}

async fn idp_initiated_logout_ends_the_app_session(config: AppConfig) {
    let app = TestApp::start_with(config).await;
    let http = TestApp::browser();
    app.login(&http, "", "alice").await;
    assert_eq!(json_get(&http, &app.url("/profile")).await.0, 200);

    // The user logs out at the IdP (not through the app): the IdP calls the app's back-channel
    // endpoint, and the cookie the browser still holds stops working.
    let end = format!(
        "{}?client_id={}&post_logout_redirect_uri={}",
        app.idp.end_session_endpoint(),
        CONF_BASIC_ID,
        url::form_urlencoded::byte_serialize(app.url("/").as_bytes()).collect::<String>()
    );
    let landed = app.idp.end_session(&http, &end).await;
    assert_eq!(landed.as_str(), app.url("/"));
    let (status, body) = json_get(&http, &app.url("/profile")).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(json_get(&http, &app.url("/auth/profile")).await.0, 401);
}

#[tokio::test]
async fn idp_logout_ends_cookie_sessions() {
    idp_initiated_logout_ends_the_app_session(configs(false)).await;
}

#[tokio::test]
async fn idp_logout_ends_memory_server_side_sessions() {
    idp_initiated_logout_ends_the_app_session(configs(true)).await;
}

/// A logout token for `app`, valid unless `tweak` breaks it.
async fn logout_token(app: &TestApp, sid: &str, tweak: impl FnOnce(&mut Value, &mut Value)) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut header = json!({"typ": "logout+jwt"});
    let mut claims = json!({
        "iss": app.idp.issuer(), "aud": CONF_BASIC_ID, "iat": now, "exp": now + 120,
        "jti": format!("jti-{now}-{}", rand_suffix()), "sid": sid, "sub": "alice",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}}
    });
    tweak(&mut header, &mut claims);
    app.idp.sign(header, claims).await
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::Instant::now())
}

async fn post_logout_token(app: &TestApp, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/auth/backchannel-logout"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn bad_logout_tokens_are_refused_and_delete_nothing() {
    for server_side in [false, true] {
        let app = TestApp::start_with(configs(server_side)).await;
        let http = TestApp::browser();
        app.login(&http, "", "alice").await;
        let (_, profile) = json_get(&http, &app.url("/auth/profile")).await;
        let sid = profile["sid"].as_str().expect("sid claim").to_owned();

        let remove = |name: &'static str| {
            move |_: &mut Value, c: &mut Value| {
                c.as_object_mut().unwrap().remove(name);
            }
        };
        let mut bad: Vec<(&str, String)> = vec![
            ("missing events", logout_token(&app, &sid, remove("events")).await),
            (
                "wrong event",
                logout_token(&app, &sid, |_, c| c["events"] = json!({"urn:other": {}})).await,
            ),
            (
                "nonce present",
                logout_token(&app, &sid, |_, c| c["nonce"] = json!("n")).await,
            ),
            (
                "neither sid nor sub",
                logout_token(&app, &sid, |_, c| {
                    let o = c.as_object_mut().unwrap();
                    o.remove("sid");
                    o.remove("sub");
                })
                .await,
            ),
            (
                "wrong audience",
                logout_token(&app, &sid, |_, c| c["aud"] = json!("someone-else")).await,
            ),
            (
                "wrong issuer",
                logout_token(&app, &sid, |_, c| c["iss"] = json!("https://evil.example/")).await,
            ),
            (
                "expired",
                logout_token(&app, &sid, |_, c| {
                    c["exp"] = json!(1);
                    c["iat"] = json!(0);
                })
                .await,
            ),
            ("missing jti", logout_token(&app, &sid, remove("jti")).await),
            (
                "wrong typ",
                logout_token(&app, &sid, |h, _| h["typ"] = json!("JWT+id")).await,
            ),
        ];
        // Bad signature: a valid token with its signature altered.
        let valid = logout_token(&app, &sid, |_, _| {}).await;
        let mut forged = valid.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        bad.push(("bad signature", forged));
        bad.push(("alg none", {
            let parts: Vec<&str> = valid.split('.').collect();
            use base64::Engine as _;
            let h = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
            format!("{h}.{}.", parts[1])
        }));
        bad.push(("garbage", "not-a-jwt".into()));
        for (what, token) in &bad {
            let r = post_logout_token(&app, token).await;
            assert_eq!(r.status(), 400, "{what} (server_side={server_side})");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "invalid_request", "{what}");
            assert_eq!(
                json_get(&http, &app.url("/profile")).await.0,
                200,
                "{what}: nothing deleted"
            );
        }
        // Wrong content type and missing token.
        let r = reqwest::Client::new()
            .post(app.url("/auth/backchannel-logout"))
            .json(&json!({"logout_token": valid}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let r = reqwest::Client::new()
            .post(app.url("/auth/backchannel-logout"))
            .form(&[("other", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        assert_eq!(json_get(&http, &app.url("/profile")).await.0, 200);

        // The valid one works once…
        let r = post_logout_token(&app, &valid).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
        assert_eq!(json_get(&http, &app.url("/profile")).await.0, 401);
        // …and its replay is refused.
        assert_eq!(
            post_logout_token(&app, &valid).await.status(),
            400,
            "replayed jti"
        );
    }
}

#[tokio::test]
async fn logout_by_sub_ends_every_session_of_the_user() {
    for server_side in [false, true] {
        let app = TestApp::start_with(configs(server_side)).await;
        let (a, b, other) = (TestApp::browser(), TestApp::browser(), TestApp::browser());
        app.login(&a, "", "alice").await;
        app.login(&b, "", "alice").await;
        app.login(&other, "", "bob").await;
        // Sessions created in the same second as the logout count as covered, so let a second pass.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let token = logout_token(&app, "", |_, c| {
            c.as_object_mut().unwrap().remove("sid");
        })
        .await;
        assert_eq!(post_logout_token(&app, &token).await.status(), 200);
        assert_eq!(json_get(&a, &app.url("/profile")).await.0, 401);
        assert_eq!(json_get(&b, &app.url("/profile")).await.0, 401);
        assert_eq!(
            json_get(&other, &app.url("/profile")).await.0,
            200,
            "bob is untouched"
        );
        // Alice can log in again afterwards.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        app.login(&a, "", "alice").await;
        assert_eq!(
            json_get(&a, &app.url("/profile")).await.0,
            200,
            "server_side={server_side}"
        );
    }
}

fn sets_session_cookie(r: &reqwest::Response) -> bool {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.starts_with("_a0_session")))
}

#[tokio::test]
async fn rolling_and_absolute_lifetimes() {
    let config = |server_side: bool| AppConfig {
        client: Box::new(move |b| {
            b.server_side_sessions(server_side)
                .session_inactivity_duration(Duration::from_secs(3))
                .session_absolute_duration(Duration::from_secs(7))
        }),
        ..AppConfig::default()
    };
    for server_side in [false, true] {
        let app = TestApp::start_with(config(server_side)).await;
        let http = TestApp::browser();
        let started = std::time::Instant::now();
        app.login(&http, "", "alice").await;
        // Requests that change nothing do not re-issue the cookie (at most one of a quick burst
        // can fall on a touch boundary of the 1 s step).
        let mut rewrites = 0;
        for _ in 0..6 {
            let r = http
                .get(app.url("/profile"))
                .header("accept", "application/json")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            rewrites += usize::from(sets_session_cookie(&r));
        }
        assert!(rewrites <= 1, "no re-issue on every request ({rewrites} of 6)");
        // Activity keeps the session alive past the 3 s inactivity window, re-issuing the
        // cookie as the window moves.
        let mut reissued = 0;
        while started.elapsed() < Duration::from_millis(5500) {
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let r = http
                .get(app.url("/profile"))
                .header("accept", "application/json")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "active session alive at {:?}", started.elapsed());
            reissued += usize::from(sets_session_cookie(&r));
        }
        assert!(reissued >= 2, "the rolling window was written back ({reissued})");
        // The absolute lifetime ends it however active the user is.
        while started.elapsed() < Duration::from_millis(7600) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let _ = http
                .get(app.url("/profile"))
                .header("accept", "application/json")
                .send()
                .await
                .unwrap();
        }
        let r = http
            .get(app.url("/profile"))
            .header("accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "absolute lifetime (server_side={server_side})");

        // Inactivity alone ends a fresh session.
        app.login(&http, "", "alice").await;
        assert_eq!(json_get(&http, &app.url("/profile")).await.0, 200);
        tokio::time::sleep(Duration::from_millis(3300)).await;
        assert_eq!(
            json_get(&http, &app.url("/profile")).await.0,
            401,
            "idle (server_side={server_side})"
        );
    }
}

async fn redis_backend(redis: &TestRedis) -> auth_redis::RedisBackend {
    auth_redis::RedisBackend::builder(redis.url())
        .key_prefix(unique_prefix())
        .connect()
        .await
        .unwrap()
}

#[tokio::test]
async fn idp_logout_ends_redis_server_side_sessions() {
    let redis = TestRedis::start().await;
    let backend = redis_backend(&redis).await;
    idp_initiated_logout_ends_the_app_session(AppConfig {
        client: Box::new(move |b| b.session_backend(backend).server_side_sessions(true)),
        backchannel: true,
        ..AppConfig::default()
    })
    .await;
}

#[tokio::test]
async fn idp_logout_ends_cookie_sessions_with_a_redis_logout_list() {
    // Stateless cookies, with the logout list shared through Redis: an instance that did not
    // receive the back-channel call refuses the cookie too.
    let redis = TestRedis::start().await;
    let prefix = unique_prefix();
    let backend_a = auth_redis::RedisBackend::builder(redis.url())
        .key_prefix(prefix.clone())
        .connect()
        .await
        .unwrap();
    let backend_b = auth_redis::RedisBackend::builder(redis.url())
        .key_prefix(prefix)
        .connect()
        .await
        .unwrap();
    let app = TestApp::start_with(AppConfig {
        client: Box::new(move |b| b.session_backend(backend_a)),
        backchannel: true,
        ..AppConfig::default()
    })
    .await;
    // A second instance of the same app (same secret, same Redis), not known to the IdP.
    let other = app.another_instance(move |b| b.session_backend(backend_b)).await;
    let other_base = other.base.clone();
    let http = TestApp::browser();
    app.login(&http, "", "alice").await;
    // Carry the same cookies to the other instance (same host, different port: the reqwest
    // cookie store sends them, as browsers do for host-only cookies).
    assert_eq!(json_get(&http, &format!("{other_base}/profile")).await.0, 200);
    let end = format!(
        "{}?client_id={CONF_BASIC_ID}&post_logout_redirect_uri={}",
        app.idp.end_session_endpoint(),
        url::form_urlencoded::byte_serialize(app.url("/").as_bytes()).collect::<String>()
    );
    app.idp.end_session(&http, &end).await;
    assert_eq!(json_get(&http, &app.url("/profile")).await.0, 401);
    // The other instance refuses it too, within 100 ms (its copy of the logout list follows
    // Redis's tracking pushes: normally at once).
    let started = std::time::Instant::now();
    while json_get(&http, &format!("{other_base}/profile")).await.0 != 401 {
        assert!(
            started.elapsed() < Duration::from_millis(100),
            "the other instance still accepts the cookie"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test]
async fn redis_down_is_a_503_and_nothing_breaks() {
    let mut redis = TestRedis::spawn().await;
    let backend = auth_redis::RedisBackend::builder(redis.url())
        .command_timeout(Duration::from_millis(500))
        .connect()
        .await
        .unwrap();
    let app = TestApp::start_with(AppConfig {
        client: Box::new(move |b| b.session_backend(backend).server_side_sessions(true)),
        ..AppConfig::default()
    })
    .await;
    let http = TestApp::browser();
    app.login(&http, "", "alice").await;
    assert_eq!(json_get(&http, &app.url("/profile")).await.0, 200);

    redis.kill();
    // Past the local cache's 80 ms freshness bound, every read goes to Redis.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = std::time::Instant::now();
    for path in ["/profile", "/auth/profile", "/token", "/"] {
        let (status, body) = json_get(&http, &app.url(path)).await;
        assert_eq!(status, 503, "{path}: {body}");
        assert_eq!(body["error"], "store_error");
        let text = body.to_string();
        assert!(
            !text.contains("6379") && !text.contains("127.0.0.1") && !text.contains("redis://"),
            "{text}"
        );
    }
    // Starting a login needs no Redis (the transaction is a cookie); completing it does.
    let start = http.get(app.url("/auth/login")).send().await.unwrap();
    assert_eq!(start.status(), 302);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by the command timeout"
    );

    // Redis comes back empty: the old session is gone, a new login works.
    redis.restart().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (status, _) = json_get(&http, &app.url("/profile")).await;
    assert_eq!(status, 401, "the record is gone with the restart");
    app.login(&http, "", "alice").await;
    assert_eq!(json_get(&http, &app.url("/profile")).await.0, 200);
}
