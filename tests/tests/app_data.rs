//! App data in the session end to end (issue 12, items 1, 6 and 7): `Session::set`, `get` and
//! `remove` across requests on cookie and server-side sessions (memory and Redis), written back
//! once by the layer; app data surviving a real refresh and the rolling touch; the size limit
//! as a typed error; a write-back racing a logout; typed claims; and `test_util` sessions for
//! `oneshot` tests without a provider.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use auth_axum::{AuthError, AuthState, RequireAuth, Session};
use auth_core::store::{LogoutKey, MemoryBackend, SessionBackend, SessionKeys};
use auth_core::{AccessTokenOptions, StoreError};
use auth_tests::*;
use axum::extract::Path;
use axum::routing::{get, post, put};
use axum::{Extension, Json, Router};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Notify;

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value, Vec<String>) {
    let r = req.header("accept", "application/json").send().await.unwrap();
    let status = r.status();
    let set_cookies = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    (status, r.json().await.unwrap_or(Value::Null), set_cookies)
}

/// Session cookies (not removals) among `Set-Cookie` headers.
fn session_writes(set_cookies: &[String]) -> usize {
    set_cookies
        .iter()
        .filter(|c| c.starts_with("_a0_session") && !c.contains("Max-Age=0"))
        .count()
}

/// Lets a test hold a handler between its change and the end of its request.
#[derive(Default)]
struct Gate {
    entered: Notify,
    release: Notify,
}

