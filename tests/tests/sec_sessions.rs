//! Issue 10, items 4, 6, 7 and 9 (part), end to end: no resurrection of deleted server-side
//! sessions, back-channel logouts that survive a store failure and spare sessions created
//! after them, logout that ends copies of a cookie session (and revokes its refresh token),
//! and stored sessions bound to their id.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use auth_core::StoreError;
use auth_core::cookies::{CookieAttributes, CookieJar, MemoryCookieJar};
use auth_core::internal::{ServerSideStateStore, StateStore, WriteOptions};
use auth_core::store::{LogoutKey, MemoryBackend, SessionBackend, SessionKeys};
use auth_tests::*;
use reqwest::StatusCode;
use serde_json::json;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn now_ms() -> u64 {
    u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

async fn get_status(http: &reqwest::Client, url: &str) -> StatusCode {
    http.get(url)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap()
        .status()
}

/// A valid logout token from the app's IdP naming `sid` and/or `sub`, with a unique `jti`.
async fn logout_token(app: &TestApp, sid: Option<&str>, sub: Option<&str>) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let now = now_secs();
    let mut claims = json!({
        "iss": app.idp.issuer(), "aud": CONF_BASIC_ID, "iat": now, "exp": now + 120,
        "jti": format!("sec-{now}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)),
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}}
    });
    if let Some(sid) = sid {
        claims["sid"] = json!(sid);
    }
    if let Some(sub) = sub {
        claims["sub"] = json!(sub);
    }
    app.idp.sign(json!({"typ": "logout+jwt"}), claims).await
}

async fn post_logout_token(app: &TestApp, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url("/auth/backchannel-logout"))
        .form(&[("logout_token", token)])
        .send()
        .await
        .unwrap()
}

/// A [`SessionBackend`] around another that can be told to fail the next logout operation
/// (`delete_by` / `record_logout`), and that remembers what was stored under which id.
#[derive(Debug)]
struct TestBackend {
    inner: Arc<dyn SessionBackend>,
    fail_next_logout: AtomicBool,
    written: Mutex<Vec<(String, Vec<u8>, SessionKeys)>>,
}

impl TestBackend {
    fn new(inner: Arc<dyn SessionBackend>) -> Self {
        Self {
            inner,
            fail_next_logout: AtomicBool::new(false),
            written: Mutex::default(),
        }
    }