#[derive(Debug, Deserialize)]
struct Profile {
    sub: String,
    name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[allow(dead_code)]
struct NeedsPhone {
    phone_number_verified_at_birth: String,
}

async fn data(session: Session) -> Result<Json<Value>, AuthError> {
    Ok(Json(json!({
        "theme": session.get::<String>("theme")?,
        "visits": session.get::<u32>("visits")?,
        "keys": session.inner().app_data().keys().collect::<Vec<_>>(),
    })))
}

async fn set_value(
    session: Session,
    Path(key): Path<String>,
    Json(value): Json<Value>,
) -> Result<Json<Value>, AuthError> {
    session.set(&key, &value)?;
    // Read-your-writes, through the same and through another extraction of the session.
    Ok(Json(json!({ "read_back": session.get::<Value>(&key)? })))
}

async fn remove_value(session: Session, Path(key): Path<String>) -> Result<Json<Value>, AuthError> {
    session.remove(&key)?;
    Ok(Json(json!({ "read_back": session.get::<Value>(&key)? })))
}

/// Several changes in one request: one write at the end.
async fn batch(session: Session, again: Session) -> Result<Json<Value>, AuthError> {
    session.set("a", &1)?;
    session.set("b", &2)?;
    again.set("a", &3)?;
    session.remove("b")?;
    again.set("c", "three")?;
    Ok(Json(json!({
        "a": again.get::<u32>("a")?, "b": session.get::<u32>("b")?, "c": session.get::<String>("c")?
    })))
}

async fn visit(session: Session) -> Result<Json<Value>, AuthError> {
    let visits = session.get::<u32>("visits")?.unwrap_or(0) + 1;
    session.set("visits", &visits)?;
    Ok(Json(json!({ "visits": visits })))
}

/// A forced refresh, then a change: the write-back keeps the refreshed tokens.
async fn refresh_then_set(session: Session) -> Result<Json<Value>, AuthError> {
    let token = session
        .access_token(AccessTokenOptions::new().force_refresh(true))
        .await?;
    session.set("after_refresh", &true)?;
    Ok(Json(json!({ "access_token": token.token.expose() })))
}

async fn big(session: Session) -> Result<Json<Value>, AuthError> {
    session.set("blob", &"x".repeat(100 * 1024))?;
    Ok(Json(json!({ "stored": true })))
}

async fn claims(session: Session) -> Result<Json<Value>, AuthError> {
    let p: Profile = session.claims()?;
    Ok(Json(json!({ "sub": p.sub, "name": p.name })))
}

async fn claims_strict(session: Session) -> Result<Json<Value>, AuthError> {
    let _: NeedsPhone = session.claims()?;
    Ok(Json(json!({})))
}

async fn slow_set(session: Session, Extension(gate): Extension<Arc<Gate>>) -> Result<Json<Value>, AuthError> {
    session.set("late", &"value")?;
    gate.entered.notify_one();
    gate.release.notified().await;
    Ok(Json(json!({ "set": true })))
}

fn router(gate: Arc<Gate>) -> Box<dyn FnOnce(&AuthState) -> Router + Send> {
    Box::new(move |auth: &AuthState| {
        Router::new()
            .route("/data", get(data))
            .route("/data/{key}", put(set_value).delete(remove_value))
            .route("/batch", post(batch))
            .route("/visit", post(visit))
            .route("/refresh-then-set", post(refresh_then_set))
            .route("/big", post(big))
            .route("/claims", get(claims))
            .route("/claims-strict", get(claims_strict))
            .route("/slow-set", post(slow_set))
            .route("/token", get(token))
            .route_layer(RequireAuth::new())
            .merge(auth.router())
            .layer(Extension(gate))
            .layer(auth.layer())
    })
}

async fn token(session: Session) -> Result<Json<Value>, AuthError> {
    let t = session.access_token(AccessTokenOptions::new()).await?;
    Ok(Json(json!({ "access_token": t.token.expose() })))
}

/// A memory backend that counts record updates (the write-backs of server-side sessions).
#[derive(Debug, Default)]
struct Counting {
    inner: MemoryBackend,
    updates: AtomicUsize,
}

#[async_trait]
impl SessionBackend for Counting {
    async fn get(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(id).await
    }
    async fn set(&self, id: &str, v: &[u8], k: &SessionKeys, ttl: Duration) -> Result<(), StoreError> {
        self.inner.set(id, v, k, ttl).await
    }
    async fn update(&self, id: &str, v: &[u8], k: &SessionKeys, ttl: Duration) -> Result<bool, StoreError> {
        self.updates.fetch_add(1, Ordering::SeqCst);
        self.inner.update(id, v, k, ttl).await
    }
    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete(id).await
    }
    async fn delete_by(&self, key: &LogoutKey) -> Result<usize, StoreError> {
        self.inner.delete_by(key).await
    }
    async fn record_logout(&self, key: &LogoutKey, at: u64, ttl: Duration) -> Result<(), StoreError> {
        self.inner.record_logout(key, at, ttl).await
    }
    async fn logout_time(&self, keys: &[LogoutKey]) -> Result<Option<u64>, StoreError> {
        self.inner.logout_time(keys).await
    }
    async fn remember_once(&self, key: &str, ttl: Duration) -> Result<bool, StoreError> {
        self.inner.remember_once(key, ttl).await
    }
}

enum Store {
    Cookie,
    Memory(Arc<Counting>),
    Redis(auth_redis::RedisBackend),
}

async fn start(store: Store, gate: Arc<Gate>) -> TestApp {
    TestApp::start_with(AppConfig {
        client: Box::new(move |b| match store {
            Store::Cookie => b,
            Store::Memory(backend) => b.session_backend_arc(backend).server_side_sessions(true),
            Store::Redis(backend) => b.session_backend(backend).server_side_sessions(true),
        }),
        router: router(gate),
        ..AppConfig::default()
    })
    .await
}

async fn redis_backend(redis: &TestRedis) -> auth_redis::RedisBackend {
    auth_redis::RedisBackend::builder(redis.url())
        .key_prefix(unique_prefix())
        .connect()
        .await
        .unwrap()
}

async fn set_get_remove_across_requests(store: Store) {
    let counting = match &store {
        Store::Memory(c) => Some(c.clone()),
        _ => None,
    };
    let app = start(store, Arc::default()).await;
    let http = TestApp::browser();
    app.login(&http, "", "alice").await;
    let (status, body, _) = send(http.get(app.url("/data"))).await;
    assert_eq!((status, &body["keys"]), (StatusCode::OK, &json!([])), "{body}");

    let (status, body, set) = send(http.put(app.url("/data/theme")).json(&json!("dark"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["read_back"], "dark", "read-your-writes");
    assert!(session_writes(&set) >= 1, "written back: {set:?}");
    let (_, body, set) = send(http.get(app.url("/data"))).await;
    assert_eq!(body["theme"], "dark", "the next request reads it");
    assert_eq!(
        session_writes(&set),
        0,
        "a request that changes nothing writes nothing"
    );

    // Several changes through two extractions of the session: one write, the last value wins.
    let before = counting.as_ref().map(|c| c.updates.load(Ordering::SeqCst));
    let (status, body, set) = send(http.post(app.url("/batch"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"a": 3, "b": null, "c": "three"}));
    if let (Some(c), Some(before)) = (&counting, before) {
        assert_eq!(
            c.updates.load(Ordering::SeqCst) - before,
            1,
            "one record update for five changes"
        );
    } else {
        // Each chunk cookie once.
        let mut names: Vec<&str> = set.iter().filter_map(|c| c.split('=').next()).collect();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "{set:?}");
    }
    let (_, body, _) = send(http.get(app.url("/data"))).await;
    assert_eq!(body["keys"], json!(["a", "c", "theme"]), "{body}");

    let (status, body, _) = send(http.delete(app.url("/data/theme"))).await;
    assert_eq!((status, &body["read_back"]), (StatusCode::OK, &Value::Null));
    let (_, body, _) = send(http.get(app.url("/data"))).await;
    assert_eq!(body["theme"], Value::Null);
    assert_eq!(body["keys"], json!(["a", "c"]));

    // A stored value of another type is a typed error naming the key, never the value.
    send(http.put(app.url("/data/visits")).json(&json!("many"))).await;
    let (status, body, _) = send(http.get(app.url("/data"))).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "invalid_session_value");
    assert!(!body.to_string().contains("many"), "{body}");

    // The data ends with the session: a new login starts without it.
    app.login(&http, "", "alice").await;
    let (_, body, _) = send(http.get(app.url("/data"))).await;
    assert_eq!(body["keys"], json!([]), "{body}");
}

#[tokio::test]
async fn set_get_remove_across_requests_in_cookie_sessions() {
    set_get_remove_across_requests(Store::Cookie).await;
}

#[tokio::test]
async fn set_get_remove_across_requests_in_memory_server_side_sessions() {
    set_get_remove_across_requests(Store::Memory(Arc::default())).await;
}

#[tokio::test]
async fn set_get_remove_across_requests_in_redis_server_side_sessions() {
    let redis = TestRedis::start().await;
    set_get_remove_across_requests(Store::Redis(redis_backend(&redis).await)).await;
}

#[tokio::test]
async fn app_data_survives_a_real_refresh_and_a_write_back_keeps_the_refresh() {
    for server_side in [false, true] {
        let app = TestApp::start_with(AppConfig {
            client: Box::new(move |b| {
                b.token_refresh_leeway(Duration::ZERO)
                    .server_side_sessions(server_side)
            }),
            idp: IdpOptions {
                access_token_ttl: Some(2),
                ..IdpOptions::default()
            },
            router: router(Arc::default()),
            ..AppConfig::default()
        })
        .await;
        let http = TestApp::browser();
        app.login(&http, "", "alice").await;
        let (_, body, _) = send(http.post(app.url("/visit"))).await;
        assert_eq!(body["visits"], 1);
        let (_, first, _) = send(http.get(app.url("/token"))).await;

        // The token expires; the refresh (its own write) keeps the app data.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let (status, second, _) = send(http.get(app.url("/token"))).await;
        assert_eq!(status, 200, "{second}");
        assert_ne!(second["access_token"], first["access_token"]);
        assert_eq!(app.idp.requests().await.refreshes(), 1);
        let (_, body, _) = send(http.get(app.url("/data"))).await;
        assert_eq!(body["visits"], 1, "server_side={server_side}: {body}");

        // A refresh and a change in one request: the write-back applies the change to the
        // refreshed session, so the new tokens are kept (no second refresh, same token).
        let (status, refreshed, _) = send(http.post(app.url("/refresh-then-set"))).await;
        assert_eq!(status, 200, "{refreshed}");
        assert_eq!(app.idp.requests().await.refreshes(), 2);
        let (_, now, _) = send(http.get(app.url("/token"))).await;
        assert_eq!(
            now["access_token"], refreshed["access_token"],
            "server_side={server_side}: the refreshed token survived the write-back"
        );
        assert_eq!(app.idp.requests().await.refreshes(), 2, "no refresh undone");
        let (_, body, _) = send(http.get(app.url("/data"))).await;
        assert_eq!(body["keys"], json!(["after_refresh", "visits"]), "{body}");
    }
}