    fn failed(&self) -> Result<(), StoreError> {
        if self.fail_next_logout.swap(false, Ordering::SeqCst) {
            Err(StoreError::new("injected failure"))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl SessionBackend for TestBackend {
    async fn get(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(id).await
    }
    async fn set(&self, id: &str, value: &[u8], keys: &SessionKeys, ttl: Duration) -> Result<(), StoreError> {
        self.written
            .lock()
            .unwrap()
            .push((id.to_owned(), value.to_vec(), keys.clone()));
        self.inner.set(id, value, keys, ttl).await
    }
    async fn update(
        &self,
        id: &str,
        value: &[u8],
        keys: &SessionKeys,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        if std::env::var("OLD_UPDATE").is_ok() {
            self.inner.set(id, value, keys, ttl).await?;
            return Ok(true);
        }
        self.inner.update(id, value, keys, ttl).await
    }
    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }
    async fn delete_by(&self, key: &LogoutKey) -> Result<usize, StoreError> {
        self.failed()?;
        self.inner.delete_by(key).await
    }
    async fn record_logout(&self, key: &LogoutKey, at: u64, ttl: Duration) -> Result<(), StoreError> {
        self.failed()?;
        self.inner.record_logout(key, at, ttl).await
    }
    async fn logout_time(&self, keys: &[LogoutKey]) -> Result<Option<u64>, StoreError> {
        self.inner.logout_time(keys).await
    }
    fn logout_time_at_hand(&self, sid: &str, sub: Option<&str>) -> Option<Option<u64>> {
        self.inner.logout_time_at_hand(sid, sub)
    }
    async fn remember_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.inner.remember_once(key, ttl).await
    }
    async fn forget_once(&self, key: &str) -> Result<(), StoreError> {
        self.inner.forget_once(key).await
    }
}

async fn redis_backend(redis: &TestRedis) -> auth_redis::RedisBackend {
    auth_redis::RedisBackend::builder(redis.url())
        .key_prefix(unique_prefix())
        .connect()
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------------------
// Item 4: no resurrection.

/// Rounds of: log in (server-side session), fire concurrent `/token` requests that each
/// refresh (a refresh leeway longer than the token's lifetime makes every call refresh, and
/// each refresh writes the session), and while they are in flight deliver a back-channel
/// logout for the user. Once the logout has answered, no request finds the session: not the
/// next `/profile`, not after every in-flight refresh has finished. No request fails with a
/// 5xx. Before the fix, a refresh that read the session before the logout wrote it back.
async fn refreshes_racing_a_backchannel_logout(backend: Arc<dyn SessionBackend>, rounds: usize) {
    let app = TestApp::start_with(AppConfig {
        client: Box::new(move |b| {
            b.session_backend_arc(backend)
                .server_side_sessions(true)
                .token_refresh_leeway(Duration::from_secs(24 * 3600))
        }),
        ..AppConfig::default()
    })
    .await;
    let mut resurrected = Vec::new();
    for round in 0..rounds {
        let http = TestApp::browser();
        app.login(&http, "", "alice").await;
        assert_eq!(get_status(&http, &app.url("/profile")).await, 200);
        let token = logout_token(&app, None, Some("alice")).await;
        // 4 × 2 refreshes: a caller holding the first refresh token follows at most 7
        // rotations (the client follows up to 8).
        let tasks: Vec<_> = (0..4)
            .map(|_| {
                let (http, url) = (http.clone(), app.url("/token"));
                tokio::spawn(async move {
                    let mut statuses = Vec::new();
                    for _ in 0..2 {
                        let r = http
                            .get(&url)
                            .header("accept", "application/json")
                            .send()
                            .await
                            .unwrap();
                        let status = r.status();
                        if ![200, 401].contains(&status.as_u16()) {
                            eprintln!("/token {status}: {}", r.text().await.unwrap_or_default());
                        }
                        statuses.push(status);
                    }
                    statuses
                })
            })
            .collect();
        // Vary when the logout lands among the refreshes.
        tokio::time::sleep(Duration::from_millis((round % 5) as u64 * 3)).await;
        let r = post_logout_token(&app, &token).await;
        assert_eq!(r.status(), 200, "round {round}: {:?}", r.text().await);
        if get_status(&http, &app.url("/profile")).await != 401 {
            resurrected.push(format!("round {round}: right after the logout"));
        }
        for t in tasks {
            for status in t.await.unwrap() {
                assert!(
                    [200, 401].contains(&status.as_u16()),
                    "round {round}: /token answered {status}"
                );
            }
        }
        if get_status(&http, &app.url("/profile")).await != 401 {
            resurrected.push(format!("round {round}: after the refreshes finished"));
        }
    }
    assert!(resurrected.is_empty(), "sessions came back: {resurrected:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_racing_a_backchannel_logout_never_resurrect_memory() {
    let backend = Arc::new(MemoryBackend::new());
    refreshes_racing_a_backchannel_logout(Arc::new(TestBackend::new(backend.clone())), 30).await;
    assert_eq!(backend.session_count(), 0, "no record left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refreshes_racing_a_backchannel_logout_never_resurrect_redis() {
    let redis = TestRedis::start().await;
    let backend = redis_backend(&redis).await;
    let prefix = backend.key_prefix().to_owned();
    refreshes_racing_a_backchannel_logout(Arc::new(backend), 30).await;
    redis.flush_prefix(&prefix).await;
}

// ---------------------------------------------------------------------------------------
// Item 6: back-channel logout not lost.

/// The store fails while a back-channel logout is applied: the endpoint answers 503 and the
/// provider's retry of the very same token is accepted (its `jti` was not consumed) and ends
/// the session. Before the fix the retry was refused as a replay and the session lived on.
async fn backchannel_retry_after_a_store_failure(server_side: bool) {
    let backend = Arc::new(TestBackend::new(Arc::new(MemoryBackend::new())));
    let b = backend.clone();
    let app = TestApp::start_with(AppConfig {
        client: Box::new(move |builder| builder.session_backend_arc(b).server_side_sessions(server_side)),
        ..AppConfig::default()
    })
    .await;
    let http = TestApp::browser();
    app.login(&http, "", "alice").await;
    assert_eq!(get_status(&http, &app.url("/profile")).await, 200);

    let token = logout_token(&app, None, Some("alice")).await;
    backend.fail_next_logout.store(true, Ordering::SeqCst);
    let first = post_logout_token(&app, &token).await;
    assert_eq!(first.status(), 503, "the provider is told to retry");
    assert_eq!(
        get_status(&http, &app.url("/profile")).await,
        200,
        "nothing ended yet"
    );

    let retry = post_logout_token(&app, &token).await;
    let status = retry.status();
    assert_eq!(status, 200, "retry: {:?}", retry.text().await);
    assert_eq!(get_status(&http, &app.url("/profile")).await, 401);
    // Once it succeeded, the token is spent.
    let replay = post_logout_token(&app, &token).await;
    assert_eq!(replay.status(), 400);
}

#[tokio::test]
async fn backchannel_retry_after_a_store_failure_works_server_side() {
    backchannel_retry_after_a_store_failure(true).await;
}

#[tokio::test]
async fn backchannel_retry_after_a_store_failure_works_cookie_sessions() {
    backchannel_retry_after_a_store_failure(false).await;
}

/// A back-channel logout for a user ends the cookie session logged in before it, but not a
/// login completed right after it within the same second (logout times are kept in
/// milliseconds). Before the fix both compared in whole seconds and the new session was
/// refused until the next second's logins.
#[tokio::test]
async fn a_login_in_the_same_second_as_a_backchannel_logout_survives() {
    let app = TestApp::start_with(AppConfig::default()).await;
    let old = TestApp::browser();
    app.login(&old, "", "alice").await;
    assert_eq!(get_status(&old, &app.url("/profile")).await, 200);
    // Warm up so that one login fits well within a second.
    let warm = TestApp::browser();
    app.login(&warm, "", "alice").await;

    let mut same_second_rounds = 0;
    for attempt in 0..8 {
        // Start at the beginning of a second.
        while now_ms() % 1000 > 30 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let second = now_secs();
        let token = logout_token(&app, None, Some("alice")).await;
        assert_eq!(post_logout_token(&app, &token).await.status(), 200);
        let fresh = TestApp::browser();
        app.login(&fresh, "", "alice").await;
        let fresh_status = get_status(&fresh, &app.url("/profile")).await;
        let in_same_second = now_secs() == second;
        assert_eq!(
            get_status(&old, &app.url("/profile")).await,
            401,
            "attempt {attempt}: the session from before the logout is ended"
        );
        assert_eq!(
            fresh_status, 200,
            "attempt {attempt}: a login after the logout survives (same second: {in_same_second})"
        );
        if in_same_second {
            same_second_rounds += 1;
            if same_second_rounds >= 2 {
                break;
            }
        }
    }
    assert!(
        same_second_rounds > 0,
        "no attempt fitted a logout and a login in one second; the check did not run"
    );
}

// ---------------------------------------------------------------------------------------
// Item 7: logout ends copies.

/// The cookies a reqwest cookie store holds for `base`, as one `Cookie` header value.
fn cookie_header(jar: &reqwest::cookie::Jar, base: &str) -> String {
    use reqwest::cookie::CookieStore as _;
    jar.cookies(&base.parse().unwrap())
        .map(|h| h.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

async fn status_with_cookie(url: &str, cookie: &str) -> StatusCode {
    reqwest::Client::new()
        .get(url)
        .header("accept", "application/json")
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
}

/// Logging out of a stateless cookie session puts its `sid` on the logout list: a copy of
/// the cookie taken before the logout (which the opened-session cache has seen) no longer
/// opens. The refresh token is revoked at the provider's `revocation_endpoint` (RFC 7009,
/// `token_type_hint=refresh_token`, the client's token-endpoint authentication). A new login
/// afterwards works. Before the fix the copy kept working and nothing was revoked.
#[tokio::test]
async fn logout_ends_copies_of_a_cookie_session_and_revokes_its_refresh_token() {
    let app = TestApp::start_with(AppConfig::default()).await;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    app.login(&http, "", "alice").await;
    let copy = cookie_header(&jar, &app.base);
    assert!(copy.contains("_a0_session_0="), "{copy}");
    for _ in 0..2 {
        assert_eq!(status_with_cookie(&app.url("/profile"), &copy).await, 200);
    }
    app.idp.reset().await;

    let out = http.get(app.url("/auth/logout")).send().await.unwrap();
    assert_eq!(out.status(), 302);
    assert_eq!(get_status(&http, &app.url("/profile")).await, 401);
    for path in ["/profile", "/token", "/auth/profile"] {
        assert_eq!(
            status_with_cookie(&app.url(path), &copy).await,
            401,
            "{path}: the copied cookie still opens"
        );
    }

    let rec = app.idp.requests().await;
    assert_eq!(rec.revocation.len(), 1, "one revocation request");
    let call = &rec.revocation[0];
    assert_eq!(
        call.params.get("token_type_hint").map(String::as_str),
        Some("refresh_token")
    );
    assert!(call.params.get("token").is_some_and(|t| !t.is_empty()));
    assert!(
        call.auth_header.is_some() || call.params.contains_key("client_secret"),
        "the client authenticates as at the token endpoint"
    );
    assert_eq!(call.status, 200, "{:?}", call.error);

    // A new login (same user, same browser) is not affected by the logout list.
    app.login(&http, "", "alice").await;
    assert_eq!(get_status(&http, &app.url("/profile")).await, 200);
}

/// A provider (discovery document and a revocation endpoint answering `status`) on loopback;
/// returns its issuer and how many revocation requests it received.
async fn provider_with_failing_revocation(
    status: u16,
    revocation_reachable: bool,
) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let issuer = format!("{base}/");
    let hits = Arc::new(AtomicUsize::new(0));
    let revocation = if revocation_reachable {
        format!("{base}/revoke")
    } else {
        // Nothing listens on port 1 of loopback: the connection is refused.
        "http://127.0.0.1:1/revoke".to_owned()
    };
    let doc = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "revocation_endpoint": revocation,
        "id_token_signing_alg_values_supported": ["RS256"],
    });
    let counter = hits.clone();
    let router = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc) }
            }),
        )
        .route(
            "/revoke",
            axum::routing::post(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async move { axum::http::StatusCode::from_u16(status).unwrap() }
            }),
        );
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (issuer, hits)
}