#[tokio::test]
async fn app_data_survives_the_rolling_touch() {
    for server_side in [false, true] {
        let app = TestApp::start_with(AppConfig {
            client: Box::new(move |b| {
                b.server_side_sessions(server_side)
                    .session_inactivity_duration(Duration::from_secs(3))
            }),
            router: router(Arc::default()),
            ..AppConfig::default()
        })
        .await;
        let http = TestApp::browser();
        app.login(&http, "", "alice").await;
        send(http.post(app.url("/visit"))).await;
        let started = std::time::Instant::now();
        let mut touched = 0;
        // Past the 3 s inactivity window, kept alive by requests that only read: each touch
        // rewrites the session, app data included.
        while started.elapsed() < Duration::from_millis(4500) {
            tokio::time::sleep(Duration::from_millis(1100)).await;
            let (status, body, set) = send(http.get(app.url("/data"))).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["visits"], 1, "server_side={server_side}: {body}");
            touched += usize::from(session_writes(&set) > 0);
        }
        assert!(touched >= 2, "the rolling window was written ({touched})");
        // A change in a request that also touches: both land.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let (_, body, _) = send(http.post(app.url("/visit"))).await;
        assert_eq!(body["visits"], 2);
        let (_, body, _) = send(http.get(app.url("/data"))).await;
        assert_eq!(body["visits"], 2);
    }
}

#[tokio::test]
async fn a_session_too_large_is_a_typed_error_and_the_session_stays() {
    for server_side in [false, true] {
        let app = TestApp::start_with(AppConfig {
            client: Box::new(move |b| b.server_side_sessions(server_side)),
            router: router(Arc::default()),
            ..AppConfig::default()
        })
        .await;
        let http = TestApp::browser();
        app.login(&http, "", "alice").await;
        send(http.post(app.url("/visit"))).await;
        let (status, body, set) = send(http.post(app.url("/big"))).await;
        assert_eq!(body["error"], "session_too_large", "{body}");
        assert_eq!(status, 413);
        assert_eq!(session_writes(&set), 0, "nothing written: {set:?}");
        assert!(set.iter().all(|c| !c.contains("Max-Age=0")), "no logout: {set:?}");
        let (status, body, _) = send(http.get(app.url("/data"))).await;
        assert_eq!(status, 200, "the session is still there: {body}");
        assert_eq!(body["visits"], 1);
    }
}

async fn write_back_racing_a_logout_does_not_resurrect(store: Store) {
    let gate = Arc::new(Gate::default());
    let app = start(store, gate.clone()).await;
    let http = TestApp::browser();
    app.login(&http, "", "alice").await;
    let slow = tokio::spawn({
        let (http, url) = (http.clone(), app.url("/slow-set"));
        async move { send(http.post(url)).await }
    });
    gate.entered.notified().await;
    // The user logs out in another tab while the slow request still holds its change.
    let r = http.get(app.url("/auth/logout")).send().await.unwrap();
    assert_eq!(r.status(), 302);
    gate.release.notify_one();
    let (status, body, set) = slow.await.unwrap();
    assert_eq!(status, 200, "the response is sent as it is: {body}");
    assert_eq!(session_writes(&set), 0, "not written back: {set:?}");
    let (status, _, _) = send(http.get(app.url("/data"))).await;
    assert_eq!(status, 401, "still logged out");
}