/// A revocation endpoint that fails (an error status, or refusing connections) does not
/// block the logout: the browser is still sent on, the session ends, copies of its cookie
/// included.
#[tokio::test]
async fn a_failing_revocation_does_not_block_logout() {
    for (status, reachable) in [(503, true), (400, true), (200, false)] {
        let (issuer, hits) = provider_with_failing_revocation(status, reachable).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let client = auth_core::ServerClient::builder()
            .issuer(&issuer)
            .client_id("client-1")
            .client_auth(auth_core::ClientAuth::secret("client-secret-1"))
            .secret(APP_SECRET)
            .app_base_url(&base)
            .build()
            .unwrap();
        let auth = auth_axum::AuthState::new(client, auth_axum::AuthOptions::new()).unwrap();
        let router = auth_examples::quickstart::app(&auth);
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });

        // A cookie session holding a refresh token, sealed as the app seals them.
        let sessions = auth_core::internal::CookieStateStore::new(
            &[APP_SECRET],
            "_a0_session",
            CookieAttributes::default(),
        );
        let doc: auth_core::internal::SessionData = serde_json::from_value(json!({
            "user": {"sub": "alice"},
            "refresh_token": "rt-alice",
            "internal": {"sid": format!("sid-{status}-{reachable}"), "created_at": now_secs()}
        }))
        .unwrap();
        let mut jar = MemoryCookieJar::default();
        sessions
            .set(&doc, WriteOptions::new(now_secs() + 3600, true), &mut jar)
            .await
            .unwrap();
        let next = jar.next_request();
        let cookie = next
            .names()
            .into_iter()
            .map(|n| format!("{n}={}", next.get(&n).unwrap()))
            .collect::<Vec<_>>()
            .join("; ");
        assert_eq!(status_with_cookie(&format!("{base}/profile"), &cookie).await, 200);

        let out = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{base}/auth/logout"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), 302, "revocation {status}/{reachable}");
        assert_eq!(hits.load(Ordering::SeqCst), usize::from(reachable));
        assert_eq!(
            status_with_cookie(&format!("{base}/profile"), &cookie).await,
            401,
            "the logged-out cookie no longer opens"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Item 9 (part): a stored session is bound to its id.

/// A sealed record copied under another session's id does not open there (the seal key is
/// derived with the id in the salt); the genuine records still open. Before the fix the copy
/// opened as the other session.
async fn a_record_copied_under_another_id_does_not_open(inner: Arc<dyn SessionBackend>) {
    let backend = Arc::new(TestBackend::new(inner));
    let store = ServerSideStateStore::new(
        backend.clone(),
        &[APP_SECRET],
        "_a0_session",
        CookieAttributes::default(),
    );
    let doc = |sub: &str| -> auth_core::internal::SessionData {
        serde_json::from_value(json!({
            "user": {"sub": sub},
            "internal": {"sid": format!("sid-{sub}"), "created_at": now_secs()}
        }))
        .unwrap()
    };
    let mut jars = Vec::new();
    for sub in ["alice", "mallory"] {
        let mut jar = MemoryCookieJar::default();
        store
            .set(&doc(sub), WriteOptions::new(now_secs() + 3600, true), &mut jar)
            .await
            .unwrap();
        jars.push(jar.next_request());
    }
    let written = backend.written.lock().unwrap().clone();
    assert_eq!(written.len(), 2);
    let (alice_id, alice_value, _) = &written[0];
    let (mallory_id, mallory_value, mallory_keys) = &written[1];
    assert_ne!(alice_id, mallory_id);

    // Alice's record under Mallory's id: Mallory's cookie must not open Alice's session.
    backend
        .inner
        .set(mallory_id, alice_value, mallory_keys, Duration::from_secs(3600))
        .await
        .unwrap();
    let got = store.get(&mut jars[1].clone()).await.unwrap();
    assert!(got.is_none(), "a copied record opened: {got:?}");
    let alice = store.get(&mut jars[0].clone()).await.unwrap().unwrap();
    assert_eq!(alice.user()["sub"], "alice");

    // The genuine record back in place opens again.
    backend
        .inner
        .set(mallory_id, mallory_value, mallory_keys, Duration::from_secs(3600))
        .await
        .unwrap();
    let mallory = store.get(&mut jars[1].clone()).await.unwrap().unwrap();
    assert_eq!(mallory.user()["sub"], "mallory");
    let _ = jars[0].names();
}

#[tokio::test]
async fn a_record_copied_under_another_id_does_not_open_memory() {
    a_record_copied_under_another_id_does_not_open(Arc::new(MemoryBackend::new())).await;
}

#[tokio::test]
async fn a_record_copied_under_another_id_does_not_open_redis() {
    let redis = TestRedis::start().await;
    let backend = redis_backend(&redis).await;
    let prefix = backend.key_prefix().to_owned();
    a_record_copied_under_another_id_does_not_open(Arc::new(backend)).await;
    redis.flush_prefix(&prefix).await;
}