#[tokio::test]
async fn a_write_back_racing_a_logout_does_not_resurrect_a_memory_session() {
    write_back_racing_a_logout_does_not_resurrect(Store::Memory(Arc::default())).await;
}

#[tokio::test]
async fn a_write_back_racing_a_logout_does_not_resurrect_a_redis_session() {
    let redis = TestRedis::start().await;
    write_back_racing_a_logout_does_not_resurrect(Store::Redis(redis_backend(&redis).await)).await;
}

#[tokio::test]
async fn typed_claims_and_their_errors() {
    let app = start(Store::Cookie, Arc::default()).await;
    let http = TestApp::browser();
    app.login(&http, "", "alice").await;
    let (status, body, _) = send(http.get(app.url("/claims"))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["sub"], "alice");
    let (status, body, _) = send(http.get(app.url("/claims-strict"))).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "invalid_session_value");
    // The public message says nothing about the data; the log (Display) names the field.
    assert!(!body.to_string().contains("alice"), "{body}");
}

/// The README's "Testing protected handlers" example: a protected handler tested with
/// `oneshot`, no provider running, for cookie and server-side sessions.
#[tokio::test]
async fn a_protected_handler_is_tested_with_oneshot_and_no_provider() {
    use auth_axum::AuthOptions;
    use auth_axum::test_util::TestSession;
    use axum::body::Body;
    use axum::http::header::{COOKIE, SET_COOKIE};
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt as _;

    #[derive(Deserialize)]
    struct User {
        name: String,
    }

    async fn dashboard(session: Session) -> Result<String, AuthError> {
        let user: User = session.claims()?;
        let visits = session.get::<u32>("visits")?.unwrap_or(0) + 1;
        session.set("visits", &visits)?;
        let token = session.access_token(AccessTokenOptions::new()).await?;
        Ok(format!("{} #{visits} {}", user.name, token.token.expose()))
    }

    for server_side in [false, true] {
        let client = auth_core::ServerClient::builder()
            .issuer("https://tenant.example.invalid/") // never contacted
            .client_id("test-client")
            .client_auth(auth_core::ClientAuth::none())
            .secret("a-test-secret-of-at-least-32-bytes!!")
            .app_base_url("http://localhost:3000")
            .server_side_sessions(server_side)
            .build()
            .unwrap();
        let auth = AuthState::new(client, AuthOptions::new()).unwrap();
        let app = Router::new()
            .route("/dashboard", get(dashboard).route_layer(RequireAuth::new()))
            .layer(auth.layer());

        let cookie = TestSession::new()
            .claims(json!({"sub": "auth0|42", "name": "Jane"}))
            .access_token("default", "test-token", u64::MAX / 2)
            .app_data("visits", 2)
            .cookie_header(&auth)
            .await
            .unwrap();
        let request = Request::get("/dashboard")
            .header(COOKIE, cookie)
            .body(Body::empty())
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            response.headers().contains_key(SET_COOKIE),
            "the change was written back"
        );
        let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"Jane #3 test-token");

        // Without the session: the login redirect (for this JSON-less request, 401 or 302).
        let anonymous = app
            .oneshot(Request::get("/dashboard").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::FOUND].contains(&anonymous.status()),
            "{}",
            anonymous.status()
        );
        // Unusable inputs are typed errors.
        let e = TestSession::new()
            .claims(json!("not an object"))
            .cookie_header(&auth)
            .await
            .unwrap_err();
        assert_eq!(e.inner().code(), "invalid_parameter");
    }
}
